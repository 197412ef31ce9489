/* SPDX-License-Identifier: MIT */
/* CUDA devices and contexts: the probe (load the driver, describe each device to the
 * registry), memory info, one retained primary context per kiln context, the reset
 * after a loss, and kiln__cu_fail_device, through which every failed driver call of the
 * backend marks its device lost when the error is sticky. cu_devices[] is written once,
 * by the probe (single-threaded, the registry's once-guard), and only read after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

static cu_device cu_devices[KILN__CU_MAX_DEVICES]; /* process lifetime, like the devices */

kiln_status kiln__cu_fail_device(kiln__device *d, kiln_CUresult r, const char *what) {
  kiln_status st = kiln__cu_fail(r, what);
  if (d && kiln__cu_is_sticky(r)) {
    char why[160];
    snprintf(why, sizeof why, "%s: %s (%d)", what, kiln__cu_error_name(r), (int)r);
    kiln__device_mark_lost(d, why);
  }
  return st;
}

kiln_status kiln__cuda_device_info(unsigned index, int *cc_major, int *cc_minor,
                                   int *smem_optin_bytes, int *driver_version) {
  kiln_device d = NULL;
  kiln_status st = kiln_device_find(KILN_BACKEND_CUDA, index, &d);
  if (st != KILN_SUCCESS)
    return st;
  const cu_device *cd = kiln__cu_dev(KILN__VIEW(kiln__device, d));
  *cc_major = cd->cc_major;
  *cc_minor = cd->cc_minor;
  *smem_optin_bytes = cd->smem_optin_bytes;
  *driver_version = kiln__cu.driver_version;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- probe */
/* The attributes every device must answer; describe() reads them by position. */
static const struct {
  kiln_CUdevice_attribute attr;
  const char *name;
} want[] = {
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, "MAX_BLOCK_DIM_X"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, "MAX_BLOCK_DIM_Y"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, "MAX_BLOCK_DIM_Z"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "MAX_GRID_DIM_X"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "MAX_GRID_DIM_Y"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "MAX_GRID_DIM_Z"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, "MAX_SHARED_MEMORY_PER_BLOCK"},
    {kiln_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
     "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"},
    {kiln_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "MULTIPROCESSOR_COUNT"},
    {kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "COMPUTE_CAPABILITY_MAJOR"},
    {kiln_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "COMPUTE_CAPABILITY_MINOR"},
    {kiln_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, "PCI_DOMAIN_ID"},
    {kiln_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, "PCI_BUS_ID"},
    {kiln_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, "PCI_DEVICE_ID"},
};
#define WANT_COUNT (sizeof want / sizeof want[0])

/* The driver's answers for device `ordinal`: its handle, the attributes of want[] into
 * v, its name and memory. On failure *what names the call. */
static kiln_CUresult query(int ordinal, cu_device *cd, int *v, kiln_device_props *pr, size_t *total,
                           const char **what) {
  *what = "cuDeviceGet";
  kiln_CUresult r = kiln__cu.cuDeviceGet(&cd->dev, ordinal);
  for (size_t a = 0; r == kiln_CUDA_SUCCESS && a < WANT_COUNT; a++) {
    *what = want[a].name;
    r = kiln__cu.cuDeviceGetAttribute(&v[a], want[a].attr, cd->dev);
  }
  if (r == kiln_CUDA_SUCCESS) {
    *what = "cuDeviceGetName";
    r = kiln__cu.cuDeviceGetName(pr->name, (int)sizeof pr->name, cd->dev);
  }
  if (r == kiln_CUDA_SUCCESS) {
    *what = "cuDeviceTotalMem";
    r = kiln__cu.cuDeviceTotalMem(total, cd->dev);
  }
  return r;
}

/* The limits the core validates against, and what the backend keeps of its own. */
static void describe(cu_device *cd, const int *v, size_t total, kiln_device_props *pr) {
  pr->name[sizeof pr->name - 1] = '\0';
  kiln__strlcpy(pr->vendor, "NVIDIA", sizeof pr->vendor);
  pr->kind = KILN_DEVICE_KIND_GPU;
  pr->global_mem_bytes = total;
  pr->max_alloc_bytes = total;
  pr->max_work_group_size = (size_t)v[0];
  for (int d = 0; d < 3; d++) {
    pr->max_work_item_sizes[d] = (size_t)v[1 + d];
    cd->grid_max[d] = (unsigned)v[4 + d];
    pr->max_global_size[d] = (size_t)v[4 + d] * (size_t)v[1 + d];
  }
  cd->smem_bytes = v[7];
  cd->smem_optin_bytes = v[8] > v[7] ? v[8] : v[7];
  pr->local_mem_bytes = (uint64_t)cd->smem_optin_bytes;
  pr->compute_units = (unsigned)v[9];
  cd->cc_major = v[10];
  cd->cc_minor = v[11];
  pr->mem_align_bytes = 256; /* cuMemAlloc's guarantee */
  snprintf(pr->pci_bus_id, sizeof pr->pci_bus_id, "%04x:%02x:%02x.0", (unsigned)v[12] & 0xffffu,
           (unsigned)v[13] & 0xffu, (unsigned)v[14] & 0x1fu);
  snprintf(pr->arch, sizeof pr->arch, "sm_%d%d", cd->cc_major, cd->cc_minor);
}

/* Informational properties: a driver without them (or the fake) leaves 0. */
static void describe_more(const cu_device *cd, kiln_device_props *pr) {
  int clk = 0, mclk = 0, bus = 0;
  if (kiln__cu.cuDeviceGetAttribute(&clk, kiln_CU_DEVICE_ATTRIBUTE_CLOCK_RATE, cd->dev) ==
          kiln_CUDA_SUCCESS &&
      clk > 0)
    pr->clock_mhz = (unsigned)clk / 1000u;
  if (kiln__cu.cuDeviceGetAttribute(&mclk, kiln_CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, cd->dev) ==
          kiln_CUDA_SUCCESS &&
      mclk > 0)
    pr->memory_clock_mhz = (unsigned)mclk / 1000u;
  if (kiln__cu.cuDeviceGetAttribute(&bus, kiln_CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
                                    cd->dev) == kiln_CUDA_SUCCESS &&
      bus > 0)
    pr->memory_bus_width_bits = (unsigned)bus;
  int engines = 0;
  if (kiln__cu.cuDeviceGetAttribute(&engines, kiln_CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT,
                                    cd->dev) == kiln_CUDA_SUCCESS &&
      engines > 0)
    pr->copy_engines = (unsigned)engines;
  /* Stream priorities: current GPUs have 6 levels (0..-5); the exact range is the
   * context's (cuCtxGetStreamPriorityRange), which stream creation clamps into. */
  pr->priority_max = 5;
  pr->driver_version = kiln__cu.driver_version > 0 ? (unsigned)kiln__cu.driver_version : 0u;
}

/* Device `ordinal` into cd and pr, to be listed as cuda:`index`. false (with a warning,
 * and why in last) when one of its queries fails: it is left out. */
static bool device_props(int ordinal, unsigned index, cu_device *cd, kiln_device_props *pr,
                         char *last, size_t last_bytes) {
  int v[WANT_COUNT];
  size_t total = 0;
  const char *what = NULL;
  kiln_CUresult r = query(ordinal, cd, v, pr, &total, &what);
  if (r != kiln_CUDA_SUCCESS) {
    snprintf(last, last_bytes, "CUDA device %d: %s failed: %s (%d)", ordinal, what,
             kiln__cu_error_name(r), (int)r);
    kiln__log(KILN_LOG_WARN, "cuda: %s; the device is left out", last);
    return false;
  }
  describe(cd, v, total, pr);
  kiln__log(
      KILN_LOG_INFO,
      "cuda:%u %s: sm_%d%d, %u SMs, %zu bytes, shared memory %d (opt-in %d), PCI %s, driver %d",
      index, pr->name, cd->cc_major, cd->cc_minor, pr->compute_units, total, cd->smem_bytes,
      cd->smem_optin_bytes, pr->pci_bus_id, kiln__cu.driver_version);
  describe_more(cd, pr);
  return true;
}

kiln_status kiln__cu_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  kiln_status st = kiln__cu_load(reason, reason_bytes);
  if (st != KILN_SUCCESS)
    return st;
  int n = 0;
  kiln_CUresult r = kiln__cu.cuDeviceGetCount(&n);
  if (r != kiln_CUDA_SUCCESS) {
    snprintf(reason, reason_bytes, "cuDeviceGetCount failed: %s (%d)", kiln__cu_error_name(r),
             (int)r);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  if (n <= 0) {
    snprintf(reason, reason_bytes,
             "CUDA_ERROR_NO_DEVICE (100): the NVIDIA driver reports no CUDA device");
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  unsigned added = 0;
  char last[200] = "";
  for (int i = 0; i < n && added < KILN__CU_MAX_DEVICES; i++) {
    cu_device *cd = &cu_devices[added];
    kiln_device_props pr = KILN_DEVICE_PROPS_INIT;
    if (device_props(i, added, cd, &pr, last, sizeof last) &&
        kiln__registry_add_device(self, &pr, cd, NULL) == KILN_SUCCESS)
      added++;
  }
  if (!added) {
    kiln__strlcpy(reason, last[0] ? last : "no usable CUDA device", reason_bytes);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- memory info, contexts */
kiln_status kiln__cu_mem_info(kiln__device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
  kiln_CUcontext c = NULL;
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxRetain(&c, kiln__cu_dev(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return kiln__cu_fail_device(d, r, "cuDevicePrimaryCtxRetain");
  size_t f = 0, t = 0;
  r = kiln__cu_push(c);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuMemGetInfo(&f, &t);
    kiln__cu_pop();
  }
  kiln__cu.cuDevicePrimaryCtxRelease(kiln__cu_dev(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return kiln__cu_fail_device(d, r, "cuMemGetInfo");
  *free_bytes = f;
  *total_bytes = t;
  return KILN_SUCCESS;
}

kiln_status kiln__cu_context_create(kiln__context *ctx) {
  kiln_CUcontext c = NULL;
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxRetain(&c, kiln__cu_dev(ctx->device)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return kiln__cu_fail_device(ctx->device, r, "cuDevicePrimaryCtxRetain");
  kiln__cu_count(KILN__CUO_CONTEXT, 1);
  ctx->native = c;
  return KILN_SUCCESS;
}

void kiln__cu_context_destroy(kiln__context *ctx) {
  if (ctx->native) {
    kiln__cu.cuDevicePrimaryCtxRelease(kiln__cu_dev(ctx->device)->dev);
    kiln__cu_count(KILN__CUO_CONTEXT, -1);
  }
  ctx->native = NULL;
}

kiln_status kiln__cu_device_reset(kiln__device *d) {
  kiln_CUresult r = kiln__cu.cuDevicePrimaryCtxReset(kiln__cu_dev(d)->dev);
  if (r != kiln_CUDA_SUCCESS)
    return kiln__cu_fail(r, "cuDevicePrimaryCtxReset");
  return KILN_SUCCESS;
}
