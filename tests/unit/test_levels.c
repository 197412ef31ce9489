/* SPDX-License-Identifier: MIT */
/* Feature levels of the dialect (docs/kernels.md "Feature levels"): the scoped-atomics
 * kernels of tests/kernels/scoped.kiln give the same results on cpu and PoCL (OpenCL C
 * 3.0 there, and only for programs that declare the level); a level's names without
 * the declaration, an unknown level and a -cl-std= option with the level are refused
 * before any compiler runs; a device without the level (the mock; OpenCL capability
 * sets without OpenCL C 3.0, an order or a scope) is refused naming what it lacks.
 * tests/dialect.cmake runs the comparisons against CUDA too (KILN_DIALECT_OTHER=cuda,
 * label cuda: the GPU machine's scripts/gpu-check.sh).
 * kiln-test-labels: unit cpu opencl mock
 * kiln-test-link: static
 * kiln-test-env: KILN_MOCK=1 */
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"
#include "kiln_test.h"
#include "kt_dialect.h"

static kiln_status try_build(kiln_context ctx, const char *source, const char *options,
                             kiln_program *p) {
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "levels";
  pd.options = options;
  return kiln_program_create(ctx, &pd, p);
}

/* Runs kernel `name` of `source` on one backend over r; buffers in[i] (bytes[i] each,
 * NULL: zeros) are its first nbuf arguments, then the 4-byte scalar n; out[i] receives
 * them after the launch (caller frees). */
static void run(kiln_backend_kind kind, const char *source, const char *name, kiln_range r,
                const void *const *in, const size_t *bytes, int nbuf, unsigned n, void **out) {
  kt_side d;
  kt_side_open(&d, kind);
  kiln_program p = NULL;
  if (try_build(d.ctx, source, NULL, &p) != KILN_SUCCESS)
    fail_msg("%s: %s\n%s", name, kiln_last_error()->message, kiln_last_build_log());
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, name, &k));
  kiln_buffer b[6];
  kiln_arg a[7];
  for (int i = 0; i < nbuf; i++) {
    b[i] = kt_buffer(d.ctx, bytes[i]);
    if (in[i]) {
      KT_OK(kiln_buffer_write(b[i], 0, bytes[i], in[i]));
    } else {
      unsigned char zero = 0;
      KT_OK(kiln_buffer_fill(b[i], 0, bytes[i], &zero, 1));
    }
    a[i] = kiln_arg_buffer(b[i]);
  }
  a[nbuf] = kiln_arg_scalar(&n, sizeof n);
  KT_OK(kiln_launch(d.s, k, &r, a, (size_t)nbuf + 1));
  for (int i = 0; i < nbuf; i++) {
    out[i] = malloc(bytes[i]);
    assert_non_null(out[i]);
    KT_OK(kiln_buffer_read(b[i], 0, bytes[i], out[i]));
    KT_OK(kiln_buffer_destroy(b[i]));
  }
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
  kt_side_close(&d);
}

/* The backends compared: cpu, and PoCL where there (OpenCL device 0). In sanitizer
 * trees only cpu, as test_dialect_cpu does (its kernels compiled with the sanitizer;
 * the comparison is the release tree's). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COMPARE_WITH_POCL 0
#else
#define COMPARE_WITH_POCL 1
#endif
/* KILN_DIALECT_OTHER=cuda (tests/dialect.cmake, for scripts/gpu-check.sh): CUDA's
 * device 0 instead of PoCL. */
static int sides(kiln_backend_kind kinds[2]) {
  kinds[0] = KILN_BACKEND_CPU;
  kinds[1] = kt_dialect_other();
  if (kinds[1] == KILN_BACKEND_CUDA)
    return 2;
  return COMPARE_WITH_POCL && kt_backend_available(KILN_BACKEND_OPENCL) ? 2 : 1;
}

static void last_group_sums_on_cpu_and_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("scoped.kiln");
  unsigned n = 100003, groups = (n + 63) / 64;
  unsigned *in = malloc(n * sizeof *in);
  assert_non_null(in);
  unsigned want = 0;
  for (unsigned i = 0; i < n; i++)
    want += in[i] = (unsigned)((i * 2654435761u) >> 20);
  const void *init[] = {in, NULL, NULL, NULL};
  size_t bytes[] = {n * 4, groups * 4, 4, 4};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 64;
  kiln_backend_kind kinds[2];
  for (int s = 0, ns = sides(kinds); s < ns; s++) {
    void *out[4];
    run(kinds[s], src, "last_group_sums", r, init, bytes, 4, n, out);
    assert_int_equal(*(unsigned *)out[2], groups); /* every group took one ticket */
    assert_int_equal(*(unsigned *)out[3], want);   /* the last one saw every partial */
    unsigned sum = 0;
    for (unsigned g = 0; g < groups; g++)
      sum += ((unsigned *)out[1])[g];
    assert_int_equal(sum, want);
    kt_free_all(out, 4);
  }
  free(in);
  free(src);
}

static void every_scoped_operation_matches(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("scoped.kiln");
  unsigned n = 70001;
  int s0[5] = {0, 0, 1000, -1000, 0};
  unsigned u0[5] = {0xffffffffu, 0, 0, 0, 0};
  const void *init[] = {s0, u0, NULL, NULL};
  size_t bytes[] = {sizeof s0, sizeof u0, n * 4, 71 * 4};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 128;
  kiln_backend_kind kinds[2];
  void *first[4] = {NULL};
  for (int s = 0, ns = sides(kinds); s < ns; s++) {
    void *out[4];
    run(kinds[s], src, "scoped_ops32", r, init, bytes, 4, n, out);
    const int *si = out[0];
    const unsigned *su = out[1];
    assert_int_equal(si[0], (int)((unsigned long long)n * (n - 1) / 2));
    assert_int_equal(si[1], -(int)((unsigned long long)n * (n - 1) / 2));
    assert_int_equal(si[2], -500);
    assert_int_equal(si[3], 499);
    unsigned winners = 0;
    for (unsigned i = 0; i < n; i++)
      winners += (unsigned)((int *)out[2])[i];
    assert_int_equal(winners, 1);
    assert_int_equal(((int *)out[2])[si[4] - 1], 1);
    assert_int_equal(su[0], 0x80000000u); /* i % 31 never clears bit 31 */
    assert_int_equal(su[1], (1u << 29) - 1u);
    assert_int_equal(su[3], 7u);
    for (unsigned k = 0; k < 71; k++)
      assert_int_equal(((unsigned *)out[3])[k], k * 1000u + 1u);
    if (s == 0) {
      memcpy(first, out, sizeof first);
      continue;
    }
    /* the order-free results byte for byte (s[4] and won name the winner: any one) */
    assert_memory_equal(out[0], first[0], 4 * sizeof(int));
    assert_memory_equal(out[1], first[1], sizeof u0);
    kt_free_all(out, 4);
  }
  kt_free_all(first, 4);
  free(src);
}

static void every_scoped_operation_64(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("scoped.kiln");
  unsigned n = 30011;
  long long s0[5] = {0, 0, 1000, -1000, 0};
  unsigned long long u0[4] = {0, ~0ull, 0, 0};
  const void *init[] = {s0, u0};
  size_t bytes[] = {sizeof s0, sizeof u0};
  kiln_backend_kind kinds[2];
  unsigned long long x = 0;
  for (unsigned i = 0; i < n; i++)
    x ^= (unsigned long long)i * 0x9e3779b97f4a7c15ull;
  for (int s = 0, ns = sides(kinds); s < ns; s++) {
    void *out[2];
    run(kinds[s], src, "scoped_ops64", kiln_range_1d(n), init, bytes, 2, n, out);
    const long long *si = out[0];
    const unsigned long long *su = out[1];
    assert_true(si[0] == (long long)((unsigned long long)n * (n - 1) / 2) << 20);
    assert_true(si[1] == -(long long)((unsigned long long)n * (n - 1) / 2));
    assert_true(si[2] == -500 && si[3] == 499 && si[4] == 5);
    assert_true(su[0] == (1ull << 61) - 1ull);
    assert_true(su[1] == ~((1ull << 59) - 1ull));
    assert_true(su[2] == x);
    assert_true(su[3] == 9ull);
    kt_free_all(out, 2);
  }
  free(src);
}

/* PoCL compiles programs that declare the level as OpenCL C 3.0 (PoCL 3.1 takes 3.0 as
 * its default too), with the level's part of the prelude, which the others lack. */
static void only_level_programs_are_opencl_c_3(void **state) {
  (void)state;
  if (!kt_backend_available(KILN_BACKEND_OPENCL))
    skip();
  static const char base[] = "KILN_KERNEL void v(KILN_GLOBAL int *o, uint n) {\n"
                             "  if (kiln_global_id(0) == 0) o[0] = __OPENCL_C_VERSION__;\n"
                             "#ifdef KILN__LEVEL_SCOPED_ATOMICS\n"
                             "  if (kiln_global_id(0) == 0) o[1] = 1;\n"
                             "#endif\n}\n";
  char level[sizeof base + 64];
  snprintf(level, sizeof level, "KILN_FEATURE_LEVEL(scoped_atomics);\n%s", base);
  const void *init[] = {NULL};
  size_t bytes[] = {8};
  void *out[1];
  run(KILN_BACKEND_OPENCL, base, "v", kiln_range_1d(1), init, bytes, 1, 1, out);
  assert_int_equal(((int *)out[0])[1], 0);
  free(out[0]);
  run(KILN_BACKEND_OPENCL, level, "v", kiln_range_1d(1), init, bytes, 1, 1, out);
  assert_int_equal(((int *)out[0])[0], 300);
  assert_int_equal(((int *)out[0])[1], 1);
  free(out[0]);
}

/* Refused before any compiler runs, with the line and what to add. */
static void undeclared_level_names_are_refused(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  static const char *const uses[] = {
      "kiln_fence(KILN_ORDER_ACQ_REL, KILN_SCOPE_DEVICE);",
      "kiln_atomic_add_explicit(o, 1, KILN_ORDER_RELAXED, KILN_SCOPE_DEVICE);",
      "o[1] = KILN_SCOPE_WORK_GROUP;",
  };
  static const char *const names[] = {"'kiln_fence'", "'kiln_atomic_add_explicit'",
                                      "'KILN_SCOPE_WORK_GROUP'"};
  for (size_t i = 0; i < 3; i++) {
    char src[512];
    snprintf(src, sizeof src,
             "/* kiln_fence in a comment is no use */\n"
             "KILN_KERNEL void v(KILN_GLOBAL int *o) {\n  %s\n}\n",
             uses[i]);
    kiln_program p = (kiln_program)1;
    KT_EXPECT_MSG(try_build(d.ctx, src, NULL, &p), KILN_ERROR_COMPILE_FAILED, names[i]);
    assert_null(p);
    KT_MSG_HAS("line 3");
    KT_MSG_HAS("belongs to the feature level 'scoped_atomics'");
    KT_MSG_HAS("KILN_FEATURE_LEVEL(scoped_atomics);");
    assert_non_null(strstr(kiln_last_build_log(), "line 3"));
  }
  kt_side_close(&d);
}

static void bad_level_declarations_are_refused(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  static const char body[] = "KILN_KERNEL void v(KILN_GLOBAL int *o) { o[0] = 1; }\n";
  char src[256];
  kiln_program p;
  snprintf(src, sizeof src, "KILN_FEATURE_LEVEL(scoped_fences);\n%s", body);
  KT_EXPECT_MSG(try_build(d.ctx, src, NULL, &p), KILN_ERROR_COMPILE_FAILED,
                "unknown feature level 'scoped_fences'");
  KT_MSG_HAS("scoped_atomics");
  snprintf(src, sizeof src, "KILN_FEATURE_LEVEL;\n%s", body);
  KT_EXPECT_MSG(try_build(d.ctx, src, NULL, &p), KILN_ERROR_COMPILE_FAILED,
                "KILN_FEATURE_LEVEL needs a level name in parentheses");
  snprintf(src, sizeof src, "KILN_FEATURE_LEVEL(scoped_atomics, base);\n%s", body);
  KT_EXPECT_MSG(try_build(d.ctx, src, NULL, &p), KILN_ERROR_COMPILE_FAILED,
                "expected one level name and ')'");
  /* the level picks the language standard: an option that picks one is refused */
  snprintf(src, sizeof src, "KILN_FEATURE_LEVEL(scoped_atomics);\n%s", body);
  KT_EXPECT_MSG(try_build(d.ctx, src, "-cl-std=CL1.2", &p), KILN_ERROR_INVALID_ARGUMENT,
                "remove -cl-std=");
  KT_MSG_HAS("'scoped_atomics'");
  /* once: a second declaration is refused, naming the first */
  snprintf(src, sizeof src,
           "KILN_FEATURE_LEVEL(scoped_atomics);\nKILN_FEATURE_LEVEL ( scoped_atomics ) ;\n%s",
           body);
  KT_EXPECT_MSG(try_build(d.ctx, src, NULL, &p), KILN_ERROR_COMPILE_FAILED,
                "line 2, column 1: a second KILN_FEATURE_LEVEL (the first is on line 1)");
  /* declared and unused is fine */
  snprintf(src, sizeof src, "KILN_FEATURE_LEVEL(scoped_atomics);\n%s", body);
  KT_OK(try_build(d.ctx, src, NULL, &p));
  KT_OK(kiln_program_destroy(p));
  kt_side_close(&d);
}

/* A device without the level: the mock (the base level only), at program creation. */
static void mock_device_lacks_the_level(void **state) {
  (void)state;
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  static const char src[] = "KILN_FEATURE_LEVEL(scoped_atomics);\n"
                            "KILN_KERNEL void v(KILN_GLOBAL uint *o) {\n"
                            "  kiln_atomic_add_explicit(o, 1u, KILN_ORDER_RELAXED, "
                            "KILN_SCOPE_DEVICE);\n}\n";
  kiln_program p = (kiln_program)1;
  KT_EXPECT_MSG(try_build(ctx, src, NULL, &p), KILN_ERROR_UNSUPPORTED,
                "declares the feature level 'scoped_atomics', which backend 'mock'");
  assert_null(p);
  KT_MSG_HAS("base level only");
  assert_non_null(kiln_last_error()->suggestion);
  KT_OK(kiln_context_destroy(ctx));
}

/* What the OpenCL backend decides from a device's answers. */
static void opencl_capabilities_decide_the_level(void **state) {
  (void)state;
  char why[192];
  cl_bitfield all = 0x77, fence = 0x3f; /* PoCL 3.1's answers */
  assert_false(kiln__ocl_level_missing(true, all, fence, why, sizeof why));
  assert_true(kiln__ocl_level_missing(false, all, fence, why, sizeof why));
  assert_non_null(strstr(why, "OpenCL C 3.0"));
  assert_true(kiln__ocl_level_missing(true, all & ~(cl_bitfield)(1u << 5), fence, why, sizeof why));
  assert_non_null(strstr(why, "CL_DEVICE_ATOMIC_SCOPE_DEVICE in CL_DEVICE_ATOMIC_MEMORY"));
  assert_true(kiln__ocl_level_missing(true, all, fence & ~(cl_bitfield)(1u << 2), why, sizeof why));
  assert_non_null(strstr(why, "CL_DEVICE_ATOMIC_ORDER_SEQ_CST in CL_DEVICE_ATOMIC_FENCE"));
  assert_true(kiln__ocl_level_missing(true, 0x1, 0x1, why, sizeof why));
  assert_non_null(strstr(why, "ACQ_REL"));
}

/* Every host allocation of kiln_program_create of a program with a level (the level's
 * options among them) failed in turn: each run fails cleanly or succeeds, nothing
 * leaks (kt_teardown checks), and the sweep reaches the end. */
static void level_program_allocation_failures(void **state) {
  kt_env *env = *state;
  static const char src[] = "KILN_FEATURE_LEVEL(scoped_atomics);\n"
                            "KILN_KERNEL void v(KILN_GLOBAL uint *o) {\n"
                            "  kiln_atomic_add_explicit(o, 1u, KILN_ORDER_RELAXED, "
                            "KILN_SCOPE_DEVICE);\n}\n";
  kiln_program p = NULL;
  KT_OK(try_build(env->ctx, src, "-DX=1", &p)); /* compiled once: the sweep loads it */
  KT_OK(kiln_program_destroy(p));
  int failures = 0;
  size_t nth = 1;
  for (; nth < 400; nth++) {
    kt_alloc_fail_nth(nth);
    kiln_status st = try_build(env->ctx, src, "-DX=1", &p);
    size_t injected = kt_alloc_failures();
    kt_alloc_fail_none();
    if (st == KILN_SUCCESS) {
      KT_OK(kiln_program_destroy(p));
      if (!injected)
        break;
      continue;
    }
    assert_null(p);
    assert_true(injected);
    assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
    failures++;
  }
  assert_true(nth < 400);
  assert_true(failures >= 3); /* the signature table, its copy, the rewrite, the options */
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(last_group_sums_on_cpu_and_pocl),
      cmocka_unit_test(every_scoped_operation_matches),
      cmocka_unit_test(every_scoped_operation_64),
      cmocka_unit_test(only_level_programs_are_opencl_c_3),
      cmocka_unit_test(undeclared_level_names_are_refused),
      cmocka_unit_test(bad_level_declarations_are_refused),
      cmocka_unit_test(mock_device_lacks_the_level),
      cmocka_unit_test(opencl_capabilities_decide_the_level),
      cmocka_unit_test_setup_teardown(level_program_allocation_failures, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU) || !kt_backend_available(kt_dialect_other())) {
    fprintf(stderr, "SKIP: the cpu or the %s backend is not available\n",
            kiln_backend_name(kt_dialect_other()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
