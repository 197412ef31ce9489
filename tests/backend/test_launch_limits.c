/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* Launch ranges and local memory that no backend can run are refused at the call with
 * KILN_ERROR_LIMIT_EXCEEDED, before anything reaches the driver: the total number of
 * work-items (not only each dimension), the number of work-groups OpenCL would make,
 * and the sum of the local-memory arguments. Without these checks PoCL aborts the
 * process (get_wg_index_range: Assertion 'max_wgs > 0'), so each case here would kill
 * its test. After the refusals the stream still runs a good launch. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

static kiln_range range_3d(size_t gx, size_t gy, size_t gz) {
  kiln_range r = KILN_RANGE_INIT;
  r.dims = 3;
  r.global[0] = gx;
  r.global[1] = gy;
  r.global[2] = gz;
  return r;
}

static kiln_range range_2d_local(size_t gx, size_t gy, size_t lx, size_t ly) {
  kiln_range r = kiln_range_2d(gx, gy);
  r.local[0] = lx;
  r.local[1] = ly;
  return r;
}

/* The launch is refused with LIMIT_EXCEEDED, the token stays empty and nothing was
 * queued. */
static void expect_refused(kt_env *env, kiln_kernel k, const kiln_range *r, const kiln_arg *args,
                           size_t count, const char *what) {
  kiln_status st = kiln_launch(env->stream, k, r, args, count);
  if (st != KILN_ERROR_LIMIT_EXCEEDED)
    fail_msg("%s: got %s (%s), expected KILN_ERROR_LIMIT_EXCEEDED", what, kiln_status_name(st),
             kiln_last_error()->message);
  kiln_pending t = {7};
  st = kiln_launch_async(env->stream, k, r, args, count, &t);
  if (st != KILN_ERROR_LIMIT_EXCEEDED)
    fail_msg("%s (async): got %s, expected KILN_ERROR_LIMIT_EXCEEDED", what, kiln_status_name(st));
  assert_int_equal(t.id, 0);
  KT_MSG_HAS("kt_add_u32");
  KT_OK(kiln_stream_query(env->stream));
}

static void good_launch_still_runs(kt_env *env, kiln_kernel k, kiln_buffer b) {
  uint64_t off = 0;
  uint32_t add = 3, zero = 0, host[64];
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  KT_OK(kiln_buffer_fill(b, 0, sizeof host, &zero, 4));
  kiln_range r = kiln_range_1d(64);
  KT_OK(kiln_launch(env->stream, k, &r, args, 3));
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  for (int i = 0; i < 64; i++)
    assert_int_equal(host[i], 3);
}

static void total_work_items_are_checked(void **state) {
  kt_env *env = *state;
  kiln_kernel k = kt_add_kernel(env->ctx);
  kiln_buffer b = kt_buffer(env->ctx, 64 * 4);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  const size_t big = (size_t)1 << 32;

  kiln_range r = kiln_range_2d(big, big); /* 2^64 work-items */
  expect_refused(env, k, &r, args, 3, "2^32 x 2^32");
  r = kiln_range_2d((size_t)1 << 52, (size_t)1 << 16); /* 2^68 */
  expect_refused(env, k, &r, args, 3, "2^52 x 2^16");
  r = range_3d((size_t)1 << 21, (size_t)1 << 21, (size_t)1 << 21); /* 2^63 */
  expect_refused(env, k, &r, args, 3, "2^21 x 2^21 x 2^21");
  /* Each dimension within the device's limit, the product far beyond any. */
  size_t each[3];
  for (int d = 0; d < 3; d++) {
    each[d] = env->props.max_global_size[d];
    if (each[d] > ((size_t)1 << 30))
      each[d] = (size_t)1 << 30;
  }
  r = range_3d(each[0], each[1], each[2]);
  if (each[0] > (1u << 21) && each[1] > (1u << 21) && each[2] > (1u << 21))
    expect_refused(env, k, &r, args, 3, "each dimension at the device's limit");
  /* Rounding up to the local size overflows the total. */
  size_t lx = env->props.max_work_item_sizes[0] < 64 ? env->props.max_work_item_sizes[0] : 64;
  r = range_2d_local(SIZE_MAX / 2 - 1, 1, lx, 1);
  if (lx > 2)
    expect_refused(env, k, &r, args, 3, "rounded up past 2^63");
  /* 1-D, local size left to kiln: within size_t, but more work-groups than OpenCL runs
   * (cpu takes it: a native kernel gets the range as given, so it is not launched). */
  if (kt_backend() != KILN_BACKEND_CPU) {
    r = kiln_range_1d((size_t)0x7fffffffffffffffull);
    expect_refused(env, k, &r, args, 3, "1-D 2^63 - 1");
  }
  if (kt_backend() == KILN_BACKEND_OPENCL) {
    r = kiln_range_1d((size_t)1 << 42); /* 2^34 groups of 256 */
    expect_refused(env, k, &r, args, 3, "1-D 2^42");
    KT_MSG_HAS("work-groups");
    r = range_2d_local((size_t)1 << 20, (size_t)1 << 20, 16, 16); /* 2^32 groups */
    expect_refused(env, k, &r, args, 3, "2^20 x 2^20 in 16 x 16");
  }
  good_launch_still_runs(env, k, b);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- local memory: the sum of the local arguments ---- */

#define LOCAL_ARGS 4

static void local_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  unsigned char *out = args[LOCAL_ARGS];
  for (int i = 0; i < LOCAL_ARGS; i++)
    ((unsigned char *)args[i])[0] = (unsigned char)i;
  out[0] = 1;
}

static const char local_source[] =
    "KILN_KERNEL void many_local(KILN_LOCAL float *a, KILN_LOCAL float *b,\n"
    "                            KILN_LOCAL float *c, KILN_LOCAL float *d,\n"
    "                            KILN_GLOBAL unsigned char *out) {\n"
    "  size_t i = kiln_local_id(0);\n"
    "  a[i] = 1.0f; b[i] = 2.0f; c[i] = 3.0f; d[i] = 4.0f;\n"
    "  kiln_barrier();\n"
    "  if (kiln_global_id(0) == 0) out[0] = (unsigned char)(a[0] + b[0] + c[0] + d[0] > 9.0f);\n"
    "}\n";

static kiln_kernel local_kernel(kt_env *env) {
  kiln_kernel k = NULL;
  if (kt_backend_native()) {
    kiln_param params[LOCAL_ARGS + 1];
    for (int i = 0; i < LOCAL_ARGS; i++)
      params[i] = (kiln_param){KILN_PARAM_LOCAL, 0};
    params[LOCAL_ARGS] = (kiln_param){KILN_PARAM_BUFFER_READ_WRITE, 0};
    kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
    d.name = "many_local";
    d.fn = local_fn;
    d.params = params;
    d.param_count = LOCAL_ARGS + 1;
    KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  } else {
    kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
    pd.source = local_source;
    pd.name = "many_local";
    kiln_program p = NULL;
    KT_OK(kiln_program_create(env->ctx, &pd, &p));
    KT_OK(kiln_kernel_create(p, "many_local", &k));
    KT_OK(kiln_program_destroy(p));
  }
  return k;
}

static void local_memory_is_checked_in_sum(void **state) {
  kt_env *env = *state;
  kiln_kernel k = local_kernel(env);
  kiln_buffer out = kt_buffer(env->ctx, 64);
  size_t local = (size_t)env->props.local_mem_bytes;
  assert_true(local >= 4096);
  kiln_arg args[LOCAL_ARGS + 1];
  args[LOCAL_ARGS] = kiln_arg_buffer(out);
  kiln_range r = kiln_range_1d(64);
  r.local[0] = 64;

  /* Each argument fits, the sum (twice the device's local memory) does not. */
  for (int i = 0; i < LOCAL_ARGS; i++)
    args[i] = kiln_arg_local(local / 2);
  kiln_status st = kiln_launch(env->stream, k, &r, args, LOCAL_ARGS + 1);
  if (st != KILN_ERROR_LIMIT_EXCEEDED)
    fail_msg("4 x %zu bytes of local memory on a device with %zu: got %s (%s)", local / 2, local,
             kiln_status_name(st), kiln_last_error()->message);
  KT_MSG_HAS("many_local");
  KT_MSG_HAS("4 local-memory arguments");
  char total[32];
  snprintf(total, sizeof total, "%zu", 2 * local);
  KT_MSG_HAS(total);
  kiln_pending t = {5};
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, LOCAL_ARGS + 1, &t),
            KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(t.id, 0);
  /* One byte over. */
  for (int i = 0; i < LOCAL_ARGS; i++)
    args[i] = kiln_arg_local(local / 4);
  args[3] = kiln_arg_local(local / 4 + 1);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, LOCAL_ARGS + 1), KILN_ERROR_LIMIT_EXCEEDED);

  /* A sum well within the limit runs (the fake libcuda emulates only the shared test
   * kernels, so there it is not launched). */
  if (kt_backend() == KILN_BACKEND_CUDA) {
    KT_OK(kiln_buffer_destroy(out));
    KT_OK(kiln_kernel_destroy(k));
    return;
  }
  for (int i = 0; i < LOCAL_ARGS; i++)
    args[i] = kiln_arg_local(64 * sizeof(float));
  unsigned char zero = 0, got = 0;
  KT_OK(kiln_buffer_fill(out, 0, 64, &zero, 1));
  KT_OK(kiln_launch(env->stream, k, &r, args, LOCAL_ARGS + 1));
  KT_OK(kiln_buffer_read(out, 0, 1, &got));
  assert_int_equal(got, 1);
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(k));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(total_work_items_are_checked, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(local_memory_is_checked_in_sum, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(kt_backend())) {
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
