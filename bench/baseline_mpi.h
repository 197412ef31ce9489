/* SPDX-License-Identifier: MIT */
/* The raw MPI ping-pong of plain host memory (baseline_mpi.c): no kiln header, no kiln
 * symbol (bench.baselines_no_kiln_symbols checks its object). Rank 0 sends then
 * receives, rank 1 receives then sends, `bytes` each way. */
#ifndef KILN_BENCH_BASELINE_MPI_H
#define KILN_BENCH_BASELINE_MPI_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* Page-touched host memory of `bytes` (at least 1) for `comm`; 0 or an errno. */
int bench_baseline_mpi_setup(MPI_Comm comm, size_t bytes, void **state);
/* iters round trips, as rank 0 (ping) or rank 1 (pong); 0 or the MPI error. */
int bench_baseline_mpi_pingpong(void *state, uint64_t iters, int rank);
void bench_baseline_mpi_teardown(void *state);

#endif
