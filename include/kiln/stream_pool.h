/* SPDX-License-Identifier: MIT */
/* Groups of streams: a stream pool hands out the stream a policy picks (round-robin
 * or least pending) and keeps per-stream statistics; a stream set is a fixed ring of
 * D streams (get(i) = stream i mod D). The streams belong to their pool or set:
 * destroy the group, not its streams. docs/async.md. */
#ifndef KILN_STREAM_POOL_H
#define KILN_STREAM_POOL_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_stream_pool_s *kiln_stream_pool;
typedef struct kiln_stream_set_s *kiln_stream_set;

/* Most streams one pool or set may hold. */
#define KILN_STREAM_POOL_MAX 256u

typedef enum kiln_stream_policy {
  KILN_STREAM_ROUND_ROBIN = 0,  /* stream 0, 1, ..., N-1, 0, ... (one atomic add) */
  KILN_STREAM_LEAST_PENDING = 1 /* the stream with the fewest ops queued and not complete
                                   plus holders (acquired, not released); ties go
                                   round-robin. Read without a lock. */
} kiln_stream_policy;

typedef struct kiln_stream_pool_desc {
  size_t struct_size;
  kiln_stream_policy policy;
  int priority;      /* of every stream (kiln_stream_desc.priority) */
  const char *label; /* the pool's; its streams are "<label>[i]"; NULL: "pool" */
} kiln_stream_pool_desc;
#define KILN_STREAM_POOL_DESC_INIT \
  { sizeof(kiln_stream_pool_desc), KILN_STREAM_ROUND_ROBIN, 0, NULL }

/* One stream's statistics since its pool or set was made. */
typedef struct kiln_stream_stats {
  size_t struct_size;
  uint64_t id;         /* the stream's id (kiln_stream_info.id) */
  char label[48];      /* "<label>[i]" */
  uint64_t ops;        /* ops submitted */
  uint64_t pending;    /* ops queued and not complete, now */
  uint64_t held;       /* acquired and not yet released, now */
  uint64_t picked;     /* times acquire or pick chose it */
  uint64_t busy_ns;    /* time it had an op running or waiting to run (from an op's
                          submission, or its predecessor's completion, to its own
                          completion, as kiln sees completions) */
  uint64_t elapsed_ns; /* since the pool or set was made */
  double utilisation;  /* busy_ns / elapsed_ns */
  int priority_applied;
} kiln_stream_stats;
#define KILN_STREAM_STATS_INIT \
  { sizeof(kiln_stream_stats), 0, {0}, 0, 0, 0, 0, 0, 0, 0.0, 0 }

KILN_BEGIN_DECLS

/* The default stream count of a pool on `device`: CUDA its copy engines + 1 (4 on an
 * H200), OpenCL 2, cpu and mock the number of cores. */
KILN_API kiln_status kiln_stream_pool_default_count(kiln_device device, size_t *count);
/* `count` streams (1..KILN_STREAM_POOL_MAX) of `context`; desc may be NULL. */
KILN_API kiln_status kiln_stream_pool_create(kiln_context context, size_t count,
                                             const kiln_stream_pool_desc *desc,
                                             kiln_stream_pool *pool);
/* Waits for every stream's work, then destroys them. NULL is a no-op. Held streams are
 * destroyed too (the holders must not use them afterwards). */
KILN_API kiln_status kiln_stream_pool_destroy(kiln_stream_pool pool);
/* The stream the policy picks, held until kiln_stream_pool_release (a holder counts as
 * pending work for LEAST_PENDING). Holding is not exclusive: others may be given the
 * same stream, and work on it stays in order. Never blocks. */
KILN_API kiln_status kiln_stream_pool_acquire(kiln_stream_pool pool, kiln_stream *stream);
/* Give back a stream kiln_stream_pool_acquire returned. Never waits for its work. A
 * stream of another pool, or one not held (released twice), is refused. */
KILN_API kiln_status kiln_stream_pool_release(kiln_stream_pool pool, kiln_stream stream);
/* The stream the policy picks, without holding it. */
KILN_API kiln_status kiln_stream_pool_pick(kiln_stream_pool pool, kiln_stream *stream);
/* Stream number `index` (< size). */
KILN_API kiln_status kiln_stream_pool_get(kiln_stream_pool pool, size_t index, kiln_stream *stream);
KILN_API kiln_status kiln_stream_pool_size(kiln_stream_pool pool, size_t *count);
/* Wait for the work of every stream; the first failure not yet reported, naming its
 * stream. */
KILN_API kiln_status kiln_stream_pool_synchronize_all(kiln_stream_pool pool);
/* Statistics of stream `index`. */
KILN_API kiln_status kiln_stream_pool_get_stats(kiln_stream_pool pool, size_t index,
                                                kiln_stream_stats *stats);
/* Every stream's statistics as one JSON object ({"label":..,"policy":..,"streams":[..]},
 * schemas/stream_stats.json) into buf (bytes, always terminated). *needed (may be NULL)
 * receives the length it needs without the terminator; a short buf is
 * KILN_ERROR_INVALID_ARGUMENT saying so, with *needed set. */
KILN_API kiln_status kiln_stream_pool_stats_json(kiln_stream_pool pool, char *buf, size_t bytes,
                                                 size_t *needed);

/* A ring of `depth` streams (1..KILN_STREAM_POOL_MAX) labelled "<label>[i]" (label
 * NULL: "set"), priority 0. */
KILN_API kiln_status kiln_stream_set_create(kiln_context context, size_t depth, const char *label,
                                            kiln_stream_set *set);
/* Waits for every stream's work, then destroys them. NULL is a no-op. */
KILN_API kiln_status kiln_stream_set_destroy(kiln_stream_set set);
/* Stream i mod depth. Returns the stream itself (NULL when `set` is not a live set,
 * with kiln_last_error() saying why; a call given that NULL refuses it). */
KILN_API kiln_stream kiln_stream_set_get(kiln_stream_set set, size_t i);
KILN_API kiln_status kiln_stream_set_size(kiln_stream_set set, size_t *depth);
KILN_API kiln_status kiln_stream_set_synchronize_all(kiln_stream_set set);
KILN_API kiln_status kiln_stream_set_get_stats(kiln_stream_set set, size_t index,
                                               kiln_stream_stats *stats);

KILN_END_DECLS
#endif
