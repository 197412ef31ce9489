# SPDX-License-Identifier: MIT
# The kiln dialect's comparisons of tests/unit/test_dialect_cpu.c once more against CUDA
# (KILN_DIALECT_OTHER=cuda) instead of OpenCL: label `cuda`, so they run on the lent GPU
# machine (scripts/gpu-check.sh) and exit 77 (skipped) where no CUDA device is.
if(KILN_TESTS_STRESS_ONLY OR NOT TARGET test_unit_test_dialect_cpu)
  return()
endif()
foreach(t vecadd_matches_pocl saxpy_matches_pocl reduce_with_barriers_matches_pocl
          stencil2d_matches_pocl guard_sizes_match_pocl ids_in_3d_match_pocl
          barrier_in_helper_matches_pocl histograms_match_pocl counter_hands_out_every_slot_once
          compare_exchange_has_one_winner every_atomic_operation_matches_pocl
          math_builtins_agree_with_pocl)
  add_test(NAME test_dialect_cpu.cuda.${t} COMMAND test_unit_test_dialect_cpu ${t})
  kiln_test_properties(test_dialect_cpu.cuda.${t} LABELS cuda unit)
  set_tests_properties(test_dialect_cpu.cuda.${t} PROPERTIES SKIP_RETURN_CODE 77)
  set_property(TEST test_dialect_cpu.cuda.${t} APPEND PROPERTY ENVIRONMENT KILN_DIALECT_OTHER=cuda)
endforeach()

# The same for the scoped_atomics level's kernels (tests/unit/test_levels.c).
if(TARGET test_unit_test_levels)
  foreach(t last_group_sums_on_cpu_and_pocl every_scoped_operation_matches
            every_scoped_operation_64)
    add_test(NAME test_levels.cuda.${t} COMMAND test_unit_test_levels ${t})
    kiln_test_properties(test_levels.cuda.${t} LABELS cuda unit)
    set_tests_properties(test_levels.cuda.${t} PROPERTIES SKIP_RETURN_CODE 77)
    set_property(TEST test_levels.cuda.${t} APPEND PROPERTY ENVIRONMENT KILN_DIALECT_OTHER=cuda)
  endforeach()
endif()

# ASan tree only: a dialect kernel's out-of-bounds write on the CPU backend is reported
# by ASan at the kernel's own line (tests/guard/dialect_oob.c); the clean run is not.
if(KILN_SANITIZE STREQUAL "asan")
  add_executable(kiln_dialect_oob ${CMAKE_CURRENT_SOURCE_DIR}/guard/dialect_oob.c)
  set_target_properties(kiln_dialect_oob PROPERTIES
    OUTPUT_NAME dialect_oob RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/guard)
  target_compile_options(kiln_dialect_oob PRIVATE ${KILN_TEST_C_WARNINGS})
  target_link_libraries(kiln_dialect_oob PRIVATE kiln)
  add_dependencies(kiln-tests kiln_dialect_oob)
  add_test(NAME dialect.asan_reports_kernel_line COMMAND kiln_dialect_oob)
  kiln_test_properties(dialect.asan_reports_kernel_line LABELS cpu unit)
  set_tests_properties(dialect.asan_reports_kernel_line PROPERTIES
    PASS_REGULAR_EXPRESSION "heap-buffer-overflow[^\n]*\n[^\n]*\n[^\n]*#0 [^\n]* in oob [^\n]*<source>:3")
  add_test(NAME dialect.asan_clean_kernel_no_report COMMAND kiln_dialect_oob clean)
  kiln_test_properties(dialect.asan_clean_kernel_no_report LABELS cpu unit)
  set_tests_properties(dialect.asan_clean_kernel_no_report PROPERTIES
    PASS_REGULAR_EXPRESSION "no report" FAIL_REGULAR_EXPRESSION "AddressSanitizer")
endif()

# A program linked without libm runs a CPU kernel calling the math builtins: kiln links
# libm into every kernel object (libkiln.so itself does not need libm).
if(NOT KILN_TESTS_STRESS_ONLY)
  add_executable(kiln_nolibm_math nolibm/math_kernel.c)
  target_link_libraries(kiln_nolibm_math PRIVATE kiln)
  set_target_properties(kiln_nolibm_math PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_dependencies(kiln-tests kiln_nolibm_math)
  add_test(NAME cpu.kernel_math_without_libm
           COMMAND kiln_nolibm_math ${PROJECT_SOURCE_DIR}/tests/kernels/math.kiln)
  kiln_test_properties(cpu.kernel_math_without_libm LABELS cpu unit)
endif()
