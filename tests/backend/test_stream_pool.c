/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu opencl mock cuda cuda-fake */
/* kiln-test-labels: unit */
/* Stream pools, stream sets, the transfer stream, stream labels, ids, pending counts and
 * priorities, and the pipeline helper, alike on every backend (registered once per
 * backend). Least-pending is checked in constructed cases: streams held back by gates
 * (kt_hold_async) with known numbers of ops queued behind them. Bad input: a release
 * twice, to another pool, of a stream of no pool; a destroyed pool; a pool of 0
 * streams. Every test runs under the test allocator and fails on a leak. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static kiln_stream_pool make_pool(kt_env *env, size_t n, kiln_stream_policy policy,
                                  const char *label) {
  kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
  d.policy = policy;
  d.label = label;
  kiln_stream_pool p = NULL;
  KT_OK(kiln_stream_pool_create(env->ctx, n, &d, &p));
  assert_non_null(p);
  return p;
}

static void pool_round_robin_labels_and_ids(void **state) {
  kt_env *env = *state;
  kiln_stream_pool p = make_pool(env, 4, KILN_STREAM_ROUND_ROBIN, "rr");
  size_t n = 0;
  KT_OK(kiln_stream_pool_size(p, &n));
  assert_int_equal(n, 4);
  kiln_stream s[4];
  uint64_t ids[4];
  for (size_t i = 0; i < 4; i++) {
    KT_OK(kiln_stream_pool_get(p, i, &s[i]));
    kiln_stream_info info = KILN_STREAM_INFO_INIT;
    KT_OK(kiln_stream_get_info(s[i], &info));
    char want[16];
    snprintf(want, sizeof want, "rr[%zu]", i);
    assert_string_equal(info.label, want);
    assert_int_equal(info.owned, 1);
    ids[i] = info.id;
    for (size_t j = 0; j < i; j++)
      assert_true(ids[j] != ids[i]);
  }
  for (size_t i = 0; i < 12; i++) {
    kiln_stream got = NULL;
    KT_OK(kiln_stream_pool_pick(p, &got));
    assert_ptr_equal(got, s[i % 4]);
  }
  /* A pool's stream is the pool's to destroy; the refusal names its label. */
  KT_EXPECT_MSG(kiln_stream_destroy(s[2]), KILN_ERROR_INVALID_STATE, "'rr[2]'");
  KT_EXPECT(kiln_stream_pool_get(p, 4, &s[0]), KILN_ERROR_INVALID_ARGUMENT);
  KT_MSG_HAS("index 4");
  assert_null(s[0]);
  /* The default size, per backend (docs/async.md). */
  size_t def = 0;
  KT_OK(kiln_stream_pool_default_count(env->device, &def));
  size_t want = kt_backend() == KILN_BACKEND_OPENCL ? 2
                : kt_backend() == KILN_BACKEND_CUDA ? env->props.copy_engines + 1u
                                                    : env->props.compute_units;
  if (kt_backend() == KILN_BACKEND_CUDA && want < 2)
    want = 2;
  assert_int_equal(def, want);
  if (kt_backend() == KILN_BACKEND_CUDA && getenv("KILN_CUDA_LIBRARY"))
    assert_int_equal(def, 4); /* the fake is an H200: 3 copy engines + 1 */
  KT_EXPECT(kiln_stream_pool_default_count(env->device, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_stream_pool_default_count(NULL, &def), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_stream_pool_destroy(p));
  KT_OK(kiln_stream_pool_destroy(NULL));
}

static void stream_label_id_and_pending(void **state) {
  kt_env *env = *state;
  kiln_stream_desc d = KILN_STREAM_DESC_INIT;
  d.label = "h2d-0";
  kiln_stream s = NULL, s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, &d, &s));
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kiln_stream_info a = KILN_STREAM_INFO_INIT, b = KILN_STREAM_INFO_INIT;
  KT_OK(kiln_stream_get_info(s, &a));
  KT_OK(kiln_stream_get_info(s2, &b));
  assert_string_equal(a.label, "h2d-0");
  assert_int_equal(b.id, a.id + 1);
  char want[32];
  snprintf(want, sizeof want, "stream-%llu", (unsigned long long)b.id);
  assert_string_equal(b.label, want);
  assert_int_equal(a.owned, 0);
  /* Pending: a gate and 3 ops behind it, none complete until the gate opens. */
  kt_gate *g = kt_env_gate(env);
  kiln_pending t;
  KT_OK(kt_hold_async(env->ctx, s, g, &t));
  kiln_buffer buf = kt_buffer(env->ctx, 256);
  uint32_t v = 7;
  for (int i = 0; i < 3; i++) {
    kiln_pending f;
    KT_OK(kiln_buffer_fill_async(s, buf, 0, 256, &v, sizeof v, &f));
    KT_OK(kiln_pending_release(&f));
  }
  uint64_t pending = 0;
  KT_OK(kiln_stream_pending(s, &pending));
  assert_int_equal(pending, 4);
  KT_OK(kiln_stream_get_info(s, &a));
  assert_int_equal(a.pending, 4);
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_stream_synchronize(s));
  KT_OK(kiln_stream_pending(s, &pending));
  assert_int_equal(pending, 0);
  KT_EXPECT(kiln_stream_pending(s, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_buffer_destroy(buf));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_stream_destroy(s2));
  KT_EXPECT_MSG(kiln_stream_pending(s, &pending), KILN_ERROR_INVALID_HANDLE, "destroyed");
}

/* Queue `ops` fills behind a gate on stream `s`: its pending count is ops + 1. */
static void load_stream(kt_env *env, kiln_stream s, int ops, kiln_buffer buf, kt_gate **gate,
                        kiln_pending *held) {
  *gate = kt_env_gate(env);
  KT_OK(kt_hold_async(env->ctx, s, *gate, held));
  uint32_t v = 1;
  for (int i = 0; i < ops; i++) {
    kiln_pending f;
    KT_OK(kiln_buffer_fill_async(s, buf, 0, 64, &v, sizeof v, &f));
    KT_OK(kiln_pending_release(&f));
  }
}

static void least_pending_picks_the_least_loaded(void **state) {
  kt_env *env = *state;
  kiln_stream_pool p = make_pool(env, 3, KILN_STREAM_LEAST_PENDING, "lp");
  kiln_stream s[3];
  kiln_buffer bufs[3];
  for (size_t i = 0; i < 3; i++) {
    KT_OK(kiln_stream_pool_get(p, i, &s[i]));
    bufs[i] = kt_buffer(env->ctx, 64);
  }
  kt_gate *g[3];
  kiln_pending t[3];
  load_stream(env, s[0], 3, bufs[0], &g[0], &t[0]); /* pending 4 */
  load_stream(env, s[1], 1, bufs[1], &g[1], &t[1]); /* pending 2 */
  /* s[2] idle: every pick, whatever the tie cursor, chooses it. */
  for (int k = 0; k < 6; k++) {
    kiln_stream got = NULL;
    KT_OK(kiln_stream_pool_pick(p, &got));
    assert_ptr_equal(got, s[2]);
  }
  load_stream(env, s[2], 5, bufs[2], &g[2], &t[2]); /* pending 6: now s[1] is least */
  for (int k = 0; k < 4; k++) {
    kiln_stream got = NULL;
    KT_OK(kiln_stream_pool_pick(p, &got));
    assert_ptr_equal(got, s[1]);
  }
  /* Holders count as load: two holders of s[1] (2 + 2) and one more op (5 > 4) turn
   * the choice to s[0]. */
  kiln_stream h[2];
  for (int k = 0; k < 2; k++) {
    KT_OK(kiln_stream_pool_acquire(p, &h[k]));
    assert_ptr_equal(h[k], s[1]);
  }
  uint32_t one = 1;
  kiln_pending f;
  KT_OK(kiln_buffer_fill_async(s[1], bufs[1], 0, 64, &one, sizeof one, &f));
  KT_OK(kiln_pending_release(&f));
  kiln_stream got = NULL;
  KT_OK(kiln_stream_pool_acquire(p, &got));
  assert_ptr_equal(got, s[0]);
  kiln_stream_stats st = KILN_STREAM_STATS_INIT;
  KT_OK(kiln_stream_pool_get_stats(p, 1, &st));
  assert_int_equal(st.held, 2);
  assert_int_equal(st.pending, 3);
  KT_OK(kiln_stream_pool_release(p, got));
  for (int k = 0; k < 2; k++)
    KT_OK(kiln_stream_pool_release(p, h[k]));
  for (int i = 0; i < 3; i++) {
    kt_gate_open(g[i]);
    KT_OK(kiln_wait(&t[i]));
  }
  KT_OK(kiln_stream_pool_synchronize_all(p));
  for (size_t i = 0; i < 3; i++) {
    KT_OK(kiln_stream_pool_get_stats(p, i, &st));
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.held, 0);
    KT_OK(kiln_buffer_destroy(bufs[i]));
  }
  KT_OK(kiln_stream_pool_destroy(p));
}

static void acquire_release_and_bad_input(void **state) {
  kt_env *env = *state;
  kiln_stream_pool p = make_pool(env, 2, KILN_STREAM_ROUND_ROBIN, "mine");
  kiln_stream_pool other = make_pool(env, 2, KILN_STREAM_ROUND_ROBIN, "other");
  kiln_stream s = NULL, o = NULL;
  KT_OK(kiln_stream_pool_acquire(p, &s));
  KT_OK(kiln_stream_pool_acquire(other, &o));
  /* Released to another pool, or a stream of no pool: refused, naming both. */
  KT_EXPECT_MSG(kiln_stream_pool_release(p, o), KILN_ERROR_INVALID_ARGUMENT, "'other[0]'");
  KT_MSG_HAS("'mine'");
  KT_EXPECT_MSG(kiln_stream_pool_release(p, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "in no stream pool");
  /* Release never waits: a held stream with gated work is released at once. */
  kt_gate *g = kt_env_gate(env);
  kiln_pending t;
  KT_OK(kt_hold_async(env->ctx, s, g, &t));
  KT_OK(kiln_stream_pool_release(p, s));
  KT_EXPECT(kiln_stream_query(s), KILN_NOT_READY);
  /* Released twice. */
  KT_EXPECT_MSG(kiln_stream_pool_release(p, s), KILN_ERROR_INVALID_STATE, "released twice");
  KT_MSG_HAS("'mine[0]'");
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_stream_pool_release(other, o));
  /* A pool of 0 streams, too many, a bad policy, NULL out-parameters. */
  kiln_stream_pool bad = (kiln_stream_pool)(void *)env; /* overwritten with NULL */
  KT_EXPECT_MSG(kiln_stream_pool_create(env->ctx, 0, NULL, &bad), KILN_ERROR_INVALID_ARGUMENT,
                "count is 0");
  assert_null(bad);
  KT_EXPECT_MSG(kiln_stream_pool_create(env->ctx, KILN_STREAM_POOL_MAX + 1, NULL, &bad),
                KILN_ERROR_INVALID_ARGUMENT, "257");
  kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
  d.policy = (kiln_stream_policy)7;
  KT_EXPECT_MSG(kiln_stream_pool_create(env->ctx, 2, &d, &bad), KILN_ERROR_INVALID_ARGUMENT,
                "policy is 7");
  d.policy = KILN_STREAM_ROUND_ROBIN;
  d.struct_size = 4;
  KT_EXPECT_MSG(kiln_stream_pool_create(env->ctx, 2, &d, &bad), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_STREAM_POOL_DESC_INIT");
  KT_EXPECT(kiln_stream_pool_create(env->ctx, 2, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_stream_pool_acquire(p, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_stream_pool_create(NULL, 2, NULL, &bad), KILN_ERROR_INVALID_HANDLE);
  /* A destroyed pool: refused; its streams are gone with it. */
  KT_OK(kiln_stream_pool_destroy(p));
  KT_EXPECT_MSG(kiln_stream_pool_acquire(p, &s), KILN_ERROR_INVALID_HANDLE, "destroyed");
  assert_null(s);
  KT_EXPECT(kiln_stream_pool_release(p, o), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_pool_synchronize_all(p), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_pool_destroy(p), KILN_ERROR_INVALID_HANDLE);
  /* A set is not a pool. */
  kiln_stream_set set = NULL;
  KT_OK(kiln_stream_set_create(env->ctx, 2, "ring", &set));
  KT_EXPECT_MSG(kiln_stream_pool_acquire((kiln_stream_pool)(void *)set, &s),
                KILN_ERROR_INVALID_HANDLE, "stream set");
  KT_OK(kiln_stream_set_destroy(set));
  KT_OK(kiln_stream_pool_destroy(other));
  /* A pool left alive goes with its context (teardown checks for leaks). */
  (void)make_pool(env, 3, KILN_STREAM_LEAST_PENDING, NULL);
}

static void stats_and_json(void **state) {
  kt_env *env = *state;
  kiln_stream_pool p = make_pool(env, 2, KILN_STREAM_ROUND_ROBIN, "st\"q");
  kiln_buffer b = kt_buffer(env->ctx, 1 << 16);
  static uint8_t src[1 << 16];
  for (int i = 0; i < 10; i++) {
    kiln_stream s = NULL;
    KT_OK(kiln_stream_pool_acquire(p, &s));
    kiln_pending t;
    KT_OK(kiln_buffer_write_async(s, b, 0, sizeof src, src, &t));
    KT_OK(kiln_pending_release(&t));
    KT_OK(kiln_stream_pool_release(p, s));
  }
  KT_OK(kiln_stream_pool_synchronize_all(p));
  for (size_t i = 0; i < 2; i++) {
    kiln_stream_stats st = KILN_STREAM_STATS_INIT;
    KT_OK(kiln_stream_pool_get_stats(p, i, &st));
    assert_int_equal(st.ops, 5);
    assert_int_equal(st.picked, 5);
    assert_int_equal(st.pending, 0);
    assert_true(st.busy_ns > 0);
    assert_true(st.busy_ns <= st.elapsed_ns);
    assert_true(st.utilisation > 0.0 && st.utilisation <= 1.0);
  }
  size_t needed = 0;
  KT_EXPECT_MSG(kiln_stream_pool_stats_json(p, NULL, 0, &needed), KILN_ERROR_INVALID_ARGUMENT,
                "need");
  assert_true(needed > 40);
  char small[16];
  KT_EXPECT(kiln_stream_pool_stats_json(p, small, sizeof small, &needed),
            KILN_ERROR_INVALID_ARGUMENT);
  assert_string_equal(small, "");
  char *json = malloc(needed + 64);
  assert_non_null(json);
  KT_OK(kiln_stream_pool_stats_json(p, json, needed + 64, NULL));
  assert_int_equal(strlen(json), needed < needed + 64 ? strlen(json) : 0);
  assert_non_null(strstr(json, "\"label\":\"st\\\"q\""));
  assert_non_null(strstr(json, "\"label\":\"st\\\"q[1]\""));
  assert_non_null(strstr(json, "\"policy\":\"round_robin\""));
  assert_non_null(strstr(json, "\"ops\":5"));
  assert_non_null(strstr(json, "\"utilisation\":"));
  free(json);
  kiln_stream_stats st = KILN_STREAM_STATS_INIT;
  st.struct_size = 8;
  KT_EXPECT_MSG(kiln_stream_pool_get_stats(p, 0, &st), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_STREAM_STATS_INIT");
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_pool_destroy(p));
}

static void transfer_stream_is_shared_and_ordered(void **state) {
  kt_env *env = *state;
  kiln_stream tr = NULL, again = NULL;
  KT_OK(kiln_context_transfer_stream(env->ctx, &tr));
  KT_OK(kiln_context_transfer_stream(env->ctx, &again));
  assert_ptr_equal(tr, again);
  kiln_stream_info info = KILN_STREAM_INFO_INIT;
  KT_OK(kiln_stream_get_info(tr, &info));
  assert_string_equal(info.label, "transfer");
  assert_int_equal(info.owned, 1);
  KT_EXPECT_MSG(kiln_stream_destroy(tr), KILN_ERROR_INVALID_STATE, "transfer stream");
  /* Upload on the transfer stream, compute on another, download on the transfer stream:
   * ordered by the hazard rules alone. */
  enum { N = 1024 };
  static uint32_t in[N], out[N];
  for (uint32_t i = 0; i < N; i++)
    in[i] = i;
  kiln_buffer b = kt_buffer(env->ctx, sizeof in);
  kiln_kernel k = kt_add_kernel(env->ctx);
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold, t1, t2, t3;
  KT_OK(kt_hold_async(env->ctx, tr, g, &hold)); /* the upload waits: compute must wait too */
  KT_OK(kiln_buffer_write_async(tr, b, 0, sizeof in, in, &t1));
  uint64_t off = 0;
  uint32_t add = 5;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_launch_async(env->stream, k, &r, args, 3, &t2));
  KT_OK(kiln_buffer_read_async(tr, b, 0, sizeof out, out, &t3));
  kt_gate_open(g);
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_wait(&t1));
  KT_OK(kiln_wait(&t2));
  KT_OK(kiln_wait(&t3));
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(out[i], i + 5);
  KT_OK(kiln_buffer_destroy(b));
  KT_EXPECT(kiln_context_transfer_stream(env->ctx, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_context_transfer_stream(NULL, &tr), KILN_ERROR_INVALID_HANDLE);
}

static void stream_set_ring(void **state) {
  kt_env *env = *state;
  kiln_stream_set set = NULL;
  KT_OK(kiln_stream_set_create(env->ctx, 3, "compute", &set));
  size_t depth = 0;
  KT_OK(kiln_stream_set_size(set, &depth));
  assert_int_equal(depth, 3);
  for (size_t i = 0; i < 9; i++)
    assert_ptr_equal(kiln_stream_set_get(set, i), kiln_stream_set_get(set, i % 3));
  assert_ptr_not_equal(kiln_stream_set_get(set, 0), kiln_stream_set_get(set, 1));
  kiln_stream_info info = KILN_STREAM_INFO_INIT;
  KT_OK(kiln_stream_get_info(kiln_stream_set_get(set, 4), &info));
  assert_string_equal(info.label, "compute[1]");
  kiln_buffer b = kt_buffer(env->ctx, 4096);
  static uint8_t data[3][4096];
  for (size_t i = 0; i < 6; i++) {
    kiln_pending t;
    if (i >= 3) /* the slot's last upload is done: its host memory may be reused */
      KT_OK(kiln_stream_synchronize(kiln_stream_set_get(set, i)));
    memset(data[i % 3], (int)i, sizeof data[0]);
    KT_OK(kiln_buffer_write_async(kiln_stream_set_get(set, i), b, 0, 4096, data[i % 3], &t));
    KT_OK(kiln_pending_release(&t));
  }
  KT_OK(kiln_stream_set_synchronize_all(set));
  uint8_t back[4096];
  KT_OK(kiln_buffer_read(b, 0, sizeof back, back));
  assert_int_equal(back[0], 5); /* the writes were ordered: the last one wins */
  kiln_stream_stats st = KILN_STREAM_STATS_INIT;
  KT_OK(kiln_stream_set_get_stats(set, 2, &st));
  assert_int_equal(st.ops, 2);
  KT_EXPECT_MSG(kiln_stream_destroy(kiln_stream_set_get(set, 0)), KILN_ERROR_INVALID_STATE,
                "stream set");
  KT_EXPECT_MSG(kiln_stream_set_create(env->ctx, 0, NULL, &set), KILN_ERROR_INVALID_ARGUMENT,
                "depth is 0");
  assert_null(set);
  KT_OK(kiln_stream_set_create(env->ctx, 2, NULL, &set));
  KT_OK(kiln_stream_set_destroy(set));
  assert_null(kiln_stream_set_get(set, 0));
  KT_MSG_HAS("destroyed");
  KT_EXPECT(kiln_stream_set_synchronize_all(set), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_buffer_destroy(b));
}

static void priorities_are_applied_or_reported(void **state) {
  kt_env *env = *state;
  /* A pool's streams take its priority. */
  kiln_stream_pool_desc pd = KILN_STREAM_POOL_DESC_INIT;
  pd.priority = -2;
  kiln_stream_pool pool = NULL;
  KT_OK(kiln_stream_pool_create(env->ctx, 2, &pd, &pool));
  kiln_stream ps = NULL;
  KT_OK(kiln_stream_pool_get(pool, 1, &ps));
  kiln_stream_info pinfo = KILN_STREAM_INFO_INIT;
  KT_OK(kiln_stream_get_info(ps, &pinfo));
  assert_int_equal(pinfo.priority, -2);
  kiln_stream_stats pst = KILN_STREAM_STATS_INIT;
  KT_OK(kiln_stream_pool_get_stats(pool, 1, &pst));
  assert_int_equal(pst.priority_applied, pinfo.priority_applied);
  KT_OK(kiln_stream_pool_destroy(pool));
  const int asks[] = {-3, 0, 2, 9};
  for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
    kiln_stream_desc d = KILN_STREAM_DESC_INIT;
    d.priority = asks[i];
    kiln_stream s = NULL;
    KT_OK(kiln_stream_create(env->ctx, &d, &s));
    kiln_stream_info info = KILN_STREAM_INFO_INIT;
    KT_OK(kiln_stream_get_info(s, &info));
    assert_int_equal(info.priority, asks[i]);
    int want = asks[i];
    if (want > env->props.priority_max)
      want = env->props.priority_max;
    if (want < env->props.priority_min)
      want = env->props.priority_min;
    if (kt_backend() == KILN_BACKEND_CUDA) /* clamped into the context's own range */
      assert_true(info.priority_applied >= 0 && info.priority_applied <= (want > 0 ? want : 0));
    else if (kt_backend() == KILN_BACKEND_OPENCL) /* high / low queues when honoured */
      assert_int_equal(info.priority_applied, want > 0 ? 1 : want < 0 ? -1 : 0);
    else
      assert_int_equal(info.priority_applied, want);
    /* The stream works at any priority. */
    kiln_buffer b = kt_buffer(env->ctx, 64);
    uint32_t v = 3, back[16];
    kiln_pending t;
    KT_OK(kiln_buffer_fill_async(s, b, 0, 64, &v, sizeof v, &t));
    KT_OK(kiln_wait(&t));
    KT_OK(kiln_buffer_read(b, 0, sizeof back, back));
    assert_int_equal(back[15], 3);
    KT_OK(kiln_buffer_destroy(b));
    KT_OK(kiln_stream_destroy(s));
  }
}

/* ---- the pipeline helper: out = in + 1 per element, through a copy and the add kernel */
typedef struct pipe_user {
  kiln_kernel add;
  int fail_at; /* chunk whose compute fails; -1: none */
} pipe_user;

static kiln_status add_one(kiln_stream s, kiln_buffer in, kiln_buffer out, size_t chunk,
                           size_t in_bytes, size_t out_bytes, void *user) {
  pipe_user *u = user;
  if ((int)chunk == u->fail_at)
    return KILN_ERROR_INVALID_ARGUMENT;
  (void)out_bytes;
  kiln_pending t;
  kiln_status st = kiln_buffer_copy_async(s, out, 0, in, 0, in_bytes, &t);
  if (st != KILN_SUCCESS)
    return st;
  kiln_pending_release(&t);
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, out, &off, &one);
  kiln_range r = kiln_range_1d(in_bytes / 4);
  st = kiln_launch_async(s, u->add, &r, args, 3, &t);
  if (st == KILN_SUCCESS)
    kiln_pending_release(&t);
  return st;
}

static void pipeline_double_buffer(void **state) {
  kt_env *env = *state;
  enum { N = 10000 }; /* 7 chunks of 1536 elements, the last shorter */
  uint32_t *in = malloc(N * 4), *out = malloc(N * 4);
  assert_non_null(in);
  assert_non_null(out);
  for (uint32_t i = 0; i < N; i++) {
    in[i] = i * 3u;
    out[i] = 0;
  }
  pipe_user u = {kt_add_kernel(env->ctx), -1};
  kiln_pipeline_desc d = KILN_PIPELINE_DESC_INIT;
  d.src = in;
  d.src_bytes = N * 4;
  d.dst = out;
  d.dst_bytes = N * 4;
  d.chunk_bytes = 1536 * 4;
  d.compute = add_one;
  d.user = &u;
  KT_OK(kiln_pipeline_run(env->ctx, &d));
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(out[i], i * 3u + 1u);
  /* Depth 3 over a caller's stream set. */
  kiln_stream_set set = NULL;
  KT_OK(kiln_stream_set_create(env->ctx, 3, "pipe", &set));
  d.streams = set;
  d.depth = 3;
  memset(out, 0, N * 4);
  KT_OK(kiln_pipeline_run(env->ctx, &d));
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(out[i], i * 3u + 1u);
  /* A failing compute stops it, naming the chunk; nothing leaks. */
  u.fail_at = 4;
  KT_EXPECT_MSG(kiln_pipeline_run(env->ctx, &d), KILN_ERROR_INVALID_ARGUMENT, "chunk 4");
  /* Bad descriptions. */
  kiln_pipeline_desc bad = d;
  bad.out_chunk_bytes = 100;
  KT_EXPECT_MSG(kiln_pipeline_run(env->ctx, &bad), KILN_ERROR_INVALID_ARGUMENT, "as many chunks");
  bad = d;
  bad.chunk_bytes = 0;
  KT_EXPECT_MSG(kiln_pipeline_run(env->ctx, &bad), KILN_ERROR_INVALID_ARGUMENT, "chunk_bytes");
  bad = d;
  bad.compute = NULL;
  KT_EXPECT_MSG(kiln_pipeline_run(env->ctx, &bad), KILN_ERROR_INVALID_ARGUMENT, "compute");
  KT_EXPECT(kiln_pipeline_run(env->ctx, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_stream_set_destroy(set));
  bad = d;
  KT_EXPECT(kiln_pipeline_run(env->ctx, &bad), KILN_ERROR_INVALID_HANDLE);
  /* A set that keeps a pipeline's buffers, and a pool with a held stream, left to the
   * context: its destroy takes them along (teardown fails on a leak). */
  KT_OK(kiln_stream_set_create(env->ctx, 3, "kept", &set));
  d.streams = set;
  u.fail_at = -1;
  KT_OK(kiln_pipeline_run(env->ctx, &d));
  kiln_stream_pool left = NULL;
  kiln_stream held = NULL;
  KT_OK(kiln_stream_pool_create(env->ctx, 2, NULL, &left));
  KT_OK(kiln_stream_pool_acquire(left, &held));
  free(in);
  free(out);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(pool_round_robin_labels_and_ids, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_label_id_and_pending, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(least_pending_picks_the_least_loaded, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(acquire_release_and_bad_input, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stats_and_json, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(transfer_stream_is_shared_and_ordered, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_set_ring, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(priorities_are_applied_or_reported, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(pipeline_double_buffer, kt_setup, kt_teardown),
};

KT_MAIN(tests)
