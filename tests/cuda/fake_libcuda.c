/* SPDX-License-Identifier: MIT */
/* A fake libcuda for CI, built from kiln's own declarations (cuda_decl.h): it exports
 * the bootstrap symbols kiln takes with dlsym and, through cuGetProcAddress_v2, every
 * entry kiln resolves, implemented over host memory (a CUdeviceptr is a host
 * address). Behaviour is configured by environment variables (fake_libcuda.h) so the
 * backend's loader, device enumeration, error paths and simple runtime ops run where
 * no GPU is. Thread-safe: one mutex around the state. */
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
EXPORT kiln_CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, uint64_t flags,
                                         kiln_CUdriverProcAddressQueryResult *symbolStatus);
#endif
EXPORT long kiln_fake_cuda_calls(void);
EXPORT long kiln_fake_cuda_live(void);
EXPORT void kiln_fake_cuda_expect_params(const size_t *bytes, int count);
EXPORT void kiln_fake_cuda_last_launch(kiln_fake_launch *out);

struct CUctx_st { int device, retains; };
struct CUstream_st { int magic, priority; };
struct CUevent_st { unsigned flags; int recorded; uint64_t t_ns; };
struct CUmod_st { size_t bytes; unsigned char *image; };
struct CUfunc_st { struct CUmod_st *mod; char name[64]; };

typedef struct alloc_rec { uintptr_t base; size_t bytes; struct alloc_rec *next; } alloc_rec;

#define MAX_DEV 8
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct {
  int devices, version, initialised, fail_code, sticky, launch_ok;
  long fail_nth, sticky_nth, calls, counted, syncs, live;
  char fail_entry[64], hide[512];
  struct CUctx_st ctx[MAX_DEV];
  size_t allocated;
  alloc_rec *allocs;
  alloc_rec *host; /* cuMemHostAlloc'ed and cuMemHostRegister'ed ranges */
  size_t param_bytes[16];
  int param_count;
  kiln_fake_launch last;
} F;
static _Thread_local struct CUctx_st *current[8];
static _Thread_local int depth;

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : def;
}
static void setup(void) {
  F.devices = (int)env_long("KILN_FAKE_CUDA_DEVICES", 1);
  if (F.devices > MAX_DEV) F.devices = MAX_DEV;
#ifdef FAKE_OLD_DRIVER
  F.version = (int)env_long("KILN_FAKE_CUDA_VERSION", 11080);
#else
  F.version = (int)env_long("KILN_FAKE_CUDA_VERSION", 13000);
#endif
  F.fail_nth = env_long("KILN_FAKE_CUDA_FAIL_NTH", 0);
  F.fail_code = (int)env_long("KILN_FAKE_CUDA_FAIL_CODE", kiln_CUDA_ERROR_UNKNOWN);
  F.sticky_nth = env_long("KILN_FAKE_CUDA_STICKY_NTH", 0);
  const char *e = getenv("KILN_FAKE_CUDA_FAIL_ENTRY");
  if (e) snprintf(F.fail_entry, sizeof F.fail_entry, "%s", e);
  e = getenv("KILN_FAKE_CUDA_HIDE");
  if (e) snprintf(F.hide, sizeof F.hide, ",%s,", e);
  e = getenv("KILN_FAKE_CUDA_LAUNCH");
  F.launch_ok = e && !strcmp(e, "ok");
  for (int i = 0; i < MAX_DEV; i++) F.ctx[i].device = i;
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
    if (F.fail_nth && F.counted == F.fail_nth) r = F.fail_code;
  }
  if (kind == 1 && F.sticky_nth && ++F.syncs >= F.sticky_nth) F.sticky = 1;
  if (!r && F.sticky && kind != 2) r = kiln_CUDA_ERROR_ILLEGAL_ADDRESS;
  if (!r && needs_init && !F.initialised) r = kiln_CUDA_ERROR_NOT_INITIALIZED;
  pthread_mutex_unlock(&lock);
  return r;
}
#define ENTER(sym, kind)                           \
  do {                                             \
    kiln_CUresult e_ = enter(#sym, (kind), 1);     \
    if (e_ != kiln_CUDA_SUCCESS) return e_;        \
  } while (0)

static void live(long d) {
  pthread_mutex_lock(&lock);
  F.live += d;
  pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------- bootstrap, init */
kiln_CUresult cuDriverGetVersion(int *driverVersion) {
  kiln_CUresult r = enter("cuDriverGetVersion", 2, 0);
  if (r) return r;
  if (!driverVersion) return kiln_CUDA_ERROR_INVALID_VALUE;
  *driverVersion = F.version;
  return kiln_CUDA_SUCCESS;
}

#ifndef FAKE_OLD_DRIVER
typedef void (*any_fn)(void);
kiln_CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, uint64_t flags,
                                  kiln_CUdriverProcAddressQueryResult *symbolStatus) {
  (void)flags;
  kiln_CUresult r = enter("cuGetProcAddress_v2", 2, 0);
  if (r) return r;
  if (!symbol || !pfn) return kiln_CUDA_ERROR_INVALID_VALUE;
  *pfn = NULL;
  if (symbolStatus) *symbolStatus = kiln_CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  char key[80];
  snprintf(key, sizeof key, ",%s,", symbol);
  if (strstr(F.hide, key)) return kiln_CUDA_ERROR_NOT_FOUND;
  if (cudaVersion < 2000) return kiln_CUDA_ERROR_INVALID_VALUE;
  any_fn fn = NULL;
#define FAKE_LOOKUP(name, sym, required, params) \
  if (!strcmp(symbol, #name)) {                   \
    kiln_CUresult(*typed) params = sym;           \
    memcpy(&fn, &typed, sizeof fn);               \
  }
  KILN_CU_ENTRIES(FAKE_LOOKUP)
#undef FAKE_LOOKUP
  if (!fn) return kiln_CUDA_ERROR_NOT_FOUND;
  memcpy(pfn, &fn, sizeof *pfn);
  if (symbolStatus) *symbolStatus = kiln_CU_GET_PROC_ADDRESS_SUCCESS;
  return kiln_CUDA_SUCCESS;
}
#endif

kiln_CUresult cuInit(unsigned int Flags) {
  kiln_CUresult r = enter("cuInit", 0, 0);
  if (r) return r;
  if (Flags) return kiln_CUDA_ERROR_INVALID_VALUE;
  if (F.devices <= 0) return kiln_CUDA_ERROR_NO_DEVICE;
  F.initialised = 1;
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
static int valid_dev(kiln_CUdevice d) { return d >= 0 && d < F.devices; }
static size_t total_mem(kiln_CUdevice d) { return ((size_t)4 << 30) + ((size_t)d << 30); }

kiln_CUresult cuDeviceGetCount(int *count) {
  ENTER(cuDeviceGetCount, 0);
  *count = F.devices;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGet(kiln_CUdevice *device, int ordinal) {
  ENTER(cuDeviceGet, 0);
  if (!valid_dev(ordinal)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetName(char *name, int len, kiln_CUdevice dev) {
  ENTER(cuDeviceGetName, 0);
  if (!valid_dev(dev) || len <= 0) return kiln_CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "kiln fake CUDA device %d", dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetAttribute(int *pi, kiln_CUdevice_attribute attrib, kiln_CUdevice dev) {
  ENTER(cuDeviceGetAttribute, 0);
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *pi = 1024; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *pi = 1024; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *pi = 64; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *pi = 2147483647; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: *pi = 65535; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *pi = 65535; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *pi = 49152; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *pi = 232448; break;
    case kiln_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *pi = 132 + dev; break;
    case kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = dev == 1 ? 8 : 9; break;
    case kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = 0; break;
    case kiln_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *pi = 0; break;
    case kiln_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *pi = 0x65 + dev; break;
    case kiln_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *pi = 0; break;
    case kiln_CU_DEVICE_ATTRIBUTE_WARP_SIZE: *pi = 32; break;
    default: return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceTotalMem_v2(size_t *bytes, kiln_CUdevice dev) {
  ENTER(cuDeviceTotalMem_v2, 0);
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  *bytes = total_mem(dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, kiln_CUdevice dev) {
  ENTER(cuDeviceGetPCIBusId, 0);
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  snprintf(pciBusId, (size_t)len, "0000:%02X:00.0", 0x65 + dev);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDeviceGetUuid_v2(kiln_CUuuid *uuid, kiln_CUdevice dev) {
  ENTER(cuDeviceGetUuid_v2, 0);
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  memset(uuid->bytes, 0x40 + dev, sizeof uuid->bytes);
  return kiln_CUDA_SUCCESS;
}

/* ------------------------------------------------------------- contexts */
kiln_CUresult cuDevicePrimaryCtxRetain(kiln_CUcontext *pctx, kiln_CUdevice dev) {
  ENTER(cuDevicePrimaryCtxRetain, 0);
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  F.ctx[dev].retains++;
  F.live++;
  pthread_mutex_unlock(&lock);
  *pctx = &F.ctx[dev];
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuDevicePrimaryCtxRelease_v2(kiln_CUdevice dev) {
  kiln_CUresult r = enter("cuDevicePrimaryCtxRelease_v2", 2, 1);
  if (r) return r;
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
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
  if (r) return r;
  if (!valid_dev(dev)) return kiln_CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  F.sticky = 0;
  F.sticky_nth = 0;
  pthread_mutex_unlock(&lock);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxPushCurrent_v2(kiln_CUcontext ctx) {
  kiln_CUresult r = enter("cuCtxPushCurrent_v2", 2, 1);
  if (r) return r;
  if (!ctx || depth == 8) return kiln_CUDA_ERROR_INVALID_VALUE;
  current[depth++] = ctx;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxPopCurrent_v2(kiln_CUcontext *pctx) {
  kiln_CUresult r = enter("cuCtxPopCurrent_v2", 2, 1);
  if (r) return r;
  if (!depth) return kiln_CUDA_ERROR_INVALID_CONTEXT;
  struct CUctx_st *c = current[--depth];
  if (pctx) *pctx = c;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxSetCurrent(kiln_CUcontext ctx) {
  kiln_CUresult r = enter("cuCtxSetCurrent", 2, 1);
  if (r) return r;
  if (depth) current[depth - 1] = ctx;
  else if (ctx) current[depth++] = ctx;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuCtxSynchronize(void) {
  ENTER(cuCtxSynchronize, 1);
  return depth ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_CONTEXT;
}

/* ------------------------------------------------------------- memory */
static alloc_rec *find_alloc_locked(uintptr_t p) {
  for (alloc_rec *a = F.allocs; a; a = a->next)
    if (p >= a->base && p < a->base + a->bytes) return a;
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
  for (size_t i = 0; i < n; i++) d[i] = s[i];
}
static kiln_CUresult need_ctx(void) { return depth ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_CONTEXT; }

kiln_CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
  ENTER(cuMemGetInfo_v2, 0);
  if (need_ctx()) return need_ctx();
  *total = total_mem(current[depth - 1]->device);
  *free = *total - F.allocated;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemAlloc_v2(kiln_CUdeviceptr *dptr, size_t bytesize) {
  ENTER(cuMemAlloc_v2, 0);
  if (need_ctx()) return need_ctx();
  if (!bytesize) return kiln_CUDA_ERROR_INVALID_VALUE;
  if (bytesize > total_mem(current[depth - 1]->device) - F.allocated) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
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
  if (r) return r;
  pthread_mutex_lock(&lock);
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
kiln_CUresult cuMemGetAddressRange_v2(kiln_CUdeviceptr *pbase, size_t *psize, kiln_CUdeviceptr dptr) {
  ENTER(cuMemGetAddressRange_v2, 0);
  pthread_mutex_lock(&lock);
  alloc_rec *a = find_alloc_locked((uintptr_t)dptr);
  if (a) {
    if (pbase) *pbase = a->base;
    if (psize) *psize = a->bytes;
  }
  pthread_mutex_unlock(&lock);
  return a ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_NOT_FOUND;
}
kiln_CUresult cuMemcpyHtoDAsync_v2(kiln_CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
                                   kiln_CUstream hStream) {
  ENTER(cuMemcpyHtoDAsync_v2, 0);
  (void)hStream;
  if (!valid_range(dstDevice, ByteCount) || !srcHost) return kiln_CUDA_ERROR_INVALID_VALUE;
  dma_copy((void *)(uintptr_t)dstDevice, srcHost, ByteCount);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemcpyDtoHAsync_v2(void *dstHost, kiln_CUdeviceptr srcDevice, size_t ByteCount, kiln_CUstream hStream) {
  ENTER(cuMemcpyDtoHAsync_v2, 0);
  (void)hStream;
  if (!valid_range(srcDevice, ByteCount) || !dstHost) return kiln_CUDA_ERROR_INVALID_VALUE;
  dma_copy(dstHost, (const void *)(uintptr_t)srcDevice, ByteCount);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemcpyDtoDAsync_v2(kiln_CUdeviceptr dstDevice, kiln_CUdeviceptr srcDevice, size_t ByteCount,
                                   kiln_CUstream hStream) {
  ENTER(cuMemcpyDtoDAsync_v2, 0);
  (void)hStream;
  if (!valid_range(dstDevice, ByteCount) || !valid_range(srcDevice, ByteCount)) return kiln_CUDA_ERROR_INVALID_VALUE;
  memmove((void *)(uintptr_t)dstDevice, (const void *)(uintptr_t)srcDevice, ByteCount);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemsetD8Async(kiln_CUdeviceptr dstDevice, unsigned char uc, size_t N, kiln_CUstream hStream) {
  ENTER(cuMemsetD8Async, 0);
  (void)hStream;
  if (!valid_range(dstDevice, N)) return kiln_CUDA_ERROR_INVALID_VALUE;
  memset((void *)(uintptr_t)dstDevice, uc, N);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemsetD16Async(kiln_CUdeviceptr dstDevice, unsigned short us, size_t N, kiln_CUstream hStream) {
  ENTER(cuMemsetD16Async, 0);
  (void)hStream;
  if ((dstDevice & 1u) || !valid_range(dstDevice, N * 2)) return kiln_CUDA_ERROR_INVALID_VALUE;
  unsigned char *d = (unsigned char *)(uintptr_t)dstDevice;
  for (size_t i = 0; i < N; i++) memcpy(d + 2 * i, &us, 2);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemsetD32Async(kiln_CUdeviceptr dstDevice, unsigned int ui, size_t N, kiln_CUstream hStream) {
  ENTER(cuMemsetD32Async, 0);
  (void)hStream;
  if ((dstDevice & 3u) || !valid_range(dstDevice, N * 4)) return kiln_CUDA_ERROR_INVALID_VALUE;
  unsigned char *d = (unsigned char *)(uintptr_t)dstDevice;
  for (size_t i = 0; i < N; i++) memcpy(d + 4 * i, &ui, 4);
  return kiln_CUDA_SUCCESS;
}

/* Page-locked host memory: plain host memory here, remembered so that
 * cuPointerGetAttribute can tell it from pageable memory. */
static kiln_CUresult host_add(void *p, size_t bytes) {
  alloc_rec *a = malloc(sizeof *a);
  if (!a) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
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
  if (need_ctx()) return need_ctx();
  if (!pp || !bytesize || Flags > 7) return kiln_CUDA_ERROR_INVALID_VALUE;
  void *p = aligned_alloc(4096, (bytesize + 4095) / 4096 * 4096);
  if (!p) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
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
  if (r) return r;
  if (!host_remove(p)) return kiln_CUDA_ERROR_INVALID_VALUE;
  free(p);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) {
  ENTER(cuMemHostRegister_v2, 0);
  if (need_ctx()) return need_ctx();
  if (!p || !bytesize || Flags > 15) return kiln_CUDA_ERROR_INVALID_VALUE;
  return host_add(p, bytesize);
}
kiln_CUresult cuMemHostUnregister(void *p) {
  kiln_CUresult r = enter("cuMemHostUnregister", 2, 1);
  if (r) return r;
  return host_remove(p) ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_VALUE;
}
kiln_CUresult cuPointerGetAttribute(void *data, kiln_CUpointer_attribute attribute, kiln_CUdeviceptr ptr) {
  ENTER(cuPointerGetAttribute, 0);
  if (!data || attribute != kiln_CU_POINTER_ATTRIBUTE_MEMORY_TYPE) return kiln_CUDA_ERROR_INVALID_VALUE;
  unsigned type = 0;
  pthread_mutex_lock(&lock);
  if (find_alloc_locked((uintptr_t)ptr)) type = kiln_CU_MEMORYTYPE_DEVICE;
  for (alloc_rec *a = F.host; a && !type; a = a->next)
    if ((uintptr_t)ptr >= a->base && (uintptr_t)ptr < a->base + a->bytes) type = kiln_CU_MEMORYTYPE_HOST;
  pthread_mutex_unlock(&lock);
  if (!type) return kiln_CUDA_ERROR_INVALID_VALUE; /* pageable memory, as the driver says */
  memcpy(data, &type, sizeof type);
  return kiln_CUDA_SUCCESS;
}

/* ------------------------------------------------------------- streams, events */
kiln_CUresult cuStreamCreate(kiln_CUstream *phStream, unsigned int Flags) {
  ENTER(cuStreamCreate, 0);
  if (need_ctx()) return need_ctx();
  if (Flags > 1) return kiln_CUDA_ERROR_INVALID_VALUE;
  struct CUstream_st *s = calloc(1, sizeof *s);
  if (!s) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  s->magic = 0x5354;
  live(1);
  *phStream = s;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamCreateWithPriority(kiln_CUstream *phStream, unsigned int flags, int priority) {
  ENTER(cuStreamCreateWithPriority, 0);
  if (priority > 0 || priority < -5) priority = priority > 0 ? 0 : -5; /* clamped, as the driver does */
  kiln_CUresult r = cuStreamCreate(phStream, flags);
  if (r == kiln_CUDA_SUCCESS) (*phStream)->priority = priority;
  return r;
}
kiln_CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
  ENTER(cuCtxGetStreamPriorityRange, 0);
  if (leastPriority) *leastPriority = 0;
  if (greatestPriority) *greatestPriority = -5;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamDestroy_v2(kiln_CUstream hStream) {
  kiln_CUresult r = enter("cuStreamDestroy_v2", 2, 1);
  if (r) return r;
  if (!hStream || hStream->magic != 0x5354) return kiln_CUDA_ERROR_INVALID_HANDLE;
  hStream->magic = 0;
  free(hStream);
  live(-1);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamSynchronize(kiln_CUstream hStream) {
  ENTER(cuStreamSynchronize, 1);
  (void)hStream;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuStreamWaitEvent(kiln_CUstream hStream, kiln_CUevent hEvent, unsigned int Flags) {
  ENTER(cuStreamWaitEvent, 0);
  (void)hStream;
  return hEvent && !Flags ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_VALUE;
}
kiln_CUresult cuEventCreate(kiln_CUevent *phEvent, unsigned int Flags) {
  ENTER(cuEventCreate, 0);
  if (need_ctx()) return need_ctx();
  struct CUevent_st *e = calloc(1, sizeof *e);
  if (!e) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  e->flags = Flags;
  live(1);
  *phEvent = e;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuEventDestroy_v2(kiln_CUevent hEvent) {
  kiln_CUresult r = enter("cuEventDestroy_v2", 2, 1);
  if (r) return r;
  if (!hEvent) return kiln_CUDA_ERROR_INVALID_HANDLE;
  free(hEvent);
  live(-1);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuEventRecord(kiln_CUevent hEvent, kiln_CUstream hStream) {
  ENTER(cuEventRecord, 0);
  (void)hStream;
  if (!hEvent) return kiln_CUDA_ERROR_INVALID_HANDLE;
  hEvent->recorded = 1;
  hEvent->t_ns = now_ns();
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuEventQuery(kiln_CUevent hEvent) {
  ENTER(cuEventQuery, 1);
  return hEvent ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_HANDLE;
}
kiln_CUresult cuEventSynchronize(kiln_CUevent hEvent) {
  ENTER(cuEventSynchronize, 1);
  return hEvent ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_INVALID_HANDLE;
}
kiln_CUresult cuEventElapsedTime(float *pMilliseconds, kiln_CUevent hStart, kiln_CUevent hEnd) {
  ENTER(cuEventElapsedTime, 0);
  if (!hStart || !hEnd || ((hStart->flags | hEnd->flags) & kiln_CU_EVENT_DISABLE_TIMING))
    return kiln_CUDA_ERROR_INVALID_HANDLE;
  if (!hStart->recorded || !hEnd->recorded) return kiln_CUDA_ERROR_INVALID_HANDLE;
  *pMilliseconds = (float)((double)(int64_t)(hEnd->t_ns - hStart->t_ns) / 1e6);
  return kiln_CUDA_SUCCESS;
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
  if (need_ctx()) return need_ctx();
  if (!image) return kiln_CUDA_ERROR_INVALID_VALUE;
  const unsigned char *img = image;
  int elf = !memcmp(img, "\177ELF", 4);
  if (!elf && !strstr((const char *)img, ".version")) return kiln_CUDA_ERROR_INVALID_IMAGE;
  struct CUmod_st *m = calloc(1, sizeof *m);
  if (!m) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
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
  if (r) return r;
  if (!hmod) return kiln_CUDA_ERROR_INVALID_HANDLE;
  free(hmod->image);
  free(hmod);
  live(-1);
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuModuleGetFunction(kiln_CUfunction *hfunc, kiln_CUmodule hmod, const char *name) {
  ENTER(cuModuleGetFunction, 0);
  if (!hmod || !name) return kiln_CUDA_ERROR_INVALID_VALUE;
  size_t n = strlen(name) + 1; /* the name with its NUL, as in an ELF string table */
  const unsigned char *found = NULL;
  for (size_t i = 0; !found && i + n <= hmod->bytes; i++)
    if (!memcmp(hmod->image + i, name, n) || (!memcmp(hmod->image + i, name, n - 1) && hmod->image[i + n - 1] == '('))
      found = hmod->image + i;
  if (!found) return kiln_CUDA_ERROR_NOT_FOUND;
  /* Functions live as long as the module in CUDA; the fake keeps one per name lookup
   * in a small table instead of per module (it is freed at exit). */
  static struct CUfunc_st funcs[256];
  static int nfuncs;
  pthread_mutex_lock(&lock);
  struct CUfunc_st *f = NULL;
  for (int i = 0; i < nfuncs && !f; i++)
    if (funcs[i].mod == hmod && !strcmp(funcs[i].name, name)) f = &funcs[i];
  if (!f && nfuncs < 256) {
    f = &funcs[nfuncs++];
    f->mod = hmod;
    snprintf(f->name, sizeof f->name, "%s", name);
  }
  pthread_mutex_unlock(&lock);
  if (!f) return kiln_CUDA_ERROR_OUT_OF_MEMORY;
  *hfunc = f;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuFuncGetAttribute(int *pi, kiln_CUfunction_attribute attrib, kiln_CUfunction hfunc) {
  ENTER(cuFuncGetAttribute, 0);
  if (!hfunc) return kiln_CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
    case kiln_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
    case kiln_CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = 0; break;
    case kiln_CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = 32; break;
    case kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = 49152; break;
    default: return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuFuncSetAttribute(kiln_CUfunction hfunc, kiln_CUfunction_attribute attrib, int value) {
  ENTER(cuFuncSetAttribute, 0);
  if (!hfunc || attrib != kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || value < 0 || value > 232448)
    return kiln_CUDA_ERROR_INVALID_VALUE;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, kiln_CUfunction func,
                                               kiln_CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                               size_t dynamicSMemSize, int blockSizeLimit) {
  ENTER(cuOccupancyMaxPotentialBlockSize, 0);
  (void)blockSizeToDynamicSMemSize, (void)dynamicSMemSize;
  if (!func) return kiln_CUDA_ERROR_INVALID_HANDLE;
  *blockSize = blockSizeLimit > 0 && blockSizeLimit < 768 ? blockSizeLimit : 768;
  *minGridSize = 264;
  return kiln_CUDA_SUCCESS;
}
kiln_CUresult cuLaunchKernel(kiln_CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                             unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                             unsigned int sharedMemBytes, kiln_CUstream hStream, void **kernelParams, void **extra) {
  ENTER(cuLaunchKernel, 0);
  (void)hStream, (void)extra;
  if (!f) return kiln_CUDA_ERROR_INVALID_HANDLE;
  pthread_mutex_lock(&lock);
  kiln_fake_launch *l = &F.last;
  l->grid[0] = gridDimX, l->grid[1] = gridDimY, l->grid[2] = gridDimZ;
  l->block[0] = blockDimX, l->block[1] = blockDimY, l->block[2] = blockDimZ;
  l->shared_bytes = sharedMemBytes;
  l->param_count = F.param_count;
  memset(l->params, 0, sizeof l->params);
  for (int i = 0; i < F.param_count && kernelParams; i++) memcpy(l->params[i], kernelParams[i], F.param_bytes[i]);
  l->launches++;
  int ok = F.launch_ok;
  pthread_mutex_unlock(&lock);
  return ok ? kiln_CUDA_SUCCESS : kiln_CUDA_ERROR_NOT_SUPPORTED;
}
kiln_CUresult cuLaunchHostFunc(kiln_CUstream hStream, kiln_CUhostFn fn, void *userData) {
  ENTER(cuLaunchHostFunc, 0);
  (void)hStream;
  if (!fn) return kiln_CUDA_ERROR_INVALID_VALUE;
  fn(userData);
  return kiln_CUDA_SUCCESS;
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
  for (int i = 0; i < F.param_count; i++) F.param_bytes[i] = bytes[i] > 8 ? 8 : bytes[i];
  pthread_mutex_unlock(&lock);
}
void kiln_fake_cuda_last_launch(kiln_fake_launch *out) {
  pthread_mutex_lock(&lock);
  *out = F.last;
  pthread_mutex_unlock(&lock);
}
