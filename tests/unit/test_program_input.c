/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock */
/* kiln-test-env: KILN_CACHE=off */
/* Bad input to kiln_program_create and kiln_kernel_create (src/core/program.c): every
 * refusal names the value and what to do, the out-parameter is NULL, nothing leaks (the
 * test allocator's teardown fails on a live block). On a backend that compiles source
 * (OpenCL here) also: a source without kernels, more kernels than a program holds, a
 * kernel the parser sees but the compiler does not (inside #if 0), and a host
 * allocation failing at each step of a create (with the compile cache off: a cache
 * step that fails falls back to compiling, which test_kcache covers). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "test_alloc.h"

#define PROGRAM_MAX_KERNELS 64 /* src/core/program.c's MAX_KERNELS_PER_PROGRAM */

static const char *const one_kernel =
    "KILN_KERNEL void twice(KILN_GLOBAL float *x) { x[kiln_global_id(0)] *= 2.0f; }\n";

/* Whether the backend compiles dialect source (OpenCL here; the mock's fake compiler and
 * the CPU backend where they have one): asked, not assumed. */
static int compiles_source(kiln_context ctx) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = one_kernel;
  kiln_program p = NULL;
  kiln_status st = kiln_program_create(ctx, &d, &p);
  if (st == KILN_SUCCESS)
    KT_OK(kiln_program_destroy(p));
  else
    assert_int_equal(st, KILN_ERROR_UNSUPPORTED);
  return st == KILN_SUCCESS;
}

static void create_refusals(void **state) {
  kt_env *env = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = one_kernel;
  d.name = "input.kiln";
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_program_create(env->ctx, &d, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "program (the out-parameter) is NULL");
  KT_EXPECT(kiln_program_create(NULL, &d, &p), KILN_ERROR_INVALID_HANDLE);
  assert_null(p);
  p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_program_create(env->ctx, NULL, &p), KILN_ERROR_INVALID_ARGUMENT,
                "desc is NULL");
  assert_null(p);
  kiln_program_desc small = d;
  small.struct_size = 8;
  KT_EXPECT_MSG(kiln_program_create(env->ctx, &small, &p), KILN_ERROR_INVALID_ARGUMENT,
                "struct_size is 8");
  KT_MSG_HAS("KILN_PROGRAM_DESC_INIT");
  kiln_program_desc nosrc = d;
  nosrc.source = NULL;
  KT_EXPECT_MSG(kiln_program_create(env->ctx, &nosrc, &p), KILN_ERROR_INVALID_ARGUMENT,
                "desc->source is NULL");
  assert_null(p);
  if (!compiles_source(env->ctx)) { /* the backend says it compiles no source */
    KT_EXPECT_MSG(kiln_program_create(env->ctx, &d, &p), KILN_ERROR_UNSUPPORTED, "input.kiln");
    assert_null(p);
    return;
  }
  kiln_program_desc none = d;
  none.source = "/* only a comment */\nint helper(int x) { return x; }\n";
  KT_EXPECT_MSG(kiln_program_create(env->ctx, &none, &p), KILN_ERROR_COMPILE_FAILED,
                "no KILN_KERNEL function found");
  KT_MSG_HAS("input.kiln");
  assert_non_null(strstr(kiln_last_build_log(), "no KILN_KERNEL"));
  assert_null(p);

  /* one kernel more than a program holds: refused before compiling, naming the count */
  size_t cap = (PROGRAM_MAX_KERNELS + 1) * 96 + 1;
  char *many = malloc(cap);
  assert_non_null(many);
  size_t at = 0;
  for (int i = 0; i <= PROGRAM_MAX_KERNELS; i++)
    at += (size_t)snprintf(many + at, cap - at,
                           "KILN_KERNEL void k%02d(KILN_GLOBAL int *x) { x[0] = %d; }\n", i, i);
  kiln_program_desc toomany = d;
  toomany.source = many;
  char num[32];
  snprintf(num, sizeof num, "%d kernels", PROGRAM_MAX_KERNELS + 1);
  KT_EXPECT_MSG(kiln_program_create(env->ctx, &toomany, &p), KILN_ERROR_LIMIT_EXCEEDED, num);
  KT_MSG_HAS("k63"); /* the last that fits */
  assert_null(p);
  free(many);
}

static void kernel_create_refusals(void **state) {
  kt_env *env = *state;
  if (kt_backend() != KILN_BACKEND_OPENCL)
    skip(); /* needs a compiler that runs the preprocessor and names a missing kernel */
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = "KILN_KERNEL void seen(KILN_GLOBAL int *x) { x[0] = 1; }\n"
             "#if 0\n"
             "KILN_KERNEL void hidden(KILN_GLOBAL int *x) { x[0] = 2; }\n"
             "#endif\n";
  d.name = "hidden.kiln";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &d, &p));
  kiln_kernel k = (kiln_kernel)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_kernel_create(p, "seen", NULL), KILN_ERROR_INVALID_ARGUMENT,
                "kernel (the out-parameter) is NULL");
  KT_EXPECT(kiln_kernel_create(NULL, "seen", &k), KILN_ERROR_INVALID_HANDLE);
  assert_null(k);
  KT_EXPECT_MSG(kiln_kernel_create(p, NULL, &k), KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  KT_EXPECT_MSG(kiln_kernel_create(p, "absent", &k), KILN_ERROR_INVALID_ARGUMENT,
                "has no kernel 'absent'");
  KT_MSG_HAS("it has: seen, hidden");
  /* the parser sees `hidden`, the compiler does not: said in kiln's words, with the
   * backend's code kept */
  kiln_status st = kiln_kernel_create(p, "hidden", &k);
  assert_int_not_equal(st, KILN_SUCCESS);
  assert_null(k);
  KT_MSG_HAS("found in the source by kiln's parser");
  KT_MSG_HAS("line 3");
  assert_string_equal(kiln_last_error()->native_name, kt_backend() == KILN_BACKEND_CPU
                                                          ? "CPU_KERNEL_NOT_FOUND"
                                                          : "CL_INVALID_KERNEL_NAME");
  assert_non_null(strstr(kiln_last_error()->suggestion, "#if 0"));
  KT_OK(kiln_kernel_create(p, "seen", &k));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

/* A host allocation failing at each step of program and kernel creation: the create
 * fails with OUT_OF_HOST_MEMORY (or the backend's own status for its allocations), the
 * out-parameter stays NULL, and a later create works. Teardown checks for leaks. */
static void create_allocation_failures(void **state) {
  kt_env *env = *state;
  if (!compiles_source(env->ctx))
    skip();
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = one_kernel;
  d.name = "faults.kiln";
  int failures = 0;
  for (size_t n = 1; n < 64; n++) {
    kiln_program p = NULL;
    kiln_kernel k = NULL;
    kt_alloc_fail_nth(n);
    kiln_status st = kiln_program_create(env->ctx, &d, &p);
    if (st == KILN_SUCCESS)
      st = kiln_kernel_create(p, "twice", &k);
    size_t injected = kt_alloc_failures();
    kt_alloc_fail_none();
    if (k)
      KT_OK(kiln_kernel_destroy(k));
    if (p)
      KT_OK(kiln_program_destroy(p));
    if (!injected) {
      KT_OK(st);
      break; /* every host allocation of the two creates has failed once */
    }
    assert_int_not_equal(st, KILN_SUCCESS);
    assert_int_not_equal(st, KILN_ERROR_INTERNAL);
    failures++;
  }
  assert_true(failures >= 3); /* the signature table, its copy, the rewritten text, ... */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(create_refusals, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_create_refusals, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(create_allocation_failures, kt_setup, kt_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
