/* SPDX-License-Identifier: MIT */
/* The CUDA backend on a real GPU (label `cuda`): a dialect kernel compiled by NVRTC,
 * loaded and launched (vecadd, a reduction with local memory, a guarded global size
 * that is not a multiple of the block); a kernel calling __trap() loses the device
 * (a sticky error: every handle refused with DEVICE_LOST naming the CUDA error) and
 * kiln_device_reset brings it back (primary-context reset + probe), what happened
 * printed for the record. Exits 77 (skipped) where no CUDA device is —
 * every build machine; scripts/gpu-check.sh runs it on a lent GPU.
 * kiln-test-labels: cuda unit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln.h"
#include "kiln_test.h"

static kiln_context ctx;
static kiln_stream s;

static int setup(void **state) {
  (void)state;
  kiln_device d = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_CUDA, 0, &d));
  KT_OK(kiln_context_create(d, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  return 0;
}
static int teardown(void **state) {
  (void)state;
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  return 0;
}

static kiln_kernel kernel(const char *src, const char *name) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = name;
  kiln_program p = NULL;
  kiln_status st = kiln_program_create(ctx, &d, &p);
  if (st != KILN_SUCCESS)
    fail_msg("%s\n%s", kiln_last_error()->message, kiln_last_build_log());
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, name, &k));
  kiln_program_destroy(p);
  return k;
}

static kiln_buffer buffer(size_t bytes) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(ctx, &d, &b));
  return b;
}

static void test_vecadd(void **state) {
  (void)state;
  kiln_kernel k =
      kernel("KILN_KERNEL void vecadd(KILN_GLOBAL const float *a, KILN_GLOBAL const float *b,\n"
             "  KILN_GLOBAL float *c, int n) {\n"
             "  size_t i = kiln_global_id(0); if (i < (size_t)n) c[i] = a[i] + b[i]; }\n",
             "vecadd");
  enum { N = 100003 };
  float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
  for (int i = 0; i < N; i++)
    a[i] = (float)i, b[i] = 2.0f * (float)i;
  kiln_buffer ba = buffer(N * sizeof(float)), bb = buffer(N * sizeof(float)),
              bc = buffer(N * sizeof(float));
  KT_OK(kiln_buffer_write(ba, 0, N * sizeof(float), a));
  KT_OK(kiln_buffer_write(bb, 0, N * sizeof(float), b));
  int n = N;
  kiln_range r = kiln_range_1d(N);
  kiln_arg args[] = {kiln_arg_buffer(ba), kiln_arg_buffer(bb), kiln_arg_buffer(bc),
                     kiln_arg_scalar(&n, 4)};
  KT_OK(kiln_launch(s, k, &r, args, 4));
  KT_OK(kiln_buffer_read(bc, 0, N * sizeof(float), c));
  for (int i = 0; i < N; i++)
    if (c[i] != 3.0f * (float)i)
      fail_msg("c[%d] = %g, expected %g", i, (double)c[i], 3.0 * i);
  kiln_buffer_destroy(ba);
  kiln_buffer_destroy(bb);
  kiln_buffer_destroy(bc);
  kiln_kernel_destroy(k);
  free(a), free(b), free(c);
}

static void test_reduce_local_memory(void **state) {
  (void)state;
  kiln_kernel k = kernel(
      "KILN_KERNEL void reduce_sum(KILN_GLOBAL const float *in, KILN_GLOBAL float *partial,\n"
      "  KILN_LOCAL float *scratch, unsigned int n) {\n"
      "  size_t l = kiln_local_id(0), g = kiln_global_id(0);\n"
      "  scratch[l] = g < n ? in[g] : 0.0f; kiln_barrier();\n"
      "  for (size_t h = kiln_local_size(0) / 2; h > 0; h /= 2) { if (l < h) scratch[l] += "
      "scratch[l + h]; kiln_barrier(); }\n"
      "  if (l == 0) partial[kiln_group_id(0)] = scratch[0]; }\n",
      "reduce_sum");
  enum { N = 10000, L = 256, G = (N + L - 1) / L };
  float in[N], part[G];
  for (int i = 0; i < N; i++)
    in[i] = 1.0f;
  kiln_buffer bi = buffer(sizeof in), bp = buffer(sizeof part);
  KT_OK(kiln_buffer_write(bi, 0, sizeof in, in));
  unsigned n = N;
  kiln_range r = kiln_range_1d(N);
  r.local[0] = L;
  kiln_arg args[] = {kiln_arg_buffer(bi), kiln_arg_buffer(bp), kiln_arg_local(L * sizeof(float)),
                     kiln_arg_scalar(&n, 4)};
  KT_OK(kiln_launch(s, k, &r, args, 4));
  KT_OK(kiln_buffer_read(bp, 0, sizeof part, part));
  float sum = 0;
  for (int i = 0; i < G; i++)
    sum += part[i];
  assert_true(sum == (float)N);
  kiln_buffer_destroy(bi);
  kiln_buffer_destroy(bp);
  kiln_kernel_destroy(k);
}

static const char trap_src[] = "KILN_KERNEL void trap_now(KILN_GLOBAL kiln_u32 *out) {\n"
                               "  size_t i = kiln_global_id(0);\n"
                               "  if (i < kiln_global_size(0)) out[i] = 1u;\n"
                               "#if defined(__CUDACC_RTC__) || defined(__CUDACC__)\n"
                               "  if (i == 0) __trap();\n"
                               "#endif\n"
                               "}\n";

static void test_trap_loses_device_and_reset_recovers(void **state) {
  (void)state;
  kiln_device d = NULL;
  KT_OK(kiln_context_get_device(ctx, &d));
  kiln_device_props before = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(d, &before));
  kiln_kernel k = kernel(trap_src, "trap_now");
  kiln_buffer b = buffer(4096);
  kiln_arg args[] = {kiln_arg_buffer(b)};
  kiln_range r = kiln_range_1d(1024);
  kiln_pending t = KILN_PENDING_INIT;
  KT_OK(kiln_launch_async(s, k, &r, args, 1, &t));
  kiln_status st = kiln_wait(&t);
  printf("trap: kiln_wait -> %s: %s\n", kiln_status_name(st), kiln_last_error()->message);
  assert_int_not_equal(st, KILN_SUCCESS);
  assert_non_null(strstr(kiln_last_error()->message, "CUDA_ERROR_"));
  uint32_t v[4] = {0};
  st = kiln_buffer_write(b, 0, sizeof v, v);
  printf("trap: then kiln_buffer_write -> %s: %s\n", kiln_status_name(st),
         kiln_last_error()->message);
  assert_int_equal(st, KILN_ERROR_DEVICE_LOST);
  kiln_context other = NULL;
  KT_EXPECT(kiln_context_create(d, NULL, &other), KILN_ERROR_DEVICE_LOST);
  st = kiln_device_reset(d);
  printf("trap: kiln_device_reset -> %s%s%s\n", kiln_status_name(st), st ? ": " : "",
         st ? kiln_last_error()->message : "");
  KT_OK(st);
  kiln_device_props after = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(d, &after));
  assert_int_equal(after.generation, before.generation + 1);
  /* old handles stay refused; a new context works */
  KT_EXPECT(kiln_buffer_write(b, 0, sizeof v, v), KILN_ERROR_DEVICE_LOST);
  kiln_kernel_destroy(k);
  kiln_buffer_destroy(b);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  s = NULL;
  KT_OK(kiln_context_create(d, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer nb = buffer(sizeof v);
  uint32_t w[4] = {1, 2, 3, 4};
  KT_OK(kiln_buffer_write(nb, 0, sizeof w, w));
  KT_OK(kiln_buffer_read(nb, 0, sizeof v, v));
  assert_memory_equal(v, w, sizeof w);
  printf("trap: after the reset a new context copies correctly (generation %u -> %u)\n",
         before.generation, after.generation);
  kiln_buffer_destroy(nb);
}

int main(int argc, char **argv) {
  kiln_device d = NULL;
  const char *lib = getenv("KILN_CUDA_LIBRARY");
  if ((lib && strstr(lib, "fake")) || kiln_device_find(KILN_BACKEND_CUDA, 0, &d) != KILN_SUCCESS) {
    printf("no CUDA GPU (%s): skipped\n", lib ? lib : kiln_last_error()->message);
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_vecadd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reduce_local_memory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trap_loses_device_and_reset_recovers, setup, teardown),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
