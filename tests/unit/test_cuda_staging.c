/* SPDX-License-Identifier: MIT */
/* The CUDA backend's staging of pageable transfers and its pinned host memory, on the
 * fake libcuda, through the driver failures that change the path: a staging block
 * that cannot be pinned falls back to the driver's own pageable copy with the same
 * data; blocks are reused (a second cuMemHostAlloc would fail); a staged read failing
 * half-way fails the op naming the driver call, and the stream keeps working; memory
 * the program registered with CUDA itself goes straight to the driver (no staging
 * block asked for); a refused cuMemHostAlloc is OUT_OF_HOST_MEMORY with a suggestion. Each test
 * runs in its own process (one ctest entry per test); main() points KILN_CUDA_LIBRARY at the fake
 * next to the test tree and sets that test's fake behaviour before kiln first loads the driver.
 * kiln-test-labels: cuda-nogpu unit */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

#define BIG ((size_t)(9u << 20) + 77) /* three staging chunks, the last partial */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)((i * 131u + seed) >> 3);
}
static int pattern_ok(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)((i * 131u + seed) >> 3))
      return 0;
  return 1;
}

/* BIG bytes of pageable memory there and back (async, then blocking), compared. */
static void pageable_roundtrip(kt_env *env, unsigned seed) {
  unsigned char *src = malloc(BIG), *dst = calloc(1, BIG);
  assert_non_null(src);
  assert_non_null(dst);
  fill_pattern(src, BIG, seed);
  kiln_buffer b = kt_buffer(env->ctx, BIG);
  kiln_pending w = KILN_PENDING_INIT, r = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, BIG, src, &w));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, BIG, dst, &r));
  KT_OK(kiln_wait(&w));
  KT_OK(kiln_wait(&r));
  assert_true(pattern_ok(dst, BIG, seed));
  memset(dst, 0, BIG);
  KT_OK(kiln_buffer_read(b, 0, BIG, dst));
  assert_true(pattern_ok(dst, BIG, seed));
  KT_OK(kiln_buffer_destroy(b));
  free(src);
  free(dst);
}

/* KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc, FAIL_NTH=1: the first block cannot be
 * pinned; the stream says so (log) and that transfer goes to the driver. */
static void staging_without_a_pinned_block_falls_back(void **state) {
  kt_env *env = *state;
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  pageable_roundtrip(env, 3);
  kt_log_capture_stop(&cap);
  assert_true(kt_log_capture_has(&cap, "no pinned staging block"));
}

/* KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc, FAIL_NTH=2: one staged transfer after the
 * other, both ways, three times: one block serves them all (a second allocation
 * would fail and say so). */
static void staging_blocks_are_reused(void **state) {
  kt_env *env = *state;
  unsigned char *src = malloc(BIG), *dst = calloc(1, BIG);
  assert_non_null(src);
  assert_non_null(dst);
  kiln_buffer b = kt_buffer(env->ctx, BIG);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  for (unsigned k = 0; k < 3; k++) {
    fill_pattern(src, BIG, 10 + k);
    kiln_pending t = KILN_PENDING_INIT;
    KT_OK(kiln_buffer_write_async(env->stream, b, 0, BIG, src, &t));
    KT_OK(kiln_wait(&t));
    KT_OK(kiln_buffer_read_async(env->stream, b, 0, BIG, dst, &t));
    KT_OK(kiln_wait(&t));
    assert_true(pattern_ok(dst, BIG, 10 + k));
  }
  kt_log_capture_stop(&cap);
  if (kt_log_capture_has(&cap, "no pinned staging block"))
    fail_msg("a second block was asked for:\n%s", cap.text);
  KT_OK(kiln_buffer_destroy(b));
  free(src);
  free(dst);
}

/* KILN_FAKE_CUDA_FAIL_ENTRY=cuMemcpyDtoHAsync, FAIL_NTH=2: the second chunk's DMA is
 * refused: the read fails naming cuMemcpyDtoHAsync; later transfers work (the block
 * the first chunk may still use is set aside until the stream goes). */
static void staging_failing_half_way_fails_the_op(void **state) {
  kt_env *env = *state;
  unsigned char *dst = calloc(1, BIG);
  assert_non_null(dst);
  kiln_buffer b = kt_buffer(env->ctx, BIG);
  kiln_pending r = KILN_PENDING_INIT;
  kiln_status st = kiln_buffer_read_async(env->stream, b, 0, BIG, dst, &r);
  if (st == KILN_SUCCESS)
    st = kiln_wait(&r);
  assert_int_not_equal(st, KILN_SUCCESS);
  if (!kt_strcasestr(kiln_last_error()->message, "from cuMemcpyDtoHAsync"))
    fail_msg("the failure does not name cuMemcpyDtoHAsync: %s", kiln_last_error()->message);
  (void)kiln_stream_synchronize(env->stream); /* the failure was reported by the wait */
  KT_OK(kiln_buffer_destroy(b));
  free(dst);
  pageable_roundtrip(env, 5); /* the stream and its staging keep working */
}

/* Memory registered with cuMemHostRegister by the program is page-locked: kiln hands
 * it to the driver directly. KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc, FAIL_NTH=1:
 * a staging block asked for would fail and say so. */
typedef int (*push_fn)(void *ctx);
typedef int (*pop_fn)(void **ctx);
typedef int (*reg_fn)(void *p, size_t bytes, unsigned flags);
typedef int (*unreg_fn)(void *p);
static void registered_memory_goes_direct(void **state) {
  kt_env *env = *state;
  void *lib = dlopen(getenv("KILN_CUDA_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(lib);
  push_fn push = NULL;
  pop_fn pop = NULL;
  reg_fn reg = NULL;
  unreg_fn unreg = NULL;
  *(void **)&push = dlsym(lib, "cuCtxPushCurrent_v2"); /* POSIX's way to a function pointer */
  *(void **)&pop = dlsym(lib, "cuCtxPopCurrent_v2");
  *(void **)&reg = dlsym(lib, "cuMemHostRegister_v2");
  *(void **)&unreg = dlsym(lib, "cuMemHostUnregister");
  assert_true(push && pop && reg && unreg);
  void *cuctx = NULL;
  KT_OK(kiln_context_get_native(env->ctx, KILN_NATIVE_CU_CONTEXT, &cuctx));
  unsigned char *host = malloc(BIG), *back = calloc(1, BIG);
  assert_non_null(host);
  assert_non_null(back);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_INFO);
  assert_int_equal(push(cuctx), 0);
  assert_int_equal(reg(host, BIG, 0), 0);
  assert_int_equal(reg(back, BIG, 0), 0);
  fill_pattern(host, BIG, 6);
  kiln_buffer b = kt_buffer(env->ctx, BIG);
  kiln_pending w = KILN_PENDING_INIT, r = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, BIG, host, &w));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, BIG, back, &r));
  KT_OK(kiln_wait(&w));
  KT_OK(kiln_wait(&r));
  assert_true(pattern_ok(back, BIG, 6));
  kt_log_capture_stop(&cap);
  if (kt_log_capture_has(&cap, "no pinned staging block"))
    fail_msg("registered memory was staged:\n%s", cap.text);
  KT_OK(kiln_buffer_destroy(b));
  assert_int_equal(unreg(host), 0);
  assert_int_equal(unreg(back), 0);
  void *dummy = NULL;
  assert_int_equal(pop(&dummy), 0);
  free(host);
  free(back);
}

/* KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc, FAIL_NTH=1, FAIL_CODE=2 (OUT_OF_MEMORY). */
static void host_alloc_refused_is_out_of_host_memory(void **state) {
  kt_env *env = *state;
  void *p = NULL;
  KT_EXPECT_MSG(kiln_host_alloc(env->ctx, 1 << 20, &p), KILN_ERROR_OUT_OF_HOST_MEMORY,
                "could not pin");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "ulimit -l"));
  assert_null(p);
  KT_OK(kiln_host_alloc(env->ctx, 1 << 20, &p));
  int pinned = 0;
  KT_OK(kiln_host_is_pinned(env->ctx, p, 1 << 20, &pinned));
  assert_int_equal(pinned, 1);
  KT_OK(kiln_host_free(env->ctx, p));
}

typedef struct case_env {
  const char *test;
  const char *vars[3];
} case_env;

static const case_env envs[] = {
    {"staging_without_a_pinned_block_falls_back",
     {"KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc", "KILN_FAKE_CUDA_FAIL_NTH=1", NULL}},
    {"staging_blocks_are_reused",
     {"KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc", "KILN_FAKE_CUDA_FAIL_NTH=2", NULL}},
    {"staging_failing_half_way_fails_the_op",
     {"KILN_FAKE_CUDA_FAIL_ENTRY=cuMemcpyDtoHAsync_v2", "KILN_FAKE_CUDA_FAIL_NTH=2", NULL}},
    {"registered_memory_goes_direct",
     {"KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc", "KILN_FAKE_CUDA_FAIL_NTH=1", NULL}},
    {"host_alloc_refused_is_out_of_host_memory",
     {"KILN_FAKE_CUDA_FAIL_ENTRY=cuMemHostAlloc", "KILN_FAKE_CUDA_FAIL_NTH=1",
      "KILN_FAKE_CUDA_FAIL_CODE=2"}},
};

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(staging_without_a_pinned_block_falls_back, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(staging_blocks_are_reused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(staging_failing_half_way_fails_the_op, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(registered_memory_goes_direct, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(host_alloc_refused_is_out_of_host_memory, kt_setup,
                                      kt_teardown),
  };
  /* The fake lives in <tree>/tests/cuda/, this test in <tree>/tests/unit/. */
  char exe[PATH_MAX], lib[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return 1;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return 1;
  *slash = '\0';
  snprintf(lib, sizeof lib, "%s/../cuda/libkiln_fake_cuda.so", exe);
  setenv("KILN_CUDA_LIBRARY", lib, 1);
  setenv("KILN_TEST_BACKEND", "cuda", 1);
  setenv("KILN_FAKE_CUDA_LAUNCH", "ok", 1);
  for (size_t i = 0; argc > 1 && i < sizeof envs / sizeof envs[0]; i++) {
    if (strcmp(envs[i].test, argv[1]) != 0)
      continue;
    for (int v = 0; v < 3 && envs[i].vars[v]; v++)
      putenv((char *)envs[i].vars[v]);
  }
  if (!kt_backend_available(KILN_BACKEND_CUDA)) {
    fprintf(stderr, "FAIL: the CUDA backend did not load the fake libcuda at %s\n", lib);
    return 1;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
