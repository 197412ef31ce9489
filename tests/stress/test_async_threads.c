/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* Async integration under 8 threads (run under TSan by make check; issue #19):
 * - descriptors: every thread polls its own stream's and event's descriptor around
 *   its own work, and all threads record, poll and query one shared event and make
 *   one shared stream's descriptor at once (one descriptor, made once);
 * - callbacks on tokens and events and future chains registered from every thread at
 *   once, racing the completions they follow: each runs exactly once;
 * - when_all and when_any over ops of three streams each (three workers completing
 *   them at once), some through a continuation, from every thread.
 * KILN_STRESS_OPS (default 150) scales the rounds per thread. Workers never assert:
 * they count errors the test checks. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define THREADS 8

static int rounds(void) {
  const char *v = getenv("KILN_STRESS_OPS");
  int n = v && *v ? atoi(v) : 150;
  return n > 0 ? n : 150;
}

static int fd_readable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  return rc == 1 && (p.revents & POLLIN);
}

typedef struct shared {
  kiln_context ctx;
  kiln_stream common;
  kiln_event common_event;
  atomic_int errors;
  atomic_int common_fd; /* the shared stream's descriptor as each thread saw it */
  atomic_int fd_mismatch;
  atomic_int callbacks_expected, callbacks_run;
} shared;

typedef struct worker {
  shared *sh;
  int index;
} worker;

static void count_cb(kiln_status status, void *user) {
  shared *sh = user;
  if (status != KILN_SUCCESS)
    atomic_fetch_add(&sh->errors, 1);
  atomic_fetch_add(&sh->callbacks_run, 1);
}

static kiln_status count_link(kiln_status status, void *user) {
  count_cb(status, user);
  return status;
}

#define ERR(cond)                       \
  do {                                  \
    if (!(cond))                        \
      atomic_fetch_add(&sh->errors, 1); \
  } while (0)

static void *descriptor_worker(void *arg) {
  worker *w = arg;
  shared *sh = w->sh;
  kiln_stream s = NULL;
  kiln_event ev = NULL;
  kiln_buffer b = NULL;
  int sfd = -1, efd = -1, cfd = -1;
  ERR(kiln_stream_create(sh->ctx, NULL, &s) == KILN_SUCCESS);
  ERR(kiln_event_create(sh->ctx, NULL, &ev) == KILN_SUCCESS);
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 256;
  ERR(kiln_buffer_create(sh->ctx, &d, &b) == KILN_SUCCESS);
  ERR(kiln_stream_fd(s, &sfd) == KILN_SUCCESS);
  ERR(kiln_event_fd(ev, &efd) == KILN_SUCCESS);
  ERR(kiln_stream_fd(sh->common, &cfd) == KILN_SUCCESS);
  int expected = -1;
  if (!atomic_compare_exchange_strong(&sh->common_fd, &expected, cfd) && expected != cfd)
    atomic_fetch_add(&sh->fd_mismatch, 1);
  uint64_t host[32], still[8]; /* `still` is never written while a dropped write reads it */
  for (int k = 0; k < 8; k++)
    still[k] = (uint64_t)k;
  int efd_common = -1;
  ERR(kiln_event_fd(sh->common_event, &efd_common) == KILN_SUCCESS);
  int n = rounds();
  for (int i = 0; i < n && !atomic_load(&sh->errors); i++) {
    for (int k = 0; k < 32; k++)
      host[k] = (uint64_t)(w->index * 1000 + i + k);
    ERR(kiln_buffer_write_async(s, b, 0, sizeof host, host, KILN_NO_TOKEN) == KILN_SUCCESS);
    ERR(kiln_event_record(ev, s) == KILN_SUCCESS);
    ERR(fd_readable(efd, 30000)); /* the event completes */
    ERR(kiln_event_query(ev) == KILN_SUCCESS);
    ERR(fd_readable(sfd, 30000));                    /* and the stream is idle */
    ERR(kiln_stream_synchronize(s) == KILN_SUCCESS); /* observes the no-token write */
    uint64_t back[32];
    ERR(kiln_buffer_read(b, 0, sizeof back, back) == KILN_SUCCESS);
    ERR(memcmp(back, host, sizeof back) == 0);
    /* the shared event: recorded and polled by every thread */
    kiln_pending t;
    ERR(kiln_buffer_fill_async(sh->common, b, 0, 8, host, 8, &t) == KILN_SUCCESS);
    ERR(kiln_event_record(sh->common_event, sh->common) == KILN_SUCCESS);
    (void)fd_readable(efd_common, 0); /* its state moves under us: only no races */
    (void)kiln_event_query(sh->common_event);
    /* a callback on the token, and a callback on the event, registered while running */
    atomic_fetch_add(&sh->callbacks_expected, 2);
    ERR(kiln_pending_add_callback(&t, count_cb, sh) == KILN_SUCCESS);
    ERR(kiln_event_add_callback(sh->common_event, count_cb, sh) == KILN_SUCCESS);
    /* a future chain */
    kiln_pending t2;
    kiln_future f, g;
    ERR(kiln_buffer_write_async(s, b, 64, 64, still, &t2) == KILN_SUCCESS);
    ERR(kiln_future_from_pending(&t2, &f) == KILN_SUCCESS);
    atomic_fetch_add(&sh->callbacks_expected, 1);
    ERR(kiln_future_then(&f, count_link, sh, &g) == KILN_SUCCESS);
    if (i % 2)
      ERR(kiln_future_wait(&g) == KILN_SUCCESS);
    else
      ERR(kiln_future_drop(&g) == KILN_SUCCESS);
  }
  ERR(kiln_stream_synchronize(s) == KILN_SUCCESS);
  ERR(kiln_buffer_destroy(b) == KILN_SUCCESS);
  ERR(kiln_event_destroy(ev) == KILN_SUCCESS);
  ERR(kiln_stream_destroy(s) == KILN_SUCCESS);
  return NULL;
}

static void descriptors_callbacks_futures_under_threads(void **state) {
  kt_env *env = *state;
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.ctx = env->ctx;
  atomic_init(&sh.errors, 0);
  atomic_init(&sh.common_fd, -1);
  atomic_init(&sh.fd_mismatch, 0);
  atomic_init(&sh.callbacks_expected, 0);
  atomic_init(&sh.callbacks_run, 0);
  KT_OK(kiln_stream_create(env->ctx, NULL, &sh.common));
  KT_OK(kiln_event_create(env->ctx, NULL, &sh.common_event));
  pthread_t th[THREADS];
  worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i].sh = &sh;
    w[i].index = i;
    assert_int_equal(pthread_create(&th[i], NULL, descriptor_worker, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  KT_OK(kiln_context_synchronize(env->ctx)); /* every callback has run */
  assert_int_equal(atomic_load(&sh.errors), 0);
  assert_int_equal(atomic_load(&sh.fd_mismatch), 0);
  assert_int_equal(atomic_load(&sh.callbacks_run), atomic_load(&sh.callbacks_expected));
  int fd;
  KT_OK(kiln_stream_fd(sh.common, &fd));
  assert_int_equal(fd, atomic_load(&sh.common_fd));
  assert_true(fd_readable(fd, 30000)); /* idle */
  KT_OK(kiln_event_destroy(sh.common_event));
  KT_OK(kiln_stream_destroy(sh.common));
}

/* ---- when_all / when_any whose inputs complete on different workers at once ---- */

typedef struct combo_worker {
  kiln_context ctx;
  atomic_int *errors;
} combo_worker;

static kiln_status combo_link(kiln_status status, void *user) {
  (void)user;
  return status;
}

static void *combo_main(void *arg) {
  combo_worker *w = arg;
  atomic_int *errors = w->errors;
  kiln_stream s[3] = {NULL, NULL, NULL};
  kiln_buffer b[3] = {NULL, NULL, NULL};
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 64;
  for (int k = 0; k < 3; k++)
    if (kiln_stream_create(w->ctx, NULL, &s[k]) != KILN_SUCCESS ||
        kiln_buffer_create(w->ctx, &d, &b[k]) != KILN_SUCCESS)
      atomic_fetch_add(errors, 1);
  static const uint32_t pattern = 7;
  int n = rounds();
  for (int i = 0; i < n && !atomic_load(errors); i++) {
    kiln_future in[3], out;
    for (int k = 0; k < 3; k++) { /* three streams: three workers complete them */
      kiln_pending t;
      if (kiln_buffer_fill_async(s[k], b[k], 0, 64, &pattern, 4, &t) != KILN_SUCCESS ||
          kiln_future_from_pending(&t, &in[k]) != KILN_SUCCESS)
        atomic_fetch_add(errors, 1);
    }
    if (i % 3 == 2 && kiln_future_then(&in[2], combo_link, NULL, &in[2]) != KILN_SUCCESS)
      atomic_fetch_add(errors, 1);
    kiln_status st = i % 2 ? kiln_future_when_any(in, 3, &out) : kiln_future_when_all(in, 3, &out);
    if (st != KILN_SUCCESS || kiln_future_wait(&out) != KILN_SUCCESS)
      atomic_fetch_add(errors, 1);
  }
  for (int k = 0; k < 3; k++) {
    if (s[k] && kiln_stream_synchronize(s[k]) != KILN_SUCCESS)
      atomic_fetch_add(errors, 1);
    (void)kiln_buffer_destroy(b[k]);
    (void)kiln_stream_destroy(s[k]);
  }
  return NULL;
}

static void when_all_when_any_race_completions(void **state) {
  kt_env *env = *state;
  atomic_int errors;
  atomic_init(&errors, 0);
  pthread_t th[THREADS];
  combo_worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i].ctx = env->ctx;
    w[i].errors = &errors;
    assert_int_equal(pthread_create(&th[i], NULL, combo_main, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  KT_OK(kiln_context_synchronize(env->ctx));
  assert_int_equal(atomic_load(&errors), 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(descriptors_callbacks_futures_under_threads, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(when_all_when_any_race_completions, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
