# SPDX-License-Identifier: MIT
# The pinned host pool's AddressSanitizer poisoning (ASan trees only), included by
# tests/CMakeLists.txt: host_pool_asan.<variant> runs pool/host_pool_asan_helper.c;
# positive variants (freed, freed_on, past_request) pass only when ASan reports a
# use-after-poison at the helper's line marked `host-touch: <variant>`; `owned` touches
# only its own bytes (a reissued block after a guarded transfer of its previous life)
# and must exit 0 with no report.
if(NOT KILN_SANITIZE STREQUAL "asan" OR KILN_TESTS_STRESS_ONLY)
  return()
endif()

set(KILN_HOST_POOL_HELPER ${CMAKE_CURRENT_SOURCE_DIR}/pool/host_pool_asan_helper.c)
add_executable(kiln_host_pool_asan_helper ${KILN_HOST_POOL_HELPER})
set_target_properties(kiln_host_pool_asan_helper PROPERTIES
  OUTPUT_NAME host_pool_asan_helper RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/pool)
target_compile_options(kiln_host_pool_asan_helper PRIVATE ${KILN_TEST_C_WARNINGS})
target_compile_definitions(kiln_host_pool_asan_helper PRIVATE _GNU_SOURCE)
target_link_libraries(kiln_host_pool_asan_helper PRIVATE kiln)
add_dependencies(kiln-tests kiln_host_pool_asan_helper)

file(READ ${KILN_HOST_POOL_HELPER} kiln_host_pool_helper_text)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${KILN_HOST_POOL_HELPER})
foreach(variant freed freed_on past_request)
  string(FIND "${kiln_host_pool_helper_text}" "host-touch: ${variant} */" pos)
  if(pos LESS 0)
    message(FATAL_ERROR "tests/host_pool.cmake: no 'host-touch: ${variant}' marker in "
                        "${KILN_HOST_POOL_HELPER}")
  endif()
  string(SUBSTRING "${kiln_host_pool_helper_text}" 0 ${pos} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines n)
  math(EXPR line "${n} + 1")
  add_test(NAME host_pool_asan.${variant} COMMAND kiln_host_pool_asan_helper ${variant})
  kiln_test_properties(host_pool_asan.${variant} LABELS cpu unit)
  set_tests_properties(host_pool_asan.${variant} PROPERTIES PASS_REGULAR_EXPRESSION
    "SUMMARY: AddressSanitizer: use-after-poison [^\n]*host_pool_asan_helper\\.c:${line}[^0-9]")
endforeach()
add_test(NAME host_pool_asan.owned COMMAND kiln_host_pool_asan_helper owned)
kiln_test_properties(host_pool_asan.owned LABELS cpu unit)
set_tests_properties(host_pool_asan.owned PROPERTIES FAIL_REGULAR_EXPRESSION "AddressSanitizer")
