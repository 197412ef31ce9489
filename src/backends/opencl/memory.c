/* SPDX-License-Identifier: MIT */
/* Buffers (one CL_MEM_READ_WRITE cl_mem each) and pinned host memory for
 * kiln_host_alloc (a CL_MEM_ALLOC_HOST_PTR buffer mapped for the block's lifetime, the
 * block page-aligned inside it). Every OpenCL object made is counted (kiln__cl_count).
 * Called through the ops table only; destroy and host_free run with the object's work
 * completed. */
#include "backends/opencl/opencl_internal.h"

/* kiln_host_alloc: a CL_MEM_ALLOC_HOST_PTR buffer mapped for the block's lifetime, the
 * way NVIDIA's OpenCL hands out page-locked memory its transfers recognise (other
 * platforms give ordinary memory). The mapping is not page-aligned by the standard,
 * so the buffer is a page longer and the block starts at the first page boundary. */
typedef struct ocl_host_block {
  cl_mem mem;
  void *mapped;
  size_t map_bytes;
} ocl_host_block;

#define OCL_PAGE ((size_t)4096)

kiln_status kiln__ocl_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  ocl_host_block *hb = kiln__calloc(1, sizeof *hb);
  if (!hb)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes",
                       bytes);
  cl_int err = CL_SUCCESS;
  const char *what = "clCreateCommandQueue";
  cl_command_queue q =
      kiln__cl.clCreateCommandQueue(ctx->native, kiln__ocl_dev_id(ctx->device), 0, &err);
  if (q) {
    kiln__cl_count(KILN__CLO_QUEUE, 1);
    hb->map_bytes = bytes + OCL_PAGE - 1;
    what = "clCreateBuffer(CL_MEM_ALLOC_HOST_PTR)";
    hb->mem = kiln__cl.clCreateBuffer(ctx->native, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR,
                                      hb->map_bytes, NULL, &err);
  }
  if (hb->mem) {
    kiln__cl_count(KILN__CLO_MEM, 1);
    what = "clEnqueueMapBuffer";
    hb->mapped = kiln__cl.clEnqueueMapBuffer(q, hb->mem, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                             hb->map_bytes, 0, NULL, NULL, &err);
  }
  if (q) {
    kiln__cl.clReleaseCommandQueue(q);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  if (!hb->mapped) {
    if (err == CL_SUCCESS)
      err = CL_OUT_OF_HOST_MEMORY;
    if (hb->mem) {
      kiln__cl.clReleaseMemObject(hb->mem);
      kiln__cl_count(KILN__CLO_MEM, -1);
    }
    kiln__free(hb, sizeof *hb);
    kiln_status st = kiln__cl_fail(err, what);
    if (err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
        err == CL_OUT_OF_RESOURCES)
      st = kiln__error_native(KILN_ERROR_OUT_OF_HOST_MEMORY, KILN_BACKEND_OPENCL, err,
                              kiln__cl_error_name(err),
                              "%s could not provide %zu bytes of host memory", what, bytes);
    return st;
  }
  *ptr = (void *)(((uintptr_t)hb->mapped + OCL_PAGE - 1) / OCL_PAGE * OCL_PAGE);
  *native = hb;
  return KILN_SUCCESS;
}

void kiln__ocl_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)ptr, (void)bytes;
  ocl_host_block *hb = native;
  cl_int err = CL_SUCCESS;
  cl_command_queue q =
      kiln__cl.clCreateCommandQueue(ctx->native, kiln__ocl_dev_id(ctx->device), 0, &err);
  if (q) { /* unmapped before the release; without a queue the release alone frees it */
    kiln__cl_count(KILN__CLO_QUEUE, 1);
    if (kiln__cl.clEnqueueUnmapMemObject(q, hb->mem, hb->mapped, 0, NULL, NULL) == CL_SUCCESS)
      kiln__cl.clFinish(q);
    kiln__cl.clReleaseCommandQueue(q);
    kiln__cl_count(KILN__CLO_QUEUE, -1);
  }
  kiln__cl.clReleaseMemObject(hb->mem);
  kiln__cl_count(KILN__CLO_MEM, -1);
  kiln__free(hb, sizeof *hb);
}

kiln_status kiln__ocl_buffer_create(kiln__buffer *b) {
  cl_int err = CL_SUCCESS;
  cl_mem m = kiln__cl.clCreateBuffer(b->h.ctx->native, CL_MEM_READ_WRITE, b->bytes, NULL, &err);
  if (!m)
    return kiln__cl_fail(err, "clCreateBuffer");
  kiln__cl_count(KILN__CLO_MEM, 1);
  b->native = m;
  kiln__ocl_device *dd = b->h.ctx->device->native;
  atomic_fetch_add(&dd->live_bytes, b->bytes);
  return KILN_SUCCESS;
}

/* A pool's block: a sub-buffer of the slab (the offset is a multiple of
 * CL_DEVICE_MEM_BASE_ADDR_ALIGN, which the core checked). */
kiln_status kiln__ocl_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                         void **host) {
  cl_buffer_region region = {offset, view->bytes};
  cl_int err = CL_SUCCESS;
  cl_mem m = kiln__cl.clCreateSubBuffer(parent->native, CL_MEM_READ_WRITE,
                                        CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  if (!m)
    return kiln__cl_fail(err, "clCreateSubBuffer");
  kiln__cl_count(KILN__CLO_MEM, 1);
  view->native = m;
  *host = NULL;
  return KILN_SUCCESS;
}

static void release_mem(kiln__buffer *b) {
  if (b->native) {
    kiln__cl.clReleaseMemObject(b->native);
    kiln__cl_count(KILN__CLO_MEM, -1);
  }
  b->native = NULL;
}

void kiln__ocl_buffer_view_destroy(kiln__buffer *view) {
  release_mem(view); /* the runtime keeps it for commands still queued */
}

void kiln__ocl_buffer_destroy(kiln__buffer *b) {
  if (b->native && !b->wrapped) {
    kiln__ocl_device *dd = b->h.ctx->device->native;
    atomic_fetch_sub(&dd->live_bytes, b->bytes);
  }
  release_mem(b);
}
