/* SPDX-License-Identifier: MIT */
/* Raw OpenCL baselines of the suite `dialect`: the tree reduction in local memory
 * (tests/kernels/reduce.kiln's reduce_sum, and reduce_sum_static with the memory
 * declared in the kernel) and the 256-bin histogram with global
 * atomics (tests/kernels/atomics.kiln's histogram), as a C programmer writes them in
 * OpenCL C for PoCL. libOpenCL is loaded with dlopen (never linked, design.md), entry
 * points resolved through `void **`. Includes no kiln header and references no kiln_
 * symbol (checked with nm). Not thread-safe: the harness runs one case at a time. */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_dialect.h"

#define DL_ENTRIES(X)          \
  X(clGetDeviceInfo)           \
  X(clCreateContext)           \
  X(clReleaseContext)          \
  X(clCreateCommandQueue)      \
  X(clReleaseCommandQueue)     \
  X(clCreateBuffer)            \
  X(clReleaseMemObject)        \
  X(clEnqueueWriteBuffer)      \
  X(clEnqueueReadBuffer)       \
  X(clEnqueueFillBuffer)       \
  X(clEnqueueNDRangeKernel)    \
  X(clCreateProgramWithSource) \
  X(clBuildProgram)            \
  X(clGetProgramBuildInfo)     \
  X(clReleaseProgram)          \
  X(clCreateKernel)            \
  X(clReleaseKernel)           \
  X(clSetKernelArg)            \
  X(clReleaseEvent)            \
  X(clWaitForEvents)           \
  X(clFinish)

static struct dl_api {
#define DL_MEMBER(name) __typeof__(&name) name;
  DL_ENTRIES(DL_MEMBER)
#undef DL_MEMBER
} cl;
static int loaded;

static const char reduce_source[] =
    "__kernel void reduce_sum(__global const float *in, __global float *partial,\n"
    "                         __local float *scratch, unsigned int n) {\n"
    "  size_t lid = get_local_id(0);\n"
    "  size_t gid = get_global_id(0);\n"
    "  scratch[lid] = gid < n ? in[gid] : 0.0f;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  for (size_t s = get_local_size(0) / 2; s > 0; s /= 2) {\n"
    "    if (lid < s) scratch[lid] += scratch[lid + s];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  }\n"
    "  if (lid == 0) partial[get_group_id(0)] = scratch[0];\n"
    "}\n";
/* the same with its local memory declared in the kernel (a fixed 256) */
static const char reduce_static_source[] =
    "__kernel void reduce_sum_static(__global const float *in, __global float *partial,\n"
    "                                unsigned int n) {\n"
    "  __local float scratch[256];\n"
    "  size_t lid = get_local_id(0);\n"
    "  size_t gid = get_global_id(0);\n"
    "  scratch[lid] = gid < n ? in[gid] : 0.0f;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  for (size_t s = get_local_size(0) / 2; s > 0; s /= 2) {\n"
    "    if (lid < s) scratch[lid] += scratch[lid + s];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  }\n"
    "  if (lid == 0) partial[get_group_id(0)] = scratch[0];\n"
    "}\n";
static const char histogram_source[] =
    "__kernel void histogram(__global const uint *in, __global uint *bins, uint nbins,\n"
    "                        uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) atomic_inc(&bins[in[i] % nbins]);\n"
    "}\n";

#define NBINS 256u

typedef struct dl_state {
  int kind;
  cl_context context;
  cl_command_queue queue;
  cl_program program;
  cl_kernel kernel;
  cl_mem in, out;
  size_t items, local, global, out_bytes;
} dl_state;

static int fail(const char *what, cl_int err) {
  fprintf(stderr, "raw-opencl dialect baseline: %s failed with %d\n", what, (int)err);
  return err != CL_SUCCESS ? (int)err : -1;
}

static int load(void) {
  if (loaded)
    return 0;
  const char *path = getenv("KILN_OPENCL_LIBRARY");
  if (path != NULL && path[0] != '\0' && path[0] != '/')
    return EINVAL;
  const char *name = path != NULL && path[0] != '\0' ? path : "libOpenCL.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    return ENOENT;
#define DL_RESOLVE(fn)                \
  *(void **)&cl.fn = dlsym(lib, #fn); \
  if (cl.fn == NULL) {                \
    dlclose(lib);                     \
    memset(&cl, 0, sizeof cl);        \
    return ENOENT;                    \
  }
  DL_ENTRIES(DL_RESOLVE)
#undef DL_RESOLVE
  loaded = 1;
  return 0;
}

void bench_baseline_dialect_teardown(void *state) {
  dl_state *s = state;
  if (s == NULL)
    return;
  if (s->queue != NULL)
    cl.clFinish(s->queue);
  if (s->kernel != NULL)
    cl.clReleaseKernel(s->kernel);
  if (s->program != NULL)
    cl.clReleaseProgram(s->program);
  if (s->in != NULL)
    cl.clReleaseMemObject(s->in);
  if (s->out != NULL)
    cl.clReleaseMemObject(s->out);
  if (s->queue != NULL)
    cl.clReleaseCommandQueue(s->queue);
  if (s->context != NULL)
    cl.clReleaseContext(s->context);
  free(s);
}

int bench_baseline_dialect_run(void *state, uint64_t iters) {
  dl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_int err = CL_SUCCESS;
    if (s->kind == BENCH_DIALECT_HISTOGRAM) {
      cl_uint zero = 0;
      err = cl.clEnqueueFillBuffer(s->queue, s->out, &zero, sizeof zero, 0, s->out_bytes, 0, NULL,
                                   NULL);
      if (err != CL_SUCCESS)
        return fail("clEnqueueFillBuffer", err);
    }
    cl_event ev = NULL;
    err = cl.clEnqueueNDRangeKernel(s->queue, s->kernel, 1, NULL, &s->global, &s->local, 0, NULL,
                                    &ev);
    if (err != CL_SUCCESS)
      return fail("clEnqueueNDRangeKernel", err);
    err = cl.clWaitForEvents(1, &ev);
    cl.clReleaseEvent(ev);
    if (err != CL_SUCCESS)
      return fail("clWaitForEvents", err);
  }
  return 0;
}

/* The input written, the arguments set, one run checked against the host. */
static int prepare(dl_state *s) {
  size_t bytes = s->items * 4;
  void *h = malloc(bytes > s->out_bytes ? bytes : s->out_bytes);
  if (h == NULL)
    return ENOMEM;
  float *f = h;
  cl_uint *u = h;
  double want = 0;
  int reducing = s->kind != BENCH_DIALECT_HISTOGRAM;
  for (size_t i = 0; i < s->items; i++) {
    if (reducing) {
      f[i] = (float)(i % 17u) * 0.25f;
      want += f[i];
    } else {
      u[i] = (cl_uint)((i * 2654435761u) >> 7);
    }
  }
  cl_int err = cl.clEnqueueWriteBuffer(s->queue, s->in, CL_TRUE, 0, bytes, h, 0, NULL, NULL);
  cl_uint n = (cl_uint)s->items, nbins = NBINS;
  if (err == CL_SUCCESS)
    err = cl.clSetKernelArg(s->kernel, 0, sizeof s->in, &s->in);
  if (err == CL_SUCCESS)
    err = cl.clSetKernelArg(s->kernel, 1, sizeof s->out, &s->out);
  if (s->kind == BENCH_DIALECT_REDUCE) {
    if (err == CL_SUCCESS)
      err = cl.clSetKernelArg(s->kernel, 2, s->local * sizeof(float), NULL);
    if (err == CL_SUCCESS)
      err = cl.clSetKernelArg(s->kernel, 3, sizeof n, &n);
  } else if (s->kind == BENCH_DIALECT_REDUCE_STATIC) {
    if (err == CL_SUCCESS)
      err = cl.clSetKernelArg(s->kernel, 2, sizeof n, &n);
  } else {
    if (err == CL_SUCCESS)
      err = cl.clSetKernelArg(s->kernel, 2, sizeof nbins, &nbins);
    if (err == CL_SUCCESS)
      err = cl.clSetKernelArg(s->kernel, 3, sizeof n, &n);
  }
  int rc = err != CL_SUCCESS ? fail("setting up the arguments", err) : 0;
  if (rc == 0)
    rc = bench_baseline_dialect_run(s, 1);
  if (rc == 0) {
    err = cl.clEnqueueReadBuffer(s->queue, s->out, CL_TRUE, 0, s->out_bytes, h, 0, NULL, NULL);
    if (err != CL_SUCCESS)
      rc = fail("reading the result", err);
  }
  if (rc == 0) {
    double got = 0;
    for (size_t i = 0; i < s->out_bytes / 4; i++)
      got += reducing ? (double)f[i] : (double)u[i];
    if (got != (reducing ? want : (double)s->items)) {
      fprintf(stderr, "raw-opencl dialect baseline: wrong result (%g)\n", got);
      rc = EIO;
    }
  }
  free(h);
  return rc;
}

int bench_baseline_dialect_setup(void *arg, void **state) {
  const bench_dialect_args *args = arg;
  *state = NULL;
  if (args == NULL || args->device == NULL || args->items == 0 || args->items > 0x7fffffffu ||
      args->local == 0)
    return EINVAL;
  int rc = load();
  if (rc != 0)
    return rc;
  dl_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->kind = args->kernel;
  s->items = args->items;
  s->local = args->local;
  s->global = (s->items + s->local - 1) / s->local * s->local;
  s->out_bytes = s->kind != BENCH_DIALECT_HISTOGRAM ? s->global / s->local * 4 : NBINS * 4;
  cl_device_id dev = args->device;
  cl_platform_id platform = NULL;
  cl_int err = cl.clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
  if (err != CL_SUCCESS) {
    rc = fail("clGetDeviceInfo", err);
    goto failed;
  }
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
  s->context = cl.clCreateContext(props, 1, &dev, NULL, NULL, &err);
  if (s->context == NULL) {
    rc = fail("clCreateContext", err);
    goto failed;
  }
  s->queue = cl.clCreateCommandQueue(s->context, dev, 0, &err);
  if (s->queue == NULL) {
    rc = fail("clCreateCommandQueue", err);
    goto failed;
  }
  s->in = cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE, s->items * 4, NULL, &err);
  if (s->in != NULL)
    s->out = cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE, s->out_bytes, NULL, &err);
  if (s->in == NULL || s->out == NULL) {
    rc = fail("clCreateBuffer", err);
    goto failed;
  }
  const char *src = s->kind == BENCH_DIALECT_REDUCE          ? reduce_source
                    : s->kind == BENCH_DIALECT_REDUCE_STATIC ? reduce_static_source
                                                             : histogram_source;
  const char *name = s->kind == BENCH_DIALECT_REDUCE          ? "reduce_sum"
                     : s->kind == BENCH_DIALECT_REDUCE_STATIC ? "reduce_sum_static"
                                                              : "histogram";
  s->program = cl.clCreateProgramWithSource(s->context, 1, &src, NULL, &err);
  if (s->program == NULL) {
    rc = fail("clCreateProgramWithSource", err);
    goto failed;
  }
  err = cl.clBuildProgram(s->program, 1, &dev, NULL, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[2048] = "";
    cl.clGetProgramBuildInfo(s->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    fprintf(stderr, "raw-opencl dialect baseline: build log:\n%s\n", log);
    rc = fail("clBuildProgram", err);
    goto failed;
  }
  s->kernel = cl.clCreateKernel(s->program, name, &err);
  if (s->kernel == NULL) {
    rc = fail("clCreateKernel", err);
    goto failed;
  }
  if ((rc = prepare(s)) != 0)
    goto failed;
  *state = s;
  return 0;
failed:
  bench_baseline_dialect_teardown(s);
  return rc;
}
