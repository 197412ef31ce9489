/* SPDX-License-Identifier: MIT */
/* Cross-stream hazard patterns shared by test_hazards.c (CPU backend, KILN_CPU_SHUFFLE)
 * and test_hazards_mock.c (mock backend, shuffle_seed + delay_ns). Each pattern queues,
 * in one go, work on 2-4 streams whose only ordering is kiln's automatic hazard
 * tracking (no events, no waits in between), then checks values that come out right
 * only if every dependency was honoured:
 *   RAW  a slow kernel writes X on stream 0; a copy X->Y on stream 1 and a read on the
 *        last stream must see the new value (a missing read-after-write dependency lets
 *        the copy run during the kernel's delay and see the previous iteration's value);
 *   WAR  slow kernels on 1-3 streams read X while the last stream then overwrites X: the
 *        readers must see the old value (a missing write-after-read dependency lets the
 *        fast fill land inside their delay);
 *   WAW  every stream writes X in turn, earlier writers slower: the final value must be
 *        the last writer's (a missing write-after-write dependency lets a slow earlier
 *        writer finish last);
 *   RW   a READ_WRITE kernel parameter is a write: increments on different streams
 *        must all be applied, in order.
 * Each iteration uses new values, so a stale value is always a detectable mismatch;
 * random kernel delays and the backend's shuffled op start make the forbidden
 * orderings likely whenever a dependency is missing (and a missing dependency is also
 * a data race TSan reports). hz_detects_missing_dependency shows, deterministically
 * with a gate, that the RAW check does fail when kiln is not told of a write.
 * Kernels never assert; the test thread checks everything. */
#ifndef KILN_TEST_HAZARD_PATTERNS_H
#define KILN_TEST_HAZARD_PATTERNS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln_test.h"

#define HZ_N 64 /* uint32 per buffer */
#define HZ_STREAMS 4
#define HZ_MAX_DELAY_US 120u

typedef struct hz {
  kiln_context ctx;
  kiln_stream s[HZ_STREAMS];
  kiln_buffer x, y, z[HZ_STREAMS];
  kiln_kernel set, copy, add;
  uint64_t rng;
  size_t iters;
} hz;

static size_t hz_iterations(size_t def) {
  const char *v = getenv("KILN_HAZARD_ITERS");
  if (!v || !*v)
    return def;
  unsigned long long n = strtoull(v, NULL, 10);
  return n >= 1 && n <= 1000000 ? (size_t)n : def;
}

static uint32_t hz_rand(hz *h) {
  h->rng ^= h->rng << 13;
  h->rng ^= h->rng >> 7;
  h->rng ^= h->rng << 17;
  return (uint32_t)(h->rng >> 11);
}

static uint32_t hz_delay(hz *h) {
  return hz_rand(h) % (HZ_MAX_DELAY_US + 1);
}

static void hz_sleep_us(uint32_t us) {
  if (!us)
    return;
  struct timespec ts = {0, (long)us * 1000L};
  nanosleep(&ts, NULL);
}

static uint32_t hz_scalar(void *const *args, int i) {
  uint32_t v;
  memcpy(&v, args[i], sizeof v);
  return v;
}

/* "hz_set"(X WRITE, value, delay_us): sleep, then X[i] = value + i. */
static void hz_set_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *x = args[0];
  uint32_t value = hz_scalar(args, 1);
  hz_sleep_us(hz_scalar(args, 2));
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    x[i] = value + (uint32_t)i;
}

/* "hz_copy"(src READ, dst WRITE, delay_us): read src[0], sleep, then copy (the value
 * read before the delay must still be the one after it: a reader that overlaps a
 * write sees a torn result). */
static void hz_copy_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const uint32_t *src = args[0];
  uint32_t *dst = args[1];
  uint32_t first = src[r->begin[0]];
  hz_sleep_us(hz_scalar(args, 2));
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    dst[i] = src[i];
  dst[r->begin[0]] = first;
}

/* "hz_add"(X READ_WRITE, add, delay_us): read, sleep, write back + add. */
static void hz_add_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *x = args[0];
  uint32_t add = hz_scalar(args, 1);
  uint32_t tmp[HZ_N];
  size_t n = r->end[0] - r->begin[0];
  if (n > HZ_N)
    n = HZ_N;
  for (size_t i = 0; i < n; i++)
    tmp[i] = x[r->begin[0] + i];
  hz_sleep_us(hz_scalar(args, 2));
  for (size_t i = 0; i < n; i++)
    x[r->begin[0] + i] = tmp[i] + add;
}

static kiln_kernel hz_kernel(kiln_context ctx, const char *name, kiln_native_fn fn,
                             const kiln_param *params, size_t count) {
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = name;
  d.fn = fn;
  d.params = params;
  d.param_count = count;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

static kiln_buffer hz_buffer(kiln_context ctx, const char *label) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = HZ_N * sizeof(uint32_t);
  d.label = label;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(ctx, &d, &b));
  return b;
}

static void hz_open(hz *h, kiln_device dev, uint64_t seed, size_t iters) {
  static const kiln_param set_p[] = {{KILN_PARAM_BUFFER_WRITE, 0},
                                     {KILN_PARAM_SCALAR, sizeof(uint32_t)},
                                     {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  static const kiln_param copy_p[] = {{KILN_PARAM_BUFFER_READ, 0},
                                      {KILN_PARAM_BUFFER_WRITE, 0},
                                      {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  static const kiln_param add_p[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0},
                                     {KILN_PARAM_SCALAR, sizeof(uint32_t)},
                                     {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  memset(h, 0, sizeof *h);
  h->rng = seed | 1u;
  h->iters = iters;
  KT_OK(kiln_context_create(dev, NULL, &h->ctx));
  for (int i = 0; i < HZ_STREAMS; i++)
    KT_OK(kiln_stream_create(h->ctx, NULL, &h->s[i]));
  h->x = hz_buffer(h->ctx, "X");
  h->y = hz_buffer(h->ctx, "Y");
  for (int i = 0; i < HZ_STREAMS; i++)
    h->z[i] = hz_buffer(h->ctx, "Z");
  h->set = hz_kernel(h->ctx, "hz_set", hz_set_fn, set_p, 3);
  h->copy = hz_kernel(h->ctx, "hz_copy", hz_copy_fn, copy_p, 3);
  h->add = hz_kernel(h->ctx, "hz_add", hz_add_fn, add_p, 3);
}

static void hz_close(hz *h) {
  KT_OK(kiln_context_destroy(h->ctx));
}

static KILN_NODISCARD kiln_status hz_set_async(hz *h, kiln_stream s, kiln_buffer x, uint32_t value,
                                               uint32_t delay_us, kiln_pending *t) {
  kiln_arg a[3] = {kiln_arg_buffer(x), kiln_arg_scalar(&value, sizeof value),
                   kiln_arg_scalar(&delay_us, sizeof delay_us)};
  kiln_range r = kiln_range_1d(HZ_N);
  return kiln_launch_async(s, h->set, &r, a, 3, t);
}

static KILN_NODISCARD kiln_status hz_copy_async(hz *h, kiln_stream s, kiln_buffer dst,
                                                kiln_buffer src, uint32_t delay_us,
                                                kiln_pending *t) {
  kiln_arg a[3] = {kiln_arg_buffer(src), kiln_arg_buffer(dst),
                   kiln_arg_scalar(&delay_us, sizeof delay_us)};
  kiln_range r = kiln_range_1d(HZ_N);
  return kiln_launch_async(s, h->copy, &r, a, 3, t);
}

static KILN_NODISCARD kiln_status hz_add_async(hz *h, kiln_stream s, kiln_buffer x, uint32_t add,
                                               uint32_t delay_us, kiln_pending *t) {
  kiln_arg a[3] = {kiln_arg_buffer(x), kiln_arg_scalar(&add, sizeof add),
                   kiln_arg_scalar(&delay_us, sizeof delay_us)};
  kiln_range r = kiln_range_1d(HZ_N);
  return kiln_launch_async(s, h->add, &r, a, 3, t);
}

/* out[i] == value + i for every i, else fail naming the pattern and iteration. */
static void hz_expect(const uint32_t *out, uint32_t value, const char *what, size_t iter,
                      int streams) {
  for (uint32_t i = 0; i < HZ_N; i++)
    if (out[i] != value + i)
      fail_msg("%s, %d streams, iteration %zu: word %u is 0x%08x, expected 0x%08x: a "
               "cross-stream dependency was not honoured",
               what, streams, iter, i, out[i], value + i);
}

/* 1 when out[i] == value + i for every i (no assertion). */
static int hz_matches(const uint32_t *out, uint32_t value) {
  for (uint32_t i = 0; i < HZ_N; i++)
    if (out[i] != value + i)
      return 0;
  return 1;
}

#define HZ_MAX_TOKENS 16

/* RAW over `streams` (2..4) streams. */
static void hz_raw(hz *h, int streams) {
  uint32_t out_x[HZ_N], out_y[HZ_N];
  for (size_t it = 0; it < h->iters; it++) {
    uint32_t v = (uint32_t)(it + 1) << 12;
    kiln_pending t[HZ_MAX_TOKENS];
    size_t n = 0;
    kiln_stream last = h->s[streams - 1];
    KT_OK(hz_set_async(h, h->s[0], h->x, v, hz_delay(h), &t[n++])); /* X = v */
    KT_OK(hz_copy_async(h, h->s[1], h->y, h->x, 0, &t[n++]));       /* Y = X */
    if (streams > 2)
      KT_OK(hz_add_async(h, h->s[2], h->y, 1, hz_delay(h), &t[n++])); /* Y += 1 */
    KT_OK(kiln_buffer_read_async(last, h->y, 0, sizeof out_y, out_y, &t[n++]));
    KT_OK(kiln_buffer_read_async(h->s[1], h->x, 0, sizeof out_x, out_x, &t[n++]));
    KT_OK(kiln_wait_all(t, n));
    hz_expect(out_x, v, "RAW read of X", it, streams);
    hz_expect(out_y, streams > 2 ? v + 1 : v, "RAW copy/add of Y", it, streams);
  }
}

/* WAR: readers on streams 0..streams-2, the writer on the last stream. */
static void hz_war(hz *h, int streams) {
  uint32_t out[HZ_STREAMS][HZ_N], out_x[HZ_N];
  uint32_t old = 0x10000000u;
  { /* X = old, ordered before everything below by the hazards themselves */
    kiln_pending t;
    KT_OK(hz_set_async(h, h->s[0], h->x, old, 0, &t));
    KT_OK(kiln_wait(&t));
  }
  for (size_t it = 0; it < h->iters; it++) {
    uint32_t next = old + 0x1000u;
    kiln_pending t[HZ_MAX_TOKENS];
    size_t n = 0;
    int readers = streams - 1;
    for (int r = 0; r < readers; r++) /* slow readers of X */
      KT_OK(hz_copy_async(h, h->s[r], h->z[r], h->x, hz_delay(h), &t[n++]));
    /* a plain read of X too, on the first stream */
    KT_OK(kiln_buffer_read_async(h->s[0], h->x, 0, sizeof out_x, out_x, &t[n++]));
    /* the writer: fast, on its own stream; must wait for every reader since the last
     * write. Alternate a fill and a kernel write. */
    kiln_stream w = h->s[streams - 1];
    if (it & 1) {
      KT_OK(hz_set_async(h, w, h->x, next, 0, &t[n++]));
    } else {
      uint32_t buf[HZ_N];
      for (uint32_t i = 0; i < HZ_N; i++)
        buf[i] = next + i;
      KT_OK(kiln_buffer_write_async(w, h->x, 0, sizeof buf, buf, &t[n]));
      KT_OK(kiln_wait(&t[n])); /* its source is guarded until waited */
    }
    for (int r = 0; r < readers; r++)
      KT_OK(kiln_buffer_read_async(h->s[readers], h->z[r], 0, sizeof out[r], out[r], &t[n++]));
    KT_OK(kiln_wait_all(t, n));
    for (int r = 0; r < readers; r++)
      hz_expect(out[r], old, "WAR reader copy of X", it, streams);
    hz_expect(out_x, old, "WAR read of X", it, streams);
    old = next;
  }
  uint32_t final[HZ_N];
  kiln_pending t;
  KT_OK(kiln_buffer_read_async(h->s[0], h->x, 0, sizeof final, final, &t));
  KT_OK(kiln_wait(&t));
  hz_expect(final, old, "WAR final X", h->iters, streams);
}

/* WAW: stream k writes X = base + k, earlier streams slower; the last write wins. */
static void hz_waw(hz *h, int streams) {
  uint32_t out[HZ_N];
  for (size_t it = 0; it < h->iters; it++) {
    uint32_t base = 0x20000000u + ((uint32_t)it << 8);
    kiln_pending t[HZ_MAX_TOKENS];
    size_t n = 0;
    for (int k = 0; k < streams; k++) {
      uint32_t delay =
          (uint32_t)(streams - 1 - k) * (HZ_MAX_DELAY_US / (uint32_t)streams) + hz_rand(h) % 20u;
      if (k == streams - 1 && (it & 1)) {
        uint32_t pat = 0; /* the last writer: a fill then a RW kernel, both on stream k */
        KT_OK(kiln_buffer_fill_async(h->s[k], h->x, 0, sizeof out, &pat, 4, &t[n++]));
        KT_OK(hz_add_async(h, h->s[k], h->x, base + (uint32_t)k, 0, &t[n++]));
        /* X[i] = 0 + base + k in every word */
      } else {
        KT_OK(hz_set_async(h, h->s[k], h->x, base + (uint32_t)k, delay, &t[n++]));
      }
    }
    KT_OK(kiln_buffer_read_async(h->s[0], h->x, 0, sizeof out, out, &t[n++]));
    KT_OK(kiln_wait_all(t, n));
    uint32_t want = base + (uint32_t)(streams - 1);
    if (it & 1) {
      for (uint32_t i = 0; i < HZ_N; i++)
        if (out[i] != want)
          fail_msg("WAW (fill+add last), %d streams, iteration %zu: word %u is 0x%08x, "
                   "expected 0x%08x: a cross-stream dependency was not honoured",
                   streams, it, i, out[i], want);
    } else {
      hz_expect(out, want, "WAW final X", it, streams);
    }
  }
}

/* RW: READ_WRITE parameters are writes: increments on every stream in turn. */
static void hz_rw_param(hz *h, int streams) {
  uint32_t out[HZ_N];
  kiln_pending t0;
  KT_OK(hz_set_async(h, h->s[0], h->y, 0, 0, &t0));
  KT_OK(kiln_wait(&t0));
  uint32_t expect = 0;
  for (size_t it = 0; it < h->iters; it++) {
    kiln_pending t[HZ_MAX_TOKENS];
    size_t n = 0;
    for (int k = 0; k < streams; k++) {
      uint32_t add = (uint32_t)k + 1u;
      KT_OK(hz_add_async(h, h->s[k], h->y, add, hz_delay(h) / 2u, &t[n++]));
      expect += add;
    }
    /* lost updates (two adds overlapping) show as a smaller sum */
    KT_OK(kiln_buffer_read_async(h->s[(it + 1) % (size_t)streams], h->y, 0, sizeof out, out,
                                 &t[n++]));
    KT_OK(kiln_wait_all(t, n));
    hz_expect(out, expect, "RW increments of Y", it, streams);
  }
}

static uint64_t hz_cross_waits(hz *h) {
  kiln_context_stats st = KILN_CONTEXT_STATS_INIT;
  KT_OK(kiln_context_get_stats(h->ctx, &st));
  return st.cross_stream_waits;
}

/* A long chain on one stream adds no cross-stream wait; the same chain with a
 * consumer on another stream does. Only _async calls (blocking calls use the
 * context's internal stream). */
static void hz_same_stream_chain(hz *h) {
  uint64_t before = hz_cross_waits(h);
  uint32_t out[HZ_N];
  kiln_stream s = h->s[0];
  for (int round = 0; round < 100; round++) {
    kiln_pending t[6];
    uint32_t v = 0x30000000u + (uint32_t)round * 16u;
    uint32_t pat = 7;
    KT_OK(kiln_buffer_fill_async(s, h->x, 0, sizeof out, &pat, 4, &t[0]));
    KT_OK(hz_set_async(h, s, h->x, v, 0, &t[1]));
    KT_OK(hz_copy_async(h, s, h->y, h->x, 0, &t[2]));
    KT_OK(hz_add_async(h, s, h->y, 1, 0, &t[3]));
    KT_OK(kiln_buffer_copy_async(s, h->x, 0, h->y, 0, sizeof out, &t[4]));
    KT_OK(kiln_buffer_read_async(s, h->x, 0, sizeof out, out, &t[5]));
    KT_OK(kiln_wait_all(t, 6));
    hz_expect(out, v + 1, "same-stream chain", (size_t)round, 1);
  }
  uint64_t after = hz_cross_waits(h);
  if (after != before)
    fail_msg("a chain on one stream added %llu cross-stream wait(s)",
             (unsigned long long)(after - before));
  /* the same buffer used from another stream: a dependency is added */
  kiln_pending t[2];
  KT_OK(hz_set_async(h, h->s[0], h->x, 0x31000000u, 20, &t[0]));
  KT_OK(kiln_buffer_read_async(h->s[1], h->x, 0, sizeof out, out, &t[1]));
  KT_OK(kiln_wait_all(t, 2));
  hz_expect(out, 0x31000000u, "cross-stream read", 0, 2);
  if (hz_cross_waits(h) <= after)
    fail_msg("a cross-stream read added no cross-stream wait");
}

/* ---- the checks can fail: a write kiln is not told about is not waited for ---- */

static _Atomic(uint32_t *) hz_captured;

/* "hz_capture"(X READ): remembers X's storage (CPU-backed devices: host memory). */
static void hz_capture_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  atomic_store(&hz_captured, (uint32_t *)args[0]);
}

/* "hz_blind_set"(gate SCALAR, ptr SCALAR, value SCALAR): after the gate opens, writes
 * X through a raw pointer: a write kiln cannot see (no buffer argument). */
static void hz_blind_set_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  kt_gate *gate;
  uint32_t *x;
  uint32_t value;
  memcpy(&gate, args[0], sizeof gate);
  memcpy(&x, args[1], sizeof x);
  memcpy(&value, args[2], sizeof value);
  while (!atomic_load(&gate->open))
    hz_sleep_us(50);
  for (uint32_t i = 0; i < HZ_N; i++)
    x[i] = value + i;
}

/* "hz_gated_set"(X WRITE, gate SCALAR, value SCALAR): the same write, declared. */
static void hz_gated_set_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  uint32_t *x = args[0];
  kt_gate *gate;
  uint32_t value;
  memcpy(&gate, args[1], sizeof gate);
  memcpy(&value, args[2], sizeof value);
  while (!atomic_load(&gate->open))
    hz_sleep_us(50);
  for (uint32_t i = 0; i < HZ_N; i++)
    x[i] = value + i;
}

static void hz_detects_missing_dependency(hz *h) {
  static const kiln_param cap_p[] = {{KILN_PARAM_BUFFER_READ, 0}};
  static const kiln_param blind_p[] = {{KILN_PARAM_SCALAR, sizeof(void *)},
                                       {KILN_PARAM_SCALAR, sizeof(void *)},
                                       {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  static const kiln_param gated_p[] = {{KILN_PARAM_BUFFER_WRITE, 0},
                                       {KILN_PARAM_SCALAR, sizeof(void *)},
                                       {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  kiln_kernel cap = hz_kernel(h->ctx, "hz_capture", hz_capture_fn, cap_p, 1);
  kiln_kernel blind = hz_kernel(h->ctx, "hz_blind_set", hz_blind_set_fn, blind_p, 3);
  kiln_kernel gated = hz_kernel(h->ctx, "hz_gated_set", hz_gated_set_fn, gated_p, 3);
  kiln_range one = kiln_range_1d(1);
  uint32_t out[HZ_N];
  kiln_pending t;
  KT_OK(hz_set_async(h, h->s[0], h->x, 0x40000000u, 0, &t)); /* the old value */
  KT_OK(kiln_wait(&t));
  kiln_arg ca = kiln_arg_buffer(h->x);
  KT_OK(kiln_launch(h->s[0], cap, &one, &ca, 1));
  uint32_t *xp = atomic_load(&hz_captured);
  assert_non_null(xp);

  /* 1. the writer is invisible to kiln: the RAW read on another stream does not wait
   *    for it, completes while the writer is still held, and the RAW check fails. */
  kt_gate g1;
  kt_gate_init(&g1);
  kt_gate *g1p = &g1;
  uint32_t v1 = 0x41000000u;
  kiln_arg ba[3] = {kiln_arg_scalar(&g1p, sizeof g1p), kiln_arg_scalar(&xp, sizeof xp),
                    kiln_arg_scalar(&v1, sizeof v1)};
  kiln_pending tw, tr;
  KT_OK(kiln_launch_async(h->s[0], blind, &one, ba, 3, &tw));
  KT_OK(kiln_buffer_read_async(h->s[1], h->x, 0, sizeof out, out, &tr));
  KT_OK(kiln_wait(&tr)); /* returns although the write has not happened */
  int raw_check_passed = hz_matches(out, v1);
  kt_gate_open(&g1);
  KT_OK(kiln_wait(&tw));
  if (raw_check_passed)
    fail_msg("the RAW check passed although its writer was never ordered before the read: "
             "the pattern could not detect a missing dependency");
  assert_true(hz_matches(out, 0x40000000u));

  /* 2. the same write declared: the read waits for it (still pending while the writer
   *    is held, whatever the timing), and the RAW check passes. */
  kt_gate g2;
  kt_gate_init(&g2);
  kt_gate *g2p = &g2;
  uint32_t v2 = 0x42000000u;
  kiln_arg ga[3] = {kiln_arg_buffer(h->x), kiln_arg_scalar(&g2p, sizeof g2p),
                    kiln_arg_scalar(&v2, sizeof v2)};
  KT_OK(kiln_launch_async(h->s[0], gated, &one, ga, 3, &tw));
  KT_OK(kiln_buffer_read_async(h->s[1], h->x, 0, sizeof out, out, &tr));
  for (int i = 0; i < 20; i++) {
    assert_int_equal(kiln_pending_query(&tr), KILN_NOT_READY);
    kt_sleep_us(500);
  }
  kt_gate_open(&g2);
  KT_OK(kiln_wait(&tr));
  KT_OK(kiln_wait(&tw));
  assert_true(hz_matches(out, v2));
  KT_OK(kiln_kernel_destroy(cap));
  KT_OK(kiln_kernel_destroy(blind));
  KT_OK(kiln_kernel_destroy(gated));
}

#endif
