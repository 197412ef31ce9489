# SPDX-License-Identifier: MIT
# Tracing tests (included by tests/CMakeLists.txt after the auto-registration): the
# trace tests read their traces back with jansson and validate them against
# schemas/trace.json with scripts/validate-json.py, found through KILN_SOURCE_DIR.
if(NOT TARGET PkgConfig::JANSSON)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET GLOBAL jansson)
endif()
foreach(t test_unit_test_trace test_stress_test_trace_threads)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE PkgConfig::JANSSON)
    target_compile_definitions(${t} PRIVATE KILN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  endif()
endforeach()
