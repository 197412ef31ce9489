/* SPDX-License-Identifier: MIT */
/* Raw CUDA driver-API baselines of the suite `cuda`: what a C programmer writes
 * against the driver API and NVRTC without kiln — the device's primary context, one
 * non-blocking stream, cuMemAlloc'ed buffers, kernels compiled by NVRTC and loaded as
 * modules, launches with cuLaunchKernel and waits with cuStreamSynchronize. libcuda and
 * libnvrtc are loaded with dlopen like kiln does (no kiln binary links them,
 * design.md); driver entry points come from cuGetProcAddress_v2 at CUDA 12.0, NVRTC's
 * from dlsym, all assigned through `void **` (ISO C has no cast from dlsym's object
 * pointer to a function pointer). The driver types and the few entries used are
 * declared here (the toolkit's cuda.h is not needed to build; the signatures are those
 * of cuda.h/nvrtc.h of CUDA 12/13). Includes no kiln header and references no kiln_
 * symbol (checked with nm). Not thread-safe: the harness runs one case at a time. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_cuda.h"

/* ---- driver and NVRTC declarations (values as in cuda.h / nvrtc.h) ---- */
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef void (*CUhostFn)(void *user);
typedef struct CUevent_st *CUevent;
typedef size_t (*CUoccupancyB2DSize)(int block_size);
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_NOT_READY = 600,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
  CU_STREAM_NON_BLOCKING = 1,
  CU_EVENT_DEFAULT = 0,
  CU_EVENT_DISABLE_TIMING = 2,
  CU_GET_PROC_ADDRESS_DEFAULT = 0,
  CU_GET_PROC_ADDRESS_SUCCESS = 0,
  NVRTC_SUCCESS = 0
};
#define BENCH_CUDA_VERSION 12000 /* entries at CUDA 12.0, as kiln resolves them */

typedef CUresult (*pfn_cuGetProcAddress_v2)(const char *symbol, void **pfn, int cuda_version,
                                            uint64_t flags, int *symbol_status);

/* X(name, required, parameters): driver entries through cuGetProcAddress_v2, all
 * returning CUresult. Optional ones may be missing (the pinned-memory helpers say so). */
#define CU_ENTRIES(X)                                                                          \
  X(cuInit, 1, (unsigned int flags))                                                           \
  X(cuGetErrorName, 1, (CUresult error, const char **str))                                     \
  X(cuDeviceGetAttribute, 1, (int *value, int attribute, CUdevice device))                     \
  X(cuDevicePrimaryCtxRetain, 1, (CUcontext * ctx, CUdevice device))                           \
  X(cuCtxSetCurrent, 1, (CUcontext ctx))                                                       \
  X(cuMemAlloc, 1, (CUdeviceptr * ptr, size_t bytes))                                          \
  X(cuMemFree, 1, (CUdeviceptr ptr))                                                           \
  X(cuMemHostAlloc, 0, (void **ptr, size_t bytes, unsigned flags))                             \
  X(cuMemFreeHost, 0, (void *ptr))                                                             \
  X(cuMemAllocAsync, 0, (CUdeviceptr * ptr, size_t bytes, CUstream stream))                    \
  X(cuMemFreeAsync, 0, (CUdeviceptr ptr, CUstream stream))                                     \
  X(cuMemcpyHtoDAsync, 1, (CUdeviceptr dst, const void *src, size_t bytes, CUstream stream))   \
  X(cuMemcpyDtoHAsync, 1, (void *dst, CUdeviceptr src, size_t bytes, CUstream stream))         \
  X(cuMemsetD32Async, 1, (CUdeviceptr dst, unsigned int value, size_t count, CUstream stream)) \
  X(cuStreamCreate, 1, (CUstream * stream, unsigned int flags))                                \
  X(cuStreamDestroy, 1, (CUstream stream))                                                     \
  X(cuStreamSynchronize, 1, (CUstream stream))                                                 \
  X(cuStreamWaitEvent, 1, (CUstream stream, CUevent event, unsigned int flags))                \
  X(cuEventCreate, 1, (CUevent * event, unsigned int flags))                                   \
  X(cuEventDestroy, 1, (CUevent event))                                                        \
  X(cuEventRecord, 1, (CUevent event, CUstream stream))                                        \
  X(cuEventQuery, 1, (CUevent event))                                                          \
  X(cuEventSynchronize, 1, (CUevent event))                                                    \
  X(cuEventElapsedTime, 1, (float *ms, CUevent start, CUevent end))                            \
  X(cuModuleLoadDataEx, 1,                                                                     \
    (CUmodule * module, const void *image, unsigned int count, int *options, void **values))   \
  X(cuModuleUnload, 1, (CUmodule module))                                                      \
  X(cuModuleGetFunction, 1, (CUfunction * fn, CUmodule module, const char *name))              \
  X(cuFuncGetAttribute, 1, (int *value, int attribute, CUfunction fn))                         \
  X(cuOccupancyMaxPotentialBlockSize, 0,                                                       \
    (int *min_grid, int *block, CUfunction fn, CUoccupancyB2DSize smem_of_block, size_t smem,  \
     int block_limit))                                                                         \
  X(cuLaunchKernel, 1,                                                                         \
    (CUfunction fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,        \
     unsigned int by, unsigned int bz, unsigned int smem, CUstream stream, void **params,      \
     void **extra))                                                                            \
  X(cuLaunchHostFunc, 0, (CUstream stream, CUhostFn fn, void *user))

/* N(name, parameters): NVRTC entries returning nvrtcResult, taken with dlsym. */
#define NVRTC_ENTRIES(N)                                                                      \
  N(nvrtcGetNumSupportedArchs, (int *count))                                                  \
  N(nvrtcGetSupportedArchs, (int *archs))                                                     \
  N(nvrtcCreateProgram, (nvrtcProgram * prog, const char *src, const char *name, int headers, \
                         const char *const *sources, const char *const *names))               \
  N(nvrtcDestroyProgram, (nvrtcProgram * prog))                                               \
  N(nvrtcCompileProgram, (nvrtcProgram prog, int count, const char *const *options))          \
  N(nvrtcGetPTXSize, (nvrtcProgram prog, size_t * bytes))                                     \
  N(nvrtcGetPTX, (nvrtcProgram prog, char *ptx))                                              \
  N(nvrtcGetCUBINSize, (nvrtcProgram prog, size_t * bytes))                                   \
  N(nvrtcGetCUBIN, (nvrtcProgram prog, char *cubin))                                          \
  N(nvrtcGetProgramLogSize, (nvrtcProgram prog, size_t * bytes))                              \
  N(nvrtcGetProgramLog, (nvrtcProgram prog, char *log))

static struct cu_api {
#define CU_MEMBER(name, required, params) CUresult(*name) params;
  CU_ENTRIES(CU_MEMBER)
#undef CU_MEMBER
} cu;
static struct nvrtc_api {
#define NVRTC_MEMBER(name, params) nvrtcResult(*name) params;
  NVRTC_ENTRIES(NVRTC_MEMBER)
#undef NVRTC_MEMBER
  const char *(*nvrtcGetErrorString)(nvrtcResult result);
} nv;
/* Both libraries stay loaded for the process, as kiln's do. */
static int cu_loaded, nv_loaded;

/* Primary contexts retained by the baseline, per device ordinal, never released: the
 * context then lives from the first case to the end of the process instead of being
 * destroyed and re-created (hundreds of ms) whenever kiln's last context goes. */
#define MAX_DEVICES 64
static CUcontext primary[MAX_DEVICES];

/* The same work as the suite's kiln dialect kernels, in CUDA C++. */
static const char vecadd_source[] =
    "extern \"C\" __global__ void vecadd(const float *a, const float *b, float *c, int n) {\n"
    "  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";
static const char empty_source[] = "extern \"C\" __global__ void empty(void) {}\n";

/* vecadd's inputs: a = 1.5, b = 2.25, so c = 3.75 exactly. */
#define VEC_A 0x3fc00000u /* 1.5f */
#define VEC_B 0x40100000u /* 2.25f */
#define VEC_C 3.75f
/* vecadd is checked on three chunks of c (start, middle, end) of this many floats. */
#define CHECK_ITEMS ((size_t)1 << 18)

typedef struct cuda_state {
  CUcontext ctx;
  CUstream stream;
  CUmodule module;
  CUfunction fn;
  unsigned block, grid; /* the launch: grid x block threads, 1-D */
  CUdeviceptr a, b, c;  /* vecadd */
  int n;
  void *params[4];
  CUdeviceptr buf; /* transfer cases */
  void *host;
  size_t bytes;
  int pinned;
  CUevent event, t0, t1;
  char arch_opt[48]; /* --gpu-architecture=sm_XY (CUBIN) or compute_XY (PTX) */
  int ptx;
  unsigned long seq; /* nvrtc_compile: makes each iteration's source unique */
  char *source;      /* nvrtc_compile: room for vecadd_source and the comment */
  size_t source_cap;
} cuda_state;

static const char *cu_name(CUresult r) {
  const char *s = NULL;
  if (cu.cuGetErrorName == NULL || cu.cuGetErrorName(r, &s) != CUDA_SUCCESS || s == NULL)
    return "unknown CUresult";
  return s;
}

static int fail(const char *what, CUresult r) {
  fprintf(stderr, "raw-cuda baseline: %s failed: %s (%d)\n", what, cu_name(r), (int)r);
  return r != CUDA_SUCCESS ? (int)r : -1;
}

static int nv_fail(const char *what, nvrtcResult r) {
  const char *s = nv.nvrtcGetErrorString ? nv.nvrtcGetErrorString(r) : NULL;
  fprintf(stderr, "raw-cuda baseline: %s failed: %s (%d)\n", what, s ? s : "?", (int)r);
  return r != NVRTC_SUCCESS ? (int)r : -1;
}

/* An absolute path from `var`, NULL when unset; *bad = 1 when set but relative. */
static const char *env_path(const char *var, int *bad) {
  const char *p = getenv(var);
  *bad = 0;
  if (p == NULL || p[0] == '\0')
    return NULL;
  if (p[0] != '/') {
    fprintf(stderr, "raw-cuda baseline: %s='%s' is not an absolute path\n", var, p);
    *bad = 1;
    return NULL;
  }
  return p;
}

static int load_cuda(void) {
  if (cu_loaded)
    return 0;
  int bad = 0;
  const char *path = env_path("KILN_CUDA_LIBRARY", &bad);
  if (bad)
    return EINVAL;
  const char *name = path != NULL ? path : "libcuda.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *why = dlerror();
    fprintf(stderr, "raw-cuda baseline: cannot load %s: %s\n", name, why ? why : "?");
    return ENOENT;
  }
  pfn_cuGetProcAddress_v2 get = NULL;
  *(void **)&get = dlsym(lib, "cuGetProcAddress_v2");
  if (get == NULL) {
    fprintf(stderr, "raw-cuda baseline: %s has no cuGetProcAddress_v2 (older than CUDA 12.0)\n",
            name);
    dlclose(lib);
    return ENOENT;
  }
  int status = 0;
  CUresult r = CUDA_SUCCESS;
#define CU_RESOLVE(fn, required, params)                                                      \
  status = CU_GET_PROC_ADDRESS_SUCCESS;                                                       \
  r = get(#fn, (void **)&cu.fn, BENCH_CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &status);    \
  if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS)                             \
    cu.fn = NULL;                                                                             \
  if (cu.fn == NULL && (required)) {                                                          \
    fprintf(stderr, "raw-cuda baseline: %s does not give %s (cuGetProcAddress_v2: %d, %d)\n", \
            name, #fn, (int)r, status);                                                       \
    memset(&cu, 0, sizeof cu);                                                                \
    dlclose(lib);                                                                             \
    return ENOENT;                                                                            \
  }
  CU_ENTRIES(CU_RESOLVE)
#undef CU_RESOLVE
  if ((r = cu.cuInit(0)) != CUDA_SUCCESS) {
    int rc = fail("cuInit(0)", r);
    memset(&cu, 0, sizeof cu);
    dlclose(lib);
    return rc;
  }
  cu_loaded = 1;
  return 0;
}

static int nv_try(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    return 0;
  struct nvrtc_api api;
  memset(&api, 0, sizeof api);
  const char *gap = NULL;
#define NVRTC_RESOLVE(fn, params)      \
  *(void **)&api.fn = dlsym(lib, #fn); \
  if (api.fn == NULL && gap == NULL)   \
    gap = #fn;
  NVRTC_ENTRIES(NVRTC_RESOLVE)
#undef NVRTC_RESOLVE
  *(void **)&api.nvrtcGetErrorString = dlsym(lib, "nvrtcGetErrorString");
  if (api.nvrtcGetErrorString == NULL && gap == NULL)
    gap = "nvrtcGetErrorString";
  if (gap != NULL) {
    fprintf(stderr, "raw-cuda baseline: %s has no %s (older than CUDA 11.2?)\n", path, gap);
    dlclose(lib);
    return 0;
  }
  nv = api;
  return 1;
}

/* As kiln looks for NVRTC: $KILN_NVRTC_LIBRARY (absolute) alone when set; else the
 * sonames, then the toolkit's lib64 folders, so both find the same library. */
static int load_nvrtc(void) {
  if (nv_loaded)
    return 0;
  int bad = 0;
  const char *path = env_path("KILN_NVRTC_LIBRARY", &bad);
  if (bad)
    return EINVAL;
  if (path != NULL) {
    if (!nv_try(path)) {
      fprintf(stderr, "raw-cuda baseline: cannot use KILN_NVRTC_LIBRARY=%s\n", path);
      return ENOENT;
    }
    nv_loaded = 1;
    return 0;
  }
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12"};
  char dirs[2][512];
  size_t ndirs = 0;
  const char *home = getenv("CUDA_HOME");
  if (home != NULL && home[0] == '/')
    snprintf(dirs[ndirs++], sizeof dirs[0], "%s/lib64", home);
  snprintf(dirs[ndirs++], sizeof dirs[0], "/usr/local/cuda/lib64");
  for (size_t d = 0; d <= ndirs && !nv_loaded; d++) {
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !nv_loaded; i++) {
      char full[600];
      if (d == 0)
        snprintf(full, sizeof full, "%s", names[i]);
      else
        snprintf(full, sizeof full, "%s/%s", dirs[d - 1], names[i]);
      nv_loaded = nv_try(full);
    }
  }
  if (!nv_loaded) {
    fprintf(stderr, "raw-cuda baseline: NVRTC not found (libnvrtc.so.13/.12, $CUDA_HOME/lib64, "
                    "/usr/local/cuda/lib64): set KILN_NVRTC_LIBRARY\n");
    return ENOENT;
  }
  return 0;
}

/* The device's primary context, retained once for the process, made current. */
static int use_primary(int device, CUcontext *ctx) {
  if (device < 0 || device >= MAX_DEVICES)
    return EINVAL;
  CUresult r = CUDA_SUCCESS;
  if (primary[device] == NULL) {
    r = cu.cuDevicePrimaryCtxRetain(&primary[device], device);
    if (r != CUDA_SUCCESS) {
      primary[device] = NULL;
      return fail("cuDevicePrimaryCtxRetain", r);
    }
  }
  if ((r = cu.cuCtxSetCurrent(primary[device])) != CUDA_SUCCESS)
    return fail("cuCtxSetCurrent", r);
  *ctx = primary[device];
  return 0;
}

/* The primary context current on this thread again (kiln pushes and pops its own
 * around its calls; this costs one cheap driver call per batch, not per op). */
static int current(cuda_state *s) {
  CUresult r = cu.cuCtxSetCurrent(s->ctx);
  return r == CUDA_SUCCESS ? 0 : fail("cuCtxSetCurrent", r);
}

/* NVRTC's target for the device, as kiln chooses it: sm_XY (CUBIN) when NVRTC knows
 * the device's architecture, else PTX for the newest architecture below it. */
static int pick_arch(cuda_state *s, int device) {
  int major = 0, minor = 0, count = 0;
  CUresult r =
      cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
  if (r == CUDA_SUCCESS)
    r = cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
  if (r != CUDA_SUCCESS)
    return fail("cuDeviceGetAttribute(COMPUTE_CAPABILITY)", r);
  nvrtcResult nr = nv.nvrtcGetNumSupportedArchs(&count);
  if (nr != NVRTC_SUCCESS || count <= 0 || count > 256)
    return nr != NVRTC_SUCCESS ? nv_fail("nvrtcGetNumSupportedArchs", nr) : EINVAL;
  int archs[256];
  if ((nr = nv.nvrtcGetSupportedArchs(archs)) != NVRTC_SUCCESS)
    return nv_fail("nvrtcGetSupportedArchs", nr);
  int want = major * 10 + minor, below = 0;
  for (int i = 0; i < count; i++) {
    if (archs[i] == want) {
      snprintf(s->arch_opt, sizeof s->arch_opt, "--gpu-architecture=sm_%d", want);
      s->ptx = 0;
      return 0;
    }
    if (archs[i] < want && archs[i] > below)
      below = archs[i];
  }
  if (below == 0) {
    fprintf(stderr, "raw-cuda baseline: NVRTC cannot compile for compute capability %d.%d\n", major,
            minor);
    return EINVAL;
  }
  snprintf(s->arch_opt, sizeof s->arch_opt, "--gpu-architecture=compute_%d", below);
  s->ptx = 1;
  return 0;
}

/* source -> CUBIN (or PTX) image in *image (free it). */
static int compile(cuda_state *s, const char *source, void **image) {
  nvrtcProgram prog = NULL;
  *image = NULL;
  nvrtcResult r = nv.nvrtcCreateProgram(&prog, source, "bench_cuda.cu", 0, NULL, NULL);
  if (r != NVRTC_SUCCESS)
    return nv_fail("nvrtcCreateProgram", r);
  const char *opts[] = {s->arch_opt};
  r = nv.nvrtcCompileProgram(prog, 1, opts);
  if (r != NVRTC_SUCCESS) {
    size_t n = 0;
    char log[2048] = "";
    if (nv.nvrtcGetProgramLogSize(prog, &n) == NVRTC_SUCCESS && n > 0 && n <= sizeof log)
      nv.nvrtcGetProgramLog(prog, log);
    log[sizeof log - 1] = '\0';
    fprintf(stderr, "raw-cuda baseline: NVRTC log (%s):\n%s\n", s->arch_opt, log);
    nv.nvrtcDestroyProgram(&prog);
    return nv_fail("nvrtcCompileProgram", r);
  }
  size_t bytes = 0;
  r = s->ptx ? nv.nvrtcGetPTXSize(prog, &bytes) : nv.nvrtcGetCUBINSize(prog, &bytes);
  char *out = r == NVRTC_SUCCESS && bytes > 0 ? malloc(bytes) : NULL;
  if (out != NULL)
    r = s->ptx ? nv.nvrtcGetPTX(prog, out) : nv.nvrtcGetCUBIN(prog, out);
  nv.nvrtcDestroyProgram(&prog);
  if (r != NVRTC_SUCCESS) {
    free(out);
    return nv_fail(s->ptx ? "nvrtcGetPTX" : "nvrtcGetCUBIN", r);
  }
  if (out == NULL)
    return ENOMEM;
  *image = out;
  return 0;
}

/* Compile `source`, load it, take the function `name`, pick the launch for `items`
 * work-items as kiln does without a local size. */
static int build(cuda_state *s, const char *source, const char *name, size_t items) {
  void *image = NULL;
  int rc = compile(s, source, &image);
  if (rc != 0)
    return rc;
  CUresult r = cu.cuModuleLoadDataEx(&s->module, image, 0, NULL, NULL);
  free(image);
  if (r != CUDA_SUCCESS) {
    s->module = NULL;
    return fail("cuModuleLoadDataEx", r);
  }
  if ((r = cu.cuModuleGetFunction(&s->fn, s->module, name)) != CUDA_SUCCESS)
    return fail("cuModuleGetFunction", r);
  int limit = 0, min_grid = 0, best = 0;
  if (cu.cuFuncGetAttribute(&limit, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, s->fn) !=
          CUDA_SUCCESS ||
      limit <= 0)
    limit = 256;
  if (cu.cuOccupancyMaxPotentialBlockSize == NULL ||
      cu.cuOccupancyMaxPotentialBlockSize(&min_grid, &best, s->fn, NULL, 0, limit) !=
          CUDA_SUCCESS ||
      best <= 0)
    best = limit < 256 ? limit : 256;
  size_t block = (size_t)best, small = (items + 31) / 32 * 32;
  if (block > small)
    block = small;
  size_t grid = (items + block - 1) / block;
  if (grid > UINT_MAX)
    return EINVAL;
  s->block = (unsigned)block;
  s->grid = (unsigned)grid;
  return 0;
}

static CUresult launch(cuda_state *s) {
  return cu.cuLaunchKernel(s->fn, s->grid, 1, 1, s->block, 1, 1, 0, s->stream, s->params, NULL);
}

/* Inputs set on the device, c cleared, one launch, three chunks of c checked. */
static int vecadd_prepare(cuda_state *s) {
  size_t n = (size_t)s->n;
  CUresult r = cu.cuMemsetD32Async(s->a, VEC_A, n, s->stream);
  if (r == CUDA_SUCCESS)
    r = cu.cuMemsetD32Async(s->b, VEC_B, n, s->stream);
  if (r == CUDA_SUCCESS)
    r = cu.cuMemsetD32Async(s->c, 0, n, s->stream);
  if (r != CUDA_SUCCESS)
    return fail("cuMemsetD32Async", r);
  s->params[0] = &s->a;
  s->params[1] = &s->b;
  s->params[2] = &s->c;
  s->params[3] = &s->n;
  int rc = bench_baseline_cuda_vecadd(s, 1);
  if (rc != 0)
    return rc;
  size_t chunk = n < CHECK_ITEMS ? n : CHECK_ITEMS;
  float *h = malloc(chunk * sizeof(float));
  if (h == NULL)
    return ENOMEM;
  size_t at[3] = {0, (n - chunk) / 2, n - chunk};
  for (int k = 0; k < 3 && rc == 0; k++) {
    r = cu.cuMemcpyDtoHAsync(h, s->c + at[k] * sizeof(float), chunk * sizeof(float), s->stream);
    if (r == CUDA_SUCCESS)
      r = cu.cuStreamSynchronize(s->stream);
    if (r != CUDA_SUCCESS) {
      rc = fail("reading the vecadd result", r);
      break;
    }
    for (size_t i = 0; i < chunk; i++) {
      if (h[i] != VEC_C) {
        fprintf(stderr, "raw-cuda baseline: vecadd c[%zu] = %g, expected %g\n", at[k] + i,
                (double)h[i], (double)VEC_C);
        rc = EIO;
        break;
      }
    }
  }
  free(h);
  return rc;
}

void bench_baseline_cuda_teardown(void *state) {
  cuda_state *s = state;
  if (s == NULL)
    return;
  if (s->ctx != NULL && cu.cuCtxSetCurrent(s->ctx) == CUDA_SUCCESS) {
    if (s->stream != NULL)
      cu.cuStreamSynchronize(s->stream);
    if (s->event != NULL)
      cu.cuEventDestroy(s->event);
    if (s->t0 != NULL)
      cu.cuEventDestroy(s->t0);
    if (s->t1 != NULL)
      cu.cuEventDestroy(s->t1);
    CUdeviceptr ptrs[] = {s->a, s->b, s->c, s->buf};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
      if (ptrs[i] != 0)
        cu.cuMemFree(ptrs[i]);
    if (s->module != NULL)
      cu.cuModuleUnload(s->module);
    if (s->stream != NULL)
      cu.cuStreamDestroy(s->stream);
    if (s->host != NULL && s->pinned)
      cu.cuMemFreeHost(s->host);
  }
  if (s->host != NULL && !s->pinned)
    free(s->host);
  free(s->source);
  free(s);
}

int bench_baseline_cuda_setup(void *arg, void **state) {
  const bench_cuda_args *args = arg;
  *state = NULL;
  if (args == NULL)
    return EINVAL;
  int rc = load_cuda();
  if (rc != 0)
    return rc;
  cuda_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  CUresult r = CUDA_SUCCESS;
  if ((rc = use_primary(args->device, &s->ctx)) != 0)
    goto failed;
  if ((r = cu.cuStreamCreate(&s->stream, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
    s->stream = NULL;
    rc = fail("cuStreamCreate", r);
    goto failed;
  }
  if (args->bytes > 0) {
    s->bytes = args->bytes;
    s->pinned = args->pinned;
    if (s->pinned) {
      if (cu.cuMemHostAlloc == NULL || cu.cuMemFreeHost == NULL) {
        fprintf(stderr, "raw-cuda baseline: the driver gives no cuMemHostAlloc/cuMemFreeHost\n");
        rc = ENOSYS;
        goto failed;
      }
      if ((r = cu.cuMemHostAlloc(&s->host, s->bytes, 0)) != CUDA_SUCCESS) {
        s->host = NULL;
        rc = fail("cuMemHostAlloc", r);
        goto failed;
      }
    } else {
      void *host = NULL;
      if (posix_memalign(&host, 4096, s->bytes) != 0) {
        rc = ENOMEM;
        goto failed;
      }
      s->host = host;
    }
    memset(s->host, 0x5a, s->bytes); /* touched: no timed copy takes a page fault */
    if ((r = cu.cuMemAlloc(&s->buf, s->bytes)) != CUDA_SUCCESS) {
      s->buf = 0;
      rc = fail("cuMemAlloc", r);
      goto failed;
    }
    r = cu.cuMemcpyHtoDAsync(s->buf, s->host, s->bytes, s->stream);
    if (r == CUDA_SUCCESS)
      r = cu.cuStreamSynchronize(s->stream);
    if (r != CUDA_SUCCESS) {
      rc = fail("the first cuMemcpyHtoDAsync", r);
      goto failed;
    }
  }
  if (args->event && (r = cu.cuEventCreate(&s->event, CU_EVENT_DISABLE_TIMING)) != CUDA_SUCCESS) {
    s->event = NULL;
    rc = fail("cuEventCreate", r);
    goto failed;
  }
  if (args->timing) {
    if ((r = cu.cuEventCreate(&s->t0, CU_EVENT_DEFAULT)) != CUDA_SUCCESS)
      s->t0 = NULL;
    if (r == CUDA_SUCCESS && (r = cu.cuEventCreate(&s->t1, CU_EVENT_DEFAULT)) != CUDA_SUCCESS)
      s->t1 = NULL;
    if (r != CUDA_SUCCESS) {
      rc = fail("cuEventCreate (timing)", r);
      goto failed;
    }
  }
  if (args->kernel != BENCH_CUDA_KERNEL_NONE || args->compile) {
    if ((rc = load_nvrtc()) != 0 || (rc = pick_arch(s, args->device)) != 0)
      goto failed;
    s->source_cap = sizeof vecadd_source + 64;
    if ((s->source = malloc(s->source_cap)) == NULL) {
      rc = ENOMEM;
      goto failed;
    }
  }
  if (args->kernel == BENCH_CUDA_KERNEL_VECADD) {
    if (args->items > INT_MAX) {
      rc = EINVAL;
      goto failed;
    }
    s->n = (int)args->items;
    size_t bytes = args->items * sizeof(float);
    CUdeviceptr *bufs[] = {&s->a, &s->b, &s->c};
    for (int i = 0; i < 3 && args->items > 0; i++) {
      if ((r = cu.cuMemAlloc(bufs[i], bytes)) != CUDA_SUCCESS) {
        *bufs[i] = 0;
        rc = fail("cuMemAlloc", r);
        goto failed;
      }
    }
    if ((rc = build(s, vecadd_source, "vecadd", args->items > 0 ? args->items : 1)) != 0)
      goto failed;
    if (args->items > 0 && (rc = vecadd_prepare(s)) != 0)
      goto failed;
  } else if (args->kernel == BENCH_CUDA_KERNEL_EMPTY) {
    if ((rc = build(s, empty_source, "empty", 1)) != 0)
      goto failed;
    s->params[0] = NULL; /* no parameters: kernelParams may be anything */
  }
  *state = s;
  return 0;

failed:
  bench_baseline_cuda_teardown(s);
  return rc;
}

/* ---- launches and events ---- */

static int launch_sync(cuda_state *s, uint64_t iters) {
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUresult r = launch(s);
    if (r != CUDA_SUCCESS)
      return fail("cuLaunchKernel", r);
    if ((r = cu.cuStreamSynchronize(s->stream)) != CUDA_SUCCESS)
      return fail("cuStreamSynchronize", r);
  }
  return rc;
}

int bench_baseline_cuda_launch_roundtrip(void *state, uint64_t iters) {
  return launch_sync(state, iters);
}

int bench_baseline_cuda_launch_enqueue(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    for (unsigned k = 0; k < BENCH_CUDA_BURST; k++) {
      CUresult r = launch(s);
      if (r != CUDA_SUCCESS) {
        cu.cuStreamSynchronize(s->stream);
        return fail("cuLaunchKernel", r);
      }
    }
    CUresult r = cu.cuStreamSynchronize(s->stream);
    if (r != CUDA_SUCCESS)
      return fail("cuStreamSynchronize", r);
  }
  return rc;
}

int bench_baseline_cuda_event_record(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUresult r = cu.cuEventRecord(s->event, s->stream);
    if (r != CUDA_SUCCESS)
      return fail("cuEventRecord", r);
    while ((r = cu.cuEventQuery(s->event)) == CUDA_ERROR_NOT_READY) {
    }
    if (r != CUDA_SUCCESS)
      return fail("cuEventQuery", r);
  }
  return rc;
}

/* ---- pool: the raw allocations the device pool is measured against ---- */

int bench_baseline_cuda_alloc_free(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUdeviceptr p = 0;
    CUresult r = cu.cuMemAlloc(&p, s->bytes);
    if (r != CUDA_SUCCESS)
      return fail("cuMemAlloc", r);
    if ((r = cu.cuMemFree(p)) != CUDA_SUCCESS)
      return fail("cuMemFree", r);
  }
  return rc;
}

/* host_alloc_free: cuMemHostAlloc + cuMemFreeHost of s->bytes. */
int bench_baseline_cuda_host_alloc_free(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  if (rc == 0 && (cu.cuMemHostAlloc == NULL || cu.cuMemFreeHost == NULL)) {
    fprintf(stderr, "raw-cuda baseline: the driver gives no cuMemHostAlloc/cuMemFreeHost\n");
    return ENOSYS;
  }
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    void *p = NULL;
    CUresult r = cu.cuMemHostAlloc(&p, s->bytes, 0);
    if (r != CUDA_SUCCESS)
      return fail("cuMemHostAlloc", r);
    if ((r = cu.cuMemFreeHost(p)) != CUDA_SUCCESS)
      return fail("cuMemFreeHost", r);
  }
  return rc;
}

/* Stream-ordered: the driver's default memory pool; the stream is synchronised once per
 * batch of `iters` (as the kiln side never waits either). */
int bench_baseline_cuda_alloc_free_async(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  if (rc == 0 && (cu.cuMemAllocAsync == NULL || cu.cuMemFreeAsync == NULL)) {
    fprintf(stderr, "raw-cuda baseline: the driver gives no cuMemAllocAsync/cuMemFreeAsync\n");
    return ENOSYS;
  }
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUdeviceptr p = 0;
    CUresult r = cu.cuMemAllocAsync(&p, s->bytes, s->stream);
    if (r != CUDA_SUCCESS)
      return fail("cuMemAllocAsync", r);
    if ((r = cu.cuMemFreeAsync(p, s->stream)) != CUDA_SUCCESS)
      return fail("cuMemFreeAsync", r);
  }
  CUresult r = cu.cuStreamSynchronize(s->stream);
  return rc ? rc : r != CUDA_SUCCESS ? fail("cuStreamSynchronize", r) : 0;
}

/* ---- transfers ---- */

int bench_baseline_cuda_h2d(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUresult r = cu.cuMemcpyHtoDAsync(s->buf, s->host, s->bytes, s->stream);
    if (r != CUDA_SUCCESS)
      return fail("cuMemcpyHtoDAsync", r);
    if ((r = cu.cuStreamSynchronize(s->stream)) != CUDA_SUCCESS)
      return fail("cuStreamSynchronize", r);
  }
  return rc;
}

int bench_baseline_cuda_d2h(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUresult r = cu.cuMemcpyDtoHAsync(s->host, s->buf, s->bytes, s->stream);
    if (r != CUDA_SUCCESS)
      return fail("cuMemcpyDtoHAsync", r);
    if ((r = cu.cuStreamSynchronize(s->stream)) != CUDA_SUCCESS)
      return fail("cuStreamSynchronize", r);
  }
  return rc;
}

/* ---- vecadd ---- */

int bench_baseline_cuda_vecadd(void *state, uint64_t iters) {
  return launch_sync(state, iters);
}

int bench_baseline_cuda_vecadd_timed(void *state, uint64_t iters, uint64_t *device_ns) {
  cuda_state *s = state;
  uint64_t total = 0;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    float ms = 0.0f;
    CUresult r = cu.cuEventRecord(s->t0, s->stream);
    if (r == CUDA_SUCCESS)
      r = launch(s);
    if (r == CUDA_SUCCESS)
      r = cu.cuEventRecord(s->t1, s->stream);
    if (r == CUDA_SUCCESS)
      r = cu.cuEventSynchronize(s->t1);
    if (r == CUDA_SUCCESS)
      r = cu.cuEventElapsedTime(&ms, s->t0, s->t1);
    if (r != CUDA_SUCCESS)
      return fail("an event-timed vecadd launch", r);
    total += ms > 0.0f ? (uint64_t)((double)ms * 1e6) : 0;
  }
  *device_ns = total;
  return rc;
}

/* ---- compile, module, function ---- */

int bench_baseline_cuda_compile(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    snprintf(s->source, s->source_cap, "%s// %lu\n", vecadd_source, ++s->seq);
    void *image = NULL;
    if ((rc = compile(s, s->source, &image)) != 0)
      return rc;
    CUmodule module = NULL;
    CUresult r = cu.cuModuleLoadDataEx(&module, image, 0, NULL, NULL);
    free(image);
    if (r != CUDA_SUCCESS)
      return fail("cuModuleLoadDataEx", r);
    if ((r = cu.cuModuleUnload(module)) != CUDA_SUCCESS)
      return fail("cuModuleUnload", r);
  }
  return rc;
}

int bench_baseline_cuda_get_function(void *state, uint64_t iters) {
  cuda_state *s = state;
  int rc = current(s);
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUfunction fn = NULL;
    CUresult r = cu.cuModuleGetFunction(&fn, s->module, "vecadd");
    if (r != CUDA_SUCCESS)
      return fail("cuModuleGetFunction", r);
  }
  return rc;
}

/* ---- async: host functions (the async_cuda suite's callback_latency) ---- */

typedef struct cu_host_wait {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t done;
} cu_host_wait;

static void on_host_fn(void *user) {
  cu_host_wait *w = user;
  pthread_mutex_lock(&w->lock);
  w->done++;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

int bench_baseline_cuda_host_func_roundtrip(void *state, uint64_t iters) {
  cuda_state *s = state;
  if (cu.cuLaunchHostFunc == NULL) {
    fprintf(stderr, "raw-cuda baseline: the driver has no cuLaunchHostFunc\n");
    return ENOSYS;
  }
  cu_host_wait w;
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  w.done = 0;
  int rc = 0;
  for (uint64_t i = 0; i < iters && rc == 0; i++) {
    CUresult r = launch(s);
    if (r != CUDA_SUCCESS) {
      rc = fail("cuLaunchKernel", r);
      break;
    }
    r = cu.cuLaunchHostFunc(s->stream, on_host_fn, &w);
    if (r != CUDA_SUCCESS) {
      rc = fail("cuLaunchHostFunc", r);
      break;
    }
    pthread_mutex_lock(&w.lock);
    while (w.done < i + 1)
      pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
  }
  if (rc != 0)
    cu.cuStreamSynchronize(s->stream); /* no host function still queued on w */
  pthread_mutex_destroy(&w.lock);
  pthread_cond_destroy(&w.cond);
  return rc;
}

/* ---- the streams suite's raw variants (bench/baseline_cuda.h, issue #18) ---- */

static const char spin_source[] =
    "extern \"C\" __global__ void spin(unsigned long long *out, unsigned long long iters) {\n"
    "  unsigned long long x = out[0] + 1;\n"
    "  for (unsigned long long i = 0; i < iters; i++) x = x * 2862933555777941757ULL + "
    "3037000493ULL;\n"
    "  out[0] = x;\n"
    "}\n";
static const char affine_source[] =
    "extern \"C\" __global__ void affine(const float *x, float *y, unsigned long long n) {\n"
    "  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < n) y[i] = 2.0f * x[i] + 1.0f;\n"
    "}\n";

#define RAW_STREAMS 4
#define RAW_SLOTS 2

typedef struct raw_streams {
  cuda_state base; /* its stream is unused; module, function and launch geometry used */
  int what;
  CUstream streams[RAW_STREAMS]; /* overlap: 4; pipeline: up, compute, down */
  CUdeviceptr outs[RAW_STREAMS];
  unsigned long long spin_iters;
  size_t bytes, chunk_bytes;
  void *src, *dst; /* pinned */
  CUdeviceptr in[RAW_SLOTS], out[RAW_SLOTS];
  /* per slot: its upload, compute and download done */
  CUevent up_done[RAW_SLOTS], run_done[RAW_SLOTS], down_done[RAW_SLOTS];
} raw_streams;

void bench_baseline_cuda_streams_teardown(void *state) {
  raw_streams *s = state;
  if (s == NULL)
    return;
  if (s->base.ctx != NULL && cu.cuCtxSetCurrent(s->base.ctx) == CUDA_SUCCESS) {
    for (int i = 0; i < RAW_STREAMS; i++)
      if (s->streams[i] != NULL)
        cu.cuStreamSynchronize(s->streams[i]);
    for (int i = 0; i < RAW_SLOTS; i++) {
      CUevent evs[] = {s->up_done[i], s->run_done[i], s->down_done[i]};
      for (int k = 0; k < 3; k++)
        if (evs[k] != NULL)
          cu.cuEventDestroy(evs[k]);
      if (s->in[i] != 0)
        cu.cuMemFree(s->in[i]);
      if (s->out[i] != 0)
        cu.cuMemFree(s->out[i]);
    }
    for (int i = 0; i < RAW_STREAMS; i++) {
      if (s->outs[i] != 0)
        cu.cuMemFree(s->outs[i]);
      if (s->streams[i] != NULL)
        cu.cuStreamDestroy(s->streams[i]);
    }
    if (s->src != NULL && cu.cuMemFreeHost != NULL)
      cu.cuMemFreeHost(s->src);
    if (s->dst != NULL && cu.cuMemFreeHost != NULL)
      cu.cuMemFreeHost(s->dst);
  }
  s->base.host = NULL;
  bench_baseline_cuda_teardown(&s->base); /* the module, the unused stream; frees s */
}

int bench_baseline_cuda_streams_setup(void *arg, void **state) {
  const bench_cuda_streams_args *args = arg;
  *state = NULL;
  if (args == NULL || (args->what != BENCH_CUDA_OVERLAP && args->what != BENCH_CUDA_PIPELINE))
    return EINVAL;
  int rc = load_cuda();
  if (rc != 0)
    return rc;
  raw_streams *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->what = args->what;
  CUresult r = CUDA_SUCCESS;
  if ((rc = use_primary(args->device, &s->base.ctx)) != 0)
    goto failed;
  if ((r = cu.cuStreamCreate(&s->base.stream, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
    s->base.stream = NULL;
    rc = fail("cuStreamCreate", r);
    goto failed;
  }
  for (int i = 0; i < RAW_STREAMS; i++)
    if ((r = cu.cuStreamCreate(&s->streams[i], CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
      s->streams[i] = NULL;
      rc = fail("cuStreamCreate", r);
      goto failed;
    }
  if ((rc = load_nvrtc()) != 0 || (rc = pick_arch(&s->base, args->device)) != 0)
    goto failed;
  if (s->what == BENCH_CUDA_OVERLAP) {
    s->spin_iters = args->spin_iters;
    for (int i = 0; i < RAW_STREAMS; i++) {
      if ((r = cu.cuMemAlloc(&s->outs[i], 64)) != CUDA_SUCCESS) {
        s->outs[i] = 0;
        rc = fail("cuMemAlloc", r);
        goto failed;
      }
      if ((r = cu.cuMemsetD32Async(s->outs[i], 0, 16, s->streams[i])) != CUDA_SUCCESS) {
        rc = fail("cuMemsetD32Async", r);
        goto failed;
      }
    }
    if ((rc = build(&s->base, spin_source, "spin", 1)) != 0)
      goto failed;
    s->base.grid = s->base.block = 1; /* one work-item, as the kiln side */
  } else {
    s->bytes = args->bytes;
    s->chunk_bytes = args->chunk_bytes;
    if (s->chunk_bytes == 0 || s->bytes % s->chunk_bytes != 0 || s->chunk_bytes % 4 != 0) {
      rc = EINVAL;
      goto failed;
    }
    if (cu.cuMemHostAlloc == NULL || cu.cuMemFreeHost == NULL) {
      fprintf(stderr, "raw-cuda baseline: the driver gives no cuMemHostAlloc/cuMemFreeHost\n");
      rc = ENOSYS;
      goto failed;
    }
    if ((r = cu.cuMemHostAlloc(&s->src, s->bytes, 0)) != CUDA_SUCCESS ||
        (r = cu.cuMemHostAlloc(&s->dst, s->bytes, 0)) != CUDA_SUCCESS) {
      rc = fail("cuMemHostAlloc", r);
      goto failed;
    }
    float *x = s->src;
    for (size_t i = 0; i < s->bytes / sizeof(float); i++)
      x[i] = (float)(i & 1023);
    memset(s->dst, 0, s->bytes);
    for (int i = 0; i < RAW_SLOTS; i++) {
      if ((r = cu.cuMemAlloc(&s->in[i], s->chunk_bytes)) != CUDA_SUCCESS ||
          (r = cu.cuMemAlloc(&s->out[i], s->chunk_bytes)) != CUDA_SUCCESS) {
        rc = fail("cuMemAlloc", r);
        goto failed;
      }
      CUevent *evs[] = {&s->up_done[i], &s->run_done[i], &s->down_done[i]};
      for (int k = 0; k < 3; k++)
        if ((r = cu.cuEventCreate(evs[k], CU_EVENT_DISABLE_TIMING)) != CUDA_SUCCESS) {
          *evs[k] = NULL;
          rc = fail("cuEventCreate", r);
          goto failed;
        }
    }
    if ((rc = build(&s->base, affine_source, "affine", s->chunk_bytes / sizeof(float))) != 0)
      goto failed;
    /* one run, checked: y = 2x + 1 everywhere */
    if ((rc = bench_baseline_cuda_pipeline(s, 1)) != 0)
      goto failed;
    const float *y = s->dst;
    for (size_t i = 0; i < s->bytes / sizeof(float); i += 4099)
      if (y[i] != 2.0f * (float)(i & 1023) + 1.0f) {
        fprintf(stderr, "raw-cuda baseline: pipeline y[%zu] = %g, expected %g\n", i, (double)y[i],
                2.0 * (double)(i & 1023) + 1.0);
        rc = EIO;
        goto failed;
      }
  }
  *state = s;
  return 0;

failed:
  bench_baseline_cuda_streams_teardown(s);
  return rc;
}

/* 10 spin kernels on each of 4 streams, queued in turn, each stream on its own buffer;
 * then every stream synchronized. */
int bench_baseline_cuda_overlap(void *state, uint64_t iters) {
  raw_streams *s = state;
  int rc = current(&s->base);
  for (uint64_t it = 0; it < iters && rc == 0; it++) {
    for (unsigned k = 0; k < BENCH_CUDA_OVERLAP_KERNELS; k++)
      for (int j = 0; j < RAW_STREAMS; j++) {
        void *params[] = {&s->outs[j], &s->spin_iters};
        CUresult r =
            cu.cuLaunchKernel(s->base.fn, 1, 1, 1, 1, 1, 1, 0, s->streams[j], params, NULL);
        if (r != CUDA_SUCCESS)
          return fail("cuLaunchKernel", r);
      }
    for (int j = 0; j < RAW_STREAMS; j++) {
      CUresult r = cu.cuStreamSynchronize(s->streams[j]);
      if (r != CUDA_SUCCESS)
        return fail("cuStreamSynchronize", r);
    }
  }
  return rc;
}

/* The hand-written pipeline: chunk i up on stream 0, through affine on stream 1, down on
 * stream 2, slot i % 2, ordered by events: the upload into a slot waits for the compute
 * that last read it, the compute for its upload and for the download that last read its
 * output slot, the download for the compute. */
int bench_baseline_cuda_pipeline(void *state, uint64_t iters) {
  raw_streams *s = state;
  int rc = current(&s->base);
  CUstream up = s->streams[0], run = s->streams[1], down = s->streams[2];
  size_t chunks = s->bytes / s->chunk_bytes;
  unsigned long long n = s->chunk_bytes / sizeof(float);
  for (uint64_t it = 0; it < iters && rc == 0; it++) {
    for (size_t i = 0; i < chunks; i++) {
      int k = (int)(i % RAW_SLOTS);
      size_t off = i * s->chunk_bytes;
      CUresult r = CUDA_SUCCESS;
      if (i >= RAW_SLOTS)
        r = cu.cuStreamWaitEvent(up, s->run_done[k], 0);
      if (r == CUDA_SUCCESS)
        r = cu.cuMemcpyHtoDAsync(s->in[k], (const char *)s->src + off, s->chunk_bytes, up);
      if (r == CUDA_SUCCESS)
        r = cu.cuEventRecord(s->up_done[k], up);
      if (r == CUDA_SUCCESS)
        r = cu.cuStreamWaitEvent(run, s->up_done[k], 0);
      if (r == CUDA_SUCCESS && i >= RAW_SLOTS)
        r = cu.cuStreamWaitEvent(run, s->down_done[k], 0);
      void *params[] = {&s->in[k], &s->out[k], &n};
      if (r == CUDA_SUCCESS)
        r = cu.cuLaunchKernel(s->base.fn, s->base.grid, 1, 1, s->base.block, 1, 1, 0, run, params,
                              NULL);
      if (r == CUDA_SUCCESS)
        r = cu.cuEventRecord(s->run_done[k], run);
      if (r == CUDA_SUCCESS)
        r = cu.cuStreamWaitEvent(down, s->run_done[k], 0);
      if (r == CUDA_SUCCESS)
        r = cu.cuMemcpyDtoHAsync((char *)s->dst + off, s->out[k], s->chunk_bytes, down);
      if (r == CUDA_SUCCESS)
        r = cu.cuEventRecord(s->down_done[k], down);
      if (r != CUDA_SUCCESS)
        return fail("queueing the pipeline", r);
    }
    for (int j = 0; j < 3; j++) {
      CUresult r = cu.cuStreamSynchronize(s->streams[j]);
      if (r != CUDA_SUCCESS)
        return fail("cuStreamSynchronize", r);
    }
  }
  return rc;
}
