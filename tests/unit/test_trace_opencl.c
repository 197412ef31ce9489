/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: opencl unit */
/* kiln-test-env: KILN_TEST_BACKEND=opencl */
/* Device time in the trace on OpenCL (PoCL here; docs/observability.md, "Device
 * time"): while a trace records, every op of a device stream gets a device span from
 * its command's profiling info, mapped onto the host clock through the stream's anchor
 * marker — between its submission and its observed end, never overlapping the stream's other device
 * spans, counted by `kiln trace summary`; with KILN_OPENCL_PROFILING=0 the ops keep
 * observed spans only. Each test is its own process. */
#define _POSIX_C_SOURCE 200809L
#include "../trace/device_spans.h"

static char trace_file[256];

static kiln_context ocl_context(void) {
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  return ctx;
}

static void record(ds_result *res, unsigned *ops) {
  snprintf(trace_file, sizeof trace_file, "/tmp/kiln_test_trace_ocl_%d.json", (int)getpid());
  kiln_context ctx = ocl_context();
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(ctx, "kt_add_u32", &k));
  KT_OK(kiln_trace_start(NULL));
  *ops = ds_workload(ctx, k, 3, 8);
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  kiln_kernel_destroy(k);
  kiln_context_destroy(ctx);
  /* Slack: the anchor's error ((h1 - h0) / 2 of a marker's enqueue) and the file's
   * microsecond rounding; a loaded machine can stretch an enqueue, so be generous —
   * the spans checked are tens of microseconds apart. */
  ds_check(trace_file, 50.0, res);
}

static void kernel_spans_are_device_timed(void **state) {
  (void)state;
  ds_result res;
  unsigned ops = 0;
  record(&res, &ops);
  assert_int_equal(res.ops, (int)ops);
  assert_int_equal(res.run_timed, 0);     /* a device backend's spans are never "run" */
  assert_int_equal(res.device, (int)ops); /* every op was queued on a profiling queue */
  unlink(trace_file);
}

static void profiling_off_keeps_observed_spans(void **state) {
  (void)state;
  setenv("KILN_OPENCL_PROFILING", "0", 1); /* read at the backend's probe */
  ds_result res;
  unsigned ops = 0;
  record(&res, &ops);
  assert_int_equal(res.ops, (int)ops);
  assert_int_equal(res.device, 0);
  unlink(trace_file);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kernel_spans_are_device_timed),
      cmocka_unit_test(profiling_off_keeps_observed_spans),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  if (argc > 1 && !strcmp(argv[1], "profiling_off_keeps_observed_spans"))
    setenv("KILN_OPENCL_PROFILING", "0", 1);
  if (!kt_backend_available(KILN_BACKEND_OPENCL))
    return 77;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
