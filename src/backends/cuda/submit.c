/* SPDX-License-Identifier: MIT */
/* Submitting ops to a CUDA stream (the core calls kiln__cu_submit with the stream's
 * submit lock held, in seq order): the op's dependencies on other streams become
 * cuStreamWaitEvent on their latest event, then its work is queued — copies, fills,
 * transfers (staging.c), launches (kernel.c) — and an event recorded behind it, with
 * which the op is listed for the stream's completion thread (stream.c). Submission
 * never fails: an op the driver refuses is listed as failed, still in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* Make cs wait for the op dep names: cuStreamWaitEvent on the latest event of the
 * dependency's stream, under that stream's lock (its event cannot be recycled
 * meanwhile). Waits while that stream is between assigning the seq and listing the op
 * (deadlock-free: dependencies only name ops whose bookkeeping finished first). */
static kiln_CUresult wait_dep(cu_stream *cs, const kiln__dep *dep) {
  if (kiln__dep_done(dep))
    return kiln_CUDA_SUCCESS;
  cu_stream *other = dep->stream->native;
  if (kiln__dep_await_listed(dep, &other->submitted_seq))
    return kiln_CUDA_SUCCESS;
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  pthread_mutex_lock(&other->lock);
  if (other->last_event)
    r = kiln__cu.cuStreamWaitEvent(cs->stream, other->last_event, 0);
  pthread_mutex_unlock(&other->lock);
  return r;
}

/* Fill: D8/D16/D32 memsets for patterns of 1, 2, 4 bytes (or wider ones made of one
 * repeated 1/2/4-byte unit); wider patterns by one upload of the pattern and doubling
 * device-to-device copies (log2(bytes / pattern) copies). */
static kiln_CUresult enqueue_fill(cu_stream *cs, kiln__op *op) {
  kiln_CUdeviceptr base =
      (kiln_CUdeviceptr)(uintptr_t)op->u.fill.buffer->native + op->u.fill.offset;
  const unsigned char *pat = op->u.fill.pattern;
  size_t pb = op->u.fill.pattern_bytes, bytes = op->u.fill.bytes;
  size_t unit = pb;
  for (size_t u = 1; u < pb && u <= 4; u *= 2) { /* smallest repeating unit */
    bool repeats = true;
    for (size_t i = u; i < pb && repeats; i++)
      repeats = pat[i] == pat[i % u];
    if (repeats) {
      unit = u;
      break;
    }
  }
  if (unit == 1)
    return kiln__cu.cuMemsetD8Async(base, pat[0], bytes, cs->stream);
  if (unit == 2) {
    unsigned short v;
    memcpy(&v, pat, 2);
    return kiln__cu.cuMemsetD16Async(base, v, bytes / 2, cs->stream);
  }
  if (unit == 4) {
    unsigned int v;
    memcpy(&v, pat, 4);
    return kiln__cu.cuMemsetD32Async(base, v, bytes / 4, cs->stream);
  }
  /* The pattern stays in the op until it completes, so the upload may be async. */
  kiln_CUresult r = kiln__cu.cuMemcpyHtoDAsync(base, pat, pb, cs->stream);
  for (size_t done = pb; r == kiln_CUDA_SUCCESS && done < bytes; done *= 2) {
    size_t n = done < bytes - done ? done : bytes - done;
    r = kiln__cu.cuMemcpyDtoDAsync(base + done, base, n, cs->stream);
  }
  return r;
}

/* Queue op's own work (ctx current, its dependencies waited for). *what names the
 * driver call a failure comes from. */
static kiln_CUresult enqueue_work(cu_stream *cs, kiln__op *op, const char **what) {
  switch (op->kind) {
  case KILN__OP_WRITE:
    *what = "cuMemcpyHtoDAsync";
    return kiln__cu_enqueue_transfer(cs, op, false, what);
  case KILN__OP_READ:
    *what = "cuMemcpyDtoHAsync";
    return kiln__cu_enqueue_transfer(cs, op, true, what);
  case KILN__OP_COPY:
    *what = "cuMemcpyDtoDAsync";
    return kiln__cu.cuMemcpyDtoDAsync(
        (kiln_CUdeviceptr)(uintptr_t)op->u.copy.dst->native + op->u.copy.dst_offset,
        (kiln_CUdeviceptr)(uintptr_t)op->u.copy.src->native + op->u.copy.src_offset,
        op->u.copy.bytes, cs->stream);
  case KILN__OP_FILL:
    *what = "filling a buffer (cuMemsetD*Async)";
    return enqueue_fill(cs, op);
  case KILN__OP_LAUNCH:
    *what = "cuLaunchKernel";
    return kiln__cu_enqueue_launch(cs, op);
  case KILN__OP_MARKER:
  case KILN__OP_WAIT:
  case KILN__OP_CALLBACK:
    break; /* the op's event is the whole op */
  }
  return kiln_CUDA_SUCCESS;
}

/* Record op's event behind its work and list the op for the completion thread (ctx
 * current). When no event can be recorded the work is queued but cannot be tracked:
 * the stream is waited for, with that wait's result in *sync, and the op not listed. */
static kiln_CUresult record_and_list(cu_stream *cs, kiln__op *op, kiln_CUresult *sync,
                                     bool device_time) {
  int timing = (op->kind == KILN__OP_MARKER && (atomic_load(&op->flags) & KILN__OPF_TIMING)) ||
               device_time; /* a trace's device time: the end event is timed */
  kiln_CUevent ev = NULL;
  pthread_mutex_lock(&cs->lock);
  kiln_CUresult r = kiln__cu_event_get_locked(cs, timing, &ev);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuEventRecord(ev, cs->stream);
    if (r != kiln_CUDA_SUCCESS)
      kiln__cu_event_put_locked(cs, ev, timing);
  }
  if (r == kiln_CUDA_SUCCESS) {
    op->native = ev;
    cs->last_event = ev;
    kiln__cu_append_locked(cs, op);
    pthread_mutex_unlock(&cs->lock);
    return r;
  }
  pthread_mutex_unlock(&cs->lock);
  if (device_time)
    kiln__cu_device_time_end(cs, op, NULL, &(int){0}); /* its begin event back */
  *sync = kiln__cu.cuStreamSynchronize(cs->stream);
  return r;
}

void kiln__cu_submit(kiln__stream *s, kiln__op *op) {
  cu_stream *cs = s->native;
  kiln_status st = kiln__op_begin(op);
  if (st != KILN_SUCCESS) {
    kiln__cu_queue_failed(cs, op, st, NULL);
    return;
  }
  kiln_CUresult r = kiln__cu_push(cs->pctx);
  if (r != kiln_CUDA_SUCCESS) {
    kiln__cu_queue_failed(cs, op, kiln__cu_fail_device(cs->device, r, "cuCtxPushCurrent"),
                          "cuCtxPushCurrent");
    return;
  }
  for (uint32_t i = 0; i < op->dep_count && r == kiln_CUDA_SUCCESS; i++)
    r = wait_dep(cs, &op->deps[i]);
  const char *what = "cuStreamWaitEvent";
  bool device_time =
      r == kiln_CUDA_SUCCESS && kiln__trace_device_time() && kiln__cu_device_time_begin(cs, op);
  if (r == kiln_CUDA_SUCCESS)
    r = enqueue_work(cs, op, &what);
  if (r != kiln_CUDA_SUCCESS) {
    kiln__cu_pop();
    kiln_status fst = kiln__cu_fail_device(cs->device, r, what);
    if (device_time)
      kiln__cu_device_time_end(cs, op, NULL, &(int){0}); /* its begin event back */
    kiln__cu_queue_failed(cs, op, fst, what);
    return;
  }
  kiln_CUresult sync = kiln_CUDA_SUCCESS;
  r = record_and_list(cs, op, &sync, device_time);
  kiln__cu_pop();
  if (r == kiln_CUDA_SUCCESS)
    return;
  kiln__cu_queue_failed(cs, op,
                        kiln__cu_fail_device(cs->device, sync != kiln_CUDA_SUCCESS ? sync : r,
                                             "cuEventRecord after an operation"),
                        sync != kiln_CUDA_SUCCESS ? "cuStreamSynchronize" : "cuEventRecord");
}
