/* SPDX-License-Identifier: MIT */
/* The CUDA backend's launch limits are refused at the launch call, not at submit: a
 * block beyond the kernel's MAX_THREADS_PER_BLOCK (the caller's local size, and the
 * 3-D shape kiln would choose), local memory that with the kernel's static shared
 * memory exceeds the device's, and a grid beyond the device's in the dimension
 * concerned (with the caller's block, 16x16, and the occupancy API's 1-D block) —
 * each with KILN_ERROR_LIMIT_EXCEEDED from kiln_launch_async, an empty token and no
 * cuLaunchKernel; the launches just within each bound reach the driver, and the stream
 * keeps working. On the fake libcuda (KILN_FAKE_CUDA_LAUNCH=ok: launches recorded, not
 * run); main() points KILN_CUDA_LIBRARY at it and sets each test's function attributes
 * (KILN_FAKE_CUDA_FUNC_*) before kiln first loads the driver; NVRTC compiles the kernel.
 * kiln-test-labels: cuda-nogpu unit */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cuda/fake_libcuda.h"
#include "kiln_test.h"

static const char src[] =
    "KILN_KERNEL void lim(KILN_GLOBAL kiln_u32 *out, KILN_LOCAL kiln_u32 *scratch) {\n"
    "  scratch[kiln_local_id(0)] = (kiln_u32)kiln_group_id(0);\n"
    "  kiln_barrier();\n"
    "  if (kiln_global_id(0) < kiln_global_size(0)) out[0] = scratch[0];\n"
    "}\n";

typedef struct fx {
  kiln_program program;
  kiln_kernel k;
  kiln_buffer out;
  kiln_fake_cuda_last_launch_fn last;
} fx;

static void fx_init(kt_env *env, fx *f) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = "lim.kiln";
  KT_OK(kiln_program_create(env->ctx, &d, &f->program));
  KT_OK(kiln_kernel_create(f->program, "lim", &f->k));
  f->out = kt_buffer(env->ctx, 64);
  void *lib = dlopen(getenv("KILN_CUDA_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(lib);
  *(void **)&f->last = dlsym(lib, "kiln_fake_cuda_last_launch");
  assert_non_null(f->last);
  dlclose(lib);
}

static void fx_fini(fx *f) {
  KT_OK(kiln_kernel_destroy(f->k));
  KT_OK(kiln_program_destroy(f->program));
  KT_OK(kiln_buffer_destroy(f->out));
}

static long launches(const fx *f) {
  kiln_fake_launch l;
  f->last(&l);
  return l.launches;
}

/* Refused at the call: LIMIT_EXCEEDED naming the bound, an empty token, no launch. */
static void refused(kt_env *env, const fx *f, const kiln_range *r, size_t local_bytes,
                    const char *needle) {
  kiln_arg a[] = {kiln_arg_buffer(f->out), kiln_arg_local(local_bytes)};
  long before = launches(f);
  kiln_pending t = {7};
  KT_EXPECT_MSG(kiln_launch_async(env->stream, f->k, r, a, 2, &t), KILN_ERROR_LIMIT_EXCEEDED,
                needle);
  KT_MSG_HAS("'lim'");
  assert_int_equal(t.id, 0);
  assert_int_equal(launches(f), before);
  KT_OK(kiln_stream_synchronize(env->stream));
}

/* Reaches the driver, and completes: the launch as the fake recorded it. */
static kiln_fake_launch runs(kt_env *env, const fx *f, const kiln_range *r, size_t local_bytes) {
  kiln_arg a[] = {kiln_arg_buffer(f->out), kiln_arg_local(local_bytes)};
  long before = launches(f);
  kiln_pending t = {0};
  KT_OK(kiln_launch_async(env->stream, f->k, r, a, 2, &t));
  KT_OK(kiln_wait(&t));
  kiln_fake_launch l;
  f->last(&l);
  assert_int_equal(l.launches, before + 1);
  return l;
}

/* KILN_FAKE_CUDA_FUNC_MAX_THREADS=256: below the device's 1024. */
static void block_beyond_kernel_limit(void **state) {
  kt_env *env = *state;
  fx f;
  fx_init(env, &f);
  kiln_range r = kiln_range_1d(4096);
  r.local[0] = 512;
  refused(env, &f, &r, 64, "kernel's limit of 256");
  r = kiln_range_2d(64, 64);
  r.local[0] = 32;
  r.local[1] = 16;
  refused(env, &f, &r, 64, "kernel's limit of 256");
  r = kiln_range_1d(4096);
  r.local[0] = 256;
  kiln_fake_launch l = runs(env, &f, &r, 64);
  assert_int_equal(l.block[0], 256);
  assert_int_equal(l.grid[0], 16);
  r = kiln_range_1d(4096); /* kiln's choice stays within the kernel's limit */
  l = runs(env, &f, &r, 64);
  assert_int_equal(l.block[0], 256); /* the fake's occupancy answer, capped by the limit */
  fx_fini(&f);
}

/* KILN_FAKE_CUDA_FUNC_MAX_THREADS=2: kiln's 3-D shape cannot shrink below 1x1x4. */
static void chosen_block_beyond_kernel_limit(void **state) {
  kt_env *env = *state;
  fx f;
  fx_init(env, &f);
  kiln_range r = KILN_RANGE_INIT;
  r.dims = 3;
  r.global[0] = r.global[1] = r.global[2] = 8;
  refused(env, &f, &r, 16, "a block of 4 threads exceeds the kernel's limit of 2");
  r.local[0] = r.local[1] = 1;
  r.local[2] = 2;
  kiln_fake_launch l = runs(env, &f, &r, 16);
  assert_int_equal(l.block[2], 2);
  assert_int_equal(l.grid[2], 4);
  fx_fini(&f);
}

/* KILN_FAKE_CUDA_FUNC_SHARED_BYTES=65536 of the device's 232448 (opt-in). */
static void shared_memory_with_static_beyond_device(void **state) {
  kt_env *env = *state;
  fx f;
  fx_init(env, &f);
  kiln_range r = kiln_range_1d(256);
  r.local[0] = 256;
  refused(env, &f, &r, 232448 - 65536 + 1, "plus 65536 it declares itself");
  kiln_fake_launch l = runs(env, &f, &r, 232448 - 65536);
  assert_int_equal(l.shared_bytes, 232448 - 65536);
  fx_fini(&f);
}

/* The fake's grid: 2147483647 x 65535 x 65535 blocks; blocks of up to 1024 x 1024 x 64
 * (so the core's per-dimension global limit lets these ranges through). */
static void grid_beyond_device(void **state) {
  kt_env *env = *state;
  fx f;
  fx_init(env, &f);
  /* the caller's block: 65536 blocks of 1 in y */
  kiln_range r = kiln_range_2d(16, 65536);
  r.local[0] = 16;
  r.local[1] = 1;
  refused(env, &f, &r, 16,
          "65536 blocks of 16 x 1 x 1 threads in dimension 1 exceed the "
          "device's 65535");
  r.global[1] = 65535;
  kiln_fake_launch l = runs(env, &f, &r, 16);
  assert_int_equal(l.grid[1], 65535);
  /* kiln's 16x16: 65535 * 16 + 1 rows make 65536 blocks */
  r = kiln_range_2d(16, (size_t)65535 * 16 + 1);
  refused(env, &f, &r, 16, "in dimension 1 exceed the device's 65535");
  r.global[1] = (size_t)65535 * 16;
  l = runs(env, &f, &r, 16);
  assert_int_equal(l.block[1], 16);
  assert_int_equal(l.grid[1], 65535);
  /* 1-D: the occupancy API's block (the fake answers 768) */
  r = kiln_range_1d((size_t)2147483647 * 768 + 1);
  refused(env, &f, &r, 16, "2147483648 blocks of 768 x 1 x 1 threads in dimension 0");
  r.global[0] = (size_t)2147483647 * 768;
  l = runs(env, &f, &r, 16);
  assert_int_equal(l.block[0], 768);
  assert_int_equal(l.grid[0], 2147483647u);
  fx_fini(&f);
}

typedef struct case_env {
  const char *test;
  const char *var;
} case_env;

static const case_env envs[] = {
    {"block_beyond_kernel_limit", "KILN_FAKE_CUDA_FUNC_MAX_THREADS=256"},
    {"chosen_block_beyond_kernel_limit", "KILN_FAKE_CUDA_FUNC_MAX_THREADS=2"},
    {"shared_memory_with_static_beyond_device", "KILN_FAKE_CUDA_FUNC_SHARED_BYTES=65536"},
};

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(block_beyond_kernel_limit, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(chosen_block_beyond_kernel_limit, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(shared_memory_with_static_beyond_device, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(grid_beyond_device, kt_setup, kt_teardown),
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
  for (size_t i = 0; argc > 1 && i < sizeof envs / sizeof envs[0]; i++)
    if (strcmp(envs[i].test, argv[1]) == 0)
      putenv((char *)envs[i].var);
  if (!kt_backend_available(KILN_BACKEND_CUDA)) {
    fprintf(stderr, "FAIL: the CUDA backend did not load the fake libcuda at %s\n", lib);
    return 1;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
