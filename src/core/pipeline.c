/* SPDX-License-Identifier: MIT */
/* kiln_pipeline_run (include/kiln/pipeline.h): the double-buffer pattern written with
 * kiln's public calls only, as a user could write it — uploads on one stream, the
 * caller's compute on a second, downloads on a third, `depth` slots of device buffers
 * reused in turn (kept by the caller's stream set between runs: stream_pool.c's
 * scratch, the one internal call). No event is needed: the buffer hazard rules make the upload into
 * a slot wait for the compute that last read it, the compute wait for its upload and for the
 * download that last read its output slot, and the download wait for the compute. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define PIPELINE_MAX_DEPTH KILN__PIPELINE_MAX_DEPTH

typedef struct pipe_state {
  kiln_buffer in[PIPELINE_MAX_DEPTH], out[PIPELINE_MAX_DEPTH];
  unsigned depth;
  kiln_stream_set own_set;
  kiln_stream_set keeper; /* the caller's set whose kept buffers the run holds */
  size_t in_bytes, out_bytes;
} pipe_state;

static kiln_status check_desc(const kiln_pipeline_desc *d, size_t *chunks, size_t *out_chunk) {
  if (!d)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL");
  if (d->struct_size < sizeof(kiln_pipeline_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_PIPELINE_DESC_INIT",
                       d->struct_size, sizeof(kiln_pipeline_desc));
  if (!d->compute)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->compute is NULL: the pipeline needs the function that queues "
                       "each chunk's kernels");
  if (!d->src || !d->src_bytes || !d->dst || !d->dst_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->src (%p, %zu bytes) and desc->dst (%p, %zu bytes) must both be "
                       "non-NULL and non-empty",
                       d->src, d->src_bytes, d->dst, d->dst_bytes);
  if (!d->chunk_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->chunk_bytes is 0: give the bytes of input per chunk");
  if (d->depth > PIPELINE_MAX_DEPTH)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->depth is %u: at most %u slots", d->depth,
                       PIPELINE_MAX_DEPTH);
  *out_chunk = d->out_chunk_bytes ? d->out_chunk_bytes : d->chunk_bytes;
  *chunks = (d->src_bytes + d->chunk_bytes - 1) / d->chunk_bytes;
  size_t out_chunks = (d->dst_bytes + *out_chunk - 1) / *out_chunk;
  if (out_chunks != *chunks) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "src is %zu chunks of %zu bytes but dst is %zu chunks of %zu bytes: both must "
                "have as many chunks",
                *chunks, d->chunk_bytes, out_chunks, *out_chunk);
    kiln__error_suggest("set out_chunk_bytes so that dst_bytes splits into as many chunks as "
                        "src_bytes");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  return KILN_SUCCESS;
}

/* After a run: the buffers go back to the caller's set when it lent them and the run
 * succeeded, else they are destroyed. */
static void pipe_free(pipe_state *p, bool ok) {
  if (p->keeper && ok) {
    kiln__set_scratch_give(p->keeper, p->depth, p->in_bytes, p->out_bytes, p->in, p->out);
  } else {
    for (unsigned i = 0; i < p->depth; i++) {
      kiln_buffer_destroy(p->in[i]);
      kiln_buffer_destroy(p->out[i]);
    }
    if (p->keeper)
      kiln__set_scratch_give(p->keeper, 0, 0, 0, NULL, NULL);
  }
  kiln_stream_set_destroy(p->own_set);
}

/* Say which chunk failed, keeping the failure's own message after it. */
static kiln_status chunk_failed(kiln_status st, size_t chunk, const char *step) {
  kiln_error_info e = *kiln_last_error();
  kiln__api_enter("kiln_pipeline_run", NULL, 0);
  return kiln__error_native(st, e.backend, e.native_code, e.native_name[0] ? e.native_name : NULL,
                            "pipeline chunk %zu, %s: %s", chunk, step, e.message);
}

kiln_status kiln_pipeline_run(kiln_context context, const kiln_pipeline_desc *desc) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  size_t chunks = 0, out_chunk = 0;
  st = check_desc(desc, &chunks, &out_chunk);
  if (st != KILN_SUCCESS)
    return st;
  pipe_state p;
  memset(&p, 0, sizeof p);
  kiln_stream_set set = desc->streams;
  if (!set) {
    st = kiln_stream_set_create(context, 3, "pipeline", &p.own_set);
    if (st != KILN_SUCCESS)
      return st;
    set = p.own_set;
  } else if ((st = kiln__check_handle(set, KILN__TAG_STREAM_SET, "desc->streams")) !=
             KILN_SUCCESS) {
    return st;
  }
  void (*hook)(kiln_context) = atomic_load(&kiln__test_hooks_now.pipeline_set_checked);
  if (hook) /* tests: the device lost right here */
    hook(context);
  kiln_stream up = kiln_stream_set_get(set, 0), run = kiln_stream_set_get(set, 1),
              down = kiln_stream_set_get(set, 2);
  if (!up || !run || !down) { /* refused since the check above: the device was lost meanwhile */
    st = kiln_last_error()->status != KILN_SUCCESS ? kiln_last_error()->status
                                                   : KILN_ERROR_DEVICE_LOST;
    if (p.own_set)
      (void)kiln_stream_set_destroy(p.own_set);
    return st;
  }
  if (up->h.ctx != context) {
    kiln__api_enter("kiln_pipeline_run", NULL, 0);
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "desc->streams belongs to another context than `context`");
  }
  unsigned depth = desc->depth ? desc->depth : 2;
  if ((size_t)depth > chunks)
    depth = (unsigned)chunks;
  p.in_bytes = desc->chunk_bytes < desc->src_bytes ? desc->chunk_bytes : desc->src_bytes;
  p.out_bytes = out_chunk < desc->dst_bytes ? out_chunk : desc->dst_bytes;
  /* A caller's set keeps the buffers between runs (made once, then reused). */
  if (!p.own_set && kiln__set_scratch_take(set, depth, p.in_bytes, p.out_bytes, p.in, p.out))
    p.keeper = set;
  for (p.depth = 0; p.depth < depth; p.depth++) {
    kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
    bd.bytes = p.in_bytes;
    bd.label = "pipeline-in";
    st = p.in[p.depth] ? KILN_SUCCESS : kiln_buffer_create(context, &bd, &p.in[p.depth]);
    if (st == KILN_SUCCESS && !p.out[p.depth]) {
      bd.bytes = p.out_bytes;
      bd.label = "pipeline-out";
      st = kiln_buffer_create(context, &bd, &p.out[p.depth]);
    }
    if (st != KILN_SUCCESS) {
      p.depth++;
      pipe_free(&p, false);
      kiln__api_enter("kiln_pipeline_run", NULL, 0);
      return st;
    }
  }
  const unsigned char *src = desc->src;
  unsigned char *dst = desc->dst;
  kiln_status failed = KILN_SUCCESS;
  bool queued_failure = false; /* a call failed while queueing: that is the failure */
  for (size_t i = 0; i < chunks && failed == KILN_SUCCESS; i++) {
    unsigned slot = (unsigned)(i % depth);
    size_t in_off = i * desc->chunk_bytes, out_off = i * out_chunk;
    size_t ib =
        desc->src_bytes - in_off < desc->chunk_bytes ? desc->src_bytes - in_off : desc->chunk_bytes;
    size_t ob = desc->dst_bytes - out_off < out_chunk ? desc->dst_bytes - out_off : out_chunk;
    kiln_pending t;
    st = kiln_buffer_write_async(up, p.in[slot], 0, ib, src + in_off, &t);
    if (st != KILN_SUCCESS) {
      failed = chunk_failed(st, i, "upload");
      queued_failure = true;
      break;
    }
    kiln_pending_release(&t);
    st = desc->compute(run, p.in[slot], p.out[slot], i, ib, ob, desc->user);
    if (st != KILN_SUCCESS) {
      failed = chunk_failed(st, i, "the compute function");
      queued_failure = true;
      break;
    }
    st = kiln_buffer_read_async(down, p.out[slot], 0, ob, dst + out_off, &t);
    if (st != KILN_SUCCESS) {
      failed = chunk_failed(st, i, "download");
      queued_failure = true;
      break;
    }
    kiln_pending_release(&t);
  }
  /* Wait for everything queued, then report the first failure of the work itself: a
   * root failure before a DEPENDENCY_FAILED it caused on another stream. */
  kiln_stream streams[3] = {up, run, down};
  for (int k = 0; k < 3; k++) {
    st = kiln_stream_synchronize(streams[k]);
    bool better = st != KILN_SUCCESS && (failed == KILN_SUCCESS ||
                                         (failed == KILN_ERROR_DEPENDENCY_FAILED && k > 0 &&
                                          st != KILN_ERROR_DEPENDENCY_FAILED && !queued_failure));
    if (better) {
      kiln_error_info e = *kiln_last_error();
      kiln__api_enter("kiln_pipeline_run", NULL, 0);
      failed =
          kiln__error_native(st, e.backend, e.native_code, e.native_name[0] ? e.native_name : NULL,
                             "pipeline: %s", e.message);
    }
  }
  if (failed != KILN_SUCCESS) {
    kiln_error_info e = *kiln_last_error(); /* the teardown's calls reset the detail */
    pipe_free(&p, false);
    kiln__api_enter("kiln_pipeline_run", NULL, 0);
    kiln__error_native(failed, e.backend, e.native_code, e.native_name[0] ? e.native_name : NULL,
                       "%s", e.message);
    if (e.suggestion[0])
      kiln__error_suggest("%s", e.suggestion);
    return failed;
  }
  pipe_free(&p, true);
  return KILN_SUCCESS;
}
