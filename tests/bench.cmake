# SPDX-License-Identifier: MIT
# Tests of the benchmark part (bench/, src/bench, tools/kiln/bench_cmd.c), included by
# tests/CMakeLists.txt. No test here asserts a timing: the quick run checks that the
# suite runs and that its JSON validates; ratios are only asserted with a fake clock
# (tests/unit/test_bench_harness.c).
if(NOT KILN_TESTS_STRESS_ONLY)
  # The cmocka tests of the library link it (they are auto-registered from tests/unit).
  foreach(t test_unit_test_bench_stats test_unit_test_bench_harness test_unit_test_bench_scaling
          test_unit_test_bench_report)
    if(TARGET ${t} AND TARGET kiln_bench)
      target_link_libraries(${t} PRIVATE kiln_bench)
    endif()
  endforeach()
  # The writers' test reads the JSON back with jansson and checks the other formats
  # with tests/bench/check_reports.py (Debian's /usr/bin/python3).
  if(TARGET test_unit_test_bench_report AND TARGET kiln_bench)
    target_link_libraries(test_unit_test_bench_report PRIVATE PkgConfig::JANSSON)
    target_compile_definitions(test_unit_test_bench_report PRIVATE
      KILN_BENCH_CHECKER="${CMAKE_CURRENT_SOURCE_DIR}/bench/check_reports.py")
  endif()

  # The JSON writer the report and the CLI's --json output share (src/bench/json.c),
  # compiled alone: exact bytes of escapes, UTF-8 repair, numbers, layout and misuse.
  add_executable(kiln_json_writer_test ${CMAKE_CURRENT_SOURCE_DIR}/bench/json_test.c
                                       ${PROJECT_SOURCE_DIR}/src/bench/json.c)
  target_include_directories(kiln_json_writer_test PRIVATE ${PROJECT_SOURCE_DIR}/src/bench)
  target_compile_options(kiln_json_writer_test PRIVATE ${KILN_WARNINGS})
  target_link_libraries(kiln_json_writer_test PRIVATE m)
  add_test(NAME bench.json_writer COMMAND kiln_json_writer_test)
  kiln_test_properties(bench.json_writer LABELS cpu unit TIMEOUT 60)
  if(TARGET kiln-tests)
    add_dependencies(kiln-tests kiln_json_writer_test)
  endif()

  # Baselines include no kiln header and reference no kiln_ symbol (design.md).
  add_test(NAME bench.baselines_no_kiln_symbols
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/check_baselines.sh ${CMAKE_NM}
            $<TARGET_FILE:kiln_bench_baselines> ${PROJECT_SOURCE_DIR}/bench)
  kiln_test_properties(bench.baselines_no_kiln_symbols LABELS unit)

  if(TARGET kiln_cli)
    # `kiln bench run cpu --quick` with every format and --axis: the JSON validates
    # against schemas/bench.json (with Debian's /usr/bin/python3), the other formats
    # are valid (CSV columns, Markdown rows, LaTeX nesting, HTML as XML with its plots).
    add_test(NAME bench.run_cpu_quick_reports
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_cpu_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_SOURCE_DIR}/bench/check_reports.py
              ${CMAKE_CURRENT_BINARY_DIR}/bench-cpu-quick)
    kiln_test_properties(bench.run_cpu_quick_reports LABELS cpu unit TIMEOUT 300)

    # The OpenCL suites with their raw baselines, quick, on PoCL here: every goal case
    # of design.md present, on the opencl device, schema-valid JSON (no timing asserted).
    add_test(NAME bench.run_opencl_quick
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_opencl_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-opencl-quick)
    kiln_test_properties(bench.run_opencl_quick LABELS opencl unit TIMEOUT 300)

    # The streams suite (#18), quick, on cpu and on PoCL: its four results with their
    # baselines and schema-valid JSON (no timing asserted). Release tree only: the
    # pipeline case moves 256 MiB each way, too slow under the sanitizers.
    if(NOT KILN_SANITIZE)
      foreach(dev cpu opencl)
        add_test(NAME bench.run_streams_quick_${dev}
          COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_streams_quick.sh $<TARGET_FILE:kiln_cli>
                  /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
                  ${PROJECT_SOURCE_DIR}/schemas/bench.json
                  ${CMAKE_CURRENT_BINARY_DIR}/bench-streams-${dev} ${dev}:0)
        kiln_test_properties(bench.run_streams_quick_${dev} LABELS ${dev} unit TIMEOUT 300)
      endforeach()
      # Both streams suites on the CUDA backend over the fake libcuda and the real NVRTC:
      # the kiln side's CUDA paths and the raw-CUDA baselines (streams_cuda) run in CI.
      add_test(NAME bench.run_streams_cuda_fake
        COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_streams_cuda_fake.sh
                $<TARGET_FILE:kiln_cli> /usr/bin/python3
                ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
                ${PROJECT_SOURCE_DIR}/schemas/bench.json
                ${CMAKE_CURRENT_BINARY_DIR}/bench-streams-cuda-fake
                $<TARGET_FILE:kiln_fake_cuda>)
      kiln_test_properties(bench.run_streams_cuda_fake LABELS cuda-nogpu unit TIMEOUT 300)
    endif()
    # The dialect suite (CPU-backend kernels vs raw OpenCL on PoCL), its two cheap cases.
    add_test(NAME bench.run_dialect_quick
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_dialect_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-dialect-quick)
    kiln_test_properties(bench.run_dialect_quick LABELS opencl unit TIMEOUT 300)

    # The graph suite, quick: every case with its baseline (StarPU's where libstarpu
    # loads), schema-valid JSON (no timing asserted).
    add_test(NAME bench.run_graph_quick
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_graph_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-graph-quick)
    kiln_test_properties(bench.run_graph_quick LABELS cpu unit TIMEOUT 300)

    # Without an OpenCL driver `bench run all` skips the OpenCL suites with a reason.
    add_test(NAME bench.run_all_no_opencl
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_all_no_opencl.sh $<TARGET_FILE:kiln_cli>
              ${CMAKE_CURRENT_BINARY_DIR}/bench-no-opencl)
    kiln_test_properties(bench.run_all_no_opencl LABELS cpu unit TIMEOUT 300)

    # The cuda suite with its raw driver-API baseline, quick, on a real GPU (label `cuda`:
    # exits 77 without a CUDA device, so it runs on the lent GPU machine through
    # scripts/gpu-check.sh): every case measured, schema-valid JSON (no timing asserted).
    add_test(NAME bench.run_cuda_quick
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_cuda_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-cuda-quick)
    kiln_test_properties(bench.run_cuda_quick LABELS cuda unit TIMEOUT 120)

    # The same suite against the tests' fake libcuda (tests/cuda.cmake) and the real
    # NVRTC, here: both sides' set-up, runs and teardown go through the driver API; the
    # cases the fake cannot serve (no pinned memory, kernels that never run) must fail
    # with their reason.
    add_test(NAME bench.run_cuda_fake
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_cuda_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-cuda-fake $<TARGET_FILE:kiln_fake_cuda>)
    kiln_test_properties(bench.run_cuda_fake LABELS cuda-nogpu unit TIMEOUT 300)

    # With the CUDA backend unavailable `bench run all` skips the cuda suite with its
    # reason; `bench run cuda` alone exits 1 saying why.
    add_test(NAME bench.run_all_no_cuda
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_all_no_cuda.sh $<TARGET_FILE:kiln_cli>
              ${CMAKE_CURRENT_BINARY_DIR}/bench-no-cuda)
    kiln_test_properties(bench.run_all_no_cuda LABELS cuda-nogpu unit TIMEOUT 300)

    # compare: 0 / 1 on a regression / 2 on bad input, on hand-written documents.
    add_test(NAME bench.compare_cli
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/compare_cli.sh $<TARGET_FILE:kiln_cli>
              ${CMAKE_CURRENT_BINARY_DIR}/bench-compare)
    kiln_test_properties(bench.compare_cli LABELS unit)

    # compare's hand-written document checks (src/bench/validate.c) agree with
    # python3-jsonschema on schemas/bench.json: a valid document and its variants both
    # accept, every schema mutation both reject, and the impossible statistics (zero or
    # negative medians, inverted intervals, ...) pass the schema but not compare.
    add_test(NAME bench.compare_schema_agreement
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench/compare_schema.py
              $<TARGET_FILE:kiln_cli> ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_SOURCE_DIR}/bench/compare_valid.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-compare-schema)
    kiln_test_properties(bench.compare_schema_agreement LABELS unit)

    # Usage errors (unknown suite or axis, bad values and options) exit 2; list works.
    add_test(NAME bench.cli_usage
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/cli_usage.sh $<TARGET_FILE:kiln_cli>)
    kiln_test_properties(bench.cli_usage LABELS unit)
  endif()

  # docs/benchmarks.md's example (examples/bench_custom.c) runs and writes its files.
  if(TARGET bench_custom)
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/bench-custom)
    add_test(NAME bench.example_custom COMMAND bench_custom --quick
      WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/bench-custom)
    kiln_test_properties(bench.example_custom LABELS cpu unit)
    add_dependencies(kiln-tests bench_custom)
  endif()
endif()
