/* SPDX-License-Identifier: MIT */
/* Raw OpenCL baselines of ocl_mem, ocl_vecadd and ocl_events: what a C programmer
 * writes against OpenCL 1.2 without kiln — one context, one in-order queue, buffers,
 * a program built from OpenCL C source. libOpenCL is loaded with dlopen like kiln does
 * (no binary links it, design.md), entry points resolved through `void **`. The device
 * is kiln's own (its cl_device_id is handed in), so both sides run on the same one.
 * Includes no kiln header and references no kiln_ symbol (checked with nm).
 * Not thread-safe: the harness runs one case at a time. */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_opencl.h"

#define CL_ENTRIES(X)            \
  X(clGetDeviceInfo)             \
  X(clCreateContext)             \
  X(clReleaseContext)            \
  X(clCreateCommandQueue)        \
  X(clReleaseCommandQueue)       \
  X(clCreateBuffer)              \
  X(clReleaseMemObject)          \
  X(clEnqueueWriteBuffer)        \
  X(clEnqueueReadBuffer)         \
  X(clEnqueueMapBuffer)          \
  X(clEnqueueUnmapMemObject)     \
  X(clEnqueueMarkerWithWaitList) \
  X(clEnqueueNDRangeKernel)      \
  X(clCreateProgramWithSource)   \
  X(clBuildProgram)              \
  X(clGetProgramBuildInfo)       \
  X(clReleaseProgram)            \
  X(clCreateKernel)              \
  X(clReleaseKernel)             \
  X(clSetKernelArg)              \
  X(clGetKernelWorkGroupInfo)    \
  X(clReleaseEvent)              \
  X(clGetEventInfo)              \
  X(clGetEventProfilingInfo)     \
  X(clWaitForEvents)             \
  X(clFlush)                     \
  X(clFinish)                    \
  X(clSetEventCallback)

static struct cl_api {
#define CL_MEMBER(name) __typeof__(&name) name;
  CL_ENTRIES(CL_MEMBER)
#undef CL_MEMBER
} cl;
static int cl_loaded; /* the library stays loaded for the process, as kiln's does */

/* The same OpenCL C work as the kiln dialect kernels of the suites. */
static const char vecadd_source[] =
    "__kernel void vecadd(__global const float *a, __global const float *b,\n"
    "                     __global float *c, int n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";
static const char empty_source[] = "__kernel void empty(void) {}\n";

typedef struct ocl_state {
  cl_context context;
  cl_command_queue queue;
  cl_mem buf, a, b, c;
  void *host;    /* transfer cases: the host side of the transfers */
  cl_mem pinned; /* pinned cases: the CL_MEM_ALLOC_HOST_PTR buffer host maps */
  size_t bytes;
  cl_program program;
  cl_kernel kernel;
  size_t global, local; /* launch range: global rounded up to a multiple of local */
  size_t items;
  cl_event burst[BENCH_OCL_BURST];
} ocl_state;

static int fail(const char *what, cl_int err) {
  fprintf(stderr, "raw-opencl baseline: %s failed with %d\n", what, (int)err);
  return err != CL_SUCCESS ? (int)err : -1;
}

static int load(void) {
  if (cl_loaded)
    return 0;
  const char *path = getenv("KILN_OPENCL_LIBRARY");
  if (path != NULL && path[0] != '\0' && path[0] != '/') {
    fprintf(stderr, "raw-opencl baseline: KILN_OPENCL_LIBRARY='%s' is not absolute\n", path);
    return EINVAL;
  }
  const char *name = path != NULL && path[0] != '\0' ? path : "libOpenCL.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *why = dlerror();
    fprintf(stderr, "raw-opencl baseline: cannot load %s: %s\n", name, why ? why : "?");
    return ENOENT;
  }
#define CL_RESOLVE(fn)                                                 \
  *(void **)&cl.fn = dlsym(lib, #fn);                                  \
  if (cl.fn == NULL) {                                                 \
    fprintf(stderr, "raw-opencl baseline: %s has no %s\n", name, #fn); \
    dlclose(lib);                                                      \
    memset(&cl, 0, sizeof cl);                                         \
    return ENOENT;                                                     \
  }
  CL_ENTRIES(CL_RESOLVE)
#undef CL_RESOLVE
  cl_loaded = 1;
  return 0;
}

void bench_baseline_ocl_teardown(void *state) {
  ocl_state *s = state;
  if (s == NULL)
    return;
  if (s->queue != NULL)
    cl.clFinish(s->queue);
  if (s->pinned != NULL) {
    if (s->queue != NULL && s->host != NULL &&
        cl.clEnqueueUnmapMemObject(s->queue, s->pinned, s->host, 0, NULL, NULL) == CL_SUCCESS)
      cl.clFinish(s->queue);
    cl.clReleaseMemObject(s->pinned);
    s->host = NULL; /* not ours to free */
  }
  if (s->kernel != NULL)
    cl.clReleaseKernel(s->kernel);
  if (s->program != NULL)
    cl.clReleaseProgram(s->program);
  cl_mem mems[] = {s->buf, s->a, s->b, s->c};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i] != NULL)
      cl.clReleaseMemObject(mems[i]);
  if (s->queue != NULL)
    cl.clReleaseCommandQueue(s->queue);
  if (s->context != NULL)
    cl.clReleaseContext(s->context);
  free(s->host);
  free(s);
}

static cl_mem make_buffer(ocl_state *s, size_t bytes, cl_int *err) {
  return cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE, bytes, NULL, err);
}

/* The 1-D local size kiln picks when the caller gives none: aim at 256, within the
 * kernel's and the device's work-group limits and the first work-item dimension, no
 * larger than the range rounded up to the preferred multiple, and a multiple of it. */
static int pick_local(ocl_state *s, cl_device_id dev, size_t items) {
  size_t wg_kernel = 0, multiple = 0, wg_device = 0, item_sizes[3] = {0, 0, 0};
  cl_int err = cl.clGetKernelWorkGroupInfo(s->kernel, dev, CL_KERNEL_WORK_GROUP_SIZE,
                                           sizeof wg_kernel, &wg_kernel, NULL);
  if (err == CL_SUCCESS)
    err = cl.clGetKernelWorkGroupInfo(s->kernel, dev, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
                                      sizeof multiple, &multiple, NULL);
  if (err == CL_SUCCESS)
    err =
        cl.clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg_device, &wg_device, NULL);
  if (err == CL_SUCCESS)
    err =
        cl.clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof item_sizes, item_sizes, NULL);
  if (err != CL_SUCCESS)
    return fail("querying work-group limits", err);
  if (multiple == 0)
    multiple = 1;
  if (wg_kernel == 0)
    wg_kernel = 1;
  size_t limit = wg_kernel < wg_device ? wg_kernel : wg_device;
  size_t want = limit < 256 ? limit : 256;
  if (item_sizes[0] != 0 && want > item_sizes[0])
    want = item_sizes[0];
  size_t small = (items + multiple - 1) / multiple * multiple;
  if (want > small)
    want = small;
  if (want >= multiple)
    want = want / multiple * multiple;
  s->local = want != 0 ? want : 1;
  s->global = (items + s->local - 1) / s->local * s->local;
  return 0;
}

static int build(ocl_state *s, cl_device_id dev, const char *source, const char *name) {
  cl_int err = CL_SUCCESS;
  s->program = cl.clCreateProgramWithSource(s->context, 1, &source, NULL, &err);
  if (s->program == NULL)
    return fail("clCreateProgramWithSource", err);
  err = cl.clBuildProgram(s->program, 1, &dev, NULL, NULL, NULL);
  if (err != CL_SUCCESS) {
    char log[2048] = "";
    cl.clGetProgramBuildInfo(s->program, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    fprintf(stderr, "raw-opencl baseline: build log of %s:\n%s\n", name, log);
    return fail("clBuildProgram", err);
  }
  s->kernel = cl.clCreateKernel(s->program, name, &err);
  if (s->kernel == NULL)
    return fail("clCreateKernel", err);
  return 0;
}

/* a, b written with known values, the arguments set once, one launch checked. */
static int vecadd_prepare(ocl_state *s) {
  size_t bytes = s->items * sizeof(float);
  float *h = malloc(bytes);
  if (h == NULL)
    return ENOMEM;
  int rc = 0;
  cl_int err = CL_SUCCESS;
  for (size_t i = 0; i < s->items; i++)
    h[i] = (float)(i & 1023u);
  err = cl.clEnqueueWriteBuffer(s->queue, s->a, CL_TRUE, 0, bytes, h, 0, NULL, NULL);
  for (size_t i = 0; i < s->items && err == CL_SUCCESS; i++)
    h[i] = 0.5f * (float)(i % 7u);
  if (err == CL_SUCCESS)
    err = cl.clEnqueueWriteBuffer(s->queue, s->b, CL_TRUE, 0, bytes, h, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    rc = fail("writing the vecadd inputs", err);
    goto out;
  }
  int n = (int)s->items;
  err = cl.clSetKernelArg(s->kernel, 0, sizeof s->a, &s->a);
  if (err == CL_SUCCESS)
    err = cl.clSetKernelArg(s->kernel, 1, sizeof s->b, &s->b);
  if (err == CL_SUCCESS)
    err = cl.clSetKernelArg(s->kernel, 2, sizeof s->c, &s->c);
  if (err == CL_SUCCESS)
    err = cl.clSetKernelArg(s->kernel, 3, sizeof n, &n);
  if (err != CL_SUCCESS) {
    rc = fail("clSetKernelArg", err);
    goto out;
  }
  if ((rc = bench_baseline_ocl_vecadd(s, 1)) != 0)
    goto out;
  err = cl.clEnqueueReadBuffer(s->queue, s->c, CL_TRUE, 0, bytes, h, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    rc = fail("reading the vecadd result", err);
    goto out;
  }
  for (size_t i = 0; i < s->items; i++) {
    if (h[i] != (float)(i & 1023u) + 0.5f * (float)(i % 7u)) {
      fprintf(stderr, "raw-opencl baseline: vecadd c[%zu] = %g is wrong\n", i, (double)h[i]);
      rc = EIO;
      break;
    }
  }
out:
  free(h);
  return rc;
}

int bench_baseline_ocl_setup(void *arg, void **state) {
  const bench_ocl_args *args = arg;
  *state = NULL;
  if (args == NULL || args->device == NULL)
    return EINVAL;
  int rc = load();
  if (rc != 0)
    return rc;
  ocl_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  cl_device_id dev = args->device;
  cl_platform_id platform = NULL;
  cl_int err = cl.clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
  if (err != CL_SUCCESS) {
    rc = fail("clGetDeviceInfo(CL_DEVICE_PLATFORM)", err);
    goto failed;
  }
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
  s->context = cl.clCreateContext(props, 1, &dev, NULL, NULL, &err);
  if (s->context == NULL) {
    rc = fail("clCreateContext", err);
    goto failed;
  }
  s->queue = cl.clCreateCommandQueue(s->context, dev,
                                     args->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (s->queue == NULL) {
    rc = fail("clCreateCommandQueue", err);
    goto failed;
  }
  if (args->bytes > 0) {
    s->bytes = args->bytes;
    void *host = NULL;
    if (args->pinned) { /* page-locked the way NVIDIA documents: a mapped ALLOC_HOST_PTR buffer */
      s->pinned = cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, s->bytes,
                                    NULL, &err);
      if (s->pinned == NULL) {
        rc = fail("clCreateBuffer(CL_MEM_ALLOC_HOST_PTR)", err);
        goto failed;
      }
      host = cl.clEnqueueMapBuffer(s->queue, s->pinned, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                   s->bytes, 0, NULL, NULL, &err);
      if (host == NULL) {
        rc = fail("clEnqueueMapBuffer", err);
        goto failed;
      }
    } else if (posix_memalign(&host, 4096, s->bytes) != 0) {
      rc = ENOMEM;
      goto failed;
    }
    s->host = host;
    memset(s->host, 0x5a, s->bytes);
    s->buf = make_buffer(s, s->bytes, &err);
    if (s->buf == NULL) {
      rc = fail("clCreateBuffer", err);
      goto failed;
    }
    err = cl.clEnqueueWriteBuffer(s->queue, s->buf, CL_TRUE, 0, s->bytes, s->host, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      rc = fail("the first clEnqueueWriteBuffer", err);
      goto failed;
    }
  }
  if (args->kernel == BENCH_OCL_KERNEL_VECADD) {
    if (args->items == 0 || args->items > 0x7fffffffu) {
      rc = EINVAL;
      goto failed;
    }
    s->items = args->items;
    size_t bytes = s->items * sizeof(float);
    if ((s->a = make_buffer(s, bytes, &err)) == NULL ||
        (s->b = make_buffer(s, bytes, &err)) == NULL ||
        (s->c = make_buffer(s, bytes, &err)) == NULL) {
      rc = fail("clCreateBuffer", err);
      goto failed;
    }
    if ((rc = build(s, dev, vecadd_source, "vecadd")) != 0)
      goto failed;
    if ((rc = pick_local(s, dev, s->items)) != 0)
      goto failed;
    if ((rc = vecadd_prepare(s)) != 0)
      goto failed;
  } else if (args->kernel == BENCH_OCL_KERNEL_EMPTY) {
    if ((rc = build(s, dev, empty_source, "empty")) != 0)
      goto failed;
    if ((rc = pick_local(s, dev, 1)) != 0)
      goto failed;
  }
  *state = s;
  return 0;

failed:
  bench_baseline_ocl_teardown(s);
  return rc;
}

/* ---- pool: the raw allocation the device pool is measured against ---- */

int bench_baseline_ocl_alloc_free(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_int err = CL_SUCCESS;
    cl_mem m = cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE, s->bytes, NULL, &err);
    if (m == NULL)
      return fail("clCreateBuffer", err);
    if ((err = cl.clReleaseMemObject(m)) != CL_SUCCESS)
      return fail("clReleaseMemObject", err);
  }
  return 0;
}

/* Pinned host memory the way kiln's OpenCL backend makes it: a CL_MEM_ALLOC_HOST_PTR
 * buffer mapped (blocking) for the host, then unmapped and released. */
int bench_baseline_ocl_host_alloc_free(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_int err = CL_SUCCESS;
    cl_mem m = cl.clCreateBuffer(s->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, s->bytes,
                                 NULL, &err);
    if (m == NULL)
      return fail("clCreateBuffer", err);
    void *host = cl.clEnqueueMapBuffer(s->queue, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                       s->bytes, 0, NULL, NULL, &err);
    if (host == NULL) {
      cl.clReleaseMemObject(m);
      return fail("clEnqueueMapBuffer", err);
    }
    if ((err = cl.clEnqueueUnmapMemObject(s->queue, m, host, 0, NULL, NULL)) != CL_SUCCESS ||
        (err = cl.clFinish(s->queue)) != CL_SUCCESS) {
      cl.clReleaseMemObject(m);
      return fail("clEnqueueUnmapMemObject", err);
    }
    if ((err = cl.clReleaseMemObject(m)) != CL_SUCCESS)
      return fail("clReleaseMemObject", err);
  }
  return 0;
}

/* ---- ocl_mem ---- */

int bench_baseline_ocl_write_blocking(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_int err =
        cl.clEnqueueWriteBuffer(s->queue, s->buf, CL_TRUE, 0, s->bytes, s->host, 0, NULL, NULL);
    if (err != CL_SUCCESS)
      return fail("clEnqueueWriteBuffer", err);
  }
  return 0;
}

int bench_baseline_ocl_read_blocking(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_int err =
        cl.clEnqueueReadBuffer(s->queue, s->buf, CL_TRUE, 0, s->bytes, s->host, 0, NULL, NULL);
    if (err != CL_SUCCESS)
      return fail("clEnqueueReadBuffer", err);
  }
  return 0;
}

/* A burst of non-blocking transfers with one event each, one wait for them all. */
static int burst(ocl_state *s, uint64_t iters, int write) {
  for (uint64_t i = 0; i < iters; i++) {
    cl_uint n = 0;
    cl_int err = CL_SUCCESS;
    for (; n < BENCH_OCL_BURST && err == CL_SUCCESS; n++) {
      err = write ? cl.clEnqueueWriteBuffer(s->queue, s->buf, CL_FALSE, 0, s->bytes, s->host, 0,
                                            NULL, &s->burst[n])
                  : cl.clEnqueueReadBuffer(s->queue, s->buf, CL_FALSE, 0, s->bytes, s->host, 0,
                                           NULL, &s->burst[n]);
      if (err != CL_SUCCESS)
        break;
    }
    cl_int werr = n > 0 ? cl.clWaitForEvents(n, s->burst) : CL_SUCCESS;
    for (cl_uint k = 0; k < n; k++)
      cl.clReleaseEvent(s->burst[k]);
    if (err != CL_SUCCESS)
      return fail(write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer", err);
    if (werr != CL_SUCCESS)
      return fail("clWaitForEvents", werr);
  }
  return 0;
}

int bench_baseline_ocl_write_async(void *state, uint64_t iters) {
  return burst(state, iters, 1);
}
int bench_baseline_ocl_read_async(void *state, uint64_t iters) {
  return burst(state, iters, 0);
}

/* ---- kernels ---- */

/* Enqueue the case's kernel over its range; event may be NULL. */
static cl_int launch(ocl_state *s, cl_event *event) {
  return cl.clEnqueueNDRangeKernel(s->queue, s->kernel, 1, NULL, &s->global, &s->local, 0, NULL,
                                   event);
}

static int launch_wait(ocl_state *s, uint64_t iters) {
  for (uint64_t i = 0; i < iters; i++) {
    cl_event ev = NULL;
    cl_int err = launch(s, &ev);
    if (err != CL_SUCCESS)
      return fail("clEnqueueNDRangeKernel", err);
    err = cl.clWaitForEvents(1, &ev);
    cl.clReleaseEvent(ev);
    if (err != CL_SUCCESS)
      return fail("clWaitForEvents", err);
  }
  return 0;
}

int bench_baseline_ocl_vecadd(void *state, uint64_t iters) {
  return launch_wait(state, iters);
}

int bench_baseline_ocl_vecadd_timed(void *state, uint64_t iters, uint64_t *device_ns) {
  ocl_state *s = state;
  uint64_t total = 0;
  for (uint64_t i = 0; i < iters; i++) {
    cl_event m0 = NULL, m1 = NULL;
    cl_ulong t0 = 0, t1 = 0;
    cl_int err = cl.clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &m0);
    if (err == CL_SUCCESS)
      err = launch(s, NULL);
    if (err == CL_SUCCESS)
      err = cl.clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &m1);
    if (err == CL_SUCCESS)
      err = cl.clWaitForEvents(1, &m1);
    if (err == CL_SUCCESS)
      err = cl.clGetEventProfilingInfo(m0, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL);
    if (err == CL_SUCCESS)
      err = cl.clGetEventProfilingInfo(m1, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
    if (m0 != NULL)
      cl.clReleaseEvent(m0);
    if (m1 != NULL)
      cl.clReleaseEvent(m1);
    if (err != CL_SUCCESS)
      return fail("a marker-timed vecadd launch", err);
    total += t1 > t0 ? t1 - t0 : 0;
  }
  *device_ns = total;
  return 0;
}

int bench_baseline_ocl_kernel_roundtrip(void *state, uint64_t iters) {
  return launch_wait(state, iters);
}

int bench_baseline_ocl_launch_backtoback(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    for (unsigned k = 0; k < BENCH_OCL_BACKTOBACK; k++) {
      cl_int err = launch(s, NULL);
      if (err != CL_SUCCESS)
        return fail("clEnqueueNDRangeKernel", err);
    }
    cl_int err = cl.clFinish(s->queue);
    if (err != CL_SUCCESS)
      return fail("clFinish", err);
  }
  return 0;
}

int bench_baseline_ocl_marker_poll(void *state, uint64_t iters) {
  ocl_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    cl_event ev = NULL;
    cl_int err = cl.clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &ev);
    if (err != CL_SUCCESS)
      return fail("clEnqueueMarkerWithWaitList", err);
    err = cl.clFlush(s->queue); /* polling alone need not submit it */
    cl_int exec = CL_QUEUED;
    while (err == CL_SUCCESS && exec > CL_COMPLETE)
      err = cl.clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec, NULL);
    cl.clReleaseEvent(ev);
    if (err != CL_SUCCESS)
      return fail("clGetEventInfo", err);
    if (exec < 0)
      return fail("the marker", exec);
  }
  return 0;
}

/* ---- async: completion callbacks (the async_ocl suite's callback_latency) ---- */

typedef struct cl_callback_wait {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t done;
} cl_callback_wait;

static void CL_CALLBACK on_cl_complete(cl_event ev, cl_int status, void *user) {
  (void)ev;
  (void)status;
  cl_callback_wait *w = user;
  pthread_mutex_lock(&w->lock);
  w->done++;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

int bench_baseline_ocl_callback_roundtrip(void *state, uint64_t iters) {
  ocl_state *s = state;
  cl_callback_wait w;
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  w.done = 0;
  int rc = 0;
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    cl_event ev = NULL;
    cl_int err = launch(s, &ev);
    if (err != CL_SUCCESS) {
      rc = fail("clEnqueueNDRangeKernel", err);
      break;
    }
    err = cl.clSetEventCallback(ev, CL_COMPLETE, on_cl_complete, &w);
    if (err == CL_SUCCESS)
      err = cl.clFlush(s->queue);
    cl.clReleaseEvent(ev);
    if (err != CL_SUCCESS) {
      rc = fail("clSetEventCallback", err);
      break;
    }
    pthread_mutex_lock(&w.lock);
    while (w.done < i + 1)
      pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
  }
  pthread_mutex_destroy(&w.lock);
  pthread_cond_destroy(&w.cond);
  return rc;
}
