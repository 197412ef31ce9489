# SPDX-License-Identifier: MIT
# The OpenCL backend without a driver (issue 6), included by tests/CMakeLists.txt:
# tests/opencl/nodriver.c run once per case with that case's environment (kiln probes
# a backend once per process). Labels opencl;unit: they must run (never skip) here.
#   opencl_nodriver.no_platform       OCL_ICD_VENDORS=<build>/opencl-no-vendors (empty)
#   opencl_nodriver.relative_library  KILN_OPENCL_LIBRARY=relative/libOpenCL.so.1
#   opencl_nodriver.missing_library   KILN_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1
# Below: test_opencl.events_needed.* (four tests of tests/backend/test_opencl.c with
# KILN_OPENCL_EVENTS=needed) and opencl_calls.* (tests/opencl/call_stream.c: OpenCL
# calls per small op, through the counting layer tests/opencl/cl_calls.c).
if(KILN_TESTS_STRESS_ONLY)
  return()
endif()

add_executable(kiln_opencl_nodriver ${CMAKE_CURRENT_SOURCE_DIR}/opencl/nodriver.c)
set_target_properties(kiln_opencl_nodriver PROPERTIES
  OUTPUT_NAME opencl_nodriver RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/opencl)
target_compile_options(kiln_opencl_nodriver PRIVATE ${KILN_TEST_C_WARNINGS})
target_compile_definitions(kiln_opencl_nodriver PRIVATE _GNU_SOURCE)
target_link_libraries(kiln_opencl_nodriver PRIVATE kiln kiln_testsupport PkgConfig::CMOCKA
                      Threads::Threads)
add_dependencies(kiln-tests kiln_opencl_nodriver)

set(KILN_OPENCL_NO_VENDORS ${CMAKE_BINARY_DIR}/opencl-no-vendors)
file(MAKE_DIRECTORY ${KILN_OPENCL_NO_VENDORS})
set(kiln_nodriver_env_no_platform "OCL_ICD_VENDORS=${KILN_OPENCL_NO_VENDORS}")
set(kiln_nodriver_env_relative_library "KILN_OPENCL_LIBRARY=relative/libOpenCL.so.1")
set(kiln_nodriver_env_missing_library "KILN_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1")
foreach(case no_platform relative_library missing_library)
  add_test(NAME opencl_nodriver.${case} COMMAND kiln_opencl_nodriver ${case})
  kiln_test_properties(opencl_nodriver.${case} LABELS opencl unit)
  set_property(TEST opencl_nodriver.${case} APPEND PROPERTY ENVIRONMENT
               "${kiln_nodriver_env_${case}}" "KILN_DEVICE=" "KILN_BACKEND=")
endforeach()

# tests/backend/test_opencl.c's tests of knob 1 (src/backends/opencl/submit.c) again with
# KILN_OPENCL_EVENTS=needed: on PoCL every command carries its cl_event by default, so
# commands without one, and the covering markers waits then need, run only here.
foreach(name command_events_follow_the_platform burst_then_query_completes
        other_stream_sees_a_burst_without_events timing_after_a_burst_keeps_order)
  add_test(NAME test_opencl.events_needed.${name} COMMAND test_backend_test_opencl ${name})
  kiln_test_properties(test_opencl.events_needed.${name} LABELS opencl unit)
  set_property(TEST test_opencl.events_needed.${name} APPEND PROPERTY ENVIRONMENT
               "KILN_TEST_BACKEND=opencl" "KILN_OPENCL_EVENTS=needed")
endforeach()

# tests/opencl/call_stream.c: the OpenCL calls kiln makes per small op, counted by the
# layer tests/opencl/cl_calls.c (x86-64 trampolines) loaded as kiln's libOpenCL.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  add_library(kiln_cl_calls MODULE ${CMAKE_CURRENT_SOURCE_DIR}/opencl/cl_calls.c)
  set_target_properties(kiln_cl_calls PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/opencl)
  target_compile_options(kiln_cl_calls PRIVATE ${KILN_TEST_C_WARNINGS})
  target_include_directories(kiln_cl_calls PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(kiln_cl_calls PRIVATE ${CMAKE_DL_LIBS})
  add_executable(kiln_opencl_call_stream ${CMAKE_CURRENT_SOURCE_DIR}/opencl/call_stream.c)
  set_target_properties(kiln_opencl_call_stream PROPERTIES
    OUTPUT_NAME call_stream RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/opencl)
  target_compile_options(kiln_opencl_call_stream PRIVATE ${KILN_TEST_C_WARNINGS})
  target_compile_definitions(kiln_opencl_call_stream PRIVATE _GNU_SOURCE)
  target_link_libraries(kiln_opencl_call_stream PRIVATE kiln kiln_testsupport PkgConfig::CMOCKA
                        Threads::Threads ${CMAKE_DL_LIBS})
  add_dependencies(kiln-tests kiln_opencl_call_stream kiln_cl_calls)
  foreach(name burst_and_wait_all blocking_transfer_is_one_call launches_set_no_hidden_arguments)
    add_test(NAME opencl_calls.${name} COMMAND kiln_opencl_call_stream ${name})
    kiln_test_properties(opencl_calls.${name} LABELS opencl unit)
    set_property(TEST opencl_calls.${name} APPEND PROPERTY ENVIRONMENT
                 "KILN_OPENCL_LIBRARY=$<TARGET_FILE:kiln_cl_calls>" "KILN_TEST_BACKEND=opencl")
  endforeach()
endif()
