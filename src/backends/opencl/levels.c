/* SPDX-License-Identifier: MIT */
/* Feature levels on OpenCL (the level_check op; docs/kernels.md "Feature levels"): the
 * scoped-atomics level is OpenCL C 3.0's atomics and fences with memory orders and the
 * work-group and device scopes, so the device must list OpenCL C 3.0 among its
 * versions (CL_DEVICE_OPENCL_C_ALL_VERSIONS) and have the orders relaxed, acq_rel and
 * seq_cst and both scopes in its atomic memory and fence capabilities. Programs that
 * declare it are compiled with -cl-std=CL3.0 and -DKILN__LEVEL_SCOPED_ATOMICS (which
 * turns the level's part of the prelude on). Any thread. */
#include <stdio.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"

/* OpenCL 3.0 names (cl_api.h targets 1.2, so cl.h hides them); values from the spec */
#define KILN__CL_DEVICE_ATOMIC_MEMORY_CAPABILITIES 0x1063
#define KILN__CL_DEVICE_ATOMIC_FENCE_CAPABILITIES 0x1064
#define KILN__CL_DEVICE_OPENCL_C_ALL_VERSIONS 0x1066
#define KILN__CL_NAME_VERSION_BYTES (4 + 64) /* cl_name_version: cl_version, name[64] */

static const struct {
  cl_bitfield bit;
  const char *name;
} needed_caps[] = {
    {1u << 0, "CL_DEVICE_ATOMIC_ORDER_RELAXED"}, {1u << 1, "CL_DEVICE_ATOMIC_ORDER_ACQ_REL"},
    {1u << 2, "CL_DEVICE_ATOMIC_ORDER_SEQ_CST"}, {1u << 4, "CL_DEVICE_ATOMIC_SCOPE_WORK_GROUP"},
    {1u << 5, "CL_DEVICE_ATOMIC_SCOPE_DEVICE"},
};

bool kiln__ocl_level_missing(bool has_c30, cl_bitfield memory_caps, cl_bitfield fence_caps,
                             char *why, size_t why_bytes) {
  if (!has_c30) {
    snprintf(why, why_bytes,
             "OpenCL C 3.0 (CL_DEVICE_OPENCL_C_ALL_VERSIONS does not list it; OpenCL C 1.2 "
             "has no memory orders or scopes)");
    return true;
  }
  for (int pass = 0; pass < 2; pass++) {
    cl_bitfield caps = pass ? fence_caps : memory_caps;
    for (size_t i = 0; i < sizeof needed_caps / sizeof needed_caps[0]; i++)
      if (!(caps & needed_caps[i].bit)) {
        snprintf(why, why_bytes, "%s in %s (the device reports 0x%llx)", needed_caps[i].name,
                 pass ? "CL_DEVICE_ATOMIC_FENCE_CAPABILITIES"
                      : "CL_DEVICE_ATOMIC_MEMORY_CAPABILITIES",
                 (unsigned long long)caps);
        return true;
      }
  }
  return false;
}

static bool lists_c30(cl_device_id d) {
  unsigned char buf[32 * KILN__CL_NAME_VERSION_BYTES];
  size_t got = 0;
  if (kiln__cl.clGetDeviceInfo(d, KILN__CL_DEVICE_OPENCL_C_ALL_VERSIONS, sizeof buf, buf, &got) !=
      CL_SUCCESS)
    return false; /* an OpenCL 1.x/2.x device: the query does not exist there */
  for (size_t at = 0; at + KILN__CL_NAME_VERSION_BYTES <= got && at < sizeof buf;
       at += KILN__CL_NAME_VERSION_BYTES) {
    cl_uint version;
    memcpy(&version, buf + at, sizeof version);
    if ((version >> 22) >= 3) /* CL_VERSION_MAJOR: the top 10 bits */
      return true;
  }
  return false;
}

kiln_status kiln__ocl_level_check(const kiln__device *device, kiln__level level,
                                  const char **options) {
  *options = "";
  cl_device_id d = kiln__ocl_dev_id(device);
  cl_bitfield mem = 0, fence = 0;
  bool c30 = lists_c30(d);
  if (c30 && (kiln__cl.clGetDeviceInfo(d, KILN__CL_DEVICE_ATOMIC_MEMORY_CAPABILITIES, sizeof mem,
                                       &mem, NULL) != CL_SUCCESS ||
              kiln__cl.clGetDeviceInfo(d, KILN__CL_DEVICE_ATOMIC_FENCE_CAPABILITIES, sizeof fence,
                                       &fence, NULL) != CL_SUCCESS))
    mem = fence = 0;
  char why[192];
  if (level == KILN__LEVEL_SCOPED_ATOMICS &&
      !kiln__ocl_level_missing(c30, mem, fence, why, sizeof why)) {
    *options = "-cl-std=CL3.0 -DKILN__LEVEL_SCOPED_ATOMICS";
    return KILN_SUCCESS;
  }
  if (level != KILN__LEVEL_SCOPED_ATOMICS)
    snprintf(why, sizeof why, "a level kiln does not know on OpenCL");
  return kiln__error(KILN_ERROR_UNSUPPORTED,
                     "the feature level 'scoped_atomics' needs what OpenCL device '%s' lacks: %s",
                     device->props.name, why);
}
