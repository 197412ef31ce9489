# SPDX-License-Identifier: MIT
# The compile cache's benchmark suite (bench/cache_suite.c) runs quick on PoCL, in a
# cache directory of its own: every case against its baseline, schema-valid JSON (no
# timing asserted). Not in the TSan tree (stress tests only there).
if(KILN_TESTS_STRESS_ONLY OR NOT TARGET kiln_cli)
  return()
endif()
add_test(NAME bench.run_cache_quick
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_cache_quick.sh $<TARGET_FILE:kiln_cli>
          /usr/bin/python3 ${PROJECT_SOURCE_DIR}/scripts/validate-json.py
          ${PROJECT_SOURCE_DIR}/schemas/bench.json ${CMAKE_CURRENT_BINARY_DIR}/bench-cache-quick)
kiln_test_properties(bench.run_cache_quick LABELS opencl unit TIMEOUT 300)
