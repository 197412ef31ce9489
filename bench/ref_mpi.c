/* SPDX-License-Identifier: MIT */
/* ref-manual-staging: what a program writes without libkiln_mpi to move a kiln buffer
 * over MPI — a blocking kiln_buffer_read of the whole range into pinned host memory
 * (kiln_host_alloc), MPI_Send; MPI_Recv into it, a blocking kiln_buffer_write back.
 * No pipelining: the copy and the network take turns. A reference baseline (public
 * API, exempt from the nm check; its JSON name starts with ref-). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "ref_mpi.h"

typedef struct ref_state {
  kiln_context ctx;
  MPI_Comm comm;
  kiln_buffer buf;
  void *host;
  size_t bytes;
} ref_state;

int bench_ref_mpi_setup(kiln_context ctx, MPI_Comm comm, size_t bytes, void **state) {
  *state = NULL;
  ref_state *s = calloc(1, sizeof *s);
  if (!s)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  s->ctx = ctx;
  s->comm = comm;
  s->bytes = bytes;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes ? bytes : 1;
  kiln_status st = kiln_buffer_create(ctx, &d, &s->buf);
  if (st == KILN_SUCCESS)
    st = kiln_host_alloc(ctx, d.bytes, &s->host);
  if (st == KILN_SUCCESS) {
    memset(s->host, 0x5a, d.bytes);
    st = kiln_buffer_write(s->buf, 0, d.bytes, s->host);
  }
  if (st != KILN_SUCCESS) {
    bench_ref_mpi_teardown(s);
    return st;
  }
  *state = s;
  return 0;
}

int bench_ref_mpi_pingpong(void *state, uint64_t iters, int rank) {
  ref_state *s = state;
  int n = (int)s->bytes, peer = 1 - rank;
  for (uint64_t i = 0; i < iters; i++) {
    for (int leg = 0; leg < 2; leg++) {
      if ((leg == 0) == (rank == 0)) { /* this rank's send */
        if (n && kiln_buffer_read(s->buf, 0, s->bytes, s->host) != KILN_SUCCESS)
          return KILN_ERROR_BACKEND;
        if (MPI_Send(s->host, n, MPI_BYTE, peer, 0, s->comm) != MPI_SUCCESS)
          return KILN_ERROR_BACKEND;
      } else {
        if (MPI_Recv(s->host, n, MPI_BYTE, peer, 0, s->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
          return KILN_ERROR_BACKEND;
        if (n && kiln_buffer_write(s->buf, 0, s->bytes, s->host) != KILN_SUCCESS)
          return KILN_ERROR_BACKEND;
      }
    }
  }
  return 0;
}

void bench_ref_mpi_teardown(void *state) {
  ref_state *s = state;
  if (!s)
    return;
  if (s->host)
    (void)kiln_host_free(s->ctx, s->host);
  (void)kiln_buffer_destroy(s->buf);
  free(s);
}
