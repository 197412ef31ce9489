/* SPDX-License-Identifier: MIT */
/* Reference baselines of the streams suite (design.md: kiln against another
 * configuration of itself, JSON names "ref-..."): the work of overlap_4x10 and
 * pipeline_256MiB on one stream, in order, with the same kernels, buffers and sizes
 * (set up by the same functions, bench/streams_suite.c). Public kiln API only. */
#include "streams_suite.h"

/* overlap_4x10 serialised: the 40 kernels on the case's one stream. */
int streams_ref_overlap_run(void *state, uint64_t iters) {
  streams_state *s = state;
  for (uint64_t it = 0; it < iters; it++) {
    for (unsigned k = 0; k < STREAMS_OVERLAP_KERNELS; k++)
      for (unsigned j = 0; j < STREAMS_OVERLAP_STREAMS; j++) {
        kiln_status st = streams_launch_spin(s, s->base.stream, s->outs[j]);
        if (st != KILN_SUCCESS)
          return st;
      }
    kiln_status st = kiln_stream_synchronize(s->base.stream);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* The pipeline's serial form: each chunk up, through the kernel and down on one stream,
 * two buffer slots in turn (in order, so nothing overlaps). */
int streams_ref_pipeline_run(void *state, uint64_t iters) {
  streams_state *s = state;
  const unsigned char *src = s->src;
  unsigned char *dst = s->dst;
  for (uint64_t it = 0; it < iters; it++) {
    for (size_t off = 0, i = 0; off < s->bytes; off += s->chunk_bytes, i++) {
      kiln_pending t;
      kiln_status st =
          kiln_buffer_write_async(s->base.stream, s->in[i % 2], 0, s->chunk_bytes, src + off, &t);
      if (st == KILN_SUCCESS)
        st = kiln_pending_release(&t);
      if (st == KILN_SUCCESS)
        st = streams_launch_affine(s, s->base.stream, s->in[i % 2], s->out[i % 2],
                                   s->chunk_bytes / sizeof(float));
      if (st == KILN_SUCCESS)
        st =
            kiln_buffer_read_async(s->base.stream, s->out[i % 2], 0, s->chunk_bytes, dst + off, &t);
      if (st == KILN_SUCCESS)
        st = kiln_pending_release(&t);
      if (st != KILN_SUCCESS)
        return st;
    }
    kiln_status st = kiln_stream_synchronize(s->base.stream);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}
