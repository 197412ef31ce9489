/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* Host-allocation fault injection over every N (design.md "Tests"): a clean run of a
 * create / write / launch / copy / read / event / callback / destroy scenario counts
 * its C allocation calls; then for N = 1..C the Nth call fails once, and in a second
 * sweep every call from N on fails. Each run must end in SUCCESS when no injected
 * failure was hit, else in the out-of-memory status (returned cleanly by the step
 * that hit it, or by the wait that observed it), with every object destroyed, every
 * block freed with its own size and alignment, and no token warning logged. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define MIN_CLEAN_ALLOCATIONS 6
#define N_ELEMS 256

typedef struct run_result {
  kiln_status status; /* first failure, or SUCCESS */
  const char *step;   /* where it surfaced */
  int data_ok;        /* the final read matched (only meaningful on SUCCESS) */
} run_result;

static atomic_int callback_runs;
static size_t runs_failed; /* runs in which an injected failure was hit */
static atomic_int warn_lines;
static char last_warning[512];
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;

static void count_cb(kiln_status status, void *user) {
  (void)status;
  (void)user;
  atomic_fetch_add(&callback_runs, 1);
}

static void warn_log(kiln_log_level level, const char *message, void *user) {
  (void)user;
  if (level > KILN_LOG_WARN)
    return;
  atomic_fetch_add(&warn_lines, 1);
  pthread_mutex_lock(&warn_lock);
  snprintf(last_warning, sizeof last_warning, "%s", message);
  pthread_mutex_unlock(&warn_lock);
}

#define STEP(name, call)                                     \
  do {                                                       \
    kiln_status st_ = (call);                                \
    if (st_ != KILN_SUCCESS && res.status == KILN_SUCCESS) { \
      res.status = st_;                                      \
      res.step = (name);                                     \
    }                                                        \
    if (st_ != KILN_SUCCESS)                                 \
      goto cleanup;                                          \
  } while (0)

/* Never asserts: returns what happened, so the sweep can say which N broke. */
static run_result run_scenario(kiln_device dev) {
  run_result res = {KILN_SUCCESS, "", 0};
  kiln_context ctx = NULL;
  kiln_stream s1 = NULL, s2 = NULL;
  kiln_event ev = NULL;
  kiln_buffer a = NULL, b = NULL;
  kiln_kernel k = NULL;
  kiln_pending t[4] = {KILN_PENDING_INIT, KILN_PENDING_INIT, KILN_PENDING_INIT, KILN_PENDING_INIT};
  static uint32_t in[N_ELEMS], out[N_ELEMS];
  for (uint32_t i = 0; i < N_ELEMS; i++)
    in[i] = i * 7u;
  memset(out, 0, sizeof out);
  uint64_t off = 0;
  uint32_t add = 3;
  kiln_arg args[3];
  kiln_range r = kiln_range_1d(N_ELEMS);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = sizeof in;
  bd.label = "fault-a";
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;

  STEP("kiln_context_create", kiln_context_create(dev, NULL, &ctx));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s1));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s2));
  STEP("kiln_event_create", kiln_event_create(ctx, &ed, &ev));
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &a));
  bd.label = NULL;
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &b));
  k = kt_add_kernel_noassert(ctx, &res.status);
  if (!k) {
    res.step = "kiln_kernel_create_native";
    goto cleanup;
  }
  STEP("kiln_buffer_write", kiln_buffer_write(a, 0, sizeof in, in));
  STEP("kiln_buffer_write_async", kiln_buffer_write_async(s1, a, 0, sizeof in, in, &t[0]));
  kt_add_args(args, a, &off, &add);
  STEP("kiln_launch_async", kiln_launch_async(s1, k, &r, args, 3, &t[1]));
  STEP("kiln_event_record", kiln_event_record(ev, s1));
  STEP("kiln_stream_wait_event", kiln_stream_wait_event(s2, ev));
  STEP("kiln_buffer_copy_async", kiln_buffer_copy_async(s2, b, 0, a, 0, sizeof in, &t[2]));
  STEP("kiln_buffer_read_async", kiln_buffer_read_async(s2, b, 0, sizeof out, out, &t[3]));
  STEP("kiln_stream_add_callback", kiln_stream_add_callback(s2, count_cb, NULL));
  STEP("kiln_wait_all", kiln_wait_all(t, 4));
  STEP("kiln_event_synchronize", kiln_event_synchronize(ev));
  STEP("kiln_stream_synchronize", kiln_stream_synchronize(s2));
  res.data_ok = 1;
  for (uint32_t i = 0; i < N_ELEMS; i++)
    if (out[i] != i * 7u + 3u)
      res.data_ok = 0;
  uint32_t zero = 0;
  STEP("kiln_buffer_fill", kiln_buffer_fill(b, 0, sizeof in, &zero, 4));

cleanup:
  /* tokens still held after a failure: wait them (they end in their own status) */
  for (int i = 0; i < 4; i++)
    if (t[i].id) {
      kiln_status st = kiln_wait(&t[i]);
      if (st != KILN_SUCCESS && res.status == KILN_SUCCESS) {
        res.status = st;
        res.step = "kiln_wait (cleanup)";
      }
    }
  const struct {
    const char *name;
    kiln_status st;
  } destroys[] = {
      {"kiln_kernel_destroy", kiln_kernel_destroy(k)},
      {"kiln_buffer_destroy", kiln_buffer_destroy(b)},
      {"kiln_buffer_destroy", kiln_buffer_destroy(a)},
      {"kiln_event_destroy", kiln_event_destroy(ev)},
      {"kiln_stream_destroy", kiln_stream_destroy(s2)},
      {"kiln_stream_destroy", kiln_stream_destroy(s1)},
      {"kiln_context_destroy", kiln_context_destroy(ctx)},
  };
  for (size_t i = 0; i < sizeof destroys / sizeof destroys[0]; i++)
    if (destroys[i].st != KILN_SUCCESS && res.status == KILN_SUCCESS) {
      res.status = destroys[i].st;
      res.step = destroys[i].name;
    }
  return res;
}

/* Run once under the test allocator in `mode`; checks everything; returns the number
 * of allocation calls the run made. */
static size_t run_checked(kiln_device dev, kt_alloc_mode mode, size_t n, const char *sweep) {
  KT_OK(kt_alloc_install());
  atomic_store(&warn_lines, 0);
  kiln_set_log_callback(warn_log, KILN_LOG_WARN, NULL);
  kt_alloc_set_mode(mode, n);
  run_result res = run_scenario(dev);
  kt_alloc_stats stats = kt_alloc_get_stats();
  kt_alloc_fail_none();
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  kiln_status unset = kiln_set_allocator(NULL); /* refused if a context survived */

  char where[96];
  snprintf(where, sizeof where, "%s N=%zu", sweep, n);
  if (unset != KILN_SUCCESS)
    fail_msg("%s: kiln_set_allocator(NULL) after the run returned %s: a context survived (%s)",
             where, kiln_status_name(unset), kiln_last_error()->message);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: leak or bad free (see above)", where);
  if (stats.failures == 0) {
    if (res.status != KILN_SUCCESS)
      fail_msg("%s: no allocation was failed, yet %s returned %s", where, res.step,
               kiln_status_name(res.status));
    if (!res.data_ok)
      fail_msg("%s: clean run read wrong data", where);
  } else {
    int ok = res.status == KILN_ERROR_OUT_OF_HOST_MEMORY ||
             (res.status == KILN_ERROR_OUT_OF_DEVICE_MEMORY &&
              strcmp(res.step, "kiln_buffer_create") == 0);
    if (!ok)
      fail_msg("%s: %zu allocation(s) failed; expected the run to end in "
               "KILN_ERROR_OUT_OF_HOST_MEMORY, got %s from %s",
               where, stats.failures, kiln_status_name(res.status),
               res.status == KILN_SUCCESS ? "(every step: the failure was swallowed)" : res.step);
  }
  if (atomic_load(&warn_lines) != 0)
    fail_msg("%s: %d warning(s) logged, last: %s", where, atomic_load(&warn_lines), last_warning);
  if (stats.failures)
    runs_failed++;
  return stats.calls;
}

static void alloc_fail_nth_every_n(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  size_t c = run_checked(dev, KT_ALLOC_NEVER_FAIL, 0, "clean");
  if (c < MIN_CLEAN_ALLOCATIONS)
    fail_msg("the scenario made only %zu allocation calls (expected >= %d): is the test "
             "allocator in use?",
             c, MIN_CLEAN_ALLOCATIONS);
  runs_failed = 0;
  for (size_t n = 1; n <= c; n++)
    run_checked(dev, KT_ALLOC_FAIL_NTH, n, "fail-nth");
  fprintf(stderr,
          "fail-nth: clean run made %zu allocation calls; %zu of %zu runs hit their "
          "injected failure and ended in out-of-memory cleanly\n",
          c, runs_failed, c);
  /* the allocation count of a run may vary a little (worker threads), not the bulk */
  assert_true(runs_failed * 2 >= c);
}

static void alloc_fail_from_n_on(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  size_t c = run_checked(dev, KT_ALLOC_NEVER_FAIL, 0, "clean");
  assert_true(c >= MIN_CLEAN_ALLOCATIONS);
  runs_failed = 0;
  for (size_t n = 1; n <= c; n++)
    run_checked(dev, KT_ALLOC_FAIL_FROM, n, "fail-from");
  fprintf(stderr, "fail-from: %zu allocation calls; %zu of %zu runs hit a failure\n", c,
          runs_failed, c);
  assert_true(runs_failed * 2 >= c);
}

static void alloc_clean_runs_repeat(void **state) {
  (void)state;
  /* the scenario itself is sound and leak-free, run after run */
  kiln_device dev = kt_cpu_device();
  for (int i = 0; i < 5; i++)
    run_checked(dev, KT_ALLOC_NEVER_FAIL, 0, "clean-repeat");
  assert_true(atomic_load(&callback_runs) >= 1);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(alloc_clean_runs_repeat),
      cmocka_unit_test(alloc_fail_nth_every_n),
      cmocka_unit_test(alloc_fail_from_n_on),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
