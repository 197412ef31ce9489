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
 * knows, so kiln picks CUBIN. Also registered on `cuda` (a real GPU: scripts/
 * gpu-check.sh runs it; the child's driver is then the same one). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kcache/kcache.h"
#include "kiln_test.h"

static char dir[64];

static kiln_cache_info info_now(void) {
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  return info;
}

/* The first payload byte of the one entry of namespace program. */
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
  pid_t pid = fork();
  if (pid == 0) {
    setenv("KILN_FAKE_CUDA_VERSION", "13010", 1);
    setenv("KILN_TEST_KCACHE_DIR", dir, 1);
    char self[] = "/proc/self/exe", mode[] = "--child";
    char *argv[] = {self, mode, NULL};
    execv(self, argv);
    _exit(99);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  kiln__kcache_reset(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* The child: a fresh process on a driver of another version. 0 when the build was a
 * disk hit, not a compile. */
static int child(void) {
  kiln__kcache_reset(getenv("KILN_TEST_KCACHE_DIR"));
  kiln_device dev = NULL;
  kiln_context ctx = NULL;
  if (kiln_device_find(KILN_BACKEND_CUDA, 0, &dev) || kiln_context_create(dev, NULL, &ctx))
    return 2;
  kiln_kernel k = NULL;
  if (kt_kernel(ctx, "kt_set_u32", &k))
    return 3;
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  if (kiln_cache_stats(&info) || info.disk_hits != 1 || info.stores != 0) {
    fprintf(stderr, "child: disk hits %llu, stores %llu\n", (unsigned long long)info.disk_hits,
            (unsigned long long)info.stores);
    return 4;
  }
  kiln_kernel_destroy(k);
  kiln_context_destroy(ctx);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--child") == 0)
    return child();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cubin_round_trip_and_driver_version),
  };
  if (!kt_backend_available(kt_backend())) {
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
