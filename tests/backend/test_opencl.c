/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: opencl unit */
/* kiln-test-link: static */
/* kiln-test-env: KILN_TEST_BACKEND=opencl */
/* The OpenCL backend's own behaviours (issue 6), on the first OpenCL device (PoCL
 * here): the dialect test kernels of tests/kernels checked against CPU reference
 * results computed here (vecadd, saxpy, the local-memory reductions with barriers,
 * the 2-D stencil, global sizes that are not a multiple of the local size); a kernel's
 * own local memory counted at the launch call; compile errors with the first error line
 * and the full log; argument count/kind/size errors; native kernels refused; the
 * device's max allocation size; native interop with raw OpenCL (dlopen'd, kt_opencl.h)
 * and wrapping; two streams that provably run kernels at the same time; hidden size
 * arguments only for kernels that read kiln_global_size(); which commands carry a
 * cl_event (per platform, KILN_OPENCL_EVENTS); and every
 * OpenCL object kiln counted back to zero after teardown (kiln__cl_live, hence the
 * static link). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/cl_api.h"
#include "kiln_test.h"
#include "kt_opencl.h"

static kiln_device ocl_device(void) {
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_OPENCL, 0, &dev));
  return dev;
}

static int setup_ocl(void **state) {
  kt_env *env = calloc(1, sizeof *env);
  if (!env)
    return -1;
  *state = env;
  env->device = ocl_device();
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(env->device, &p));
  env->props = p;
  KT_OK(kt_alloc_install());
  env->alloc_installed = 1;
  KT_OK(kiln_context_create(env->device, NULL, &env->ctx));
  KT_OK(kiln_stream_create(env->ctx, NULL, &env->stream));
  return 0;
}

static char *read_kernel(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", KT_KERNELS_DIR, file);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *copy = malloc(n + 1);
  assert_non_null(copy);
  memcpy(copy, buf, n + 1);
  return copy;
}

/* Kernel `name` of tests/kernels/<file>; the program is destroyed at once. */
static kiln_kernel file_kernel(kiln_context ctx, const char *file, const char *name) {
  char *src = read_kernel(file);
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = file;
  kiln_program p = NULL;
  KT_OK(kiln_program_create(ctx, &d, &p));
  free(src);
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, name, &k));
  KT_OK(kiln_program_destroy(p));
  return k;
}

static kiln_buffer upload(kiln_context ctx, const void *data, size_t bytes) {
  kiln_buffer b = kt_buffer(ctx, bytes);
  KT_OK(kiln_buffer_write(b, 0, bytes, data));
  return b;
}

/* ---- dialect kernels against CPU references ---- */

static void saxpy_matches_reference(void **state) {
  kt_env *env = *state;
  enum { N = 100003 };
  static float x[N], y[N], want[N], got[N];
  for (int i = 0; i < N; i++) {
    x[i] = (float)(i % 97) * 0.5f;
    y[i] = (float)(i % 13) - 6.0f;
  }
  float alpha = 1.75f;
  unsigned int n = N - 3; /* the last 3 stay untouched */
  for (int i = 0; i < N; i++)
    want[i] = (unsigned)i < n ? alpha * x[i] + y[i] : y[i];
  kiln_kernel k = file_kernel(env->ctx, "saxpy.kiln", "saxpy");
  kiln_buffer bx = upload(env->ctx, x, sizeof x), by = upload(env->ctx, y, sizeof y);
  kiln_arg args[4] = {kiln_arg_scalar(&alpha, sizeof alpha), kiln_arg_buffer(bx),
                      kiln_arg_buffer(by), kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(N);
  kiln_pending t;
  KT_OK(kiln_launch_async(env->stream, k, &r, args, 4, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_buffer_read(by, 0, sizeof got, got));
  for (int i = 0; i < N; i++) /* one fused or unfused multiply-add apart at most */
    if (fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i])))
      fail_msg("y[%d] = %.9g, expected %.9g", i, (double)got[i], (double)want[i]);
  const kiln_param *p = NULL;
  size_t count = 0;
  KT_OK(kiln_kernel_get_params(k, &p, &count));
  assert_int_equal(count, 4);
  assert_int_equal(p[1].kind, KILN_PARAM_BUFFER_READ); /* const: read */
  assert_int_equal(p[2].kind, KILN_PARAM_BUFFER_READ_WRITE);
  KT_OK(kiln_buffer_destroy(bx));
  KT_OK(kiln_buffer_destroy(by));
  KT_OK(kiln_kernel_destroy(k));
}

static void reduce_check(kt_env *env, const char *name, int local_param, size_t n, size_t local) {
  float *in = malloc(n * sizeof *in);
  assert_non_null(in);
  double want = 0.0;
  for (size_t i = 0; i < n; i++) {
    in[i] = (float)(i % 7) + 0.25f; /* exact in float: partial sums stay exact */
    want += in[i];
  }
  size_t groups = (n + local - 1) / local;
  kiln_kernel k = file_kernel(env->ctx, "reduce.kiln", name);
  kiln_buffer bin = upload(env->ctx, in, n * sizeof *in);
  kiln_buffer bpart = kt_buffer(env->ctx, groups * sizeof(float));
  unsigned int nn = (unsigned int)n;
  kiln_arg args[4];
  size_t count = 0;
  args[count++] = kiln_arg_buffer(bin);
  args[count++] = kiln_arg_buffer(bpart);
  if (local_param)
    args[count++] = kiln_arg_local(local * sizeof(float));
  args[count++] = kiln_arg_scalar(&nn, sizeof nn);
  kiln_range r = kiln_range_1d(n);
  r.local[0] = local;
  KT_OK(kiln_launch(env->stream, k, &r, args, count));
  float *part = malloc(groups * sizeof *part);
  assert_non_null(part);
  KT_OK(kiln_buffer_read(bpart, 0, groups * sizeof *part, part));
  for (size_t g = 0; g < groups; g++) { /* each group's partial, on the host */
    double pw = 0.0;
    for (size_t i = g * local; i < (g + 1) * local && i < n; i++)
      pw += in[i];
    if ((double)part[g] != pw)
      fail_msg("%s: group %zu sums to %.9g, expected %.9g", name, g, (double)part[g], pw);
  }
  double got = 0.0;
  for (size_t g = 0; g < groups; g++)
    got += part[g];
  if (got != want)
    fail_msg("%s: total %.9g, expected %.9g", name, got, want);
  free(part);
  free(in);
  KT_OK(kiln_buffer_destroy(bin));
  KT_OK(kiln_buffer_destroy(bpart));
  KT_OK(kiln_kernel_destroy(k));
}

static void reduce_local_memory_and_barriers(void **state) {
  kt_env *env = *state;
  reduce_check(env, "reduce_sum", 1, 4096, 64);
  reduce_check(env, "reduce_sum", 1, 10007, 128); /* last group partly past n */
  reduce_check(env, "reduce_sum_static", 0, 5000, 256);
}

/* ---- per-kernel limits at the launch call (core/kernel.c, filled by program.c) ---- */
/* A kernel with local memory of its own (1 KiB) and a local-memory parameter. PoCL
 * reports the device's work-group size (4096) as every kernel's CL_KERNEL_WORK_GROUP_SIZE
 * (reqd_work_group_size and large private arrays included), so a kernel's work-group
 * limit below the device's cannot be shown here; its own local memory can. */
static const char own_local_src[] =
    "KILN_KERNEL void own_and_param(KILN_GLOBAL float *out, KILN_LOCAL float *scratch) {\n"
    "  KILN_LOCAL_ARRAY float own[256];\n"
    "  size_t lid = kiln_local_id(0);\n"
    "  own[lid] = (float)lid;\n"
    "  scratch[lid] = 2.0f * own[lid];\n"
    "  kiln_barrier();\n"
    "  size_t gid = kiln_global_id(0);\n"
    "  if (gid < kiln_global_size(0)) out[gid] = own[lid] + scratch[lid];\n"
    "}\n";

static void kernel_own_local_memory_counts_at_the_call(void **state) {
  kt_env *env = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = own_local_src;
  d.name = "own_local";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &d, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "own_and_param", &k));
  KT_OK(kiln_program_destroy(p));
  enum { N = 1000, LOCAL = 64 };
  kiln_buffer out = kt_buffer(env->ctx, N * sizeof(float));
  kiln_range r = kiln_range_1d(N);
  r.local[0] = LOCAL;
  /* the device's whole local memory as the argument: with the kernel's own, too much */
  kiln_arg args[2] = {kiln_arg_buffer(out), kiln_arg_local((size_t)env->props.local_mem_bytes)};
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 2), KILN_ERROR_LIMIT_EXCEEDED,
                "it declares itself");
  KT_MSG_HAS("kernel 'own_and_param'");
  kiln_pending t = {42};
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 2, &t), KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(t.id, 0);
  /* what fits runs */
  args[1] = kiln_arg_local(LOCAL * sizeof(float));
  KT_OK(kiln_launch(env->stream, k, &r, args, 2));
  static float got[N];
  KT_OK(kiln_buffer_read(out, 0, sizeof got, got));
  for (int i = 0; i < N; i++)
    if (got[i] != 3.0f * (float)(i % LOCAL))
      fail_msg("out[%d] = %g, expected %g", i, (double)got[i], 3.0 * (i % LOCAL));
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(k));
}

static void stencil2d_matches_reference(void **state) {
  kt_env *env = *state;
  enum { W = 67, H = 45 };
  static float in[W * H], want[W * H], got[W * H];
  for (int i = 0; i < W * H; i++)
    in[i] = (float)((i * 37) % 101);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int i = y * W + x;
      if (x == 0 || y == 0 || x == W - 1 || y == H - 1)
        want[i] = in[i];
      else
        want[i] = 0.2f * (in[i] + in[i - 1] + in[i + 1] + in[i - W] + in[i + W]);
    }
  kiln_kernel k = file_kernel(env->ctx, "stencil2d.kiln", "stencil2d");
  kiln_buffer bin = upload(env->ctx, in, sizeof in), bout = kt_buffer(env->ctx, sizeof got);
  int w = W, h = H;
  kiln_arg args[4] = {kiln_arg_buffer(bin), kiln_arg_buffer(bout), kiln_arg_scalar(&w, sizeof w),
                      kiln_arg_scalar(&h, sizeof h)};
  kiln_range r = kiln_range_2d(W, H);
  r.local[0] = 16; /* 67 x 45 is no multiple of 16 x 8 */
  r.local[1] = 8;
  KT_OK(kiln_launch(env->stream, k, &r, args, 4));
  KT_OK(kiln_buffer_read(bout, 0, sizeof got, got));
  for (int i = 0; i < W * H; i++)
    if (fabsf(got[i] - want[i]) > 1e-4f * (1.0f + fabsf(want[i])))
      fail_msg("cell (%d,%d) = %.9g, expected %.9g", i % W, i / W, (double)got[i], (double)want[i]);
  KT_OK(kiln_buffer_destroy(bin));
  KT_OK(kiln_buffer_destroy(bout));
  KT_OK(kiln_kernel_destroy(k));
}

/* kiln rounds the launch up; the kernel guards with kiln_global_size(), which must be
 * the size asked for. The buffers hold exactly that size plus a canary. */
static void global_size_not_a_multiple_of_local(void **state) {
  kt_env *env = *state;
  const size_t sizes[][2] = {{1000, 64}, {1, 0}, {257, 0}, {4097, 256}, {999, 7}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s][0];
    kiln_kernel k = file_kernel(env->ctx, "guard.kiln", "guard");
    kiln_buffer b = kt_buffer(env->ctx, (n + 16) * 4);
    uint32_t canary = 0xdeadbeefu;
    KT_OK(kiln_buffer_fill(b, 0, (n + 16) * 4, &canary, 4));
    kiln_arg a = kiln_arg_buffer(b);
    kiln_range r = kiln_range_1d(n);
    r.local[0] = sizes[s][1];
    KT_OK(kiln_launch(env->stream, k, &r, &a, 1));
    uint32_t *out = malloc((n + 16) * 4);
    assert_non_null(out);
    KT_OK(kiln_buffer_read(b, 0, (n + 16) * 4, out));
    for (size_t i = 0; i < n + 16; i++) {
      uint32_t want = i < n ? (uint32_t)(i * 3u + 1u) : canary;
      if (out[i] != want)
        fail_msg("n=%zu local=%zu: out[%zu] = %u, expected %u", n, sizes[s][1], i, out[i], want);
    }
    free(out);
    KT_OK(kiln_buffer_destroy(b));
    KT_OK(kiln_kernel_destroy(k));
  }
  /* 2-D: width and height both off the 16 x 16 default */
  enum { W = 37, H = 19 };
  kiln_kernel k2 = file_kernel(env->ctx, "guard.kiln", "guard2d");
  kiln_buffer b2 = kt_buffer(env->ctx, W * H * 4);
  kiln_arg a2 = kiln_arg_buffer(b2);
  kiln_range r2 = kiln_range_2d(W, H);
  KT_OK(kiln_launch(env->stream, k2, &r2, &a2, 1));
  static int32_t out2[W * H];
  KT_OK(kiln_buffer_read(b2, 0, sizeof out2, out2));
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      assert_int_equal(out2[y * W + x], x + 1000 * y);
  KT_OK(kiln_buffer_destroy(b2));
  KT_OK(kiln_kernel_destroy(k2));
}

/* ---- errors ---- */

static void compile_error_names_first_line_and_keeps_log(void **state) {
  kt_env *env = *state;
  char *src = read_kernel("broken.kiln");
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = "broken.kiln";
  kiln_program p = (kiln_program)(uintptr_t)0x1;
  KT_EXPECT(kiln_program_create(env->ctx, &d, &p), KILN_ERROR_COMPILE_FAILED);
  assert_null(p);
  free(src);
  const kiln_error_info *e = kiln_last_error();
  /* the first error line, naming the user's line 6 (after the prelude's #line 1) */
  if (!strstr(e->message, ":6:") || !kt_strcasestr(e->message, "error"))
    fail_msg("the message does not carry the first error line at line 6: %s", e->message);
  assert_non_null(strstr(e->message, "broken.kiln"));
  assert_int_equal(e->backend, KILN_BACKEND_OPENCL);
  assert_string_equal(e->native_name, "CL_BUILD_PROGRAM_FAILURE");
  const char *log = kiln_last_build_log();
  assert_non_null(log);
  assert_non_null(strstr(log, "kiln_undeclared_value"));
  assert_true(strlen(log) >= strlen(e->message) - strlen("program 'broken.kiln': "));
  /* a good program afterwards works */
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "vecadd", &k));
  KT_OK(kiln_kernel_destroy(k));
}

static void launch_arguments_checked_against_the_signature(void **state) {
  kt_env *env = *state;
  kiln_kernel k = file_kernel(env->ctx, "vecadd.kiln", "vecadd");
  kiln_buffer a = kt_buffer(env->ctx, 64), b = kt_buffer(env->ctx, 64), c = kt_buffer(env->ctx, 64);
  int32_t n = 16;
  int64_t n64 = 16;
  kiln_range r = kiln_range_1d(16);
  kiln_arg good[4] = {kiln_arg_buffer(a), kiln_arg_buffer(b), kiln_arg_buffer(c),
                      kiln_arg_scalar(&n, sizeof n)};
  kiln_arg args[5];
  /* count */
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, good, 3), KILN_ERROR_KERNEL_ARGS,
                "kernel 'vecadd' takes 4 arguments, got 3");
  memcpy(args, good, sizeof good);
  args[4] = kiln_arg_scalar(&n, sizeof n);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 5), KILN_ERROR_KERNEL_ARGS, "got 5");
  /* kind: a scalar where a buffer belongs */
  memcpy(args, good, sizeof good);
  args[2] = kiln_arg_scalar(&n, sizeof n);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 4), KILN_ERROR_KERNEL_ARGS,
                "kernel 'vecadd' argument 2: expected a buffer");
  KT_MSG_HAS("4-byte scalar");
  /* kind: a buffer where a scalar belongs; local memory where a buffer belongs */
  memcpy(args, good, sizeof good);
  args[3] = kiln_arg_buffer(a);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 4), KILN_ERROR_KERNEL_ARGS, "argument 3");
  memcpy(args, good, sizeof good);
  args[0] = kiln_arg_local(64);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 4), KILN_ERROR_KERNEL_ARGS, "argument 0");
  /* size: an 8-byte scalar for the 4-byte int */
  memcpy(args, good, sizeof good);
  args[3] = kiln_arg_scalar(&n64, sizeof n64);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 4), KILN_ERROR_KERNEL_ARGS, "4-byte scalar");
  KT_MSG_HAS("argument 3");
  kiln_pending t = {123};
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 4, &t), KILN_ERROR_KERNEL_ARGS);
  assert_int_equal(t.id, 0);
  /* a local-memory parameter given a buffer */
  kiln_kernel red = file_kernel(env->ctx, "reduce.kiln", "reduce_sum");
  unsigned int un = 16;
  kiln_arg rargs[4] = {kiln_arg_buffer(a), kiln_arg_buffer(b), kiln_arg_buffer(c),
                       kiln_arg_scalar(&un, sizeof un)};
  KT_EXPECT_MSG(kiln_launch(env->stream, red, &r, rargs, 4), KILN_ERROR_KERNEL_ARGS,
                "argument 2: expected local memory");
  /* the good arguments still work */
  KT_OK(kiln_launch(env->stream, k, &r, good, 4));
  KT_OK(kiln_kernel_destroy(red));
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_buffer_destroy(c));
  KT_OK(kiln_kernel_destroy(k));
}

static void native_kernels_are_unsupported(void **state) {
  kt_env *env = *state;
  static const kiln_param params[] = {{KILN_PARAM_SCALAR, 4}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_native";
  d.fn = (kiln_native_fn)(void (*)(void))abort; /* never called */
  d.params = params;
  d.param_count = 1;
  kiln_kernel k = (kiln_kernel)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_UNSUPPORTED,
                "native C kernels");
  assert_null(k);
  /* a missing kernel name in a good program */
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = "KILN_KERNEL void only(KILN_GLOBAL int *o) { o[0] = 1; }\n";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &pd, &p));
  KT_EXPECT_MSG(kiln_kernel_create(p, "other", &k), KILN_ERROR_INVALID_ARGUMENT, "other");
  assert_null(k);
  KT_OK(kiln_program_destroy(p));
}

static void max_allocation_size_enforced(void **state) {
  kt_env *env = *state;
  uint64_t max = env->props.max_alloc_bytes;
  assert_true(max > 0);
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = (size_t)max + 1;
  kiln_buffer b = (kiln_buffer)(uintptr_t)0x1;
  char want[64], asked[64];
  snprintf(want, sizeof want, "%llu", (unsigned long long)max);
  snprintf(asked, sizeof asked, "%llu", (unsigned long long)max + 1);
  KT_EXPECT_MSG(kiln_buffer_create(env->ctx, &d, &b), KILN_ERROR_LIMIT_EXCEEDED, want);
  KT_MSG_HAS(asked);
  assert_null(b);
}

/* ---- native interop ---- */

static void native_handles_work_with_raw_opencl(void **state) {
  kt_env *env = *state;
  const kt_cl_api *cl = kt_cl_required();
  cl_context c = NULL;
  cl_command_queue q = NULL;
  cl_device_id dev = NULL;
  cl_platform_id plat = NULL;
  KT_OK(kiln_context_get_native(env->ctx, KILN_NATIVE_CL_CONTEXT, &c));
  KT_OK(kiln_stream_get_native(env->stream, KILN_NATIVE_CL_COMMAND_QUEUE, &q));
  KT_OK(kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, &dev));
  KT_OK(kiln_device_get_native(env->device, KILN_NATIVE_CL_PLATFORM, &plat));
  assert_non_null(c);
  assert_non_null(q);
  cl_context qc = NULL;
  assert_int_equal(cl->clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof qc, &qc, NULL),
                   CL_SUCCESS);
  assert_ptr_equal(qc, c);
  cl_command_queue_properties qp = 0;
  assert_int_equal(cl->clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof qp, &qp, NULL),
                   CL_SUCCESS);
  assert_false(qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
  /* Profiling comes with the stream's first timing event (it costs per command on some
   * drivers): the stream then runs on a profiling queue, in order after the old one. */
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;
  kiln_event e0 = NULL;
  KT_OK(kiln_event_create(env->ctx, &ed, &e0));
  KT_OK(kiln_event_record(e0, env->stream));
  KT_OK(kiln_event_synchronize(e0));
  KT_OK(kiln_event_destroy(e0));
  KT_OK(kiln_stream_get_native(env->stream, KILN_NATIVE_CL_COMMAND_QUEUE, &q));
  assert_int_equal(cl->clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof qp, &qp, NULL),
                   CL_SUCCESS);
  assert_true(qp & CL_QUEUE_PROFILING_ENABLE);
  assert_false(qp & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
  cl_device_id cd = NULL;
  assert_int_equal(cl->clGetContextInfo(c, CL_CONTEXT_DEVICES, sizeof cd, &cd, NULL), CL_SUCCESS);
  assert_ptr_equal(cd, dev);

  /* a kiln buffer written by raw OpenCL, read by kiln */
  enum { N = 256 };
  kiln_buffer kb = kt_buffer(env->ctx, N * 4);
  cl_mem m = NULL;
  KT_OK(kiln_buffer_get_native(kb, KILN_NATIVE_CL_MEM, &m));
  size_t msize = 0;
  assert_int_equal(cl->clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof msize, &msize, NULL), CL_SUCCESS);
  assert_int_equal(msize, N * 4);
  static uint32_t src[N], out[N];
  for (uint32_t i = 0; i < N; i++)
    src[i] = i * 11u;
  assert_int_equal(cl->clEnqueueWriteBuffer(q, m, CL_TRUE, 0, sizeof src, src, 0, NULL, NULL),
                   CL_SUCCESS);
  KT_OK(kiln_buffer_read(kb, 0, sizeof out, out));
  assert_memory_equal(out, src, sizeof out);

  /* kiln's cl_kernel launched by hand: the user's arguments, then the three hidden
   * global sizes (docs/kernels.md) */
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "kt_add_u32", &k));
  cl_kernel ck = NULL;
  KT_OK(kiln_kernel_get_native(k, KILN_NATIVE_CL_KERNEL, &ck));
  char kname[64] = "";
  assert_int_equal(cl->clGetKernelInfo(ck, CL_KERNEL_FUNCTION_NAME, sizeof kname, kname, NULL),
                   CL_SUCCESS);
  assert_string_equal(kname, "kt_add_u32");
  cl_uint nargs = 0;
  assert_int_equal(cl->clGetKernelInfo(ck, CL_KERNEL_NUM_ARGS, sizeof nargs, &nargs, NULL),
                   CL_SUCCESS);
  assert_int_equal(nargs, 3 + 3);
  cl_ulong off = 0, gs[3] = {N, 1, 1};
  cl_uint add = 5;
  assert_int_equal(cl->clSetKernelArg(ck, 0, sizeof m, &m), CL_SUCCESS);
  assert_int_equal(cl->clSetKernelArg(ck, 1, sizeof off, &off), CL_SUCCESS);
  assert_int_equal(cl->clSetKernelArg(ck, 2, sizeof add, &add), CL_SUCCESS);
  for (cl_uint i = 0; i < 3; i++)
    assert_int_equal(cl->clSetKernelArg(ck, 3 + i, sizeof gs[i], &gs[i]), CL_SUCCESS);
  size_t global = N;
  assert_int_equal(cl->clEnqueueNDRangeKernel(q, ck, 1, NULL, &global, NULL, 0, NULL, NULL),
                   CL_SUCCESS);
  assert_int_equal(cl->clFinish(q), CL_SUCCESS);
  KT_OK(kiln_buffer_read(kb, 0, sizeof out, out));
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(out[i], i * 11u + 5u);

  /* a raw cl_mem and a raw queue wrapped into kiln handles */
  cl_int err = CL_SUCCESS;
  cl_mem raw = cl->clCreateBuffer(c, CL_MEM_READ_WRITE, N * 4, NULL, &err);
  assert_non_null(raw);
  cl_command_queue rawq = cl->clCreateCommandQueue(c, dev, CL_QUEUE_PROFILING_ENABLE, &err);
  assert_non_null(rawq);
  kiln_buffer wb = NULL;
  kiln_stream ws = NULL;
  KT_OK(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &raw, N * 4, &wb));
  KT_OK(kiln_stream_wrap_native(env->ctx, KILN_NATIVE_CL_COMMAND_QUEUE, &rawq, &ws));
  cl_mem back = NULL;
  cl_command_queue backq = NULL;
  KT_OK(kiln_buffer_get_native(wb, KILN_NATIVE_CL_MEM, &back));
  KT_OK(kiln_stream_get_native(ws, KILN_NATIVE_CL_COMMAND_QUEUE, &backq));
  assert_ptr_equal(back, raw);
  assert_ptr_equal(backq, rawq);
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(ws, wb, 0, sizeof src, src, &t));
  KT_OK(kiln_wait(&t));
  kiln_arg args[3];
  uint64_t koff = 0;
  uint32_t kadd = 1;
  kt_add_args(args, wb, &koff, &kadd);
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_launch(ws, k, &r, args, 3));
  memset(out, 0, sizeof out);
  assert_int_equal(cl->clEnqueueReadBuffer(rawq, raw, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
                   CL_SUCCESS);
  for (uint32_t i = 0; i < N; i++)
    assert_int_equal(out[i], i * 11u + 1u);
  KT_OK(kiln_stream_destroy(ws));
  KT_OK(kiln_buffer_destroy(wb));
  /* kiln dropped only its own references: ours still work */
  assert_int_equal(cl->clEnqueueReadBuffer(rawq, raw, CL_TRUE, 0, 4, out, 0, NULL, NULL),
                   CL_SUCCESS);
  assert_int_equal(cl->clReleaseCommandQueue(rawq), CL_SUCCESS);
  assert_int_equal(cl->clReleaseMemObject(raw), CL_SUCCESS);
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_buffer_destroy(kb));
}

static void native_kinds_that_do_not_apply_are_unsupported(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  void *out = NULL;
  KT_EXPECT(kiln_buffer_get_native(b, KILN_NATIVE_CL_KERNEL, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_buffer_get_native(b, KILN_NATIVE_CU_DEVICEPTR, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_stream_get_native(env->stream, KILN_NATIVE_CL_MEM, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_context_get_native(env->ctx, KILN_NATIVE_CL_COMMAND_QUEUE, &out),
            KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_device_get_native(env->device, KILN_NATIVE_CU_DEVICE, &out),
            KILN_ERROR_UNSUPPORTED);
  kiln_kernel k = NULL;
  KT_OK(kt_kernel(env->ctx, "kt_add_u32", &k));
  KT_EXPECT(kiln_kernel_get_native(k, KILN_NATIVE_CL_PROGRAM, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_kernel_get_native(k, KILN_NATIVE_CU_FUNCTION, &out), KILN_ERROR_UNSUPPORTED);
  cl_mem m = NULL;
  KT_OK(kiln_buffer_get_native(b, KILN_NATIVE_CL_MEM, &m));
  kiln_buffer wb = (kiln_buffer)(uintptr_t)0x1;
  kiln_stream ws = (kiln_stream)(uintptr_t)0x1;
  KT_EXPECT(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CU_DEVICEPTR, &m, 64, &wb),
            KILN_ERROR_UNSUPPORTED);
  assert_null(wb);
  KT_EXPECT(kiln_stream_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &m, &ws), KILN_ERROR_UNSUPPORTED);
  assert_null(ws);
  /* a cl_mem larger than asked is fine; asking for more than it has is not */
  wb = NULL;
  KT_EXPECT(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &m, 65, &wb),
            KILN_ERROR_OUT_OF_RANGE);
  assert_null(wb);
  KT_OK(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &m, 32, &wb));
  KT_OK(kiln_buffer_destroy(wb));
  /* OpenCL kinds on a CPU-backend buffer */
  kiln_context cpu = NULL;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &cpu));
  kiln_buffer cb = kt_buffer(cpu, 64);
  KT_EXPECT(kiln_buffer_get_native(cb, KILN_NATIVE_CL_MEM, &out), KILN_ERROR_UNSUPPORTED);
  KT_EXPECT(kiln_buffer_wrap_native(cpu, KILN_NATIVE_CL_MEM, &m, 64, &wb), KILN_ERROR_UNSUPPORTED);
  KT_OK(kiln_context_destroy(cpu));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- concurrency ---- */

/* Each kernel raises its own flag, then spins (bounded) until it sees the other's:
 * both finish with 1 only if PoCL (or the driver) ran the two streams' kernels at the
 * same time. The flags live in one cl_mem wrapped as two kiln buffers, so kiln's
 * hazard tracking (per kiln buffer) does not serialise the two launches. */
static const char meet_source[] =
    "KILN_KERNEL void kt_meet(KILN_GLOBAL kiln_u32 *flags, kiln_u32 side,\n"
    "                         KILN_GLOBAL kiln_u32 *result) {\n"
    "  volatile KILN_GLOBAL kiln_u32 *f = (volatile KILN_GLOBAL kiln_u32 *)flags;\n"
    "  f[side] = 1u;\n"
    "  kiln_u32 met = 2u;\n"
    "  for (kiln_u64 i = 0; i < 4000000000ul; i++)\n"
    "    if (f[1u - side]) { met = 1u; break; }\n"
    "  result[0] = met;\n"
    "}\n";

static void rendezvous_two_streams_run_concurrently(void **state) {
  kt_env *env = *state;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = meet_source;
  pd.name = "kt_meet";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &pd, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "kt_meet", &k));
  KT_OK(kiln_program_destroy(p));
  kiln_stream s[2] = {env->stream, NULL};
  KT_OK(kiln_stream_create(env->ctx, NULL, &s[1]));
  kiln_buffer flags = kt_buffer(env->ctx, 8);
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(flags, 0, 8, &zero, 4));
  cl_mem m = NULL;
  KT_OK(kiln_buffer_get_native(flags, KILN_NATIVE_CL_MEM, &m));
  kiln_buffer view[2] = {NULL, NULL};
  KT_OK(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &m, 8, &view[0]));
  KT_OK(kiln_buffer_wrap_native(env->ctx, KILN_NATIVE_CL_MEM, &m, 8, &view[1]));
  kiln_buffer res[2] = {kt_buffer(env->ctx, 4), kt_buffer(env->ctx, 4)};
  uint32_t sides[2] = {0, 1};
  kiln_pending t[2];
  kiln_range r = kiln_range_1d(1);
  for (int i = 0; i < 2; i++) {
    kiln_arg args[3] = {kiln_arg_buffer(view[i]), kiln_arg_scalar(&sides[i], 4),
                        kiln_arg_buffer(res[i])};
    KT_OK(kiln_launch_async(s[i], k, &r, args, 3, &t[i]));
  }
  KT_OK(kiln_wait_all(t, 2));
  for (int i = 0; i < 2; i++) {
    uint32_t got = 0;
    KT_OK(kiln_buffer_read(res[i], 0, sizeof got, &got));
    if (got != 1)
      fail_msg("stream %d: the kernels never met (%u): the streams ran one after the other", i,
               got);
  }
  KT_OK(kiln_buffer_destroy(view[0]));
  KT_OK(kiln_buffer_destroy(view[1]));
  KT_OK(kiln_buffer_destroy(flags));
  KT_OK(kiln_buffer_destroy(res[0]));
  KT_OK(kiln_buffer_destroy(res[1]));
  KT_OK(kiln_stream_destroy(s[1]));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- kernel arguments: hidden sizes only where read (src/core/prelude.h) ---- */

static const char sizes_source[] =
    "KILN_KERNEL void kt_reads(KILN_GLOBAL kiln_u32 *o) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) o[i] = (kiln_u32)kiln_global_size(0);\n"
    "}\n"
    "KILN_KERNEL void kt_bound(KILN_GLOBAL kiln_u32 *o, kiln_u32 n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < n) o[i] = n + 1u;\n"
    "}\n";

/* The cl_kernel's argument count: its own parameters, plus the three hidden sizes only
 * for the kernel that reads kiln_global_size(); both compute the right thing over a
 * range that is not a multiple of the local size. */
static void hidden_sizes_only_where_read(void **state) {
  kt_env *env = *state;
  const kt_cl_api *cl = kt_cl_required();
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = sizes_source;
  pd.name = "kt_sizes";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &pd, &p));
  kiln_kernel reads = NULL, bound = NULL;
  KT_OK(kiln_kernel_create(p, "kt_reads", &reads));
  KT_OK(kiln_kernel_create(p, "kt_bound", &bound));
  struct {
    kiln_kernel k;
    cl_uint args;
  } want[] = {{reads, 1 + 3}, {bound, 2}};
  for (size_t i = 0; i < 2; i++) {
    cl_kernel ck = NULL;
    KT_OK(kiln_kernel_get_native(want[i].k, KILN_NATIVE_CL_KERNEL, &ck));
    cl_uint n = 0;
    assert_int_equal(cl->clGetKernelInfo(ck, CL_KERNEL_NUM_ARGS, sizeof n, &n, NULL), CL_SUCCESS);
    if (n != want[i].args)
      fail_msg("kernel %zu: the cl_kernel takes %u arguments, expected %u", i, n, want[i].args);
  }
  enum { N = 37, CAP = 64 };
  kiln_buffer o1 = kt_buffer(env->ctx, CAP * 4), o2 = kt_buffer(env->ctx, CAP * 4);
  uint32_t zero = 0, n = N;
  KT_OK(kiln_buffer_fill(o1, 0, CAP * 4, &zero, 4));
  KT_OK(kiln_buffer_fill(o2, 0, CAP * 4, &zero, 4));
  kiln_range r = kiln_range_1d(N);
  kiln_arg a1 = kiln_arg_buffer(o1);
  kiln_arg a2[2] = {kiln_arg_buffer(o2), kiln_arg_scalar(&n, sizeof n)};
  kiln_pending t[2];
  KT_OK(kiln_launch_async(env->stream, reads, &r, &a1, 1, &t[0]));
  KT_OK(kiln_launch_async(env->stream, bound, &r, a2, 2, &t[1]));
  KT_OK(kiln_wait_all(t, 2));
  uint32_t h1[CAP], h2[CAP];
  KT_OK(kiln_buffer_read(o1, 0, sizeof h1, h1));
  KT_OK(kiln_buffer_read(o2, 0, sizeof h2, h2));
  for (uint32_t i = 0; i < CAP; i++) {
    assert_int_equal(h1[i], i < N ? N : 0);
    assert_int_equal(h2[i], i < N ? N + 1 : 0);
  }
  KT_OK(kiln_buffer_destroy(o1));
  KT_OK(kiln_buffer_destroy(o2));
  KT_OK(kiln_kernel_destroy(reads));
  KT_OK(kiln_kernel_destroy(bound));
  KT_OK(kiln_program_destroy(p));
}

/* ---- which commands carry a cl_event (submit.c, knob 1) ----
 * On PoCL every command carries its event (it makes one for every command anyway), so
 * a wait needs no covering marker; elsewhere, or with KILN_OPENCL_EVENTS=needed (this
 * test runs again so, tests/opencl.cmake), only the first command of a burst on an idle
 * stream has one and waiting for the others costs a marker, which the stream keeps. */
static void command_events_follow_the_platform(void **state) {
  kt_env *env = *state;
  const kt_cl_api *cl = kt_cl_required();
  cl_platform_id plat = NULL;
  KT_OK(kiln_device_get_native(env->device, KILN_NATIVE_CL_PLATFORM, &plat));
  char name[256] = "";
  assert_int_equal(cl->clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof name, name, NULL),
                   CL_SUCCESS);
  const char *setting = getenv("KILN_OPENCL_EVENTS");
  bool all = setting && !strcmp(setting, "all")      ? true
             : setting && !strcmp(setting, "needed") ? false
                                                     : strstr(name, "Portable Computing") != NULL;
  enum { BURST = 8 };
  kiln_stream s = NULL; /* a fresh stream: idle, no callback due for 31 ops */
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_buffer b = kt_buffer(env->ctx, 4096);
  static uint32_t host[1024];
  long before = atomic_load(&kiln__cl_live[KILN__CLO_EVENT]);
  kiln_pending t[BURST];
  for (int i = 0; i < BURST; i++)
    KT_OK(kiln_buffer_write_async(s, b, 0, sizeof host, host, &t[i]));
  /* each op holds its command's event until it completes, and nothing completes them
   * before the wait */
  long held = atomic_load(&kiln__cl_live[KILN__CLO_EVENT]) - before;
  if (held != (all ? BURST : 1))
    fail_msg("platform '%s', events %s: the burst holds %ld events, expected %d", name,
             all ? "on every command" : "where needed", held, all ? BURST : 1);
  KT_OK(kiln_wait_all(t, BURST));
  long kept = atomic_load(&kiln__cl_live[KILN__CLO_EVENT]) - before;
  if (kept != (all ? 0 : 1)) /* the covering marker, kept by the stream */
    fail_msg("platform '%s': %ld events kept after the wait, expected %d", name, kept, all ? 0 : 1);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_destroy(s));
  assert_int_equal(atomic_load(&kiln__cl_live[KILN__CLO_EVENT]), before);
}

/* ---- every OpenCL object kiln made is released ---- */

/* ---- commands without events (src/backends/opencl/submit.c, knob 1) ----
 * Where knob 1 applies (not PoCL by default: these run again with
 * KILN_OPENCL_EVENTS=needed, tests/opencl.cmake) most commands are enqueued without a
 * cl_event; waits, queries and other streams use a
 * later event or a marker made on demand. These patterns fail if that covering is wrong:
 * a query that never turns SUCCESS, a read on another stream that misses writes. */

static void burst_then_query_completes(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 4096);
  kiln_pending last = KILN_PENDING_INIT;
  for (uint32_t i = 0; i < 100; i++) {
    kiln_pending t;
    KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 4096, &i, 4, &t));
    if (i < 99)
      KT_OK(kiln_pending_release(&t));
    else
      last = t;
  }
  /* only polling: no wait; the query must see the burst finish */
  kiln_status st = KILN_NOT_READY;
  for (int k = 0; k < 200000 && st == KILN_NOT_READY; k++) {
    st = kiln_pending_query(&last);
    if (st == KILN_NOT_READY)
      kt_sleep_us(50);
  }
  assert_int_equal(st, KILN_SUCCESS);
  KT_OK(kiln_wait(&last));
  uint32_t host[1024];
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  for (int i = 0; i < 1024; i++)
    assert_int_equal(host[i], 99);
  KT_OK(kiln_buffer_destroy(b));
}

static void other_stream_sees_a_burst_without_events(void **state) {
  kt_env *env = *state;
  kiln_stream b2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &b2));
  kiln_buffer b = kt_buffer(env->ctx, 64 * 1024);
  for (int round = 0; round < 20; round++) {
    for (uint32_t i = 0; i < 40; i++) { /* back-to-back: most get no event */
      kiln_pending t;
      uint32_t v = (uint32_t)round * 1000u + i;
      KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 64 * 1024, &v, 4, &t));
      KT_OK(kiln_pending_release(&t));
    }
    static uint32_t host[16 * 1024];
    kiln_pending r;
    KT_OK(kiln_buffer_read_async(b2, b, 0, sizeof host, host, &r)); /* waits for the last fill */
    KT_OK(kiln_wait(&r));
    for (int i = 0; i < 16 * 1024; i += 997)
      assert_int_equal(host[i], (uint32_t)round * 1000u + 39u);
  }
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_stream_destroy(b2));
  KT_OK(kiln_buffer_destroy(b));
}

static void timing_after_a_burst_keeps_order(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 4096);
  for (uint32_t i = 0; i < 50; i++) { /* on the plain queue, mostly without events */
    kiln_pending t;
    KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 4096, &i, 4, &t));
    KT_OK(kiln_pending_release(&t));
  }
  /* the first timing event moves the stream to a profiling queue: its first command
   * must wait for the burst on the old queue */
  kiln_event_desc ed = KILN_EVENT_DESC_INIT;
  ed.flags = KILN_EVENT_TIMING;
  kiln_event e0 = NULL, e1 = NULL;
  KT_OK(kiln_event_create(env->ctx, &ed, &e0));
  KT_OK(kiln_event_create(env->ctx, &ed, &e1));
  KT_OK(kiln_event_record(e0, env->stream));
  uint32_t v = 7;
  kiln_pending t;
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 4096, &v, 4, &t));
  KT_OK(kiln_event_record(e1, env->stream));
  KT_OK(kiln_event_synchronize(e1));
  KT_OK(kiln_wait(&t));
  uint64_t ns = 0;
  KT_OK(kiln_event_elapsed_ns(e0, e1, &ns));
  uint32_t host[1024];
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  for (int i = 0; i < 1024; i++)
    assert_int_equal(host[i], 7); /* the last fill won */
  KT_OK(kiln_event_destroy(e0));
  KT_OK(kiln_event_destroy(e1));
  KT_OK(kiln_buffer_destroy(b));
}

static void object_counts_return_to_zero(void **state) {
  (void)state;
  assert_int_equal(kiln__cl_live_total(), 0);
  const kt_cl_api *cl = kt_cl_required();
  for (int round = 0; round < 2; round++) {
    kiln_context ctx = NULL;
    KT_OK(kiln_context_create(ocl_device(), NULL, &ctx));
    assert_true(kiln__cl_live[KILN__CLO_CONTEXT] >= 1);
    kiln_stream s1 = NULL, s2 = NULL;
    KT_OK(kiln_stream_create(ctx, NULL, &s1));
    KT_OK(kiln_stream_create(ctx, NULL, &s2));
    cl_context c = NULL;
    cl_device_id dev = NULL;
    KT_OK(kiln_context_get_native(ctx, KILN_NATIVE_CL_CONTEXT, &c));
    KT_OK(kiln_device_get_native(ocl_device(), KILN_NATIVE_CL_DEVICE, &dev));
    cl_int err = CL_SUCCESS;
    cl_command_queue rawq = cl->clCreateCommandQueue(c, dev, 0, &err);
    cl_mem raw = cl->clCreateBuffer(c, CL_MEM_READ_WRITE, 1024, NULL, &err);
    assert_non_null(rawq);
    assert_non_null(raw);
    kiln_stream ws = NULL;
    kiln_buffer wb = NULL;
    KT_OK(kiln_stream_wrap_native(ctx, KILN_NATIVE_CL_COMMAND_QUEUE, &rawq, &ws));
    KT_OK(kiln_buffer_wrap_native(ctx, KILN_NATIVE_CL_MEM, &raw, 1024, &wb));
    kiln_buffer a = kt_buffer(ctx, 1024), b = kt_buffer(ctx, 1024);
    kiln_kernel add = NULL, vadd = NULL;
    KT_OK(kt_kernel(ctx, "kt_add_u32", &add));
    KT_OK(kt_kernel(ctx, "vecadd", &vadd));
    kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
    pd.source = "KILN_KERNEL void kt_one(KILN_GLOBAL int *o) { o[kiln_global_id(0)] = 1; }\n";
    kiln_program kept = NULL; /* left to the context's teardown, with its kernel */
    kiln_kernel one = NULL;
    KT_OK(kiln_program_create(ctx, &pd, &kept));
    KT_OK(kiln_kernel_create(kept, "kt_one", &one));
    kiln_event_desc ed = KILN_EVENT_DESC_INIT;
    ed.flags = KILN_EVENT_TIMING;
    kiln_event e1 = NULL, e2 = NULL;
    KT_OK(kiln_event_create(ctx, &ed, &e1));
    KT_OK(kiln_event_create(ctx, NULL, &e2));
    static uint32_t host[256];
    memset(host, 0, sizeof host);
    kiln_pending t[6];
    KT_OK(kiln_event_record(e1, s1));
    KT_OK(kiln_buffer_write_async(s1, a, 0, sizeof host, host, &t[0]));
    uint64_t off = 0;
    uint32_t inc = 3;
    kiln_arg args[3];
    kt_add_args(args, a, &off, &inc);
    kiln_range r = kiln_range_1d(256);
    KT_OK(kiln_launch_async(s1, add, &r, args, 3, &t[1]));
    KT_OK(kiln_event_record(e2, s1));
    KT_OK(kiln_stream_wait_event(s2, e2));
    KT_OK(kiln_buffer_copy_async(s2, b, 0, a, 0, 1024, &t[2])); /* cross-stream RAW */
    KT_OK(kiln_buffer_copy_async(ws, wb, 0, b, 0, 1024, &t[3]));
    uint32_t pat = 7;
    KT_OK(kiln_buffer_fill_async(s2, a, 0, 1024, &pat, 4, &t[4])); /* WAR against s1's/ws's reads */
    kiln_arg oa = kiln_arg_buffer(b);
    KT_OK(kiln_launch_async(s1, one, &r, &oa, 1, &t[5]));
    KT_OK(kiln_wait_all(t, 6));
    KT_OK(kiln_event_synchronize(e2));
    kiln_pending tr;
    KT_OK(kiln_buffer_read_async(ws, wb, 0, sizeof host, host, &tr));
    KT_OK(kiln_pending_release(&tr)); /* covered by the context synchronize */
    KT_OK(kiln_context_synchronize(ctx));
    for (int i = 0; i < 256; i++)
      assert_int_equal(host[i], 3u);
    assert_true(kiln__cl_live_total() > 0);
    if (round == 0) { /* destroy everything by hand */
      KT_OK(kiln_event_destroy(e1));
      KT_OK(kiln_event_destroy(e2));
      KT_OK(kiln_kernel_destroy(add));
      KT_OK(kiln_kernel_destroy(vadd));
      KT_OK(kiln_kernel_destroy(one));
      KT_OK(kiln_program_destroy(kept));
      KT_OK(kiln_buffer_destroy(wb));
      KT_OK(kiln_buffer_destroy(a));
      KT_OK(kiln_buffer_destroy(b));
      KT_OK(kiln_stream_destroy(ws));
      KT_OK(kiln_stream_destroy(s1));
      KT_OK(kiln_stream_destroy(s2));
      assert_int_equal(kiln__cl_live[KILN__CLO_MEM], 0);
      assert_int_equal(kiln__cl_live[KILN__CLO_QUEUE], 0);
      assert_int_equal(kiln__cl_live[KILN__CLO_KERNEL], 0);
      assert_int_equal(kiln__cl_live[KILN__CLO_PROGRAM], 0);
    }
    KT_OK(kiln_context_destroy(ctx)); /* round 1: the context takes everything along */
    for (int kind = 0; kind < KILN__CLO_COUNT_; kind++)
      if (kiln__cl_live[kind] != 0)
        fail_msg("round %d: %ld live OpenCL objects of kind %d after teardown", round,
                 (long)kiln__cl_live[kind], kind);
    assert_int_equal(kiln__cl_live_total(), 0);
    assert_int_equal(cl->clReleaseCommandQueue(rawq), CL_SUCCESS);
    assert_int_equal(cl->clReleaseMemObject(raw), CL_SUCCESS);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(saxpy_matches_reference, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(reduce_local_memory_and_barriers, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_own_local_memory_counts_at_the_call, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(stencil2d_matches_reference, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(global_size_not_a_multiple_of_local, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(compile_error_names_first_line_and_keeps_log, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(launch_arguments_checked_against_the_signature, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(native_kernels_are_unsupported, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(max_allocation_size_enforced, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(native_handles_work_with_raw_opencl, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(native_kinds_that_do_not_apply_are_unsupported, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(rendezvous_two_streams_run_concurrently, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(hidden_sizes_only_where_read, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(command_events_follow_the_platform, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(burst_then_query_completes, setup_ocl, kt_teardown),
      cmocka_unit_test_setup_teardown(other_stream_sees_a_burst_without_events, setup_ocl,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(timing_after_a_burst_keeps_order, setup_ocl, kt_teardown),
      cmocka_unit_test(object_counts_return_to_zero),
  };
  if (!kt_backend_available(KILN_BACKEND_OPENCL)) {
    fprintf(stderr, "SKIP: the opencl backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
