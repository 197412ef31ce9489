/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Fault-injection sweeps on the mock backend, as design.md "Tests" defines them, with
 * two separate counters: the mock's backend calls (kiln_mock_calls: every context,
 * stream, buffer and kernel it creates and every op queued) and kiln's host
 * allocations (the test allocator). A clean run of the scenario counts C calls; then
 * for N = 1..C only the Nth call fails, once, and in a second mode every call from N
 * on fails. Every run must end in the injected status (the scenario returns its first
 * failure, observing results in the order it queued them), with everything destroyed,
 * no host block left (test allocator; LeakSanitizer in the asan tree) and no warning
 * logged (a forgotten token would be one). The scenario covers create, a pinned host
 * block (kiln_host_alloc, read into, kiln_host_free), blocking and async writes, a launch, an event
 * with a cross-stream wait, a cross-stream copy and read ordered by hazards alone, a callback,
 * waits of every kind and destroy; a gate holds stream 1 until everything is queued, so the number
 * of calls is the same in every run. Each sweep asserts C stays above a minimum, so the scenario
 * cannot shrink to nothing. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define ELEMS 256
#define MIN_BACKEND_CALLS                                             \
  17 /* a clean run makes 19: 7 creates, the host block, the internal \
         stream, 10 ops */
#define MIN_ALLOCATIONS 10

typedef struct run_result {
  kiln_status status; /* first failure, or SUCCESS */
  const char *step;   /* where it surfaced */
  int data_ok;
} run_result;

static atomic_int callback_runs;
static void count_cb(kiln_status status, void *user) {
  (void)status;
  (void)user;
  atomic_fetch_add(&callback_runs, 1);
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

/* Record a failure without stopping (results observed after everything is queued). */
#define OBSERVE(name, call)                                  \
  do {                                                       \
    kiln_status st_ = (call);                                \
    if (st_ != KILN_SUCCESS && res.status == KILN_SUCCESS) { \
      res.status = st_;                                      \
      res.step = (name);                                     \
    }                                                        \
  } while (0)

/* Never asserts (it runs under injected failures): returns what happened. */
static run_result run_scenario(kiln_device dev) {
  run_result res = {KILN_SUCCESS, "", 0};
  kiln_context ctx = NULL;
  kiln_stream s1 = NULL, s2 = NULL;
  kiln_event ev = NULL;
  kiln_buffer x = NULL, y = NULL;
  kiln_kernel add = NULL, gate_k = NULL;
  kt_gate gate;
  kt_gate_init(&gate);
  enum { TG, TW, TL, TC, TR, TX, NT };
  kiln_pending t[NT];
  memset(t, 0, sizeof t);
  static uint32_t in[ELEMS], back[ELEMS];
  uint32_t *out = NULL; /* pinned */
  for (uint32_t i = 0; i < ELEMS; i++)
    in[i] = i * 5u;
  memset(back, 0, sizeof back);
  uint64_t off = 0;
  uint32_t inc = 2;
  kiln_arg args[3];
  kiln_range r = kiln_range_1d(ELEMS);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = sizeof in;
  bd.label = "sweep-x";

  /* create: context, 2 streams, 2 buffers, 2 kernels (7 backend calls), an event */
  STEP("kiln_context_create", kiln_context_create(dev, NULL, &ctx));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s1));
  STEP("kiln_stream_create", kiln_stream_create(ctx, NULL, &s2));
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &x));
  bd.label = "sweep-y";
  STEP("kiln_buffer_create", kiln_buffer_create(ctx, &bd, &y));
  kiln_status kst = KILN_SUCCESS;
  add = kt_add_kernel_noassert(ctx, &kst);
  STEP("kiln_kernel_create_native", kst);
  gate_k = kt_gate_kernel_noassert(ctx, &kst);
  STEP("kiln_kernel_create_native", kst);
  STEP("kiln_event_create", kiln_event_create(ctx, NULL, &ev));
  STEP("kiln_host_alloc", kiln_host_alloc(ctx, sizeof in, (void **)&out));
  memset(out, 0, sizeof in);

  /* a blocking write (the context's internal stream: 1 create + 1 op) */
  STEP("kiln_buffer_write", kiln_buffer_write(y, 0, sizeof in, in));
  /* queue everything behind a gate on s1 (ops: gate, write, launch, marker, wait, copy,
   * read, callback, read) */
  STEP("gate launch", kt_gate_launch_async(s1, gate_k, &gate, &t[TG]));
  STEP("kiln_buffer_write_async", kiln_buffer_write_async(s1, x, 0, sizeof in, in, &t[TW]));
  kt_add_args(args, x, &off, &inc);
  STEP("kiln_launch_async", kiln_launch_async(s1, add, &r, args, 3, &t[TL]));
  STEP("kiln_event_record", kiln_event_record(ev, s1));
  STEP("kiln_stream_wait_event", kiln_stream_wait_event(s2, ev));
  STEP("kiln_buffer_copy_async", kiln_buffer_copy_async(s2, y, 0, x, 0, sizeof in, &t[TC]));
  STEP("kiln_buffer_read_async", kiln_buffer_read_async(s2, y, 0, sizeof in, out, &t[TR]));
  STEP("kiln_stream_add_callback", kiln_stream_add_callback(s2, count_cb, NULL));
  /* back on s1, ordered after s2's copy by the hazard on y alone */
  STEP("kiln_buffer_read_async", kiln_buffer_read_async(s1, y, 0, sizeof back, back, &t[TX]));
  kt_gate_open(&gate);

  /* observe, in the order queued */
  OBSERVE("kiln_wait(gate)", kiln_wait(&t[TG]));
  OBSERVE("kiln_wait(write)", kiln_wait(&t[TW]));
  OBSERVE("kiln_wait(launch)", kiln_wait(&t[TL]));
  OBSERVE("kiln_event_synchronize", kiln_event_synchronize(ev));
  OBSERVE("kiln_wait_all(copy, read)", kiln_wait_all(&t[TC], 2));
  OBSERVE("kiln_stream_synchronize(s2)", kiln_stream_synchronize(s2));
  OBSERVE("kiln_wait(read back)", kiln_wait(&t[TX]));
  OBSERVE("kiln_stream_synchronize(s1)", kiln_stream_synchronize(s1));
  if (res.status == KILN_SUCCESS) {
    res.data_ok = 1;
    for (uint32_t i = 0; i < ELEMS; i++)
      if (out[i] != i * 5u + 2u || back[i] != i * 5u + 2u)
        res.data_ok = 0;
  }

cleanup:
  kt_gate_open(&gate);
  for (int i = 0; i < NT; i++)
    if (t[i].id)
      OBSERVE("kiln_wait (cleanup)", kiln_wait(&t[i]));
  OBSERVE("kiln_kernel_destroy", kiln_kernel_destroy(add));
  OBSERVE("kiln_kernel_destroy", kiln_kernel_destroy(gate_k));
  OBSERVE("kiln_buffer_destroy", kiln_buffer_destroy(x));
  OBSERVE("kiln_buffer_destroy", kiln_buffer_destroy(y));
  OBSERVE("kiln_event_destroy", kiln_event_destroy(ev));
  if (out)
    OBSERVE("kiln_host_free", kiln_host_free(ctx, out));
  OBSERVE("kiln_stream_destroy", kiln_stream_destroy(s2));
  OBSERVE("kiln_stream_destroy", kiln_stream_destroy(s1));
  OBSERVE("kiln_context_destroy", kiln_context_destroy(ctx));
  return res;
}

typedef struct run_counts {
  uint64_t backend_calls;
  size_t alloc_calls;
  int hit; /* an injected failure happened */
} run_counts;

static const char *mode_name(kt_sweep_mode m) {
  return m == KT_SWEEP_CLEAN ? "clean" : m == KT_SWEEP_NTH ? "fail-nth" : "fail-from";
}

/* One run of the scenario with the test allocator installed and warnings captured;
 * checks everything that must hold whatever was injected. */
static run_counts run_checked(kiln_device dev, kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n,
                              kiln_status injected) {
  char where[96];
  kt_sweep_label(kind, mode, n, where, sizeof where);
  KT_OK(kt_alloc_install());
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kt_sweep_arm(kind, mode, n, injected);

  run_result res = run_scenario(dev);

  kt_alloc_stats as = kt_alloc_get_stats();
  kt_alloc_fail_none();
  run_counts rc = {kiln_mock_calls(), as.calls, 0};
  uint64_t mock_failures = kiln_mock_failures();
  KT_OK(kiln_mock_configure(NULL));
  kt_log_capture_stop(&cap);
  kiln_status unset = kiln_set_allocator(NULL); /* refused while a context survives */
  if (unset != KILN_SUCCESS)
    fail_msg("%s: a context survived the run (kiln_set_allocator(NULL): %s: %s)", where,
             kiln_status_name(unset), kiln_last_error()->message);
  if (!kt_alloc_check_clean(where))
    fail_msg("%s: host blocks leaked or freed wrongly", where);
  if (cap.warn_lines)
    fail_msg("%s: %d warning(s) logged (a forgotten token?):\n%s", where, cap.warn_lines, cap.text);

  rc.hit = kind == KT_SWEEP_BACKEND ? mock_failures > 0 : as.failures > 0;
  if (kind == KT_SWEEP_BACKEND && mode == KT_SWEEP_NTH && mock_failures > 1)
    fail_msg("%s: %llu injected failures, expected one", where, (unsigned long long)mock_failures);
  if (!rc.hit) {
    if (res.status != KILN_SUCCESS)
      fail_msg("%s: nothing was injected, yet %s returned %s (%s)", where, res.step,
               kiln_status_name(res.status), kiln_last_error()->message);
    if (!res.data_ok)
      fail_msg("%s: a run without failures read wrong data", where);
    return rc;
  }
  int ok;
  if (kind == KT_SWEEP_BACKEND)
    ok = res.status == injected;
  else
    ok = res.status == KILN_ERROR_OUT_OF_HOST_MEMORY ||
         (res.status == KILN_ERROR_OUT_OF_DEVICE_MEMORY &&
          strcmp(res.step, "kiln_buffer_create") == 0);
  if (!ok)
    fail_msg("%s: expected the run to end in %s, got %s from %s", where,
             kind == KT_SWEEP_BACKEND ? kiln_status_name(injected)
                                      : "KILN_ERROR_OUT_OF_HOST_MEMORY",
             kiln_status_name(res.status),
             res.status == KILN_SUCCESS ? "(every step: the failure was swallowed)" : res.step);
  return rc;
}

static void backend_calls_clean_run_is_deterministic(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  atomic_store(&callback_runs, 0);
  run_counts a = run_checked(dev, KT_SWEEP_BACKEND, KT_SWEEP_CLEAN, 0, KILN_ERROR_BACKEND);
  run_counts b = run_checked(dev, KT_SWEEP_BACKEND, KT_SWEEP_CLEAN, 0, KILN_ERROR_BACKEND);
  fprintf(stderr, "clean run: %llu backend calls, %zu host allocations\n",
          (unsigned long long)a.backend_calls, a.alloc_calls);
  assert_true(a.backend_calls >= MIN_BACKEND_CALLS);
  assert_int_equal(a.backend_calls, b.backend_calls);
  assert_int_equal(atomic_load(&callback_runs), 2);
}

static void sweep_backend(kiln_device dev, kt_sweep_mode mode, kiln_status injected) {
  uint64_t c = run_checked(dev, KT_SWEEP_BACKEND, KT_SWEEP_CLEAN, 0, injected).backend_calls;
  if (c < MIN_BACKEND_CALLS)
    fail_msg("the scenario made %llu backend calls, expected at least %d", (unsigned long long)c,
             MIN_BACKEND_CALLS);
  for (uint64_t n = 1; n <= c; n++) {
    run_counts rc = run_checked(dev, KT_SWEEP_BACKEND, mode, n, injected);
    /* the count is deterministic, so every N <= C is reached */
    if (!rc.hit)
      fail_msg("%s N=%llu: the injected failure was never reached (run made %llu calls)",
               mode_name(mode), (unsigned long long)n, (unsigned long long)rc.backend_calls);
  }
  fprintf(stderr, "%s: %llu backend calls, every run ended in %s\n", mode_name(mode),
          (unsigned long long)c, kiln_status_name(injected));
}

static void backend_fail_nth_every_n(void **state) {
  (void)state;
  sweep_backend(kt_mock_device(), KT_SWEEP_NTH, KILN_ERROR_BACKEND);
}

static void backend_fail_from_n_on(void **state) {
  (void)state;
  sweep_backend(kt_mock_device(), KT_SWEEP_FROM, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
}

static void sweep_alloc(kiln_device dev, kt_sweep_mode mode) {
  size_t c = run_checked(dev, KT_SWEEP_ALLOC, KT_SWEEP_CLEAN, 0, KILN_ERROR_BACKEND).alloc_calls;
  if (c < MIN_ALLOCATIONS)
    fail_msg("the scenario made %zu host allocations, expected at least %d (is the test "
             "allocator in use?)",
             c, MIN_ALLOCATIONS);
  size_t hit = 0;
  for (size_t n = 1; n <= c; n++)
    if (run_checked(dev, KT_SWEEP_ALLOC, mode, n, KILN_ERROR_BACKEND).hit)
      hit++;
  fprintf(stderr, "%s: %zu host allocations; %zu runs hit their failure and ended cleanly\n",
          mode_name(mode), c, hit);
  /* worker threads may allocate a little more or less from run to run, not the bulk */
  assert_true(hit * 2 >= c);
}

static void alloc_fail_nth_every_n(void **state) {
  (void)state;
  sweep_alloc(kt_mock_device(), KT_SWEEP_NTH);
}

static void alloc_fail_from_n_on(void **state) {
  (void)state;
  sweep_alloc(kt_mock_device(), KT_SWEEP_FROM);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(backend_calls_clean_run_is_deterministic),
      cmocka_unit_test(backend_fail_nth_every_n),
      cmocka_unit_test(backend_fail_from_n_on),
      cmocka_unit_test(alloc_fail_nth_every_n),
      cmocka_unit_test(alloc_fail_from_n_on),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1 must be set)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
