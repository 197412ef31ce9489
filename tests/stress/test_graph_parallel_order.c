/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=13 */
/* Parallel host nodes (desc.workers = 4) never start before their predecessors have
 * finished, under many relaunches (run under TSan by make check): two threads, each
 * with its own layered graph of host nodes and native "stamp" kernels (5 layers of 6,
 * each node after three of the layer before), relaunched 150 times — one thread with
 * kiln_graph_run, the other with kiln_graph_launch_future and a wait. Every node takes
 * a start and an end stamp from one global clock; after each launch every edge must
 * have its predecessor's end before its successor's start, and every node must have
 * run exactly once. Workers never assert: they count violations, main checks. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define LAYERS 5
#define WIDTH 6
#define NODES (LAYERS * WIDTH)
#define LAUNCHES 150

static atomic_uint clock_now;

typedef struct rec {
  atomic_uint start, end, runs;
} rec;

typedef struct worker {
  kiln_context ctx;
  kiln_kernel stamp;
  kiln_graph g;
  rec recs[NODES];
  int pred[NODES][3];
  int use_future;
  int violations, errors;
  char first[640];
} worker;

static void stamp_range(rec *r) {
  atomic_store(&r->start, atomic_fetch_add(&clock_now, 1u) + 1u);
  atomic_fetch_add(&r->runs, 1u);
  atomic_store(&r->end, atomic_fetch_add(&clock_now, 1u) + 1u);
}

static kiln_status host_stamp(void *user) {
  stamp_range(user);
  return KILN_SUCCESS;
}

static void stamp_kernel_fn(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)user;
  rec *r;
  memcpy(&r, args[0], sizeof r);
  stamp_range(r);
}

static kiln_kernel stamp_kernel(kiln_context ctx) {
  static const kiln_param p[] = {{KILN_PARAM_SCALAR, sizeof(void *)}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "stamp";
  d.fn = stamp_kernel_fn;
  d.params = p;
  d.param_count = 1;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

static void build(worker *w) {
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.workers = 4;
  d.name = w->use_future ? "futured" : "run";
  KT_OK(kiln_graph_create(w->ctx, &d, &w->g));
  kiln_graph_node n[NODES];
  for (int l = 0; l < LAYERS; l++)
    for (int i = 0; i < WIDTH; i++) {
      int id = l * WIDTH + i;
      rec *r = &w->recs[id];
      if (l == 1 && i % 2 == 0) { /* device nodes between host layers */
        kiln_arg a = kiln_arg_scalar(&r, sizeof r);
        kiln_range range = kiln_range_1d(1);
        KT_OK(kiln_graph_add_kernel(w->g, NULL, w->stamp, &range, &a, 1, &n[id]));
      } else {
        KT_OK(kiln_graph_add_host(w->g, NULL, host_stamp, r, NULL, 0, &n[id]));
      }
      for (int k = 0; k < 3; k++) {
        static const int step[3] = {0, 1, 3};
        w->pred[id][k] = l ? (l - 1) * WIDTH + (i + step[k]) % WIDTH : -1;
        if (l)
          KT_OK(kiln_graph_precede(w->g, n[w->pred[id][k]], n[id]));
      }
    }
}

static void check_launch(worker *w, int launch) {
  for (int id = 0; id < NODES; id++) {
    unsigned runs = atomic_load(&w->recs[id].runs);
    if (runs != (unsigned)launch + 1u && !w->violations++)
      snprintf(w->first, sizeof w->first, "launch %d: node %d ran %u times", launch, id, runs);
    for (int k = 0; k < 3; k++) {
      int p = w->pred[id][k];
      if (p < 0)
        continue;
      unsigned pe = atomic_load(&w->recs[p].end), s = atomic_load(&w->recs[id].start);
      if (pe >= s && !w->violations++)
        snprintf(w->first, sizeof w->first,
                 "launch %d: node %d started at %u before its predecessor %d ended at %u", launch,
                 id, s, p, pe);
    }
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  for (int launch = 0; launch < LAUNCHES; launch++) {
    kiln_status st;
    if (w->use_future) {
      kiln_future f;
      st = kiln_graph_launch_future(w->g, &f);
      if (st == KILN_SUCCESS)
        st = kiln_future_wait(&f);
    } else {
      st = kiln_graph_run(w->g);
    }
    if (st != KILN_SUCCESS) {
      if (!w->errors++)
        snprintf(w->first, sizeof w->first, "launch %d: %s: %s", launch, kiln_status_name(st),
                 kiln_last_error()->message);
      break;
    }
    check_launch(w, launch);
  }
  return NULL;
}

static void test_dependants_never_start_early(void **state) {
  kt_env *env = *state;
  static worker w[2];
  kiln_kernel stamp = stamp_kernel(env->ctx);
  for (int t = 0; t < 2; t++) {
    memset(&w[t], 0, sizeof w[t]);
    w[t].ctx = env->ctx;
    w[t].stamp = stamp;
    w[t].use_future = t;
    build(&w[t]);
  }
  pthread_t th[2];
  for (int t = 0; t < 2; t++)
    assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
  for (int t = 0; t < 2; t++)
    pthread_join(th[t], NULL);
  for (int t = 0; t < 2; t++) {
    if (w[t].errors || w[t].violations)
      fail_msg("thread %d: %d errors, %d violations; first: %s", t, w[t].errors, w[t].violations,
               w[t].first);
    KT_OK(kiln_graph_destroy(w[t].g));
  }
  KT_OK(kiln_kernel_destroy(stamp));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_dependants_never_start_early, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
