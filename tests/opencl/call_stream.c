/* SPDX-License-Identifier: MIT */
/* The OpenCL calls kiln makes for its small ops, counted by tests/opencl/cl_calls.c (a
 * counting layer loaded through KILN_OPENCL_LIBRARY; tests/opencl.cmake), against what
 * the raw OpenCL baselines of bench/baseline_opencl.c make for the same work: a burst of
 * 8 async writes and one kiln_wait_all (raw: 8 writes, one clWaitForEvents), launches of
 * a kernel that never reads kiln_global_size (raw: no clSetKernelArg, no marker), one
 * launch and its wait, a blocking write and read (raw: one blocking call each). Every extra command
 * or wait is work PoCL does for kiln and not for the baseline (docs/opencl.md). Expectations are
 * PoCL's (every command carries its event there); another platform skips. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static unsigned long (*calls_fn)(const char *);

enum { WRITE, READ, MARKER, LAUNCH, SETARG, WAIT, CALLBACK, FINISH, NCOUNTED };
static const char *const counted[NCOUNTED] = {"clEnqueueWriteBuffer",
                                              "clEnqueueReadBuffer",
                                              "clEnqueueMarkerWithWaitList",
                                              "clEnqueueNDRangeKernel",
                                              "clSetKernelArg",
                                              "clWaitForEvents",
                                              "clSetEventCallback",
                                              "clFinish"};

typedef struct counts {
  unsigned long n[NCOUNTED];
} counts;

static counts snapshot(void) {
  counts c;
  for (int i = 0; i < NCOUNTED; i++)
    c.n[i] = calls_fn(counted[i]);
  return c;
}

/* Calls since `before`; fails with every count when one differs from `want` (-1: any). */
static void expect_calls(const char *what, counts before, const long want[NCOUNTED]) {
  counts now = snapshot();
  char got[512] = "";
  int bad = 0;
  for (int i = 0; i < NCOUNTED; i++) {
    unsigned long d = now.n[i] - before.n[i];
    size_t at = strlen(got);
    snprintf(got + at, sizeof got - at, " %s=%lu", counted[i], d);
    if (want[i] >= 0 && d != (unsigned long)want[i])
      bad = 1;
  }
  if (bad) {
    char exp[512] = "";
    for (int i = 0; i < NCOUNTED; i++)
      if (want[i] >= 0) {
        size_t at = strlen(exp);
        snprintf(exp + at, sizeof exp - at, " %s=%ld", counted[i], want[i]);
      }
    fail_msg("%s: OpenCL calls%s; expected%s", what, got, exp);
  }
}

typedef struct env {
  kiln_context ctx;
  kiln_stream stream;
} env;

static int setup(void **state) {
  env *e = calloc(1, sizeof *e);
  if (!e)
    return -1;
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &e->ctx));
  KT_OK(kiln_stream_create(e->ctx, NULL, &e->stream));
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  KT_OK(kiln_stream_destroy(e->stream));
  KT_OK(kiln_context_destroy(e->ctx));
  free(e);
  return 0;
}

/* 8 writes and one wait for all: 8 commands, no marker, one native wait. */
static void burst_and_wait_all(void **state) {
  env *e = *state;
  static uint32_t host[1024];
  kiln_buffer b = kt_buffer(e->ctx, sizeof host);
  KT_OK(kiln_buffer_write(b, 0, sizeof host, host));
  for (int round = 0; round < 3; round++) {
    counts before = snapshot();
    kiln_pending t[8];
    for (int i = 0; i < 8; i++)
      KT_OK(kiln_buffer_write_async(e->stream, b, 0, sizeof host, host, &t[i]));
    KT_OK(kiln_wait_all(t, 8));
    long want[NCOUNTED] = {8, 0, 0, 0, 0, 1, -1, 0};
    expect_calls("8 x kiln_buffer_write_async + kiln_wait_all", before, want);
  }
  KT_OK(kiln_buffer_destroy(b));
}

/* A blocking write and read: one blocking command each, no wait after it (the call
 * returned once the command finished), no marker. */
static void blocking_transfer_is_one_call(void **state) {
  env *e = *state;
  static uint32_t host[1024];
  kiln_buffer b = kt_buffer(e->ctx, sizeof host);
  KT_OK(kiln_buffer_write(b, 0, sizeof host, host));
  for (int round = 0; round < 3; round++) {
    counts before = snapshot();
    KT_OK(kiln_buffer_write(b, 0, sizeof host, host));
    KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
    long want[NCOUNTED] = {1, 1, 0, 0, 0, 0, -1, 0};
    expect_calls("kiln_buffer_write + kiln_buffer_read", before, want);
  }
  KT_OK(kiln_buffer_destroy(b));
}

/* Back-to-back launches of a kernel without kiln_global_size, tokens released, one
 * synchronize: one command each, no argument set, no marker, one native wait. */
static void launches_set_no_hidden_arguments(void **state) {
  env *e = *state;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = "KILN_KERNEL void kt_empty(void) {}\n";
  pd.name = "kt_empty";
  kiln_program p = NULL;
  kiln_kernel k = NULL;
  KT_OK(kiln_program_create(e->ctx, &pd, &p));
  KT_OK(kiln_kernel_create(p, "kt_empty", &k));
  kiln_range r = kiln_range_1d(1);
  counts before = snapshot();
  for (int i = 0; i < 100; i++) {
    kiln_pending t;
    KT_OK(kiln_launch_async(e->stream, k, &r, NULL, 0, &t));
    KT_OK(kiln_pending_release(&t));
  }
  KT_OK(kiln_stream_synchronize(e->stream));
  long want[NCOUNTED] = {0, 0, 0, 100, 0, 1, -1, 0};
  expect_calls("100 x kiln_launch_async (released) + kiln_stream_synchronize", before, want);
  before = snapshot();
  kiln_pending t;
  KT_OK(kiln_launch_async(e->stream, k, &r, NULL, 0, &t));
  KT_OK(kiln_wait(&t));
  long want1[NCOUNTED] = {0, 0, 0, 1, 0, 1, 0, 0};
  expect_calls("kiln_launch_async + kiln_wait", before, want1);
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

int main(int argc, char **argv) {
  const char *lib = getenv("KILN_OPENCL_LIBRARY");
  void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (h)
    *(void **)&calls_fn = dlsym(h, "kt_cl_calls");
  if (!calls_fn) {
    fprintf(stderr, "call_stream: KILN_OPENCL_LIBRARY (%s) is not the counting layer\n",
            lib ? lib : "unset");
    return 1;
  }
  kiln_device dev = NULL;
  if (kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev) != KILN_SUCCESS) {
    fprintf(stderr, "call_stream: no OpenCL device\n");
    return 77;
  }
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  if (kiln_device_get_props(dev, &props) != KILN_SUCCESS || !strstr(props.arch, "PoCL")) {
    fprintf(stderr, "call_stream: opencl:0 is not PoCL (%s): these counts are PoCL's\n",
            props.arch);
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(burst_and_wait_all, setup, teardown),
      cmocka_unit_test_setup_teardown(blocking_transfer_is_one_call, setup, teardown),
      cmocka_unit_test_setup_teardown(launches_set_no_hidden_arguments, setup, teardown),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
