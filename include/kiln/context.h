/* SPDX-License-Identifier: MIT */
/* A context owns everything created on one device: streams, events, buffers,
 * kernels. Destroying it waits for its work and destroys what is left. */
#ifndef KILN_CONTEXT_H
#define KILN_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* kiln_context_desc.flags */
enum {
  /* kiln_buffer_create allocates from the context's device pool (include/kiln/pool.h:
   * kiln_context_get_pool) and kiln_buffer_destroy gives the block back to it, so
   * existing code gains the pool unchanged. */
  KILN_CONTEXT_POOLED = 1u << 0
};

typedef struct kiln_context_desc {
  size_t struct_size;
  unsigned flags; /* KILN_CONTEXT_* */
} kiln_context_desc;
#define KILN_CONTEXT_DESC_INIT \
  { sizeof(kiln_context_desc), 0 }

/* Counters of a context, for tests and metrics. */
typedef struct kiln_context_stats {
  size_t struct_size;
  uint64_t ops_submitted;      /* operations queued on any stream */
  uint64_t cross_stream_waits; /* dependencies between streams added (hazards, events) */
  uint64_t tokens_forgotten;   /* tokens neither waited nor released, reported */
} kiln_context_stats;
#define KILN_CONTEXT_STATS_INIT \
  { sizeof(kiln_context_stats), 0, 0, 0 }

KILN_BEGIN_DECLS

/* desc may be NULL (defaults). */
KILN_API kiln_status kiln_context_create(kiln_device device, const kiln_context_desc *desc,
                                         kiln_context *context);
/* Waits for all work, reports tokens neither waited nor released (KILN_LOG=warn),
 * destroys every object of the context. NULL is a no-op. */
KILN_API kiln_status kiln_context_destroy(kiln_context context);
KILN_API kiln_status kiln_context_get_device(kiln_context context, kiln_device *device);
/* Snapshot of the context's counters. */
KILN_API kiln_status kiln_context_get_stats(kiln_context context, kiln_context_stats *stats);
/* Waits until every stream of the context is idle. */
KILN_API kiln_status kiln_context_synchronize(kiln_context context);

KILN_END_DECLS
#endif
