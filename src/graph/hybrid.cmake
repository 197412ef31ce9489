# SPDX-License-Identifier: MIT
# The hybrid dispatcher (src/graph/hybrid.c, docs/hybrid.md): a part of libkiln above the
# public API. Included from the top-level CMakeLists.txt where the library's sources are
# listed; kept in its own file so that src/graph's other parts list themselves apart.
list(APPEND KILN_SOURCES ${CMAKE_CURRENT_LIST_DIR}/hybrid.c)
