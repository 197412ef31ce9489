# SPDX-License-Identifier: MIT
# The CUDA backend's tests that are not plain cmocka files, included by
# tests/CMakeLists.txt (docs/cuda.md):
#   - the fake libcuda (tests/cuda/fake_libcuda.c), built from kiln's own declarations
#     as libkiln_fake_cuda.so and, without cuGetProcAddress_v2, libkiln_fake_cuda_old.so;
#   - the declarations check, generated from src/backends/cuda/cuda_decl.h by
#     tests/cuda/gen_decl_check.py and compiled against the toolkit's cuda.h/nvrtc.h
#     (a mismatch fails the build); it skips (77) only without toolkit headers;
#   - the environment of each tests/unit/test_cuda_*.c test (which library, which
#     configured behaviour of the fake), set here per test since the backend is probed
#     once per process;
#   - no kiln binary links libcuda, libnvrtc or libOpenCL (readelf -d);
#   - `kiln info --json` with the toolkit's stub library.
# The shared backend suite on the fake (backend `cuda-fake`, KILN_FAKE_CUDA_LAUNCH=emulate)
# is registered by tests/CMakeLists.txt from the files' kiln-test-backends lines.
# Labels: cuda-nogpu (never skipped here); the real-GPU tests carry `cuda`.
# ---- the fake libcuda (also in the TSan tree: tests/stress/test_cuda_fake_threads.c) ----
foreach(variant "" "_old")
  add_library(kiln_fake_cuda${variant} SHARED ${CMAKE_CURRENT_SOURCE_DIR}/cuda/fake_libcuda.c)
  target_include_directories(kiln_fake_cuda${variant} PRIVATE ${PROJECT_SOURCE_DIR}/src
                             ${CMAKE_CURRENT_SOURCE_DIR}/cuda)
  target_compile_options(kiln_fake_cuda${variant} PRIVATE ${KILN_TEST_C_WARNINGS})
  target_compile_definitions(kiln_fake_cuda${variant} PRIVATE _GNU_SOURCE)
  target_link_libraries(kiln_fake_cuda${variant} PRIVATE Threads::Threads)
  set_target_properties(kiln_fake_cuda${variant} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/cuda)
  add_dependencies(kiln-tests kiln_fake_cuda${variant})
endforeach()
target_compile_definitions(kiln_fake_cuda_old PRIVATE FAKE_OLD_DRIVER)
set(KILN_FAKE_CUDA $<TARGET_FILE:kiln_fake_cuda>)
set(KILN_FAKE_CUDA_OLD $<TARGET_FILE:kiln_fake_cuda_old>)
set(KILN_CUDA_STUB /usr/local/cuda/lib64/stubs/libcuda.so)
if(DEFINED ENV{CUDA_HOME} AND EXISTS "$ENV{CUDA_HOME}/lib64/stubs/libcuda.so")
  set(KILN_CUDA_STUB "$ENV{CUDA_HOME}/lib64/stubs/libcuda.so")
endif()
if(KILN_TESTS_STRESS_ONLY)
  return()
endif()

# ---- the declarations check ----
find_path(KILN_CUDA_INCLUDE_DIR cuda.h PATHS $ENV{CUDA_HOME}/include /usr/local/cuda/include
          NO_DEFAULT_PATH)
find_path(KILN_NVRTC_INCLUDE_DIR nvrtc.h PATHS $ENV{CUDA_HOME}/include /usr/local/cuda/include
          NO_DEFAULT_PATH)
find_package(Python3 COMPONENTS Interpreter)
if(KILN_CUDA_INCLUDE_DIR AND KILN_NVRTC_INCLUDE_DIR AND Python3_Interpreter_FOUND)
  set(decl ${PROJECT_SOURCE_DIR}/src/backends/cuda/cuda_decl.h)
  set(gen ${CMAKE_CURRENT_SOURCE_DIR}/cuda/gen_decl_check.py)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/cuda/cuda_decl_check.c)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/cuda
    COMMAND ${Python3_EXECUTABLE} ${gen} ${decl} ${out}
    DEPENDS ${decl} ${gen}
    COMMENT "Generating the CUDA declarations check from cuda_decl.h")
  add_executable(kiln_cuda_decl_check ${out})
  target_include_directories(kiln_cuda_decl_check PRIVATE ${PROJECT_SOURCE_DIR}/src)
  # The toolkit's headers as system headers: kiln's warnings apply to kiln's text only.
  target_include_directories(kiln_cuda_decl_check SYSTEM PRIVATE ${KILN_CUDA_INCLUDE_DIR}
                             ${KILN_NVRTC_INCLUDE_DIR})
  target_compile_options(kiln_cuda_decl_check PRIVATE ${KILN_TEST_C_WARNINGS})
  set_target_properties(kiln_cuda_decl_check PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/cuda)
  add_dependencies(kiln-tests kiln_cuda_decl_check)
  add_test(NAME cuda_decl.matches_toolkit COMMAND kiln_cuda_decl_check)
else()
  add_test(NAME cuda_decl.matches_toolkit
    COMMAND /bin/sh -c "echo 'no CUDA toolkit headers (cuda.h, nvrtc.h) or python3: skipped'; exit 77")
endif()
kiln_test_properties(cuda_decl.matches_toolkit LABELS cuda-nogpu unit)

# ---- no kiln binary links a vendor runtime ----
add_test(NAME cuda_links.no_vendor_runtime
  COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/cuda/check_no_vendor_links.sh
          $<TARGET_FILE:kiln> $<$<TARGET_EXISTS:kiln_cli>:$<TARGET_FILE:kiln_cli>>
          ${CMAKE_BINARY_DIR}/bin ${CMAKE_BINARY_DIR}/tests ${CMAKE_BINARY_DIR}/bench)
kiln_test_properties(cuda_links.no_vendor_runtime LABELS cuda-nogpu unit)

# ---- environment of the cmocka CUDA tests, per test ----
# kiln_cuda_env(<test> VAR=VALUE...)
function(kiln_cuda_env test)
  if(TEST ${test})
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT ${ARGN})
  endif()
endfunction()
set(L test_cuda_loader)
kiln_cuda_env(${L}.test_stub_library KILN_CUDA_LIBRARY=${KILN_CUDA_STUB})
kiln_cuda_env(${L}.test_no_library KILN_CUDA_LIBRARY=/nonexistent/libcuda.so)
kiln_cuda_env(${L}.test_relative_path_refused KILN_CUDA_LIBRARY=libcuda.so.1)
kiln_cuda_env(${L}.test_fake_two_devices KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA} KILN_FAKE_CUDA_DEVICES=2)
kiln_cuda_env(${L}.test_fake_no_device KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA} KILN_FAKE_CUDA_DEVICES=0)
kiln_cuda_env(${L}.test_fake_old_driver_without_v2 KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA_OLD})
kiln_cuda_env(${L}.test_fake_old_driver_version KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_VERSION=11080)
kiln_cuda_env(${L}.test_fake_init_fails KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_FAIL_ENTRY=cuInit KILN_FAKE_CUDA_FAIL_NTH=1)
kiln_cuda_env(${L}.test_fake_stub_answer KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_FAIL_ENTRY=cuGetProcAddress_v2 KILN_FAKE_CUDA_FAIL_NTH=1
              KILN_FAKE_CUDA_FAIL_CODE=34)
kiln_cuda_env(${L}.test_fake_missing_required_entry KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_HIDE=cuMemsetD16Async)
kiln_cuda_env(${L}.test_fake_missing_optional_entries KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_HIDE=cuLaunchHostFunc,cuDeviceGetUuid)
kiln_cuda_env(${L}.test_fake_enumeration_call_fails KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_DEVICES=2 KILN_FAKE_CUDA_FAIL_ENTRY=cuDeviceGetAttribute
              KILN_FAKE_CUDA_FAIL_NTH=3)
kiln_cuda_env(${L}.test_fake_nth_call_sweep KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA})
set(R test_cuda_fake_runtime)
foreach(t copies_and_fills async_tokens_and_streams timing_events native_handles
          mem_info sticky_error_and_reset kernel_arguments_checked launch_layout
          nvrtc_relative_path_refused)
  kiln_cuda_env(${R}.test_${t} KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA} KILN_FAKE_CUDA_LAUNCH=ok)
endforeach()
kiln_cuda_env(${R}.test_sticky_error_and_reset KILN_FAKE_CUDA_STICKY_NTH=3)
kiln_cuda_env(${R}.test_nvrtc_relative_path_refused KILN_NVRTC_LIBRARY=libnvrtc.so.13)
kiln_cuda_env(${R}.test_scoped_level_needs_sm_60 KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
              KILN_FAKE_CUDA_CC_MAJOR=5)

# ---- kiln info with the stub ----
if(TARGET kiln_cli)
  add_test(NAME cli.info_cuda_stub
    COMMAND /bin/sh ${PROJECT_SOURCE_DIR}/tests/cli/check.sh --rc 0
            --env KILN_CUDA_LIBRARY=${KILN_CUDA_STUB}
            --schema ${PROJECT_SOURCE_DIR}/schemas/info.json --python /usr/bin/python3
            --validator ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
            --stdout "\"name\": \"cuda\""
            --stdout "CUDA_ERROR_STUB_LIBRARY \\(34\\)"
            -- $<TARGET_FILE:kiln_cli> info --json)
  kiln_test_properties(cli.info_cuda_stub LABELS cuda-nogpu unit cli)
  add_test(NAME cli.info_cuda_fake
    COMMAND /bin/sh ${PROJECT_SOURCE_DIR}/tests/cli/check.sh --rc 0
            --env KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
            --stdout "^  cuda +available +1"
            --stdout "^  cuda:0 +gpu +kiln fake CUDA device 0"
            --stdout "^  cuda:0 is sm_90 \\(driver 13.0\\), PCI device 0000:65:00.0, 1980 MHz, memory 2619 MHz x 5120 bit \\(3352 GB/s peak\\)"
            -- $<TARGET_FILE:kiln_cli> info)
  kiln_test_properties(cli.info_cuda_fake LABELS cuda-nogpu unit cli)
endif()
# ---- device time in the trace (tests/unit/test_trace_cuda_fake.c) ----
foreach(t ops_get_device_spans event_create_failure_falls_back event_record_failure_falls_back
          elapsed_time_failure_falls_back timing_events_keep_their_time)
  kiln_cuda_env(test_trace_cuda_fake.${t} KILN_CUDA_LIBRARY=${KILN_FAKE_CUDA}
                KILN_FAKE_CUDA_LAUNCH=emulate)
endforeach()
