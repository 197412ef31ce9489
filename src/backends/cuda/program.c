/* SPDX-License-Identifier: MIT */
/* CUDA programs: the architecture to compile for, the NVRTC compile of rewritten
 * dialect source (CUBIN for the device's sm_XY, PTX the driver JIT-compiles where
 * NVRTC does not know the device or the CUBIN is refused), and the loaded module,
 * shared by the program and its kernels and unloaded with the last of them (refs).
 * NVRTC loads once (loader.c); compiles run on any thread; program_build/destroy are
 * ops, kiln__cu_module_unref is kernel.c's too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* ------------------------------------------------------------- NVRTC */
kiln_status kiln__cuda_pick_arch(int major, int minor, char *out, size_t out_bytes, int *want_ptx) {
  kiln_status st = kiln__nvrtc_load();
  if (st != KILN_SUCCESS)
    return st;
  int want = major * 10 + minor, below = 0;
  for (int i = 0; i < kiln__nvrtc.arch_count; i++) {
    if (kiln__nvrtc.archs[i] == want) {
      snprintf(out, out_bytes, "sm_%d", want);
      *want_ptx = 0;
      return KILN_SUCCESS;
    }
    if (kiln__nvrtc.archs[i] < want)
      below = kiln__nvrtc.archs[i];
  }
  if (below) { /* a device newer than this NVRTC: PTX of the newest it knows, JIT-compiled */
    snprintf(out, out_bytes, "compute_%d", below);
    *want_ptx = 1;
    return KILN_SUCCESS;
  }
  kiln__error(
      KILN_ERROR_UNSUPPORTED,
      "NVRTC %d.%d (%s) cannot compile for compute capability %d.%d: it knows sm_%d to sm_%d",
      kiln__nvrtc.major, kiln__nvrtc.minor, kiln__nvrtc.path, major, minor,
      kiln__nvrtc.arch_count ? kiln__nvrtc.archs[0] : 0,
      kiln__nvrtc.arch_count ? kiln__nvrtc.archs[kiln__nvrtc.arch_count - 1] : 0);
  kiln__error_suggest("use an older NVRTC for this device (KILN_NVRTC_LIBRARY)");
  return KILN_ERROR_UNSUPPORTED;
}

#define MAX_NVRTC_OPTIONS 32

/* The compile's options: arch_opt, then the caller's split at white space (in place,
 * in buf). false when there are more than MAX_NVRTC_OPTIONS in all. */
static bool split_options(char *buf, const char *arch_opt, const char **opts, int *nopts) {
  *nopts = 0;
  opts[(*nopts)++] = arch_opt;
  for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok;
       tok = strtok_r(NULL, " \t\n", &save)) {
    if (*nopts == MAX_NVRTC_OPTIONS)
      return false;
    opts[(*nopts)++] = tok;
  }
  return true;
}

/* nvrtcCompileProgram answered r: the log into kiln_last_build_log(), its first error
 * line into the error's message. */
static kiln_status compile_failed(kiln_nvrtcProgram prog, kiln_nvrtcResult r, const char *name,
                                  const char *arch) {
  size_t log_len = 0;
  kiln__nvrtc.nvrtcGetProgramLogSize(prog, &log_len);
  char *log = log_len ? kiln__alloc(log_len + 1) : NULL;
  char first[400] = "(no build log)";
  if (log) {
    if (kiln__nvrtc.nvrtcGetProgramLog(prog, log) != kiln_NVRTC_SUCCESS)
      log[0] = '\0';
    log[log_len] = '\0';
    kiln__set_build_log(log, strlen(log));
    kiln__first_error_line(log, "NVRTC", NULL, KILN__TARGET_CUDA, first, sizeof first);
    kiln__free(log, log_len + 1);
  } else {
    kiln__set_build_log("", 0);
  }
  kiln_status st = r == kiln_NVRTC_ERROR_COMPILATION || r == kiln_NVRTC_ERROR_INVALID_OPTION
                       ? KILN_ERROR_COMPILE_FAILED
                       : KILN_ERROR_BACKEND;
  kiln__error_native(st, KILN_BACKEND_CUDA, r, kiln__nvrtc.nvrtcGetErrorString(r),
                     "%s (NVRTC %d.%d, %s): %s", name, kiln__nvrtc.major, kiln__nvrtc.minor, arch,
                     first);
  kiln__error_suggest("read the whole log with kiln_last_build_log()");
  return st;
}

/* The compiled program's CUBIN or PTX into *image (kiln__alloc) and *image_bytes. */
static kiln_status take_image(kiln_nvrtcProgram prog, const char *name, const char *arch,
                              int want_ptx, void **image, size_t *image_bytes) {
  size_t bytes = 0;
  kiln_nvrtcResult r = want_ptx ? kiln__nvrtc.nvrtcGetPTXSize(prog, &bytes)
                                : kiln__nvrtc.nvrtcGetCUBINSize(prog, &bytes);
  void *out = r == kiln_NVRTC_SUCCESS && bytes ? kiln__alloc(bytes) : NULL;
  if (out)
    r = want_ptx ? kiln__nvrtc.nvrtcGetPTX(prog, out) : kiln__nvrtc.nvrtcGetCUBIN(prog, out);
  if (out && r == kiln_NVRTC_SUCCESS) {
    *image = out;
    *image_bytes = bytes;
    return KILN_SUCCESS;
  }
  if (out)
    kiln__free(out, bytes);
  if (r == kiln_NVRTC_SUCCESS && !bytes)
    return kiln__error(KILN_ERROR_COMPILE_FAILED,
                       "%s: NVRTC made an empty %s for %s (CUBIN needs an sm_ target, "
                       "PTX a compute_ one)",
                       name, want_ptx ? "PTX" : "CUBIN", arch);
  if (r == kiln_NVRTC_SUCCESS)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for %s's image", name);
  return kiln__error_native(KILN_ERROR_BACKEND, KILN_BACKEND_CUDA, r,
                            kiln__nvrtc.nvrtcGetErrorString(r),
                            "%s: getting the %s from NVRTC failed: %s", name,
                            want_ptx ? "PTX" : "CUBIN", kiln__nvrtc.nvrtcGetErrorString(r));
}

kiln_status kiln__cuda_compile(const char *source, size_t len, const char *name, const char *arch,
                               int want_ptx, const char *options, void **image,
                               size_t *image_bytes) {
  *image = NULL;
  *image_bytes = 0;
  kiln_status st = kiln__nvrtc_load();
  if (st != KILN_SUCCESS)
    return st;
  /* One block: the source NUL-terminated, then the caller's options to split. */
  size_t opt_len = options ? strlen(options) : 0, text_bytes = len + 1 + opt_len + 1;
  char *text = kiln__alloc(text_bytes);
  if (!text)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory compiling %s", name);
  memcpy(text, source, len);
  text[len] = '\0';
  char *ob = text + len + 1;
  if (opt_len)
    memcpy(ob, options, opt_len);
  ob[opt_len] = '\0';
  char arch_opt[64];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
  const char *opts[MAX_NVRTC_OPTIONS];
  int nopts = 0;
  if (!split_options(ob, arch_opt, opts, &nopts)) {
    kiln__free(text, text_bytes);
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "%s: more than %d compiler options", name,
                       MAX_NVRTC_OPTIONS - 1);
  }
  kiln_nvrtcProgram prog = NULL;
  kiln_nvrtcResult r = kiln__nvrtc.nvrtcCreateProgram(&prog, text, name, 0, NULL, NULL);
  if (r != kiln_NVRTC_SUCCESS) {
    kiln__free(text, text_bytes);
    return kiln__error_native(
        r == kiln_NVRTC_ERROR_OUT_OF_MEMORY ? KILN_ERROR_OUT_OF_HOST_MEMORY : KILN_ERROR_BACKEND,
        KILN_BACKEND_CUDA, r, kiln__nvrtc.nvrtcGetErrorString(r),
        "nvrtcCreateProgram for %s failed: %s", name, kiln__nvrtc.nvrtcGetErrorString(r));
  }
  uint64_t t0 = kiln__now_ns();
  r = kiln__nvrtc.nvrtcCompileProgram(prog, nopts, opts);
  double ms = (double)(kiln__now_ns() - t0) / 1e6;
  st = r == kiln_NVRTC_SUCCESS ? take_image(prog, name, arch, want_ptx, image, image_bytes)
                               : compile_failed(prog, r, name, arch);
  kiln__nvrtc.nvrtcDestroyProgram(&prog);
  kiln__free(text, text_bytes);
  if (st == KILN_SUCCESS)
    kiln__log(KILN_LOG_DEBUG, "cuda: NVRTC %d.%d compiled %s for %s in %.1f ms (%zu bytes of %s)",
              kiln__nvrtc.major, kiln__nvrtc.minor, name, arch, ms, *image_bytes,
              want_ptx ? "PTX" : "CUBIN");
  return st;
}

void kiln__cuda_image_free(void *image, size_t image_bytes) {
  if (image)
    kiln__free(image, image_bytes);
}

/* ------------------------------------------------------------- modules, programs */
static kiln_status load_module(kiln__program *p, const void *image, kiln_CUmodule *mod) {
  /* The JIT's logs (PTX only; a CUBIN loads without them): errors into the build log
   * on failure, information (spills, registers) at debug level. */
  char log[4096] = "", info[2048] = "";
  kiln_CUjit_option opts[4] = {kiln_CU_JIT_ERROR_LOG_BUFFER,
                               kiln_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, kiln_CU_JIT_INFO_LOG_BUFFER,
                               kiln_CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *vals[4] = {log, (void *)(uintptr_t)sizeof log, info, (void *)(uintptr_t)sizeof info};
  kiln_CUresult r = kiln__cu_push(p->h.ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuModuleLoadDataEx(mod, image, 4, opts, vals);
    kiln__cu_pop();
  }
  info[sizeof info - 1] = '\0';
  if (info[0] && kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG, "cuda: program '%s': JIT: %s", p->name, info);
  if (r == kiln_CUDA_SUCCESS) {
    kiln__cu_count(KILN__CUO_MODULE, 1);
    return KILN_SUCCESS;
  }
  log[sizeof log - 1] = '\0';
  if (log[0])
    kiln__set_build_log(log, strlen(log));
  char what[128];
  snprintf(what, sizeof what, "cuModuleLoadDataEx of program '%s'", p->name);
  return kiln__cu_fail_device(p->h.ctx->device, r, what);
}

/* Wrap a loaded module as the program's (p->native), keeping its image (taken over:
 * freed with the program) for program_export. On failure the module is unloaded and
 * the image freed. */
static kiln_status wrap_module(kiln__program *p, kiln_CUmodule mod, void *image, size_t image_bytes,
                               int image_ptx, int picked_ptx) {
  cu_module *m = kiln__calloc(1, sizeof *m);
  if (!m) {
    if (kiln__cu_push(p->h.ctx->native) == kiln_CUDA_SUCCESS) {
      kiln__cu.cuModuleUnload(mod);
      kiln__cu_pop();
    }
    kiln__cu_count(KILN__CUO_MODULE, -1);
    kiln__cuda_image_free(image, image_bytes);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory loading program '%s'",
                       p->name);
  }
  m->mod = mod;
  m->ctx = p->h.ctx->native;
  m->image = image;
  m->image_bytes = image_bytes;
  m->image_ptx = image_ptx;
  m->picked_ptx = picked_ptx;
  atomic_store(&m->refs, 1); /* the program's */
  p->native = m;
  return KILN_SUCCESS;
}

kiln_status kiln__cu_program_build(kiln__program *p, const char *src, size_t bytes,
                                   const char *options) {
  const cu_device *cd = kiln__cu_dev(p->h.ctx->device);
  char arch[32];
  int want_ptx = 0;
  kiln_status st = kiln__cuda_pick_arch(cd->cc_major, cd->cc_minor, arch, sizeof arch, &want_ptx);
  if (st != KILN_SUCCESS)
    return st;
  int picked_ptx = want_ptx;
  void *image = NULL;
  size_t image_bytes = 0;
  st = kiln__cuda_compile(src, bytes, p->name, arch, want_ptx, options, &image, &image_bytes);
  if (st != KILN_SUCCESS)
    return st;
  kiln_CUmodule mod = NULL;
  st = load_module(p, image, &mod);
  if (st != KILN_SUCCESS && !want_ptx &&
      kiln_last_error()->native_code == kiln_CUDA_ERROR_NO_BINARY_FOR_GPU) {
    /* the CUBIN does not fit the device after all: PTX, JIT-compiled by the driver */
    kiln__cuda_image_free(image, image_bytes);
    image = NULL;
    snprintf(arch, sizeof arch, "compute_%d%d", cd->cc_major, cd->cc_minor);
    kiln__log(KILN_LOG_INFO, "cuda: program '%s': the CUBIN was refused, loading PTX for %s",
              p->name, arch);
    want_ptx = 1;
    st = kiln__cuda_compile(src, bytes, p->name, arch, 1, options, &image, &image_bytes);
    if (st != KILN_SUCCESS)
      return st;
    st = load_module(p, image, &mod);
  }
  if (st != KILN_SUCCESS) {
    kiln__cuda_image_free(image, image_bytes);
    return st;
  }
  return wrap_module(p, mod, image, image_bytes, want_ptx, picked_ptx);
}

/* ------------------------------------------------------------- the compile cache */
/* A cached binary: one byte 'C' (CUBIN) or 'P' (PTX, NUL-terminated), then the image. */
kiln_status kiln__cu_program_cache_id(kiln__program *p, const char *options, char *out,
                                      size_t out_bytes) {
  (void)options;
  const cu_device *cd = kiln__cu_dev(p->h.ctx->device);
  char arch[32];
  int want_ptx = 0;
  kiln_status st = kiln__cuda_pick_arch(cd->cc_major, cd->cc_minor, arch, sizeof arch, &want_ptx);
  if (st != KILN_SUCCESS)
    return st;
  /* PTX is JIT-compiled by the driver at load: its version is part of what loads. */
  char driver[32] = "";
  if (want_ptx)
    snprintf(driver, sizeof driver, " driver=%d", kiln__cu.driver_version);
  int n =
      snprintf(out, out_bytes, "cuda cc=%d.%d image=%s nvrtc=%d.%d flags=--gpu-architecture=%s%s",
               cd->cc_major, cd->cc_minor, want_ptx ? "ptx" : "cubin", kiln__nvrtc.major,
               kiln__nvrtc.minor, arch, driver);
  if (n < 0 || (size_t)n >= out_bytes)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "the CUDA device's cache id is too long");
  return KILN_SUCCESS;
}

kiln_status kiln__cu_program_export(kiln__program *p, void **binary, size_t *bytes) {
  const cu_module *m = p->native;
  if (!m->image || m->image_ptx != m->picked_ptx) /* a fallback to PTX: the key says CUBIN */
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "program '%s' was loaded as PTX after its CUBIN was refused: not cached",
                       p->name);
  unsigned char *b = kiln__alloc(m->image_bytes + 1);
  if (!b)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for program '%s''s image",
                       p->name);
  b[0] = m->image_ptx ? 'P' : 'C';
  memcpy(b + 1, m->image, m->image_bytes);
  *binary = b;
  *bytes = m->image_bytes + 1;
  return KILN_SUCCESS;
}

kiln_status kiln__cu_program_import(kiln__program *p, const void *binary, size_t bytes,
                                    const char *options) {
  (void)options;
  const unsigned char *b = binary;
  int ptx = bytes > 1 && b[0] == 'P';
  if (bytes < 2 || (b[0] != 'P' && b[0] != 'C') || (ptx && b[bytes - 1] != '\0'))
    return kiln__error_native(KILN_ERROR_BACKEND, KILN_BACKEND_CUDA, 0, "KILN_INVALID_IMAGE",
                              "program '%s': the cached image is neither a CUBIN nor a "
                              "terminated PTX",
                              p->name);
  void *image = kiln__alloc(bytes - 1);
  if (!image)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for program '%s''s image",
                       p->name);
  memcpy(image, b + 1, bytes - 1);
  kiln_CUmodule mod = NULL;
  kiln_status st = load_module(p, image, &mod);
  if (st != KILN_SUCCESS) {
    kiln__free(image, bytes - 1);
    return st;
  }
  return wrap_module(p, mod, image, bytes - 1, ptx, ptx);
}

void kiln__cu_module_unref(cu_module *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
    return;
  if (kiln__cu_push(m->ctx) == kiln_CUDA_SUCCESS) {
    kiln__cu.cuModuleUnload(m->mod);
    kiln__cu_pop();
  }
  kiln__cu_count(KILN__CUO_MODULE, -1);
  kiln__cuda_image_free(m->image, m->image_bytes);
  kiln__free(m, sizeof *m);
}

kiln_status kiln__cu_program_share(kiln__program *p, kiln__program *from) {
  cu_module *m = from->native;
  atomic_fetch_add(&m->refs, 1);
  p->native = m;
  return KILN_SUCCESS;
}

void kiln__cu_program_destroy(kiln__program *p) {
  kiln__cu_module_unref(p->native);
  p->native = NULL;
}
