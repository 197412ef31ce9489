# SPDX-License-Identifier: MIT
# Tests of the device pool that are not cmocka files (include/kiln/pool.h,
# docs/memory.md), included by tests/CMakeLists.txt after cli.cmake:
#   cli.pool_* : `kiln pool demo` (text, --json against schemas/pool-demo.json, usage);
#   bench.run_pool_quick : the pool suite on the mock device, JSON against the schema;
#   pool_asan.<variant> (ASan trees only; positive: freed, redzone, past_request,
#       debug_reissue): pool/pool_asan_helper.c touches a freed block, the redzone after a
#       block, the bytes of a block past what was asked for, or (KILN_POOL=debug) a freed
#       block after another allocation of its class; passes only when ASan reports a
#       use-after-poison at the helper's line marked `pool-touch: <variant>`;
#   pool_asan.owned (negative): touches only its own bytes, exits 0 with no report.
if(NOT KILN_TESTS_STRESS_ONLY AND TARGET kiln_cli AND COMMAND kiln_cli_test)
  kiln_cli_test(pool_demo_text --rc 0 --stdout "^kiln pool demo on cpu:0"
                --stdout "hit rate" --stdout "^after kiln_pool_compact:"
                --stdout "reserved 0 B" --stdout "all intact"
                -- pool demo --device cpu:0 --rounds 400)
  kiln_cli_test(pool_demo_json --rc 0 --schema ${PROJECT_SOURCE_DIR}/schemas/pool-demo.json
                ${KILN_CLI_VALIDATE} --stdout "\"bad_patterns\": 0"
                -- pool demo --device cpu:0 --rounds 400 --json)
  kiln_cli_test(pool_demo_opencl_json --rc 0
                --schema ${PROJECT_SOURCE_DIR}/schemas/pool-demo.json ${KILN_CLI_VALIDATE}
                --stdout "\"backend\": \"opencl\""
                -- pool demo --device opencl:0 --rounds 200 --json)
  set_property(TEST cli.pool_demo_opencl_json APPEND PROPERTY LABELS opencl)
  kiln_cli_test(pool_help --rc 0 --stdout "^Usage: kiln pool demo" -- pool --help)
  kiln_cli_test(pool_usage_no_demo --rc 2 --no-stdout --stderr "missing the subcommand" -- pool)
  kiln_cli_test(pool_usage_bad_rounds --rc 2 --no-stdout --stderr "--rounds '0'"
                -- pool demo --rounds 0)
  if(NOT KILN_SANITIZE)
    add_test(NAME bench.run_pool_quick
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/pool/bench_pool_quick.sh $<TARGET_FILE:kiln_cli>
              /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
              ${PROJECT_SOURCE_DIR}/schemas/bench.json ${CMAKE_CURRENT_BINARY_DIR}/bench-pool-quick)
    kiln_test_properties(bench.run_pool_quick LABELS mock unit TIMEOUT 300)
  endif()
endif()

if(NOT KILN_SANITIZE STREQUAL "asan" OR KILN_TESTS_STRESS_ONLY)
  return()
endif()

set(KILN_POOL_HELPER ${CMAKE_CURRENT_SOURCE_DIR}/pool/pool_asan_helper.c)
add_executable(kiln_pool_asan_helper ${KILN_POOL_HELPER})
set_target_properties(kiln_pool_asan_helper PROPERTIES
  OUTPUT_NAME pool_asan_helper RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/pool)
target_compile_options(kiln_pool_asan_helper PRIVATE ${KILN_TEST_C_WARNINGS})
target_compile_definitions(kiln_pool_asan_helper PRIVATE _GNU_SOURCE)
target_link_libraries(kiln_pool_asan_helper PRIVATE kiln)
add_dependencies(kiln-tests kiln_pool_asan_helper)

file(READ ${KILN_POOL_HELPER} kiln_pool_helper_text)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${KILN_POOL_HELPER})
foreach(variant freed redzone past_request debug_reissue)
  string(FIND "${kiln_pool_helper_text}" "pool-touch: ${variant} */" pos)
  if(pos LESS 0)
    message(FATAL_ERROR "tests/pool.cmake: no 'pool-touch: ${variant}' marker in ${KILN_POOL_HELPER}")
  endif()
  string(SUBSTRING "${kiln_pool_helper_text}" 0 ${pos} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines n)
  math(EXPR line "${n} + 1")
  add_test(NAME pool_asan.${variant} COMMAND kiln_pool_asan_helper ${variant})
  kiln_test_properties(pool_asan.${variant} LABELS cpu unit)
  if(variant STREQUAL "debug_reissue")
    set_property(TEST pool_asan.${variant} APPEND PROPERTY ENVIRONMENT KILN_POOL=debug)
  endif()
  set_tests_properties(pool_asan.${variant} PROPERTIES PASS_REGULAR_EXPRESSION
    "SUMMARY: AddressSanitizer: use-after-poison [^\n]*pool_asan_helper\\.c:${line}[^0-9]")
endforeach()
add_test(NAME pool_asan.owned COMMAND kiln_pool_asan_helper owned)
kiln_test_properties(pool_asan.owned LABELS cpu unit)
set_tests_properties(pool_asan.owned PROPERTIES FAIL_REGULAR_EXPRESSION "AddressSanitizer")
