/* SPDX-License-Identifier: MIT */
/* Loading the CUDA driver and NVRTC with dlopen, never linking them, and the names and
 * kiln statuses of CUresults. The driver: libcuda.so.1 or the absolute
 * KILN_CUDA_LIBRARY; dlsym only for the bootstrap (cuDriverGetVersion, and
 * cuGetProcAddress_v2 — cuda.h's cuGetProcAddress; the plain symbol is the legacy ABI),
 * every other entry through it at KILN_CUDA_API_VERSION. NVRTC: the absolute
 * KILN_NVRTC_LIBRARY, else sonames, else the toolkit's directories. Pointers are assigned
 * through `void **` (ISO C). The driver loads once, in the probe (the registry's
 * once-guard); NVRTC under its own once-guard, at the first compile (program.c). */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_api.h"

kiln__cu_api kiln__cu;
kiln__nvrtc_api kiln__nvrtc;

/* ------------------------------------------------------------- error names */
const char *kiln__cu_error_name(kiln_CUresult code) {
  switch (code) {
#define KILN__CU_NAME(name, value) \
  case value:                      \
    return #name;
    KILN_CU_RESULTS(KILN__CU_NAME)
#undef KILN__CU_NAME
  default:
    break;
  }
  const char *s = NULL;
  if (kiln__cu.cuGetErrorName && kiln__cu.cuGetErrorName(code, &s) == kiln_CUDA_SUCCESS && s)
    return s;
  static _Thread_local char buf[48];
  snprintf(buf, sizeof buf, "CUDA_ERROR_UNKNOWN_%d", (int)code);
  return buf;
}

bool kiln__cu_is_sticky(kiln_CUresult code) {
  switch (code) {
  case kiln_CUDA_ERROR_ILLEGAL_ADDRESS:
  case kiln_CUDA_ERROR_LAUNCH_TIMEOUT:
  case kiln_CUDA_ERROR_ASSERT:
  case kiln_CUDA_ERROR_HARDWARE_STACK_ERROR:
  case kiln_CUDA_ERROR_ILLEGAL_INSTRUCTION:
  case kiln_CUDA_ERROR_MISALIGNED_ADDRESS:
  case kiln_CUDA_ERROR_INVALID_ADDRESS_SPACE:
  case kiln_CUDA_ERROR_INVALID_PC:
  case kiln_CUDA_ERROR_LAUNCH_FAILED:
  case kiln_CUDA_ERROR_ECC_UNCORRECTABLE:
  case kiln_CUDA_ERROR_CONTEXT_IS_DESTROYED:
  case kiln_CUDA_ERROR_DEVICE_UNAVAILABLE:
    return true;
  default:
    return false;
  }
}

kiln_status kiln__cu_fail(kiln_CUresult code, const char *what) {
  kiln_status st;
  switch (code) {
  case kiln_CUDA_ERROR_OUT_OF_MEMORY:
    st = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
    break;
  case kiln_CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
    st = KILN_ERROR_LIMIT_EXCEEDED;
    break;
  case kiln_CUDA_ERROR_INVALID_IMAGE:
  case kiln_CUDA_ERROR_NO_BINARY_FOR_GPU:
  case kiln_CUDA_ERROR_INVALID_PTX:
  case kiln_CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
  case kiln_CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
    st = KILN_ERROR_COMPILE_FAILED;
    break;
  case kiln_CUDA_ERROR_NOT_SUPPORTED:
    st = KILN_ERROR_UNSUPPORTED;
    break;
  case kiln_CUDA_ERROR_NO_DEVICE:
  case kiln_CUDA_ERROR_INVALID_DEVICE:
    st = KILN_ERROR_DEVICE_NOT_FOUND;
    break;
  default:
    st = kiln__cu_is_sticky(code) ? KILN_ERROR_DEVICE_LOST : KILN_ERROR_BACKEND;
    break;
  }
  const char *name = kiln__cu_error_name(code);
  kiln__error_native(st, KILN_BACKEND_CUDA, code, name, "%s failed: %s (%d)", what, name,
                     (int)code);
  if (kiln__cu_is_sticky(code))
    kiln__error_suggest("the CUDA context is unusable after %s: kiln_device_reset() tries to "
                        "recover, else restart the process",
                        name);
  else if (code == kiln_CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    kiln__error_suggest("the PTX is newer than the driver: update the NVIDIA driver, or use an "
                        "NVRTC no newer than the driver (KILN_NVRTC_LIBRARY)");
  return st;
}

/* ------------------------------------------------------------- the driver */
static void version_text(int v, char *out, size_t n) {
  snprintf(out, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

static kiln_status unavailable(void *lib, char *reason, size_t reason_bytes, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static kiln_status unavailable(void *lib, char *reason, size_t reason_bytes, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, reason_bytes, fmt, ap);
  va_end(ap);
  if (lib)
    dlclose(lib);
  memset(&kiln__cu, 0, sizeof kiln__cu);
  return KILN_ERROR_BACKEND_UNAVAILABLE;
}

#define STUB_REASON                                                                             \
  "CUDA_ERROR_STUB_LIBRARY (34): %s is the CUDA toolkit's stub library, not a driver: install " \
  "the NVIDIA driver (libcuda.so.1) or point KILN_CUDA_LIBRARY at it"

/* Every entry of KILN_CU_ENTRIES through cuGetProcAddress_v2 at the version kiln was
 * written against: the names of missing required entries into missing_required,
 * of optional ones into kiln__cu.missing. Answers CUDA_ERROR_STUB_LIBRARY when the
 * library did for any entry. */
static kiln_CUresult resolve_entries(char *missing_required, size_t missing_required_bytes) {
  kiln_CUresult stub = kiln_CUDA_SUCCESS;
#define KILN__CU_RESOLVE(fn, symbol, required, params)                                  \
  do {                                                                                  \
    void *p = NULL;                                                                     \
    kiln_CUdriverProcAddressQueryResult q = kiln_CU_GET_PROC_ADDRESS_SUCCESS;           \
    kiln_CUresult rr = kiln__cu.cuGetProcAddress(#fn, &p, KILN_CUDA_API_VERSION,        \
                                                 kiln_CU_GET_PROC_ADDRESS_DEFAULT, &q); \
    if (rr == kiln_CUDA_ERROR_STUB_LIBRARY)                                             \
      stub = rr;                                                                        \
    if (rr != kiln_CUDA_SUCCESS || q != kiln_CU_GET_PROC_ADDRESS_SUCCESS)               \
      p = NULL;                                                                         \
    *(void **)&kiln__cu.fn = p;                                                         \
    if (!p) {                                                                           \
      char *list = (required) ? missing_required : kiln__cu.missing;                    \
      size_t at = strlen(list),                                                         \
             cap = (required) ? missing_required_bytes : sizeof kiln__cu.missing;       \
      snprintf(list + at, cap - at, "%s%s", at ? " " : "", #fn);                        \
    }                                                                                   \
  } while (0);
  KILN_CU_ENTRIES(KILN__CU_RESOLVE)
#undef KILN__CU_RESOLVE
  return stub;
}

/* The bootstrap (dlsym) and the driver's version, into kiln__cu; the version as text
 * into have. */
static kiln_status bootstrap(void *lib, const char *name, char *have, size_t have_bytes,
                             char *reason, size_t reason_bytes) {
  *(void **)&kiln__cu.cuDriverGetVersion = dlsym(lib, "cuDriverGetVersion");
  *(void **)&kiln__cu.cuGetProcAddress = dlsym(lib, "cuGetProcAddress_v2");
  if (!kiln__cu.cuDriverGetVersion)
    return unavailable(lib, reason, reason_bytes,
                       "%s has no cuDriverGetVersion: it is not a CUDA driver library", name);
  int version = 0;
  kiln_CUresult r = kiln__cu.cuDriverGetVersion(&version);
  if (r == kiln_CUDA_ERROR_STUB_LIBRARY)
    return unavailable(lib, reason, reason_bytes, STUB_REASON, name);
  if (r != kiln_CUDA_SUCCESS)
    return unavailable(lib, reason, reason_bytes, "cuDriverGetVersion in %s failed: %s (%d)", name,
                       kiln__cu_error_name(r), (int)r);
  kiln__cu.driver_version = version;
  char need[16];
  version_text(version, have, have_bytes);
  version_text(KILN_CUDA_API_VERSION, need, sizeof need);
  if (!kiln__cu.cuGetProcAddress || version < KILN_CUDA_API_VERSION)
    return unavailable(
        lib, reason, reason_bytes,
        "the NVIDIA driver in %s is CUDA %s (%d)%s; kiln needs CUDA %s (%d) or newer: "
        "update the NVIDIA driver",
        name, have, version, kiln__cu.cuGetProcAddress ? "" : ", without cuGetProcAddress_v2", need,
        KILN_CUDA_API_VERSION);
  return KILN_SUCCESS;
}

kiln_status kiln__cu_load(char *reason, size_t reason_bytes) {
  memset(&kiln__cu, 0, sizeof kiln__cu);
  const char *env = getenv("KILN_CUDA_LIBRARY");
  if (env && *env && env[0] != '/') {
    snprintf(reason, reason_bytes,
             "KILN_CUDA_LIBRARY='%s' is a relative path: give an absolute one", env);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  const char *name = env && *env ? env : "libcuda.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *err = dlerror();
    return unavailable(NULL, reason, reason_bytes, "%s could not be loaded (no NVIDIA driver?): %s",
                       name, err ? err : "unknown error");
  }
  kiln__strlcpy(kiln__cu.path, name, sizeof kiln__cu.path);
  char have[16];
  kiln_status st = bootstrap(lib, name, have, sizeof have, reason, reason_bytes);
  if (st != KILN_SUCCESS)
    return st;
  char missing_required[256] = "";
  if (resolve_entries(missing_required, sizeof missing_required) != kiln_CUDA_SUCCESS)
    return unavailable(lib, reason, reason_bytes, STUB_REASON, name);
  if (missing_required[0]) {
    char need[16];
    version_text(KILN_CUDA_API_VERSION, need, sizeof need);
    return unavailable(
        lib, reason, reason_bytes,
        "the NVIDIA driver in %s (CUDA %s) has no %s at CUDA %s: update the NVIDIA driver", name,
        have, missing_required, need);
  }
  kiln_CUresult r = kiln__cu.cuInit(0);
  if (r == kiln_CUDA_ERROR_STUB_LIBRARY)
    return unavailable(lib, reason, reason_bytes, STUB_REASON, name);
  if (r == kiln_CUDA_ERROR_NO_DEVICE)
    return unavailable(
        lib, reason, reason_bytes,
        "CUDA_ERROR_NO_DEVICE (100): the NVIDIA driver (CUDA %s, %s) sees no CUDA device "
        "(check CUDA_VISIBLE_DEVICES and nvidia-smi)",
        have, name);
  if (r != kiln_CUDA_SUCCESS)
    return unavailable(lib, reason, reason_bytes,
                       "cuInit(0) failed: %s (%d) with the NVIDIA driver (CUDA %s, %s)",
                       kiln__cu_error_name(r), (int)r, have, name);
  if (kiln__cu.missing[0])
    kiln__log(KILN_LOG_INFO, "cuda: the driver (CUDA %s) lacks optional entries: %s", have,
              kiln__cu.missing);
  /* The library stays loaded for the process: devices never go. */
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- NVRTC */
static pthread_once_t nvrtc_once = PTHREAD_ONCE_INIT;
static kiln_status nvrtc_status = KILN_ERROR_BACKEND_UNAVAILABLE;
static char nvrtc_reason[768];

/* Open one candidate and resolve every entry; false (library closed) on any gap. */
static bool nvrtc_try(const char *path, char *tried, size_t tried_bytes) {
  size_t at = strlen(tried);
  snprintf(tried + at, tried_bytes - at, "%s%s", at ? ", " : "", path);
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return false;
  kiln__nvrtc_api api;
  memset(&api, 0, sizeof api);
  const char *gap = NULL;
#define KILN__NVRTC_RESOLVE(fn, required, params) \
  *(void **)&api.fn = dlsym(lib, #fn);            \
  if (!api.fn && (required) && !gap)              \
    gap = #fn;
  KILN_NVRTC_ENTRIES(KILN__NVRTC_RESOLVE)
#undef KILN__NVRTC_RESOLVE
  *(void **)&api.nvrtcGetErrorString = dlsym(lib, "nvrtcGetErrorString");
  if (!api.nvrtcGetErrorString && !gap)
    gap = "nvrtcGetErrorString";
  if (gap) {
    at = strlen(tried);
    snprintf(tried + at, tried_bytes - at, " (no %s: older than CUDA 11.2)", gap);
    dlclose(lib);
    return false;
  }
  api.nvrtcVersion(&api.major, &api.minor);
  int n = 0;
  if (api.nvrtcGetNumSupportedArchs(&n) == kiln_NVRTC_SUCCESS && n > 0) {
    int all[256];
    if (n > 256)
      n = 256;
    if (api.nvrtcGetSupportedArchs(all) == kiln_NVRTC_SUCCESS) {
      /* keep the newest 64 (ascending order is NVRTC's) */
      int first = n > 64 ? n - 64 : 0;
      for (int i = first; i < n; i++)
        api.archs[api.arch_count++] = all[i];
    }
  }
  kiln__strlcpy(api.path, path, sizeof api.path);
  kiln__nvrtc = api;
  return true;
}

static int by_name_desc(const void *a, const void *b) {
  return strcmp(*(const char *const *)b, *(const char *const *)a);
}

/* Every libnvrtc.so* in dir, newest name first. */
static bool nvrtc_try_dir(const char *dir, char *tried, size_t tried_bytes) {
  char pattern[512];
  snprintf(pattern, sizeof pattern, "%s/libnvrtc.so*", dir);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0) {
    size_t at = strlen(tried);
    snprintf(tried + at, tried_bytes - at, "%s%s", at ? ", " : "", pattern);
    return false;
  }
  qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, by_name_desc);
  bool ok = false;
  for (size_t i = 0; i < g.gl_pathc && !ok; i++)
    ok = nvrtc_try(g.gl_pathv[i], tried, tried_bytes);
  globfree(&g);
  return ok;
}

static void nvrtc_load_once(void) {
  char tried[512] = "";
  const char *env = getenv("KILN_NVRTC_LIBRARY");
  if (env && *env) {
    if (env[0] != '/') {
      snprintf(nvrtc_reason, sizeof nvrtc_reason,
               "KILN_NVRTC_LIBRARY='%s' is a relative path: give an absolute one", env);
      return;
    }
    if (nvrtc_try(env, tried, sizeof tried))
      goto loaded;
    const char *err = dlerror();
    snprintf(nvrtc_reason, sizeof nvrtc_reason,
             "KILN_NVRTC_LIBRARY='%s' could not be used: %s (%s)", env, tried,
             err ? err : "it lacks entries kiln needs");
    return;
  }
  static const char *const sonames[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"};
  for (size_t i = 0; i < sizeof sonames / sizeof sonames[0]; i++)
    if (nvrtc_try(sonames[i], tried, sizeof tried))
      goto loaded;
  const char *home = getenv("CUDA_HOME");
  if (home && home[0] == '/') {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/lib64", home);
    if (nvrtc_try_dir(dir, tried, sizeof tried))
      goto loaded;
  }
  if (nvrtc_try_dir("/usr/local/cuda/lib64", tried, sizeof tried))
    goto loaded;
  snprintf(nvrtc_reason, sizeof nvrtc_reason,
           "NVRTC not found (tried %s): install the CUDA toolkit's NVRTC or set KILN_NVRTC_LIBRARY "
           "to its "
           "absolute path",
           tried);
  return;
loaded:
  nvrtc_status = KILN_SUCCESS;
  kiln__log(KILN_LOG_DEBUG, "cuda: NVRTC %d.%d from %s, %d architectures (sm_%d..sm_%d)",
            kiln__nvrtc.major, kiln__nvrtc.minor, kiln__nvrtc.path, kiln__nvrtc.arch_count,
            kiln__nvrtc.arch_count ? kiln__nvrtc.archs[0] : 0,
            kiln__nvrtc.arch_count ? kiln__nvrtc.archs[kiln__nvrtc.arch_count - 1] : 0);
}

kiln_status kiln__nvrtc_load(void) {
  pthread_once(&nvrtc_once, nvrtc_load_once);
  if (nvrtc_status != KILN_SUCCESS) {
    kiln__error(KILN_ERROR_BACKEND_UNAVAILABLE, "%s", nvrtc_reason);
    kiln__error_suggest("the CUDA backend compiles kernel source with NVRTC (CUDA 11.2 or newer)");
  }
  return nvrtc_status;
}
