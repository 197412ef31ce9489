/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Task graphs over the mock backend's failures (include/kiln/mock.h): a graph of two
 * device branches, a join and a host node, launched with the device lost at its Nth
 * backend call for every N of a clean launch (the launch reports DEVICE_LOST naming a
 * node, the graph is destroyed, nothing leaks, the device is reset), and with the Nth
 * backend call failing, once or from N on (the launch reports the injected status
 * naming the node whose op failed first, or — for a failed event marker, which is no
 * node's op — DEPENDENCY_FAILED naming it), and the graph runs right afterwards. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

typedef struct mworld {
  kiln_context ctx;
  kiln_kernel add;
  kiln_buffer x, y, z;
  kiln_graph g;
  uint32_t in[64], out[64];
  int host_runs;
} mworld;

static kiln_status host_count(void *user) {
  ((mworld *)user)->host_runs++;
  return KILN_SUCCESS;
}

/* write x -> add x (x3) and fill y (another stream) -> join -> host -> copy x to z ->
 * read z. */
static void build(mworld *w) {
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &w->ctx));
  w->add = kt_add_kernel(w->ctx);
  w->x = kt_buffer(w->ctx, sizeof w->in);
  w->y = kt_buffer(w->ctx, sizeof w->in);
  w->z = kt_buffer(w->ctx, sizeof w->in);
  for (uint32_t i = 0; i < 64; i++)
    w->in[i] = i;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.name = "mockgraph";
  KT_OK(kiln_graph_create(w->ctx, &d, &w->g));
  static const uint64_t off = 0;
  static const uint32_t one = 1, pat = 9;
  kiln_arg args[3];
  kt_add_args(args, w->x, &off, &one);
  kiln_range r = kiln_range_1d(64);
  kiln_graph_node n, fill, join, host, cp;
  KT_OK(kiln_graph_add_write(w->g, "upload", w->x, 0, sizeof w->in, w->in, &n));
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_graph_add_kernel(w->g, NULL, w->add, &r, args, 3, &n));
  KT_OK(kiln_graph_add_fill(w->g, "fill-y", w->y, 0, sizeof w->in, &pat, 4, &fill));
  KT_OK(kiln_graph_add_empty(w->g, "join", &join));
  KT_OK(kiln_graph_precede(w->g, n, join));
  KT_OK(kiln_graph_precede(w->g, fill, join));
  KT_OK(kiln_graph_add_host(w->g, "host", host_count, w, NULL, 0, &host));
  KT_OK(kiln_graph_precede(w->g, join, host));
  KT_OK(kiln_graph_add_copy(w->g, "x-to-z", w->z, 0, w->x, 0, sizeof w->in, &cp));
  KT_OK(kiln_graph_precede(w->g, host, cp));
  KT_OK(kiln_graph_add_read(w->g, "download", w->z, 0, sizeof w->out, w->out, &n));
}

static void teardown_world(mworld *w) {
  KT_OK(kiln_graph_destroy(w->g));
  /* handles of a lost device are destroyed all the same */
  kiln_status st = kiln_context_destroy(w->ctx);
  if (st != KILN_SUCCESS && st != KILN_ERROR_DEVICE_LOST)
    KT_OK(st);
  memset(w, 0, sizeof *w);
}

static int msetup(void **state) {
  (void)state;
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kt_alloc_install());
  return 0;
}

static int mteardown(void **state) {
  (void)state;
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kt_alloc_uninstall());
  return kt_alloc_check_clean("graph mock teardown") ? 0 : -1;
}

/* The backend calls of one launch (after the graph was built and launched once, so
 * its streams and events exist): counted by a clean run. */
static uint64_t clean_launch_calls(void) {
  mworld w;
  memset(&w, 0, sizeof w);
  build(&w);
  KT_OK(kiln_graph_run(w.g)); /* compiles: streams and events made */
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_graph_run(w.g));
  uint64_t calls = kiln_mock_calls();
  for (uint32_t i = 0; i < 64; i++)
    assert_int_equal(w.out[i], i + 3);
  assert_int_equal(w.host_runs, 2);
  teardown_world(&w);
  return calls;
}

static void test_device_loss_mid_graph(void **state) {
  (void)state;
  uint64_t calls = clean_launch_calls();
  assert_true(calls >= 7); /* the graph's seven device ops at least */
  for (uint64_t n = 1; n <= calls; n++) {
    mworld w;
    memset(&w, 0, sizeof w);
    build(&w);
    KT_OK(kiln_graph_run(w.g)); /* compiled: streams and events exist */
    kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
    c.lose_device_call = n;
    KT_OK(kiln_mock_configure(&c));
    kiln_status st = kiln_graph_run(w.g);
    if (st == KILN_SUCCESS && n == calls) {
      /* one call fewer this time (a wait for an event already complete queues
       * nothing): the loss never came; the results are whole */
      for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(w.out[i], i + 3);
      teardown_world(&w);
      KT_OK(kiln_mock_configure(NULL));
      continue;
    }
    if (st != KILN_ERROR_DEVICE_LOST)
      fail_msg("loss at call %llu: the launch returned %s (%s)", (unsigned long long)n,
               kiln_status_name(st), kiln_last_error()->message);
    KT_MSG_HAS("graph 'mockgraph' node '");
    KT_EXPECT(kiln_graph_run(w.g), KILN_ERROR_DEVICE_LOST); /* reported again, no hang */
    teardown_world(&w);
    KT_OK(kiln_mock_configure(NULL));
    KT_OK(kiln_device_reset(kt_mock_device()));
  }
}

static void sweep(kt_sweep_mode mode) {
  uint64_t calls = clean_launch_calls();
  uint64_t successes = 0, injected = 0;
  for (uint64_t n = 1; n <= calls; n++) {
    mworld w;
    memset(&w, 0, sizeof w);
    build(&w);
    KT_OK(kiln_graph_run(w.g));
    kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
    if (mode == KT_SWEEP_NTH)
      c.fail_call = n;
    else
      c.fail_from_call = n;
    c.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
    KT_OK(kiln_mock_configure(&c));
    kiln_status st = kiln_graph_run(w.g);
    uint64_t failures = kiln_mock_failures();
    KT_OK(kiln_mock_configure(NULL));
    if (failures == 0) {
      /* a stream's wait for an event already complete queues nothing, so a launch
       * makes one call fewer when the other branch was quick: N past the end */
      KT_OK(st);
      teardown_world(&w);
      continue;
    }
    injected++;
    /* a failed event marker (no node's op) shows as the waiting node's
     * DEPENDENCY_FAILED, whose detail names the injected status */
    if (st == KILN_SUCCESS) {
      /* the failure hit an op that carries no data (an event's marker, nothing failed
       * before it): kiln passes no failure on, and the results must be whole */
      for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(w.out[i], i + 3);
    } else if (st == KILN_ERROR_DEPENDENCY_FAILED) {
      KT_MSG_HAS("KILN_ERROR_OUT_OF_DEVICE_MEMORY");
    } else if (st != KILN_ERROR_OUT_OF_DEVICE_MEMORY) {
      fail_msg("%s N=%llu: the launch returned %s, expected the injected status (%s)",
               mode == KT_SWEEP_NTH ? "nth" : "from", (unsigned long long)n, kiln_status_name(st),
               kiln_last_error()->message);
    }
    if (st != KILN_SUCCESS)
      KT_MSG_HAS("node '");
    else
      successes++;
    /* the graph is usable again once the failures stop (the upload rewrites x whole) */
    KT_OK(kiln_graph_run(w.g));
    for (uint32_t i = 0; i < 64; i++)
      assert_int_equal(w.out[i], i + 3);
    teardown_world(&w);
  }
  assert_true(successes <= 2); /* at most the graph's one event's record and wait */
  assert_true(injected + 1 >= calls);
}

static void test_backend_fail_nth(void **state) {
  (void)state;
  sweep(KT_SWEEP_NTH);
}

static void test_backend_fail_from(void **state) {
  (void)state;
  sweep(KT_SWEEP_FROM);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_device_loss_mid_graph, msetup, mteardown),
      cmocka_unit_test_setup_teardown(test_backend_fail_nth, msetup, mteardown),
      cmocka_unit_test_setup_teardown(test_backend_fail_from, msetup, mteardown),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
