/* SPDX-License-Identifier: MIT */
/* Events mark a point in a stream; they can be queried, waited on, waited for by
 * other streams and, when created with KILN_EVENT_TIMING, timed. */
#ifndef KILN_EVENT_H
#define KILN_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

enum { KILN_EVENT_TIMING = 1u << 0 };

typedef struct kiln_event_desc {
  size_t struct_size;
  unsigned flags; /* KILN_EVENT_TIMING */
} kiln_event_desc;
#define KILN_EVENT_DESC_INIT \
  { sizeof(kiln_event_desc), 0 }

KILN_BEGIN_DECLS

/* desc may be NULL (defaults: no timing). */
KILN_API kiln_status kiln_event_create(kiln_context context, const kiln_event_desc *desc,
                                       kiln_event *event);
/* Does not wait; a stream waiting on the event still sees it complete. NULL: no-op. */
KILN_API kiln_status kiln_event_destroy(kiln_event event);
/* Capture the point after all work submitted to `stream` so far. Re-recording moves it. */
KILN_API kiln_status kiln_event_record(kiln_event event, kiln_stream stream);
/* KILN_SUCCESS when complete (or never recorded), KILN_NOT_READY otherwise. */
KILN_API kiln_status kiln_event_query(kiln_event event);
/* Block until complete. */
KILN_API kiln_status kiln_event_synchronize(kiln_event event);
/* Nanoseconds between two completed timing events of one context. */
KILN_API kiln_status kiln_event_elapsed_ns(kiln_event start, kiln_event end, uint64_t *elapsed_ns);

KILN_END_DECLS
#endif
