/* SPDX-License-Identifier: MIT */
/* kiln rings for kernels, in the kiln dialect (docs/ring.md, "In kernels"). Put this
 * text before your kernels: kiln_ring_dialect_source() returns it (or #include it
 * where the device compiler has kiln's include folder). A kernel receives the ring's
 * block as a buffer argument (KILN_GLOBAL kiln_u32 *ring) and calls:
 *
 *   kiln_ring_push_spsc(ring, &msg)  kiln_ring_pop_spsc(ring, &msg)
 *   kiln_ring_push_mpmc(ring, &msg)  kiln_ring_pop_mpmc(ring, &msg)
 *   kiln_ring_used(ring)  (messages in it, a snapshot)
 *
 * push/pop return 1 when done, 0 when the ring is full / empty (a refused push counts
 * in the ring's overflow), -1 when `ring` is no ring of that kind. Messages are copied
 * byte by byte (message_bytes, from the ring's header). The layout is the host's
 * (src/ring/ring_layout.h): the word offsets below must match it; test_ring_layout
 * checks that they do. The SPSC calls are for one work-item (one producer or one
 * consumer in all, host included); the MPMC calls for any number.
 *
 * Targets: C (the CPU backend: GCC __atomic built-ins), CUDA (system-scope atomics and
 * __threadfence_system on mapped pinned host memory). OpenCL: refused at compile time:
 * kiln's OpenCL memory is no fine-grained SVM with atomics, so a kernel cannot share a
 * ring with the host while it runs. */
#ifndef KILN_DIALECT_RING_H
#define KILN_DIALECT_RING_H

#if defined(KILN_OPENCL)
#error \
    "kiln rings are not available in OpenCL kernels: kiln's OpenCL memory is no fine-grained SVM with atomics (docs/ring.md); use the CPU or CUDA backend"
#elif defined(KILN_CUDA)
/* relaxed and acquire loads, release stores, as volatile accesses with system-scope
 * fences (the other side is the host, over PCIe or NVLink) */
#define KILN__RL(p) (*(volatile const kiln_u32 *)(p))
#define KILN__RA(p) kiln__ring_load_acquire(p)
#define KILN__WR(p, v) (*(volatile kiln_u32 *)(p) = (v))
#define KILN__WREL(p, v) kiln__ring_store_release(p, v)
KILN_INLINE kiln_u32 kiln__ring_load_acquire(KILN_GLOBAL kiln_u32 *p) {
  kiln_u32 v = *(volatile const kiln_u32 *)p;
  __threadfence_system(); /* acquire: pairs with the host's release store of p */
  return v;
}
KILN_INLINE void kiln__ring_store_release(KILN_GLOBAL kiln_u32 *p, kiln_u32 v) {
  __threadfence_system(); /* release: pairs with the host's acquire load of p */
  *(volatile kiln_u32 *)p = v;
}
/* compare-exchange: 1 when *p was *expected (now desired), else 0 with *expected
 * updated; relaxed (the data goes through the slots' seq) */
KILN_INLINE int kiln__ring_cas(KILN_GLOBAL kiln_u32 *p, kiln_u32 *expected, kiln_u32 desired) {
  kiln_u32 old = atomicCAS_system((unsigned int *)p, *expected, desired);
  if (old == *expected)
    return 1;
  *expected = old;
  return 0;
}
KILN_INLINE void kiln__ring_count_overflow(KILN_GLOBAL kiln_u32 *w) {
  atomicAdd_system((unsigned long long *)(w + 128), 1ull); /* a statistic: relaxed */
}
#elif defined(KILN_C)
#define KILN__RL(p) __atomic_load_n((p), __ATOMIC_RELAXED)
/* acquire: pairs with the other side's release store of the same word */
#define KILN__RA(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define KILN__WR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* release: pairs with the other side's acquire load of the same word */
#define KILN__WREL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
KILN_INLINE int kiln__ring_cas(KILN_GLOBAL kiln_u32 *p, kiln_u32 *expected, kiln_u32 desired) {
  /* relaxed: the claim orders nothing; the data goes through the slots' seq */
  return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
KILN_INLINE void kiln__ring_count_overflow(KILN_GLOBAL kiln_u32 *w) {
  /* relaxed: a statistic */
  __atomic_fetch_add((KILN_GLOBAL kiln_u64 *)(w + 128), (kiln_u64)1, __ATOMIC_RELAXED);
}
#else
#error "include kiln's dialect prelude first (KILN_C or KILN_CUDA must be defined)"
#endif

/* Word offsets of the layout (src/ring/ring_layout.h, in bytes / 4). */
#define KILN__RW_MAGIC 0
#define KILN__RW_KIND 2
#define KILN__RW_CAPACITY 3
#define KILN__RW_MESSAGE_BYTES 4
#define KILN__RW_SLOT_BYTES 5
#define KILN__RW_SLOTS_OFFSET 6
#define KILN__RW_TAIL 32
#define KILN__RW_HEAD_CACHE 33
#define KILN__RW_HEAD 64
#define KILN__RW_TAIL_CACHE 65
#define KILN__RW_OVERFLOW 128
#define KILN__RING_MAGIC_WORD 0x474e524bu
#define KILN__RING_KIND_SPSC 1u
#define KILN__RING_KIND_MPMC 2u

KILN_INLINE int kiln__ring_is(KILN_GLOBAL kiln_u32 *w, kiln_u32 kind) {
  return KILN__RL(&w[KILN__RW_MAGIC]) == KILN__RING_MAGIC_WORD && w[KILN__RW_KIND] == kind;
}

/* The slot of position pos: its seq word; the message follows 8 bytes later. */
KILN_INLINE KILN_GLOBAL kiln_u32 *kiln__ring_slot(KILN_GLOBAL kiln_u32 *w, kiln_u32 pos) {
  KILN_GLOBAL unsigned char *base = (KILN_GLOBAL unsigned char *)w + w[KILN__RW_SLOTS_OFFSET];
  return (KILN_GLOBAL kiln_u32 *)(base + (kiln_u64)(pos & (w[KILN__RW_CAPACITY] - 1u)) *
                                             w[KILN__RW_SLOT_BYTES]);
}

KILN_INLINE void kiln__ring_put(KILN_GLOBAL kiln_u32 *slot, const void *msg, kiln_u32 n) {
  KILN_GLOBAL unsigned char *d = (KILN_GLOBAL unsigned char *)(slot + 2);
  const unsigned char *s = (const unsigned char *)msg;
  for (kiln_u32 i = 0; i < n; i++)
    d[i] = s[i];
}

KILN_INLINE void kiln__ring_get(KILN_GLOBAL kiln_u32 *slot, void *msg, kiln_u32 n) {
  KILN_GLOBAL const unsigned char *s = (KILN_GLOBAL const unsigned char *)(slot + 2);
  unsigned char *d = (unsigned char *)msg;
  for (kiln_u32 i = 0; i < n; i++)
    d[i] = s[i];
}

KILN_INLINE int kiln_ring_push_spsc(KILN_GLOBAL kiln_u32 *w, const void *msg) {
  if (!kiln__ring_is(w, KILN__RING_KIND_SPSC))
    return -1;
  kiln_u32 cap = w[KILN__RW_CAPACITY];
  kiln_u32 t = KILN__RL(&w[KILN__RW_TAIL]);       /* this producer's own */
  kiln_u32 h = KILN__RL(&w[KILN__RW_HEAD_CACHE]); /* this producer's own copy */
  if (t - h == cap) {
    h = KILN__RA(&w[KILN__RW_HEAD]); /* pairs with the consumer's release of head */
    KILN__WR(&w[KILN__RW_HEAD_CACHE], h);
    if (t - h == cap) {
      kiln__ring_count_overflow(w);
      return 0;
    }
  }
  kiln__ring_put(kiln__ring_slot(w, t), msg, w[KILN__RW_MESSAGE_BYTES]);
  KILN__WREL(&w[KILN__RW_TAIL], t + 1u); /* pairs with the consumer's acquire of tail */
  return 1;
}

KILN_INLINE int kiln_ring_pop_spsc(KILN_GLOBAL kiln_u32 *w, void *msg) {
  if (!kiln__ring_is(w, KILN__RING_KIND_SPSC))
    return -1;
  kiln_u32 h = KILN__RL(&w[KILN__RW_HEAD]);       /* this consumer's own */
  kiln_u32 t = KILN__RL(&w[KILN__RW_TAIL_CACHE]); /* this consumer's own copy */
  if (t == h) {
    t = KILN__RA(&w[KILN__RW_TAIL]); /* pairs with the producer's release of tail */
    KILN__WR(&w[KILN__RW_TAIL_CACHE], t);
    if (t == h)
      return 0;
  }
  kiln__ring_get(kiln__ring_slot(w, h), msg, w[KILN__RW_MESSAGE_BYTES]);
  KILN__WREL(&w[KILN__RW_HEAD], h + 1u); /* pairs with the producer's acquire of head */
  return 1;
}

KILN_INLINE int kiln_ring_push_mpmc(KILN_GLOBAL kiln_u32 *w, const void *msg) {
  if (!kiln__ring_is(w, KILN__RING_KIND_MPMC))
    return -1;
  kiln_u32 pos = KILN__RL(&w[KILN__RW_TAIL]); /* a hint: the compare-exchange decides */
  for (;;) {
    KILN_GLOBAL kiln_u32 *slot = kiln__ring_slot(w, pos);
    kiln_u32 seq = KILN__RA(slot); /* pairs with the release of seq by the pop that freed it */
    int diff = (int)(seq - pos);
    if (diff == 0) {
      if (kiln__ring_cas(&w[KILN__RW_TAIL], &pos, pos + 1u)) {
        kiln__ring_put(slot, msg, w[KILN__RW_MESSAGE_BYTES]);
        KILN__WREL(slot, pos + 1u); /* pairs with the popper's acquire of seq */
        return 1;
      }
    } else if (diff < 0) {
      kiln_u32 now = KILN__RL(&w[KILN__RW_TAIL]);
      if (now == pos) {
        kiln__ring_count_overflow(w);
        return 0;
      }
      pos = now;
    } else {
      pos = KILN__RL(&w[KILN__RW_TAIL]);
    }
  }
}

KILN_INLINE int kiln_ring_pop_mpmc(KILN_GLOBAL kiln_u32 *w, void *msg) {
  if (!kiln__ring_is(w, KILN__RING_KIND_MPMC))
    return -1;
  kiln_u32 pos = KILN__RL(&w[KILN__RW_HEAD]); /* a hint: the compare-exchange decides */
  for (;;) {
    KILN_GLOBAL kiln_u32 *slot = kiln__ring_slot(w, pos);
    kiln_u32 seq = KILN__RA(slot); /* pairs with the pusher's release of seq */
    int diff = (int)(seq - (pos + 1u));
    if (diff == 0) {
      if (kiln__ring_cas(&w[KILN__RW_HEAD], &pos, pos + 1u)) {
        kiln__ring_get(slot, msg, w[KILN__RW_MESSAGE_BYTES]);
        /* pairs with the next lap's pusher's acquire of seq */
        KILN__WREL(slot, pos + w[KILN__RW_CAPACITY]);
        return 1;
      }
    } else if (diff < 0) {
      kiln_u32 now = KILN__RL(&w[KILN__RW_HEAD]);
      if (now == pos)
        return 0;
      pos = now;
    } else {
      pos = KILN__RL(&w[KILN__RW_HEAD]);
    }
  }
}

/* Messages in the ring (a snapshot), 0..capacity. */
KILN_INLINE kiln_u32 kiln_ring_used(KILN_GLOBAL kiln_u32 *w) {
  kiln_u32 n = KILN__RA(&w[KILN__RW_TAIL]) - KILN__RA(&w[KILN__RW_HEAD]);
  return (int)n < 0 ? 0u : n > w[KILN__RW_CAPACITY] ? w[KILN__RW_CAPACITY] : n;
}

#endif
