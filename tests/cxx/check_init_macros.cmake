# SPDX-License-Identifier: MIT
# cmake -DINCLUDE_DIR=include/kiln -DSOURCE=tests/cxx/header_test.cpp
#       [-DMPI_SOURCE=tests/cxx/mpi_header_test.cpp] -P check_init_macros.cmake
# Fails when a KILN_*_INIT macro of the public headers is not used by the C++ header
# test, so a new option struct cannot skip the C++ compile check.
file(GLOB headers ${INCLUDE_DIR}/*.h)
file(READ ${SOURCE} source)
# include/kiln/mpi.h needs <mpi.h>: its macros are used by MPI_SOURCE (built only where
# an MPI is found, tests/mpi.cmake), checked here either way.
if(MPI_SOURCE)
  file(READ ${MPI_SOURCE} mpi_source)
  string(APPEND source "\n${mpi_source}")
endif()
set(missing "")
foreach(h ${headers})
  file(STRINGS ${h} defines REGEX "^[ \t]*#[ \t]*define[ \t]+KILN_[A-Z0-9_]*_INIT[ \t({]")
  foreach(d ${defines})
    string(REGEX MATCH "KILN_[A-Z0-9_]*_INIT" macro "${d}")
    string(REGEX MATCH "[^A-Za-z0-9_]${macro}[^A-Za-z0-9_]" used "${source}")
    if(NOT used)
      get_filename_component(hname ${h} NAME)
      list(APPEND missing "${macro} (kiln/${hname})")
    endif()
  endforeach()
endforeach()
if(missing)
  list(JOIN missing "\n  " text)
  message(FATAL_ERROR "tests/cxx/header_test.cpp does not use:\n  ${text}\n"
                      "add a variable initialised with each to the test")
endif()
message(STATUS "every KILN_*_INIT macro is used by ${SOURCE}")
