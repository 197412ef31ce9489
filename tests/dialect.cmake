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
