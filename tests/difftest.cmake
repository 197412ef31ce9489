# SPDX-License-Identifier: MIT
# Differential testing of the CPU backend's barrier paths (tests/difftest/difftest.py,
# docs/kernels.md "Barriers on PoCL"): generated kernels with barriers in uniform
# control flow, run with loop fission and on fibers, must agree byte for byte. make
# check runs a few seeds in the Release tree; longer runs by hand:
#   tests/difftest/difftest.py --drv build/bin/difftest_drv --seeds 0:1000 [--opencl]
if(KILN_TESTS_STRESS_ONLY OR KILN_SANITIZE)
  return()
endif()
add_executable(difftest_drv ${CMAKE_CURRENT_SOURCE_DIR}/difftest/difftest_drv.c)
target_link_libraries(difftest_drv PRIVATE kiln)
target_compile_options(difftest_drv PRIVATE ${KILN_WARNINGS})
set_target_properties(difftest_drv PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
add_dependencies(kiln-tests difftest_drv)
add_test(NAME difftest.fission_vs_fibers
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/difftest/difftest.py
                 --drv $<TARGET_FILE:difftest_drv> --seeds 0:8)
kiln_test_properties(difftest.fission_vs_fibers LABELS cpu unit TIMEOUT 300)
