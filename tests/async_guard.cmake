# SPDX-License-Identifier: MIT
# The host-range guard under async integration (issue #19; docs/async.md), included by
# tests/CMakeLists.txt, in AddressSanitizer trees only (like tests/guard.cmake):
# guard/async_guard_helper.c runs one variant per test on cpu, opencl (PoCL) and mock.
#   positive: ASan's summary line must name use-after-poison at the helper's line
#     marked `async-guard-touch: <variant>` (found here);
#   negative: finishes with no AddressSanitizer report.
# when_any_pending_still_guarded holds a stream with a native C kernel: cpu and mock;
# mock (the CPU backend under a decorator) runs a sample of the variants.
if(NOT KILN_SANITIZE STREQUAL "asan" OR KILN_TESTS_STRESS_ONLY)
  return()
endif()

set(KILN_ASYNC_GUARD_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/guard/async_guard_helper.c)
add_executable(kiln_async_guard_helper ${KILN_ASYNC_GUARD_SOURCE})
set_target_properties(kiln_async_guard_helper PROPERTIES
  OUTPUT_NAME async_guard_helper RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/guard)
target_compile_options(kiln_async_guard_helper PRIVATE ${KILN_TEST_C_WARNINGS})
target_compile_definitions(kiln_async_guard_helper PRIVATE _GNU_SOURCE)
target_link_libraries(kiln_async_guard_helper PRIVATE kiln Threads::Threads)
add_dependencies(kiln-tests kiln_async_guard_helper)

file(READ ${KILN_ASYNC_GUARD_SOURCE} kiln_async_guard_text)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${KILN_ASYNC_GUARD_SOURCE})

function(kiln_async_guard_line variant out)
  string(FIND "${kiln_async_guard_text}" "async-guard-touch: ${variant} */" pos)
  if(pos LESS 0)
    message(FATAL_ERROR "tests/async_guard.cmake: no 'async-guard-touch: ${variant}' marker")
  endif()
  string(SUBSTRING "${kiln_async_guard_text}" 0 ${pos} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines n)
  math(EXPR line "${n} + 1")
  set(${out} ${line} PARENT_SCOPE)
endfunction()

function(kiln_async_guard_register backend)
  set(positive notoken_read_early notoken_write_src_early)
  set(negative notoken_after_stream_synchronize notoken_after_event_synchronize
               notoken_after_context_synchronize token_callback_touches
               event_callback_touches future_wait_and_then_touch)
  if(backend STREQUAL "mock") # the CPU backend's paths under a decorator: a sample
    set(positive notoken_read_early)
    set(negative notoken_after_stream_synchronize token_callback_touches)
  endif()
  if(NOT backend STREQUAL "opencl")
    list(APPEND positive when_any_pending_still_guarded)
  endif()
  foreach(variant ${positive})
    kiln_async_guard_line(${variant} line)
    set(name async_guard.${backend}.${variant})
    add_test(NAME ${name} COMMAND kiln_async_guard_helper ${variant})
    kiln_test_properties(${name} LABELS ${backend} unit guard)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "KILN_TEST_BACKEND=${backend}")
    if(backend STREQUAL "mock")
      set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "KILN_MOCK=1")
    endif()
    set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION
      "SUMMARY: AddressSanitizer: use-after-poison [^\n]*async_guard_helper\\.c:${line}[^0-9]")
  endforeach()
  foreach(variant ${negative})
    set(name async_guard.${backend}.${variant})
    add_test(NAME ${name} COMMAND kiln_async_guard_helper ${variant})
    kiln_test_properties(${name} LABELS ${backend} unit guard)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "KILN_TEST_BACKEND=${backend}")
    if(backend STREQUAL "mock")
      set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "KILN_MOCK=1")
    endif()
    set_tests_properties(${name} PROPERTIES FAIL_REGULAR_EXPRESSION
      "AddressSanitizer|LeakSanitizer|use-after-poison")
  endforeach()
endfunction()

kiln_async_guard_register(cpu)
kiln_async_guard_register(opencl)
kiln_async_guard_register(mock)
