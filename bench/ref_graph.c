/* SPDX-License-Identifier: MIT */
/* Reference baseline of the graph suite's device_fan4 (design.md: kiln against another
 * configuration of itself, JSON name "ref-hand-issued"): the same 14 ops a launch of the
 * graph queues, issued by hand every iteration as a program would without graphs —
 * the upload on stream 0, branch i's copy / kernel / copy on stream i, the download on
 * stream 0 (kiln's buffer rules order them across streams, as they do the graph's),
 * tokens given up (KILN_NO_TOKEN) and every stream synchronized. Also the set-up and
 * teardown both sides share. Public kiln API only. */
#include <stdlib.h>
#include <string.h>

#include "graph_suite.h"

kiln_status graph_bench_make_kernel(kiln_context ctx, kiln_kernel *kernel);

void graph_bench_teardown(void *state) {
  graph_bench_state *s = state;
  if (!s)
    return;
  kiln_graph_destroy(s->graph);
  kiln_context_destroy(s->context); /* streams, buffers, kernel with it */
  free(s->in);
  free(s->out);
  free(s);
}

int graph_ref_dag_setup(const kiln_bench_env *env, void **state) {
  *state = NULL;
  graph_bench_state *s = calloc(1, sizeof *s);
  if (!s)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  s->one = 1;
  s->in = calloc(GRAPH_BENCH_WORDS, 4);
  s->out = calloc((size_t)GRAPH_BENCH_WORDS * GRAPH_BENCH_BRANCHES, 4);
  kiln_status st = s->in && s->out ? kiln_context_create(env->device, NULL, &s->context)
                                   : KILN_ERROR_OUT_OF_HOST_MEMORY;
  if (st == KILN_SUCCESS)
    st = graph_bench_make_kernel(s->context, &s->add);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = GRAPH_BENCH_WORDS * 4;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->x);
  for (unsigned i = 0; i < GRAPH_BENCH_BRANCHES && st == KILN_SUCCESS; i++) {
    st = kiln_buffer_create(s->context, &bd, &s->b[i]);
    if (st == KILN_SUCCESS)
      st = kiln_stream_create(s->context, NULL, &s->streams[i]);
  }
  bd.bytes = (size_t)GRAPH_BENCH_WORDS * 4 * GRAPH_BENCH_BRANCHES;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(s->context, &bd, &s->w);
  if (st != KILN_SUCCESS) {
    graph_bench_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

int graph_ref_dag_run(void *state, uint64_t iters) {
  graph_bench_state *s = state;
  const size_t bytes = GRAPH_BENCH_WORDS * 4;
  kiln_range r = kiln_range_1d(GRAPH_BENCH_WORDS);
  for (uint64_t it = 0; it < iters; it++) {
    kiln_status st = kiln_buffer_write_async(s->streams[0], s->x, 0, bytes, s->in, KILN_NO_TOKEN);
    for (unsigned i = 0; i < GRAPH_BENCH_BRANCHES && st == KILN_SUCCESS; i++) {
      kiln_arg args[3] = {kiln_arg_buffer(s->b[i]), kiln_arg_scalar(&s->offset, 8),
                          kiln_arg_scalar(&s->one, 4)};
      st = kiln_buffer_copy_async(s->streams[i], s->b[i], 0, s->x, 0, bytes, KILN_NO_TOKEN);
      if (st == KILN_SUCCESS)
        st = kiln_launch_async(s->streams[i], s->add, &r, args, 3, KILN_NO_TOKEN);
      if (st == KILN_SUCCESS)
        st = kiln_buffer_copy_async(s->streams[i], s->w, i * bytes, s->b[i], 0, bytes,
                                    KILN_NO_TOKEN);
    }
    if (st == KILN_SUCCESS)
      st = kiln_buffer_read_async(s->streams[0], s->w, 0, bytes * GRAPH_BENCH_BRANCHES, s->out,
                                  KILN_NO_TOKEN);
    for (unsigned i = 0; i < GRAPH_BENCH_BRANCHES && st == KILN_SUCCESS; i++)
      st = kiln_stream_synchronize(s->streams[i]);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}
