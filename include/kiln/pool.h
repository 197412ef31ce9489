/* SPDX-License-Identifier: MIT */
/* Device memory pools: stratified (power-of-two size classes carved from slabs, LIFO free
 * lists; larger requests best-fit with splitting and coalescing; huge ones straight from
 * the device) and stream-ordered (cudaMallocAsync's contract through kiln's hazard
 * tracking). A pooled allocation is an ordinary kiln_buffer: transfers, launches,
 * hazards and interop work on it unchanged. docs/memory.md explains the contract. */
#ifndef KILN_POOL_H
#define KILN_POOL_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* The largest number of size classes a pool has (kiln_pool_stats.classes). */
#define KILN_POOL_MAX_CLASSES 24

typedef struct kiln_pool_desc {
  size_t struct_size;
  unsigned flags;             /* reserved, 0 */
  size_t min_class_bytes;     /* smallest size class (a power of two); 0: the larger of
                                 256 and the device's base-address alignment */
  size_t max_class_bytes;     /* largest size class (a power of two); 0: 256 KiB */
  size_t slab_bytes;          /* device allocation size-class blocks are carved from;
                                 0: 2 MiB (at least 4 blocks of the largest class) */
  size_t fit_slab_bytes;      /* device allocation best-fit blocks are carved from;
                                 0: 32 MiB (at most the device's max_alloc_bytes) */
  size_t huge_bytes;          /* requests above this get a device allocation of their
                                 own; 0: a quarter of fit_slab_bytes */
  uint64_t release_threshold; /* free bytes the pool keeps cached: above it, whole free
                                 slabs go back to the device at once; 0: no limit */
  size_t warm_count;          /* blocks of every size class made at creation (warming) */
  const char *label;          /* optional, names its buffers in messages; copied */
} kiln_pool_desc;
#define KILN_POOL_DESC_INIT \
  { sizeof(kiln_pool_desc), 0, 0, 0, 0, 0, 0, 0, 0, NULL }

/* Counters of one size class. */
typedef struct kiln_pool_class_stats {
  size_t block_bytes; /* its size */
  uint64_t hits;      /* allocations served from its free list */
  uint64_t misses;    /* allocations that carved a new block */
  uint64_t live;      /* blocks allocated now */
  uint64_t free;      /* blocks cached in its free list now */
} kiln_pool_class_stats;

typedef struct kiln_pool_stats {
  size_t struct_size;
  uint64_t hits;                /* allocations served from cached memory */
  uint64_t misses;              /* allocations that carved new blocks or asked the device */
  uint64_t allocs, frees;       /* kiln_pool_alloc (and pooled kiln_buffer_create) / frees */
  uint64_t bytes_in_use;        /* bytes of live allocations, as asked for */
  uint64_t bytes_in_use_peak;   /* high-water mark of bytes_in_use */
  uint64_t bytes_reserved;      /* bytes the pool holds from the device now */
  uint64_t bytes_reserved_peak; /* high-water mark of bytes_reserved */
  uint64_t bytes_cached;        /* reserved bytes not in a live block (free for reuse) */
  uint64_t largest_free_bytes;  /* largest contiguous free block of any slab */
  double fragmentation;         /* 1 - largest_free_bytes / bytes_cached (0: none or
                                   nothing cached; near 1: free memory in small pieces) */
  uint64_t slabs;               /* device allocations held (huge ones included) */
  uint64_t device_allocs, device_frees; /* device allocations made and returned so far */
  uint64_t huge_live;                   /* live allocations with a device allocation of their own */
  uint64_t pending_frees;               /* freed buffers whose last queued work has not completed */
  unsigned class_count;
  kiln_pool_class_stats classes[KILN_POOL_MAX_CLASSES];
} kiln_pool_stats;
#define KILN_POOL_STATS_INIT                                                        \
  {                                                                                 \
    sizeof(kiln_pool_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0, 0, { \
      { 0, 0, 0, 0, 0 }                                                             \
    }                                                                               \
  }

KILN_BEGIN_DECLS

/* desc may be NULL (defaults). KILN_POOL=off in the environment bypasses every pool
 * (each allocation is its own device allocation, each free blocks until the stream's
 * work is done); KILN_POOL=debug never reuses a freed block (use-after-free shows as a
 * fault or, on host-visible pools under AddressSanitizer, a report). */
KILN_API kiln_status kiln_pool_create(kiln_context context, const kiln_pool_desc *desc,
                                      kiln_pool *pool);
/* Waits for the pool's freed blocks' work and returns every slab to the device. Refused
 * (KILN_ERROR_INVALID_STATE) while buffers allocated from it are live. NULL is a no-op.
 * A context's destroy destroys its pools, live buffers included. */
KILN_API kiln_status kiln_pool_destroy(kiln_pool pool);
/* The pool behind kiln_buffer_create of a context made with KILN_CONTEXT_POOLED. */
KILN_API kiln_status kiln_context_get_pool(kiln_context context, kiln_pool *pool);

/* A buffer of `bytes` (> 0, <= the device's max_alloc_bytes) from the pool, at once: it
 * never waits for the device. A block freed on another stream whose free has not yet
 * completed may be reissued: its first use waits for that free through the ordinary
 * hazard tracking. `stream` (may be NULL) is where the buffer will be used first:
 * blocks freed on it are preferred, so no cross-stream wait is needed. Its contents
 * are undefined. */
KILN_API kiln_status kiln_pool_alloc(kiln_pool pool, kiln_stream stream, size_t bytes,
                                     kiln_buffer *buffer);
/* Give a pooled buffer back, ordered on `stream`: never blocks; counts as a write on
 * `stream`, after the buffer's work on every stream, so the block's next owner waits for
 * it. The handle is dead at once (a later use or free is refused while the block is not
 * reissued; KILN_POOL=debug never reissues). kiln_buffer_destroy on a pooled buffer
 * keeps its blocking meaning and gives the block back too. */
KILN_API kiln_status kiln_pool_free(kiln_buffer buffer, kiln_stream stream);

/* Make `count` free blocks of the size class that serves `bytes` (0: of every class). */
KILN_API kiln_status kiln_pool_warm(kiln_pool pool, size_t bytes, size_t count);
/* Return whole free slabs to the device until at most `bytes_to_keep` free bytes stay
 * cached; waits for the work of the freed blocks it returns. */
KILN_API kiln_status kiln_pool_trim(kiln_pool pool, size_t bytes_to_keep);
/* Return every whole free slab to the device (kiln_pool_trim(pool, 0)) and drop cached
 * per-block views. */
KILN_API kiln_status kiln_pool_compact(kiln_pool pool);

/* A snapshot of the pool's counters (stats->struct_size from KILN_POOL_STATS_INIT). */
KILN_API kiln_status kiln_pool_get_stats(kiln_pool pool, kiln_pool_stats *stats);
/* The stats as one JSON object (schemas/pool-stats.schema.json) into out[out_bytes],
 * terminated; *needed (may be NULL) receives the length without the terminator.
 * KILN_ERROR_OUT_OF_RANGE when it does not fit (out then holds nothing usable). */
KILN_API kiln_status kiln_pool_stats_json(const kiln_pool_stats *stats, char *out, size_t out_bytes,
                                          size_t *needed);

KILN_END_DECLS
#endif
