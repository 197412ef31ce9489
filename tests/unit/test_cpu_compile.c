/* SPDX-License-Identifier: MIT */
/* The CPU backend's compile path as the compile cache will use it
 * (src/backends/cpu/compile.c): the cache id names the compiler, its version and every
 * flag and changes with the options; compile gives shared-object bytes; each load of
 * the same bytes is its own instance (its own statics), and unloading one leaves the
 * other working.
 * kiln-test-labels: unit cpu
 * kiln-test-link: static */
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_internal.h"
#include "core/kparse.h"
#include "core/prelude.h"
#include "kiln_test.h"

static const char source[] = "KILN_KERNEL void count(KILN_GLOBAL int *out) {\n"
                             "  static int calls;\n"
                             "  out[0] = ++calls;\n"
                             "}\n";

/* The source rewritten for C (kiln__cpu_compile's input). */
static char *rewrite_c(size_t *len) {
  static kiln__kfunc funcs[4];
  size_t count = 0, need = 0;
  assert_int_equal(kiln__kparse(source, strlen(source), funcs, 4, &count), KILN_SUCCESS);
  assert_int_equal(
      kiln__dialect_rewrite(source, strlen(source), funcs, count, KILN__TARGET_C, NULL, 0, &need),
      KILN_SUCCESS);
  char *text = malloc(need + 1);
  assert_non_null(text);
  assert_int_equal(kiln__dialect_rewrite(source, strlen(source), funcs, count, KILN__TARGET_C, text,
                                         need + 1, len),
                   KILN_SUCCESS);
  return text;
}

static void cache_id_covers_compiler_and_flags(void **state) {
  (void)state;
  char a[2048], b[2048];
  assert_int_equal(kiln__cpu_cache_id("", a, sizeof a), KILN_SUCCESS);
  assert_int_equal(kiln__cpu_cache_id("-DX=1 -cl-fast-relaxed-math", b, sizeof b), KILN_SUCCESS);
  assert_true(a[0] == '/'); /* the compiler's absolute path first */
  assert_non_null(strstr(a, "-fsigned-char"));
  assert_non_null(strstr(b, "-DX=1"));
  assert_non_null(strstr(b, "-ffast-math"));
  assert_string_not_equal(a, b);
  char again[2048];
  assert_int_equal(kiln__cpu_cache_id("", again, sizeof again), KILN_SUCCESS);
  assert_string_equal(a, again);
  char tiny[8];
  assert_int_equal(kiln__cpu_cache_id("", tiny, sizeof tiny), KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(kiln__cpu_cache_id("-fplugin=x", a, sizeof a), KILN_ERROR_INVALID_ARGUMENT);
}

static void loads_of_one_object_are_independent(void **state) {
  (void)state;
  size_t len = 0;
  char *text = rewrite_c(&len);
  void *so = NULL;
  size_t bytes = 0;
  assert_int_equal(kiln__cpu_compile(text, len, "", "count.kiln", &so, &bytes), KILN_SUCCESS);
  assert_true(bytes > 4 && !memcmp(so, "\177ELF", 4));
  void *one = NULL, *two = NULL;
  assert_int_equal(kiln__cpu_load(so, bytes, "count.kiln", &one), KILN_SUCCESS);
  assert_int_equal(kiln__cpu_load(so, bytes, "count.kiln", &two), KILN_SUCCESS);
  void *f1 = kiln__cpu_symbol(one, "kiln__item_count");
  void *f2 = kiln__cpu_symbol(two, "kiln__item_count");
  assert_non_null(f1);
  assert_non_null(f2);
  assert_ptr_not_equal(f1, f2);
  assert_null(kiln__cpu_symbol(one, "kiln__item_absent"));
  kiln__cpu_item_fn item1, item2;
  memcpy(&item1, &f1, sizeof f1);
  memcpy(&item2, &f2, sizeof f2);
  kiln__cpu_wi wi;
  memset(&wi, 0, sizeof wi);
  for (int d = 0; d < 3; d++)
    wi.lsz[d] = wi.ngr[d] = wi.gsz[d] = 1;
  int out = 0;
  void *args[1] = {&out};
  item1(&wi, args);
  item1(&wi, args);
  assert_int_equal(out, 2);
  kiln__cpu_unload(one);
  item2(&wi, args); /* its own static: first call */
  assert_int_equal(out, 1);
  kiln__cpu_unload(two);
  kiln__free(so, bytes);
  free(text);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cache_id_covers_compiler_and_flags),
      cmocka_unit_test(loads_of_one_object_are_independent),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
