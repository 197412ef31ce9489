/* SPDX-License-Identifier: MIT */
/* The fake libcuda's test hooks (tests/cuda/fake_libcuda.c). Tests find them with
 * dlopen(KILN_CUDA_LIBRARY, RTLD_NOLOAD) + dlsym once kiln has loaded the fake.
 * Behaviour is set by environment variables, read once at the first call:
 *   KILN_FAKE_CUDA_DEVICES=N       devices (default 1); 0: cuInit says NO_DEVICE
 *   KILN_FAKE_CUDA_VERSION=V       cuDriverGetVersion (default 13000)
 *   KILN_FAKE_CUDA_FAIL_NTH=N      the Nth call fails, once, with FAIL_CODE
 *   KILN_FAKE_CUDA_FAIL_ENTRY=sym  ... counting only calls of that symbol
 *   KILN_FAKE_CUDA_FAIL_CODE=C     default 999 (CUDA_ERROR_UNKNOWN)
 *   KILN_FAKE_CUDA_HIDE=a,b        cuGetProcAddress_v2 does not find these names
 *   KILN_FAKE_CUDA_STICKY_NTH=N    from the Nth synchronising call (event/stream/
 *                                  context synchronize, event query) on, every call
 *                                  but destroys and releases answers
 *                                  CUDA_ERROR_ILLEGAL_ADDRESS, until
 *                                  cuDevicePrimaryCtxReset
 *   KILN_FAKE_CUDA_LAUNCH=mode     cuLaunchKernel: unset, answers
 *                                  CUDA_ERROR_NOT_SUPPORTED; `ok`, records the launch
 *                                  and runs nothing; `emulate`, runs the test kernels
 *                                  it knows (below) on the stream, any other kernel:
 *                                  CUDA_ERROR_NOT_SUPPORTED at the call
 *   KILN_FAKE_CUDA_PAGEABLE_D2H=async  cuMemcpyDtoHAsync into pageable memory returns
 *                                  at once (default `block`: as the real driver)
 *   KILN_FAKE_CUDA_FUNC_MAX_THREADS=N   every function's MAX_THREADS_PER_BLOCK
 *                                  (default 1024)
 *   KILN_FAKE_CUDA_FUNC_SHARED_BYTES=N  every function's static SHARED_SIZE_BYTES
 *                                  (default 0)
 *   KILN_FAKE_CUDA_CC_MAJOR=N      every device's compute capability N.0 (default 9.0,
 *                                  device 1: 8.0); one newer than NVRTC knows makes
 *                                  kiln load PTX (the compile cache's tests)
 * The old-driver variant (libkiln_fake_cuda_old.so) has no cuGetProcAddress_v2 and
 * answers 11080 by default.
 *
 * What it emulates, on the host (a CUdeviceptr is a host address):
 *   - Streams: each CUstream has a worker thread running its commands in order:
 *     copies, memsets, kernel launches, cuLaunchHostFunc host functions, event
 *     records and cuStreamWaitEvent waits. Enqueueing returns at once.
 *     cuStreamDestroy returns at once too: the worker finishes the queued work, then
 *     frees the stream and exits. The NULL stream is a stream made at first use.
 *   - Events: an event passes when its stream reaches the record; cuEventQuery
 *     answers CUDA_ERROR_NOT_READY (600) before, SUCCESS for a never-recorded event;
 *     cuEventSynchronize, cuStreamSynchronize and cuCtxSynchronize block until done;
 *     cuStreamWaitEvent waits for the record the event had at the call (a later
 *     re-record does not move it; never recorded: no wait); cuEventElapsedTime gives
 *     the host-clock times at which the stream passed each record (NOT_READY before,
 *     INVALID_HANDLE if never recorded or untimed); cuEventDestroy returns at once,
 *     queued records and waits keep the event until they ran.
 *   - Host memory, as the real driver treats it: page-locked ranges (cuMemHostAlloc,
 *     cuMemHostRegister) are copied in stream order, both ways, the call returning at
 *     once. Pageable memory: cuMemcpyHtoDAsync copies the source into a staging copy
 *     at the call and returns; cuMemcpyDtoHAsync returns only once the stream reached
 *     and did the copy (so a read behind gated work blocks its caller).
 *   - Kernels (`emulate`): recognised by name — vecadd (tests/kernels/vecadd.kiln),
 *     kt_add_u32, kt_hits, kt_set_u32 (tests/support/kt_backend.c) — and run on the
 *     worker thread by thread over the whole grid x block (global id = block index *
 *     block size + thread index), guarded as their source is. kernelParams: one
 *     pointer per declared parameter (buffers as CUdeviceptr, scalars of their size),
 *     then kiln's three hidden kiln_u64 global sizes; the values are copied at the
 *     call. An access outside the allocation a buffer argument pointed into faults:
 *     the context turns sticky with CUDA_ERROR_ILLEGAL_ADDRESS. No shared memory or
 *     barriers: a kernel that needs them is not emulated.
 *   - Sticky errors (KILN_FAKE_CUDA_STICKY_NTH, or a faulting kernel): queued work
 *     is dropped, never run (records still pass, so nothing hangs), synchronising
 *     calls return CUDA_ERROR_ILLEGAL_ADDRESS at once; cuDevicePrimaryCtxReset clears
 *     it and drops the work queued before it.
 *   - cuMemFree, cuMemFreeHost and cuMemHostUnregister synchronize the device (as
 *     the driver's do): they return once all work queued before them finished.
 *   - Thread safety: one mutex around all state; workers run commands without it.
 * kiln_fake_cuda_last_launch is recorded at the cuLaunchKernel call in every mode. */
#ifndef KILN_FAKE_LIBCUDA_H
#define KILN_FAKE_LIBCUDA_H

#include <stddef.h>

typedef struct kiln_fake_launch {
  unsigned grid[3], block[3], shared_bytes;
  int param_count;             /* as set by kiln_fake_cuda_expect_params */
  unsigned char params[16][8]; /* each parameter's bytes (size from the expectation) */
  long launches;
} kiln_fake_launch;

/* Every entry call so far (cuGetProcAddress_v2 and cuDriverGetVersion included). */
typedef long (*kiln_fake_cuda_calls_fn)(void);
/* Live allocations, streams, events, modules, retained primary contexts. */
typedef long (*kiln_fake_cuda_live_fn)(void);
/* Sizes of the next launches' parameters (kernelParams has that many entries). */
typedef void (*kiln_fake_cuda_expect_params_fn)(const size_t *bytes, int count);
typedef void (*kiln_fake_cuda_last_launch_fn)(kiln_fake_launch *out);
/* Arm a failure at run time: the nth call of `entry` from now (NULL: any entry) answers
 * `code`, once; nth 0 disarms (replaces KILN_FAKE_CUDA_FAIL_*). */
typedef void (*kiln_fake_cuda_fail_fn)(const char *entry, long nth, int code);

#endif
