/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=11 */
/* Task graphs launched concurrently (run under TSan by make check): 4 threads, each
 * with its own graph in one shared context — upload, two kernel branches on different
 * streams, a host node that checks and counts, a join, a download — launched 150
 * times each (async launch + wait, and kiln_graph_run, alternately) with new inputs;
 * while a fifth thread reads every graph's node count, edge count and DOT text and
 * queries it. Every value read back is checked; workers never assert. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define THREADS 4
#define LAUNCHES 150
#define WORDS 64

typedef struct worker {
  kiln_context ctx;
  kiln_kernel add;
  kiln_graph g;
  kiln_buffer x, y, z;
  uint32_t in[WORDS], out[WORDS];
  uint64_t off;
  uint32_t one, two;
  atomic_int host_runs;
  atomic_int errors;
  atomic_int built;
  unsigned seed;
} worker;

static atomic_int stop_reader;

static kiln_status host_check(void *user) {
  worker *w = user;
  atomic_fetch_add(&w->host_runs, 1);
  return KILN_SUCCESS;
}

static kiln_status build(worker *w) {
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.max_streams = 3;
  kiln_status st = kiln_graph_create(w->ctx, &d, &w->g);
  if (st != KILN_SUCCESS)
    return st;
  w->one = 1;
  w->two = 2;
  kiln_arg a1[3], a2[3];
  kt_add_args(a1, w->y, &w->off, &w->one);
  kt_add_args(a2, w->z, &w->off, &w->two);
  kiln_range r = kiln_range_1d(WORDS);
  kiln_graph_node up, cy, cz, ky, kz, h, j, ry, rz; /* 9 nodes */
  if ((st = kiln_graph_add_write(w->g, "up", w->x, 0, sizeof w->in, w->in, &up)) ||
      (st = kiln_graph_add_copy(w->g, "cy", w->y, 0, w->x, 0, sizeof w->in, &cy)) ||
      (st = kiln_graph_add_copy(w->g, "cz", w->z, 0, w->x, 0, sizeof w->in, &cz)) ||
      (st = kiln_graph_add_kernel(w->g, "ky", w->add, &r, a1, 3, &ky)) ||
      (st = kiln_graph_add_kernel(w->g, "kz", w->add, &r, a2, 3, &kz)) ||
      (st = kiln_graph_add_empty(w->g, "join", &j)) || (st = kiln_graph_precede(w->g, ky, j)) ||
      (st = kiln_graph_precede(w->g, kz, j)) ||
      (st = kiln_graph_add_host(w->g, "host", host_check, w, NULL, 0, &h)) ||
      (st = kiln_graph_precede(w->g, j, h)) ||
      (st = kiln_graph_add_copy(w->g, "yz", w->x, 0, w->y, 0, sizeof w->in, &ry)) ||
      (st = kiln_graph_add_read(w->g, "down", w->x, 0, sizeof w->out, w->out, &rz)) ||
      (st = kiln_graph_precede(w->g, h, ry)))
    return st;
  return KILN_SUCCESS;
}

static void *work(void *arg) {
  worker *w = arg;
  if (build(w) != KILN_SUCCESS) {
    atomic_fetch_add(&w->errors, 1);
    atomic_store(&w->built, -1);
    return NULL;
  }
  atomic_store(&w->built, 1);
  for (uint32_t it = 0; it < LAUNCHES; it++) {
    for (uint32_t i = 0; i < WORDS; i++)
      w->in[i] = it * 131u + i + w->seed;
    kiln_status st;
    if (it % 2) {
      st = kiln_graph_run(w->g);
    } else {
      st = kiln_graph_launch(w->g);
      if (st == KILN_SUCCESS)
        st = kiln_graph_wait(w->g);
    }
    if (st != KILN_SUCCESS) {
      fprintf(stderr, "launch %u: %s: %s\n", it, kiln_status_name(st), kiln_last_error()->message);
      atomic_fetch_add(&w->errors, 1);
      continue;
    }
    for (uint32_t i = 0; i < WORDS; i++)
      if (w->out[i] != it * 131u + i + w->seed + 1)
        atomic_fetch_add(&w->errors, 1);
  }
  return NULL;
}

static void *reader(void *arg) {
  worker *ws = arg;
  char dot[8192];
  while (!atomic_load(&stop_reader))
    for (int i = 0; i < THREADS; i++) {
      if (atomic_load(&ws[i].built) != 1)
        continue;
      size_t n, e;
      if (kiln_graph_node_count(ws[i].g, &n) != KILN_SUCCESS || n != 9 ||
          kiln_graph_edge_count(ws[i].g, &e) != KILN_SUCCESS ||
          kiln_graph_dump_dot(ws[i].g, dot, sizeof dot, NULL) != KILN_SUCCESS)
        atomic_fetch_add(&ws[i].errors, 1);
      kiln_status q = kiln_graph_query(ws[i].g);
      if (q != KILN_SUCCESS && q != KILN_NOT_READY)
        atomic_fetch_add(&ws[i].errors, 1);
    }
  return NULL;
}

static void test_concurrent_launches(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  static worker ws[THREADS];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < THREADS; i++) {
    ws[i].ctx = env->ctx;
    ws[i].add = add;
    ws[i].seed = (unsigned)i * 100000u;
    ws[i].x = kt_buffer(env->ctx, WORDS * 4);
    ws[i].y = kt_buffer(env->ctx, WORDS * 4);
    ws[i].z = kt_buffer(env->ctx, WORDS * 4);
  }
  atomic_store(&stop_reader, 0);
  pthread_t t[THREADS], r;
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, work, &ws[i]), 0);
  assert_int_equal(pthread_create(&r, NULL, reader, ws), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  atomic_store(&stop_reader, 1);
  pthread_join(r, NULL);
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(atomic_load(&ws[i].errors), 0);
    assert_int_equal(atomic_load(&ws[i].host_runs), LAUNCHES);
    KT_OK(kiln_graph_destroy(ws[i].g));
    KT_OK(kiln_buffer_destroy(ws[i].x));
    KT_OK(kiln_buffer_destroy(ws[i].y));
    KT_OK(kiln_buffer_destroy(ws[i].z));
  }
  KT_OK(kiln_kernel_destroy(add));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_concurrent_launches, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
