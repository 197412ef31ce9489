/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* kiln-test-env: KILN_CPU_SHUFFLE=7 */
/* Task graphs on the CPU backend (include/kiln/graph.h), with shuffled completion so
 * that a missing edge shows: DAG shapes (diamond, fan-out/fan-in, long chain) checked
 * by per-node order records (host nodes and a native "log" kernel append their number)
 * and by buffer contents; implicit edges from buffer use (RAW, WAR, WAW) and their
 * switch; refusals with their exact status (cycle naming its nodes, self edge, foreign
 * and zero nodes, NULL, changes while running); 100 relaunches; a failing host node
 * stops its dependants and is named; the async launch, query and timeout; the DOT
 * dump; and the allocation-failure sweep over create / add / launch / destroy. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

/* ---- order records: every node appends its number */

#define LOG_MAX 4096
static atomic_int log_len;
static int log_v[LOG_MAX];

static void log_reset(void) {
  atomic_store(&log_len, 0);
}
static void log_append(int v) {
  int i = atomic_fetch_add(&log_len, 1);
  if (i < LOG_MAX)
    log_v[i] = v;
}
/* Position of v in the log, -1 if absent (asserts it appears at most once). */
static int log_pos(int v) {
  int n = atomic_load(&log_len), at = -1;
  for (int i = 0; i < n && i < LOG_MAX; i++)
    if (log_v[i] == v) {
      assert_int_equal(at, -1);
      at = i;
    }
  return at;
}
static void assert_before(int a, int b) {
  int pa = log_pos(a), pb = log_pos(b);
  if (pa < 0 || pb < 0 || pa >= pb)
    fail_msg("node %d (log position %d) must run before node %d (position %d)", a, pa, b, pb);
}

static kiln_status host_log(void *user) {
  log_append((int)(intptr_t)user);
  return KILN_SUCCESS;
}

static void log_kernel_fn(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)user;
  int32_t v;
  memcpy(&v, args[0], sizeof v);
  log_append(v);
}

static kiln_kernel log_kernel(kiln_context ctx) {
  static const kiln_param p[] = {{KILN_PARAM_SCALAR, 4}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "log";
  d.fn = log_kernel_fn;
  d.params = p;
  d.param_count = 1;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

static kiln_graph_node add_log_kernel(kiln_graph g, kiln_kernel k, int v) {
  char name[16];
  snprintf(name, sizeof name, "k%d", v);
  int32_t id = v;
  kiln_arg a = kiln_arg_scalar(&id, sizeof id);
  kiln_range r = kiln_range_1d(1);
  kiln_graph_node n;
  KT_OK(kiln_graph_add_kernel(g, name, k, &r, &a, 1, &n));
  return n;
}

static kiln_graph_node add_log_host(kiln_graph g, int v) {
  char name[16];
  snprintf(name, sizeof name, "h%d", v);
  kiln_graph_node n;
  KT_OK(kiln_graph_add_host(g, name, host_log, (void *)(intptr_t)v, NULL, 0, &n));
  return n;
}

static kiln_graph new_graph(kt_env *env, unsigned flags, const char *name) {
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.flags = flags;
  d.name = name;
  kiln_graph g = NULL;
  KT_OK(kiln_graph_create(env->ctx, &d, &g));
  assert_non_null(g);
  return g;
}

/* ---- DAG shapes */

/* A diamond of each node kind mix: host a -> kernels b, c -> host d, and a second
 * diamond of kernels only. Explicit edges only (no buffers). */
static void test_diamond_order(void **state) {
  kt_env *env = *state;
  kiln_kernel k = log_kernel(env->ctx);
  kiln_graph g = new_graph(env, 0, "diamond");
  kiln_graph_node a = add_log_host(g, 1), b = add_log_kernel(g, k, 2), c = add_log_kernel(g, k, 3),
                  d = add_log_host(g, 4);
  kiln_graph_node e = add_log_kernel(g, k, 5), f = add_log_kernel(g, k, 6),
                  h = add_log_kernel(g, k, 7), i = add_log_kernel(g, k, 8);
  KT_OK(kiln_graph_precede(g, a, b));
  KT_OK(kiln_graph_precede(g, a, c));
  KT_OK(kiln_graph_precede(g, b, d));
  KT_OK(kiln_graph_precede(g, c, d));
  KT_OK(kiln_graph_precede(g, e, f));
  KT_OK(kiln_graph_precede(g, e, h));
  KT_OK(kiln_graph_precede(g, f, i));
  KT_OK(kiln_graph_precede(g, h, i));
  KT_OK(kiln_graph_precede(g, h, i)); /* a repeated edge counts once */
  size_t nodes, edges;
  KT_OK(kiln_graph_node_count(g, &nodes));
  KT_OK(kiln_graph_edge_count(g, &edges));
  assert_int_equal(nodes, 8);
  assert_int_equal(edges, 8);
  for (int rep = 0; rep < 50; rep++) {
    log_reset();
    KT_OK(kiln_graph_run(g));
    assert_int_equal(atomic_load(&log_len), 8);
    assert_before(1, 2);
    assert_before(1, 3);
    assert_before(2, 4);
    assert_before(3, 4);
    assert_before(5, 6);
    assert_before(5, 7);
    assert_before(6, 8);
    assert_before(7, 8);
  }
  KT_OK(kiln_graph_node_status(g, d));
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_kernel_destroy(k));
}

/* 1 -> 16 -> 1, kernels, with at most 4 streams: the join waits for every branch. */
static void test_fan_out_fan_in(void **state) {
  kt_env *env = *state;
  kiln_kernel k = log_kernel(env->ctx);
  kiln_graph g = new_graph(env, 0, "fan");
  kiln_graph_node src = add_log_kernel(g, k, 0);
  kiln_graph_node join;
  KT_OK(kiln_graph_add_empty(g, "join", &join));
  kiln_graph_node sink = add_log_kernel(g, k, 100);
  kiln_graph_node host_sink = add_log_host(g, 101);
  for (int i = 1; i <= 16; i++) {
    kiln_graph_node m = add_log_kernel(g, k, i);
    KT_OK(kiln_graph_precede(g, src, m));
    KT_OK(kiln_graph_precede(g, m, join));
  }
  KT_OK(kiln_graph_precede(g, join, sink));
  KT_OK(kiln_graph_precede(g, join, host_sink));
  for (int rep = 0; rep < 30; rep++) {
    log_reset();
    KT_OK(kiln_graph_run(g));
    assert_int_equal(atomic_load(&log_len), 19);
    for (int i = 1; i <= 16; i++) {
      assert_before(0, i);
      assert_before(i, 100);
      assert_before(i, 101);
    }
  }
  /* the branches were spread over the graph's streams */
  char dot[8192];
  KT_OK(kiln_graph_dump_dot(g, dot, sizeof dot, NULL));
  assert_non_null(strstr(dot, "(stream 3)"));
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_kernel_destroy(k));
}

/* A chain of 300 nodes alternating host and kernel nodes, and a 200-add chain on one
 * buffer through implicit edges (read-write kernel arguments). */
static void test_long_chain(void **state) {
  kt_env *env = *state;
  kiln_kernel k = log_kernel(env->ctx);
  kiln_graph g = new_graph(env, 0, "chain");
  kiln_graph_node prev = {0};
  for (int i = 0; i < 300; i++) {
    kiln_graph_node n = (i % 3 == 2) ? add_log_host(g, i) : add_log_kernel(g, k, i);
    if (i)
      KT_OK(kiln_graph_precede(g, prev, n));
    prev = n;
  }
  log_reset();
  KT_OK(kiln_graph_run(g));
  assert_int_equal(atomic_load(&log_len), 300);
  for (int i = 0; i < 300; i++)
    assert_int_equal(log_v[i], i);
  KT_OK(kiln_graph_destroy(g));

  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 64 * sizeof(uint32_t));
  g = new_graph(env, 0, "adds");
  uint32_t zero = 0;
  kiln_graph_node n;
  KT_OK(kiln_graph_add_fill(g, "zero", x, 0, 64 * sizeof(uint32_t), &zero, 4, &n));
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range r = kiln_range_1d(64);
  for (int i = 0; i < 200; i++)
    KT_OK(kiln_graph_add_kernel(g, NULL, add, &r, args, 3, &n));
  uint32_t out[64];
  KT_OK(kiln_graph_add_read(g, "out", x, 0, sizeof out, out, &n));
  size_t edges;
  KT_OK(kiln_graph_edge_count(g, &edges));
  assert_int_equal(edges, 201);
  for (int rep = 0; rep < 3; rep++) {
    memset(out, 0xff, sizeof out);
    KT_OK(kiln_graph_run(g));
    for (int i = 0; i < 64; i++)
      assert_int_equal(out[i], 200);
  }
  char dot[65536];
  KT_OK(kiln_graph_dump_dot(g, dot, sizeof dot, NULL));
  assert_null(strstr(dot, "(stream 1)")); /* a chain stays on one stream */
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- implicit edges */

typedef struct peek {
  kiln_buffer buf;
  uint32_t seen;
  kiln_status st;
} peek;

static kiln_status host_peek(void *user) {
  peek *p = user;
  p->st = kiln_buffer_read(p->buf, 0, sizeof p->seen, &p->seen);
  return p->st;
}

/* write X -> kernel X += 1 (RAW) -> host peek reads X (RAW) -> fill X = 7 (WAR after
 * the peek) -> read X (RAW) and write X again (WAW after the fill). The peek must see
 * 11 (10 + 1), never 7: without the WAR edge the fill, a device node, would be queued
 * before the host node runs. */
static void test_implicit_deps(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 4);
  for (int variant = 0; variant < 2; variant++) {
    kiln_graph g = new_graph(env, variant ? KILN_GRAPH_NO_IMPLICIT_DEPS : 0, "implicit");
    uint32_t in = 10, seven = 7, out = 0, last = 0, again = 3;
    static const uint64_t off = 0;
    static const uint32_t one = 1;
    kiln_arg args[3];
    kt_add_args(args, x, &off, &one);
    kiln_range r = kiln_range_1d(1);
    peek pk = {x, 0, KILN_SUCCESS};
    kiln_graph_use use = {x, KILN_GRAPH_READ};
    kiln_graph_node w, k, h, f, rd, w2, rd2;
    KT_OK(kiln_graph_add_write(g, "in", x, 0, 4, &in, &w));
    KT_OK(kiln_graph_add_kernel(g, "add", add, &r, args, 3, &k));
    KT_OK(kiln_graph_add_host(g, "peek", host_peek, &pk, &use, 1, &h));
    KT_OK(kiln_graph_add_fill(g, "seven", x, 0, 4, &seven, 4, &f));
    KT_OK(kiln_graph_add_read(g, "out", x, 0, 4, &out, &rd));
    KT_OK(kiln_graph_add_write(g, "again", x, 0, 4, &again, &w2));
    KT_OK(kiln_graph_add_read(g, "last", x, 0, 4, &last, &rd2));
    size_t edges;
    KT_OK(kiln_graph_edge_count(g, &edges));
    if (variant) {
      assert_int_equal(edges, 0);
      KT_OK(kiln_graph_destroy(g));
      continue;
    }
    /* w->k, k->h, k->f (WAW), h->f (WAR), f->rd, f->w2 (WAW), rd->w2 (WAR), w2->rd2 */
    assert_int_equal(edges, 8);
    for (int rep = 0; rep < 20; rep++) {
      KT_OK(kiln_graph_run(g));
      KT_OK(pk.st);
      assert_int_equal(pk.seen, 11);
      assert_int_equal(out, 7);
      assert_int_equal(last, 3);
    }
    KT_OK(kiln_graph_destroy(g));
  }
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

/* ---- refusals */

static kiln_status host_nop(void *user) {
  (void)user;
  return KILN_SUCCESS;
}

static void test_refusals(void **state) {
  kt_env *env = *state;
  kiln_graph g = NULL, g2 = NULL;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  KT_EXPECT(kiln_graph_create(env->ctx, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_graph_create(NULL, NULL, &g), KILN_ERROR_INVALID_HANDLE);
  assert_null(g);
  d.struct_size = 8;
  KT_EXPECT_MSG(kiln_graph_create(env->ctx, &d, &g), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_GRAPH_DESC_INIT");
  d.struct_size = sizeof d;
  d.max_streams = 17;
  KT_EXPECT_MSG(kiln_graph_create(env->ctx, &d, &g), KILN_ERROR_INVALID_ARGUMENT, "17");
  d.max_streams = 0;
  d.flags = 0x10;
  KT_EXPECT_MSG(kiln_graph_create(env->ctx, &d, &g), KILN_ERROR_INVALID_ARGUMENT, "0x10");
  assert_null(g);
  g = new_graph(env, 0, "refuse");
  g2 = new_graph(env, 0, "other");
  kiln_graph_node a, b, c, foreign, zero = {0};
  KT_OK(kiln_graph_add_host(g, "a", host_nop, NULL, NULL, 0, &a));
  KT_OK(kiln_graph_add_host(g, "b", host_nop, NULL, NULL, 0, &b));
  KT_OK(kiln_graph_add_host(g, "c", host_nop, NULL, NULL, 0, &c));
  KT_OK(kiln_graph_add_empty(g2, "x", &foreign));
  KT_OK(kiln_graph_precede(g, a, b));
  KT_OK(kiln_graph_precede(g, b, c));
  KT_EXPECT_MSG(kiln_graph_precede(g, c, a), KILN_ERROR_INVALID_ARGUMENT, "cycle");
  KT_MSG_HAS("'a' -> 'b' -> 'c' -> 'a'");
  KT_EXPECT_MSG(kiln_graph_precede(g, b, b), KILN_ERROR_INVALID_ARGUMENT, "itself");
  KT_EXPECT_MSG(kiln_graph_precede(g, a, foreign), KILN_ERROR_INVALID_HANDLE, "another graph");
  KT_EXPECT_MSG(kiln_graph_precede(g, zero, a), KILN_ERROR_INVALID_HANDLE, "zero node");
  KT_EXPECT(kiln_graph_precede(NULL, a, b), KILN_ERROR_INVALID_HANDLE);
  /* a backward edge that closes no cycle is fine, and later cycles are still found */
  kiln_graph_node e;
  KT_OK(kiln_graph_add_host(g, "e", host_nop, NULL, NULL, 0, &e));
  KT_OK(kiln_graph_precede(g, e, a));
  KT_EXPECT_MSG(kiln_graph_precede(g, c, e), KILN_ERROR_INVALID_ARGUMENT, "'e' -> 'a' -> 'b'");
  size_t edges;
  KT_OK(kiln_graph_edge_count(g, &edges));
  assert_int_equal(edges, 3);
  KT_EXPECT(kiln_graph_node_status(g, a), KILN_NOT_READY);
  KT_EXPECT(kiln_graph_wait(g), KILN_ERROR_INVALID_STATE);

  kiln_graph_node n = {42};
  KT_EXPECT(kiln_graph_add_host(g, "z", NULL, NULL, NULL, 0, &n), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(n.id, 0);
  KT_EXPECT(kiln_graph_add_host(g, "z", host_nop, NULL, NULL, 0, NULL),
            KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_graph_add_empty(NULL, "z", &n), KILN_ERROR_INVALID_HANDLE);
  kiln_buffer x = kt_buffer(env->ctx, 16);
  char host[32];
  KT_EXPECT_MSG(kiln_graph_add_write(g, "w", x, 8, 16, host, &n), KILN_ERROR_OUT_OF_RANGE,
                "offset 8 + bytes 16");
  KT_EXPECT(kiln_graph_add_read(g, "r", NULL, 0, 4, host, &n), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT_MSG(kiln_graph_add_fill(g, "f", x, 0, 16, host, 3, &n), KILN_ERROR_INVALID_ARGUMENT,
                "pattern_bytes is 3");
  KT_EXPECT(kiln_graph_add_copy(g, "c", x, 0, x, 8, 12, &n), KILN_ERROR_OUT_OF_RANGE);
  kiln_graph_use bad_use = {x, (kiln_graph_access)9};
  KT_EXPECT_MSG(kiln_graph_add_host(g, "u", host_nop, NULL, &bad_use, 1, &n),
                KILN_ERROR_INVALID_ARGUMENT, "access is 9");
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_range r = kiln_range_1d(4);
  kiln_arg one = kiln_arg_buffer(x);
  KT_EXPECT_MSG(kiln_graph_add_kernel(g, "k", add, &r, &one, 1, &n), KILN_ERROR_KERNEL_ARGS,
                "takes 3 arguments, 1 were given");
  uint32_t small = 1;
  kiln_arg bad[3] = {kiln_arg_buffer(x), kiln_arg_scalar(&small, 4), kiln_arg_scalar(&small, 4)};
  KT_EXPECT_MSG(kiln_graph_add_kernel(g, "k", add, &r, bad, 3, &n), KILN_ERROR_KERNEL_ARGS,
                "argument 1: expected a 8-byte scalar");
  KT_EXPECT(kiln_graph_add_kernel(g, "k", add, NULL, bad, 3, &n), KILN_ERROR_INVALID_ARGUMENT);
  size_t count;
  KT_OK(kiln_graph_node_count(g, &count));
  assert_int_equal(count, 4); /* nothing refused was added */
  char small_buf[8];
  size_t needed = 0;
  KT_EXPECT_MSG(kiln_graph_dump_dot(g, small_buf, sizeof small_buf, &needed),
                KILN_ERROR_INVALID_ARGUMENT, "needs");
  assert_true(needed > sizeof small_buf);
  assert_int_equal(small_buf[sizeof small_buf - 1], '\0');
  char *dot = malloc(needed + 1);
  assert_non_null(dot);
  KT_OK(kiln_graph_dump_dot(g, dot, needed + 1, NULL));
  assert_int_equal(strlen(dot), needed);
  assert_non_null(strstr(dot, "digraph \"refuse\""));
  assert_non_null(strstr(dot, "n0 -> n1;"));
  assert_non_null(strstr(dot, "n3 -> n0;"));
  free(dot);
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_graph_destroy(g2));
  KT_OK(kiln_graph_destroy(NULL));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

/* ---- launches */

typedef struct gate {
  atomic_int entered, open;
  kiln_graph self;
  kiln_status self_wait, self_launch, self_add;
} gate;

static kiln_status host_gate(void *user) {
  gate *gt = user;
  gt->self_wait = kiln_graph_wait(gt->self);
  gt->self_launch = kiln_graph_launch(gt->self);
  kiln_graph_node n;
  gt->self_add = kiln_graph_add_empty(gt->self, "late", &n);
  atomic_store(&gt->entered, 1);
  for (int i = 0; i < 300000 && !atomic_load(&gt->open); i++)
    kt_sleep_us(100);
  return KILN_SUCCESS;
}

/* kiln_graph_launch returns before a host node blocked on the test has run; while it
 * is in flight the graph refuses changes, a second launch and a second waiter; query,
 * the timed wait and the node's own calls into its graph behave as documented. */
static void test_async_launch(void **state) {
  kt_env *env = *state;
  kiln_graph g = new_graph(env, 0, "async");
  gate gt = {0};
  gt.self = g;
  kiln_graph_node h, after, a2;
  KT_OK(kiln_graph_add_host(g, "gate", host_gate, &gt, NULL, 0, &h));
  KT_OK(kiln_graph_add_host(g, "after", host_log, (void *)(intptr_t)9, NULL, 0, &after));
  KT_OK(kiln_graph_precede(g, h, after));
  log_reset();
  KT_OK(kiln_graph_launch(g));
  assert_true(kt_wait_atomic_at_least(&gt.entered, 1, 30.0));
  assert_int_equal(gt.self_wait, KILN_ERROR_INVALID_STATE);
  assert_int_equal(gt.self_launch, KILN_ERROR_INVALID_STATE);
  assert_int_equal(gt.self_add, KILN_ERROR_INVALID_STATE);
  KT_EXPECT(kiln_graph_query(g), KILN_NOT_READY);
  KT_EXPECT(kiln_graph_wait_timeout(g, 1000000), KILN_TIMEOUT);
  KT_EXPECT_MSG(kiln_graph_launch(g), KILN_ERROR_INVALID_STATE, "in flight");
  KT_EXPECT(kiln_graph_add_host(g, "x", host_nop, NULL, NULL, 0, &a2), KILN_ERROR_INVALID_STATE);
  KT_EXPECT(kiln_graph_precede(g, after, h), KILN_ERROR_INVALID_STATE);
  KT_EXPECT(kiln_graph_run(g), KILN_ERROR_INVALID_STATE);
  assert_int_equal(atomic_load(&log_len), 0);
  atomic_store(&gt.open, 1);
  KT_OK(kiln_graph_wait(g));
  assert_int_equal(atomic_load(&log_len), 1);
  KT_OK(kiln_graph_query(g));
  KT_EXPECT(kiln_graph_wait(g), KILN_ERROR_INVALID_STATE);
  /* destroy waits for a launch in flight */
  atomic_store(&gt.entered, 0);
  KT_OK(kiln_graph_launch(g));
  KT_OK(kiln_graph_destroy(g));
  assert_int_equal(atomic_load(&gt.entered), 1);
  assert_int_equal(atomic_load(&log_len), 2);
}

/* A launch without host nodes queues everything at once; its wait times out on a
 * device op held by a gate (the token wait's timeout, the launch kept), query says
 * NOT_READY, and once the gate opens the wait completes the launch. */
static void test_wait_timeout_on_device_work(void **state) {
  kt_env *env = *state;
  kt_gate *kg = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 16);
  kiln_graph g = new_graph(env, 0, "gated");
  kiln_range r = kiln_range_1d(1);
  kiln_arg a = kiln_arg_scalar(&kg, sizeof kg);
  uint32_t in[4] = {1, 2, 3, 4}, out[4] = {0};
  kiln_graph_node k, w, rd;
  KT_OK(kiln_graph_add_kernel(g, "gate", gk, &r, &a, 1, &k));
  KT_OK(kiln_graph_add_write(g, "up", x, 0, 16, in, &w));
  KT_OK(kiln_graph_precede(g, k, w));
  KT_OK(kiln_graph_add_read(g, "down", x, 0, 16, out, &rd));
  KT_OK(kiln_graph_launch(g)); /* returns: nothing runs on the calling thread */
  assert_true(kt_wait_atomic_at_least(&kg->entered, 1, 30.0));
  KT_EXPECT(kiln_graph_query(g), KILN_NOT_READY);
  KT_EXPECT(kiln_graph_wait_timeout(g, 2000000), KILN_TIMEOUT);
  KT_EXPECT(kiln_graph_wait_timeout(g, 0), KILN_TIMEOUT);
  KT_EXPECT(kiln_graph_launch(g), KILN_ERROR_INVALID_STATE);
  kt_gate_open(kg);
  KT_OK(kiln_graph_wait(g));
  assert_int_equal(out[3], 4);
  KT_OK(kiln_graph_query(g));
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(gk));
}

/* write -> kernel (+1) -> read, launched 100 times with a new input each time (the
 * write node reads its host memory at each launch). */
static void test_relaunch_100(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  enum { N = 256 };
  kiln_buffer x = kt_buffer(env->ctx, N * 4);
  uint32_t *in = calloc(N, 4), *out = calloc(N, 4);
  assert_non_null(in);
  assert_non_null(out);
  kiln_graph g = new_graph(env, 0, "relaunch");
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range r = kiln_range_1d(N);
  kiln_graph_node w, k, rd;
  KT_OK(kiln_graph_add_write(g, "in", x, 0, N * 4, in, &w));
  KT_OK(kiln_graph_add_kernel(g, "add", add, &r, args, 3, &k));
  KT_OK(kiln_graph_add_read(g, "out", x, 0, N * 4, out, &rd));
  for (uint32_t it = 0; it < 100; it++) {
    for (uint32_t i = 0; i < N; i++)
      in[i] = it * 1000 + i;
    if (it % 2)
      KT_OK(kiln_graph_run(g));
    else {
      KT_OK(kiln_graph_launch(g));
      KT_OK(kiln_graph_wait(g));
    }
    for (uint32_t i = 0; i < N; i++)
      assert_int_equal(out[i], it * 1000 + i + 1);
  }
  KT_OK(kiln_graph_node_status(g, rd));
  KT_OK(kiln_graph_destroy(g));
  free(in);
  free(out);
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

static kiln_status host_fail(void *user) {
  (void)user;
  return kiln_error_report(KILN_ERROR_IO, "my_step", "check the input file",
                           "input.dat: no such file");
}

/* a -> b (fails) -> c -> d(kernel), b -> e(kernel); f unrelated: the launch reports b's
 * failure by name, c, d, e did not run (DEPENDENCY_FAILED naming b), a and f ran. */
static void test_host_failure_stops_dependants(void **state) {
  kt_env *env = *state;
  kiln_kernel k = log_kernel(env->ctx);
  for (int threaded = 0; threaded < 2; threaded++) {
    kiln_graph g = new_graph(env, 0, "failing");
    kiln_graph_node a = add_log_host(g, 1), b, c = add_log_host(g, 3), d = add_log_kernel(g, k, 4),
                    e = add_log_kernel(g, k, 5), f = add_log_kernel(g, k, 6);
    KT_OK(kiln_graph_add_host(g, "loader", host_fail, NULL, NULL, 0, &b));
    KT_OK(kiln_graph_precede(g, a, b));
    KT_OK(kiln_graph_precede(g, b, c));
    KT_OK(kiln_graph_precede(g, c, d));
    KT_OK(kiln_graph_precede(g, b, e));
    for (int rep = 0; rep < 3; rep++) {
      log_reset();
      if (threaded) {
        KT_OK(kiln_graph_launch(g));
        KT_EXPECT_MSG(kiln_graph_wait(g), KILN_ERROR_IO, "node 'loader' (host)");
      } else {
        KT_EXPECT_MSG(kiln_graph_run(g), KILN_ERROR_IO, "node 'loader' (host)");
      }
      KT_MSG_HAS("input.dat: no such file");
      KT_MSG_HAS("graph 'failing'");
      assert_string_equal(kiln_last_error()->suggestion, "check the input file");
      assert_int_equal(atomic_load(&log_len), 2);
      assert_true(log_pos(1) >= 0);
      assert_true(log_pos(6) >= 0);
      KT_OK(kiln_graph_node_status(g, a));
      KT_OK(kiln_graph_node_status(g, f));
      KT_EXPECT(kiln_graph_node_status(g, b), KILN_ERROR_IO);
      KT_EXPECT_MSG(kiln_graph_node_status(g, c), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
      KT_EXPECT_MSG(kiln_graph_node_status(g, d), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
      KT_EXPECT_MSG(kiln_graph_node_status(g, e), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
    }
    KT_OK(kiln_graph_destroy(g));
  }
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- trace: the launch, host nodes (ranges) and device nodes (marks) by name */

static void test_trace_names(void **state) {
  kt_env *env = *state;
  char path[256];
  snprintf(path, sizeof path, "%s/kiln-graph-trace-%d.json",
           getenv("TMPDIR") && getenv("TMPDIR")[0] == '/' ? getenv("TMPDIR") : "/tmp",
           (int)getpid());
  kiln_kernel k = log_kernel(env->ctx);
  kiln_graph g = new_graph(env, 0, "traced-graph");
  kiln_graph_node h, d;
  KT_OK(kiln_graph_add_host(g, "host-node-x", host_log, (void *)(intptr_t)1, NULL, 0, &h));
  int32_t id = 2;
  kiln_arg a = kiln_arg_scalar(&id, sizeof id);
  kiln_range r = kiln_range_1d(1);
  KT_OK(kiln_graph_add_kernel(g, "kernel-node-y", k, &r, &a, 1, &d));
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.path = path;
  KT_OK(kiln_trace_start(&td));
  KT_OK(kiln_graph_run(g));
  KT_OK(kiln_trace_stop());
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  unlink(path);
  assert_non_null(strstr(text, "\"traced-graph\""));
  assert_non_null(strstr(text, "\"host-node-x\""));
  assert_non_null(strstr(text, "\"kernel-node-y\""));
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- allocation failures */

static int counter;
static kiln_status host_count(void *user) {
  (void)user;
  counter++;
  return KILN_SUCCESS;
}

/* create, add every kind, edges, launch twice, destroy; returns the first failure. */
static kiln_status sweep_scenario(kiln_context ctx, kiln_kernel add, kiln_buffer x, kiln_buffer y) {
  kiln_graph g = NULL;
  kiln_graph_node n[8];
  uint32_t host_in[16] = {1}, host_out[16], pat = 5;
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range r = kiln_range_1d(16);
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.max_streams = 2;
  kiln_status st = kiln_graph_create(ctx, &d, &g);
  if (st != KILN_SUCCESS) {
    assert_null(g);
    return st;
  }
  if ((st = kiln_graph_add_write(g, "w", x, 0, 64, host_in, &n[0])) == KILN_SUCCESS &&
      (st = kiln_graph_add_fill(g, "f", y, 0, 64, &pat, 4, &n[1])) == KILN_SUCCESS &&
      (st = kiln_graph_add_kernel(g, "k", add, &r, args, 3, &n[2])) == KILN_SUCCESS &&
      (st = kiln_graph_add_copy(g, "c", y, 0, x, 0, 64, &n[3])) == KILN_SUCCESS &&
      (st = kiln_graph_add_host(g, "h", host_count, NULL, NULL, 0, &n[4])) == KILN_SUCCESS &&
      (st = kiln_graph_add_empty(g, "j", &n[5])) == KILN_SUCCESS &&
      (st = kiln_graph_add_read(g, "r", y, 0, 64, host_out, &n[6])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[1], n[5])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[2], n[5])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[5], n[4])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[4], n[6])) == KILN_SUCCESS &&
      (st = kiln_graph_run(g)) == KILN_SUCCESS && (st = kiln_graph_launch(g)) == KILN_SUCCESS)
    st = kiln_graph_wait(g);
  if (st == KILN_SUCCESS && host_out[0] != 2)
    fail_msg("the scenario read %u, expected 2", host_out[0]);
  kiln_status ds = kiln_graph_destroy(g);
  return st != KILN_SUCCESS ? st : ds;
}

static void test_alloc_sweep(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 64), y = kt_buffer(env->ctx, 64);
  size_t base = kt_alloc_live_count();
  kt_alloc_fail_none();
  KT_OK(sweep_scenario(env->ctx, add, x, y));
  KT_OK(kiln_context_synchronize(env->ctx));
  size_t calls = kt_alloc_calls();
  assert_true(calls >= 12); /* graph, nodes, edges, args, schedule, streams, ops, ... */
  for (int mode = 0; mode < 2; mode++)
    for (size_t n = 1; n <= calls; n++) {
      if (mode)
        kt_alloc_fail_from(n);
      else
        kt_alloc_fail_nth(n);
      kiln_status st = sweep_scenario(env->ctx, add, x, y);
      size_t failures = kt_alloc_failures();
      kt_alloc_fail_none();
      KT_OK(kiln_context_synchronize(env->ctx));
      if (failures && st != KILN_ERROR_OUT_OF_HOST_MEMORY)
        fail_msg("%s N=%zu: the scenario ended in %s, expected OUT_OF_HOST_MEMORY (%s)",
                 mode ? "from" : "nth", n, kiln_status_name(st), kiln_last_error()->message);
      if (!failures)
        KT_OK(st);
      if (kt_alloc_live_count() > base + 64) /* kiln's op slab may keep grown chunks */
        fail_msg("N=%zu: %zu blocks live, %zu before", n, kt_alloc_live_count(), base);
    }
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_buffer_destroy(y));
  KT_OK(kiln_kernel_destroy(add));
}

typedef struct sums {
  const uint32_t *in, *out;
  uint64_t in_sum, out_sum;
} sums;

static kiln_status host_sum(void *user) {
  sums *sm = user;
  sm->in_sum = sm->out_sum = 0;
  for (int i = 0; i < 64; i++) {
    sm->in_sum += sm->in[i];
    sm->out_sum += sm->out[i];
  }
  return KILN_SUCCESS;
}

/* A host node may touch the host memory of every transfer before it, not only of its
 * predecessors': here the upload's source, two edges up. In the ASan tree that memory
 * stays poisoned until a wait observes the upload (design.md's host-range guard), so
 * this fails there unless the graph waits every device ancestor first. */
static void test_host_node_sees_ancestors_memory(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 256);
  kiln_graph g = new_graph(env, 0, "ancestors");
  uint32_t in[64], out[64];
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range r = kiln_range_1d(64);
  sums sm = {in, out, 0, 0};
  kiln_graph_node w, k, rd, h;
  KT_OK(kiln_graph_add_write(g, "up", x, 0, sizeof in, in, &w));
  KT_OK(kiln_graph_add_kernel(g, "add", add, &r, args, 3, &k));
  KT_OK(kiln_graph_add_read(g, "down", x, 0, sizeof out, out, &rd));
  KT_OK(kiln_graph_add_host(g, "sum", host_sum, &sm, NULL, 0, &h));
  KT_OK(kiln_graph_precede(g, rd, h));
  for (uint32_t it = 0; it < 5; it++) {
    for (uint32_t i = 0; i < 64; i++)
      in[i] = it + i;
    KT_OK(kiln_graph_run(g));
    assert_int_equal(sm.out_sum, sm.in_sum + 64);
  }
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

/* A buffer destroyed after it was added: kiln refuses the write at submission
 * (INVALID_HANDLE), the launch names that node, its dependant is stopped, unrelated
 * work runs, and the graph can still be destroyed. */
static void test_destroyed_buffer_fails_its_nodes(void **state) {
  kt_env *env = *state;
  kiln_buffer x = kt_buffer(env->ctx, 64), y = kt_buffer(env->ctx, 64);
  kiln_graph g = new_graph(env, 0, "stale");
  uint32_t in[16] = {7}, out[16] = {0}, other[16] = {0};
  kiln_graph_node w, rd, ok;
  KT_OK(kiln_graph_add_write(g, "up", x, 0, 64, in, &w));
  KT_OK(kiln_graph_add_read(g, "down", x, 0, 64, out, &rd));
  KT_OK(kiln_graph_add_fill(g, "unrelated", y, 0, 64, in, 4, &ok));
  KT_OK(kiln_graph_run(g));
  assert_int_equal(out[0], 7);
  KT_OK(kiln_buffer_destroy(x));
  KT_EXPECT_MSG(kiln_graph_run(g), KILN_ERROR_INVALID_HANDLE, "node 'up' (write)");
  KT_OK(kiln_graph_node_status(g, ok)); /* unrelated work ran */
  KT_OK(kiln_buffer_read(y, 0, 64, other));
  assert_int_equal(other[15], 7);
  /* the read comes after the failed write (RAW): stopped, naming it */
  KT_EXPECT_MSG(kiln_graph_node_status(g, rd), KILN_ERROR_DEPENDENCY_FAILED, "'up'");
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(y));
}

/* An add refused for lack of memory leaves the implicit-edge trackers as they were:
 * the next node still gets its edges from the last writer and readers. */
static void test_failed_add_keeps_trackers(void **state) {
  kt_env *env = *state;
  kiln_buffer x = kt_buffer(env->ctx, 64);
  kiln_graph g = new_graph(env, 0, "trackers");
  uint32_t host[16] = {0};
  kiln_graph_node w, r1, r2, refused = {0}, w2;
  KT_OK(kiln_graph_add_write(g, "w", x, 0, 64, host, &w));
  KT_OK(kiln_graph_add_read(g, "r1", x, 0, 64, host, &r1));
  KT_OK(kiln_graph_add_read(g, "r2", x, 0, 64, host, &r2));
  for (size_t n = 1; n <= 4; n++) {
    kt_alloc_fail_from(n);
    kiln_status st = kiln_graph_add_write(g, "refused", x, 0, 64, host, &refused);
    kt_alloc_fail_none();
    if (st == KILN_SUCCESS)
      break; /* enough room already: nothing was refused from here on */
    assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
    assert_int_equal(refused.id, 0);
    size_t nodes, edges;
    KT_OK(kiln_graph_node_count(g, &nodes));
    KT_OK(kiln_graph_edge_count(g, &edges));
    assert_int_equal(nodes, 3);
    assert_int_equal(edges, 2);
  }
  if (refused.id == 0) /* every try was refused: add it now */
    KT_OK(kiln_graph_add_write(g, "w2", x, 0, 64, host, &w2));
  size_t edges;
  KT_OK(kiln_graph_edge_count(g, &edges));
  assert_int_equal(edges, 5); /* w->r1, w->r2, and the new write after w (WAW), r1, r2 (WAR) */
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
}

/* The two public calls the graph layer is built on: kiln_error_report fills
 * kiln_last_error like kiln's own calls (default suggestion when NULL, refuses a
 * non-error status), kiln_allocator_alloc goes through the program's allocator. */
static void test_layer_services(void **state) {
  (void)state;
  assert_int_equal(kiln_error_report(KILN_ERROR_IO, "my_lib_load", NULL, "file %s: %d", "a.bin", 7),
                   KILN_ERROR_IO);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, KILN_ERROR_IO);
  assert_string_equal(e->function, "my_lib_load");
  assert_string_equal(e->message, "file a.bin: 7");
  assert_string_equal(e->suggestion, kiln_status_suggestion(KILN_ERROR_IO));
  assert_int_equal(kiln_error_report(KILN_ERROR_IO, "f", "do this", "x"), KILN_ERROR_IO);
  assert_string_equal(kiln_last_error()->suggestion, "do this");
  KT_EXPECT_MSG(kiln_error_report(KILN_SUCCESS, "f", NULL, "fine"), KILN_ERROR_INVALID_ARGUMENT,
                "not an error");
  KT_EXPECT(kiln_error_report(KILN_NOT_READY, "f", NULL, "later"), KILN_ERROR_INVALID_ARGUMENT);
  size_t live = kt_alloc_live_count();
  void *p = kiln_allocator_alloc(100, 64);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 64, 0);
  assert_int_equal(kt_alloc_live_count(), live + 1);
  kiln_allocator_free(p, 100, 64);
  assert_int_equal(kt_alloc_live_count(), live);
  assert_null(kiln_allocator_alloc(16, 3));
  kt_alloc_fail_nth(1);
  assert_null(kiln_allocator_alloc(16, 0));
  kt_alloc_fail_none();
  kiln_allocator_free(NULL, 16, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_layer_services, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_diamond_order, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_fan_out_fan_in, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_long_chain, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_implicit_deps, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_refusals, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_async_launch, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_wait_timeout_on_device_work, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_relaunch_100, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_host_failure_stops_dependants, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_trace_names, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_alloc_sweep, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_failed_add_keeps_trackers, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_destroyed_buffer_fails_its_nodes, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_host_node_sees_ancestors_memory, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
