# SPDX-License-Identifier: MIT
# The tree's own rules, checked in the Release tree only (they read sources, not
# builds): included by tests/CMakeLists.txt.
#   packaging.layering  the include rules of the layers (tests/check_layering.sh;
#                       docs/architecture.md)
#   packaging.format    every C source as clang-format-14 writes it (check_format.sh);
#                       skipped (77), visibly, where clang-format-14 is missing
if(KILN_SANITIZE OR KILN_TESTS_STRESS_ONLY)
  return()
endif()
add_test(NAME packaging.layering
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_layering.sh ${CMAKE_SOURCE_DIR})
kiln_test_properties(packaging.layering LABELS unit packaging TIMEOUT 60)
add_test(NAME packaging.format
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_format.sh ${CMAKE_SOURCE_DIR})
kiln_test_properties(packaging.format LABELS unit packaging TIMEOUT 120)
