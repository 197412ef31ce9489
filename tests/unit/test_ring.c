/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* Message rings (include/kiln/ring.h, docs/ring.md) on one thread, plus the blocking
 * calls against a second thread: FIFO order, full and empty (NOT_READY, counted in the
 * overflow, kiln_last_error untouched), 32-bit index wrap-around (indices set near
 * 2^32 through the documented layout) and many laps of a small ring, message sizes
 * 1..64 KiB, batches, attach (a second handle on the same memory), the partitioned
 * group, timeouts and wakeups, every refusal with its status and the value it names,
 * an allocation-failure sweep over create (every N once, and from N on), and the
 * dialect header compiled here as host C against the library's own layout. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln_test.h"
#include "test_alloc.h"

typedef struct ring_mem {
  void *mem;
  size_t bytes;
} ring_mem;

static kiln_ring make_ring(ring_mem *m, kiln_ring_kind kind, uint32_t capacity,
                           uint32_t msg_bytes) {
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.kind = kind;
  d.capacity = capacity;
  d.message_bytes = msg_bytes;
  KT_OK(kiln_ring_bytes_needed(&d, &m->bytes));
  m->mem = aligned_alloc(128, (m->bytes + 127) & ~(size_t)127);
  assert_non_null(m->mem);
  memset(m->mem, 0xA5, m->bytes); /* init_in must not rely on zeroed memory */
  kiln_ring r = NULL;
  KT_OK(kiln_ring_init_in(m->mem, m->bytes, &d, &r));
  assert_non_null(r);
  return r;
}

static void drop_ring(kiln_ring r, ring_mem *m) {
  KT_OK(kiln_ring_destroy(r));
  free(m->mem);
}

/* The kind's single-message calls. */
static kiln_status push1(kiln_ring r, kiln_ring_kind k, const void *msg) {
  return k == KILN_RING_SPSC ? kiln_ring_try_push_spsc(r, msg) : kiln_ring_try_push_mpmc(r, msg);
}
static kiln_status pop1(kiln_ring r, kiln_ring_kind k, void *msg) {
  return k == KILN_RING_SPSC ? kiln_ring_try_pop_spsc(r, msg) : kiln_ring_try_pop_mpmc(r, msg);
}
static kiln_status push_n(kiln_ring r, kiln_ring_kind k, const void *msgs, size_t n, size_t *done) {
  return k == KILN_RING_SPSC ? kiln_ring_push_batch_spsc(r, msgs, n, done)
                             : kiln_ring_push_batch_mpmc(r, msgs, n, done);
}
static kiln_status pop_n(kiln_ring r, kiln_ring_kind k, void *msgs, size_t n, size_t *done) {
  return k == KILN_RING_SPSC ? kiln_ring_pop_batch_spsc(r, msgs, n, done)
                             : kiln_ring_pop_batch_mpmc(r, msgs, n, done);
}

static size_t count_of(kiln_ring r) {
  size_t n = 99999;
  KT_OK(kiln_ring_count(r, &n));
  return n;
}

static uint64_t overflow_of(kiln_ring r) {
  uint64_t n = 99999;
  KT_OK(kiln_ring_overflow_count(r, &n));
  return n;
}

static void fifo_full_empty(kiln_ring_kind k) {
  ring_mem m;
  kiln_ring r = make_ring(&m, k, 8, 8);
  uint64_t v = 0, out = 0;
  kiln_clear_error();
  assert_int_equal(pop1(r, k, &out), KILN_NOT_READY); /* empty from the start */
  for (v = 0; v < 8; v++)
    KT_OK(push1(r, k, &v));
  assert_int_equal(count_of(r), 8);
  assert_int_equal(push1(r, k, &v), KILN_NOT_READY); /* full */
  assert_int_equal(overflow_of(r), 1);
  /* NOT_READY is no error: the thread's detail stays clear */
  assert_int_equal(kiln_last_error()->status, KILN_SUCCESS);
  for (uint64_t i = 0; i < 8; i++) {
    KT_OK(pop1(r, k, &out));
    assert_int_equal(out, i);
  }
  assert_int_equal(pop1(r, k, &out), KILN_NOT_READY);
  assert_int_equal(count_of(r), 0);
  assert_int_equal(overflow_of(r), 1);
  drop_ring(r, &m);
}

static void spsc_fifo_full_empty(void **state) {
  (void)state;
  fifo_full_empty(KILN_RING_SPSC);
}
static void mpmc_fifo_full_empty(void **state) {
  (void)state;
  fifo_full_empty(KILN_RING_MPMC);
}

/* A ring of 4 for 100000 laps with a varying fill: every message comes back in order. */
static void many_laps(kiln_ring_kind k) {
  ring_mem m;
  kiln_ring r = make_ring(&m, k, 4, 4);
  uint32_t next_in = 0, next_out = 0;
  for (int lap = 0; lap < 100000; lap++) {
    int fill = 1 + lap % 4;
    for (int i = 0; i < fill; i++) {
      KT_OK(push1(r, k, &next_in));
      next_in++;
    }
    int drain = 1 + (lap * 7) % 4;
    for (int i = 0; i < drain && next_out < next_in; i++) {
      uint32_t got;
      KT_OK(pop1(r, k, &got));
      if (got != next_out)
        fail_msg("lap %d: popped %u, expected %u", lap, got, next_out);
      next_out++;
    }
    while (next_in - next_out > 2) { /* keep room for the next lap's fill */
      uint32_t got;
      KT_OK(pop1(r, k, &got));
      assert_int_equal(got, next_out);
      next_out++;
    }
  }
  assert_int_equal(overflow_of(r), 0);
  drop_ring(r, &m);
}

static void spsc_many_laps(void **state) {
  (void)state;
  many_laps(KILN_RING_SPSC);
}
static void mpmc_many_laps(void **state) {
  (void)state;
  many_laps(KILN_RING_MPMC);
}

/* The documented layout's words (docs/ring.md): indices at bytes 128 (tail), 132 (the
 * SPSC producer's copy of head), 256 (head), 260 (the consumer's copy of tail); slot i
 * at 640 + i * slot_bytes with its seq first. Start every index at `start` (for MPMC
 * each slot's seq at the position it is free for), as a ring that carried `start`
 * messages would be. */
static void set_indices(void *mem, uint32_t capacity, uint32_t slot_bytes, uint32_t start) {
  unsigned char *b = mem;
  uint32_t *w = (uint32_t *)mem;
  w[32] = w[33] = w[64] = w[65] = start;
  for (uint32_t i = 0; i < capacity; i++) {
    uint32_t pos =
        start + ((i - start) & (capacity - 1)); /* the first position >= start on slot i */
    memcpy(b + 640 + (size_t)i * slot_bytes, &pos, 4);
  }
}

static void wraps_at_2_pow_32(kiln_ring_kind k) {
  ring_mem m;
  kiln_ring r = make_ring(&m, k, 8, 12);
  kiln_ring_info info = KILN_RING_INFO_INIT;
  KT_OK(kiln_ring_get_info(r, &info));
  set_indices(m.mem, 8, info.slot_bytes, 0xFFFFFFF0u);
  uint32_t msg[3], next_in = 0, next_out = 0;
  for (int round = 0; round < 20; round++) { /* crosses 2^32 around round 3 */
    for (int i = 0; i < 6; i++) {
      msg[0] = next_in++;
      msg[1] = ~msg[0];
      msg[2] = 0x5a5a5a5au;
      KT_OK(push1(r, k, msg));
    }
    assert_int_equal(count_of(r), 6);
    size_t done = 0;
    uint32_t out[6][3];
    KT_OK(pop_n(r, k, out, 6, &done));
    assert_int_equal(done, 6);
    for (int i = 0; i < 6; i++) {
      assert_int_equal(out[i][0], next_out);
      assert_int_equal(out[i][1], ~next_out);
      next_out++;
    }
  }
  uint32_t tail;
  memcpy(&tail, (unsigned char *)m.mem + 128, 4);
  assert_int_equal(tail, 0xFFFFFFF0u + 120u); /* wrapped past zero */
  drop_ring(r, &m);
}

static void spsc_wraps_at_2_pow_32(void **state) {
  (void)state;
  wraps_at_2_pow_32(KILN_RING_SPSC);
}
static void mpmc_wraps_at_2_pow_32(void **state) {
  (void)state;
  wraps_at_2_pow_32(KILN_RING_MPMC);
}

/* Every size keeps its bytes; slot_bytes and the block size follow the layout. */
static void message_sizes(void **state) {
  (void)state;
  static const uint32_t sizes[] = {1, 3, 7, 8, 9, 56, 57, 64, 4096, 65536};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (int kk = 0; kk < 2; kk++) {
      kiln_ring_kind k = kk ? KILN_RING_MPMC : KILN_RING_SPSC;
      uint32_t n = sizes[s];
      ring_mem m;
      kiln_ring r = make_ring(&m, k, 4, n);
      kiln_ring_info info = KILN_RING_INFO_INIT;
      KT_OK(kiln_ring_get_info(r, &info));
      assert_int_equal(info.kind, k);
      assert_int_equal(info.capacity, 4);
      assert_int_equal(info.message_bytes, n);
      assert_int_equal(info.slot_bytes, 8 + ((n + 7) & ~7u));
      assert_int_equal(info.bytes, 640 + 4 * (size_t)info.slot_bytes);
      assert_ptr_equal(info.memory, m.mem);
      unsigned char *in = malloc(n + 1), *out = malloc(n + 1);
      assert_non_null(in);
      assert_non_null(out);
      for (int round = 0; round < 6; round++) {
        for (uint32_t i = 0; i < n; i++)
          in[i] = (unsigned char)(i * 31u + (unsigned)round * 7u + 1u);
        out[n] = 0xEE;
        KT_OK(push1(r, k, in));
        KT_OK(pop1(r, k, out));
        assert_memory_equal(in, out, n);
        assert_int_equal(out[n], 0xEE); /* nothing past the message written */
      }
      free(in);
      free(out);
      drop_ring(r, &m);
    }
  }
}

static void batches(kiln_ring_kind k) {
  ring_mem m;
  kiln_ring r = make_ring(&m, k, 8, 4);
  uint32_t in[20], out[20];
  for (uint32_t i = 0; i < 20; i++)
    in[i] = 100 + i;
  size_t done = 99;
  KT_OK(push_n(r, k, in, 0, &done)); /* count 0: nothing */
  assert_int_equal(done, 0);
  KT_OK(push_n(r, k, in, 10, &done));
  assert_int_equal(done, 8); /* as many as fit */
  assert_int_equal(overflow_of(r), 2);
  assert_int_equal(push_n(r, k, in, 3, &done), KILN_NOT_READY);
  assert_int_equal(done, 0);
  assert_int_equal(overflow_of(r), 5);
  KT_OK(pop_n(r, k, out, 5, &done));
  assert_int_equal(done, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(out[i], 100 + i);
  KT_OK(push_n(r, k, in + 8, 4, &done)); /* wraps around the end of the slots */
  assert_int_equal(done, 4);
  KT_OK(pop_n(r, k, out, 20, &done));
  assert_int_equal(done, 7);
  for (int i = 0; i < 7; i++)
    assert_int_equal(out[i], 105 + i);
  assert_int_equal(pop_n(r, k, out, 4, &done), KILN_NOT_READY);
  assert_int_equal(done, 0);
  drop_ring(r, &m);
}

static void spsc_batches(void **state) {
  (void)state;
  batches(KILN_RING_SPSC);
}
static void mpmc_batches(void **state) {
  (void)state;
  batches(KILN_RING_MPMC);
}

/* A second handle on the same memory sees the same ring; the first one's destroy
 * leaves the memory a ring. */
static void attach_shares_the_ring(void **state) {
  (void)state;
  ring_mem m;
  kiln_ring a = make_ring(&m, KILN_RING_MPMC, 16, 24);
  kiln_ring b = NULL;
  KT_OK(kiln_ring_attach(m.mem, m.bytes, &b));
  assert_ptr_not_equal(a, b);
  char msg[24] = "from a", got[24];
  KT_OK(kiln_ring_try_push_mpmc(a, msg));
  KT_OK(kiln_ring_try_pop_mpmc(b, got));
  assert_string_equal(got, "from a");
  KT_OK(kiln_ring_destroy(a));
  KT_EXPECT(kiln_ring_try_push_mpmc(a, msg), KILN_ERROR_INVALID_HANDLE);
  strcpy(msg, "from b");
  KT_OK(kiln_ring_try_push_mpmc(b, msg));
  KT_OK(kiln_ring_try_pop_mpmc(b, got));
  assert_string_equal(got, "from b");
  KT_OK(kiln_ring_destroy(b));
  KT_EXPECT(kiln_ring_destroy(b), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_ring_destroy(NULL));
  free(m.mem);
}

/* The refusals, each with its status and the value it names. */
static void bad_arguments(void **state) {
  (void)state;
  ring_mem m;
  kiln_ring s = make_ring(&m, KILN_RING_SPSC, 4, 8);
  uint64_t msg = 0;
  size_t done;
  KT_EXPECT_MSG(kiln_ring_try_push_spsc(NULL, &msg), KILN_ERROR_INVALID_HANDLE, "NULL");
  KT_EXPECT(kiln_ring_try_pop_mpmc((kiln_ring)&msg, &msg), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT_MSG(kiln_ring_try_push_mpmc(s, &msg), KILN_ERROR_INVALID_ARGUMENT, "SPSC ring");
  assert_non_null(strstr(kiln_last_error()->suggestion, "kiln_ring_try_push_spsc"));
  assert_string_equal(kiln_last_error()->function, "kiln_ring_try_push_mpmc");
  KT_EXPECT_MSG(kiln_ring_pop_wait_mpmc(s, &msg, 0), KILN_ERROR_INVALID_ARGUMENT, "SPSC");
  KT_EXPECT_MSG(kiln_ring_try_push_spsc(s, NULL), KILN_ERROR_INVALID_ARGUMENT, "msg is NULL");
  KT_EXPECT_MSG(kiln_ring_pop_batch_spsc(s, NULL, 2, &done), KILN_ERROR_INVALID_ARGUMENT, "msgs");
  KT_EXPECT_MSG(kiln_ring_pop_batch_spsc(s, &msg, 1, NULL), KILN_ERROR_INVALID_ARGUMENT, "done");
  KT_EXPECT_MSG(kiln_ring_count(s, NULL), KILN_ERROR_INVALID_ARGUMENT, "count");
  KT_EXPECT(kiln_ring_overflow_count(NULL, NULL), KILN_ERROR_INVALID_HANDLE);
  kiln_ring_info info = KILN_RING_INFO_INIT;
  info.struct_size = 8;
  KT_EXPECT_MSG(kiln_ring_get_info(s, &info), KILN_ERROR_INVALID_ARGUMENT, "struct_size is 8");

  kiln_ring_desc d = KILN_RING_DESC_INIT;
  size_t bytes = 0;
  d.capacity = 1000;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT, "1000");
  assert_non_null(strstr(kiln_last_error()->suggestion, "1024"));
  d.capacity = 1;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT, "capacity is 1");
  d.capacity = 0x80000000u;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT, "2147483648");
  d.capacity = 0;
  d.message_bytes = 65537;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT, "65537");
  d.message_bytes = 0;
  d.kind = (kiln_ring_kind)7;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT, "kind is 7");
  d = (kiln_ring_desc)KILN_RING_DESC_INIT;
  d.struct_size = 4;
  KT_EXPECT_MSG(kiln_ring_bytes_needed(&d, &bytes), KILN_ERROR_INVALID_ARGUMENT,
                "struct_size is 4");
  KT_EXPECT(kiln_ring_bytes_needed(NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_ring_bytes_needed(NULL, &bytes)); /* the defaults: 1024 slots of 64 bytes */
  assert_int_equal(bytes, 640 + 1024 * 64);

  kiln_ring r = (kiln_ring)&msg;
  unsigned char *raw = aligned_alloc(128, 4096);
  assert_non_null(raw);
  memset(raw, 0, 4096);
  KT_EXPECT_MSG(kiln_ring_init_in(raw + 32, 2048, NULL, &r), KILN_ERROR_INVALID_ARGUMENT,
                "not 64-byte aligned");
  assert_null(r);
  kiln_ring_desc small = KILN_RING_DESC_INIT;
  small.capacity = 64;
  KT_EXPECT_MSG(kiln_ring_init_in(raw, 4096, &small, &r), KILN_ERROR_INVALID_ARGUMENT, "4096");
  assert_non_null(strstr(kiln_last_error()->message, "4736")); /* 640 + 64 * 64 */
  KT_EXPECT(kiln_ring_init_in(NULL, 4096, NULL, &r), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_ring_init_in(raw, 4096, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_ring_attach(raw, 4096, &r), KILN_ERROR_INVALID_ARGUMENT, "holds no ring");
  KT_EXPECT_MSG(kiln_ring_attach(raw, 100, &r), KILN_ERROR_INVALID_ARGUMENT, "640");
  KT_EXPECT_MSG(kiln_ring_attach(m.mem, 700, &r), KILN_ERROR_INVALID_ARGUMENT, "700");
  unsigned char saved[16];
  memcpy(saved, m.mem, 16);
  ((uint32_t *)m.mem)[1] = 9; /* the layout version */
  KT_EXPECT_MSG(kiln_ring_attach(m.mem, m.bytes, &r), KILN_ERROR_INVALID_ARGUMENT, "version 9");
  memcpy(m.mem, saved, 16);
  ((uint32_t *)m.mem)[3] = 6; /* a capacity that is no power of two */
  KT_EXPECT_MSG(kiln_ring_attach(m.mem, m.bytes, &r), KILN_ERROR_INVALID_ARGUMENT, "6");
  memcpy(m.mem, saved, 16);
  assert_null(r);
  free(raw);

  KT_EXPECT(kiln_ring_create(NULL, NULL, &r), KILN_ERROR_INVALID_HANDLE);
  assert_null(r);
  KT_EXPECT(kiln_ring_create(NULL, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_ring_group g = (kiln_ring_group)&msg;
  KT_EXPECT_MSG(kiln_ring_group_create(NULL, NULL, 0, &g), KILN_ERROR_INVALID_ARGUMENT,
                "partitions is 0");
  assert_null(g);
  kiln_ring_desc sd = KILN_RING_DESC_INIT;
  sd.kind = KILN_RING_SPSC;
  KT_EXPECT_MSG(kiln_ring_group_create(NULL, &sd, 2, &g), KILN_ERROR_INVALID_ARGUMENT, "SPSC");
  KT_EXPECT(kiln_ring_group_push(NULL, 0, &msg), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_ring_group_pop((kiln_ring_group)&msg, 0, &msg), KILN_ERROR_INVALID_HANDLE);
  drop_ring(s, &m);
}

/* The dialect text is the header file, byte for byte. */
static void dialect_text_is_the_header(void **state) {
  (void)state;
  const char *here = __FILE__;
  const char *cut = strstr(here, "tests/unit/test_ring.c");
  assert_non_null(cut);
  char path[1024];
  snprintf(path, sizeof path, "%.*sinclude/kiln/dialect/ring.h", (int)(cut - here), here);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_string_equal(kiln_ring_dialect_source(), text);
}

/* ---- the blocking calls against a second thread */
typedef struct later {
  kiln_ring ring;
  int push; /* 1: push `value` after the delay, 0: pop one */
  uint64_t value, popped;
  kiln_status status;
} later;

static void *act_later(void *arg) {
  later *l = arg;
  struct timespec ts = {0, 20 * 1000 * 1000}; /* long enough for the other side to sleep */
  nanosleep(&ts, NULL);
  l->status = l->push ? kiln_ring_try_push_spsc(l->ring, &l->value)
                      : kiln_ring_try_pop_spsc(l->ring, &l->popped);
  return NULL;
}

static void blocking_calls(void **state) {
  (void)state;
  ring_mem m;
  kiln_ring r = make_ring(&m, KILN_RING_SPSC, 2, 8);
  uint64_t v = 7;
  assert_int_equal(kiln_ring_pop_wait_spsc(r, &v, 0), KILN_TIMEOUT);
  assert_int_equal(kiln_ring_pop_wait_spsc(r, &v, 2000000), KILN_TIMEOUT); /* 2 ms */
  /* a pop that sleeps is woken by the push of another thread */
  later l = {r, 1, 42, 0, KILN_ERROR_INTERNAL};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, act_later, &l), 0);
  KT_OK(kiln_ring_pop_wait_spsc(r, &v, KILN_RING_FOREVER));
  pthread_join(t, NULL);
  KT_OK(l.status);
  assert_int_equal(v, 42);
  /* a push into a full ring sleeps until another thread pops */
  for (v = 1; v <= 2; v++)
    KT_OK(kiln_ring_try_push_spsc(r, &v));
  assert_int_equal(kiln_ring_push_wait_spsc(r, &v, 1000000), KILN_TIMEOUT);
  assert_int_equal(overflow_of(r), 1); /* the timed-out push */
  later p = {r, 0, 0, 0, KILN_ERROR_INTERNAL};
  assert_int_equal(pthread_create(&t, NULL, act_later, &p), 0);
  v = 3;
  KT_OK(kiln_ring_push_wait_spsc(r, &v, KILN_RING_FOREVER));
  pthread_join(t, NULL);
  KT_OK(p.status);
  assert_int_equal(p.popped, 1);
  for (uint64_t want = 2; want <= 3; want++) {
    KT_OK(kiln_ring_pop_wait_spsc(r, &v, 0));
    assert_int_equal(v, want);
  }
  drop_ring(r, &m);
  /* the MPMC forms, without another thread */
  kiln_ring q = make_ring(&m, KILN_RING_MPMC, 2, 8);
  v = 5;
  KT_OK(kiln_ring_push_wait_mpmc(q, &v, 0));
  KT_OK(kiln_ring_push_wait_mpmc(q, &v, 0));
  assert_int_equal(kiln_ring_push_wait_mpmc(q, &v, 100000), KILN_TIMEOUT);
  KT_OK(kiln_ring_pop_wait_mpmc(q, &v, 0));
  KT_OK(kiln_ring_pop_wait_mpmc(q, &v, KILN_RING_FOREVER));
  assert_int_equal(kiln_ring_pop_wait_mpmc(q, &v, 100000), KILN_TIMEOUT);
  drop_ring(q, &m);
}

/* ---- rings in a context's pinned memory, groups */
static void created_in_pinned_memory(void **state) {
  kt_env *env = *state;
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.capacity = 64;
  kiln_ring r = NULL;
  KT_OK(kiln_ring_create(env->ctx, &d, &r));
  kiln_ring_info info = KILN_RING_INFO_INIT;
  KT_OK(kiln_ring_get_info(r, &info));
  assert_int_equal(info.kind, KILN_RING_MPMC); /* the default */
  assert_int_equal(info.message_bytes, 56);
  assert_int_equal(info.slot_bytes, 64);
  int pinned = 0;
  KT_OK(kiln_host_is_pinned(env->ctx, info.memory, info.bytes, &pinned));
  assert_int_equal(pinned, 1);
  char msg[56] = "hello", got[56];
  KT_OK(kiln_ring_try_push_mpmc(r, msg));
  KT_OK(kiln_ring_try_pop_mpmc(r, got));
  assert_string_equal(got, "hello");
  KT_OK(kiln_ring_destroy(r));
  KT_OK(kiln_host_is_pinned(env->ctx, info.memory, 8, &pinned));
  assert_int_equal(pinned, 0); /* freed with the ring */
}

static void group_push_and_steal(void **state) {
  kt_env *env = *state;
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.capacity = 4;
  d.message_bytes = 4;
  kiln_ring_group g = NULL;
  KT_OK(kiln_ring_group_create(env->ctx, &d, 3, &g));
  kiln_ring parts[3];
  for (uint32_t i = 0; i < 3; i++)
    KT_OK(kiln_ring_group_get_ring(g, i, &parts[i]));
  kiln_ring none = parts[0];
  KT_EXPECT_MSG(kiln_ring_group_get_ring(g, 3, &none), KILN_ERROR_OUT_OF_RANGE, "3");
  assert_null(none);
  uint32_t v;
  for (v = 0; v < 4; v++)
    KT_OK(kiln_ring_group_push(g, 4 /* partition 1 */, &v));
  assert_int_equal(count_of(parts[1]), 4);
  KT_OK(kiln_ring_group_push(g, 1, &v)); /* partition 1 full: goes to 2 */
  assert_int_equal(count_of(parts[2]), 1);
  for (v = 5; v < 12; v++)
    KT_OK(kiln_ring_group_push(g, (uint32_t)v, &v));
  assert_int_equal(kiln_ring_group_push(g, 0, &v), KILN_NOT_READY); /* all 12 slots used */
  assert_int_equal(overflow_of(parts[0]), 1);
  /* partition 0's pops take its own first, then steal from 1 and 2 */
  uint32_t seen = 0, got;
  int n = 0;
  while (kiln_ring_group_pop(g, 0, &got) == KILN_SUCCESS) {
    assert_true(got < 12);
    assert_false(seen & (1u << got));
    seen |= 1u << got;
    n++;
  }
  assert_int_equal(n, 12);
  KT_EXPECT_MSG(kiln_ring_group_pop(g, 3, &got), KILN_ERROR_OUT_OF_RANGE, "partition 3");
  KT_OK(kiln_ring_group_destroy(g));
  KT_EXPECT(kiln_ring_group_destroy(g), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_ring_try_pop_mpmc(parts[0], &got), KILN_ERROR_INVALID_HANDLE);
}

/* Allocation failures in create (a group of three rings of 2 MiB each, so every ring
 * is an allocation of its own): every N once, then every call from N on; each run
 * ends in SUCCESS or OUT_OF_HOST_MEMORY with nothing left live. */
static int run_group_create(kiln_device dev, int mode, size_t n, size_t *calls) {
  kiln_context ctx;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.capacity = 32768; /* 32768 * 64 bytes */
  kt_alloc_set_mode((kt_alloc_mode)mode, n);
  kiln_ring_group g = NULL;
  kiln_status s = kiln_ring_group_create(ctx, &d, 3, &g);
  size_t made = kt_alloc_calls();
  kt_alloc_fail_none();
  if (calls)
    *calls = made;
  if (s == KILN_SUCCESS) {
    assert_non_null(g);
    unsigned char msg[56] = {1}; /* the default message size */
    KT_OK(kiln_ring_group_push(g, 2, msg));
    KT_OK(kiln_ring_group_destroy(g));
  } else {
    KT_EXPECT(s, KILN_ERROR_OUT_OF_HOST_MEMORY);
    assert_null(g);
  }
  KT_OK(kiln_context_destroy(ctx));
  if (!kt_alloc_check_clean("test_ring.create_allocation_failures"))
    fail_msg("mode %d, n %zu: blocks left live", mode, n);
  return s == KILN_SUCCESS;
}

static void create_allocation_failures(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  KT_OK(kt_alloc_install());
  size_t calls = 0;
  assert_true(run_group_create(dev, KT_ALLOC_NEVER_FAIL, 0, &calls));
  /* the group's array and at least one allocation per ring */
  if (calls < 4)
    fail_msg("a clean group create made %zu allocation calls, expected at least 4", calls);
  int failed = 0;
  for (size_t n = 1; n <= calls; n++) {
    failed += !run_group_create(dev, KT_ALLOC_FAIL_NTH, n, NULL);
    failed += !run_group_create(dev, KT_ALLOC_FAIL_FROM, n, NULL);
  }
  assert_int_equal(failed, 2 * (int)calls); /* every injected failure surfaced */
  KT_OK(kt_alloc_uninstall());
}

/* ---- the dialect header, compiled here as host C (what the CPU backend's compiler
 * sees after the prelude), against the library's rings */
#define KILN_C 1
#define KILN_INLINE static inline
#define KILN_GLOBAL
typedef uint32_t kiln_u32;
typedef uint64_t kiln_u64;
#include "kiln/dialect/ring.h"

static void dialect_agrees_with_the_library(void **state) {
  (void)state;
  for (int kk = 0; kk < 2; kk++) {
    kiln_ring_kind k = kk ? KILN_RING_MPMC : KILN_RING_SPSC;
    ring_mem m;
    kiln_ring r = make_ring(&m, k, 4, 12);
    kiln_u32 *w = m.mem;
    int (*dpush)(kiln_u32 *, const void *) = kk ? kiln_ring_push_mpmc : kiln_ring_push_spsc;
    int (*dpop)(kiln_u32 *, void *) = kk ? kiln_ring_pop_mpmc : kiln_ring_pop_spsc;
    int (*other)(kiln_u32 *, const void *) = kk ? kiln_ring_push_spsc : kiln_ring_push_mpmc;
    uint32_t msg[3] = {1, 2, 3}, got[3];
    assert_int_equal(other(w, msg), -1); /* the other kind's call */
    for (uint32_t lap = 0; lap < 10; lap++) {
      /* device -> host */
      for (uint32_t i = 0; i < 4; i++) {
        msg[0] = lap * 100 + i;
        assert_int_equal(dpush(w, msg), 1);
      }
      assert_int_equal(dpush(w, msg), 0); /* full */
      assert_int_equal(kiln_ring_used(w), 4);
      for (uint32_t i = 0; i < 4; i++) {
        KT_OK(pop1(r, k, got));
        assert_int_equal(got[0], lap * 100 + i);
        assert_int_equal(got[2], 3);
      }
      /* host -> device */
      for (uint32_t i = 0; i < 3; i++) {
        msg[0] = lap * 1000 + i;
        KT_OK(push1(r, k, msg));
      }
      for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(dpop(w, got), 1);
        assert_int_equal(got[0], lap * 1000 + i);
      }
      assert_int_equal(dpop(w, got), 0); /* empty */
    }
    assert_int_equal(overflow_of(r), 10); /* the device's refused pushes count */
    drop_ring(r, &m);
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(spsc_fifo_full_empty),
    cmocka_unit_test(mpmc_fifo_full_empty),
    cmocka_unit_test(spsc_many_laps),
    cmocka_unit_test(mpmc_many_laps),
    cmocka_unit_test(spsc_wraps_at_2_pow_32),
    cmocka_unit_test(mpmc_wraps_at_2_pow_32),
    cmocka_unit_test(message_sizes),
    cmocka_unit_test(spsc_batches),
    cmocka_unit_test(mpmc_batches),
    cmocka_unit_test(attach_shares_the_ring),
    cmocka_unit_test(bad_arguments),
    cmocka_unit_test(dialect_text_is_the_header),
    cmocka_unit_test(blocking_calls),
    cmocka_unit_test_setup_teardown(created_in_pinned_memory, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(group_push_and_steal, kt_setup, kt_teardown),
    cmocka_unit_test(create_allocation_failures),
    cmocka_unit_test(dialect_agrees_with_the_library),
};
KT_MAIN_CPU(tests)
