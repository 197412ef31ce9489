/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock */
/* Bad input to the interop calls (src/core/native.c): each refusal names the value, the
 * out-parameter is left NULL, and nothing leaks (the test allocator's teardown fails on
 * a live block). A wrap whose buffer record cannot be allocated fails cleanly and the
 * memory it was asked to wrap stays the caller's. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "test_alloc.h"

/* The kind a buffer of this device's backend wraps, and a valid native object of it
 * (a host pointer on cpu and mock; a cl_mem on OpenCL). */
static kiln_native_kind wrap_kind(kt_env *env, kiln_buffer helper, void *native) {
  if (kt_backend() == KILN_BACKEND_MOCK) { /* no native objects: any non-NULL address */
    *(void **)native = helper;
    return KILN_NATIVE_HOST_POINTER;
  }
  if (kt_backend() == KILN_BACKEND_OPENCL) {
    KT_OK(kiln_buffer_get_native(helper, KILN_NATIVE_CL_MEM, native));
    return KILN_NATIVE_CL_MEM;
  }
  (void)env;
  KT_OK(kiln_buffer_get_native(helper, KILN_NATIVE_HOST_POINTER, native));
  return KILN_NATIVE_HOST_POINTER;
}

static void get_native_refusals(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 256);
  void *out = NULL;
  KT_EXPECT_MSG(kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "out is NULL");
  KT_EXPECT_MSG(kiln_context_get_native(env->ctx, KILN_NATIVE_CL_CONTEXT, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "out is NULL");
  KT_EXPECT_MSG(kiln_stream_get_native(env->stream, KILN_NATIVE_CL_COMMAND_QUEUE, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "out is NULL");
  KT_EXPECT_MSG(kiln_device_get_native(env->device, KILN_NATIVE_CL_DEVICE, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "out is NULL");
  KT_EXPECT(kiln_device_get_native(NULL, KILN_NATIVE_CL_DEVICE, &out), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_context_get_native(NULL, KILN_NATIVE_CL_CONTEXT, &out), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_stream_get_native(NULL, KILN_NATIVE_CL_COMMAND_QUEUE, &out),
            KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_buffer_get_native(NULL, KILN_NATIVE_CL_MEM, &out), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_kernel_get_native(NULL, KILN_NATIVE_CL_KERNEL, &out), KILN_ERROR_INVALID_HANDLE);
  if (kt_backend() == KILN_BACKEND_MOCK) { /* a backend without native objects says so */
    KT_EXPECT_MSG(kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, &out), KILN_ERROR_UNSUPPORTED,
                  "has no native buffer objects");
    KT_EXPECT_MSG(kiln_context_get_native(env->ctx, KILN_NATIVE_HOST_POINTER, &out),
                  KILN_ERROR_UNSUPPORTED, "has no native context objects");
    KT_OK(kiln_buffer_destroy(b));
    return;
  }
  /* a kind of another backend: refused, naming the kind */
  kiln_native_kind foreign =
      kt_backend() == KILN_BACKEND_OPENCL ? KILN_NATIVE_CU_DEVICEPTR : KILN_NATIVE_CL_MEM;
  kiln_status st = kiln_buffer_get_native(b, foreign, &out);
  assert_true(st == KILN_ERROR_UNSUPPORTED || st == KILN_ERROR_INVALID_ARGUMENT);
  char num[16];
  snprintf(num, sizeof num, "%d", (int)foreign);
  KT_MSG_HAS(num);
  KT_OK(kiln_buffer_destroy(b));
}

static void wrap_refusals(void **state) {
  kt_env *env = *state;
  kiln_buffer helper = kt_buffer(env->ctx, 4096);
  void *native = NULL;
  kiln_native_kind kind = wrap_kind(env, helper, &native);
  kiln_buffer w = (kiln_buffer)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_buffer_wrap_native(env->ctx, kind, &native, 64, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "buffer (the out-parameter) is NULL");
  KT_EXPECT(kiln_buffer_wrap_native(NULL, kind, &native, 64, &w), KILN_ERROR_INVALID_HANDLE);
  assert_null(w);
  w = (kiln_buffer)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_buffer_wrap_native(env->ctx, kind, NULL, 64, &w), KILN_ERROR_INVALID_ARGUMENT,
                "native is NULL");
  assert_null(w);
  KT_EXPECT_MSG(kiln_buffer_wrap_native(env->ctx, kind, &native, 0, &w),
                KILN_ERROR_INVALID_ARGUMENT, "bytes is 0");
  assert_null(w);
  size_t huge = (size_t)env->props.max_alloc_bytes + 1;
  if ((uint64_t)huge > env->props.max_alloc_bytes) { /* no wrap-around on 64-bit */
    char num[32];
    snprintf(num, sizeof num, "%zu", huge);
    KT_EXPECT_MSG(kiln_buffer_wrap_native(env->ctx, kind, &native, huge, &w),
                  KILN_ERROR_LIMIT_EXCEEDED, num);
    KT_MSG_HAS("largest allocation");
    assert_null(w);
  }
  if (kt_backend() == KILN_BACKEND_MOCK) { /* a backend that wraps nothing says so */
    KT_EXPECT_MSG(kiln_buffer_wrap_native(env->ctx, kind, &native, 64, &w), KILN_ERROR_UNSUPPORTED,
                  "cannot wrap native buffers");
    assert_null(w);
    KT_OK(kiln_buffer_destroy(helper));
    return;
  }
  /* a kind this backend does not wrap: the backend refuses, naming it, nothing kept */
  kiln_native_kind foreign =
      kind == KILN_NATIVE_CL_MEM ? KILN_NATIVE_HOST_POINTER : KILN_NATIVE_CU_DEVICEPTR;
  kiln_status st = kiln_buffer_wrap_native(env->ctx, foreign, &native, 64, &w);
  assert_true(st == KILN_ERROR_UNSUPPORTED || st == KILN_ERROR_INVALID_ARGUMENT);
  assert_null(w);
  KT_OK(kiln_buffer_destroy(helper));
}

/* The wrap's own buffer record fails to allocate (wraps are kept until the records'
 * slab must grow, then that growth fails): refused with OUT_OF_HOST_MEMORY, the wrapped
 * memory untouched and still the caller's, the earlier wraps intact; a later wrap works. */
#define MAX_WRAPS 20000
static void wrap_allocation_failure(void **state) {
  kt_env *env = *state;
  if (kt_backend() == KILN_BACKEND_MOCK)
    skip(); /* it wraps nothing (wrap_refusals) */
  kiln_buffer helper = kt_buffer(env->ctx, 4096);
  void *native = NULL;
  kiln_native_kind kind = wrap_kind(env, helper, &native);
  kiln_buffer *kept = calloc(MAX_WRAPS, sizeof *kept);
  assert_non_null(kept);
  size_t n = 0;
  int failed = 0;
  while (n < MAX_WRAPS && !failed) {
    kiln_buffer w = NULL;
    kt_alloc_fail_nth(1);
    kiln_status st = kiln_buffer_wrap_native(env->ctx, kind, &native, 4096, &w);
    size_t injected = kt_alloc_failures();
    kt_alloc_fail_none();
    if (st == KILN_SUCCESS) {
      assert_int_equal(injected, 0);
      kept[n++] = w;
      continue;
    }
    assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
    assert_true(injected >= 1);
    assert_null(w);
    failed = 1;
  }
  assert_true(failed);
  kiln_buffer again = NULL;
  KT_OK(kiln_buffer_wrap_native(env->ctx, kind, &native, 4096, &again));
  KT_OK(kiln_buffer_destroy(again));
  for (size_t i = 0; i < n; i++)
    KT_OK(kiln_buffer_destroy(kept[i]));
  free(kept);
  /* the helper (whose memory was wrapped) still works */
  unsigned char in[64], out[64];
  memset(in, 0x5a, sizeof in);
  KT_OK(kiln_buffer_write(helper, 0, sizeof in, in));
  KT_OK(kiln_buffer_read(helper, 0, sizeof out, out));
  assert_memory_equal(in, out, sizeof in);
  KT_OK(kiln_buffer_destroy(helper));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(get_native_refusals, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(wrap_refusals, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(wrap_allocation_failure, kt_setup, kt_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
