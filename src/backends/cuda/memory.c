/* SPDX-License-Identifier: MIT */
/* CUDA memory: device buffers (cuMemAlloc in the context's primary context, or a
 * wrapped CUdeviceptr that stays the user's), page-locked host memory for
 * kiln_host_alloc / kiln_host_register, and the question staging asks — is this host
 * range page-locked? Every op here runs on the calling API thread with the context
 * pushed around its driver calls; each allocation is counted (KILN__CUO_MEM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* ------------------------------------------------------------- buffers */
kiln_status kiln__cu_buffer_create(kiln__buffer *b) {
  kiln__context *ctx = b->h.ctx;
  kiln_CUdeviceptr p = 0;
  kiln_CUresult r = kiln__cu_push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemAlloc(&p, b->bytes);
    kiln__cu_pop();
  }
  if (r != kiln_CUDA_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "cuMemAlloc of %zu bytes", b->bytes);
    return kiln__cu_fail_device(ctx->device, r, what);
  }
  kiln__cu_count(KILN__CUO_MEM, 1);
  b->native = (void *)(uintptr_t)p;
  return KILN_SUCCESS;
}

void kiln__cu_buffer_destroy(kiln__buffer *b) {
  if (b->native && !b->wrapped) {
    if (kiln__cu_push(b->h.ctx->native) == kiln_CUDA_SUCCESS) {
      kiln__cu.cuMemFree((kiln_CUdeviceptr)(uintptr_t)b->native);
      kiln__cu_pop();
    }
    kiln__cu_count(KILN__CUO_MEM, -1);
  }
  b->native = NULL;
}

/* A pool's block: a device pointer inside the slab's allocation (no driver call). */
kiln_status kiln__cu_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                        void **host) {
  view->native = (void *)((uintptr_t)parent->native + offset);
  *host = NULL;
  return KILN_SUCCESS;
}

void kiln__cu_buffer_view_destroy(kiln__buffer *view) {
  view->native = NULL;
}

kiln_status kiln__cu_buffer_wrap(kiln__buffer *b, kiln_native_kind kind, const void *native) {
  if (kind != KILN_NATIVE_CU_DEVICEPTR)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the CUDA backend wraps KILN_NATIVE_CU_DEVICEPTR buffers, not kind %d",
                       (int)kind);
  kiln_CUdeviceptr p = *(const kiln_CUdeviceptr *)native;
  if (!p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "the CUdeviceptr to wrap is 0");
  if (kiln__cu.cuMemGetAddressRange) {
    kiln_CUdeviceptr base = 0;
    size_t size = 0;
    kiln_CUresult r = kiln__cu_push(b->h.ctx->native);
    if (r == kiln_CUDA_SUCCESS) {
      r = kiln__cu.cuMemGetAddressRange(&base, &size, p);
      kiln__cu_pop();
    }
    if (r != kiln_CUDA_SUCCESS)
      return kiln__cu_fail_device(b->h.ctx->device, r,
                                  "cuMemGetAddressRange on the CUdeviceptr to wrap");
    if (base + size < p + b->bytes)
      return kiln__error(KILN_ERROR_OUT_OF_RANGE,
                         "the allocation of the CUdeviceptr to wrap ends %llu bytes after it, "
                         "fewer than the %zu asked for",
                         (unsigned long long)(base + size - p), b->bytes);
  }
  b->native = (void *)(uintptr_t)p;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- pinned host memory */
/* A refused cuMemHostAlloc/cuMemHostRegister: OUT_OF_HOST_MEMORY with a suggestion when
 * the system could not lock that much, else the driver's error. */
static kiln_status pin_failed(kiln__context *ctx, kiln_CUresult r, const char *what) {
  kiln_status st = kiln__cu_fail_device(ctx->device, r, what);
  if (r != kiln_CUDA_ERROR_OUT_OF_MEMORY)
    return st;
  st = kiln__error_native(KILN_ERROR_OUT_OF_HOST_MEMORY, KILN_BACKEND_CUDA, r,
                          kiln__cu_error_name(r),
                          "%s: the system could not pin that much host memory", what);
  kiln__error_suggest(
      "pin less (the system's limit on locked memory, ulimit -l, applies) or reuse blocks");
  return st;
}

kiln_status kiln__cu_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  (void)native;
  if (!kiln__cu.cuMemHostAlloc || !kiln__cu.cuMemFreeHost)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "this CUDA driver lacks cuMemHostAlloc/cuMemFreeHost");
  kiln_CUresult r = kiln__cu_push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemHostAlloc(ptr, bytes, kiln_CU_MEMHOSTALLOC_PORTABLE);
    kiln__cu_pop();
  }
  if (r == kiln_CUDA_SUCCESS) {
    kiln__cu_count(KILN__CUO_MEM, 1);
    return KILN_SUCCESS;
  }
  char what[96];
  snprintf(what, sizeof what, "cuMemHostAlloc of %zu bytes", bytes);
  return pin_failed(ctx, r, what);
}

void kiln__cu_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)bytes, (void)native;
  if (kiln__cu_push(ctx->native) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuMemFreeHost(ptr);
    kiln__cu_pop();
  }
  kiln__cu_count(KILN__CUO_MEM, -1);
}

kiln_status kiln__cu_host_register(kiln__context *ctx, void *ptr, size_t bytes, void **native) {
  (void)native;
  if (!kiln__cu.cuMemHostRegister || !kiln__cu.cuMemHostUnregister)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "this CUDA driver lacks cuMemHostRegister/cuMemHostUnregister");
  kiln_CUresult r = kiln__cu_push(ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemHostRegister(ptr, bytes, kiln_CU_MEMHOSTREGISTER_PORTABLE);
    kiln__cu_pop();
  }
  if (r == kiln_CUDA_SUCCESS)
    return KILN_SUCCESS;
  char what[96];
  snprintf(what, sizeof what, "cuMemHostRegister of %zu bytes at %p", bytes, ptr);
  return pin_failed(ctx, r, what);
}

void kiln__cu_host_unregister(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)bytes, (void)native;
  if (kiln__cu_push(ctx->native) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuMemHostUnregister(ptr);
    kiln__cu_pop();
  }
}

/* Page-locked memory: kiln_host_alloc's (the context's table), else memory the
 * program registered or allocated with CUDA itself (both ends of the range). */
bool kiln__cu_host_range_pinned(kiln__context *ctx, const void *p, size_t n) {
  if (kiln__host_pinned(ctx, p, n))
    return true;
  if (!kiln__cu.cuPointerGetAttribute)
    return false;
  unsigned type[2] = {0, 0};
  if (kiln__cu.cuPointerGetAttribute(&type[0], kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     (kiln_CUdeviceptr)(uintptr_t)p) != kiln_CUDA_SUCCESS ||
      type[0] != kiln_CU_MEMORYTYPE_HOST)
    return false;
  if (kiln__cu.cuPointerGetAttribute(&type[1], kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                     (kiln_CUdeviceptr)((uintptr_t)p + n - 1)) != kiln_CUDA_SUCCESS)
    return false;
  return type[1] == kiln_CU_MEMORYTYPE_HOST;
}
