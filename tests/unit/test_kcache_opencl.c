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

/* The one entry file under dir/program: its path into out. */
static void only_entry(const char *dir, char *out, size_t out_bytes) {
  char ns[256];
  snprintf(ns, sizeof ns, "%s/program", dir);
  DIR *d = opendir(ns);
  assert_non_null(d);
  struct dirent *f;
  int n = 0;
  while ((f = readdir(d)))
    if (f->d_name[0] != '.') {
      snprintf(out, out_bytes, "%s/%s", ns, f->d_name);
      n++;
    }
  closedir(d);
  assert_int_equal(n, 1);
}

/* What PoCL 3.1 writes when another process is still creating program.bc: a binary
 * whose program.bc is empty — and PoCL aborts (an assert in clBuildProgram) on it.
 * kiln refuses such an entry before PoCL sees it, deletes it and rebuilds. */
static void binary_with_empty_program_bc_is_refused_not_fatal(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln-kcache-ocl-bc-XXXXXX";
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
  kiln_device dev = NULL;
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  uint32_t code;
  KT_OK(kt_kc_build_run(ctx, s, 4, NULL, &code));
  assert_int_equal(code, expected_code(4));
  char path[600];
  only_entry(dir, path, sizeof path);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static unsigned char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(n > KILN__KCACHE_HEADER_BYTES && n < sizeof buf);
  unsigned char *pay = buf + KILN__KCACHE_HEADER_BYTES;
  size_t pay_bytes = n - KILN__KCACHE_HEADER_BYTES;
  if (memcmp(pay, "poclbin", 8) != 0) {
    kiln_stream_destroy(s);
    kiln_context_destroy(ctx);
    kiln__kcache_reset(NULL);
    rm_rf(dir);
    skip(); /* another OpenCL platform */
  }
  unsigned char *bc = memmem(pay, pay_bytes < 4096 ? pay_bytes : 4096, "/program.bc", 11);
  assert_non_null(bc);
  memset(bc + 11, 0, 4); /* program.bc's length: 0 */
  kiln__kcache_key key;
  memcpy(key.b, buf + 24, sizeof key.b);
  kiln__kcache_entry_header(buf, "program", &key, pay, pay_bytes, 1);
  f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, n, f), n);
  fclose(f);
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(ctx, s, 4, NULL, &code)); /* PoCL would have aborted here */
  assert_int_equal(code, expected_code(4));
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.disk_hits, 1);
  assert_int_equal(info.healed, 1); /* the refused entry, deleted */
  assert_int_equal(info.stores, 2); /* and stored anew, whole */
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(ctx, s, 4, NULL, &code));
  assert_int_equal(code, expected_code(4));
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.disk_hits, 2);
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
  /* Sources 2 and 3: no other test of the file builds them, so no process outside the
   * race writes PoCL's cache (the tests share one POCL_CACHE_DIR) for them. */
  uint32_t codes[2] = {expected_code(2), expected_code(3)};
  kt_kc_race r = {root, KILN_BACKEND_OPENCL, 3, 6, 2, codes, 0, NULL, 0, 0, 0, 0, 0, 2};
  unsigned left_tmp = 99, bad = 99;
  int failed = kt_kc_race_run(&r, &left_tmp, &bad);
  rm_rf(dir);
  print_message("%llu builds: %llu from the directory, %llu misses, %llu stores\n",
                (unsigned long long)r.builds_done, (unsigned long long)r.disk_hits,
                (unsigned long long)r.misses, (unsigned long long)r.stores);
  assert_int_equal(failed, 0);
  assert_int_equal(r.builds_done, 18);
  /* The build lock: the processes take turns, so each kernel is compiled once in all
   * and every other build loads the entry (PoCL 3.1 aborted on a binary serialised
   * while another process still wrote its own cache's program.bc). */
  assert_int_equal(r.misses, 2);
  assert_int_equal(r.stores, 2);
  assert_true(r.disk_hits >= 18 - 6 - 2);
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
      cmocka_unit_test(binary_with_empty_program_bc_is_refused_not_fatal),
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
