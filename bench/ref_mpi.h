/* SPDX-License-Identifier: MIT */
/* The reference baseline of the mpi suite's pingpong_* cases (ref_mpi.c): the staging a
 * program writes by hand around MPI, with kiln's public API. */
#ifndef KILN_BENCH_REF_MPI_H
#define KILN_BENCH_REF_MPI_H

#include "kiln/mpi.h"

/* A kiln buffer of `bytes` on ctx and a pinned host block of the same size; 0 or a
 * kiln_status. */
int bench_ref_mpi_setup(kiln_context ctx, MPI_Comm comm, size_t bytes, void **state);
/* iters round trips as rank 0 or 1: read the buffer into the host block, MPI_Send it;
 * MPI_Recv into the host block, write it into the buffer. */
int bench_ref_mpi_pingpong(void *state, uint64_t iters, int rank);
void bench_ref_mpi_teardown(void *state);

#endif
