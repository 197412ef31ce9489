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
 * The old-driver variant (libkiln_fake_cuda_old.so) has no cuGetProcAddress_v2 and
 * answers 11080 by default. Copies and fills run at once on host memory; events
 * complete when recorded; kernels never run (cuLaunchKernel records its arguments
 * and answers CUDA_ERROR_NOT_SUPPORTED unless KILN_FAKE_CUDA_LAUNCH=ok). */
#ifndef KILN_FAKE_LIBCUDA_H
#define KILN_FAKE_LIBCUDA_H

#include <stddef.h>

typedef struct kiln_fake_launch {
  unsigned grid[3], block[3], shared_bytes;
  int param_count;              /* as set by kiln_fake_cuda_expect_params */
  unsigned char params[16][8];  /* each parameter's bytes (size from the expectation) */
  long launches;
} kiln_fake_launch;

/* Every entry call so far (cuGetProcAddress_v2 and cuDriverGetVersion included). */
typedef long (*kiln_fake_cuda_calls_fn)(void);
/* Live allocations, streams, events, modules, retained primary contexts. */
typedef long (*kiln_fake_cuda_live_fn)(void);
/* Sizes of the next launches' parameters (kernelParams has that many entries). */
typedef void (*kiln_fake_cuda_expect_params_fn)(const size_t *bytes, int count);
typedef void (*kiln_fake_cuda_last_launch_fn)(kiln_fake_launch *out);

#endif
