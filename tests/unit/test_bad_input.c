/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda cuda-fake */
/* Bad input to every public function: each is refused with its documented status, a
 * filled kiln_last_error() (message naming the offending value where there is one,
 * suggestion, function), out-parameters set to NULL / empty tokens, and nothing leaked
 * (every test runs under the test allocator; teardown fails on a live block). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define BOGUS_PTR ((void *)(uintptr_t)0x1)

static kiln_buffer make_buffer(kt_env *env, size_t bytes) {
  return kt_buffer(env->ctx, bytes);
}

static kiln_event make_event(kt_env *env) {
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &e));
  return e;
}

/* ---- devices and backends ---- */

static void bad_device_queries(void **state) {
  kt_env *env = *state;
  kiln_backend_info info = KILN_BACKEND_INFO_INIT;
  KT_EXPECT(kiln_backend_get_info(0, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_backend_get_info(kiln_backend_count() + 5, &info), KILN_ERROR_INVALID_ARGUMENT,
                "");
  info.struct_size = 0;
  KT_EXPECT(kiln_backend_get_info(0, &info), KILN_ERROR_INVALID_ARGUMENT);
  info.struct_size = sizeof(size_t); /* smaller than the first version's */
  KT_EXPECT(kiln_backend_get_info(0, &info), KILN_ERROR_INVALID_ARGUMENT);

  KT_EXPECT(kiln_device_count(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_device_get(0, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_device d = BOGUS_PTR;
  KT_EXPECT_MSG(kiln_device_get(100000, &d), KILN_ERROR_DEVICE_NOT_FOUND, "100000");
  assert_null(d);
  KT_EXPECT(kiln_device_find(KILN_BACKEND_CPU, 0, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_device_parse("cpu", NULL), KILN_ERROR_INVALID_ARGUMENT);
  d = BOGUS_PTR;
  KT_EXPECT(kiln_device_parse(NULL, &d), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(d);
  KT_EXPECT(kiln_device_default(NULL), KILN_ERROR_INVALID_ARGUMENT);

  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_EXPECT(kiln_device_get_props(env->device, NULL), KILN_ERROR_INVALID_ARGUMENT);
  p.struct_size = 0;
  KT_EXPECT(kiln_device_get_props(env->device, &p), KILN_ERROR_INVALID_ARGUMENT);
  p.struct_size = sizeof(size_t) + 4;
  KT_EXPECT(kiln_device_get_props(env->device, &p), KILN_ERROR_INVALID_ARGUMENT);

  uint64_t f = 0, t = 0;
  KT_EXPECT(kiln_device_mem_info(env->device, NULL, &t), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_device_mem_info(env->device, &f, NULL), KILN_ERROR_INVALID_ARGUMENT);
  /* a handle of another type is not a device */
  KT_EXPECT(kiln_device_get_props((kiln_device)(void *)env->stream, &p), KILN_ERROR_INVALID_HANDLE);
}

/* ---- contexts ---- */

static void bad_context_calls(void **state) {
  kt_env *env = *state;
  KT_EXPECT(kiln_context_create(env->device, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_context c = BOGUS_PTR;
  kiln_context_desc d = KILN_CONTEXT_DESC_INIT;
  d.struct_size = 0;
  KT_EXPECT(kiln_context_create(env->device, &d, &c), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(c);
  d.struct_size = 2;
  KT_EXPECT(kiln_context_create(env->device, &d, &c), KILN_ERROR_INVALID_ARGUMENT);
  kiln_context_desc d2 = KILN_CONTEXT_DESC_INIT;
  d2.flags = 0x80; /* reserved */
  c = BOGUS_PTR;
  KT_EXPECT_MSG(kiln_context_create(env->device, &d2, &c), KILN_ERROR_INVALID_ARGUMENT, "0x80");
  assert_null(c);

  kiln_device dev = BOGUS_PTR;
  KT_EXPECT(kiln_context_get_device(NULL, &dev), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_context_get_device(env->ctx, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_context_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_context_destroy(NULL));
  /* a stream is not a context */
  KT_EXPECT(kiln_context_synchronize((kiln_context)(void *)env->stream), KILN_ERROR_INVALID_HANDLE);
}

static void context_destroyed_twice(void **state) {
  kt_env *env = *state;
  kiln_context c = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &c));
  KT_OK(kiln_context_destroy(c));
  KT_EXPECT(kiln_context_destroy(c), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_context_synchronize(c), KILN_ERROR_INVALID_HANDLE);
  kiln_stream s = BOGUS_PTR;
  KT_EXPECT(kiln_stream_create(c, NULL, &s), KILN_ERROR_INVALID_HANDLE);
  assert_null(s);
}

/* ---- streams ---- */

static void noop_cb(kiln_status status, void *user) {
  (void)status;
  (void)user;
}

static void bad_stream_calls(void **state) {
  kt_env *env = *state;
  kiln_stream s = BOGUS_PTR;
  KT_EXPECT(kiln_stream_create(NULL, NULL, &s), KILN_ERROR_INVALID_HANDLE);
  assert_null(s);
  KT_EXPECT(kiln_stream_create(env->ctx, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_stream_desc d = KILN_STREAM_DESC_INIT;
  d.struct_size = 1;
  s = BOGUS_PTR;
  KT_EXPECT(kiln_stream_create(env->ctx, &d, &s), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(s);
  kiln_stream_desc d2 = KILN_STREAM_DESC_INIT;
  d2.flags = 0x40;
  KT_EXPECT(kiln_stream_create(env->ctx, &d2, &s), KILN_ERROR_INVALID_ARGUMENT);

  KT_EXPECT(kiln_stream_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_query(NULL), KILN_ERROR_INVALID_HANDLE);
  kiln_event e = make_event(env);
  KT_EXPECT(kiln_stream_wait_event(NULL, e), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_wait_event(env->stream, NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_add_callback(NULL, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_add_callback(env->stream, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_stream_destroy(NULL));
  /* wrong type */
  KT_EXPECT(kiln_stream_query((kiln_stream)(void *)e), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_event_destroy(e));
}

static void stream_destroyed_is_refused(void **state) {
  kt_env *env = *state;
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  KT_OK(kiln_stream_destroy(s));
  KT_EXPECT(kiln_stream_destroy(s), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_synchronize(s), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_query(s), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_add_callback(s, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE);
  kiln_buffer b = make_buffer(env, 64);
  static uint8_t data[64];
  kiln_pending t = {42};
  KT_EXPECT(kiln_buffer_write_async(s, b, 0, 64, data, &t), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(t.id, 0);
  kiln_event e = make_event(env);
  KT_EXPECT(kiln_event_record(e, s), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_wait_event(s, e), KILN_ERROR_INVALID_HANDLE);
  kiln_kernel k = kt_add_kernel(env->ctx);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(16);
  KT_EXPECT(kiln_launch(s, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- events ---- */

static void bad_event_calls(void **state) {
  kt_env *env = *state;
  kiln_event e = BOGUS_PTR;
  KT_EXPECT(kiln_event_create(NULL, NULL, &e), KILN_ERROR_INVALID_HANDLE);
  assert_null(e);
  KT_EXPECT(kiln_event_create(env->ctx, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  d.struct_size = 3;
  e = BOGUS_PTR;
  KT_EXPECT(kiln_event_create(env->ctx, &d, &e), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(e);
  kiln_event_desc d2 = KILN_EVENT_DESC_INIT;
  d2.flags = 1u << 7; /* unknown flag */
  KT_EXPECT(kiln_event_create(env->ctx, &d2, &e), KILN_ERROR_INVALID_ARGUMENT);

  e = make_event(env);
  KT_EXPECT(kiln_event_record(NULL, env->stream), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_record(e, NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_query(NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  uint64_t ns = 0;
  KT_EXPECT(kiln_event_elapsed_ns(NULL, e, &ns), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_elapsed_ns(e, NULL, &ns), KILN_ERROR_INVALID_HANDLE);
  kiln_event_desc td = KILN_EVENT_DESC_INIT;
  td.flags = KILN_EVENT_TIMING;
  kiln_event t1 = NULL, t2 = NULL;
  KT_OK(kiln_event_create(env->ctx, &td, &t1));
  KT_OK(kiln_event_create(env->ctx, &td, &t2));
  KT_OK(kiln_event_record(t1, env->stream));
  KT_OK(kiln_event_record(t2, env->stream));
  KT_OK(kiln_event_synchronize(t2));
  KT_EXPECT(kiln_event_elapsed_ns(t1, t2, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_event_destroy(NULL));
  KT_EXPECT(kiln_event_query((kiln_event)(void *)env->stream), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_event_destroy(t1));
  KT_OK(kiln_event_destroy(t2));
  KT_OK(kiln_event_destroy(e));
}

static void event_destroyed_is_refused(void **state) {
  kt_env *env = *state;
  kiln_event e = make_event(env);
  KT_OK(kiln_event_record(e, env->stream));
  KT_OK(kiln_event_destroy(e));
  KT_EXPECT(kiln_event_destroy(e), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_query(e), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_synchronize(e), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_event_record(e, env->stream), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_wait_event(env->stream, e), KILN_ERROR_INVALID_HANDLE);
}

/* ---- buffers ---- */

static void bad_buffer_create(void **state) {
  kt_env *env = *state;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 64;
  kiln_buffer b = BOGUS_PTR;
  KT_EXPECT(kiln_buffer_create(NULL, &d, &b), KILN_ERROR_INVALID_HANDLE);
  assert_null(b);
  b = BOGUS_PTR;
  KT_EXPECT(kiln_buffer_create(env->ctx, NULL, &b), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(b);
  KT_EXPECT(kiln_buffer_create(env->ctx, &d, NULL), KILN_ERROR_INVALID_ARGUMENT);

  d.bytes = 0;
  b = BOGUS_PTR;
  KT_EXPECT(kiln_buffer_create(env->ctx, &d, &b), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(b);

  char want[32];
  d.bytes = (size_t)env->props.max_alloc_bytes + 1;
  snprintf(want, sizeof want, "%zu", d.bytes);
  b = BOGUS_PTR;
  KT_EXPECT_MSG(kiln_buffer_create(env->ctx, &d, &b), KILN_ERROR_LIMIT_EXCEEDED, want);
  assert_null(b);
  d.bytes = SIZE_MAX;
  snprintf(want, sizeof want, "%zu", d.bytes);
  KT_EXPECT_MSG(kiln_buffer_create(env->ctx, &d, &b), KILN_ERROR_LIMIT_EXCEEDED, want);

  kiln_buffer_desc d2 = KILN_BUFFER_DESC_INIT;
  d2.bytes = 64;
  d2.struct_size = 0;
  KT_EXPECT(kiln_buffer_create(env->ctx, &d2, &b), KILN_ERROR_INVALID_ARGUMENT);
  d2.struct_size = sizeof(size_t); /* ends before `bytes`: older than any version */
  KT_EXPECT(kiln_buffer_create(env->ctx, &d2, &b), KILN_ERROR_INVALID_ARGUMENT);
  kiln_buffer_desc d3 = KILN_BUFFER_DESC_INIT;
  d3.bytes = 64;
  d3.flags = 0x10; /* reserved */
  KT_EXPECT(kiln_buffer_create(env->ctx, &d3, &b), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(b);
}

static void bad_buffer_transfers(void **state) {
  kt_env *env = *state;
  enum { N = 64 };
  kiln_buffer b = make_buffer(env, N);
  uint8_t host[2 * N] = {0};
  size_t sz = 0;
  KT_EXPECT(kiln_buffer_get_size(NULL, &sz), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_get_size(b, NULL), KILN_ERROR_INVALID_ARGUMENT);

  /* NULL handles and pointers */
  KT_EXPECT(kiln_buffer_write(NULL, 0, 4, host), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_write(b, 0, 4, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_read(NULL, 0, 4, host), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_read(b, 0, 4, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_copy(NULL, 0, b, 0, 4), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_copy(b, 0, NULL, 0, 4), KILN_ERROR_INVALID_HANDLE);
  uint32_t pat = 0;
  KT_EXPECT(kiln_buffer_fill(NULL, 0, 4, &pat, 4), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_fill(b, 0, 4, NULL, 4), KILN_ERROR_INVALID_ARGUMENT);

  /* zero sizes */
  KT_EXPECT(kiln_buffer_write(b, 0, 0, host), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_read(b, 0, 0, host), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_copy(b, 0, b, 32, 0), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_fill(b, 0, 0, &pat, 4), KILN_ERROR_INVALID_ARGUMENT);

  /* past the end; named values */
  KT_EXPECT_MSG(kiln_buffer_write(b, 60, 8, host), KILN_ERROR_OUT_OF_RANGE, "60");
  KT_MSG_HAS("64");
  KT_EXPECT_MSG(kiln_buffer_read(b, 0, N + 1, host), KILN_ERROR_OUT_OF_RANGE, "65");
  KT_EXPECT(kiln_buffer_read(b, N, 1, host), KILN_ERROR_OUT_OF_RANGE);
  KT_OK(kiln_buffer_read(b, N - 1, 1, host)); /* the last byte is fine */
  KT_EXPECT(kiln_buffer_copy(b, 40, b, 0, 32), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_copy(b, 0, b, 40, 32), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_fill(b, 32, 64, &pat, 4), KILN_ERROR_OUT_OF_RANGE);

  /* overflowing sizes: offset + size wraps around */
  char want[32];
  snprintf(want, sizeof want, "%zu", (size_t)SIZE_MAX);
  KT_EXPECT_MSG(kiln_buffer_write(b, 0, SIZE_MAX, host), KILN_ERROR_OUT_OF_RANGE, want);
  KT_EXPECT(kiln_buffer_write(b, SIZE_MAX, 2, host), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_read(b, 8, SIZE_MAX - 4, host), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_read(b, SIZE_MAX - 3, 8, host), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_copy(b, SIZE_MAX - 3, b, 0, 8), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_copy(b, 0, b, SIZE_MAX - 3, 8), KILN_ERROR_OUT_OF_RANGE);
  KT_EXPECT(kiln_buffer_fill(b, SIZE_MAX - 3, 8, &pat, 4), KILN_ERROR_OUT_OF_RANGE);

  /* a copy within one buffer whose ranges overlap (OpenCL: CL_MEM_COPY_OVERLAP) */
  KT_EXPECT(kiln_buffer_copy(b, 0, b, 16, 32), KILN_ERROR_INVALID_ARGUMENT);

  /* buffer unchanged by all of it */
  uint8_t out[N];
  memset(host, 0, sizeof host);
  KT_OK(kiln_buffer_write(b, 0, N, host));
  KT_OK(kiln_buffer_read(b, 0, N, out));
  assert_memory_equal(out, host, N);
  KT_OK(kiln_buffer_destroy(b));
}

static void bad_fill_patterns(void **state) {
  kt_env *env = *state;
  kiln_buffer b = make_buffer(env, 256);
  uint8_t pat[256] = {0};
  KT_EXPECT_MSG(kiln_buffer_fill(b, 0, 12, pat, 3), KILN_ERROR_INVALID_ARGUMENT, "3");
  KT_EXPECT(kiln_buffer_fill(b, 0, 256, pat, 0), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_fill(b, 0, 256, pat, 256), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_fill(b, 0, 60, pat, 12), KILN_ERROR_INVALID_ARGUMENT);
  /* misaligned offset or size for the pattern */
  KT_EXPECT_MSG(kiln_buffer_fill(b, 2, 8, pat, 4), KILN_ERROR_INVALID_ARGUMENT, "2");
  KT_EXPECT(kiln_buffer_fill(b, 0, 6, pat, 4), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_fill(b, 8, 24, pat, 16), KILN_ERROR_INVALID_ARGUMENT);
  kiln_pending t = {7};
  KT_EXPECT(kiln_buffer_fill_async(env->stream, b, 0, 12, pat, 3, &t), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  KT_OK(kiln_buffer_destroy(b));
}

static void bad_async_transfers(void **state) {
  kt_env *env = *state;
  kiln_buffer b = make_buffer(env, 64);
  static uint8_t host[64];
  uint32_t pat = 0;
  kiln_pending t;
  /* NULL token out-parameter: nothing is queued */
  KT_EXPECT(kiln_buffer_write_async(env->stream, b, 0, 64, host, NULL),
            KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, 0, 64, host, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_copy_async(env->stream, b, 0, b, 32, 32, NULL),
            KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_buffer_fill_async(env->stream, b, 0, 64, &pat, 4, NULL),
            KILN_ERROR_INVALID_ARGUMENT);
  /* every failure writes an empty token */
  t.id = 99;
  KT_EXPECT(kiln_buffer_write_async(env->stream, NULL, 0, 64, host, &t), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_write_async(env->stream, b, 0, 64, NULL, &t), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, 0, 64, NULL, &t), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, 1, 64, host, &t), KILN_ERROR_OUT_OF_RANGE);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, SIZE_MAX, 2, host, &t), KILN_ERROR_OUT_OF_RANGE);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_write_async(env->stream, b, 0, 0, host, &t), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_copy_async(env->stream, b, 0, NULL, 0, 8, &t), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_copy_async(env->stream, b, 60, b, 0, 8, &t), KILN_ERROR_OUT_OF_RANGE);
  assert_int_equal(t.id, 0);
  t.id = 99;
  KT_EXPECT(kiln_buffer_fill_async(env->stream, b, 0, 64, NULL, 4, &t),
            KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  /* nothing was queued: the stream is idle */
  KT_OK(kiln_stream_query(env->stream));
  KT_OK(kiln_buffer_destroy(b));
}

static void buffer_destroyed_is_refused(void **state) {
  kt_env *env = *state;
  kiln_buffer b = make_buffer(env, 64), other = make_buffer(env, 64);
  static uint8_t host[64];
  KT_OK(kiln_buffer_destroy(b));
  KT_EXPECT(kiln_buffer_destroy(b), KILN_ERROR_INVALID_HANDLE);
  size_t sz = 0;
  KT_EXPECT(kiln_buffer_get_size(b, &sz), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_write(b, 0, 64, host), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_read(b, 0, 64, host), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_copy(other, 0, b, 0, 64), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_copy(b, 0, other, 0, 64), KILN_ERROR_INVALID_HANDLE);
  kiln_pending t = {5};
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, 0, 64, host, &t), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(t.id, 0);
  /* as a kernel argument */
  kiln_kernel k = kt_add_kernel(env->ctx);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(16);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  /* handles of many destroyed buffers stay refused (slots quarantined) */
  kiln_buffer dead[32];
  for (int i = 0; i < 32; i++) {
    dead[i] = make_buffer(env, 16);
    KT_OK(kiln_buffer_destroy(dead[i]));
  }
  for (int i = 0; i < 32; i++)
    KT_EXPECT(kiln_buffer_get_size(dead[i], &sz), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_buffer_destroy(other));
}

static void buffers_of_different_contexts(void **state) {
  kt_env *env = *state;
  kiln_context c2 = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &c2));
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(c2, NULL, &s2));
  kiln_buffer a = make_buffer(env, 64), b = kt_buffer(c2, 64);
  static uint8_t host[64];
  KT_EXPECT(kiln_buffer_copy(a, 0, b, 0, 64), KILN_ERROR_DEVICE_MISMATCH);
  KT_EXPECT(kiln_buffer_copy(b, 0, a, 0, 64), KILN_ERROR_DEVICE_MISMATCH);
  kiln_pending t = {3};
  KT_EXPECT(kiln_buffer_copy_async(env->stream, a, 0, b, 0, 64, &t), KILN_ERROR_DEVICE_MISMATCH);
  assert_int_equal(t.id, 0);
  /* a stream of one context, a buffer of the other */
  KT_EXPECT(kiln_buffer_write_async(env->stream, b, 0, 64, host, &t), KILN_ERROR_DEVICE_MISMATCH);
  assert_int_equal(t.id, 0);
  KT_EXPECT(kiln_buffer_read_async(s2, a, 0, 64, host, &t), KILN_ERROR_DEVICE_MISMATCH);
  uint32_t pat = 0;
  KT_EXPECT(kiln_buffer_fill_async(s2, a, 0, 64, &pat, 4, &t), KILN_ERROR_DEVICE_MISMATCH);
  /* events and streams of different contexts */
  kiln_event e = make_event(env);
  KT_EXPECT(kiln_event_record(e, s2), KILN_ERROR_DEVICE_MISMATCH);
  kiln_event_desc td = KILN_EVENT_DESC_INIT;
  td.flags = KILN_EVENT_TIMING;
  kiln_event t1 = NULL, t2 = NULL;
  KT_OK(kiln_event_create(env->ctx, &td, &t1));
  KT_OK(kiln_event_create(c2, &td, &t2));
  KT_OK(kiln_event_record(t1, env->stream));
  KT_OK(kiln_event_record(t2, s2));
  KT_OK(kiln_event_synchronize(t1));
  KT_OK(kiln_event_synchronize(t2));
  uint64_t ns = 0;
  KT_EXPECT(kiln_event_elapsed_ns(t1, t2, &ns), KILN_ERROR_DEVICE_MISMATCH);
  /* kernels and kernel arguments of another context */
  kiln_kernel k1 = kt_add_kernel(env->ctx), k2 = kt_add_kernel(c2);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kiln_range r = kiln_range_1d(16);
  kt_add_args(args, a, &off, &add);
  KT_EXPECT(kiln_launch(env->stream, k2, &r, args, 3), KILN_ERROR_DEVICE_MISMATCH);
  kt_add_args(args, b, &off, &add);
  KT_EXPECT(kiln_launch(env->stream, k1, &r, args, 3), KILN_ERROR_DEVICE_MISMATCH);
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_event_destroy(t1));
  KT_OK(kiln_kernel_destroy(k1));
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_context_destroy(c2)); /* takes b, s2, t2, k2 along */
}

/* ---- tokens ---- */

static void bad_tokens(void **state) {
  kt_env *env = *state;
  kiln_buffer b = make_buffer(env, 64);
  static uint8_t host[64];
  kiln_pending empty = KILN_PENDING_INIT;
  KT_EXPECT(kiln_wait(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_wait(&empty), KILN_ERROR_INVALID_HANDLE, "empty");
  KT_EXPECT(kiln_wait_timeout(NULL, 1000), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_wait_timeout(&empty, 1000), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_wait_all(NULL, 2), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_pending_query(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_pending_query(&empty), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pending_release(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_pending_release(&empty), KILN_ERROR_INVALID_HANDLE);
  kiln_pending forged = {UINT64_C(0xdeadbeefcafef00d)};
  KT_EXPECT(kiln_wait(&forged), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pending_query(&forged), KILN_ERROR_INVALID_HANDLE);

  /* waiting a token twice: the copy kept from before the first wait is stale */
  kiln_pending t, copy;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, host, &t));
  copy = t;
  KT_OK(kiln_wait(&t));
  assert_int_equal(t.id, 0);
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_INVALID_HANDLE); /* zeroed: empty */
  KT_EXPECT(kiln_wait(&copy), KILN_ERROR_INVALID_HANDLE);
  const char *m = kiln_last_error()->message;
  if (!kt_strcasestr(m, "already") && !kt_strcasestr(m, "stale"))
    fail_msg("waiting a token twice: the message says neither 'already' nor 'stale': %s", m);
  KT_EXPECT(kiln_pending_query(&copy), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pending_release(&copy), KILN_ERROR_INVALID_HANDLE);
  kiln_pending two[2] = {copy, copy};
  KT_EXPECT(kiln_wait_all(two, 2), KILN_ERROR_INVALID_HANDLE);

  /* a released token cannot be waited through an old copy */
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, host, &t));
  copy = t;
  KT_OK(kiln_pending_release(&t));
  assert_int_equal(t.id, 0);
  KT_EXPECT(kiln_wait(&copy), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_stream_synchronize(env->stream));

  /* the same token twice in one wait_all */
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, host, &t));
  kiln_pending dup[2] = {t, t};
  kiln_status st = kiln_wait_all(dup, 2);
  assert_int_equal(st, KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- kernels ---- */

static void dummy_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)args;
  (void)user;
}

static void bad_kernel_create(void **state) {
  kt_env *env = *state;
  kiln_param params[KILN_MAX_KERNEL_ARGS + 1];
  for (size_t i = 0; i <= KILN_MAX_KERNEL_ARGS; i++) {
    params[i].kind = KILN_PARAM_SCALAR;
    params[i].bytes = 4;
  }
  kiln_native_kernel_desc good = KILN_NATIVE_KERNEL_DESC_INIT;
  good.name = "kt_dummy";
  good.fn = dummy_fn;
  good.params = params;
  good.param_count = 1;
  kiln_kernel k = BOGUS_PTR;
  KT_EXPECT(kiln_kernel_create_native(NULL, &good, &k), KILN_ERROR_INVALID_HANDLE);
  assert_null(k);
  KT_EXPECT(kiln_kernel_create_native(env->ctx, NULL, &k), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &good, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_native_kernel_desc d = good;
  d.name = NULL;
  k = BOGUS_PTR;
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(k);
  d = good;
  d.fn = NULL;
  KT_EXPECT_MSG(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT,
                "kt_dummy");
  d = good;
  d.params = NULL;
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT);
  d = good;
  d.param_count = KILN_MAX_KERNEL_ARGS + 1;
  KT_EXPECT_MSG(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_LIMIT_EXCEEDED, "65");
  d = good;
  params[0].kind = (kiln_param_kind)99;
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT);
  params[0].kind = KILN_PARAM_SCALAR;
  params[0].bytes = 0; /* a scalar of no size */
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT);
  params[0].bytes = 4;
  d = good;
  d.struct_size = 4;
  KT_EXPECT(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_INVALID_ARGUMENT);
  /* the maximum itself is fine (arguments are checked before the backend is asked);
   * a backend without native kernels then says so */
  d = good;
  d.param_count = KILN_MAX_KERNEL_ARGS;
  if (kt_backend_native()) {
    KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  } else {
    KT_EXPECT_MSG(kiln_kernel_create_native(env->ctx, &d, &k), KILN_ERROR_UNSUPPORTED, "native");
    assert_null(k);
    k = kt_add_kernel(env->ctx);
  }
  const char *name = NULL;
  KT_EXPECT(kiln_kernel_get_name(NULL, &name), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_kernel_get_name(k, NULL), KILN_ERROR_INVALID_ARGUMENT);
  const kiln_param *gp = NULL;
  size_t count = 0;
  KT_EXPECT(kiln_kernel_get_params(NULL, &gp, &count), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_kernel_get_params(k, NULL, &count), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_kernel_get_params(k, &gp, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_kernel_destroy(k));
  KT_EXPECT(kiln_kernel_destroy(k), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_kernel_get_name(k, &name), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_kernel_destroy(NULL));
}

static void bad_launch_arguments(void **state) {
  kt_env *env = *state;
  kiln_kernel k = kt_add_kernel(env->ctx); /* (buffer RW, u64 scalar, u32 scalar) */
  kiln_buffer b = make_buffer(env, 64 * 4);
  uint64_t off = 0;
  uint32_t add = 1;
  uint16_t small = 1;
  kiln_arg args[4];
  kiln_range r = kiln_range_1d(64);
  kiln_pending t;

  kt_add_args(args, b, &off, &add);
  KT_EXPECT(kiln_launch(NULL, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_launch(env->stream, NULL, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_launch(env->stream, k, NULL, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_launch(env->stream, k, &r, NULL, 3), KILN_ERROR_INVALID_ARGUMENT);
  t.id = 11;
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 3, NULL), KILN_ERROR_INVALID_ARGUMENT);

  /* missing and extra arguments */
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 2), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  KT_MSG_HAS("2");
  KT_MSG_HAS("3");
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 0), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  args[3] = kiln_arg_scalar(&add, sizeof add);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 4), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  t.id = 11;
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 2, &t), KILN_ERROR_KERNEL_ARGS);
  assert_int_equal(t.id, 0);

  /* a scalar where a buffer is expected */
  kt_add_args(args, b, &off, &add);
  args[0] = kiln_arg_scalar(&add, sizeof add);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  KT_MSG_HAS("buffer");
  /* a buffer where a scalar is expected */
  kt_add_args(args, b, &off, &add);
  args[2] = kiln_arg_buffer(b);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  KT_MSG_HAS("scalar");
  /* a scalar of the wrong size: 2 bytes for a 4-byte parameter */
  kt_add_args(args, b, &off, &add);
  args[2] = kiln_arg_scalar(&small, sizeof small);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS, "kt_add_u32");
  KT_MSG_HAS("2");
  KT_MSG_HAS("4");
  /* local memory where a scalar is expected */
  kt_add_args(args, b, &off, &add);
  args[1] = kiln_arg_local(8);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS);
  /* an unknown argument kind */
  kt_add_args(args, b, &off, &add);
  args[1].kind = (kiln_arg_kind)77;
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS);
  /* a buffer argument that is NULL */
  kt_add_args(args, NULL, &off, &add);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  /* a scalar with no value */
  kt_add_args(args, b, &off, &add);
  args[1].value = NULL;
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_KERNEL_ARGS);

  KT_OK(kiln_stream_query(env->stream)); /* nothing ran */
  uint32_t host[64];
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(b, 0, sizeof host, &zero, 4));
  kt_add_args(args, b, &off, &add);
  KT_OK(kiln_launch(env->stream, k, &r, args, 3)); /* and the good call works */
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  for (int i = 0; i < 64; i++)
    assert_int_equal(host[i], 1);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
}

static void bad_launch_ranges(void **state) {
  kt_env *env = *state;
  kiln_kernel k = kt_add_kernel(env->ctx);
  kiln_buffer b = make_buffer(env, 64 * 4);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(64);
  r.dims = 0;
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT, "0");
  r.dims = 4;
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT, "4");
  r = kiln_range_1d(0);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  r = kiln_range_2d(8, 0);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  kiln_range r3 = KILN_RANGE_INIT;
  r3.dims = 3;
  r3.global[0] = 4;
  r3.global[1] = 4;
  r3.global[2] = 0;
  KT_EXPECT(kiln_launch(env->stream, k, &r3, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  r = kiln_range_1d(64);
  r.struct_size = 0;
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  r.struct_size = sizeof(size_t);
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_ARGUMENT);
  /* beyond the device's limits */
  if (env->props.max_work_group_size < SIZE_MAX) {
    r = kiln_range_1d(64);
    r.local[0] = env->props.max_work_group_size + 1;
    KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_LIMIT_EXCEEDED);
  }
  if (env->props.max_global_size[0] < SIZE_MAX) {
    r = kiln_range_1d(env->props.max_global_size[0] + 1);
    KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_LIMIT_EXCEEDED);
  }
  kiln_pending t = {9};
  r = kiln_range_1d(0);
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 3, &t), KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(t.id, 0);
  KT_OK(kiln_stream_query(env->stream));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
}

static void kernel_destroyed_is_refused(void **state) {
  kt_env *env = *state;
  kiln_kernel k = kt_add_kernel(env->ctx);
  kiln_buffer b = make_buffer(env, 64 * 4);
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(64);
  KT_OK(kiln_kernel_destroy(k));
  KT_EXPECT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  kiln_pending t = {1};
  KT_EXPECT(kiln_launch_async(env->stream, k, &r, args, 3, &t), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(t.id, 0);
  /* a buffer is not a kernel */
  KT_EXPECT(kiln_launch(env->stream, (kiln_kernel)(void *)b, &r, args, 3),
            KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- NULL handles, every function: KILN_ERROR_INVALID_HANDLE ("the handle is NULL,
 * destroyed, stale or of the wrong type"), out-parameters NULL / tokens empty. Checked
 * all together so one report lists every function that answers otherwise. ---- */

static char soft_report[8192];
static int soft_failures;

static void soft_expect(const char *expr, kiln_status got, kiln_status expected) {
  const kiln_error_info *e = kiln_last_error();
  const char *why = NULL;
  if (got != expected)
    why = "status";
  else if ((int)expected < 0 &&
           (e->status != expected || e->message[0] == '\0' || e->suggestion[0] == '\0'))
    why = "kiln_last_error() not filled";
  if (!why)
    return;
  soft_failures++;
  size_t used = strlen(soft_report);
  snprintf(soft_report + used, sizeof soft_report - used, "  %s -> %s (%s; message: %s)\n", expr,
           kiln_status_name(got), why, e->message);
}
#define SOFT(call, expected) soft_expect(#call, (call), (expected))

static void null_handles_are_invalid_handle(void **state) {
  kt_env *env = *state;
  soft_report[0] = '\0';
  soft_failures = 0;
  kiln_buffer b = make_buffer(env, 64);
  kiln_event e = make_event(env);
  kiln_kernel k = kt_add_kernel(env->ctx);
  static uint8_t host[64];
  uint32_t pat = 0;
  kiln_pending t = {77};
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  uint64_t f = 0, tot = 0, ns = 0;
  kiln_device dev = BOGUS_PTR;
  kiln_context c = BOGUS_PTR;
  kiln_stream s = BOGUS_PTR;
  kiln_event ev = BOGUS_PTR;
  kiln_buffer buf = BOGUS_PTR;
  kiln_kernel ker = BOGUS_PTR;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 64;
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  static const kiln_param kp[] = {{KILN_PARAM_SCALAR, 4}};
  kd.name = "kt_null";
  kd.fn = dummy_fn;
  kd.params = kp;
  kd.param_count = 1;
  size_t sz = 0;
  const char *name = NULL;
  const kiln_param *gp = NULL;
  uint64_t off = 0;
  uint32_t add = 1;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(16);

  SOFT(kiln_device_get_props(NULL, &p), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_device_mem_info(NULL, &f, &tot), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_context_create(NULL, NULL, &c), KILN_ERROR_INVALID_HANDLE);
  if (c != NULL)
    soft_expect("context_create(NULL device) leaves *context NULL", KILN_ERROR_INTERNAL,
                KILN_SUCCESS);
  SOFT(kiln_context_destroy(NULL), KILN_SUCCESS);
  SOFT(kiln_context_get_device(NULL, &dev), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_context_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_stream_create(NULL, NULL, &s), KILN_ERROR_INVALID_HANDLE);
  if (s != NULL)
    soft_expect("stream_create(NULL context) leaves *stream NULL", KILN_ERROR_INTERNAL,
                KILN_SUCCESS);
  SOFT(kiln_stream_destroy(NULL), KILN_SUCCESS);
  SOFT(kiln_stream_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_stream_query(NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_stream_wait_event(NULL, e), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_stream_wait_event(env->stream, NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_stream_add_callback(NULL, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_create(NULL, NULL, &ev), KILN_ERROR_INVALID_HANDLE);
  if (ev != NULL)
    soft_expect("event_create(NULL context) leaves *event NULL", KILN_ERROR_INTERNAL, KILN_SUCCESS);
  SOFT(kiln_event_destroy(NULL), KILN_SUCCESS);
  SOFT(kiln_event_record(NULL, env->stream), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_record(e, NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_query(NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_synchronize(NULL), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_elapsed_ns(NULL, e, &ns), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_event_elapsed_ns(e, NULL, &ns), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_create(NULL, &bd, &buf), KILN_ERROR_INVALID_HANDLE);
  if (buf != NULL)
    soft_expect("buffer_create(NULL context) leaves *buffer NULL", KILN_ERROR_INTERNAL,
                KILN_SUCCESS);
  SOFT(kiln_buffer_destroy(NULL), KILN_SUCCESS);
  SOFT(kiln_buffer_get_size(NULL, &sz), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_write(NULL, 0, 4, host), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_read(NULL, 0, 4, host), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_copy(NULL, 0, b, 0, 4), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_copy(b, 0, NULL, 0, 4), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_fill(NULL, 0, 4, &pat, 4), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_write_async(NULL, b, 0, 4, host, &t), KILN_ERROR_INVALID_HANDLE);
  if (t.id != 0)
    soft_expect("a failed _async call writes an empty token", KILN_ERROR_INTERNAL, KILN_SUCCESS);
  SOFT(kiln_buffer_write_async(env->stream, NULL, 0, 4, host, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_read_async(NULL, b, 0, 4, host, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_read_async(env->stream, NULL, 0, 4, host, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_copy_async(NULL, b, 0, b, 32, 4, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_copy_async(env->stream, NULL, 0, b, 32, 4, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_copy_async(env->stream, b, 0, NULL, 32, 4, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_fill_async(NULL, b, 0, 4, &pat, 4, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_buffer_fill_async(env->stream, NULL, 0, 4, &pat, 4, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_kernel_create_native(NULL, &kd, &ker), KILN_ERROR_INVALID_HANDLE);
  if (ker != NULL)
    soft_expect("kernel_create_native(NULL context) leaves *kernel NULL", KILN_ERROR_INTERNAL,
                KILN_SUCCESS);
  SOFT(kiln_kernel_destroy(NULL), KILN_SUCCESS);
  SOFT(kiln_kernel_get_name(NULL, &name), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_kernel_get_params(NULL, &gp, &sz), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_launch(NULL, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_launch(env->stream, NULL, &r, args, 3), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_launch_async(NULL, k, &r, args, 3, &t), KILN_ERROR_INVALID_HANDLE);
  SOFT(kiln_launch_async(env->stream, NULL, &r, args, 3, &t), KILN_ERROR_INVALID_HANDLE);
  kt_add_args(args, NULL, &off, &add);
  SOFT(kiln_launch(env->stream, k, &r, args, 3), KILN_ERROR_INVALID_HANDLE);

  KT_OK(kiln_stream_query(env->stream)); /* nothing was queued */
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_buffer_destroy(b));
  if (soft_failures) {
    fprintf(stderr, "%d call(s) with a NULL handle did not answer as expected:\n%s", soft_failures,
            soft_report);
    fail();
  }
}

/* ---- allocator ---- */

static void *plain_alloc(size_t size, size_t align, void *user) {
  (void)size;
  (void)align;
  (void)user;
  return NULL;
}

static void plain_free(void *ptr, size_t size, size_t align, void *user) {
  (void)ptr;
  (void)size;
  (void)align;
  (void)user;
}

static void set_allocator_refused_while_context_exists(void **state) {
  kt_env *env = *state;
  (void)env;
  kiln_allocator a = KILN_ALLOCATOR_INIT;
  a.alloc = plain_alloc;
  a.free = plain_free;
  KT_EXPECT(kiln_set_allocator(NULL), KILN_ERROR_INVALID_STATE);
  KT_EXPECT(kiln_set_allocator(&a), KILN_ERROR_INVALID_STATE);
}

static void set_allocator_bad_descriptions(void **state) {
  (void)state;
  kiln_allocator a = KILN_ALLOCATOR_INIT;
  KT_EXPECT(kiln_set_allocator(&a), KILN_ERROR_INVALID_ARGUMENT); /* no functions */
  a.alloc = plain_alloc;
  KT_EXPECT(kiln_set_allocator(&a), KILN_ERROR_INVALID_ARGUMENT); /* alloc without free */
  kiln_allocator b = KILN_ALLOCATOR_INIT;
  b.struct_size = sizeof(size_t);
  KT_EXPECT(kiln_set_allocator(&b), KILN_ERROR_INVALID_ARGUMENT);
  b.struct_size = 0;
  KT_EXPECT(kiln_set_allocator(&b), KILN_ERROR_INVALID_ARGUMENT);
  KT_OK(kiln_set_allocator(NULL));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(bad_device_queries, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_context_calls, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(context_destroyed_twice, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_stream_calls, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stream_destroyed_is_refused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_event_calls, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_destroyed_is_refused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_buffer_create, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_buffer_transfers, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_fill_patterns, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_async_transfers, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_destroyed_is_refused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffers_of_different_contexts, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_tokens, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_kernel_create, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_launch_arguments, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(bad_launch_ranges, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_destroyed_is_refused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(null_handles_are_invalid_handle, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(set_allocator_refused_while_context_exists, kt_setup,
                                      kt_teardown),
      cmocka_unit_test(set_allocator_bad_descriptions),
  };
  if (!kt_backend_available(kt_backend())) { /* KILN_TEST_BACKEND, set by ctest */
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
