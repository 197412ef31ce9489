/* SPDX-License-Identifier: MIT */
/* CUDA kernels and their launches: a kernel is a CUfunction of its program's module
 * (referenced, so it outlives kiln_program_destroy) with its limits, filled at creation
 * for the core's checks at the call. One block choice (the caller's local size, else the
 * occupancy API's / a fixed shape) serves launch_check — which refuses, at the call,
 * the grids the device cannot run — and the launch, which packs the parameters and
 * queues cuLaunchKernel on the submitting thread with the context current (submit.c);
 * nothing the call refused reaches it, so it only asserts the limits (debug builds). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* The kernel's limits and its block for 1-D launches without a local size (ctx
 * current, ck->fn set): the driver's answers, else defaults. The occupancy API's block
 * is asked once, for no dynamic shared memory: launch_check sees no arguments, and it
 * must choose the block the launch will. */
static void kernel_limits(cu_kernel *ck, const kiln__kernel *k) {
  if (kiln__cu.cuFuncGetAttribute(&ck->max_threads, kiln_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                  ck->fn) != kiln_CUDA_SUCCESS)
    ck->max_threads = (int)k->h.ctx->device->props.max_work_group_size;
  if (kiln__cu.cuFuncGetAttribute(&ck->static_smem, kiln_CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                  ck->fn) != kiln_CUDA_SUCCESS)
    ck->static_smem = 0;
  if (ck->max_threads <= 0)
    ck->max_threads = 1;
  int min_grid = 0, best = 0;
  if (!kiln__cu.cuOccupancyMaxPotentialBlockSize ||
      kiln__cu.cuOccupancyMaxPotentialBlockSize(&min_grid, &best, ck->fn, NULL, 0,
                                                ck->max_threads) != kiln_CUDA_SUCCESS ||
      best <= 0 || best > ck->max_threads)
    best = ck->max_threads < 256 ? ck->max_threads : 256;
  ck->occupancy_block = best;
}

kiln_status kiln__cu_kernel_create(kiln__kernel *k, kiln__program *p) {
  cu_kernel *ck = kiln__calloc(1, sizeof *ck);
  if (!ck)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                       k->name);
  cu_module *m = p->native;
  kiln_CUresult r = kiln__cu_push(p->h.ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuModuleGetFunction(&ck->fn, m->mod, k->name);
    if (r == kiln_CUDA_SUCCESS)
      kernel_limits(ck, k);
    kiln__cu_pop();
  }
  if (r != kiln_CUDA_SUCCESS) {
    kiln__free(ck, sizeof *ck);
    char what[128];
    snprintf(what, sizeof what, "cuModuleGetFunction('%s')", k->name);
    return kiln__cu_fail_device(k->h.ctx->device, r, what);
  }
  /* The core checks every launch against these at the call (core/kernel.c). */
  k->max_group_size = (size_t)ck->max_threads;
  k->static_local_bytes = (uint64_t)ck->static_smem;
  k->local_align_bytes = KILN__LOCAL_ALIGN;
  ck->module = m;
  atomic_fetch_add(&m->refs, 1);
  atomic_store(&ck->dyn_smem_allowed, (int)KILN__CU_DEFAULT_SMEM_BYTES);
  pthread_mutex_init(&ck->lock, NULL);
  k->native = ck;
  return KILN_SUCCESS;
}

void kiln__cu_kernel_destroy(kiln__kernel *k) {
  cu_kernel *ck = k->native;
  if (!ck)
    return;
  kiln__cu_module_unref(ck->module);
  pthread_mutex_destroy(&ck->lock);
  kiln__free(ck, sizeof *ck);
  k->native = NULL;
}

/* ------------------------------------------------------------- launch */
/* The block of a launch of ck over rg: the caller's local size (answers true), else
 * the kernel's occupancy block (1-D, capped to the range rounded up to a warp) or
 * 16x16 / 8x8x4 within its thread limit. launch_check and the launch both use this. */
static bool choose_block(const cu_kernel *ck, const kiln_range *rg, size_t block[3]) {
  block[0] = block[1] = block[2] = 1;
  bool given = false;
  for (unsigned d = 0; d < rg->dims; d++)
    given = given || rg->local[d];
  size_t limit = (size_t)ck->max_threads;
  if (given) {
    for (unsigned d = 0; d < rg->dims; d++)
      block[d] = rg->local[d] ? rg->local[d] : 1;
  } else if (rg->dims == 1) {
    block[0] = (size_t)ck->occupancy_block;
    size_t small = kiln__round_up(rg->global[0], 32);
    if (block[0] > small)
      block[0] = small;
  } else {
    block[0] = rg->dims == 3 ? 8 : 16;
    block[1] = rg->dims == 3 ? 8 : 16;
    block[2] = rg->dims == 3 ? 4 : 1;
    while (block[0] * block[1] * block[2] > limit && block[1] > 1)
      block[1] /= 2;
    while (block[0] * block[1] * block[2] > limit && block[0] > 1)
      block[0] /= 2;
  }
  return given;
}

/* The grid: the range in whole blocks (1 in unused dimensions). */
static void grid_of(const kiln_range *rg, const size_t block[3], size_t grid[3]) {
  for (unsigned d = 0; d < 3; d++)
    grid[d] = d < rg->dims ? rg->global[d] / block[d] + (rg->global[d] % block[d] != 0) : 1;
}

void kiln__cu_launch_config(const kiln__kernel *k, const kiln_range *rg, size_t local[3], char *why,
                            size_t why_bytes) {
  const cu_kernel *ck = k->native;
  if (choose_block(ck, rg, local))
    snprintf(why, why_bytes, "the caller's local size");
  else if (rg->dims == 1)
    snprintf(why, why_bytes,
             "the occupancy API's block for this kernel (cuOccupancyMaxPotentialBlockSize: "
             "%d threads, within its %d-thread limit), at most the range rounded up to a warp",
             ck->occupancy_block, ck->max_threads);
  else
    snprintf(why, why_bytes, "a %s block, halved until within the kernel's %d-thread limit",
             rg->dims == 3 ? "8x8x4" : "16x16", ck->max_threads);
}

kiln_status kiln__cu_launch_check(const kiln__kernel *k, const kiln_range *rg) {
  const cu_kernel *ck = k->native;
  const cu_device *cd = kiln__cu_dev(k->h.ctx->device);
  size_t block[3], grid[3];
  bool given = choose_block(ck, rg, block);
  size_t threads = block[0] * block[1] * block[2];
  /* The caller's block the core checked (k->max_group_size); kiln's own 3-D shape is
   * 4 deep at least. */
  if (!given && threads > (size_t)ck->max_threads) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': a block of %zu threads exceeds the kernel's limit of %d", k->name,
                threads, ck->max_threads);
    kiln__error_suggest("give a local size of at most %d work-items for this kernel",
                        ck->max_threads);
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  grid_of(rg, block, grid);
  for (unsigned d = 0; d < 3; d++) {
    if (grid[d] > cd->grid_max[d]) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': %zu blocks of %zu x %zu x %zu threads in dimension %u exceed the "
                  "device's %u",
                  k->name, grid[d], block[0], block[1], block[2], d, cd->grid_max[d]);
      kiln__error_suggest("give a larger local size in dimension %u, or split the work into "
                          "several launches",
                          d);
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
  }
  return KILN_SUCCESS;
}

/* The launch's kernelParams: buffers as CUdeviceptr (into ptrs), scalars from the op's
 * storage, each local part's u32 offset into the dynamic shared block (into offs; parts
 * in parameter order, each KILN__LOCAL_ALIGN-aligned), then the three hidden global
 * sizes (into gs). Returns the dynamic shared memory, in bytes. */
static size_t pack_params(const kiln__op *op, void **params, kiln_CUdeviceptr *ptrs, uint32_t *offs,
                          uint64_t *gs) {
  const kiln_range *rg = &op->u.launch.range;
  size_t smem = 0;
  uint32_t n = op->u.launch.arg_count;
  for (uint32_t i = 0; i < n; i++) {
    const kiln__launch_arg *a = &op->u.launch.args[i];
    if (a->kind == KILN_ARG_BUFFER) {
      ptrs[i] = (kiln_CUdeviceptr)(uintptr_t)a->buffer->native;
      params[i] = &ptrs[i];
    } else if (a->kind == KILN_ARG_SCALAR) {
      params[i] = op->u.launch.storage + a->offset;
    } else { /* local memory: a part of the dynamic shared block (prelude.h) */
      smem = kiln__round_up(smem, KILN__LOCAL_ALIGN);
      offs[i] = (uint32_t)smem;
      smem += a->bytes;
      params[i] = &offs[i];
    }
  }
  for (unsigned d = 0; d < 3; d++) {
    gs[d] = d < rg->dims ? (uint64_t)rg->global[d] : 1u;
    params[n + d] = &gs[d];
  }
  return smem;
}

/* Dynamic shared memory beyond the default needs the kernel's opt-in: raise the
 * kernel's MAX_DYNAMIC_SHARED_SIZE_BYTES to all the device allows, once. */
static kiln_CUresult allow_smem(cu_kernel *ck, const cu_device *cd, size_t smem) {
  if (smem <= KILN__CU_DEFAULT_SMEM_BYTES || (int)smem <= atomic_load(&ck->dyn_smem_allowed))
    return kiln_CUDA_SUCCESS;
  kiln_CUresult r = kiln_CUDA_ERROR_NOT_SUPPORTED;
  pthread_mutex_lock(&ck->lock);
  if (kiln__cu.cuFuncSetAttribute)
    r = kiln__cu.cuFuncSetAttribute(ck->fn, kiln_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                    (int)(cd->smem_optin_bytes - ck->static_smem));
  if (r == kiln_CUDA_SUCCESS)
    atomic_store(&ck->dyn_smem_allowed, cd->smem_optin_bytes - ck->static_smem);
  pthread_mutex_unlock(&ck->lock);
  return r;
}

kiln_CUresult kiln__cu_enqueue_launch(cu_stream *cs, kiln__op *op) {
  kiln__kernel *k = op->u.launch.kernel;
  cu_kernel *ck = k->native;
  const cu_device *cd = kiln__cu_dev(cs->device);
  const kiln_range *rg = &op->u.launch.range;
  void *params[KILN_MAX_KERNEL_ARGS + KILN__HIDDEN_GS_PARAMS];
  kiln_CUdeviceptr ptrs[KILN_MAX_KERNEL_ARGS];
  uint32_t offs[KILN_MAX_KERNEL_ARGS];
  uint64_t gs[3];
  size_t smem = pack_params(op, params, ptrs, offs, gs);
  size_t block[3], grid[3];
  (void)choose_block(ck, rg, block);
  grid_of(rg, block, grid);
  /* Refused at the call otherwise: shared memory by the core (k->static_local_bytes),
   * block and grid by kiln__cu_launch_check with this very choice. */
  assert(smem + (size_t)ck->static_smem <= (size_t)cd->smem_optin_bytes);
  assert(block[0] * block[1] * block[2] <= (size_t)ck->max_threads);
  assert(grid[0] <= cd->grid_max[0] && grid[1] <= cd->grid_max[1] && grid[2] <= cd->grid_max[2]);
  kiln_CUresult r = allow_smem(ck, cd, smem);
  if (r != kiln_CUDA_SUCCESS)
    return r;
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(
        KILN_LOG_DEBUG,
        "launch '%s': grid %zux%zux%zu, block %zux%zux%zu, %zu bytes of dynamic shared memory",
        k->name, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem);
  return kiln__cu.cuLaunchKernel(ck->fn, (unsigned)grid[0], (unsigned)grid[1], (unsigned)grid[2],
                                 (unsigned)block[0], (unsigned)block[1], (unsigned)block[2],
                                 (unsigned)smem, cs->stream, params, NULL);
}
