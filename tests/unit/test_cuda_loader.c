/* SPDX-License-Identifier: MIT */
/* Loading the CUDA driver (src/backends/cuda/loader.c) in every way it can go: the
 * toolkit's stub library, no library, a relative KILN_CUDA_LIBRARY, and the fake
 * libcuda in each configured behaviour (devices and their properties, no device, an
 * old driver without and with cuGetProcAddress_v2, cuInit failing, a stub answer, a
 * missing required / optional entry, a failing enumeration call, and every Nth call of
 * a whole scenario failing in turn). tests/cuda.cmake gives each test its environment
 * (the backend is probed once per process).
 * kiln-test-labels: cuda-nogpu unit
 * kiln-test-link: static */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../cuda/fake_libcuda.h"
#include "kiln.h"

kiln_status kiln__cuda_device_info(unsigned index, int *cc_major, int *cc_minor,
                                   int *smem_optin_bytes, int *driver_version);
long kiln__cu_live_total(void);

static kiln_backend_info cuda_info(void) {
  kiln_backend_info info = KILN_BACKEND_INFO_INIT;
  for (unsigned i = 0; i < kiln_backend_count(); i++) {
    assert_int_equal(kiln_backend_get_info(i, &info), KILN_SUCCESS);
    if (info.kind == KILN_BACKEND_CUDA)
      return info;
  }
  fail_msg("no cuda backend listed");
  return info;
}

/* CUDA is unavailable with a reason containing each of the NULL-terminated needles;
 * the CPU backend is unaffected and asking for cuda:0 names the reason. */
static void expect_unavailable(const char *first, ...) {
  kiln_backend_info info = cuda_info();
  if (info.available)
    fail_msg("cuda is available; expected unavailable because of '%s'", first);
  va_list ap;
  va_start(ap, first);
  for (const char *n = first; n; n = va_arg(ap, const char *))
    if (!strstr(info.reason, n))
      fail_msg("reason '%s' does not name '%s'", info.reason, n);
  va_end(ap);
  kiln_device d = NULL;
  assert_int_equal(kiln_device_find(KILN_BACKEND_CUDA, 0, &d), KILN_ERROR_BACKEND_UNAVAILABLE);
  assert_null(d);
  if (!strstr(kiln_last_error()->message, first))
    fail_msg("kiln_device_find's message '%s' does not carry the reason",
             kiln_last_error()->message);
  assert_int_equal(kiln_device_find(KILN_BACKEND_CPU, 0, &d), KILN_SUCCESS);
}

static void test_stub_library(void **state) {
  (void)state;
  expect_unavailable("CUDA_ERROR_STUB_LIBRARY (34)", "stubs/libcuda.so", NULL);
}

static void test_no_library(void **state) {
  (void)state;
  expect_unavailable("/nonexistent/libcuda.so", "could not be loaded", NULL);
}

static void test_relative_path_refused(void **state) {
  (void)state;
  expect_unavailable("KILN_CUDA_LIBRARY='libcuda.so.1' is a relative path", NULL);
}

static void test_fake_no_device(void **state) {
  (void)state;
  expect_unavailable("CUDA_ERROR_NO_DEVICE (100)", NULL);
}

static void test_fake_old_driver_without_v2(void **state) {
  (void)state;
  expect_unavailable("CUDA 11.8 (11080)", "without cuGetProcAddress_v2", "CUDA 12.0 (12000)", NULL);
}

static void test_fake_old_driver_version(void **state) {
  (void)state;
  expect_unavailable("CUDA 11.8 (11080)", "CUDA 12.0 (12000)", NULL);
}

static void test_fake_init_fails(void **state) {
  (void)state;
  expect_unavailable("cuInit(0) failed: CUDA_ERROR_UNKNOWN (999)", NULL);
}

static void test_fake_stub_answer(void **state) {
  (void)state;
  expect_unavailable("CUDA_ERROR_STUB_LIBRARY (34)", "libkiln_fake_cuda.so", NULL);
}

static void test_fake_missing_required_entry(void **state) {
  (void)state;
  expect_unavailable("has no cuMemsetD16Async at CUDA 12.0", NULL);
}

static void test_fake_missing_optional_entries(void **state) {
  (void)state;
  kiln_backend_info info = cuda_info();
  if (!info.available)
    fail_msg("cuda unavailable: %s", info.reason);
  assert_int_equal(info.device_count, 1);
}

static void check_device(unsigned index, const char *name, uint64_t mem, unsigned sms,
                         const char *pci, int cc_major) {
  kiln_device d = NULL;
  assert_int_equal(kiln_device_find(KILN_BACKEND_CUDA, index, &d), KILN_SUCCESS);
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  assert_int_equal(kiln_device_get_props(d, &p), KILN_SUCCESS);
  assert_string_equal(p.name, name);
  assert_string_equal(p.vendor, "NVIDIA");
  assert_int_equal(p.kind, KILN_DEVICE_KIND_GPU);
  assert_int_equal(p.global_mem_bytes, mem);
  assert_int_equal(p.max_alloc_bytes, mem);
  assert_int_equal(p.compute_units, sms);
  assert_int_equal(p.max_work_group_size, 1024);
  assert_int_equal(p.max_work_item_sizes[0], 1024);
  assert_int_equal(p.max_work_item_sizes[1], 1024);
  assert_int_equal(p.max_work_item_sizes[2], 64);
  assert_int_equal(p.max_global_size[0], (size_t)2147483647 * 1024);
  assert_int_equal(p.local_mem_bytes, 232448); /* the opt-in maximum */
  assert_int_equal(p.mem_align_bytes, 256);
  assert_string_equal(p.pci_bus_id, pci);
  int major = 0, minor = -1, optin = 0, driver = 0;
  assert_int_equal(kiln__cuda_device_info(index, &major, &minor, &optin, &driver), KILN_SUCCESS);
  assert_int_equal(major, cc_major);
  assert_int_equal(minor, 0);
  assert_int_equal(optin, 232448);
  assert_int_equal(driver, 13000);
}

static void test_fake_two_devices(void **state) {
  (void)state;
  kiln_backend_info info = cuda_info();
  if (!info.available)
    fail_msg("cuda unavailable: %s", info.reason);
  assert_string_equal(info.reason, "");
  assert_int_equal(info.device_count, 2);
  check_device(0, "kiln fake CUDA device 0", 4ull << 30, 132, "0000:65:00.0", 9);
  check_device(1, "kiln fake CUDA device 1", 5ull << 30, 133, "0000:66:00.0", 8);
  /* design.md: the default device is CUDA device 0 */
  kiln_device d = NULL, c0 = NULL;
  assert_int_equal(kiln_device_default(&d), KILN_SUCCESS);
  assert_int_equal(kiln_device_find(KILN_BACKEND_CUDA, 0, &c0), KILN_SUCCESS);
  assert_ptr_equal(d, c0);
  assert_int_equal(kiln_device_parse("cuda:1", &d), KILN_SUCCESS);
  assert_int_equal(kiln_device_parse("cuda:2", &d), KILN_ERROR_DEVICE_NOT_FOUND);
}

/* The third cuDeviceGetAttribute call (device 0's) fails: device 0 is left out, the
 * other one is listed (as cuda:0). */
static void test_fake_enumeration_call_fails(void **state) {
  (void)state;
  kiln_backend_info info = cuda_info();
  if (!info.available)
    fail_msg("cuda unavailable: %s", info.reason);
  assert_int_equal(info.device_count, 1);
  kiln_device d = NULL;
  assert_int_equal(kiln_device_find(KILN_BACKEND_CUDA, 0, &d), KILN_SUCCESS);
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  assert_int_equal(kiln_device_get_props(d, &p), KILN_SUCCESS);
  assert_string_equal(p.name, "kiln fake CUDA device 1");
}

/* ---------------------------------------------------------------- Nth call sweep */
/* The scenario: probe, context, stream, buffer, write, read back, teardown. Returns 0
 * when every step either succeeded (with the right bytes) or failed with a filled
 * error, and kiln's own CUDA objects all went away; 1 otherwise. */
static int scenario(void) {
  kiln_backend_info info = KILN_BACKEND_INFO_INIT;
  for (unsigned i = 0; i < kiln_backend_count(); i++)
    if (kiln_backend_get_info(i, &info) == KILN_SUCCESS && info.kind == KILN_BACKEND_CUDA)
      break;
  if (!info.available)
    return info.reason[0] ? 0 : 1;
  kiln_device d = NULL;
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  kiln_buffer b = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_CUDA, 0, &d);
  if (st == KILN_SUCCESS)
    st = kiln_context_create(d, NULL, &ctx);
  if (st == KILN_SUCCESS)
    st = kiln_stream_create(ctx, NULL, &s);
  kiln_buffer_desc desc = KILN_BUFFER_DESC_INIT;
  desc.bytes = 4096;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(ctx, &desc, &b);
  static unsigned char out[4096], in[4096];
  for (size_t i = 0; i < sizeof out; i++)
    out[i] = (unsigned char)(i * 13u + 1u);
  kiln_pending t = {0};
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write_async(s, b, 0, sizeof out, out, &t);
  if (st == KILN_SUCCESS)
    st = kiln_wait(&t);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(b, 0, sizeof in, in);
  int bad = 0;
  if (st == KILN_SUCCESS)
    bad = memcmp(in, out, sizeof in) != 0;
  else
    bad = kiln_last_error()->status == KILN_SUCCESS || !kiln_last_error()->message[0];
  if (st != KILN_SUCCESS && t.id)
    (void)!kiln_wait(&t);
  kiln_buffer_destroy(b);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  if (kiln__cu_live_total() != 0)
    bad = 1;
  return bad;
}

static long child_run(long nth, long *calls) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    alarm(30); /* a hang becomes a failure */
    char v[32];
    snprintf(v, sizeof v, "%ld", nth);
    if (nth)
      setenv("KILN_FAKE_CUDA_FAIL_NTH", v, 1);
    int bad = scenario();
    long n = 0;
    void *lib = dlopen(getenv("KILN_CUDA_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
    kiln_fake_cuda_calls_fn fn = NULL;
    if (lib)
      *(void **)&fn = dlsym(lib, "kiln_fake_cuda_calls");
    if (fn)
      n = fn();
    if (write(fds[1], &n, sizeof n) != (ssize_t)sizeof n)
      bad = 1;
    _exit(bad);
  }
  close(fds[1]);
  long n = -1;
  if (read(fds[0], &n, sizeof n) != (ssize_t)sizeof n)
    n = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (calls)
    *calls = n;
  if (WIFSIGNALED(status))
    return 1000 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

static void test_fake_nth_call_sweep(void **state) {
  (void)state;
  long calls = 0;
  assert_int_equal(child_run(0, &calls), 0);
  if (calls < 60)
    fail_msg("the clean scenario made only %ld driver calls: it shrank", calls);
  for (long n = 1; n <= calls; n++) {
    long rc = child_run(n, NULL);
    if (rc)
      fail_msg("failing driver call %ld of %ld: the scenario %s (%ld)", n, calls,
               rc >= 1000 ? "crashed or hung" : "misbehaved", rc);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stub_library),
      cmocka_unit_test(test_no_library),
      cmocka_unit_test(test_relative_path_refused),
      cmocka_unit_test(test_fake_two_devices),
      cmocka_unit_test(test_fake_no_device),
      cmocka_unit_test(test_fake_old_driver_without_v2),
      cmocka_unit_test(test_fake_old_driver_version),
      cmocka_unit_test(test_fake_init_fails),
      cmocka_unit_test(test_fake_stub_answer),
      cmocka_unit_test(test_fake_missing_required_entry),
      cmocka_unit_test(test_fake_missing_optional_entries),
      cmocka_unit_test(test_fake_enumeration_call_fails),
      cmocka_unit_test(test_fake_nth_call_sweep),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
