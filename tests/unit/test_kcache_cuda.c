/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cuda-fake cuda */
/* kiln-test-link: static */
/* The compile cache on the CUDA backend without a GPU: the fake libcuda (tests/cuda)
 * with the real NVRTC. A program compiled to CUBIN is stored ('C' and the image); the
 * next build reads it back instead of calling NVRTC and loads it with
 * cuModuleLoadDataEx; its kernel runs (emulated). A process whose driver reports
 * another version finds the same CUBIN entry: the driver version is part of the key
 * only for PTX (which the driver JIT-compiles), and the fake's device is one NVRTC
 * knows, so kiln picks CUBIN. On a device newer than NVRTC knows (the fake's
 * KILN_FAKE_CUDA_CC_MAJOR) kiln loads PTX, and there the driver version is in the key:
 * another version misses, the same one hits. Also registered on `cuda` (a real GPU:
 * scripts/gpu-check.sh runs it; the PTX case needs the fake's knob and skips there). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kcache/kcache.h"
#include "kiln_test.h"

static char dir[64];

static int run_child(const char *const *env);

static kiln_cache_info info_now(void) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  return info;
}

/* The first payload byte of the one entry of namespace program (-1: not one entry). */
static int entry_kind_nofail(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/program", dir);
  DIR *d = opendir(path);
  if (!d)
    return -1;
  struct dirent *f;
  int kind = -1, n = 0;
  while ((f = readdir(d)))
    if (f->d_name[0] != '.') {
      char file[600];
      snprintf(file, sizeof file, "%s/%s", path, f->d_name);
      FILE *fp = fopen(file, "rb");
      if (fp && fseek(fp, KILN__KCACHE_HEADER_BYTES, SEEK_SET) == 0)
        kind = fgetc(fp);
      if (fp)
        fclose(fp);
      n++;
    }
  closedir(d);
  return n == 1 ? kind : -1;
}

/* The same, asserted. */
static int entry_kind(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/program", dir);
  DIR *d = opendir(path);
  assert_non_null(d);
  struct dirent *f;
  int kind = -1, n = 0;
  while ((f = readdir(d)))
    if (f->d_name[0] != '.') {
      char file[600];
      snprintf(file, sizeof file, "%s/%s", path, f->d_name);
      FILE *fp = fopen(file, "rb");
      assert_non_null(fp);
      assert_int_equal(fseek(fp, KILN__KCACHE_HEADER_BYTES, SEEK_SET), 0);
      kind = fgetc(fp);
      fclose(fp);
      n++;
    }
  closedir(d);
  assert_int_equal(n, 1);
  return kind;
}

static void cubin_round_trip_and_driver_version(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/kiln-kcache-cuda-XXXXXX");
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_context_create(kt_device(), NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(ctx, "kt_set_u32", &k));
  KT_OK(kiln_kernel_destroy(k));
  kiln_cache_info info = info_now();
  assert_int_equal(info.stores, 1);
  assert_int_equal(info.disk_hits, 0);
  int kind = entry_kind(); /* the fake's device is one NVRTC knows: CUBIN */
  assert_true(kind == 'C' || (kind == 'P' && !getenv("KILN_FAKE_CUDA_LAUNCH")));
  kiln__kcache_drop_memory();
  KT_OK(kt_kernel(ctx, "kt_set_u32", &k)); /* from the directory */
  info = info_now();
  assert_int_equal(info.disk_hits, 1);
  assert_int_equal(info.stores, 1);
  kiln_buffer b = kt_buffer(ctx, 16 * sizeof(uint32_t));
  uint32_t value = 7, got[16];
  kiln_arg args[2] = {kiln_arg_buffer(b), kiln_arg_scalar(&value, 4)};
  kiln_range r = kiln_range_1d(16);
  KT_OK(kiln_launch(s, k, &r, args, 2));
  KT_OK(kiln_buffer_read(b, 0, sizeof got, got));
  for (uint32_t i = 0; i < 16; i++)
    assert_int_equal(got[i], 7 + i);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));

  /* another process, another driver version: the same CUBIN entry */
  char dir_env[128];
  snprintf(dir_env, sizeof dir_env, "KILN_TEST_KCACHE_DIR=%s", dir);
  const char *env[] = {"KILN_FAKE_CUDA_VERSION=13010", "KILN_TEST_EXPECT=hit", dir_env, NULL};
  int rc = run_child(env);
  kiln__kcache_reset(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(rc, 0);
}

/* The child: a fresh process (on a driver of another version, or a device NVRTC does
 * not know). KILN_TEST_EXPECT=hit: the build was a disk hit, not a compile; =miss: a
 * compile and a store. KILN_TEST_KIND: the entry's first byte ('C', 'P') afterwards. */
static int child(void) {
  kiln__kcache_reset(getenv("KILN_TEST_KCACHE_DIR"));
  snprintf(dir, sizeof dir, "%s", getenv("KILN_TEST_KCACHE_DIR"));
  const char *expect = getenv("KILN_TEST_EXPECT");
  kiln_device dev = NULL;
  kiln_context ctx = NULL;
  if (kiln_device_find(KILN_BACKEND_CUDA, 0, &dev) || kiln_context_create(dev, NULL, &ctx))
    return 2;
  kiln_stream s = NULL;
  kiln_kernel k = NULL;
  if (kiln_stream_create(ctx, NULL, &s) || kt_kernel(ctx, "kt_set_u32", &k))
    return 3;
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  int hit = expect && !strcmp(expect, "hit");
  if (kiln_cache_stats(&info) || info.disk_hits != (hit ? 1u : 0u) ||
      info.stores != (hit ? 0u : 1u)) {
    fprintf(stderr, "child: expected a %s: disk hits %llu, stores %llu\n", expect,
            (unsigned long long)info.disk_hits, (unsigned long long)info.stores);
    return 4;
  }
  /* the kernel from the (loaded or compiled) image runs */
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 8 * sizeof(uint32_t);
  kiln_buffer b = NULL;
  uint32_t value = 40, got[8];
  if (kiln_buffer_create(ctx, &bd, &b))
    return 5;
  kiln_arg args[2] = {kiln_arg_buffer(b), kiln_arg_scalar(&value, 4)};
  kiln_range r = kiln_range_1d(8);
  if (kiln_launch(s, k, &r, args, 2) || kiln_buffer_read(b, 0, sizeof got, got))
    return 6;
  for (uint32_t i = 0; i < 8; i++)
    if (got[i] != 40 + i)
      return 7;
  const char *kind = getenv("KILN_TEST_KIND");
  if (kind && entry_kind_nofail() != kind[0]) {
    fprintf(stderr, "child: the entry is '%c', expected '%c'\n", entry_kind_nofail(), kind[0]);
    return 8;
  }
  kiln_buffer_destroy(b);
  kiln_kernel_destroy(k);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  return 0;
}

/* Run this executable as a child with the given environment (NAME=VALUE strings, NULL
 * ends); its exit status. */
static int run_child(const char *const *env) {
  pid_t pid = fork();
  if (pid == 0) {
    for (size_t i = 0; env[i]; i++)
      putenv((char *)(uintptr_t)env[i]);
    char self[] = "/proc/self/exe", mode[] = "--child";
    char *argv[] = {self, mode, NULL};
    execv(self, argv);
    _exit(99);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* A device newer than NVRTC knows: kiln loads PTX (the driver JIT-compiles it), and
 * the driver's version is part of the key: a process on another driver version misses
 * (compiles and stores its own entry), one on the same version hits. */
static void ptx_keys_carry_the_driver_version(void **state) {
  (void)state;
  if (!getenv("KILN_FAKE_CUDA_LAUNCH"))
    skip(); /* the fake's knobs only: a real GPU is what it is */
  snprintf(dir, sizeof dir, "/tmp/kiln-kcache-ptx-XXXXXX");
  assert_non_null(mkdtemp(dir));
  char dir_env[128];
  snprintf(dir_env, sizeof dir_env, "KILN_TEST_KCACHE_DIR=%s", dir);
  const char *first[] = {"KILN_FAKE_CUDA_CC_MAJOR=15",
                         "KILN_FAKE_CUDA_VERSION=13000",
                         "KILN_TEST_EXPECT=miss",
                         "KILN_TEST_KIND=P",
                         dir_env,
                         NULL};
  const char *same[] = {"KILN_FAKE_CUDA_CC_MAJOR=15", "KILN_FAKE_CUDA_VERSION=13000",
                        "KILN_TEST_EXPECT=hit", dir_env, NULL};
  const char *newer[] = {"KILN_FAKE_CUDA_CC_MAJOR=15", "KILN_FAKE_CUDA_VERSION=13010",
                         "KILN_TEST_EXPECT=miss", dir_env, NULL};
  int a = run_child(first), b = run_child(same), c = run_child(newer);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  if (a || b || c)
    fail_msg("children: first %d, same driver %d, newer driver %d (0 each)", a, b, c);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--child") == 0)
    return child();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cubin_round_trip_and_driver_version),
      cmocka_unit_test(ptx_keys_carry_the_driver_version),
  };
  if (!kt_backend_available(kt_backend())) {
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
