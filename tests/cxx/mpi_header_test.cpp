// SPDX-License-Identifier: MIT
// include/kiln/mpi.h compiles as C++17 with -Wall -Wextra -Wpedantic -Werror, and its
// init macros initialise what they name (tests/mpi.cmake; header.init_macros_covered
// counts this file with header_test.cpp).
#include "kiln/mpi.h"

#include <cstdio>

#define EXPECT(c)                                            \
  do {                                                       \
    if (!(c)) {                                              \
      std::fprintf(stderr, "%d: %s failed\n", __LINE__, #c); \
      return 1;                                              \
    }                                                        \
  } while (0)

int main() {
  kiln_mpi_desc desc = KILN_MPI_DESC_INIT;
  EXPECT(desc.struct_size == sizeof(kiln_mpi_desc) && desc.context == nullptr);
  EXPECT(desc.backend == KILN_BACKEND_NONE && desc.chunk_bytes == 0 && desc.flags == 0);
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  EXPECT(info.struct_size == sizeof(kiln_mpi_info) && info.context == nullptr);
  kiln_mpi m = nullptr;
  // MPI is not initialised here: refused with a clear status, nothing written.
  EXPECT(kiln_mpi_init(MPI_COMM_WORLD, &desc, &m) == KILN_ERROR_INVALID_STATE && m == nullptr);
  kiln_future f = KILN_FUTURE_INIT;
  EXPECT(kiln_mpi_send_async(m, nullptr, nullptr, 0, 0, 0, 0, &f) == KILN_ERROR_INVALID_HANDLE);
  EXPECT(kiln_mpi_finalize(nullptr) == KILN_SUCCESS);
  return 0;
}
