/* SPDX-License-Identifier: MIT */
/* Lock-free message rings between host threads and device workers (docs/ring.md).
 * A ring is one block of memory — a 640-byte header, then `capacity` slots of
 * 8 + message_bytes (rounded up to 8) bytes — whose layout is fixed and documented, so
 * that host code, another process and kernels (the dialect header
 * include/kiln/dialect/ring.h) can share it. The block lives in pinned host memory
 * of a context (kiln_ring_create) or in memory the caller owns (kiln_ring_init_in: a
 * CPU buffer's storage, shared memory); a kiln_ring handle is this process's view of it.
 *
 * The concurrency contract is in the names: `_spsc` calls are for a ring of kind
 * KILN_RING_SPSC, used by at most one pushing and one popping thread at a time;
 * `_mpmc` calls for a ring of kind KILN_RING_MPMC, any number of each (Vyukov's bounded
 * queue: a sequence number per slot). Calling one kind's function on the other kind
 * is refused (INVALID_ARGUMENT). Messages are copied in and out; every message of a
 * ring has the same size.
 *
 * Statuses of the data calls: KILN_SUCCESS; KILN_NOT_READY when a push found the ring
 * full or a pop found it empty (nothing was done; not an error: kiln_last_error() is
 * left alone, and those calls never write thread-local state on their fast path);
 * KILN_TIMEOUT from the _wait calls; errors for bad arguments. Not safe against a
 * concurrent kiln_ring_destroy of the same ring. */
#ifndef KILN_RING_H
#define KILN_RING_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_ring_s *kiln_ring;
typedef struct kiln_ring_group_s *kiln_ring_group;

/* The values are part of the shared layout (the header's `kind` word). */
typedef enum kiln_ring_kind {
  KILN_RING_SPSC = 1, /* one producer, one consumer */
  KILN_RING_MPMC = 2  /* any number of producers and consumers */
} kiln_ring_kind;

#define KILN_RING_DEFAULT_CAPACITY 1024u
#define KILN_RING_MAX_CAPACITY (1u << 30)
#define KILN_RING_DEFAULT_MESSAGE_BYTES 56u /* with the slot's 8-byte header: 64-byte slots */
#define KILN_RING_MAX_MESSAGE_BYTES 65536u
/* Timeout of the _wait calls that never gives up. */
#define KILN_RING_FOREVER UINT64_MAX

typedef struct kiln_ring_desc {
  size_t struct_size;
  kiln_ring_kind kind;    /* 0: KILN_RING_MPMC */
  uint32_t capacity;      /* slots: a power of two in [2, KILN_RING_MAX_CAPACITY]; 0: 1024 */
  uint32_t message_bytes; /* 1..KILN_RING_MAX_MESSAGE_BYTES; 0: 56 */
} kiln_ring_desc;
#define KILN_RING_DESC_INIT \
  { sizeof(kiln_ring_desc), (kiln_ring_kind)0, 0u, 0u }

typedef struct kiln_ring_info {
  size_t struct_size;
  kiln_ring_kind kind;
  uint32_t capacity;      /* slots */
  uint32_t message_bytes; /* bytes of one message */
  uint32_t slot_bytes;    /* stride of the slots: 8 + message_bytes rounded up to 8 */
  size_t bytes;           /* the whole block: header + slots */
  void *memory;           /* the block's first byte (hand it to kernels; see docs/ring.md) */
} kiln_ring_info;
#define KILN_RING_INFO_INIT \
  { sizeof(kiln_ring_info), (kiln_ring_kind)0, 0u, 0u, 0u, 0u, NULL }

KILN_BEGIN_DECLS

/* Bytes a ring of this description needs (header + slots), for kiln_ring_init_in. */
KILN_API kiln_status kiln_ring_bytes_needed(const kiln_ring_desc *desc, size_t *bytes);

/* A ring in pinned host memory of the context (kiln_host_alloc: page-aligned; on CUDA
 * page-locked and, with unified addressing, at the same address on the device). desc
 * NULL: the defaults. Destroy it before its context: kiln_context_destroy frees the
 * memory (the handle must still be destroyed, which then frees nothing). */
KILN_API kiln_status kiln_ring_create(kiln_context context, const kiln_ring_desc *desc,
                                      kiln_ring *ring);
/* Format a ring in the caller's memory [memory, memory + bytes): at least
 * kiln_ring_bytes_needed bytes, 64-byte aligned; must not be in use by anyone (any
 * previous ring there is forgotten). The memory stays the caller's and must outlive
 * the handle. */
KILN_API kiln_status kiln_ring_init_in(void *memory, size_t bytes, const kiln_ring_desc *desc,
                                       kiln_ring *ring);
/* A handle to a ring that kiln_ring_init_in or kiln_ring_create formatted, in this
 * process or another (shared memory): the header is checked (magic, layout version,
 * kind, geometry, that it fits in `bytes`). INVALID_ARGUMENT naming what is wrong. */
KILN_API kiln_status kiln_ring_attach(void *memory, size_t bytes, kiln_ring *ring);
/* Drop the handle; a ring from kiln_ring_create also frees its memory (kiln_host_free:
 * waits for the context's queued work). Memory of init_in/attach stays the caller's
 * and stays a valid ring for other handles. NULL is a no-op; a destroyed handle is
 * refused with INVALID_HANDLE. */
KILN_API kiln_status kiln_ring_destroy(kiln_ring ring);
KILN_API kiln_status kiln_ring_get_info(kiln_ring ring, kiln_ring_info *info);

/* Copy one message (message_bytes bytes from msg) in / out. */
KILN_API kiln_status kiln_ring_try_push_spsc(kiln_ring ring, const void *msg);
KILN_API kiln_status kiln_ring_try_pop_spsc(kiln_ring ring, void *msg);
KILN_API kiln_status kiln_ring_try_push_mpmc(kiln_ring ring, const void *msg);
KILN_API kiln_status kiln_ring_try_pop_mpmc(kiln_ring ring, void *msg);

/* Up to `count` messages at once, contiguous in msgs (count * message_bytes bytes),
 * in FIFO order: as many as fit (push) or are there (pop), all published / claimed
 * with one index update. *done receives how many; SUCCESS when at least one, NOT_READY
 * when none (count 0: SUCCESS, nothing done). On MPMC rings a batch is claimed only
 * where its slots are consecutive and ready, so it may be shorter than what the ring
 * holds while other threads are mid-operation. */
KILN_API kiln_status kiln_ring_push_batch_spsc(kiln_ring ring, const void *msgs, size_t count,
                                               size_t *done);
KILN_API kiln_status kiln_ring_pop_batch_spsc(kiln_ring ring, void *msgs, size_t count,
                                              size_t *done);
KILN_API kiln_status kiln_ring_push_batch_mpmc(kiln_ring ring, const void *msgs, size_t count,
                                               size_t *done);
KILN_API kiln_status kiln_ring_pop_batch_mpmc(kiln_ring ring, void *msgs, size_t count,
                                              size_t *done);

/* Blocking forms: spin ~30 us, then sleep on a futex of the ring until the ring has
 * room / a message, at most timeout_ns (KILN_RING_FOREVER: no limit; 0: one try).
 * KILN_TIMEOUT when the time ran out (nothing done). Pushes and pops of this process
 * wake sleepers at once; they pay nothing when nobody sleeps (a compiler barrier and
 * a load of a word nobody writes: the sleeper pays a membarrier(2)). Pushes by a
 * device or another process do not wake: a sleeper looks again at least every
 * millisecond (docs/ring.md). */
KILN_API kiln_status kiln_ring_push_wait_spsc(kiln_ring ring, const void *msg, uint64_t timeout_ns);
KILN_API kiln_status kiln_ring_pop_wait_spsc(kiln_ring ring, void *msg, uint64_t timeout_ns);
KILN_API kiln_status kiln_ring_push_wait_mpmc(kiln_ring ring, const void *msg, uint64_t timeout_ns);
KILN_API kiln_status kiln_ring_pop_wait_mpmc(kiln_ring ring, void *msg, uint64_t timeout_ns);

/* Messages in the ring (a snapshot: exact when nobody pushes or pops; on MPMC rings
 * claimed slots count as soon as they are claimed), 0..capacity. */
KILN_API kiln_status kiln_ring_count(kiln_ring ring, size_t *count);
/* Messages refused because the ring was full, over the ring's life: one per try_push
 * that returned NOT_READY, the messages a batch push left out, one per push_wait that
 * timed out, and pushes refused on the device. Shared by every handle of the ring. */
KILN_API kiln_status kiln_ring_overflow_count(kiln_ring ring, uint64_t *count);

/* A partitioned queue: `partitions` MPMC rings of one description (each in its own
 * pinned block of the context), to spread contention. push puts the message into
 * partition hint % partitions, or, when that one is full, the next one with room;
 * pop takes from partition `partition` first and then steals from the others in
 * order. Both are lock-free (MPMC rings); NOT_READY when every partition is full /
 * empty. desc->kind must be 0 or MPMC. partitions: 1..256. */
KILN_API kiln_status kiln_ring_group_create(kiln_context context, const kiln_ring_desc *desc,
                                            uint32_t partitions, kiln_ring_group *group);
KILN_API kiln_status kiln_ring_group_destroy(kiln_ring_group group);
KILN_API kiln_status kiln_ring_group_push(kiln_ring_group group, uint32_t hint, const void *msg);
KILN_API kiln_status kiln_ring_group_pop(kiln_ring_group group, uint32_t partition, void *msg);
/* Partition i's ring (owned by the group: do not destroy it). */
KILN_API kiln_status kiln_ring_group_get_ring(kiln_ring_group group, uint32_t i, kiln_ring *ring);

/* The dialect header include/kiln/dialect/ring.h as text (NUL-terminated, static):
 * put it before a program's kernels so they can push and pop (docs/ring.md). */
KILN_API const char *kiln_ring_dialect_source(void);

KILN_END_DECLS
#endif
