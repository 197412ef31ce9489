/* SPDX-License-Identifier: MIT */
/* The compile cache's ops for OpenCL: what a program binary depends on (platform,
 * device, driver and their versions — PoCL names the host CPU in its device name; the
 * core adds the CPU's features for CPU devices), the binary of a built program
 * (CL_PROGRAM_BINARIES, one device), and a program made from such a binary
 * (clCreateProgramWithBinary + clBuildProgram with the same options), and a second
 * kiln program of the same key sharing a live one's cl_program (clRetainProgram). Called through
 * the ops table only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"

static void platform_str(cl_platform_id pl, cl_platform_info what, char *out, size_t n) {
  if (kiln__cl.clGetPlatformInfo(pl, what, n, out, NULL) != CL_SUCCESS)
    out[0] = '\0';
  out[n - 1] = '\0';
}

static void device_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  if (kiln__cl.clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS)
    out[0] = '\0';
  out[n - 1] = '\0';
}

kiln_status kiln__ocl_program_cache_id(kiln__program *p, const char *options, char *out,
                                       size_t out_bytes) {
  (void)options; /* kiln adds no flags of its own to the caller's */
  const kiln__ocl_device *od = p->h.ctx->device->native;
  char pname[128], pver[128], dname[256], dver[128], drv[128], vendor[128];
  platform_str(od->platform, CL_PLATFORM_NAME, pname, sizeof pname);
  platform_str(od->platform, CL_PLATFORM_VERSION, pver, sizeof pver);
  device_str(od->id, CL_DEVICE_NAME, dname, sizeof dname);
  device_str(od->id, CL_DEVICE_VERSION, dver, sizeof dver);
  device_str(od->id, CL_DRIVER_VERSION, drv, sizeof drv);
  device_str(od->id, CL_DEVICE_VENDOR, vendor, sizeof vendor);
  cl_device_type type = 0;
  kiln__cl.clGetDeviceInfo(od->id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  int n = snprintf(out, out_bytes,
                   "opencl platform='%s' '%s' device='%s' '%s' vendor='%s' driver='%s' type=%llu",
                   pname, pver, dname, dver, vendor, drv, (unsigned long long)type);
  if (n < 0 || (size_t)n >= out_bytes)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "the OpenCL device's cache id is too long");
  return KILN_SUCCESS;
}

/* PoCL serialises a program binary from the files of its own cache folder, and aborts
 * (an assert, in clBuildProgram) on a binary whose program.bc is empty — what it writes
 * when another process was still creating that file (PoCL 3.1 checks whether a file
 * exists before writing it, with no lock). kiln's build lock keeps its own processes
 * apart; this check keeps such a binary out of the cache and away from PoCL even so.
 * NULL when the binary is not PoCL's or looks whole; else why not. */
static const char *pocl_binary_problem(const unsigned char *b, size_t n) {
  static const char magic[] = "poclbin"; /* with its NUL: 8 bytes */
  static const char bc[] = "/program.bc";
  const size_t bc_len = sizeof bc - 1;
  if (n < sizeof magic || memcmp(b, magic, sizeof magic) != 0)
    return NULL;
  size_t limit = n < 4096 ? n : 4096; /* the header and the path come first */
  for (size_t i = sizeof magic + 4; i + bc_len + 4 <= limit; i++) {
    if (memcmp(b + i, bc, bc_len) != 0)
      continue;
    uint32_t path_len, content_len;
    memcpy(&path_len, b + i - 4, 4);
    if (path_len != bc_len) /* not the length-prefixed path */
      continue;
    memcpy(&content_len, b + i + bc_len, 4);
    if (content_len == 0)
      return "PoCL serialised an empty program.bc (another process was writing PoCL's cache "
             "folder for the same program)";
    if (content_len > n - (i + bc_len + 4))
      return "its program.bc runs past the end of the binary";
    return NULL;
  }
  return NULL; /* another layout (another PoCL version): not judged */
}

kiln_status kiln__ocl_program_export(kiln__program *p, void **binary, size_t *bytes) {
  cl_program prog = p->native;
  cl_uint ndev = 0;
  cl_int err = kiln__cl.clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL);
  if (err != CL_SUCCESS)
    return kiln__cl_fail(err, "clGetProgramInfo(CL_PROGRAM_NUM_DEVICES)");
  if (ndev != 1)
    return kiln__error(KILN_ERROR_UNSUPPORTED, "program '%s' is built for %u devices, not one",
                       p->name, ndev);
  size_t size = 0;
  err = kiln__cl.clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
  if (err != CL_SUCCESS)
    return kiln__cl_fail(err, "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)");
  if (size == 0)
    return kiln__error(KILN_ERROR_UNSUPPORTED,
                       "the OpenCL runtime gives no binary for program '%s'", p->name);
  unsigned char *buf = kiln__alloc(size);
  if (!buf)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory for program '%s''s %zu-byte binary", p->name, size);
  unsigned char *ptrs[1] = {buf};
  err = kiln__cl.clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL);
  if (err != CL_SUCCESS) {
    kiln__free(buf, size);
    return kiln__cl_fail(err, "clGetProgramInfo(CL_PROGRAM_BINARIES)");
  }
  const char *why = pocl_binary_problem(buf, size);
  if (why) {
    kiln__free(buf, size);
    return kiln__error(KILN_ERROR_BACKEND, "program '%s''s %zu-byte binary is unusable: %s",
                       p->name, size, why);
  }
  *binary = buf;
  *bytes = size;
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_program_import(kiln__program *p, const void *binary, size_t bytes,
                                     const char *options) {
  const char *why = pocl_binary_problem(binary, bytes);
  if (why) /* PoCL would abort on it */
    return kiln__error(KILN_ERROR_BACKEND, "program '%s''s %zu-byte cached binary is unusable: %s",
                       p->name, bytes, why);
  cl_device_id dev = kiln__ocl_dev_id(p->h.ctx->device);
  const unsigned char *bins[1] = {binary};
  size_t lens[1] = {bytes};
  cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
  cl_program prog =
      kiln__cl.clCreateProgramWithBinary(p->h.ctx->native, 1, &dev, lens, bins, &bin_status, &err);
  if (!prog)
    return kiln__cl_fail(err != CL_SUCCESS ? err : bin_status, "clCreateProgramWithBinary");
  kiln__cl_count(KILN__CLO_PROGRAM, 1);
  err = kiln__cl.clBuildProgram(prog, 1, &dev, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    kiln__cl.clReleaseProgram(prog);
    kiln__cl_count(KILN__CLO_PROGRAM, -1);
    return kiln__error_native(
        KILN_ERROR_BACKEND, KILN_BACKEND_OPENCL, err, kiln__cl_error_name(err),
        "clBuildProgram of program '%s' from its cached binary failed", p->name);
  }
  p->native = prog;
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_program_share(kiln__program *p, kiln__program *from) {
  cl_int err = kiln__cl.clRetainProgram(from->native);
  if (err != CL_SUCCESS)
    return kiln__cl_fail(err, "clRetainProgram");
  kiln__cl_count(KILN__CLO_PROGRAM, 1);
  p->native = from->native;
  return KILN_SUCCESS;
}
