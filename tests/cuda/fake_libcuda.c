/* SPDX-License-Identifier: MIT */
/* A fake libcuda for CI, built from kiln's own declarations (cuda_decl.h): it exports
 * the bootstrap symbols kiln takes with dlsym and, through cuGetProcAddress_v2, every
 * entry kiln resolves, implemented over host memory (a CUdeviceptr is a host
 * address). Behaviour is configured by environment variables (fake_libcuda.h) so the
 * backend's loader, device enumeration, error paths and its whole runtime run where
 * no GPU is.
 *
 * A host-side emulation of the driver semantics kiln relies on:
 *   - every CUstream has a worker thread running its commands in order (copies,
 *     memsets, kernel launches, host functions, event records, waits on events);
 *     cuStreamDestroy returns at once, the worker finishes the queued work, frees the
 *     stream and exits;
 *   - events pass when their stream reaches the record (cuEventQuery answers
 *     CUDA_ERROR_NOT_READY before), cuStreamWaitEvent waits for the record the event
 *     had at the call; synchronize calls block; elapsed times are the host times at
 *     which the worker passed each record;
 *   - pageable host memory as the real driver handles it: cuMemcpyDtoHAsync into
 *     memory that is not page-locked returns only once the copy is done in stream
 *     order, cuMemcpyHtoDAsync from it stages the source at the call; page-locked
 *     memory (cuMemHostAlloc / cuMemHostRegister) is fully asynchronous;
 *   - kernel launches (KILN_FAKE_CUDA_LAUNCH=emulate) of the test kernels, recognised
 *     by name, run on the worker over the fake's device memory, thread by thread as
 *     the grid and block say, with the parameters copied at the call; an access
 *     outside the kernel's buffers is a fault: CUDA_ERROR_ILLEGAL_ADDRESS, sticky;
 *   - sticky errors: once sticky, queued work is dropped (never run), synchronising
 *     calls return at once with the error; cuDevicePrimaryCtxReset clears it and
 *     drops whatever was queued before it.
 * Thread-safe: one mutex (`lock`) around all state, condition variables for the
 * workers (one per stream) and for progress (one, broadcast on every step). */
#include "fake_libcuda.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/cuda/cuda_decl.h"

#define EXPORT __attribute__((visibility("default")))

/* Prototypes of every exported entry, from kiln's declarations. */
#define FAKE_PROTO(name, symbol, required, params) EXPORT kiln_CUresult symbol params;
KILN_CU_ENTRIES(FAKE_PROTO)
#undef FAKE_PROTO
EXPORT kiln_CUresult cuDriverGetVersion(int *driverVersion);
#ifndef FAKE_OLD_DRIVER
EXPORT kiln_CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                         uint64_t flags,
                                         kiln_CUdriverProcAddressQueryResult *symbolStatus);
#endif
EXPORT long kiln_fake_cuda_calls(void);
EXPORT long kiln_fake_cuda_live(void);
EXPORT void kiln_fake_cuda_expect_params(const size_t *bytes, int count);
EXPORT void kiln_fake_cuda_last_launch(kiln_fake_launch *out);
EXPORT void kiln_fake_cuda_fail(const char *entry, long nth, int code);

struct CUctx_st {
  int device, retains;
};
struct CUmod_st {
  size_t bytes;
  unsigned char *image;
};
struct CUfunc_st {
  struct CUmod_st *mod;
  char name[64];
};

/* An event: `records` counts cuEventRecord calls, `passed` is the highest record a
 * stream has reached (records complete in each stream's order), t_ns when it did.
 * Freed when the user destroyed it and no queued record or wait refers to it. */
struct CUevent_st {
  unsigned flags;
  uint64_t records, passed, t_ns;
  int refs;
};

/* The emulated kernels (KILN_FAKE_CUDA_LAUNCH=emulate), by name. */
typedef enum { K_VECADD, K_ADD_U32, K_HITS, K_SET_U32, K_COUNT } kernel_kind;
#define MAX_KPARAMS 4
static const struct {
  const char *name;
  int params;                         /* declared parameters (the 3 hidden sizes follow) */
  unsigned char bytes[MAX_KPARAMS];   /* each one's size in kernelParams */
  unsigned char pointer[MAX_KPARAMS]; /* a buffer (CUdeviceptr) */
} kernels[K_COUNT] = {
    /* tests/kernels/vecadd.kiln: (const float *a, const float *b, float *c, int n) */
    [K_VECADD] = {"vecadd", 4, {8, 8, 8, 4}, {1, 1, 1, 0}},
    /* tests/support/kt_backend.c: (kiln_u32 *buf, kiln_u64 offset, kiln_u32 add) */
    [K_ADD_U32] = {"kt_add_u32", 3, {8, 8, 4}, {1, 0, 0}},
    /* (kiln_u32 *hits) */
    [K_HITS] = {"kt_hits", 1, {8}, {1}},
    /* (kiln_u32 *buf, kiln_u32 value) */
    [K_SET_U32] = {"kt_set_u32", 2, {8, 4}, {1, 0}},
};

typedef enum { C_COPY, C_MEMSET, C_LAUNCH, C_HOSTFN, C_RECORD, C_WAIT } cmd_kind;
/* One command of a stream. */
typedef struct cmd {
  struct cmd *next;
  cmd_kind kind;
  uint64_t seq;   /* its position in its stream (1, 2, ...) */
  uint64_t gseq;  /* its position among all commands (cuCtxSynchronize) */
  unsigned epoch; /* F.resets when queued: a context reset drops older work */
  union {
    struct {
      void *dst;
      const void *src;
      size_t bytes;
      void *staging;
      int host;
    } copy;
    struct {
      unsigned char *dst;
      size_t count;
      unsigned width;
      uint32_t value;
    } memset;
    struct {
      kernel_kind kernel;
      unsigned grid[3], block[3];
      uint64_t p[MAX_KPARAMS];                    /* declared parameters, zero-extended */
      uint64_t gs[3];                             /* kiln__gs0..2 */
      uintptr_t lo[MAX_KPARAMS], hi[MAX_KPARAMS]; /* each buffer's allocation */
    } launch;
    struct {
      kiln_CUhostFn fn;
      void *user;
    } host;
    struct {
      struct CUevent_st *ev;
      uint64_t n;
    } event; /* C_RECORD, C_WAIT */
  } u;
} cmd;

#define STREAM_MAGIC 0x5354
struct CUstream_st {
  int magic, priority, destroyed;
  pthread_cond_t cond;      /* work queued, or destroyed */
  cmd *head, *tail;         /* queued, head first; the head may be running */
  uint64_t queued, done;    /* seq of the last queued / last finished command */
  struct CUstream_st *next; /* F.streams: every stream whose worker runs */
};

typedef struct alloc_rec {
  uintptr_t base;
  size_t bytes;
  struct alloc_rec *next;
} alloc_rec;

enum { LAUNCH_REFUSE, LAUNCH_OK, LAUNCH_EMULATE };

#define MAX_DEV 8
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress = PTHREAD_COND_INITIALIZER; /* a command finished, sticky, reset */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct {
  int devices, version, initialised, fail_code, sticky, launch_mode, pageable_block;
  int func_max_threads, func_shared_bytes; /* every function's attributes */
  int cc_major;                            /* KILN_FAKE_CUDA_CC_MAJOR; 0: 9 (device 1: 8) */
  long fail_nth, sticky_nth, calls, counted, syncs, live;
  char fail_entry[64], hide[512];
  struct CUctx_st ctx[MAX_DEV];
  size_t allocated;
  alloc_rec *allocs;
  alloc_rec *host; /* cuMemHostAlloc'ed and cuMemHostRegister'ed ranges */
  size_t param_bytes[16];
  int param_count;
  kiln_fake_launch last;
  unsigned resets; /* cuDevicePrimaryCtxReset calls */
  int busy;        /* commands touching memory, running now */
  uint64_t gseq;
  struct CUstream_st *streams;
  struct CUstream_st *legacy; /* the NULL stream, made at first use */
} F;
static _Thread_local struct CUctx_st *current[8];
static _Thread_local int depth;

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : def;
}
static void setup(void) {
  F.devices = (int)env_long("KILN_FAKE_CUDA_DEVICES", 1);
  if (F.devices > MAX_DEV)
    F.devices = MAX_DEV;
#ifdef FAKE_OLD_DRIVER
  F.version = (int)env_long("KILN_FAKE_CUDA_VERSION", 11080);
#else
  F.version = (int)env_long("KILN_FAKE_CUDA_VERSION", 13000);
#endif
  F.fail_nth = env_long("KILN_FAKE_CUDA_FAIL_NTH", 0);
  F.fail_code = (int)env_long("KILN_FAKE_CUDA_FAIL_CODE", kiln_CUDA_ERROR_UNKNOWN);
  F.sticky_nth = env_long("KILN_FAKE_CUDA_STICKY_NTH", 0);
  const char *e = getenv("KILN_FAKE_CUDA_FAIL_ENTRY");
  if (e)
    snprintf(F.fail_entry, sizeof F.fail_entry, "%s", e);
  e = getenv("KILN_FAKE_CUDA_HIDE");
  if (e)
    snprintf(F.hide, sizeof F.hide, ",%s,", e);
  e = getenv("KILN_FAKE_CUDA_LAUNCH");
  F.launch_mode = !e                      ? LAUNCH_REFUSE
                  : !strcmp(e, "ok")      ? LAUNCH_OK
                  : !strcmp(e, "emulate") ? LAUNCH_EMULATE
                                          : LAUNCH_REFUSE;
  F.func_max_threads = (int)env_long("KILN_FAKE_CUDA_FUNC_MAX_THREADS", 1024);
  F.func_shared_bytes = (int)env_long("KILN_FAKE_CUDA_FUNC_SHARED_BYTES", 0);
  F.cc_major = (int)env_long("KILN_FAKE_CUDA_CC_MAJOR", 0);
  e = getenv("KILN_FAKE_CUDA_PAGEABLE_D2H");
  F.pageable_block = !(e && !strcmp(e, "async"));
  for (int i = 0; i < MAX_DEV; i++)
    F.ctx[i].device = i;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every entry starts here: counts the call and applies the configured failures.
 * kind: 0 plain, 1 synchronising (may turn sticky), 2 exempt from stickiness. */
static kiln_CUresult enter(const char *symbol, int kind, int needs_init) {
  pthread_once(&once, setup);
  pthread_mutex_lock(&lock);
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  F.calls++;
  if (!F.fail_entry[0] || !strcmp(F.fail_entry, symbol)) {
    F.counted++;
    if (F.fail_nth && F.counted == F.fail_nth)
      r = F.fail_code;
  }
  if (kind == 1 && F.sticky_nth && ++F.syncs >= F.sticky_nth && !F.sticky) {
    F.sticky = 1;
    pthread_cond_broadcast(&progress);
  }
  if (!r && F.sticky && kind != 2)
    r = kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
  if (!r && needs_init && !F.initialised)
    r = kiln_CUDA_ERROR_NOT_INITIALIZED;
  pthread_mutex_unlock(&lock);
  return r;
}
#define ENTER(sym, kind)                       \
  do {                                         \
    kiln_CUresult e_ = enter(#sym, (kind), 1); \
    if (e_ != kiln_CUDA_SUCCESS)               \
      return e_;                               \
  } while (0)

static void live(long d) {
  pthread_mutex_lock(&lock);
  F.live += d;
  pthread_mutex_unlock(&lock);
}

/* Arm a failure from the test: the nth call of `entry` from now (NULL: of any entry)
 * answers `code`, once; nth 0 disarms. Replaces the KILN_FAKE_CUDA_FAIL_* setting. */
void kiln_fake_cuda_fail(const char *entry, long nth, int code) {
  pthread_once(&once, setup);
  pthread_mutex_lock(&lock);
  snprintf(F.fail_entry, sizeof F.fail_entry, "%s", entry ? entry : "");
  F.counted = 0;
  F.fail_nth = nth;
  F.fail_code = code;
  pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------- bootstrap, init */
kiln_CUresult cuDriverGetVersion(int *driverVersion) {
  kiln_CUresult r = enter("cuDriverGetVersion", 2, 0);
  if (r)
    return r;
  if (!driverVersion)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  *driverVersion = F.version;
  return kiln_CUDA_SUCCESS;
}

#ifndef FAKE_OLD_DRIVER
typedef void (*any_fn)(void);
kiln_CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, uint64_t flags,
                                  kiln_CUdriverProcAddressQueryResult *symbolStatus) {
  (void)flags;
  kiln_CUresult r = enter("cuGetProcAddress_v2", 2, 0);
  if (r)
    return r;
  if (!symbol || !pfn)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  *pfn = NULL;
  if (symbolStatus)
    *symbolStatus = kiln_CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  char key[80];
  snprintf(key, sizeof key, ",%s,", symbol);
  if (strstr(F.hide, key))
    return kiln_CUDA_ERROR_NOT_FOUND;
  if (cudaVersion < 2000)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  any_fn fn = NULL;
#define FAKE_LOOKUP(name, sym, required, params) \
  if (!strcmp(symbol, #name)) {                  \
    kiln_CUresult(*typed) params = sym;          \
    memcpy(&fn, &typed, sizeof fn);              \
  }
  KILN_CU_ENTRIES(FAKE_LOOKUP)
#undef FAKE_LOOKUP
  if (!fn)
    return kiln_CUDA_ERROR_NOT_FOUND;
  memcpy(pfn, &fn, sizeof *pfn);
  if (symbolStatus)
    *symbolStatus = kiln_CU_GET_PROC_ADDRESS_SUCCESS;
  return kiln_CUDA_SUCCESS;
}
#endif

kiln_CUresult cuInit(unsigned int Flags) {
  kiln_CUresult r = enter("cuInit", 0, 0);
  if (r)
    return r;
  if (Flags)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  if (F.devices <= 0)
    return kiln_CUDA_ERROR_NO_DEVICE;
  pthread_mutex_lock(&lock);
  F.initialised = 1;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}

kiln_CUresult cuGetErrorName(kiln_CUresult error, const char **pStr) {
  enter("cuGetErrorName", 2, 0);
  switch (error) {
#define FAKE_NAME(name, value) \
  case value:                  \
    *pStr = #name;             \
    return kiln_CUDA_SUCCESS;
    KILN_CU_RESULTS(FAKE_NAME)
#undef FAKE_NAME
  default:
    *pStr = NULL;
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
}

kiln_CUresult cuGetErrorString(kiln_CUresult error, const char **pStr) {
  enter("cuGetErrorString", 2, 0);
  return cuGetErrorName(error, pStr);
}

/* ------------------------------------------------------------- devices */
static int valid_dev(kiln_CUdevice d) {
  return d >= 0 && d < F.devices;
}
static size_t total_mem(kiln_CUdevice d) {
  return ((size_t)4 << 30) + ((size_t)d << 30);
}

kiln_CUresult cuDeviceGetCount(int *count) {
  ENTER(cuDeviceGetCount, 0);
  *count = F.devices;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGet(kiln_CUdevice *device, int ordinal) {
  ENTER(cuDeviceGet, 0);
  if (!valid_dev(ordinal))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetName(char *name, int len, kiln_CUdevice dev) {
  ENTER(cuDeviceGetName, 0);
  if (!valid_dev(dev) || len <= 0)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "kiln fake CUDA device %d", dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetAttribute(int *pi, kiln_CUdevice_attribute attrib, kiln_CUdevice dev) {
  ENTER(cuDeviceGetAttribute, 0);
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *pi = 1024;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
    *pi = 1024;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
    *pi = 1024;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
    *pi = 64;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
    *pi = 2147483647;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
    *pi = 65535;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
    *pi = 65535;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
    *pi = 49152;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
    *pi = 232448;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *pi = 132 + dev;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *pi = F.cc_major ? F.cc_major : dev == 1 ? 8 : 9;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *pi = 0;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
    *pi = 0;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
    *pi = 0x65 + dev;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
    *pi = 0;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_WARP_SIZE:
    *pi = 32;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
    *pi = 1980000;
    break; /* kHz, an H100's */
  case kiln_CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE:
    *pi = 2619000;
    break; /* kHz */
  case kiln_CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH:
    *pi = 5120;
    break;
  case kiln_CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT:
    *pi = 3; /* an H200's copy engines */
    break;
  default:
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceTotalMem_v2(size_t *bytes, kiln_CUdevice dev) {
  ENTER(cuDeviceTotalMem_v2, 0);
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  *bytes = total_mem(dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, kiln_CUdevice dev) {
  ENTER(cuDeviceGetPCIBusId, 0);
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  snprintf(pciBusId, (size_t)len, "0000:%02X:00.0", 0x65 + dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetUuid_v2(kiln_CUuuid *uuid, kiln_CUdevice dev) {
  ENTER(cuDeviceGetUuid_v2, 0);
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  memset(uuid->bytes, 0x40 + dev, sizeof uuid->bytes);
  return kiln_CUDA_SUCCESS;
}

/* ------------------------------------------------------------- contexts */
kiln_CUresult cuDevicePrimaryCtxRetain(kiln_CUcontext *pctx, kiln_CUdevice dev) {
  ENTER(cuDevicePrimaryCtxRetain, 0);
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  F.ctx[dev].retains++;
  F.live++;
  pthread_mutex_unlock(&lock);
  *pctx = &F.ctx[dev];
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDevicePrimaryCtxRelease_v2(kiln_CUdevice dev) {
  kiln_CUresult r = enter("cuDevicePrimaryCtxRelease_v2", 2, 1);
  if (r)
    return r;
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  if (F.ctx[dev].retains > 0) {
    F.ctx[dev].retains--;
    F.live--;
  } else {
    r = kiln_CUDA_ERROR_INVALID_CONTEXT;
  }
  pthread_mutex_unlock(&lock);
  return r;
}
kiln_CUresult cuDevicePrimaryCtxReset_v2(kiln_CUdevice dev) {
  kiln_CUresult r = enter("cuDevicePrimaryCtxReset_v2", 2, 1);
  if (r)
    return r;
  if (!valid_dev(dev))
    return kiln_CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  F.sticky = 0;
  F.sticky_nth = 0;
  F.resets++; /* work queued before the reset is dropped, never run */
  pthread_cond_broadcast(&progress);
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxPushCurrent_v2(kiln_CUcontext ctx) {
  kiln_CUresult r = enter("cuCtxPushCurrent_v2", 2, 1);
  if (r)
    return r;
  if (!ctx || depth == 8)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  current[depth++] = ctx;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxPopCurrent_v2(kiln_CUcontext *pctx) {
  kiln_CUresult r = enter("cuCtxPopCurrent_v2", 2, 1);
  if (r)
    return r;
  if (!depth)
    return kiln_CUDA_ERROR_INVALID_CONTEXT;
  struct CUctx_st *c = current[--depth];
  if (pctx)
    *pctx = c;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxSetCurrent(kiln_CUcontext ctx) {
  kiln_CUresult r = enter("cuCtxSetCurrent", 2, 1);
  if (r)
    return r;
  if (depth)
    current[depth - 1] = ctx;
  else if (ctx)
    current[depth++] = ctx;
  return kiln_CUDA_SUCCESS;
}
static kiln_CUresult sync_all(void);
static void wait_idle_locked(void);
kiln_CUresult cuCtxSynchronize(void) {
  ENTER(cuCtxSynchronize, 1);
  if (!depth)
    return kiln_CUDA_ERROR_INVALID_CONTEXT;
  return sync_all();
}

/* ------------------------------------------------------------- memory */
static alloc_rec *find_alloc_locked(uintptr_t p) {
  for (alloc_rec *a = F.allocs; a; a = a->next)
    if (p >= a->base && p < a->base + a->bytes)
      return a;
  return NULL;
}
/* [p, p + n) inside one allocation */
static int valid_range(kiln_CUdeviceptr p, size_t n) {
  pthread_mutex_lock(&lock);
  alloc_rec *a = find_alloc_locked((uintptr_t)p);
  int ok = a && (uintptr_t)p + n <= a->base + a->bytes;
  pthread_mutex_unlock(&lock);
  return ok;
}
/* Host <-> "device" copies play the GPU's DMA: kiln poisons the host range of an async
 * transfer in ASan builds (docs/async.md) and the driver, not the program, touches it,
 * so the copy is not instrumented (and not turned into an intercepted memcpy). */
__attribute__((no_sanitize("address"))) static void dma_copy(void *dst, const void *src, size_t n) {
  volatile unsigned char *d = dst;
  const volatile unsigned char *s = src;
  for (size_t i = 0; i < n; i++)
    d[i] = s[i];
}
static kiln_CUresult need_ctx(void) {
  return depth ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_CONTEXT;
}

kiln_CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
  ENTER(cuMemGetInfo_v2, 0);
  if (need_ctx())
    return need_ctx();
  *total = total_mem(current[depth - 1]->device);
  pthread_mutex_lock(&lock);
  *free = *total - F.allocated;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemAlloc_v2(kiln_CUdeviceptr *dptr, size_t bytesize) {
  ENTER(cuMemAlloc_v2, 0);
  if (need_ctx())
    return need_ctx();
  if (!bytesize)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&lock);
  size_t avail = total_mem(current[depth - 1]->device) - F.allocated;
  pthread_mutex_unlock(&lock);
  if (bytesize > avail)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  void *p = aligned_alloc(256, (bytesize + 255) / 256 * 256);
  alloc_rec *a = malloc(sizeof *a);
  if (!p || !a) {
    free(p);
    free(a);
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  }
  pthread_mutex_lock(&lock);
  a->base = (uintptr_t)p;
  a->bytes = bytesize;
  a->next = F.allocs;
  F.allocs = a;
  F.allocated += bytesize;
  F.live++;
  pthread_mutex_unlock(&lock);
  *dptr = (kiln_CUdeviceptr)(uintptr_t)p;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemFree_v2(kiln_CUdeviceptr dptr) {
  kiln_CUresult r = enter("cuMemFree_v2", 2, 1);
  if (r)
    return r;
  pthread_mutex_lock(&lock);
  wait_idle_locked();
  for (alloc_rec **pp = &F.allocs; *pp; pp = &(*pp)->next)
    if ((*pp)->base == (uintptr_t)dptr) {
      alloc_rec *a = *pp;
      *pp = a->next;
      F.allocated -= a->bytes;
      F.live--;
      pthread_mutex_unlock(&lock);
      free((void *)a->base);
      free(a);
      return kiln_CUDA_SUCCESS;
    }
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_ERROR_INVALID_VALUE;
}
kiln_CUresult cuMemGetAddressRange_v2(kiln_CUdeviceptr *pbase, size_t *psize,
                                      kiln_CUdeviceptr dptr) {
  ENTER(cuMemGetAddressRange_v2, 0);
  pthread_mutex_lock(&lock);
  alloc_rec *a = find_alloc_locked((uintptr_t)dptr);
  if (a) {
    if (pbase)
      *pbase = a->base;
    if (psize)
      *psize = a->bytes;
  }
  pthread_mutex_unlock(&lock);
  return a ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_NOT_FOUND;
}
/* ------------------------------------------------------------- streams: the engine */
static kiln_CUresult stream_new(struct CUstream_st **out, int priority);

static void event_unref_locked(struct CUevent_st *e) {
  if (--e->refs == 0)
    free(e);
}

/* [p, p + n) inside one page-locked range (cuMemHostAlloc, cuMemHostRegister). */
static int pinned_locked(const void *p, size_t n) {
  for (alloc_rec *a = F.host; a; a = a->next)
    if ((uintptr_t)p >= a->base && (uintptr_t)p + n <= a->base + a->bytes)
      return 1;
  return 0;
}

/* The emulated kernels: each thread of the grid, global id = block index * block
 * size + thread index, guarded as the kernel's source guards itself. Every access is
 * checked against the allocation its buffer pointed into at the launch: outside it,
 * the kernel stops with CUDA_ERROR_ILLEGAL_ADDRESS, as a GPU would fault. */
static void *elem(const cmd *c, int i, uint64_t index) { /* 4-byte element, or NULL */
  uint64_t base = c->u.launch.p[i];
  if (index > (UINT64_MAX - base) / 4)
    return NULL;
  uint64_t at = base + index * 4;
  if (at < c->u.launch.lo[i] || at + 4 > c->u.launch.hi[i])
    return NULL;
  return (void *)(uintptr_t)at;
}
static kiln_CUresult run_kernel(const cmd *c) {
  const unsigned *grid = c->u.launch.grid, *block = c->u.launch.block;
  const uint64_t *p = c->u.launch.p, *gs = c->u.launch.gs;
  for (unsigned bz = 0; bz < grid[2]; bz++)
    for (unsigned by = 0; by < grid[1]; by++)
      for (unsigned bx = 0; bx < grid[0]; bx++)
        for (unsigned tz = 0; tz < block[2]; tz++)
          for (unsigned ty = 0; ty < block[1]; ty++)
            for (unsigned tx = 0; tx < block[0]; tx++) {
              uint64_t x = (uint64_t)bx * block[0] + tx, y = (uint64_t)by * block[1] + ty,
                       z = (uint64_t)bz * block[2] + tz;
              switch (c->u.launch.kernel) {
              case K_VECADD: { /* if (i < (size_t)n) c[i] = a[i] + b[i]; */
                int32_t n = (int32_t)(uint32_t)p[3];
                if (x < (uint64_t)(int64_t)n) {
                  const float *a = elem(c, 0, x), *b = elem(c, 1, x);
                  float *out = elem(c, 2, x);
                  if (!a || !b || !out)
                    return kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
                  *out = *a + *b;
                }
                break;
              }
              case K_ADD_U32: /* if (i < kiln_global_size(0)) buf[offset + i] += add; */
                if (x < gs[0]) {
                  uint32_t *e = elem(c, 0, p[1] + x);
                  if (!e)
                    return kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
                  *e += (uint32_t)p[2];
                }
                break;
              case K_HITS: /* if (x < gx && y < gy && z < gz) hits[x + gx * (y + gy * z)] += 1u; */
                if (x < gs[0] && y < gs[1] && z < gs[2]) {
                  uint32_t *e = elem(c, 0, x + gs[0] * (y + gs[1] * z));
                  if (!e)
                    return kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
                  *e += 1u;
                }
                break;
              case K_SET_U32: /* if (i < kiln_global_size(0)) buf[i] = value + (kiln_u32)i; */
                if (x < gs[0]) {
                  uint32_t *e = elem(c, 0, x);
                  if (!e)
                    return kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
                  *e = (uint32_t)p[1] + (uint32_t)x;
                }
                break;
              case K_COUNT:
                return kiln_CUDA_ERROR_NOT_SUPPORTED;
              }
            }
  return kiln_CUDA_SUCCESS;
}

/* Runs one command on the stream's worker, without the lock. */
static kiln_CUresult execute(const cmd *c) {
  switch (c->kind) {
  case C_COPY:
    if (c->u.copy.host)
      dma_copy(c->u.copy.dst, c->u.copy.staging ? c->u.copy.staging : c->u.copy.src,
               c->u.copy.bytes);
    else
      memmove(c->u.copy.dst, c->u.copy.src, c->u.copy.bytes);
    break;
  case C_MEMSET:
    if (c->u.memset.width == 1) {
      memset(c->u.memset.dst, (int)c->u.memset.value, c->u.memset.count);
    } else {
      unsigned char unit[4];
      uint16_t v16 = (uint16_t)c->u.memset.value;
      uint32_t v32 = c->u.memset.value;
      if (c->u.memset.width == 2)
        memcpy(unit, &v16, 2);
      else
        memcpy(unit, &v32, 4);
      for (size_t i = 0; i < c->u.memset.count; i++)
        memcpy(c->u.memset.dst + i * c->u.memset.width, unit, c->u.memset.width);
    }
    break;
  case C_LAUNCH:
    return run_kernel(c);
  case C_HOSTFN:
    c->u.host.fn(c->u.host.user);
    break;
  case C_RECORD:
  case C_WAIT:
    break;
  }
  return kiln_CUDA_SUCCESS;
}

static void cmd_free(cmd *c) {
  if (c->kind == C_COPY)
    free(c->u.copy.staging);
  free(c);
}

/* A stream's worker: runs its commands in order until the stream is destroyed and
 * drained, then frees the stream. */
static void *worker_main(void *arg) {
  struct CUstream_st *s = arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (!s->head && !s->destroyed)
      pthread_cond_wait(&s->cond, &lock);
    cmd *c = s->head;
    if (!c)
      break;
    int run = !F.sticky && c->epoch == F.resets;
    if (run && c->kind == C_WAIT) { /* the other stream passes the record, or the context dies */
      while (c->u.event.ev->passed < c->u.event.n && !F.sticky && c->epoch == F.resets)
        pthread_cond_wait(&progress, &lock);
      run = 0;
    }
    int touches = run && (c->kind == C_COPY || c->kind == C_MEMSET || c->kind == C_LAUNCH);
    if (touches)
      F.busy++;
    pthread_mutex_unlock(&lock);
    kiln_CUresult r = run ? execute(c) : kiln_CUDA_SUCCESS;
    uint64_t t = now_ns();
    pthread_mutex_lock(&lock);
    if (touches)
      F.busy--;
    if (r != kiln_CUDA_SUCCESS)
      F.sticky = 1; /* a faulting kernel: the context is gone */
    s->head = c->next;
    if (!s->head)
      s->tail = NULL;
    s->done = c->seq;
    if (c->kind == C_RECORD) { /* dropped records pass too: nothing waits forever */
      struct CUevent_st *e = c->u.event.ev;
      if (c->u.event.n > e->passed) {
        e->passed = c->u.event.n;
        e->t_ns = t;
      }
    }
    if (c->kind == C_RECORD || c->kind == C_WAIT)
      event_unref_locked(c->u.event.ev);
    pthread_cond_broadcast(&progress);
    pthread_mutex_unlock(&lock);
    cmd_free(c);
    pthread_mutex_lock(&lock);
  }
  for (struct CUstream_st **pp = &F.streams; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  pthread_cond_broadcast(&progress);
  pthread_mutex_unlock(&lock);
  pthread_cond_destroy(&s->cond);
  free(s);
  return NULL;
}

static kiln_CUresult stream_new(struct CUstream_st **out, int priority) {
  struct CUstream_st *s = calloc(1, sizeof *s);
  if (!s)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  s->magic = STREAM_MAGIC;
  s->priority = priority;
  pthread_cond_init(&s->cond, NULL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_mutex_lock(&lock); /* in the list before the worker can leave it */
  pthread_t th;
  if (pthread_create(&th, &attr, worker_main, s) != 0) {
    pthread_mutex_unlock(&lock);
    pthread_attr_destroy(&attr);
    pthread_cond_destroy(&s->cond);
    free(s);
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  }
  s->next = F.streams;
  F.streams = s;
  pthread_mutex_unlock(&lock);
  pthread_attr_destroy(&attr);
  *out = s;
  return kiln_CUDA_SUCCESS;
}

/* The stream a call names: NULL is the legacy default stream, made at first use. */
static kiln_CUresult stream_of(kiln_CUstream h, struct CUstream_st **out) {
  if (h) {
    *out = h;
    return kiln_CUDA_SUCCESS;
  }
  pthread_mutex_lock(&lock);
  struct CUstream_st *s = F.legacy;
  pthread_mutex_unlock(&lock);
  if (!s) {
    kiln_CUresult r = stream_new(&s, 0);
    if (r)
      return r;
    pthread_mutex_lock(&lock);
    if (F.legacy) {
      s->destroyed = 1; /* another thread made it first */
      pthread_cond_signal(&s->cond);
      s = F.legacy;
    } else {
      F.legacy = s;
    }
    pthread_mutex_unlock(&lock);
  }
  *out = s;
  return kiln_CUDA_SUCCESS;
}

/* Queues c (taking it) on stream h; *seq: its position there. */
static kiln_CUresult enqueue(kiln_CUstream h, cmd *c, struct CUstream_st **ps, uint64_t *seq) {
  struct CUstream_st *s = NULL;
  kiln_CUresult r = stream_of(h, &s);
  if (r) {
    cmd_free(c);
    return r;
  }
  pthread_mutex_lock(&lock);
  if (s->magic != STREAM_MAGIC || s->destroyed) {
    pthread_mutex_unlock(&lock);
    cmd_free(c);
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  }
  if (c->kind == C_WAIT) { /* the event's record as it is at the call */
    c->u.event.n = c->u.event.ev->records;
    if (c->u.event.ev->passed >= c->u.event.n) { /* none, or passed: nothing to wait for */
      pthread_mutex_unlock(&lock);
      cmd_free(c);
      return kiln_CUDA_SUCCESS;
    }
  }
  c->next = NULL;
  c->seq = ++s->queued;
  c->gseq = ++F.gseq;
  c->epoch = F.resets;
  if (c->kind == C_RECORD || c->kind == C_WAIT)
    c->u.event.ev->refs++;
  if (c->kind == C_RECORD)
    c->u.event.n = ++c->u.event.ev->records;
  if (s->tail)
    s->tail->next = c;
  else
    s->head = c;
  s->tail = c;
  if (ps)
    *ps = s;
  if (seq)
    *seq = c->seq;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}

static cmd *cmd_new(cmd_kind kind) {
  cmd *c = calloc(1, sizeof *c);
  if (c)
    c->kind = kind;
  return c;
}

/* Blocks until stream s finished its command `seq`: CUDA_ERROR_ILLEGAL_ADDRESS if the
 * context turns sticky (or is reset) meanwhile. */
static kiln_CUresult wait_stream(struct CUstream_st *s, uint64_t seq) {
  pthread_mutex_lock(&lock);
  unsigned epoch = F.resets;
  while (s->done < seq && !F.sticky && F.resets == epoch)
    pthread_cond_wait(&progress, &lock);
  kiln_CUresult r = s->done >= seq ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
  if (F.sticky)
    r = kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
  pthread_mutex_unlock(&lock);
  return r;
}

/* cuCtxSynchronize: every command queued so far on any stream finished (each stream
 * runs in order, so: no stream's oldest unfinished command is older than now). */
static kiln_CUresult sync_all(void) {
  pthread_mutex_lock(&lock);
  uint64_t mark = F.gseq;
  unsigned epoch = F.resets;
  for (;;) {
    int busy = 0;
    for (struct CUstream_st *s = F.streams; s && !busy; s = s->next)
      busy = s->head && s->head->gseq <= mark;
    if (!busy || F.sticky || F.resets != epoch)
      break;
    pthread_cond_wait(&progress, &lock);
  }
  kiln_CUresult r = F.sticky ? kiln_CUDA_ERROR_ILLEGAL_ADDRESS : kiln_CUDA_SUCCESS;
  pthread_mutex_unlock(&lock);
  return r;
}

/* cuMemFree, cuMemFreeHost and cuMemHostUnregister synchronize the device, as the
 * driver's do: every command queued before the call has finished (or was dropped
 * after a sticky error), so no queued copy or kernel touches freed memory. */
static void wait_idle_locked(void) {
  uint64_t mark = F.gseq;
  for (;;) {
    int pending = F.busy > 0;
    for (struct CUstream_st *s = F.streams; s && !pending; s = s->next)
      pending = s->head && s->head->gseq <= mark;
    if (!pending)
      return;
    pthread_cond_wait(&progress, &lock);
  }
}

/* ------------------------------------------------------------- copies, fills */
kiln_CUresult cuMemcpyHtoDAsync_v2(kiln_CUdeviceptr dstDevice, const void *srcHost,
                                   size_t ByteCount, kiln_CUstream hStream) {
  ENTER(cuMemcpyHtoDAsync_v2, 0);
  if (!valid_range(dstDevice, ByteCount) || !srcHost)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_COPY);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.copy.dst = (void *)(uintptr_t)dstDevice;
  c->u.copy.src = srcHost;
  c->u.copy.bytes = ByteCount;
  c->u.copy.host = 1;
  pthread_mutex_lock(&lock);
  int pinned = pinned_locked(srcHost, ByteCount);
  pthread_mutex_unlock(&lock);
  if (!pinned && ByteCount) { /* pageable: the driver stages the source at the call */
    c->u.copy.staging = malloc(ByteCount);
    if (!c->u.copy.staging) {
      free(c);
      return kiln_CUDA_ERROR_OUT_OF_MEMORY;
    }
    dma_copy(c->u.copy.staging, srcHost, ByteCount);
  }
  return enqueue(hStream, c, NULL, NULL);
}
kiln_CUresult cuMemcpyDtoHAsync_v2(void *dstHost, kiln_CUdeviceptr srcDevice, size_t ByteCount,
                                   kiln_CUstream hStream) {
  ENTER(cuMemcpyDtoHAsync_v2, 0);
  if (!valid_range(srcDevice, ByteCount) || !dstHost)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_COPY);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.copy.dst = dstHost;
  c->u.copy.src = (const void *)(uintptr_t)srcDevice;
  c->u.copy.bytes = ByteCount;
  c->u.copy.host = 1;
  pthread_mutex_lock(&lock);
  int blocks = F.pageable_block && !pinned_locked(dstHost, ByteCount);
  pthread_mutex_unlock(&lock);
  struct CUstream_st *s = NULL;
  uint64_t seq = 0;
  kiln_CUresult r = enqueue(hStream, c, &s, &seq);
  /* pageable: the call returns once the copy is done, in stream order */
  if (r == kiln_CUDA_SUCCESS && blocks)
    r = wait_stream(s, seq);
  return r;
}
kiln_CUresult cuMemcpyDtoDAsync_v2(kiln_CUdeviceptr dstDevice, kiln_CUdeviceptr srcDevice,
                                   size_t ByteCount, kiln_CUstream hStream) {
  ENTER(cuMemcpyDtoDAsync_v2, 0);
  if (!valid_range(dstDevice, ByteCount) || !valid_range(srcDevice, ByteCount))
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_COPY);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.copy.dst = (void *)(uintptr_t)dstDevice;
  c->u.copy.src = (const void *)(uintptr_t)srcDevice;
  c->u.copy.bytes = ByteCount;
  return enqueue(hStream, c, NULL, NULL);
}
static kiln_CUresult memset_async(kiln_CUdeviceptr dst, unsigned width, uint32_t value, size_t n,
                                  kiln_CUstream h) {
  if ((dst & (width - 1u)) || !valid_range(dst, n * width))
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_MEMSET);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.memset.dst = (unsigned char *)(uintptr_t)dst;
  c->u.memset.count = n;
  c->u.memset.width = width;
  c->u.memset.value = value;
  return enqueue(h, c, NULL, NULL);
}
kiln_CUresult cuMemsetD8Async(kiln_CUdeviceptr dstDevice, unsigned char uc, size_t N,
                              kiln_CUstream hStream) {
  ENTER(cuMemsetD8Async, 0);
  return memset_async(dstDevice, 1, uc, N, hStream);
}
kiln_CUresult cuMemsetD16Async(kiln_CUdeviceptr dstDevice, unsigned short us, size_t N,
                               kiln_CUstream hStream) {
  ENTER(cuMemsetD16Async, 0);
  return memset_async(dstDevice, 2, us, N, hStream);
}
kiln_CUresult cuMemsetD32Async(kiln_CUdeviceptr dstDevice, unsigned int ui, size_t N,
                               kiln_CUstream hStream) {
  ENTER(cuMemsetD32Async, 0);
  return memset_async(dstDevice, 4, ui, N, hStream);
}

/* Page-locked host memory: plain host memory here, remembered so that
 * cuPointerGetAttribute can tell it from pageable memory. */
static kiln_CUresult host_add(void *p, size_t bytes) {
  alloc_rec *a = malloc(sizeof *a);
  if (!a)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  pthread_mutex_lock(&lock);
  a->base = (uintptr_t)p;
  a->bytes = bytes;
  a->next = F.host;
  F.host = a;
  F.live++;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
static int host_remove(void *p) {
  pthread_mutex_lock(&lock);
  wait_idle_locked();
  for (alloc_rec **pp = &F.host; *pp; pp = &(*pp)->next)
    if ((*pp)->base == (uintptr_t)p) {
      alloc_rec *a = *pp;
      *pp = a->next;
      F.live--;
      pthread_mutex_unlock(&lock);
      free(a);
      return 1;
    }
  pthread_mutex_unlock(&lock);
  return 0;
}
kiln_CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) {
  ENTER(cuMemHostAlloc, 0);
  if (need_ctx())
    return need_ctx();
  if (!pp || !bytesize || Flags > 7)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  void *p = aligned_alloc(4096, (bytesize + 4095) / 4096 * 4096);
  if (!p)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  kiln_CUresult r = host_add(p, bytesize);
  if (r) {
    free(p);
    return r;
  }
  *pp = p;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemFreeHost(void *p) {
  kiln_CUresult r = enter("cuMemFreeHost", 2, 1);
  if (r)
    return r;
  if (!host_remove(p))
    return kiln_CUDA_ERROR_INVALID_VALUE;
  free(p);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) {
  ENTER(cuMemHostRegister_v2, 0);
  if (need_ctx())
    return need_ctx();
  if (!p || !bytesize || Flags > 15)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  return host_add(p, bytesize);
}
kiln_CUresult cuMemHostUnregister(void *p) {
  kiln_CUresult r = enter("cuMemHostUnregister", 2, 1);
  if (r)
    return r;
  return host_remove(p) ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_VALUE;
}
kiln_CUresult cuPointerGetAttribute(void *data, kiln_CUpointer_attribute attribute,
                                    kiln_CUdeviceptr ptr) {
  ENTER(cuPointerGetAttribute, 0);
  if (!data || attribute != kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  unsigned type = 0;
  pthread_mutex_lock(&lock);
  if (find_alloc_locked((uintptr_t)ptr))
    type = kiln_CU_MEMORYTYPE_DEVICE;
  for (alloc_rec *a = F.host; a && !type; a = a->next)
    if ((uintptr_t)ptr >= a->base && (uintptr_t)ptr < a->base + a->bytes)
      type = kiln_CU_MEMORYTYPE_HOST;
  pthread_mutex_unlock(&lock);
  if (!type)
    return kiln_CUDA_ERROR_INVALID_VALUE; /* pageable memory, as the driver says */
  memcpy(data, &type, sizeof type);
  return kiln_CUDA_SUCCESS;
}

/* ------------------------------------------------------------- streams, events */
kiln_CUresult cuStreamCreate(kiln_CUstream *phStream, unsigned int Flags) {
  ENTER(cuStreamCreate, 0);
  if (need_ctx())
    return need_ctx();
  if (Flags > 1 || !phStream)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  struct CUstream_st *s = NULL;
  kiln_CUresult r = stream_new(&s, 0);
  if (r)
    return r;
  live(1);
  *phStream = s;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamCreateWithPriority(kiln_CUstream *phStream, unsigned int flags,
                                         int priority) {
  ENTER(cuStreamCreateWithPriority, 0);
  if (priority > 0 || priority < -5)
    priority = priority > 0 ? 0 : -5; /* clamped, as the driver does */
  kiln_CUresult r = cuStreamCreate(phStream, flags);
  if (r == kiln_CUDA_SUCCESS) {
    pthread_mutex_lock(&lock);
    (*phStream)->priority = priority;
    pthread_mutex_unlock(&lock);
  }
  return r;
}
kiln_CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
  ENTER(cuCtxGetStreamPriorityRange, 0);
  if (leastPriority)
    *leastPriority = 0;
  if (greatestPriority)
    *greatestPriority = -5;
  return kiln_CUDA_SUCCESS;
}
/* Returns at once; the worker finishes what is queued, then frees the stream. */
kiln_CUresult cuStreamDestroy_v2(kiln_CUstream hStream) {
  kiln_CUresult r = enter("cuStreamDestroy_v2", 2, 1);
  if (r)
    return r;
  if (!hStream)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  if (hStream->magic != STREAM_MAGIC || hStream->destroyed) {
    pthread_mutex_unlock(&lock);
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  }
  hStream->magic = 0;
  hStream->destroyed = 1;
  pthread_cond_signal(&hStream->cond);
  F.live--;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamSynchronize(kiln_CUstream hStream) {
  ENTER(cuStreamSynchronize, 1);
  struct CUstream_st *s = NULL;
  kiln_CUresult r = stream_of(hStream, &s);
  if (r)
    return r;
  pthread_mutex_lock(&lock);
  uint64_t seq = s->queued;
  pthread_mutex_unlock(&lock);
  return wait_stream(s, seq);
}
/* The stream waits for the event's record as it is now (none: no wait). */
kiln_CUresult cuStreamWaitEvent(kiln_CUstream hStream, kiln_CUevent hEvent, unsigned int Flags) {
  ENTER(cuStreamWaitEvent, 0);
  if (!hEvent || Flags)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_WAIT);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.event.ev = hEvent; /* enqueue takes the record to wait for */
  return enqueue(hStream, c, NULL, NULL);
}
kiln_CUresult cuEventCreate(kiln_CUevent *phEvent, unsigned int Flags) {
  ENTER(cuEventCreate, 0);
  if (need_ctx())
    return need_ctx();
  struct CUevent_st *e = calloc(1, sizeof *e);
  if (!e)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  e->flags = Flags;
  e->refs = 1; /* the user's */
  live(1);
  *phEvent = e;
  return kiln_CUDA_SUCCESS;
}
/* Returns at once; records and waits still queued keep the event until they ran. */
kiln_CUresult cuEventDestroy_v2(kiln_CUevent hEvent) {
  kiln_CUresult r = enter("cuEventDestroy_v2", 2, 1);
  if (r)
    return r;
  if (!hEvent)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  event_unref_locked(hEvent);
  F.live--;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuEventRecord(kiln_CUevent hEvent, kiln_CUstream hStream) {
  ENTER(cuEventRecord, 0);
  if (!hEvent)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  cmd *c = cmd_new(C_RECORD);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.event.ev = hEvent; /* enqueue numbers the record */
  return enqueue(hStream, c, NULL, NULL);
}
kiln_CUresult cuEventQuery(kiln_CUevent hEvent) {
  ENTER(cuEventQuery, 1);
  if (!hEvent)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  int done = hEvent->passed >= hEvent->records;
  pthread_mutex_unlock(&lock);
  return done ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_NOT_READY;
}
kiln_CUresult cuEventSynchronize(kiln_CUevent hEvent) {
  ENTER(cuEventSynchronize, 1);
  if (!hEvent)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  uint64_t n = hEvent->records;
  unsigned epoch = F.resets;
  while (hEvent->passed < n && !F.sticky && F.resets == epoch)
    pthread_cond_wait(&progress, &lock);
  kiln_CUresult r =
      hEvent->passed >= n && !F.sticky ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
  pthread_mutex_unlock(&lock);
  return r;
}
kiln_CUresult cuEventElapsedTime(float *pMilliseconds, kiln_CUevent hStart, kiln_CUevent hEnd) {
  ENTER(cuEventElapsedTime, 0);
  if (!hStart || !hEnd || !pMilliseconds ||
      ((hStart->flags | hEnd->flags) & kiln_CU_EVENT_DISABLE_TIMING))
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  if (!hStart->records || !hEnd->records)
    r = kiln_CUDA_ERROR_INVALID_HANDLE; /* never recorded */
  else if (hStart->passed < hStart->records || hEnd->passed < hEnd->records)
    r = kiln_CUDA_ERROR_NOT_READY;
  else
    *pMilliseconds = (float)((double)(int64_t)(hEnd->t_ns - hStart->t_ns) / 1e6);
  pthread_mutex_unlock(&lock);
  return r;
}

/* ------------------------------------------------------------- modules, launches */
/* Size of an ELF64 image (CUBIN) from its header, or of NUL-terminated PTX. */
static size_t image_size(const unsigned char *img) {
  if (!memcmp(img, "\177ELF", 4) && img[4] == 2) {
    uint64_t shoff, phoff;
    uint16_t shentsize, shnum, phentsize, phnum;
    memcpy(&phoff, img + 0x20, 8);
    memcpy(&shoff, img + 0x28, 8);
    memcpy(&phentsize, img + 0x36, 2);
    memcpy(&phnum, img + 0x38, 2);
    memcpy(&shentsize, img + 0x3a, 2);
    memcpy(&shnum, img + 0x3c, 2);
    uint64_t a = shoff + (uint64_t)shentsize * shnum, b = phoff + (uint64_t)phentsize * phnum;
    return (size_t)(a > b ? a : b);
  }
  return strlen((const char *)img) + 1;
}
kiln_CUresult cuModuleLoadDataEx(kiln_CUmodule *module, const void *image, unsigned int numOptions,
                                 kiln_CUjit_option *options, void **optionValues) {
  ENTER(cuModuleLoadDataEx, 0);
  (void)numOptions, (void)options, (void)optionValues;
  if (need_ctx())
    return need_ctx();
  if (!image)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  const unsigned char *img = image;
  int elf = !memcmp(img, "\177ELF", 4);
  if (!elf && !strstr((const char *)img, ".version"))
    return kiln_CUDA_ERROR_INVALID_IMAGE;
  struct CUmod_st *m = calloc(1, sizeof *m);
  if (!m)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  m->bytes = image_size(img);
  m->image = malloc(m->bytes);
  if (!m->image) {
    free(m);
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  }
  memcpy(m->image, img, m->bytes);
  live(1);
  *module = m;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuModuleUnload(kiln_CUmodule hmod) {
  kiln_CUresult r = enter("cuModuleUnload", 2, 1);
  if (r)
    return r;
  if (!hmod)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  free(hmod->image);
  free(hmod);
  live(-1);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuModuleGetFunction(kiln_CUfunction *hfunc, kiln_CUmodule hmod, const char *name) {
  ENTER(cuModuleGetFunction, 0);
  if (!hmod || !name)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  size_t n = strlen(name) + 1; /* the name with its NUL, as in an ELF string table */
  const unsigned char *found = NULL;
  for (size_t i = 0; !found && i + n <= hmod->bytes; i++)
    if (!memcmp(hmod->image + i, name, n) ||
        (!memcmp(hmod->image + i, name, n - 1) && hmod->image[i + n - 1] == '('))
      found = hmod->image + i;
  if (!found)
    return kiln_CUDA_ERROR_NOT_FOUND;
  /* Functions live as long as the module in CUDA; the fake keeps one per name lookup
   * in a small table instead of per module (it is freed at exit). */
  static struct CUfunc_st funcs[256];
  static int nfuncs;
  pthread_mutex_lock(&lock);
  struct CUfunc_st *f = NULL;
  for (int i = 0; i < nfuncs && !f; i++)
    if (funcs[i].mod == hmod && !strcmp(funcs[i].name, name))
      f = &funcs[i];
  if (!f && nfuncs < 256) {
    f = &funcs[nfuncs++];
    f->mod = hmod;
    snprintf(f->name, sizeof f->name, "%s", name);
  }
  pthread_mutex_unlock(&lock);
  if (!f)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  *hfunc = f;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuFuncGetAttribute(int *pi, kiln_CUfunction_attribute attrib, kiln_CUfunction hfunc) {
  ENTER(cuFuncGetAttribute, 0);
  if (!hfunc)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
  case kiln_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *pi = F.func_max_threads;
    break;
  case kiln_CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
    *pi = F.func_shared_bytes;
    break;
  case kiln_CU_FUNC_ATTRIBUTE_NUM_REGS:
    *pi = 32;
    break;
  case kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    *pi = 49152;
    break;
  default:
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuFuncSetAttribute(kiln_CUfunction hfunc, kiln_CUfunction_attribute attrib,
                                 int value) {
  ENTER(cuFuncSetAttribute, 0);
  if (!hfunc || attrib != kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || value < 0 ||
      value > 232448)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize,
                                               kiln_CUfunction func,
                                               kiln_CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                               size_t dynamicSMemSize, int blockSizeLimit) {
  ENTER(cuOccupancyMaxPotentialBlockSize, 0);
  (void)blockSizeToDynamicSMemSize, (void)dynamicSMemSize;
  if (!func)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  *blockSize = blockSizeLimit > 0 && blockSizeLimit < 768 ? blockSizeLimit : 768;
  *minGridSize = 264;
  return kiln_CUDA_SUCCESS;
}
/* KILN_FAKE_CUDA_LAUNCH: unset, refuse (CUDA_ERROR_NOT_SUPPORTED); `ok`, record and run
 * nothing; `emulate`, run the test kernels it knows on the stream's worker (others:
 * CUDA_ERROR_NOT_SUPPORTED). The launch is recorded (kiln_fake_cuda_last_launch) at
 * the call in every mode. */
kiln_CUresult cuLaunchKernel(kiln_CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                             unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                             unsigned int blockDimZ, unsigned int sharedMemBytes,
                             kiln_CUstream hStream, void **kernelParams, void **extra) {
  ENTER(cuLaunchKernel, 0);
  (void)extra;
  if (!f)
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  kiln_fake_launch *l = &F.last;
  l->grid[0] = gridDimX, l->grid[1] = gridDimY, l->grid[2] = gridDimZ;
  l->block[0] = blockDimX, l->block[1] = blockDimY, l->block[2] = blockDimZ;
  l->shared_bytes = sharedMemBytes;
  l->param_count = F.param_count;
  memset(l->params, 0, sizeof l->params);
  for (int i = 0; i < F.param_count && kernelParams; i++)
    memcpy(l->params[i], kernelParams[i], F.param_bytes[i]);
  l->launches++;
  int mode = F.launch_mode;
  pthread_mutex_unlock(&lock);
  if (mode == LAUNCH_OK)
    return kiln_CUDA_SUCCESS;
  if (mode != LAUNCH_EMULATE)
    return kiln_CUDA_ERROR_NOT_SUPPORTED;

  kernel_kind k = K_COUNT;
  for (int i = 0; i < K_COUNT; i++)
    if (!strcmp(f->name, kernels[i].name))
      k = (kernel_kind)i;
  if (k == K_COUNT)
    return kiln_CUDA_ERROR_NOT_SUPPORTED; /* a kernel the fake cannot run */
  if (!kernelParams || !gridDimX || !gridDimY || !gridDimZ || !blockDimX || !blockDimY ||
      !blockDimZ || (uint64_t)blockDimX * blockDimY * blockDimZ > 1024 || blockDimZ > 64)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_LAUNCH);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.launch.kernel = k;
  c->u.launch.grid[0] = gridDimX, c->u.launch.grid[1] = gridDimY, c->u.launch.grid[2] = gridDimZ;
  c->u.launch.block[0] = blockDimX, c->u.launch.block[1] = blockDimY,
  c->u.launch.block[2] = blockDimZ;
  /* The parameters are copied at the call, as the driver does. */
  int n = kernels[k].params;
  for (int i = 0; i < n; i++) {
    if (!kernelParams[i]) {
      free(c);
      return kiln_CUDA_ERROR_INVALID_VALUE;
    }
    uint64_t v = 0;
    if (kernels[k].bytes[i] == 8)
      memcpy(&v, kernelParams[i], 8);
    else {
      uint32_t v32;
      memcpy(&v32, kernelParams[i], 4);
      v = v32;
    }
    c->u.launch.p[i] = v;
  }
  for (int d = 0; d < 3; d++) {
    if (!kernelParams[n + d]) {
      free(c);
      return kiln_CUDA_ERROR_INVALID_VALUE;
    }
    memcpy(&c->u.launch.gs[d], kernelParams[n + d], 8);
  }
  pthread_mutex_lock(&lock);
  for (int i = 0; i < n; i++) {
    if (!kernels[k].pointer[i])
      continue;
    alloc_rec *a = find_alloc_locked((uintptr_t)c->u.launch.p[i]);
    if (a) {
      c->u.launch.lo[i] = a->base;
      c->u.launch.hi[i] = a->base + a->bytes;
    } /* else lo = hi = 0: every access faults */
  }
  pthread_mutex_unlock(&lock);
  return enqueue(hStream, c, NULL, NULL);
}
/* fn runs on the stream's worker, in stream order, holding later commands. */
kiln_CUresult cuLaunchHostFunc(kiln_CUstream hStream, kiln_CUhostFn fn, void *userData) {
  ENTER(cuLaunchHostFunc, 0);
  if (!fn)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  cmd *c = cmd_new(C_HOSTFN);
  if (!c)
    return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  c->u.host.fn = fn;
  c->u.host.user = userData;
  return enqueue(hStream, c, NULL, NULL);
}

/* ------------------------------------------------------------- test hooks */
long kiln_fake_cuda_calls(void) {
  pthread_mutex_lock(&lock);
  long n = F.calls;
  pthread_mutex_unlock(&lock);
  return n;
}
long kiln_fake_cuda_live(void) {
  pthread_mutex_lock(&lock);
  long n = F.live;
  pthread_mutex_unlock(&lock);
  return n;
}
void kiln_fake_cuda_expect_params(const size_t *bytes, int count) {
  pthread_mutex_lock(&lock);
  F.param_count = count > 16 ? 16 : count;
  for (int i = 0; i < F.param_count; i++)
    F.param_bytes[i] = bytes[i] > 8 ? 8 : bytes[i];
  pthread_mutex_unlock(&lock);
}
void kiln_fake_cuda_last_launch(kiln_fake_launch *out) {
  pthread_mutex_lock(&lock);
  *out = F.last;
  pthread_mutex_unlock(&lock);
}
