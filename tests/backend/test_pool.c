/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu opencl mock cuda cuda-fake */
/* kiln-test-labels: unit */
/* The device pool (include/kiln/pool.h) on every backend: pooled buffers work as
 * buffers (transfers, fills, launches, interop); a checker gives every allocation its
 * own pattern and verifies it before the free; frees are stream-ordered (the next owner
 * of a block waits for work of its last life held back on another stream); warming,
 * trim and compact (the reserved bytes drop to zero); the context flag; stats and JSON;
 * and every bad input named in issue #15, each refused with a clear message and nothing
 * leaked (every test runs under the test allocator). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static kiln_pool make_pool(kt_env *env) {
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(env->ctx, NULL, &pool));
  assert_non_null(pool);
  return pool;
}

static kiln_pool_stats stats_of(kiln_pool pool) {
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_pool_get_stats(pool, &s));
  return s;
}

/* The block's native address (0 where the backend has none: the mock). */
static uintptr_t native_addr(kiln_buffer b) {
  void *p = NULL;
  kiln_native_kind kind = kt_backend() == KILN_BACKEND_OPENCL ? KILN_NATIVE_CL_MEM
                          : kt_backend() == KILN_BACKEND_CUDA ? KILN_NATIVE_CU_DEVICEPTR
                                                              : KILN_NATIVE_HOST_POINTER;
  if (kt_backend() == KILN_BACKEND_MOCK)
    return 0;
  KT_OK(kiln_buffer_get_native(b, kind, &p));
  return (uintptr_t)p;
}

/* Fill [0, bytes) with the 4-byte pattern `tag` (bytes rounded down to 4, at least 4). */
static void fill_tag(kiln_stream s, kiln_buffer b, size_t bytes, uint32_t tag) {
  kiln_pending t = KILN_PENDING_INIT;
  size_t n = bytes / 4 * 4;
  KT_OK(kiln_buffer_fill_async(s, b, 0, n, &tag, 4, &t));
  KT_OK(kiln_pending_release(&t));
}

/* Read [0, bytes/4*4) and check every word is `tag`. */
static int check_tag(kiln_stream s, kiln_buffer b, size_t bytes, uint32_t tag) {
  size_t n = bytes / 4;
  uint32_t *back = malloc(n * 4);
  assert_non_null(back);
  kiln_pending t = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_read_async(s, b, 0, n * 4, back, &t));
  KT_OK(kiln_wait(&t));
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++)
    if (back[i] != tag) {
      fprintf(stderr, "word %zu of %zu: 0x%08x, expected 0x%08x\n", i, n, back[i], tag);
      ok = 0;
    }
  free(back);
  return ok;
}

/* Sizes over every path: size classes, best fit, huge (above 8 MiB by default). */
static const size_t sizes[] = {
    4,       255,          256,    1000, 4096, 4100, 65536, 256 * 1024, 256 * 1024 + 4,
    1 << 20, 3 << 20 | 12, 9 << 20};

static void alloc_every_path_transfers(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_buffer b[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    KT_OK(kiln_pool_alloc(pool, env->stream, sizes[i], &b[i]));
    size_t got = 0;
    KT_OK(kiln_buffer_get_size(b[i], &got));
    assert_int_equal(got, sizes[i]);
    fill_tag(env->stream, b[i], sizes[i], 0xA5000000u + (uint32_t)i);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    assert_true(check_tag(env->stream, b[i], sizes[i], 0xA5000000u + (uint32_t)i));
    /* a blocking write and read of the last bytes, through the default stream */
    unsigned char tail[4] = {1, 2, 3, 4}, back[4] = {0};
    size_t off = sizes[i] >= 4 ? sizes[i] - 4 : 0;
    KT_OK(kiln_buffer_write(b[i], off, 4, tail));
    KT_OK(kiln_buffer_read(b[i], off, 4, back));
    assert_memory_equal(tail, back, 4);
  }
  kiln_pool_stats s = stats_of(pool);
  assert_int_equal(s.allocs, sizeof sizes / sizeof sizes[0]);
  assert_int_equal(s.huge_live, 1);
  assert_true(s.bytes_reserved >= s.bytes_in_use);
  uint64_t in_use = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    in_use += sizes[i];
  assert_int_equal(s.bytes_in_use, in_use);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    KT_OK(kiln_pool_free(b[i], env->stream));
  s = stats_of(pool);
  assert_int_equal(s.frees, sizeof sizes / sizeof sizes[0]);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.huge_live, 0);
  KT_OK(kiln_pool_destroy(pool));
}

static void freed_block_is_reused_lifo(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_buffer a, b, c;
  KT_OK(kiln_pool_alloc(pool, env->stream, 4000, &a));
  KT_OK(kiln_pool_alloc(pool, env->stream, 4000, &b));
  uintptr_t b_addr = native_addr(b);
  KT_OK(kiln_pool_free(a, env->stream));
  KT_OK(kiln_pool_free(b, env->stream));
  KT_OK(kiln_pool_alloc(pool, env->stream, 3000, &c)); /* same class: the last freed */
  assert_ptr_equal(c, b);
  /* the block's view was kept with it (OpenCL: the same sub-buffer, made once) */
  assert_int_equal(native_addr(c), b_addr);
  kiln_pool_stats s = stats_of(pool);
  assert_int_equal(s.hits, 1);
  assert_int_equal(s.misses, 2);
  int found = 0;
  for (unsigned i = 0; i < s.class_count; i++)
    if (s.classes[i].block_bytes == 4096) {
      found = 1;
      assert_int_equal(s.classes[i].hits, 1);
      assert_int_equal(s.classes[i].live, 1);
      assert_int_equal(s.classes[i].free, 1);
    }
  assert_true(found);
  assert_true(s.classes[0].block_bytes >= 256);
  assert_int_equal(s.classes[s.class_count - 1].block_bytes, 256 * 1024);
  KT_OK(kiln_pool_free(c, env->stream));
  KT_OK(kiln_pool_destroy(pool));
}

/* Two blocks freed with work still queued (held) on two streams: an allocation for one
 * stream gets the block freed on it, although the other was freed last (LIFO), so its
 * first use needs no cross-stream wait. */
static void alloc_prefers_blocks_freed_on_its_stream(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kt_gate *g1 = kt_env_gate(env), *g2 = kt_env_gate(env);
  kiln_pending h1 = KILN_PENDING_INIT, h2 = KILN_PENDING_INIT;
  KT_OK(kt_hold_async(env->ctx, env->stream, g1, &h1));
  KT_OK(kt_hold_async(env->ctx, s2, g2, &h2));
  kiln_buffer a, b, c;
  KT_OK(kiln_pool_alloc(pool, env->stream, 2048, &a));
  KT_OK(kiln_pool_alloc(pool, s2, 2048, &b));
  uintptr_t a_addr = native_addr(a), b_addr = native_addr(b);
  fill_tag(env->stream, a, 2048, 1u);
  fill_tag(s2, b, 2048, 2u);
  KT_OK(kiln_pool_free(a, env->stream));
  KT_OK(kiln_pool_free(b, s2)); /* the head of the class's free list */
  KT_OK(kiln_pool_alloc(pool, env->stream, 2048, &c));
  if (kt_backend() != KILN_BACKEND_MOCK) { /* the mock has no native addresses */
    assert_int_equal(native_addr(c), a_addr);
    assert_true(a_addr != b_addr);
  }
  fill_tag(env->stream, c, 2048, 3u);
  kt_gate_open(g1);
  kt_gate_open(g2);
  KT_OK(kiln_wait(&h1));
  KT_OK(kiln_wait(&h2));
  assert_true(check_tag(env->stream, c, 2048, 3u));
  KT_OK(kiln_pool_free(c, env->stream));
  KT_OK(kiln_stream_destroy(s2));
  KT_OK(kiln_pool_destroy(pool));
}

/* The checker: random sizes over every path, each allocation filled with its own
 * pattern on one of two streams, verified before its free on either stream. */
static void pattern_checker_two_streams(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kiln_stream streams[2] = {env->stream, s2};
  enum { LIVE = 24, ROUNDS = 160 };
  kiln_buffer live[LIVE] = {0};
  size_t bytes[LIVE] = {0};
  uint32_t tags[LIVE] = {0};
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (uint32_t r = 0; r < ROUNDS; r++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    unsigned slot = (unsigned)(rng >> 33) % LIVE;
    kiln_stream s = streams[(rng >> 20) & 1];
    if (live[slot]) {
      assert_true(check_tag(s, live[slot], bytes[slot], tags[slot]));
      KT_OK(kiln_pool_free(live[slot], streams[(rng >> 24) & 1]));
      live[slot] = NULL;
      continue;
    }
    unsigned shift = 2 + (unsigned)(rng >> 40) % 20; /* 4 B .. 2 MiB */
    bytes[slot] = ((size_t)1 << shift) + (size_t)((rng >> 8) % 97) * 4;
    tags[slot] = 0x5A000000u | r;
    KT_OK(kiln_pool_alloc(pool, s, bytes[slot], &live[slot]));
    fill_tag(s, live[slot], bytes[slot], tags[slot]);
  }
  for (unsigned i = 0; i < LIVE; i++)
    if (live[i]) {
      assert_true(check_tag(env->stream, live[i], bytes[i], tags[i]));
      KT_OK(kiln_pool_free(live[i], s2));
    }
  KT_OK(kiln_stream_destroy(s2));
  kiln_pool_stats s = stats_of(pool);
  assert_int_equal(s.bytes_in_use, 0);
  assert_true(s.hits > 0);
  KT_OK(kiln_pool_destroy(pool));
}

/* A free on stream A of a buffer whose last write runs (held) on stream B: the block's
 * next owner, writing on a third stream, must come after B's write. */
static void cross_stream_free_orders_next_owner(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_stream b_stream = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &b_stream));
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold = KILN_PENDING_INIT;
  KT_OK(kt_hold_async(env->ctx, b_stream, g, &hold));
  kiln_buffer old;
  KT_OK(kiln_pool_alloc(pool, b_stream, 8192, &old));
  fill_tag(b_stream, old, 8192, 0x01010101u); /* held behind the gate */
  uintptr_t old_addr = native_addr(old);
  KT_OK(kiln_pool_free(old, env->stream)); /* returns at once */
  kiln_buffer next;
  kiln_stream third = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &third));
  KT_OK(kiln_pool_alloc(pool, third, 8192, &next));
  /* the same block; a new handle, since the old one's work still runs */
  assert_int_equal(native_addr(next), old_addr);
  fill_tag(third, next, 8192, 0x02020202u); /* waits for the free, which waits for B */
  kt_gate_open(g);
  KT_OK(kiln_wait(&hold));
  assert_true(check_tag(env->stream, next, 8192, 0x02020202u));
  KT_OK(kiln_pool_free(next, env->stream));
  KT_OK(kiln_stream_destroy(third));
  KT_OK(kiln_stream_destroy(b_stream));
  KT_OK(kiln_pool_destroy(pool));
}

/* A free on the stream that holds the buffer's work (no device op): the block reissued
 * for another stream waits for that work through the hazard tracking. */
static void same_stream_free_orders_other_stream_owner(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold = KILN_PENDING_INIT;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  kiln_buffer old, next;
  KT_OK(kiln_pool_alloc(pool, env->stream, 300000, &old)); /* best fit */
  fill_tag(env->stream, old, 300000, 0x0A0A0A0Au);
  KT_OK(kiln_pool_free(old, env->stream));
  KT_OK(kiln_pool_alloc(pool, s2, 300000, &next));
  fill_tag(s2, next, 300000, 0x0B0B0B0Bu);
  kt_gate_open(g);
  KT_OK(kiln_wait(&hold));
  assert_true(check_tag(s2, next, 300000, 0x0B0B0B0Bu));
  KT_OK(kiln_pool_free(next, s2));
  KT_OK(kiln_stream_destroy(s2));
  KT_OK(kiln_pool_destroy(pool));
}

static void launch_and_interop_on_pooled_buffer(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_buffer a, b;
  KT_OK(kiln_pool_alloc(pool, env->stream, 1024, &a));
  KT_OK(kiln_pool_alloc(pool, env->stream, 1024, &b));
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(b, 0, 1024, &zero, 4));
  kiln_kernel add = kt_add_kernel(env->ctx);
  uint64_t off = 0;
  uint32_t inc = 7;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &inc);
  kiln_range r = kiln_range_1d(256);
  KT_OK(kiln_launch(env->stream, add, &r, args, 3));
  KT_OK(kiln_stream_synchronize(env->stream));
  assert_true(check_tag(env->stream, b, 1024, 7u));
  if (kt_backend() == KILN_BACKEND_CPU) {
    void *pa = NULL, *pb = NULL;
    KT_OK(kiln_buffer_get_native(a, KILN_NATIVE_HOST_POINTER, &pa));
    KT_OK(kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, &pb));
    assert_non_null(pa);
    assert_true(pb != pa); /* two blocks of one slab */
    assert_int_equal(((uint32_t *)pb)[3], 7u);
  } else if (kt_backend() == KILN_BACKEND_OPENCL) {
    void *ma = NULL, *mb = NULL;
    KT_OK(kiln_buffer_get_native(a, KILN_NATIVE_CL_MEM, &ma));
    KT_OK(kiln_buffer_get_native(b, KILN_NATIVE_CL_MEM, &mb));
    assert_non_null(ma);
    assert_true(ma != mb); /* each block its own sub-buffer */
  }
  KT_OK(kiln_pool_free(a, env->stream));
  KT_OK(kiln_buffer_destroy(b)); /* blocking: the block goes back too */
  assert_int_equal(stats_of(pool).frees, 2);
  KT_OK(kiln_pool_destroy(pool));
}

static void compact_returns_whole_slabs(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  enum { N = 40 };
  kiln_buffer b[N];
  for (int i = 0; i < N; i++)
    KT_OK(kiln_pool_alloc(pool, env->stream, (size_t)256 << (i % 12), &b[i]));
  kiln_pool_stats s = stats_of(pool);
  assert_true(s.bytes_reserved > 0);
  assert_true(s.device_allocs > 1);
  /* a live block keeps its slab: free all but one */
  for (int i = 1; i < N; i++)
    KT_OK(kiln_pool_free(b[i], env->stream));
  KT_OK(kiln_pool_compact(pool));
  kiln_pool_stats mid = stats_of(pool);
  assert_true(mid.bytes_reserved > 0);
  assert_true(mid.bytes_reserved < s.bytes_reserved);
  KT_OK(kiln_pool_free(b[0], env->stream));
  kiln_pool_stats before = stats_of(pool);
  assert_true(before.bytes_cached > 0);
  KT_OK(kiln_pool_compact(pool));
  kiln_pool_stats after = stats_of(pool);
  assert_int_equal(after.bytes_reserved, 0);
  assert_int_equal(after.slabs, 0);
  assert_int_equal(after.device_frees, after.device_allocs);
  assert_true(after.bytes_reserved_peak >= s.bytes_reserved);
  KT_OK(kiln_pool_destroy(pool));
}

static void trim_keeps_what_it_is_told(void **state) {
  kt_env *env = *state;
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  d.slab_bytes = 64 * 1024;
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(env->ctx, &d, &pool));
  enum { N = 64 };
  kiln_buffer b[N];
  for (int i = 0; i < N; i++)
    KT_OK(kiln_pool_alloc(pool, env->stream, 4096, &b[i])); /* 4 slabs of 16 */
  for (int i = 0; i < N; i++)
    KT_OK(kiln_pool_free(b[i], env->stream));
  kiln_pool_stats s = stats_of(pool);
  assert_true(s.slabs >= 4);
  KT_OK(kiln_pool_trim(pool, 100 * 1024));
  kiln_pool_stats t = stats_of(pool);
  assert_true(t.bytes_cached <= 100 * 1024);
  assert_true(t.slabs >= 1 && t.slabs < s.slabs);
  KT_OK(kiln_pool_trim(pool, 0));
  assert_int_equal(stats_of(pool).bytes_reserved, 0);
  KT_OK(kiln_pool_destroy(pool));
}

static void release_threshold_returns_slabs_at_free(void **state) {
  kt_env *env = *state;
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  d.slab_bytes = 64 * 1024;
  d.release_threshold = 1;
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(env->ctx, &d, &pool));
  kiln_buffer b[16];
  for (int i = 0; i < 16; i++)
    KT_OK(kiln_pool_alloc(pool, env->stream, 4096, &b[i])); /* one slab (two with redzones) */
  KT_OK(kiln_stream_synchronize(env->stream));
  for (int i = 0; i < 16; i++)
    KT_OK(kiln_pool_free(b[i], env->stream));
  kiln_pool_stats s = stats_of(pool);
  assert_int_equal(s.slabs, 0); /* idle and above the threshold: returned at the last free */
  assert_int_equal(s.device_frees, s.device_allocs);
  assert_true(s.device_frees >= 1);
  KT_OK(kiln_pool_destroy(pool));
}

static void warm_prefills_classes(void **state) {
  kt_env *env = *state;
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  d.warm_count = 2;
  kiln_pool pool = NULL;
  KT_OK(kiln_pool_create(env->ctx, &d, &pool));
  kiln_pool_stats s = stats_of(pool);
  for (unsigned c = 0; c < s.class_count; c++)
    assert_int_equal(s.classes[c].free, 2);
  KT_OK(kiln_pool_warm(pool, 1000, 3));
  s = stats_of(pool);
  for (unsigned c = 0; c < s.class_count; c++)
    assert_int_equal(s.classes[c].free, s.classes[c].block_bytes == 1024 ? 5 : 2);
  kiln_buffer b;
  KT_OK(kiln_pool_alloc(pool, env->stream, 100000, &b));
  s = stats_of(pool);
  assert_int_equal(s.hits, 1);
  assert_int_equal(s.misses, 0);
  KT_EXPECT_MSG(kiln_pool_warm(pool, 1 << 20, 1), KILN_ERROR_INVALID_ARGUMENT,
                "largest size class");
  KT_OK(kiln_pool_free(b, env->stream));
  KT_OK(kiln_pool_destroy(pool));
}

static void context_flag_pools_buffer_create(void **state) {
  kt_env *env = *state;
  kiln_context_desc cd = KILN_CONTEXT_DESC_INIT;
  cd.flags = KILN_CONTEXT_POOLED;
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(env->device, &cd, &ctx));
  kiln_pool pool = NULL;
  KT_OK(kiln_context_get_pool(ctx, &pool));
  assert_non_null(pool);
  kiln_buffer a = kt_buffer(ctx, 5000), b = kt_buffer(ctx, 5000);
  uint32_t v = 0xC0FFEEu;
  KT_OK(kiln_buffer_fill(a, 0, 5000 / 4 * 4, &v, 4));
  KT_OK(kiln_buffer_copy(b, 0, a, 0, 5000));
  uint32_t back[4];
  KT_OK(kiln_buffer_read(b, 0, sizeof back, back));
  assert_int_equal(back[3], 0xC0FFEEu);
  KT_OK(kiln_buffer_destroy(a));
  kiln_buffer c = kt_buffer(ctx, 6000);
  assert_ptr_equal(c, a); /* the freed block, reissued */
  kiln_pool_stats s = stats_of(pool);
  assert_int_equal(s.allocs, 3);
  assert_int_equal(s.hits, 1);
  KT_EXPECT_MSG(kiln_pool_destroy(pool), KILN_ERROR_INVALID_STATE, "context's own");
  KT_EXPECT_MSG(kiln_context_get_pool(env->ctx, &pool), KILN_ERROR_INVALID_STATE,
                "KILN_CONTEXT_POOLED");
  assert_null(pool);
  /* live pooled buffers go with the context */
  KT_OK(kiln_context_destroy(ctx));
  (void)b;
  (void)c;
}

static void stats_as_json(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_buffer b;
  KT_OK(kiln_pool_alloc(pool, env->stream, 700, &b));
  kiln_pool_stats s = stats_of(pool);
  char out[8192];
  size_t needed = 0;
  KT_OK(kiln_pool_stats_json(&s, out, sizeof out, &needed));
  assert_int_equal(strlen(out), needed);
  assert_non_null(strstr(out, "\"allocs\": 1,"));
  assert_non_null(strstr(out, "\"bytes_in_use\": 700,"));
  assert_non_null(strstr(out, "{\"block_bytes\": 1024, \"hits\": 0, \"misses\": 1, \"live\": 1"));
  assert_true(out[0] == '{' && out[needed - 1] == '}');
  char small[16];
  KT_EXPECT_MSG(kiln_pool_stats_json(&s, small, sizeof small, &needed), KILN_ERROR_OUT_OF_RANGE,
                "bytes of JSON");
  assert_true(needed > sizeof small);
  kiln_pool_stats bad = s;
  bad.struct_size = 8;
  KT_EXPECT(kiln_pool_stats_json(&bad, out, sizeof out, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_pool_free(b, env->stream));
  KT_OK(kiln_pool_destroy(pool));
}

static void bad_input_refused(void **state) {
  kt_env *env = *state;
  kiln_pool pool = make_pool(env);
  kiln_buffer b = NULL, plain = kt_buffer(env->ctx, 64);
  /* size 0, over the device's limit, NULL out-parameter, NULL pool */
  KT_EXPECT_MSG(kiln_pool_alloc(pool, env->stream, 0, &b), KILN_ERROR_INVALID_ARGUMENT,
                "bytes is 0");
  assert_null(b);
  KT_EXPECT_MSG(kiln_pool_alloc(pool, env->stream, (size_t)env->props.max_alloc_bytes + 1, &b),
                KILN_ERROR_LIMIT_EXCEEDED, "largest allocation");
  KT_EXPECT(kiln_pool_alloc(pool, env->stream, 64, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_pool_alloc(NULL, env->stream, 64, &b), KILN_ERROR_INVALID_HANDLE, "NULL");
  /* a buffer is not a pool */
  KT_EXPECT_MSG(kiln_pool_alloc((kiln_pool)(void *)plain, env->stream, 64, &b),
                KILN_ERROR_INVALID_HANDLE, "a buffer, not a pool");
  /* double free */
  KT_OK(kiln_pool_alloc(pool, env->stream, 64, &b));
  KT_OK(kiln_pool_free(b, env->stream));
  KT_EXPECT_MSG(kiln_pool_free(b, env->stream), KILN_ERROR_INVALID_HANDLE, "already freed");
  /* a foreign buffer (kiln_buffer_create's) and an interior pointer */
  KT_EXPECT_MSG(kiln_pool_free(plain, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "not allocated from a pool");
  KT_OK(kiln_pool_alloc(pool, env->stream, 64, &b));
  KT_EXPECT(kiln_pool_free((kiln_buffer)(void *)((char *)(void *)b + 8), env->stream),
            KILN_ERROR_INVALID_HANDLE);
  /* a free on a destroyed stream, on NULL, on another context's stream */
  kiln_stream gone = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &gone));
  KT_OK(kiln_stream_destroy(gone));
  KT_EXPECT_MSG(kiln_pool_free(b, gone), KILN_ERROR_INVALID_HANDLE, "destroyed");
  KT_EXPECT_MSG(kiln_pool_free(b, NULL), KILN_ERROR_INVALID_HANDLE, "orders the free");
  kiln_context other = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &other));
  kiln_stream os = NULL;
  KT_OK(kiln_stream_create(other, NULL, &os));
  KT_EXPECT(kiln_pool_free(b, os), KILN_ERROR_DEVICE_MISMATCH);
  kiln_buffer nb = NULL;
  KT_EXPECT(kiln_pool_alloc(pool, os, 64, &nb), KILN_ERROR_DEVICE_MISMATCH);
  assert_null(nb);
  /* a pool with live buffers cannot be destroyed */
  kiln_buffer live;
  KT_OK(kiln_pool_alloc(pool, env->stream, 64, &live));
  KT_EXPECT_MSG(kiln_pool_destroy(pool), KILN_ERROR_INVALID_STATE, "live buffers");
  KT_OK(kiln_pool_free(live, env->stream));
  /* a pool of a destroyed context */
  kiln_pool orphan = NULL;
  KT_OK(kiln_pool_create(other, NULL, &orphan));
  kiln_buffer ob;
  KT_OK(kiln_pool_alloc(orphan, NULL, 100, &ob));
  KT_OK(kiln_context_destroy(other));
  KT_EXPECT_MSG(kiln_pool_alloc(orphan, NULL, 64, &nb), KILN_ERROR_INVALID_HANDLE,
                "context that was destroyed");
  KT_EXPECT_MSG(kiln_pool_destroy(orphan), KILN_ERROR_INVALID_HANDLE, "context that was destroyed");
  /* descs */
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  kiln_pool p2 = NULL;
  d.min_class_bytes = 300;
  KT_EXPECT_MSG(kiln_pool_create(env->ctx, &d, &p2), KILN_ERROR_INVALID_ARGUMENT, "powers of two");
  d = (kiln_pool_desc)KILN_POOL_DESC_INIT;
  d.struct_size = 4;
  KT_EXPECT_MSG(kiln_pool_create(env->ctx, &d, &p2), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_POOL_DESC_INIT");
  d = (kiln_pool_desc)KILN_POOL_DESC_INIT;
  d.min_class_bytes = 4096;
  d.max_class_bytes = 1024;
  KT_EXPECT_MSG(kiln_pool_create(env->ctx, &d, &p2), KILN_ERROR_INVALID_ARGUMENT, "below");
  d = (kiln_pool_desc)KILN_POOL_DESC_INIT;
  d.min_class_bytes = (size_t)1 << 40; /* classes larger than any allocation */
  d.max_class_bytes = (size_t)1 << 42;
  KT_EXPECT_MSG(kiln_pool_create(env->ctx, &d, &p2), KILN_ERROR_LIMIT_EXCEEDED,
                "largest allocation");
  assert_null(p2);
  /* the other calls on a NULL or destroyed pool, and bad out-parameters */
  kiln_pool_stats st = KILN_POOL_STATS_INIT;
  KT_EXPECT(kiln_pool_get_stats(pool, NULL), KILN_ERROR_INVALID_ARGUMENT);
  st.struct_size = 8;
  KT_EXPECT_MSG(kiln_pool_get_stats(pool, &st), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_POOL_STATS_INIT");
  KT_EXPECT(kiln_pool_trim(NULL, 0), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pool_compact(NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pool_warm(NULL, 0, 1), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pool_create(env->ctx, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_pool_create(NULL, NULL, &p2), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_pool_free(b, env->stream));
  KT_OK(kiln_pool_destroy(pool));
  KT_OK(kiln_pool_destroy(NULL));
  KT_EXPECT_MSG(kiln_pool_destroy(pool), KILN_ERROR_INVALID_HANDLE, "destroyed");
  KT_EXPECT_MSG(kiln_pool_compact(pool), KILN_ERROR_INVALID_HANDLE, "destroyed");
  KT_EXPECT_MSG(kiln_pool_alloc(pool, NULL, 64, &nb), KILN_ERROR_INVALID_HANDLE, "destroyed");
  kiln_context_desc cd = KILN_CONTEXT_DESC_INIT;
  cd.flags = 0x80;
  kiln_context c3 = NULL;
  KT_EXPECT_MSG(kiln_context_create(env->device, &cd, &c3), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_CONTEXT_POOLED");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(alloc_every_path_transfers, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(freed_block_is_reused_lifo, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(pattern_checker_two_streams, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(alloc_prefers_blocks_freed_on_its_stream, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(cross_stream_free_orders_next_owner, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(same_stream_free_orders_other_stream_owner, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(launch_and_interop_on_pooled_buffer, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(compact_returns_whole_slabs, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(trim_keeps_what_it_is_told, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(release_threshold_returns_slabs_at_free, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(warm_prefills_classes, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(context_flag_pools_buffer_create, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stats_as_json, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(bad_input_refused, kt_setup, kt_teardown),
};

KT_MAIN(tests)
