/* SPDX-License-Identifier: MIT */
/* The CUDA driver and NVRTC entry points kiln uses, resolved at run time (never
 * linked): the driver through cuGetProcAddress_v2 at KILN_CUDA_API_VERSION, NVRTC
 * with dlsym. Types come from kiln's own cuda_decl.h (checked against the toolkit by
 * the generated test). Only src/backends/cuda and the CUDA tests include this. */
#ifndef KILN_CUDA_API_H
#define KILN_CUDA_API_H

#include <stdbool.h>

#include "backends/cuda/cuda_decl.h"
#include "core/backend.h"

typedef struct kiln__cu_api {
#define KILN__CU_MEMBER(name, symbol, required, params) kiln_CUresult(*name) params;
  KILN_CU_ENTRIES(KILN__CU_MEMBER)
#undef KILN__CU_MEMBER
  kiln_PFN_cuGetProcAddress_v2 cuGetProcAddress;
  kiln_PFN_cuDriverGetVersion cuDriverGetVersion;
  int driver_version; /* cuDriverGetVersion: 12080 for CUDA 12.8 */
  char path[256];     /* what was dlopen'ed */
  char missing[256];  /* optional entries the driver lacks, space separated */
} kiln__cu_api;

typedef struct kiln__nvrtc_api {
#define KILN__NVRTC_MEMBER(name, required, params) kiln_nvrtcResult(*name) params;
  KILN_NVRTC_ENTRIES(KILN__NVRTC_MEMBER)
#undef KILN__NVRTC_MEMBER
  kiln_PFN_nvrtcGetErrorString nvrtcGetErrorString;
  int major, minor; /* nvrtcVersion */
  char path[256];   /* what was dlopen'ed */
  int arch_count;
  int archs[64]; /* nvrtcGetSupportedArchs: 75, 80, ... ascending */
} kiln__nvrtc_api;

extern kiln__cu_api kiln__cu;
extern kiln__nvrtc_api kiln__nvrtc;

/* Load the driver: dlopen libcuda.so.1 (or the absolute KILN_CUDA_LIBRARY), check its
 * version, resolve every entry, cuInit(0). On failure writes why into reason (naming
 * CUDA_ERROR_STUB_LIBRARY, CUDA_ERROR_NO_DEVICE, the versions of an old driver, or
 * the library that was not found) and returns KILN_ERROR_BACKEND_UNAVAILABLE (or
 * INVALID_ARGUMENT for a relative KILN_CUDA_LIBRARY). Called once, by the probe. */
kiln_status kiln__cu_load(char *reason, size_t reason_bytes);

/* Load NVRTC once per process (thread-safe): KILN_NVRTC_LIBRARY (absolute only), else
 * the sonames of CUDA 13, 12, 11.2, else $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
 * On failure sets the error detail (every later call gives the same reason). */
kiln_status kiln__nvrtc_load(void);

/* "CUDA_ERROR_ILLEGAL_ADDRESS" for a CUresult; from kiln's table, then the driver's
 * cuGetErrorName, else "CUDA_ERROR_UNKNOWN_<n>" in thread-local storage. */
const char *kiln__cu_error_name(kiln_CUresult code);
/* Errors after which the CUDA context is unusable (CUDA documents them as sticky). */
bool kiln__cu_is_sticky(kiln_CUresult code);
/* Set error detail from a CUresult ("<what> failed: NAME (n)"), status derived from it. */
kiln_status kiln__cu_fail(kiln_CUresult code, const char *what);

/* Compile rewritten dialect source (prelude.c's CUDA target) with NVRTC for `arch`:
 * "sm_90" gives a CUBIN, "compute_90" PTX (want_ptx must say which). `options`
 * (space separated, may be NULL) are passed on; `name` names the source in the log.
 * On success *image (kiln__alloc, free with kiln__cuda_image_free) holds the CUBIN,
 * or the NUL-terminated PTX, and *image_bytes its size (PTX: with the NUL). On
 * failure: KILN_ERROR_COMPILE_FAILED with the log in kiln_last_build_log() and its
 * first error line in the message; BACKEND_UNAVAILABLE without NVRTC. The compile
 * time is logged at debug level. Any thread. */
kiln_status kiln__cuda_compile(const char *source, size_t len, const char *name, const char *arch,
                               int want_ptx, const char *options, void **image,
                               size_t *image_bytes);
void kiln__cuda_image_free(void *image, size_t image_bytes);

/* The architecture to compile for on a device of compute capability major.minor with
 * the loaded NVRTC: "sm_XY" when NVRTC supports it (CUBIN), else "compute_<the newest
 * supported below>" (PTX the driver JIT-compiles), written to out. Fails with
 * UNSUPPORTED when the device is older than every architecture NVRTC knows. */
kiln_status kiln__cuda_pick_arch(int major, int minor, char *out, size_t out_bytes, int *want_ptx);

#endif
