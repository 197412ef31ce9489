/* SPDX-License-Identifier: MIT */
/* The CUDA backend's runtime on the fake libcuda (tests/cuda/fake_libcuda.c): copies
 * and fills (memsets and the upload + doubling-copies path for wide patterns), async
 * tokens and cross-stream dependencies (cuStreamWaitEvent), timing events, native
 * handles and wrapping, memory info, a sticky error marking the device lost and
 * kiln_device_reset bringing it back, kernel argument checking (kiln's signature
 * parser, identical to OpenCL's) and the launch layout (hidden global sizes, local
 * memory offsets into dynamic shared memory, block size from the occupancy API) on a
 * program NVRTC really compiled. Kernels never run on the fake. tests/cuda.cmake sets
 * KILN_CUDA_LIBRARY to the fake (and the per-test behaviour).
 * kiln-test-labels: cuda-nogpu unit
 * kiln-test-link: static */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../cuda/fake_libcuda.h"
#include "kiln.h"
#include "kiln_test.h"

long kiln__cu_live_total(void);

typedef struct fx {
  kiln_device dev;
  kiln_context ctx;
  kiln_stream s;
} fx;

static int setup(void **state) {
  static fx f;
  memset(&f, 0, sizeof f);
  KT_OK(kiln_device_find(KILN_BACKEND_CUDA, 0, &f.dev));
  KT_OK(kiln_context_create(f.dev, NULL, &f.ctx));
  KT_OK(kiln_stream_create(f.ctx, NULL, &f.s));
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  kiln_stream_destroy(f->s);
  kiln_context_destroy(f->ctx);
  assert_int_equal(kiln__cu_live_total(), 0);
  return 0;
}

static kiln_buffer buffer(fx *f, size_t bytes) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(f->ctx, &d, &b));
  return b;
}

static void *fake_sym(const char *name) {
  void *lib = dlopen(getenv("KILN_CUDA_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(lib);
  void *p = dlsym(lib, name);
  assert_non_null(p);
  dlclose(lib);
  return p;
}

static void test_copies_and_fills(void **state) {
  fx *f = *state;
  enum { N = 8192 };
  static unsigned char host[N], back[N];
  kiln_buffer a = buffer(f, N), b = buffer(f, N);
  for (size_t i = 0; i < N; i++)
    host[i] = (unsigned char)(i * 7u + 3u);
  KT_OK(kiln_buffer_write(a, 0, N, host));
  KT_OK(kiln_buffer_copy(b, 0, a, 0, N));
  KT_OK(kiln_buffer_read(b, 0, N, back));
  assert_memory_equal(back, host, N);
  static const size_t widths[] = {1, 2, 4, 8, 16, 32, 128};
  for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
    unsigned char pat[128];
    for (size_t i = 0; i < widths[w]; i++)
      pat[i] = (unsigned char)(0xa0u + i * 5u + w);
    size_t off = 256, len = N - 512 - (N - 512) % widths[w];
    KT_OK(kiln_buffer_write(a, 0, N, host));
    KT_OK(kiln_buffer_fill(a, off, len, pat, widths[w]));
    KT_OK(kiln_buffer_read(a, 0, N, back));
    for (size_t i = 0; i < N; i++) {
      unsigned char want = i >= off && i < off + len ? pat[(i - off) % widths[w]] : host[i];
      if (back[i] != want)
        fail_msg("pattern of %zu bytes: byte %zu is %u, expected %u", widths[w], i, back[i], want);
    }
  }
  /* a wide pattern that repeats a 2-byte unit goes through cuMemsetD16Async */
  unsigned char rep[8] = {1, 2, 1, 2, 1, 2, 1, 2};
  KT_OK(kiln_buffer_fill(a, 0, N, rep, sizeof rep));
  KT_OK(kiln_buffer_read(a, 0, N, back));
  for (size_t i = 0; i < N; i++)
    assert_int_equal(back[i], rep[i % 2]);
  kiln_buffer_destroy(a);
  kiln_buffer_destroy(b);
}

static void test_async_tokens_and_streams(void **state) {
  fx *f = *state;
  enum { N = 4096 };
  static unsigned char host[N], back[N];
  for (size_t i = 0; i < N; i++)
    host[i] = (unsigned char)(i ^ 0x5a);
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(f->ctx, NULL, &s2));
  kiln_buffer a = buffer(f, N), b = buffer(f, N);
  kiln_pending t1 = {0}, t2 = {0}, t3 = {0};
  KT_OK(kiln_buffer_write_async(f->s, a, 0, N, host, &t1));
  KT_OK(kiln_buffer_copy_async(s2, b, 0, a, 0, N, &t2));   /* waits for the write on f->s */
  KT_OK(kiln_buffer_read_async(f->s, b, 0, N, back, &t3)); /* waits for the copy on s2 */
  KT_OK(kiln_wait(&t3));
  KT_OK(kiln_wait(&t2));
  KT_OK(kiln_wait(&t1));
  assert_memory_equal(back, host, N);
  KT_OK(kiln_stream_synchronize(s2));
  kiln_buffer_destroy(a);
  kiln_buffer_destroy(b);
  KT_OK(kiln_stream_destroy(s2));
}

static void test_timing_events(void **state) {
  fx *f = *state;
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  d.flags = KILN_EVENT_TIMING;
  kiln_event e0 = NULL, e1 = NULL, plain = NULL;
  KT_OK(kiln_event_create(f->ctx, &d, &e0));
  KT_OK(kiln_event_create(f->ctx, &d, &e1));
  KT_OK(kiln_event_create(f->ctx, NULL, &plain));
  kiln_buffer b = buffer(f, 1 << 20);
  KT_OK(kiln_event_record(e0, f->s));
  unsigned char z = 0;
  KT_OK(kiln_buffer_fill(b, 0, 1 << 20, &z, 1));
  KT_OK(kiln_event_record(e1, f->s));
  KT_OK(kiln_event_record(plain, f->s));
  KT_OK(kiln_event_synchronize(e1));
  KT_OK(kiln_event_synchronize(plain));
  uint64_t ns = UINT64_MAX;
  KT_OK(kiln_event_elapsed_ns(e0, e1, &ns));
  assert_true(ns < 60ull * 1000000000ull);
  assert_int_not_equal(kiln_event_elapsed_ns(e0, plain, &ns), KILN_SUCCESS);
  kiln_buffer_destroy(b);
  kiln_event_destroy(e0);
  kiln_event_destroy(e1);
  kiln_event_destroy(plain);
}

static void test_native_handles(void **state) {
  fx *f = *state;
  kiln_buffer b = buffer(f, 1024);
  unsigned long long ptr = 0;
  void *cs = NULL, *cc = NULL;
  int cdev = -1;
  KT_OK(kiln_buffer_get_native(b, KILN_NATIVE_CU_DEVICEPTR, &ptr));
  KT_OK(kiln_stream_get_native(f->s, KILN_NATIVE_CU_STREAM, &cs));
  KT_OK(kiln_context_get_native(f->ctx, KILN_NATIVE_CU_CONTEXT, &cc));
  KT_OK(kiln_device_get_native(f->dev, KILN_NATIVE_CU_DEVICE, &cdev));
  assert_true(ptr != 0 && cs && cc);
  assert_int_equal(cdev, 0);
  KT_EXPECT(kiln_buffer_get_native(b, KILN_NATIVE_CL_MEM, &cs), KILN_ERROR_UNSUPPORTED);
  /* the fake's device memory is host memory: the pointer is where the bytes are */
  unsigned char v[16] = "kiln over cuda!";
  KT_OK(kiln_buffer_write(b, 0, sizeof v, v));
  assert_memory_equal((const void *)(uintptr_t)ptr, v, sizeof v);
  kiln_buffer w = NULL;
  KT_OK(kiln_buffer_wrap_native(f->ctx, KILN_NATIVE_CU_DEVICEPTR, &ptr, 1024, &w));
  unsigned char back[16];
  KT_OK(kiln_buffer_read(w, 0, sizeof back, back));
  assert_memory_equal(back, v, sizeof v);
  kiln_buffer w2 = NULL;
  KT_EXPECT(kiln_buffer_wrap_native(f->ctx, KILN_NATIVE_CU_DEVICEPTR, &ptr, 2048, &w2),
            KILN_ERROR_OUT_OF_RANGE);
  KT_OK(kiln_buffer_destroy(w));
  KT_OK(kiln_buffer_read(b, 0, sizeof back, back)); /* still ours */
  kiln_buffer_destroy(b);
}

static void test_mem_info(void **state) {
  fx *f = *state;
  uint64_t free0 = 0, total = 0, free1 = 0;
  KT_OK(kiln_device_mem_info(f->dev, &free0, &total));
  assert_int_equal(total, 4ull << 30);
  kiln_buffer b = buffer(f, 1 << 20);
  KT_OK(kiln_device_mem_info(f->dev, &free1, &total));
  assert_int_equal(free0 - free1, 1 << 20);
  kiln_buffer_destroy(b);
}

/* KILN_FAKE_CUDA_STICKY_NTH=3: the stream's reference event (1), the first write (2)
 * pass; the read's completion (3) sees CUDA_ERROR_ILLEGAL_ADDRESS. */
static void test_sticky_error_and_reset(void **state) {
  fx *f = *state;
  kiln_buffer b = buffer(f, 256);
  unsigned char v[256] = {1}, back[256];
  kiln_pending t = {0};
  KT_OK(kiln_buffer_write_async(f->s, b, 0, sizeof v, v, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_buffer_read_async(f->s, b, 0, sizeof back, back, &t));
  assert_int_equal(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT_MSG(kiln_buffer_write(b, 0, sizeof v, v), KILN_ERROR_DEVICE_LOST,
                "CUDA_ERROR_ILLEGAL_ADDRESS");
  KT_OK(kiln_device_reset(f->dev)); /* cuDevicePrimaryCtxReset clears it; the probe passes */
  KT_EXPECT(kiln_buffer_write(b, 0, sizeof v, v), KILN_ERROR_DEVICE_LOST); /* old generation */
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_stream_destroy(f->s));
  KT_OK(kiln_context_destroy(f->ctx));
  KT_OK(kiln_context_create(f->dev, NULL, &f->ctx));
  KT_OK(kiln_stream_create(f->ctx, NULL, &f->s));
  b = buffer(f, 256);
  KT_OK(kiln_buffer_write(b, 0, sizeof v, v));
  KT_OK(kiln_buffer_read(b, 0, sizeof back, back));
  assert_memory_equal(back, v, sizeof v);
  kiln_buffer_destroy(b);
}

static kiln_program program(fx *f, const char *name, const char *src) {
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = name;
  kiln_program p = NULL;
  KT_OK(kiln_program_create(f->ctx, &d, &p));
  return p;
}

static const char reduce_src[] =
    "KILN_KERNEL void reduce_sum(KILN_GLOBAL const float *in, KILN_GLOBAL float *partial,\n"
    "                            KILN_LOCAL float *scratch, unsigned int n) {\n"
    "  size_t l = kiln_local_id(0), g = kiln_global_id(0);\n"
    "  scratch[l] = g < n ? in[g] : 0.0f;\n"
    "  kiln_barrier();\n"
    "  if (l == 0) partial[kiln_group_id(0)] = scratch[0];\n"
    "}\n"
    "KILN_KERNEL void two_locals(KILN_LOCAL float *a, KILN_LOCAL int *b, KILN_GLOBAL float *o) {\n"
    "  a[0] = 1.0f; b[0] = 2; kiln_barrier(); o[0] = a[0] + (float)b[0];\n"
    "}\n";

static void test_kernel_arguments_checked(void **state) {
  fx *f = *state;
  kiln_program p = program(f, "reduce.kiln", reduce_src);
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "reduce_sum", &k));
  kiln_kernel none = NULL;
  KT_EXPECT_MSG(kiln_kernel_create(p, "reduce", &none), KILN_ERROR_INVALID_ARGUMENT, "reduce_sum");
  kiln_buffer in = buffer(f, 4096), out = buffer(f, 64);
  unsigned n = 1000;
  uint64_t n8 = 1000;
  kiln_range r = kiln_range_1d(1000);
  kiln_arg three[] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_local(1024)};
  KT_EXPECT_MSG(kiln_launch(f->s, k, &r, three, 3), KILN_ERROR_KERNEL_ARGS,
                "takes 4 arguments, got 3");
  kiln_arg wide[] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_local(1024),
                     kiln_arg_scalar(&n8, 8)};
  KT_EXPECT_MSG(kiln_launch(f->s, k, &r, wide, 4), KILN_ERROR_KERNEL_ARGS,
                "expected a 4-byte scalar, got a 8-byte");
  kiln_arg notlocal[] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_buffer(out),
                         kiln_arg_scalar(&n, 4)};
  KT_EXPECT_MSG(kiln_launch(f->s, k, &r, notlocal, 4), KILN_ERROR_KERNEL_ARGS, "argument 2");
  kiln_arg scalar_for_buffer[] = {kiln_arg_scalar(&n, 4), kiln_arg_buffer(out),
                                  kiln_arg_local(1024), kiln_arg_scalar(&n, 4)};
  KT_EXPECT_MSG(kiln_launch(f->s, k, &r, scalar_for_buffer, 4), KILN_ERROR_KERNEL_ARGS,
                "expected a buffer");
  kiln_arg ok[] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_local(1024),
                   kiln_arg_scalar(&n, 4)};
  KT_OK(kiln_launch(f->s, k, &r, ok, 4));
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  kiln_buffer_destroy(in);
  kiln_buffer_destroy(out);
}

static void test_launch_layout(void **state) {
  fx *f = *state;
  kiln_fake_cuda_expect_params_fn expect;
  kiln_fake_cuda_last_launch_fn last;
  *(void **)&expect = fake_sym("kiln_fake_cuda_expect_params");
  *(void **)&last = fake_sym("kiln_fake_cuda_last_launch");
  kiln_program p = program(f, "reduce.kiln", reduce_src);
  kiln_kernel k = NULL, k2 = NULL;
  KT_OK(kiln_kernel_create(p, "reduce_sum", &k));
  KT_OK(kiln_kernel_create(p, "two_locals", &k2));
  kiln_buffer in = buffer(f, 4096), out = buffer(f, 64);
  unsigned long long pin = 0, pout = 0;
  KT_OK(kiln_buffer_get_native(in, KILN_NATIVE_CU_DEVICEPTR, &pin));
  KT_OK(kiln_buffer_get_native(out, KILN_NATIVE_CU_DEVICEPTR, &pout));
  unsigned n = 1000;
  kiln_fake_launch l;

  /* reduce_sum: 2 pointers, the local offset (u32), n, then the 3 hidden u64 sizes */
  const size_t sizes[] = {8, 8, 4, 4, 8, 8, 8};
  expect(sizes, 7);
  kiln_range r = kiln_range_1d(1000);
  kiln_arg a[] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_local(1000),
                  kiln_arg_scalar(&n, 4)};
  KT_OK(kiln_launch(f->s, k, &r, a, 4));
  last(&l);
  assert_int_equal(l.shared_bytes, 1000);
  assert_int_equal(l.block[0], 768); /* the fake's occupancy answer */
  assert_int_equal(l.grid[0], 2);    /* 1000 rounded up to whole blocks */
  assert_int_equal(l.grid[1], 1);
  unsigned long long v64;
  unsigned v32;
  memcpy(&v64, l.params[0], 8);
  assert_int_equal(v64, pin);
  memcpy(&v64, l.params[1], 8);
  assert_int_equal(v64, pout);
  memcpy(&v32, l.params[2], 4);
  assert_int_equal(v32, 0);
  memcpy(&v32, l.params[3], 4);
  assert_int_equal(v32, 1000);
  memcpy(&v64, l.params[4], 8);
  assert_int_equal(v64, 1000); /* kiln_global_size(0): the size asked for */
  memcpy(&v64, l.params[5], 8);
  assert_int_equal(v64, 1);
  memcpy(&v64, l.params[6], 8);
  assert_int_equal(v64, 1);

  /* the caller's local size */
  r.local[0] = 128;
  KT_OK(kiln_launch(f->s, k, &r, a, 4));
  last(&l);
  assert_int_equal(l.block[0], 128);
  assert_int_equal(l.grid[0], 8);

  /* two local parameters: parts in parameter order, 16-byte aligned */
  const size_t sizes2[] = {4, 4, 8, 8, 8, 8};
  expect(sizes2, 6);
  kiln_range r2 = kiln_range_2d(40, 30);
  kiln_arg a2[] = {kiln_arg_local(100), kiln_arg_local(40), kiln_arg_buffer(out)};
  KT_OK(kiln_launch(f->s, k2, &r2, a2, 3));
  last(&l);
  memcpy(&v32, l.params[0], 4);
  assert_int_equal(v32, 0);
  memcpy(&v32, l.params[1], 4);
  assert_int_equal(v32, 112);
  assert_int_equal(l.shared_bytes, 152);
  assert_int_equal(l.block[0], 16);
  assert_int_equal(l.block[1], 16);
  assert_int_equal(l.grid[0], 3);
  assert_int_equal(l.grid[1], 2);
  memcpy(&v64, l.params[3], 8);
  assert_int_equal(v64, 40);
  memcpy(&v64, l.params[4], 8);
  assert_int_equal(v64, 30);

  /* more shared memory than the device has: refused before the driver sees it */
  kiln_arg big[] = {kiln_arg_local(200000), kiln_arg_local(40000), kiln_arg_buffer(out)};
  KT_EXPECT(kiln_launch(f->s, k2, &r2, big, 3), KILN_ERROR_LIMIT_EXCEEDED);
  kiln_kernel_destroy(k);
  kiln_kernel_destroy(k2);
  kiln_program_destroy(p);
  kiln_buffer_destroy(in);
  kiln_buffer_destroy(out);
}

static void test_nvrtc_relative_path_refused(void **state) {
  fx *f = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = reduce_src;
  kiln_program p = NULL;
  KT_EXPECT_MSG(kiln_program_create(f->ctx, &d, &p), KILN_ERROR_BACKEND_UNAVAILABLE,
                "KILN_NVRTC_LIBRARY='libnvrtc.so.13' is a relative path");
  assert_null(p);
}

/* The feature level scoped_atomics needs compute capability 6.0 (the _block atomics):
 * tests/cuda.cmake runs this on a fake sm_50 device, refused at program creation
 * before NVRTC runs, naming the device and what it lacks. */
static void test_scoped_level_needs_sm_60(void **state) {
  fx *f = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = "KILN_FEATURE_LEVEL(scoped_atomics);\n"
             "KILN_KERNEL void v(KILN_GLOBAL uint *o) {\n"
             "  kiln_atomic_add_explicit(o, 1u, KILN_ORDER_RELAXED, KILN_SCOPE_WORK_GROUP);\n}\n";
  kiln_program p = NULL;
  KT_EXPECT_MSG(kiln_program_create(f->ctx, &d, &p), KILN_ERROR_UNSUPPORTED,
                "the feature level 'scoped_atomics' needs what CUDA device");
  KT_MSG_HAS("(sm_50) lacks: compute capability 6.0");
  assert_null(p);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_copies_and_fills, setup, teardown),
      cmocka_unit_test_setup_teardown(test_async_tokens_and_streams, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timing_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_native_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mem_info, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sticky_error_and_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kernel_arguments_checked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_launch_layout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nvrtc_relative_path_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scoped_level_needs_sm_60, setup, teardown),
  };
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
