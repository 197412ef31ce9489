# SPDX-License-Identifier: MIT
# The device pool's ASan poisoning (include/kiln/pool.h, docs/memory.md), included by
# tests/CMakeLists.txt; AddressSanitizer trees only (elsewhere nothing is registered).
#   pool_asan.<variant> (positive: freed, redzone, past_request): pool/pool_asan_helper.c
#       touches a freed block, the redzone after a block, or the bytes of a block past
#       what was asked for; passes only when ASan reports a use-after-poison at the
#       helper's line marked `pool-touch: <variant>`.
#   pool_asan.owned (negative): touches only its own bytes, exits 0 with no report.
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
foreach(variant freed redzone past_request)
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
  set_tests_properties(pool_asan.${variant} PROPERTIES PASS_REGULAR_EXPRESSION
    "SUMMARY: AddressSanitizer: use-after-poison [^\n]*pool_asan_helper\\.c:${line}[^0-9]")
endforeach()
add_test(NAME pool_asan.owned COMMAND kiln_pool_asan_helper owned)
kiln_test_properties(pool_asan.owned LABELS cpu unit)
set_tests_properties(pool_asan.owned PROPERTIES FAIL_REGULAR_EXPRESSION "AddressSanitizer")
