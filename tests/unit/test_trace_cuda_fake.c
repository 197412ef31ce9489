/* SPDX-License-Identifier: MIT */
/* Device time in the trace on the CUDA backend, over the fake libcuda
 * (tests/cuda/fake_libcuda.c, whose elapsed times are the host times at which its
 * stream workers pass each record): while a trace records, every op is bracketed by
 * two timed events and gets a device span between its submission and its observed
 * end, never overlapping its stream's other device spans; a failing cuEventCreate,
 * cuEventRecord or cuEventElapsedTime turns device time off for that stream with one
 * warning, leaving observed spans, a valid trace and no live CUDA object; timing
 * events keep their times when their end event becomes the stream's reference. Kernels run
 * emulated (KILN_FAKE_CUDA_LAUNCH=emulate, set with KILN_CUDA_LIBRARY by
 * tests/cuda.cmake). Each test is its own process.
 * kiln-test-labels: cuda-nogpu unit
 * kiln-test-env: KILN_TEST_BACKEND=cuda
 * kiln-test-link: static */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>

#include "../trace/device_spans.h"
#include "../cuda/fake_libcuda.h"

long kiln__cu_live_total(void);

static char trace_file[256];

static void *fake_sym(const char *name) {
  void *lib = dlopen(getenv("KILN_CUDA_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(lib);
  void *p = dlsym(lib, name);
  assert_non_null(p);
  dlclose(lib);
  return p;
}

static const char *fault_entry;
static long fault_nth;

static void arm_fault(void) {
  kiln_fake_cuda_fail_fn arm;
  *(void **)&arm = fake_sym("kiln_fake_cuda_fail");
  arm(fault_entry, fault_nth, 999);
}

/* Record the workload (kernels, or copies when kernel is 0) with `entry`'s nth call
 * failing, counted from when its streams exist (entry NULL: no fault). */
static void record(int kernel, const char *entry, long nth, ds_result *res, unsigned *ops,
                   kt_log_capture *cap) {
  snprintf(trace_file, sizeof trace_file, "/tmp/kiln_test_trace_cuda_%d.json", (int)getpid());
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_CUDA, 0, &dev));
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_kernel k = NULL;
  if (kernel)
    KT_OK(kt_kernel(ctx, "kt_add_u32", &k));
  kt_log_capture_start(cap, KILN_LOG_WARN);
  fault_entry = entry;
  fault_nth = nth;
  KT_OK(kiln_trace_start(NULL));
  *ops = ds_workload(ctx, k, 2, 4, entry ? arm_fault : NULL);
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  kt_log_capture_stop(cap);
  kiln_kernel_destroy(k);
  kiln_context_destroy(ctx);
  assert_int_equal(kiln__cu_live_total(), 0); /* every event given back and destroyed */
  /* Slack beyond each span's own anchor_error_us: the observed times' conversion
   * from TSC ticks and the file's rounding (a microsecond or two). */
  ds_check(trace_file, 10.0, res);
  assert_int_equal(res->ops, (int)*ops);
  assert_int_equal(res->run_timed, 0);
  unlink(trace_file);
}

static void ops_get_device_spans(void **state) {
  (void)state;
  ds_result res;
  unsigned ops = 0;
  kt_log_capture cap;
  record(1, NULL, 0, &res, &ops, &cap);
  assert_int_equal(res.device, (int)ops);
  assert_int_equal(kt_log_capture_warnings(&cap), 0);
}

/* A fault: fewer device spans (none on the failing stream after it), one warning. */
static void fault_falls_back(const char *entry, long nth, const char *says) {
  ds_result res;
  unsigned ops = 0;
  kt_log_capture cap;
  record(0, entry, nth, &res, &ops, &cap);
  assert_true(res.device < res.ops);
  assert_int_equal(kt_log_capture_warnings(&cap), 1);
  if (!kt_log_capture_has(&cap, says) || !kt_log_capture_has(&cap, "keep observed spans"))
    fail_msg("no warning naming %s: %s", says, cap.text);
}

static void event_create_failure_falls_back(void **state) {
  (void)state;
  fault_falls_back("cuEventCreate", 1, "cuEventCreate failed");
}

static void event_record_failure_falls_back(void **state) {
  (void)state;
  fault_falls_back("cuEventRecord", 1, "cuEventRecord failed");
}

static void elapsed_time_failure_falls_back(void **state) {
  (void)state;
  fault_falls_back("cuEventElapsedTime", 2, "cuEventElapsedTime failed");
}

/* Timing events while a trace records: their markers get device spans too, and an
 * end event that becomes the stream's reference (over 100 ms from it) still gives its
 * marker the right time: elapsed between two events 150 ms apart reads ~150 ms. */
static void timing_events_keep_their_time(void **state) {
  (void)state;
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_CUDA, 0, &dev));
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_stream s;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;
  kiln_event e1, e2;
  KT_OK(kiln_event_create(ctx, &ed, &e1));
  KT_OK(kiln_event_create(ctx, &ed, &e2));
  snprintf(trace_file, sizeof trace_file, "/tmp/kiln_test_trace_cudaev_%d.json", (int)getpid());
  KT_OK(kiln_trace_start(NULL));
  KT_OK(kiln_event_record(e1, s));
  KT_OK(kiln_event_synchronize(e1));
  kt_sleep_us(150000);
  KT_OK(kiln_event_record(e2, s));
  KT_OK(kiln_event_synchronize(e2));
  uint64_t ns = 0;
  KT_OK(kiln_event_elapsed_ns(e1, e2, &ns));
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  /* The host slept 150 ms between the records; the fake passes each at once. */
  if (ns < 140000000u || ns > 400000000u)
    fail_msg("elapsed between the timing events: %llu ns, expected ~150 ms",
             (unsigned long long)ns);
  kiln_event_destroy(e1);
  kiln_event_destroy(e2);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  assert_int_equal(kiln__cu_live_total(), 0);
  ds_result res;
  ds_check(trace_file, 10.0, &res);
  assert_int_equal(res.ops, 2);
  assert_int_equal(res.device, 2);
  unlink(trace_file);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ops_get_device_spans),
      cmocka_unit_test(event_create_failure_falls_back),
      cmocka_unit_test(event_record_failure_falls_back),
      cmocka_unit_test(elapsed_time_failure_falls_back),
      cmocka_unit_test(timing_events_keep_their_time),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  if (!getenv("KILN_CUDA_LIBRARY") || !kt_backend_available(KILN_BACKEND_CUDA))
    return 77;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
