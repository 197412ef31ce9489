/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* kiln-test-link: static */
/* The compile cache on the CPU backend: a dialect program compiled by the host compiler
 * is stored as its shared object, and a build from the directory (no compiler run)
 * loads it and runs the same kernel; a second build while the first program lives
 * shares it; other options are another entry. */
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

/* Files under the cache directory (entries, and nothing half-written). */
static void count_entries(const char *dir, unsigned *n) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%u", n), 1);
  pclose(f);
}

static void shared_object_from_the_cache_runs_the_same_kernel(void **state) {
  (void)state;
  char dir[] = "/tmp/kiln-kcache-cpu-XXXXXX";
  assert_non_null(mkdtemp(dir));
  kiln__kcache_reset(dir);
  kiln_device dev = kt_cpu_device();
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  uint32_t code;
  KT_OK(kt_kc_build_run(ctx, s, 3, NULL, &code)); /* compiled, stored */
  assert_int_equal(code, expected_code(3));
  kiln_cache_info info = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.stores, 1);
  assert_int_equal(info.entries, 1);
  assert_true(info.bytes > 1000); /* a shared object, not a stub */
  kiln__kcache_drop_memory();
  KT_OK(kt_kc_build_run(ctx, s, 3, NULL, &code)); /* from the directory */
  assert_int_equal(code, expected_code(3));
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.disk_hits, 1);
  assert_int_equal(info.stores, 1);
  /* a build while a program of the same key lives shares it */
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  char src[512];
  kt_kc_source(4, src, sizeof src);
  d.source = src;
  kiln_program p1, p2;
  KT_OK(kiln_program_create(ctx, &d, &p1));
  KT_OK(kiln_program_create(ctx, &d, &p2));
  KT_OK(kiln_program_destroy(p1));
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p2, "k4", &k)); /* p2 works after p1 is gone */
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p2));
  /* other options: another entry */
  KT_OK(kt_kc_build_run(ctx, s, 3, "-cl-mad-enable", &code));
  assert_int_equal(code, expected_code(3));
  KT_OK(kiln_cache_stats(&info));
  assert_int_equal(info.entries, 3);
  unsigned files = 0;
  count_entries(dir, &files);
  assert_true(files >= 3);
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  kiln__kcache_reset(NULL);
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shared_object_from_the_cache_runs_the_same_kernel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
