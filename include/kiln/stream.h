/* SPDX-License-Identifier: MIT */
/* In-order streams of device work. Different streams run concurrently. */
#ifndef KILN_STREAM_H
#define KILN_STREAM_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_stream_desc {
  size_t struct_size;
  unsigned flags; /* reserved, 0 */
  int priority;   /* 0 = normal; > 0 more urgent: where the backend has priorities
                     (CUDA) its work is scheduled ahead of lower ones; values past
                     the device's range are clamped (CUDA: 1..5 on current GPUs);
                     < 0 is the same as 0 there. Ignored by cpu, mock, OpenCL. */
} kiln_stream_desc;
#define KILN_STREAM_DESC_INIT \
  { sizeof(kiln_stream_desc), 0, 0 }

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

KILN_END_DECLS
#endif
