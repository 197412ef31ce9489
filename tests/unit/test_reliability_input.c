/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu opencl unit */
/* Input that kiln used to take in silently or report badly (issue 12): a NUL inside
 * a program's source_bytes (the parser and the device compiler would see different
 * programs) and a kernel the parser found that the compiler did not build (hidden by
 * the preprocessor). OpenCL tests skip (cmocka skip) without an OpenCL device; the
 * CUDA side is in test_reliability_input_cuda.c. */
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

/* ---------------------------------------------------------------- helpers */

/* kt_teardown's environment on OpenCL device 0; *state stays NULL without one (the
 * test then skips). */
static int ocl_setup(void **state) {
  *state = NULL;
  if (!kt_backend_available(KILN_BACKEND_OPENCL)) return 0;
  kt_env *env = calloc(1, sizeof *env);
  if (!env) return -1;
  *state = env;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &env->device));
  KT_OK(kt_alloc_install());
  env->alloc_installed = 1;
  KT_OK(kiln_context_create(env->device, NULL, &env->ctx));
  KT_OK(kiln_stream_create(env->ctx, NULL, &env->stream));
  return 0;
}

static kt_env *ocl_env(void **state) {
  if (!*state) {
    fprintf(stderr, "SKIP: no OpenCL device\n");
    skip();
  }
  return *state;
}

static kiln_status create_program(kiln_context ctx, const char *source, size_t bytes,
                                  kiln_program *p) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = source;
  d.source_bytes = bytes;
  d.name = "reliability.kiln";
  return kiln_program_create(ctx, &d, p);
}

/* ------------------------------------------------- item 1: parser and compiler agree */

/* The first kernel, then a NUL, then a second kernel: source_bytes covers both. */
static const char nul_source[] =
    "KILN_KERNEL void k(int a) { }\0KILN_KERNEL void after_nul(int a) { }";
#define NUL_OFFSET 29 /* strlen of the first kernel */

static void source_nul_refused_on_cpu(void **state) {
  kt_env *env = *state;
  assert_int_equal(strlen(nul_source), NUL_OFFSET);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  /* Checked before the backend is asked (the CPU backend compiles no source). */
  KT_EXPECT_MSG(create_program(env->ctx, nul_source, sizeof nul_source - 1, &p),
                KILN_ERROR_INVALID_ARGUMENT, "NUL byte at offset 29");
  assert_null(p);
  KT_MSG_HAS("line 1, column 30");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "remove the NUL"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "source_bytes = 29"));
}

static void source_bytes_counting_the_terminator_refused(void **state) {
  kt_env *env = *state;
  const char *src = "KILN_KERNEL void k(int a) { }";
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, src, strlen(src) + 1, &p), KILN_ERROR_INVALID_ARGUMENT,
                "terminating NUL");
  assert_null(p);
  KT_MSG_HAS("offset 29");
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "source_bytes = 29"));
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "without the terminator"));
}

/* On OpenCL the program used to build; kiln_kernel_create(p, "after_nul") then failed
 * with a raw CL_INVALID_KERNEL_NAME. */
static void source_nul_refused_on_opencl(void **state) {
  kt_env *env = ocl_env(state);
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT_MSG(create_program(env->ctx, nul_source, sizeof nul_source - 1, &p),
                KILN_ERROR_INVALID_ARGUMENT, "NUL byte at offset 29");
  assert_null(p);
  assert_int_equal(kiln_last_error()->backend, KILN_BACKEND_NONE);
  /* Without the NUL's part it builds. */
  KT_OK(create_program(env->ctx, nul_source, NUL_OFFSET, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "k", &k));
  KT_EXPECT_MSG(kiln_kernel_create(p, "after_nul", &k), KILN_ERROR_INVALID_ARGUMENT, "after_nul");
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

/* kiln reads signatures before preprocessing, so a kernel inside `#if 0` is one it
 * knows and the compiler never built. */
static const char hidden_source[] = "KILN_KERNEL void k(int a) { }\n"
                                    "#if 0\n"
                                    "KILN_KERNEL void hidden_by_if0(int a) { }\n"
                                    "#endif\n";

static void kernel_hidden_by_the_preprocessor_named_on_opencl(void **state) {
  kt_env *env = ocl_env(state);
  kiln_program p = NULL;
  KT_OK(create_program(env->ctx, hidden_source, 0, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "k", &k));
  KT_OK(kiln_kernel_destroy(k));
  k = (kiln_kernel)(uintptr_t)0x1;
  kiln_status st = kiln_kernel_create(p, "hidden_by_if0", &k);
  assert_int_not_equal(st, KILN_SUCCESS);
  assert_null(k);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, st);
  KT_MSG_HAS("kernel 'hidden_by_if0' was found in the source by kiln's parser");
  KT_MSG_HAS("line 3");
  KT_MSG_HAS("is not in the program the opencl compiler built");
  /* the native code stays */
  assert_int_equal(e->backend, KILN_BACKEND_OPENCL);
  assert_string_equal(e->native_name, "CL_INVALID_KERNEL_NAME");
  assert_int_equal(e->native_code, -46);
  KT_MSG_HAS("CL_INVALID_KERNEL_NAME");
  assert_non_null(kt_strcasestr(e->suggestion, "#if 0"));
  assert_string_equal(e->function, "kiln_kernel_create");
  KT_OK(kiln_program_destroy(p));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(source_nul_refused_on_cpu, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(source_bytes_counting_the_terminator_refused, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(source_nul_refused_on_opencl, ocl_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_hidden_by_the_preprocessor_named_on_opencl,
                                      ocl_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
