/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: opencl unit */
/* kiln-test-link: static */
/* The compile cache on PoCL: a program loaded from its binary (CL_PROGRAM_BINARIES,
 * clCreateProgramWithBinary) runs the same kernel as the compiled one, in this
 * process and in another; a small race of three processes on one directory (six
 * builds each of two kernels) builds right every time and leaves every entry whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kcache/store.h"
#include "kiln_test.h"
#include "kt_kcache.h"

static uint32_t expected_code(unsigned i) {
  return i * 7919u + 17u; /* what kt_kc_source's kernel i writes */
}

static void rm_rf(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void binary_from_the_cache_runs_the_same_kernel(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln-kcache-ocl-XXXXXX";
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  uint32_t code;
  KT_OK(kt_kc_build_run(ctx, s, 1, NULL, &code));
  assert_int_equal(code, expected_code(1));
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.stores, 1);
  assert_int_equal(info.entries, 1);
  assert_true(info.bytes > 1000); /* a PoCL binary, not a stub */
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(ctx, s, 1, NULL, &code));
  assert_int_equal(code, expected_code(1));
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.disk_hits, 1);
  assert_int_equal(info.stores, 1);
  /* other options: another entry */
  KT_OK(kt_kc_build_run(ctx, s, 1, "-cl-mad-enable", &code));
  assert_int_equal(code, expected_code(1));
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.entries, 2);
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  kiln__kcache_reset(NULL);
  rm_rf(dir);
}

static void three_processes_race_on_pocl(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln-kcache-ocl-race-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char root[64];
  snprintf(root, sizeof root, "%s/cache", dir);
  uint32_t codes[2] = {expected_code(0), expected_code(1)};
  kt_kc_race r = {root, KILN_BACKEND_OPENCL, 3, 6, 2, codes, 0, NULL, 0, 0, 0, 0, 0};
  unsigned left_tmp = 99, bad = 99;
  int failed = kt_kc_race_run(&r, &left_tmp, &bad);
  rm_rf(dir);
  print_message("%llu builds: %llu from the directory, %llu misses, %llu stores\n",
                (unsigned long long)r.builds_done, (unsigned long long)r.disk_hits,
                (unsigned long long)r.misses, (unsigned long long)r.stores);
  assert_int_equal(failed, 0);
  assert_int_equal(r.builds_done, 18);
  assert_true(r.disk_hits >= 18 - 6); /* at most each process compiles each kernel */
  assert_int_equal(left_tmp, 0);
  assert_int_equal(bad, 0);
}

/* In a child (PoCL reads POCL_CACHE_DIR once, when it loads): with POCL_CACHE_DIR
 * unset, kiln points it into its cache directory, and PoCL keeps the work-group
 * functions of the first launch there; kiln_cache_clear empties it. With
 * POCL_CACHE_DIR set, kiln leaves it alone. Exit 0 when all held. */
static int pocl_dir_child(const char *root, const char *preset) {
  if (preset)
    setenv("POCL_CACHE_DIR", preset, 1);
  else
    unsetenv("POCL_CACHE_DIR");
  kiln__kcache_reset(root);
  kiln_device dev = NULL;
  kiln_context ctx;
  kiln_stream s;
  if (kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev) || kiln_context_create(dev, NULL, &ctx) ||
      kiln_stream_create(ctx, NULL, &s))
    return 10;
  uint32_t code;
  if (kt_kc_build_run(ctx, s, 0, NULL, &code) || code != expected_code(0))
    return 11;
  char want[600];
  snprintf(want, sizeof want, "%s/pocl", root);
  const char *now = getenv("POCL_CACHE_DIR");
  if (!now || strcmp(now, preset ? preset : want) != 0)
    return 12;
  DIR *d = opendir(want);
  int n = 0;
  struct dirent *f;
  while (d && (f = readdir(d)))
    n += f->d_name[0] != '.';
  if (d)
    closedir(d);
  if (preset ? n != 0 : n == 0) /* PoCL wrote there only when kiln chose it */
    return 13;
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  if (kiln_cache_clear(NULL))
    return 14;
  d = opendir(want);
  n = 0;
  while (d && (f = readdir(d)))
    n += f->d_name[0] != '.';
  if (d)
    closedir(d);
  return n == 0 ? 0 : 15;
}

static void pocl_work_group_functions_go_under_kiln_cache(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln-kcache-pocl-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char root[64], preset[64];
  snprintf(root, sizeof root, "%s/cache", dir);
  snprintf(preset, sizeof preset, "%s/own-pocl", dir);
  assert_int_equal(mkdir(preset, 0700), 0);
  for (int with_preset = 0; with_preset < 2; with_preset++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(pocl_dir_child(root, with_preset ? preset : NULL));
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status))
      fail_msg("child (%s POCL_CACHE_DIR) failed at step %d", with_preset ? "with" : "without",
               WEXITSTATUS(status));
  }
  rm_rf(dir);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(binary_from_the_cache_runs_the_same_kernel),
      cmocka_unit_test(three_processes_race_on_pocl),
      cmocka_unit_test(pocl_work_group_functions_go_under_kiln_cache),
  };
  /* No kiln call in this process before the race forks (its children probe on their
   * own): whether PoCL is there is asked in a child. */
  pid_t pid = fork();
  if (pid == 0)
    _exit(kt_backend_available(KILN_BACKEND_OPENCL) ? 0 : 77);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "SKIP: the opencl backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
