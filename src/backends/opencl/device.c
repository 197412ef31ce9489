/* SPDX-License-Identifier: MIT */
/* Devices and contexts: probe finds every device of every OpenCL platform, in platform
 * order (at most MAX_CL_DEVICES), and registers it with the limits the core validates
 * against; a device's record (platform, cl_device_id) lives for the process. One
 * cl_context per kiln context, on its device's platform. Called through the ops table
 * only; probe once, under the registry's once-guard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"

#define MAX_CL_DEVICES 32

static kiln__ocl_device ocl_devices[MAX_CL_DEVICES];

/* A string property, cut to fit `out` (the query itself refuses a short buffer). */
static void info_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  char buf[1024];
  if (kiln__cl.clGetDeviceInfo(d, what, sizeof buf, buf, NULL) != CL_SUCCESS)
    buf[0] = '\0';
  buf[sizeof buf - 1] = '\0';
  kiln__strlcpy(out, buf, n);
}

/* PoCL (any of its drivers) names its platform this way. */
static bool platform_is_pocl(cl_platform_id p) {
  char name[256];
  if (kiln__cl.clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof name, name, NULL) != CL_SUCCESS)
    return false;
  name[sizeof name - 1] = '\0';
  return strstr(name, "Portable Computing Language") != NULL;
}

/* The properties of device `d`: its names and kind, and the limits the core validates
 * against. A query the driver refuses leaves the default of KILN_DEVICE_PROPS_INIT. */
static void read_props(cl_device_id d, kiln_device_props *pr) {
  cl_device_type type = 0;
  cl_ulong u64 = 0;
  cl_uint u32 = 0;
  size_t sz = 0;
  info_str(d, CL_DEVICE_NAME, pr->name, sizeof pr->name);
  info_str(d, CL_DEVICE_VENDOR, pr->vendor, sizeof pr->vendor);
  info_str(d, CL_DEVICE_VERSION, pr->arch, sizeof pr->arch);
  kiln__cl.clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  pr->kind = (type & CL_DEVICE_TYPE_GPU)           ? KILN_DEVICE_KIND_GPU
             : (type & CL_DEVICE_TYPE_CPU)         ? KILN_DEVICE_KIND_CPU
             : (type & CL_DEVICE_TYPE_ACCELERATOR) ? KILN_DEVICE_KIND_ACCELERATOR
                                                   : KILN_DEVICE_KIND_OTHER;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS)
    pr->global_mem_bytes = u64;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u64, &u64, NULL) ==
      CL_SUCCESS)
    pr->max_alloc_bytes = u64;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u32, &u32, NULL) ==
      CL_SUCCESS)
    pr->compute_units = u32;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u32, &u32, NULL) ==
      CL_SUCCESS)
    pr->clock_mhz = u32;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) ==
      CL_SUCCESS)
    pr->max_work_group_size = sz;
  size_t items[3] = {1, 1, 1};
  kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL);
  for (int k = 0; k < 3; k++) {
    pr->max_work_item_sizes[k] = items[k];
    pr->max_global_size[k] = SIZE_MAX / 2;
  }
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS)
    pr->local_mem_bytes = u64;
  if (kiln__cl.clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof u32, &u32, NULL) ==
      CL_SUCCESS)
    pr->mem_align_bytes = u32 / 8u;
  /* NVIDIA: CL_DEVICE_PCI_BUS_ID_NV, _SLOT_ID_NV (the device number, as CUDA's
   * PCI_DEVICE_ID) and _DOMAIN_ID_NV, so the same GPU reads the same through CUDA. */
  cl_uint bus = 0, slot = 0, domain = 0;
  if (kiln__cl.clGetDeviceInfo(d, 0x4008, sizeof bus, &bus, NULL) == CL_SUCCESS &&
      kiln__cl.clGetDeviceInfo(d, 0x4009, sizeof slot, &slot, NULL) == CL_SUCCESS) {
    if (kiln__cl.clGetDeviceInfo(d, 0x400A, sizeof domain, &domain, NULL) != CL_SUCCESS)
      domain = 0;
    snprintf(pr->pci_bus_id, sizeof pr->pci_bus_id, "%04x:%02x:%02x.0", domain, bus, slot);
  }
}

kiln_status kiln__ocl_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  kiln__ocl_read_settings();
  /* PoCL compiles a work-group function per local size at a kernel's first launch and
   * keeps it only in its own cache (POCL_CACHE_DIR, else ~/.cache/pocl): unless the
   * program chose that folder, it goes under kiln's cache directory, so it lives,
   * is shared and is cleared with kiln's entries (docs/cache.md). Before the ICD
   * loads PoCL, which reads it once. Other runtimes ignore the variable. */
  char pocl_dir[4096];
  if (!getenv("POCL_CACHE_DIR") && kiln__kcache_runtime_dir("pocl", pocl_dir, sizeof pocl_dir)) {
    setenv("POCL_CACHE_DIR", pocl_dir, 0);
    kiln__log(KILN_LOG_DEBUG, "opencl: POCL_CACHE_DIR=%s (kiln's cache directory)", pocl_dir);
  }
  kiln_status st = kiln__cl_load(reason, reason_bytes);
  if (st != KILN_SUCCESS)
    return st;
  cl_uint nplat = 0;
  cl_int err = kiln__cl.clGetPlatformIDs(0, NULL, &nplat);
  if (err != CL_SUCCESS || nplat == 0) {
    snprintf(reason, reason_bytes, "no OpenCL platform: clGetPlatformIDs returned %s (%d)",
             err == CL_SUCCESS ? "0 platforms" : kiln__cl_error_name(err), (int)err);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  cl_platform_id plats[16];
  if (nplat > 16)
    nplat = 16;
  kiln__cl.clGetPlatformIDs(nplat, plats, NULL);
  unsigned added = 0;
  for (cl_uint p = 0; p < nplat; p++) {
    cl_uint ndev = 0;
    if (kiln__cl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev) != CL_SUCCESS)
      continue;
    cl_device_id ids[16];
    if (ndev > 16)
      ndev = 16;
    kiln__cl.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, ids, NULL);
    for (cl_uint i = 0; i < ndev && added < MAX_CL_DEVICES; i++) {
      cl_device_id d = ids[i];
      kiln_device_props pr = KILN_DEVICE_PROPS_INIT;
      read_props(d, &pr);
      ocl_devices[added].platform = plats[p];
      ocl_devices[added].events_always =
          kiln__ocl_events == 1 || (kiln__ocl_events < 0 && platform_is_pocl(plats[p]));
      ocl_devices[added].id = d;
      char ext[4096];
      info_str(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
      ocl_devices[added].create_queue_props = NULL;
      if (strstr(ext, "cl_khr_priority_hints") && strstr(ext, "cl_khr_create_command_queue")) {
        void *fn = kiln__cl.clGetExtensionFunctionAddressForPlatform(
            plats[p], "clCreateCommandQueueWithPropertiesKHR");
        *(void **)&ocl_devices[added].create_queue_props = fn;
        if (fn) { /* high, medium (normal), low */
          pr.priority_max = 1;
          pr.priority_min = -1;
        }
      }
      if (kiln__registry_add_device(self, &pr, &ocl_devices[added], NULL) == KILN_SUCCESS)
        added++;
    }
  }
  if (!added) {
    snprintf(reason, reason_bytes, "the OpenCL platforms (%u) expose no device", (unsigned)nplat);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
  *total_bytes = d->props.global_mem_bytes;
  /* OpenCL 1.2 has no portable query: an estimate, the global size minus kiln's live
   * buffers on the device (other processes' and the runtime's own use unseen). */
  kiln__ocl_device *dd = d->native;
  uint64_t live = atomic_load(&dd->live_bytes);
  *free_bytes = live < d->props.global_mem_bytes ? d->props.global_mem_bytes - live : 0;
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_context_create(kiln__context *ctx) {
  kiln__ocl_device *dd = ctx->device->native;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dd->platform, 0};
  cl_int err = CL_SUCCESS;
  cl_context c = kiln__cl.clCreateContext(props, 1, &dd->id, NULL, NULL, &err);
  if (!c)
    return kiln__cl_fail(err, "clCreateContext");
  kiln__cl_count(KILN__CLO_CONTEXT, 1);
  ctx->native = c;
  return KILN_SUCCESS;
}

void kiln__ocl_context_destroy(kiln__context *ctx) {
  if (ctx->native) {
    kiln__cl.clReleaseContext(ctx->native);
    kiln__cl_count(KILN__CLO_CONTEXT, -1);
  }
  ctx->native = NULL;
}
