/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: opencl unit */
/* kiln-test-env: KILN_TEST_BACKEND=opencl */
/* kiln-test-link: static */
/* Device time in the trace on OpenCL (PoCL here; docs/observability.md, "Device
 * time"): while a trace records, every op of a device stream gets a device span from
 * its command's profiling info, mapped onto the host clock through the stream's anchor
 * marker — between its submission and its observed end, never overlapping the stream's other device
 * spans, counted by `kiln trace summary`; with KILN_OPENCL_PROFILING=0 the ops keep
 * observed spans only; a driver that refuses the profiling info, or the anchor marker
 * (a warning), leaves observed spans and a valid trace, every event released. Faults
 * are injected by replacing entries of kiln's OpenCL table (kiln__cl; static link).
 * Each test is its own process. */
#define _POSIX_C_SOURCE 200809L
#include "../trace/device_spans.h"

#include <stdatomic.h>

#include "backends/opencl/cl_api.h"

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
  *ops = ds_workload(ctx, k, 3, 8, NULL);
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  kiln_kernel_destroy(k);
  kiln_context_destroy(ctx);
  /* Slack beyond each span's own anchor_error_us: the observed times' conversion
   * from TSC ticks and the file's rounding (a microsecond or two). */
  ds_check(trace_file, 10.0, res);
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

/* ---- faults ---- */
static __typeof__(&clGetEventProfilingInfo) real_profiling_info;
static __typeof__(&clEnqueueMarkerWithWaitList) real_marker;
static atomic_int markers_to_fail;

static cl_int CL_API_CALL no_profiling_info(cl_event ev, cl_profiling_info what, size_t bytes,
                                            void *value, size_t *ret) {
  (void)ev, (void)what, (void)bytes, (void)value, (void)ret;
  return CL_PROFILING_INFO_NOT_AVAILABLE;
}

static cl_int CL_API_CALL failing_marker(cl_command_queue q, cl_uint n, const cl_event *wait,
                                         cl_event *ev) {
  if (atomic_fetch_sub(&markers_to_fail, 1) > 0)
    return CL_OUT_OF_HOST_MEMORY;
  return real_marker(q, n, wait, ev);
}

static void profiling_info_refused_keeps_observed_spans(void **state) {
  (void)state;
  ds_result res;
  unsigned ops = 0;
  kiln_context ctx = ocl_context(); /* loads the driver: kiln__cl is filled */
  real_profiling_info = kiln__cl.clGetEventProfilingInfo;
  kiln__cl.clGetEventProfilingInfo = no_profiling_info;
  record(&res, &ops);
  kiln__cl.clGetEventProfilingInfo = real_profiling_info;
  kiln_context_destroy(ctx);
  assert_int_equal(res.ops, (int)ops);
  assert_int_equal(res.device, 0);
  assert_int_equal(kiln__cl_live_total(), 0); /* every event released */
  unlink(trace_file);
}

static void anchor_marker_refused_warns_and_keeps_observed_spans(void **state) {
  (void)state;
  ds_result res;
  unsigned ops = 0;
  kiln_context ctx = ocl_context();
  real_marker = kiln__cl.clEnqueueMarkerWithWaitList;
  kiln__cl.clEnqueueMarkerWithWaitList = failing_marker;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  /* The first marker while tracing is the first stream's anchor: refused, it is tried
   * again only 100 ms later; the workload's other markers succeed. */
  atomic_store(&markers_to_fail, 0);
  snprintf(trace_file, sizeof trace_file, "/tmp/kiln_test_trace_ocl_%d.json", (int)getpid());
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(ctx, "kt_add_u32", &k));
  atomic_store(&markers_to_fail, 1);
  KT_OK(kiln_trace_start(NULL));
  ops = ds_workload(ctx, k, 1, 4, NULL);
  KT_OK(kiln_trace_write(trace_file));
  KT_OK(kiln_trace_stop());
  kt_log_capture_stop(&cap);
  kiln__cl.clEnqueueMarkerWithWaitList = real_marker;
  kiln_kernel_destroy(k);
  kiln_context_destroy(ctx);
  assert_true(kt_log_capture_has(&cap, "no anchor marker for the trace's device time"));
  assert_true(kt_log_capture_has(&cap, "CL_OUT_OF_HOST_MEMORY"));
  ds_check(trace_file, 10.0, &res);
  assert_int_equal(res.ops, (int)ops);
  assert_true(res.device < res.ops); /* the first stream's ops: observed only */
  assert_int_equal(kiln__cl_live_total(), 0);
  unlink(trace_file);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kernel_spans_are_device_timed),
      cmocka_unit_test(profiling_off_keeps_observed_spans),
      cmocka_unit_test(profiling_info_refused_keeps_observed_spans),
      cmocka_unit_test(anchor_marker_refused_warns_and_keeps_observed_spans),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  if (argc > 1 && !strcmp(argv[1], "profiling_off_keeps_observed_spans"))
    setenv("KILN_OPENCL_PROFILING", "0", 1);
  if (!kt_backend_available(KILN_BACKEND_OPENCL))
    return 77;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
