/* SPDX-License-Identifier: MIT */
/* Raw baseline of the mpi suite's pingpong_*_raw cases: MPI_Send / MPI_Recv of plain
 * host memory (posix_memalign, pages touched at set-up) on the driver's data
 * communicator: what the network costs without any device buffer. Includes no kiln
 * header (checked with nm). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_mpi.h"

typedef struct raw_state {
  MPI_Comm comm;
  unsigned char *host;
  size_t bytes;
} raw_state;

int bench_baseline_mpi_setup(MPI_Comm comm, size_t bytes, void **state) {
  *state = NULL;
  raw_state *s = calloc(1, sizeof *s);
  if (!s)
    return ENOMEM;
  void *p = NULL;
  if (posix_memalign(&p, 4096, bytes ? bytes : 1) != 0) {
    free(s);
    return ENOMEM;
  }
  memset(p, 0x5a, bytes ? bytes : 1);
  s->comm = comm;
  s->host = p;
  s->bytes = bytes;
  *state = s;
  return 0;
}

int bench_baseline_mpi_pingpong(void *state, uint64_t iters, int rank) {
  raw_state *s = state;
  int n = (int)s->bytes, peer = 1 - rank;
  for (uint64_t i = 0; i < iters; i++) {
    int rc;
    if (rank == 0) {
      rc = MPI_Send(s->host, n, MPI_BYTE, peer, 0, s->comm);
      if (rc == MPI_SUCCESS)
        rc = MPI_Recv(s->host, n, MPI_BYTE, peer, 0, s->comm, MPI_STATUS_IGNORE);
    } else {
      rc = MPI_Recv(s->host, n, MPI_BYTE, peer, 0, s->comm, MPI_STATUS_IGNORE);
      if (rc == MPI_SUCCESS)
        rc = MPI_Send(s->host, n, MPI_BYTE, peer, 0, s->comm);
    }
    if (rc != MPI_SUCCESS)
      return rc;
  }
  return 0;
}

void bench_baseline_mpi_teardown(void *state) {
  raw_state *s = state;
  if (!s)
    return;
  free(s->host);
  free(s);
}
