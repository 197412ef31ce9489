# SPDX-License-Identifier: MIT
# Tests of the benchmark part (bench/, src/bench, tools/kiln/bench_cmd.c), included by
# tests/CMakeLists.txt. No test here asserts a timing: the quick run checks that the
# suite runs and that its JSON validates; ratios are only asserted with a fake clock
# (tests/unit/test_bench_harness.c).
if(NOT KILN_TESTS_STRESS_ONLY)
  # The cmocka tests of the library link it (they are auto-registered from tests/unit).
  foreach(t test_unit_test_bench_stats test_unit_test_bench_harness)
    if(TARGET ${t} AND TARGET kiln_bench)
      target_link_libraries(${t} PRIVATE kiln_bench)
    endif()
  endforeach()

  # Baselines include no kiln header and reference no kiln_ symbol (design.md).
  add_test(NAME bench.baselines_no_kiln_symbols
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/check_baselines.sh ${CMAKE_NM}
            $<TARGET_FILE:kiln_bench_baselines> ${PROJECT_SOURCE_DIR}/bench)
  kiln_test_properties(bench.baselines_no_kiln_symbols LABELS unit)

  if(TARGET kiln_cli)
    # `kiln bench run cpu --quick --json F` measures every goal case, and F validates
    # against schemas/bench.json (with Debian's /usr/bin/python3).
    add_test(NAME bench.run_cpu_quick_json
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_cpu_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json
              ${CMAKE_CURRENT_BINARY_DIR}/bench-cpu-quick.json)
    kiln_test_properties(bench.run_cpu_quick_json LABELS cpu unit TIMEOUT 300)

    # Usage errors (unknown suite, compare not yet, bad options) exit 2; list works.
    add_test(NAME bench.cli_usage
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/cli_usage.sh $<TARGET_FILE:kiln_cli>)
    kiln_test_properties(bench.cli_usage LABELS unit)
  endif()
endif()
