/* SPDX-License-Identifier: MIT */
/* In-order streams of device work. Different streams run concurrently. */
#ifndef KILN_STREAM_H
#define KILN_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_stream_desc {
  size_t struct_size;
  unsigned flags; /* reserved, 0 */
  int priority;   /* 0 = normal; > 0 more urgent, < 0 less. Applied as far as the
                     device honours it, clamped to its range, and reported by
                     kiln_stream_get_info (priority_applied) and `kiln info`:
                     CUDA: 1..5 on current GPUs (< 0 is 0); OpenCL: with
                     cl_khr_priority_hints (high / medium / low queues), else
                     accepted and reported as 0; cpu and mock: the worker thread's
                     niceness (anyone may lower it, < 0; raising it, > 0, needs
                     root or RLIMIT_NICE, else it stays 0). docs/async.md. */
  /* appended */
  const char *label; /* shown in errors and by kiln_stream_get_info; copied (at most
                        47 bytes kept); NULL: "stream-<id>" */
} kiln_stream_desc;
#define KILN_STREAM_DESC_INIT \
  { sizeof(kiln_stream_desc), 0, 0, NULL }

/* What kiln_stream_get_info tells about a stream. */
typedef struct kiln_stream_info {
  size_t struct_size;
  uint64_t id;          /* its number in the context: 1, 2, ... in creation order */
  char label[48];       /* desc.label, or "stream-<id>" */
  int priority;         /* as asked (desc.priority) */
  int priority_applied; /* what the backend applied (0: normal, also when not honoured) */
  uint64_t pending;     /* ops queued and not yet complete */
  uint64_t ops;         /* ops submitted in its life */
  int owned;            /* 1 when a stream pool, stream set or its context owns it (the
                           transfer stream): destroy the owner, not the stream */
} kiln_stream_info;
#define KILN_STREAM_INFO_INIT \
  { sizeof(kiln_stream_info), 0, {0}, 0, 0, 0, 0, 0 }

/* Completion callback: `status` is KILN_SUCCESS, or the first failure of the work
 * it followed. Runs on a kiln thread (never a driver's), may call kiln, including
 * waits on this stream. Callbacks of one context run one at a time, in order. */
typedef void (*kiln_callback_fn)(kiln_status status, void *user);

KILN_BEGIN_DECLS

/* desc may be NULL (defaults). */
KILN_API kiln_status kiln_stream_create(kiln_context context, const kiln_stream_desc *desc,
                                        kiln_stream *stream);
/* Waits for the stream's work first; reports forgotten tokens. NULL is a no-op. */
KILN_API kiln_status kiln_stream_destroy(kiln_stream stream);
/* Waits until all work submitted to the stream so far has completed; returns the
 * first failure among it that no token or event wait has reported yet, else SUCCESS. */
KILN_API kiln_status kiln_stream_synchronize(kiln_stream stream);
/* KILN_SUCCESS when idle, KILN_NOT_READY while work is pending. */
KILN_API kiln_status kiln_stream_query(kiln_stream stream);
/* Work submitted to `stream` after this call waits until `event` completes. An event
 * never recorded is already complete. */
KILN_API kiln_status kiln_stream_wait_event(kiln_stream stream, kiln_event event);
/* Call fn(status, user) once the work submitted so far has completed. Later work on
 * the stream does not wait for the callback to return. Just before fn runs, the host
 * ranges of the _async work before it on the stream are released (docs/async.md).
 * Events and tokens take callbacks too, and streams have a pollable descriptor:
 * include/kiln/async.h. */
KILN_API kiln_status kiln_stream_add_callback(kiln_stream stream, kiln_callback_fn fn, void *user);

/* Ops queued on the stream and not yet complete (two atomic loads, no lock; a backend
 * that completes lazily may count finished work until a query or wait sees it). */
KILN_API kiln_status kiln_stream_pending(kiln_stream stream, uint64_t *count);
/* Its id, label, priority asked and applied, pending and total ops. */
KILN_API kiln_status kiln_stream_get_info(kiln_stream stream, kiln_stream_info *info);
/* The context's transfer stream: one stream per context for copies, made at the first
 * call (label "transfer", priority 0 so it runs beside compute streams), shared by the
 * program and kiln's own background copies; its work is ordered against every other
 * stream by the buffer hazard rules. Owned by the context: kiln_stream_destroy refuses
 * it; kiln_context_destroy takes it along. Blocking calls keep their internal stream. */
KILN_API kiln_status kiln_context_transfer_stream(kiln_context context, kiln_stream *stream);

KILN_END_DECLS
#endif
