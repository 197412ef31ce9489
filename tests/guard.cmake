# SPDX-License-Identifier: MIT
# The host-range guard (design.md "Buffers, tokens and host access"; docs/async.md),
# included by tests/CMakeLists.txt. Only in AddressSanitizer trees (KILN_SANITIZE=asan),
# where kiln poisons the host memory of every _async read and write until a wait
# observes its completion; elsewhere nothing is registered, so nothing counts as skipped.
#   guard.<variant> (positive): guard/guard_helper.c touches the range before a wait;
#       passes only when the output has ASan's summary line for a use-after-poison at
#       the helper's line marked `guard-touch: <variant>` (found here, so editing the
#       helper cannot leave a stale line number behind).
#   guard.<variant> (negative): touches after a covering wait; must exit 0 with no
#       AddressSanitizer report.
# Labels: cpu;unit;guard. The same variants run on the first OpenCL device (PoCL) as
# guard.opencl.<variant> (labels opencl;unit;guard, KILN_TEST_BACKEND=opencl): PoCL
# copies into and out of the poisoned range with libc memcpy from its own threads,
# which tests/asan.supp's `interceptor_via_lib:libpocl.so` suppresses (only reports
# whose interceptor caller is in libpocl.so; the helper's own touches still report).
if(NOT KILN_SANITIZE STREQUAL "asan" OR KILN_TESTS_STRESS_ONLY)
  return()
endif()

set(KILN_GUARD_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/guard/guard_helper.c)
add_executable(kiln_guard_helper ${KILN_GUARD_SOURCE})
set_target_properties(kiln_guard_helper PROPERTIES
  OUTPUT_NAME guard_helper RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/guard)
target_compile_options(kiln_guard_helper PRIVATE ${KILN_TEST_C_WARNINGS})
target_compile_definitions(kiln_guard_helper PRIVATE _GNU_SOURCE)
target_link_libraries(kiln_guard_helper PRIVATE kiln Threads::Threads)
add_dependencies(kiln-tests kiln_guard_helper)

file(READ ${KILN_GUARD_SOURCE} kiln_guard_text)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${KILN_GUARD_SOURCE})

# kiln_guard_line(<variant> <out-var>): the line of `guard-touch: <variant> */`.
function(kiln_guard_line variant out)
  string(FIND "${kiln_guard_text}" "guard-touch: ${variant} */" pos)
  if(pos LESS 0)
    message(FATAL_ERROR "tests/guard.cmake: no 'guard-touch: ${variant}' marker in ${KILN_GUARD_SOURCE}")
  endif()
  string(SUBSTRING "${kiln_guard_text}" 0 ${pos} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines n)
  math(EXPR line "${n} + 1")
  set(${out} ${line} PARENT_SCOPE)
endfunction()

# kiln_guard_register(<test-prefix> <backend>)
function(kiln_guard_register prefix backend)
  foreach(variant read_early write_src_early write_src_modified_early released_early
                  overlap_touch_overlap)
    kiln_guard_line(${variant} line)
    add_test(NAME ${prefix}${variant} COMMAND kiln_guard_helper ${variant})
    kiln_test_properties(${prefix}${variant} LABELS ${backend} unit guard)
    set_property(TEST ${prefix}${variant} APPEND PROPERTY ENVIRONMENT
                 "KILN_TEST_BACKEND=${backend}")
    # ASan's summary names the top frame: the helper's touching line (file:line:column).
    set_tests_properties(${prefix}${variant} PROPERTIES PASS_REGULAR_EXPRESSION
      "SUMMARY: AddressSanitizer: use-after-poison [^\n]*guard_helper\\.c:${line}[^0-9]")
  endforeach()

  # A range freed by the program after a covering destroy: a later wait must not hide
  # the use after free (ASan reports it as such at the marked line).
  foreach(variant freed_after_buffer_destroy)
    kiln_guard_line(${variant} line)
    add_test(NAME ${prefix}${variant} COMMAND kiln_guard_helper ${variant})
    kiln_test_properties(${prefix}${variant} LABELS ${backend} unit guard)
    set_property(TEST ${prefix}${variant} APPEND PROPERTY ENVIRONMENT
                 "KILN_TEST_BACKEND=${backend}")
    set_tests_properties(${prefix}${variant} PROPERTIES PASS_REGULAR_EXPRESSION
      "SUMMARY: AddressSanitizer: heap-use-after-free [^\n]*guard_helper\\.c:${line}[^0-9]")
  endforeach()

  foreach(variant after_wait after_buffer_destroy after_stream_synchronize after_event_synchronize
                  after_context_synchronize after_context_destroy after_stream_destroy
                  overlap_first_only_part)
    add_test(NAME ${prefix}${variant} COMMAND kiln_guard_helper ${variant})
    kiln_test_properties(${prefix}${variant} LABELS ${backend} unit guard)
    set_property(TEST ${prefix}${variant} APPEND PROPERTY ENVIRONMENT
                 "KILN_TEST_BACKEND=${backend}")
    set_tests_properties(${prefix}${variant} PROPERTIES FAIL_REGULAR_EXPRESSION
      "AddressSanitizer|LeakSanitizer|use-after-poison")
  endforeach()
endfunction()

kiln_guard_register(guard. cpu)
kiln_guard_register(guard.opencl. opencl)
