/* SPDX-License-Identifier: MIT */
/* Built against an installed kiln by tests/packaging_test.sh: include/kiln/mpi.h and
 * libkiln_mpi link, and refuse a call before MPI_Init with a clear status (the program
 * runs without mpirun). */
#include <stdio.h>

#include <kiln/mpi.h>

int main(void) {
  kiln_mpi m = NULL;
  kiln_status st = kiln_mpi_init(MPI_COMM_WORLD, NULL, &m);
  if (st != KILN_ERROR_INVALID_STATE || m != NULL) {
    fprintf(stderr, "kiln_mpi_init before MPI_Init: %s\n", kiln_status_name(st));
    return 1;
  }
  printf("libkiln_mpi: %s\n", kiln_last_error()->message);
  return kiln_mpi_finalize(NULL) == KILN_SUCCESS ? 0 : 1;
}
