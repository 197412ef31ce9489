/* SPDX-License-Identifier: MIT */
/* Raw OpenCL baselines of the suites ocl_mem, ocl_vecadd and ocl_events
 * (bench/baseline_opencl.c): the same work as the kiln side written directly against
 * the OpenCL 1.2 API, on the same device, in the same process. Like every baseline this
 * header includes no kiln header and the object references no kiln_ symbol (a test
 * checks with nm). Run functions do `iters` iterations and return 0, or the failing
 * OpenCL call's error code (negative) after printing which call failed to stderr. */
#ifndef KILN_BENCH_BASELINE_OPENCL_H
#define KILN_BENCH_BASELINE_OPENCL_H

#include <stddef.h>
#include <stdint.h>

/* Transfers per iteration of the async ocl_mem cases: a burst of this many
 * non-blocking transfers, then one wait for all of them (both sides). */
#define BENCH_OCL_BURST 8u
/* Launches per iteration of launch_backtoback_1000. */
#define BENCH_OCL_BACKTOBACK 1000u

/* What the baseline works with; zero fields are unused. */
typedef struct bench_ocl_args {
  void *device;  /* required: the cl_device_id of the kiln device being measured
                  * (kiln_device_get_native(..., KILN_NATIVE_CL_DEVICE, ...)) */
  size_t bytes;  /* transfer cases: one buffer and one host block of this size */
  int pinned;    /* transfer cases: the host block is a mapped CL_MEM_ALLOC_HOST_PTR
                  * buffer (page-locked on NVIDIA), else posix_memalign'ed */
  size_t items;  /* vecadd: three float buffers of this many elements */
  int kernel;    /* BENCH_OCL_KERNEL_*: the program built at set-up */
  int profiling; /* 1: the queue has CL_QUEUE_PROFILING_ENABLE (device timing) */
} bench_ocl_args;

enum { BENCH_OCL_KERNEL_NONE = 0, BENCH_OCL_KERNEL_VECADD = 1, BENCH_OCL_KERNEL_EMPTY = 2 };

/* Load libOpenCL (libOpenCL.so.1, or the absolute $KILN_OPENCL_LIBRARY: the library
 * kiln loads, so the device handle is valid here), create a context and one in-order
 * queue on args->device, the buffers (written once, so no timed call faults pages in)
 * and the kernel; vecadd is launched once and its result checked. Launches use the
 * local size kiln picks when the caller gives none (design.md "Kernels": the kernel's
 * preferred multiple within its work-group limit, up to 256) and the global size
 * rounded up to it, so both sides do the same work. `arg` is a bench_ocl_args. */
int bench_baseline_ocl_setup(void *arg, void **state);
void bench_baseline_ocl_teardown(void *state);

/* ocl_mem: clEnqueueWrite/ReadBuffer(CL_TRUE), one per iteration. */
int bench_baseline_ocl_write_blocking(void *state, uint64_t iters);
int bench_baseline_ocl_read_blocking(void *state, uint64_t iters);
/* ocl_mem: BENCH_OCL_BURST non-blocking transfers, each with its event, then one
 * clWaitForEvents over the burst, per iteration. */
int bench_baseline_ocl_write_async(void *state, uint64_t iters);
int bench_baseline_ocl_read_async(void *state, uint64_t iters);

/* ocl_vecadd: clEnqueueNDRangeKernel with an event, clWaitForEvents, per iteration. */
int bench_baseline_ocl_vecadd(void *state, uint64_t iters);
/* The same bracketed by two markers; device time = END(marker 2) - END(marker 1). */
int bench_baseline_ocl_vecadd_timed(void *state, uint64_t iters, uint64_t *device_ns);

/* ocl_events: the empty kernel enqueued with an event and waited for, per iteration. */
int bench_baseline_ocl_kernel_roundtrip(void *state, uint64_t iters);
/* pool: clCreateBuffer(CL_MEM_READ_WRITE, bytes) + clReleaseMemObject per iteration. */
int bench_baseline_ocl_alloc_free(void *state, uint64_t iters);
/* host_alloc_free: clCreateBuffer(CL_MEM_ALLOC_HOST_PTR) of args.bytes, a blocking
 * clEnqueueMapBuffer, clEnqueueUnmapMemObject + clFinish, clReleaseMemObject. */
int bench_baseline_ocl_host_alloc_free(void *state, uint64_t iters);
/* ocl_events: BENCH_OCL_BACKTOBACK empty-kernel launches without events, clFinish. */
int bench_baseline_ocl_launch_backtoback(void *state, uint64_t iters);
/* ocl_events: clEnqueueMarkerWithWaitList + clFlush, then clGetEventInfo polled until
 * CL_COMPLETE, per iteration. */
int bench_baseline_ocl_marker_poll(void *state, uint64_t iters);
/* async_ocl: the empty kernel enqueued with an event, clSetEventCallback(CL_COMPLETE)
 * whose callback signals a condvar the caller waits on, per iteration. */
int bench_baseline_ocl_callback_roundtrip(void *state, uint64_t iters);

#endif
