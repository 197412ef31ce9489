/* SPDX-License-Identifier: MIT */
/* The OpenCL backend where no driver can be had (issue 6, "no-driver path"). Run by
 * tests/opencl.cmake once per case, each with its own environment, since kiln probes
 * its backends once per process:
 *   no_platform        OCL_ICD_VENDORS=<an empty folder>: the ICD loader finds no
 *                      vendor, so clGetPlatformIDs returns CL_PLATFORM_NOT_FOUND_KHR;
 *   relative_library   KILN_OPENCL_LIBRARY=relative/libOpenCL.so.1: refused;
 *   missing_library    KILN_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1: not loadable.
 * Each time the opencl backend is unavailable with the reason, opencl:0 is not found,
 * and the CPU backend still works. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static void expect_unavailable(const char *needle1, const char *needle2) {
  unsigned n = kiln_backend_count();
  int seen = 0;
  for (unsigned i = 0; i < n; i++) {
    kiln_backend_info info = KILN_BACKEND_INFO_INIT;
    KT_OK(kiln_backend_get_info(i, &info));
    if (info.kind != KILN_BACKEND_OPENCL)
      continue;
    seen = 1;
    assert_false(info.available);
    assert_int_equal(info.device_count, 0);
    if (!strstr(info.reason, needle1) || (needle2 && !strstr(info.reason, needle2)))
      fail_msg("the reason '%s' does not name '%s'%s%s", info.reason, needle1,
               needle2 ? " and " : "", needle2 ? needle2 : "");
  }
  assert_true(seen);
  kiln_device d = (kiln_device)(uintptr_t)0x1;
  kiln_status st = kiln_device_find(KILN_BACKEND_OPENCL, 0, &d);
  assert_true(st != KILN_SUCCESS);
  assert_null(d);
  d = NULL;
  st = kiln_device_parse("opencl:0", &d);
  assert_true(st != KILN_SUCCESS);
  assert_null(d);
  /* the CPU backend is fine */
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx));
  kiln_buffer b = kt_buffer(ctx, 64);
  uint32_t in[16], out[16];
  for (uint32_t i = 0; i < 16; i++)
    in[i] = i * 5u;
  KT_OK(kiln_buffer_write(b, 0, sizeof in, in));
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  assert_memory_equal(in, out, sizeof in);
  KT_OK(kiln_context_destroy(ctx));
  kiln_device def = NULL;
  KT_OK(kiln_device_default(&def));
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(def, &p));
  assert_int_not_equal(p.backend, KILN_BACKEND_OPENCL);
}

static void no_platform(void **state) {
  (void)state;
  const char *v = getenv("OCL_ICD_VENDORS");
  if (!v || !*v)
    fail_msg("OCL_ICD_VENDORS is not set: run through ctest");
  expect_unavailable("no OpenCL platform: clGetPlatformIDs returned", "-1001");
}

static void relative_library(void **state) {
  (void)state;
  const char *v = getenv("KILN_OPENCL_LIBRARY");
  if (!v || v[0] == '/' || !*v)
    fail_msg("KILN_OPENCL_LIBRARY is not a relative path: run through ctest");
  expect_unavailable("KILN_OPENCL_LIBRARY", "relative");
}

static void missing_library(void **state) {
  (void)state;
  const char *v = getenv("KILN_OPENCL_LIBRARY");
  if (!v || v[0] != '/')
    fail_msg("KILN_OPENCL_LIBRARY is not an absolute path: run through ctest");
  expect_unavailable(v, "could not be loaded");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_platform),
      cmocka_unit_test(relative_library),
      cmocka_unit_test(missing_library),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
