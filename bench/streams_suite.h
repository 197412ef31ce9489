/* SPDX-License-Identifier: MIT */
/* What the streams suite's kiln side (bench/streams_suite.c) and its reference
 * baselines (bench/ref_streams.c) share: the state of a case and its set-ups, so that
 * both sides prepare the same kernels, buffers and sizes. Public kiln API only. */
#ifndef KILN_BENCH_STREAMS_SUITE_H
#define KILN_BENCH_STREAMS_SUITE_H

#include "suite_common.h"

#define STREAMS_OVERLAP_STREAMS 4u
#define STREAMS_OVERLAP_KERNELS 10u /* per stream */
#define STREAMS_PIPELINE_CHUNKS 16u

typedef struct streams_state {
  kiln__suite_state base; /* first: its stream is the ref side's one stream */
  kiln_stream_pool pool;
  kiln_stream_set set;
  kiln_buffer outs[STREAMS_OVERLAP_STREAMS]; /* overlap: one per stream */
  kiln_buffer in[2], out[2];                 /* pipeline's serial form: its two slots */
  uint64_t spin_iters;                       /* overlap: a kernel's loop, ~50 us */
  void *src, *dst;                           /* pipeline: kiln_host_alloc'ed */
  size_t bytes, chunk_bytes;
} streams_state;

/* overlap_4x10: the spin kernel calibrated to ~50 us, 4 output buffers, a pool of 4. */
int streams_overlap_setup(const kiln_bench_env *env, void **state);
/* pipeline_256MiB: the affine kernel (y = 2x + 1), pinned src/dst of the run's bytes,
 * a stream set of 3 and the serial form's two slots of buffers. */
int streams_pipeline_setup(const kiln_bench_env *env, void **state);
void streams_teardown(void *state);
/* Launch the kernel on `stream` over the case's range with (x, y, n) or (out, iters):
 * the token released. */
kiln_status streams_launch_spin(streams_state *s, kiln_stream stream, kiln_buffer out);
kiln_status streams_launch_affine(streams_state *s, kiln_stream stream, kiln_buffer in,
                                  kiln_buffer out, size_t floats);

/* The reference baselines (bench/ref_streams.c): the same work on one stream. */
int streams_ref_overlap_run(void *state, uint64_t iters);
int streams_ref_pipeline_run(void *state, uint64_t iters);

#endif
