# SPDX-License-Identifier: MIT
# The hybrid dispatcher (src/graph/hybrid.c, docs/hybrid.md): a part of libkiln above the
# public API. Included from the top-level CMakeLists.txt where the library's sources are
# listed; kept in its own file so that src/graph's other parts list themselves apart
# (and added only once should a glob of src/graph/*.c list it already).
set(_kiln_hybrid_src ${CMAKE_CURRENT_LIST_DIR}/hybrid.c)
if(NOT _kiln_hybrid_src IN_LIST KILN_SOURCES)
  list(APPEND KILN_SOURCES ${_kiln_hybrid_src})
endif()
