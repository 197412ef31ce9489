# SPDX-License-Identifier: MIT
# Tracing tests (included by tests/CMakeLists.txt after the auto-registration): the
# trace tests read their traces back with jansson and validate them against
# schemas/trace.json with scripts/validate-json.py, found through KILN_SOURCE_DIR.
if(NOT TARGET PkgConfig::JANSSON)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET GLOBAL jansson)
endif()
foreach(t test_unit_test_trace test_unit_test_trace_mock test_stress_test_trace_threads
          test_unit_test_trace_opencl test_unit_test_trace_cuda_fake)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE PkgConfig::JANSSON)
    target_compile_definitions(${t} PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()

# ---- libkiln still loads with dlopen (cffi, ctypes): its initial-exec TLS — the
# trace's per-thread pointers are the hot users — must fit glibc's static TLS reserve
# (a per-thread table there once made dlopen fail: "cannot allocate memory in static
# TLS block"). Not in the sanitizer trees, whose runtimes must be loaded first. ----
if(NOT KILN_SANITIZE)
  add_test(NAME trace.libkiln_loads_with_dlopen
           COMMAND /usr/bin/python3 -c "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
                   $<TARGET_FILE:kiln>)
  kiln_test_properties(trace.libkiln_loads_with_dlopen LABELS cpu unit TIMEOUT 30)
endif()

# ---- kiln trace summary (labels cpu;unit;cli, like tests/cli.cmake) ----
if(NOT KILN_TESTS_STRESS_ONLY AND TARGET kiln_cli AND COMMAND kiln_cli_test)
  set(case ${PROJECT_SOURCE_DIR}/tests/trace/summary_case.json)
  # The figures of the hand-computed case (tests/trace/summary_case.md).
  kiln_cli_test(trace_summary_hand_computed --rc 0
                --stdout "5 ops over 105.000 us.*two or more streams busy for 0.000 us \\(0.0%\\)"
                --stdout "^  k  +2 +60.000 +30.000 +20.000 +40.000 +40.000 +0 +0.000$"
                --stdout "^  k2 +1 +5.000 +5.000 +5.000 +5.000 +5.000 "
                --stdout "^  launch +3 +65.000 +21.667 +20.000 +40.000 +40.000 "
                --stdout "^  write +1 +10.000 +10.000 .* 1000 +0.100$"
                --stdout "^  read +1 +10.000 +10.000 .* 2000 +0.200$"
                --stdout "^  stream 1 \\(context 0\\) +3 +70.000 +66.7%"
                --stdout "^  stream 2 \\(context 0\\) +2 +15.000 +14.3%"
                --stdout "^ +90.000 us  stream 1 \\(context 0\\) #1 \\(write\\) -> stream 2 \\(context 0\\) #2 \\(k2\\)"
                --stdout "^ +10.000 us  stream 1 \\(context 0\\) #3 \\(k\\) -> stream 2 \\(context 0\\) #1 \\(read\\)"
                -- trace summary ${case})
  kiln_cli_test(trace_summary_json --rc 0
                --schema ${PROJECT_SOURCE_DIR}/schemas/trace-summary.json ${KILN_CLI_VALIDATE}
                --stdout "\"extent_us\": 105,"
                --stdout "\"kernel\": \"k\",$" --stdout "\"p95_us\": 40,"
                --stdout "\"gb_per_s\": 0.2$"
                --stdout "\"utilisation\": 0.666666"
                --stdout "\"gap_us\": 90,"
                -- trace summary ${case} --json)
  kiln_cli_test(trace_summary_overlap --rc 0
                --stdout "5 ops over 70.000 us.*two or more streams busy for 30.000 us \\(42.9%\\)"
                --stdout "^  track 1000001 +2 +50.000 +71.4%"
                -- trace summary ${PROJECT_SOURCE_DIR}/tests/trace/overlap_case.json)
  # Device-timed spans replace their ops' observed ones (tests/trace/device_case.json).
  kiln_cli_test(trace_summary_prefers_device_spans --rc 0
                --stdout "3 ops over 120.000 us"
                --stdout "^2 of them timed on the device"
                --stdout "^  k  +3 +80.000 +26.667 +20.000 +50.000 +50.000 "
                --stdout "^  stream 1 \\(context 0\\) +3 +80.000 +66.7%"
                -- trace summary ${PROJECT_SOURCE_DIR}/tests/trace/device_case.json)
  add_test(NAME cli.trace_device_case_is_a_valid_trace
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
                   ${PROJECT_SOURCE_DIR}/schemas/trace.json
                   ${PROJECT_SOURCE_DIR}/tests/trace/device_case.json)
  kiln_test_properties(cli.trace_device_case_is_a_valid_trace LABELS cpu unit cli TIMEOUT 60)
  add_test(NAME cli.trace_summary_case_is_a_valid_trace
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
                   ${PROJECT_SOURCE_DIR}/schemas/trace.json ${case})
  kiln_test_properties(cli.trace_summary_case_is_a_valid_trace LABELS cpu unit cli TIMEOUT 60)
  # A trace of 40 000 ops with a flow per op, in shuffled order: the summary indexes the
  # flows' finish events (it once searched the whole file for each flow: 78 s for 20 000
  # such ops, now well under a second). The timeout is a complexity guard with a wide
  # margin, not a measurement.
  add_test(NAME cli.trace_summary_many_flows
           COMMAND /bin/sh -c "/usr/bin/python3 $0 40000 chain-trace.json && exec /bin/sh $1 --rc 0 --stdout '40000 ops over' --stdout '^ +105.000 us  s2 #10000 \\(k\\) -> s1 #10001 \\(k\\)' -- $2 trace summary chain-trace.json"
                   ${PROJECT_SOURCE_DIR}/tests/trace/gen_flow_chain.py ${KILN_CLI_CHECK}
                   $<TARGET_FILE:kiln_cli>)
  kiln_test_properties(cli.trace_summary_many_flows LABELS cpu unit cli TIMEOUT 60)
  kiln_cli_test(trace_summary_missing_file --rc 1 --no-stdout
                --stderr "kiln trace summary: cannot read /nonexistent/t.json"
                -- trace summary /nonexistent/t.json)
  kiln_cli_test(trace_summary_directory --rc 1 --no-stdout
                --stderr "'${PROJECT_SOURCE_DIR}/tests/trace' is a directory: give the trace file"
                -- trace summary ${PROJECT_SOURCE_DIR}/tests/trace)
  kiln_cli_test(trace_summary_malformed --rc 1 --no-stdout
                --stderr "cannot read .*malformed JSON at line 1, column [0-9]+: "
                -- trace summary ${PROJECT_SOURCE_DIR}/tests/trace/summary_case.md)
  kiln_cli_test(trace_summary_not_a_trace --rc 1 --no-stdout
                --stderr "has no traceEvents array: not a trace"
                -- trace summary ${PROJECT_SOURCE_DIR}/schemas/info.json)
  kiln_cli_test(trace_usage_no_file --rc 2 --no-stdout --stderr "summary needs the trace FILE"
                -- trace summary)
  kiln_cli_test(trace_usage_unknown --rc 2 --no-stdout --stderr "unknown subcommand 'frob'"
                -- trace frob)
  kiln_cli_test(trace_help --rc 0 --stdout "^Usage: kiln trace summary FILE" -- trace --help)
  kiln_cli_test(info_says_nvtx --rc 0 --stdout "^Tracing: ranges and marks " -- info)
  # The README's recipe: trace the demo's work, then summarise it.
  add_test(NAME cli.trace_demo_then_summary
           COMMAND /bin/sh -c "rm -f \"$1\" && KILN_TRACE=\"$1\" \"$2\" demo >/dev/null && \"$2\" trace summary \"$1\" --json | /usr/bin/python3 \"$3\" \"$4\" - && \"$2\" trace summary \"$1\" | grep -E '^  launch +[0-9]+ '"
                   sh ${CMAKE_CURRENT_BINARY_DIR}/trace-demo.json $<TARGET_FILE:kiln_cli>
                   ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
                   ${PROJECT_SOURCE_DIR}/schemas/trace-summary.json)
  kiln_test_properties(cli.trace_demo_then_summary LABELS cpu unit cli TIMEOUT 120)
endif()
