/* SPDX-License-Identifier: MIT */
/* The graph suite's shared state (bench/graph_suite.c and its reference baseline
 * bench/ref_graph.c): the device DAG both sides run — an upload, GRAPH_BENCH_BRANCHES
 * branches of copy / kernel / copy into one output, a download — on the same buffers
 * and kernel. Public kiln API only. */
#ifndef KILN_BENCH_GRAPH_SUITE_H
#define KILN_BENCH_GRAPH_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "kiln/bench.h"

#define GRAPH_BENCH_BRANCHES 4u
#define GRAPH_BENCH_WORDS 1024u /* uint32 per buffer: 4 KiB */

typedef struct graph_bench_state {
  kiln_context context;
  kiln_kernel add;
  kiln_graph graph;
  kiln_stream streams[GRAPH_BENCH_BRANCHES]; /* the hand-issued side's */
  kiln_buffer x, w, b[GRAPH_BENCH_BRANCHES];
  uint64_t offset;
  uint32_t one;
  uint32_t *in, *out;
} graph_bench_state;

/* The hand-issued form of the device DAG (ref-hand-issued). */
int graph_ref_dag_run(void *state, uint64_t iters);
/* Its set-up and teardown (the same buffers and kernel as the graph's side). */
int graph_ref_dag_setup(const kiln_bench_env *env, void **state);
void graph_bench_teardown(void *state);

#endif
