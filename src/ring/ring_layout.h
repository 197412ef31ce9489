/* SPDX-License-Identifier: MIT */
/* The shared layout of a ring block (docs/ring.md, "Layout"), version 1. Host code
 * (ring.c), other processes and kernels (include/kiln/dialect/ring.h, which spells the
 * same offsets as numbers) must agree on every offset: the static assertions below
 * pin them. All fields little-endian, as every device kiln runs on is. */
#ifndef KILN_RING_LAYOUT_H
#define KILN_RING_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define KILN__RING_MAGIC 0x474e524bu /* "KRNG" in memory */
#define KILN__RING_VERSION 1u
#define KILN__RING_ALIGN 64u /* the block's alignment (a cache line); each index has 128 bytes */
#define KILN__RING_SLOTS_OFFSET 640u /* the first slot */
#define KILN__RING_SLOT_HEADER 8u    /* seq (u32) + reserved (u32) before each message */

typedef struct ring_block {
  /* 0: geometry, written once before the magic (release) */
  _Atomic uint32_t magic;
  uint32_t version, kind, capacity, message_bytes, slot_bytes, slots_offset, reserved0;
  uint64_t total_bytes;
  unsigned char pad0[128 - 40];
  /* 128: the producers' line: tail (next position to push) and the SPSC producer's
   * copy of head */
  _Atomic uint32_t tail;
  _Atomic uint32_t head_cache;
  unsigned char pad1[128 - 8];
  /* 256: the consumers' line: head (next position to pop) and the SPSC consumer's copy
   * of tail */
  _Atomic uint32_t head;
  _Atomic uint32_t tail_cache;
  unsigned char pad2[128 - 8];
  /* 384: sleepers (written only by threads going to sleep and their wakers) */
  _Atomic uint32_t pop_waiters, pop_futex, push_waiters, push_futex;
  unsigned char pad3[128 - 16];
  /* 512: messages refused because the ring was full */
  _Atomic uint64_t overflow;
  unsigned char pad4[128 - 8];
} ring_block;

typedef struct ring_slot {
  _Atomic uint32_t seq; /* MPMC: position state (ring.c's invariants); SPSC: unused */
  uint32_t reserved;
  unsigned char data[]; /* message_bytes, then padding up to a multiple of 8 */
} ring_slot;

_Static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic uint64_t) == 8,
               "lock-free atomics have the size of their integer");
_Static_assert(offsetof(ring_block, kind) == 8, "layout: kind");
_Static_assert(offsetof(ring_block, capacity) == 12, "layout: capacity");
_Static_assert(offsetof(ring_block, message_bytes) == 16, "layout: message_bytes");
_Static_assert(offsetof(ring_block, slot_bytes) == 20, "layout: slot_bytes");
_Static_assert(offsetof(ring_block, slots_offset) == 24, "layout: slots_offset");
_Static_assert(offsetof(ring_block, total_bytes) == 32, "layout: total_bytes");
_Static_assert(offsetof(ring_block, tail) == 128, "layout: tail");
_Static_assert(offsetof(ring_block, head_cache) == 132, "layout: head_cache");
_Static_assert(offsetof(ring_block, head) == 256, "layout: head");
_Static_assert(offsetof(ring_block, tail_cache) == 260, "layout: tail_cache");
_Static_assert(offsetof(ring_block, pop_waiters) == 384, "layout: pop_waiters");
_Static_assert(offsetof(ring_block, pop_futex) == 388, "layout: pop_futex");
_Static_assert(offsetof(ring_block, push_waiters) == 392, "layout: push_waiters");
_Static_assert(offsetof(ring_block, push_futex) == 396, "layout: push_futex");
_Static_assert(offsetof(ring_block, overflow) == 512, "layout: overflow");
_Static_assert(sizeof(ring_block) == KILN__RING_SLOTS_OFFSET, "layout: slots follow the header");
_Static_assert(offsetof(ring_slot, data) == KILN__RING_SLOT_HEADER, "layout: slot header");

#endif
