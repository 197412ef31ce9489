/* SPDX-License-Identifier: MIT */
/* CUDA kernels and their launches: a kernel is a CUfunction of its program's module
 * (referenced, so it outlives kiln_program_destroy) with its attributes; a launch packs
 * the parameters (buffers, scalars, each local part's offset into the one dynamic
 * shared memory block, the hidden global sizes), chooses the block (the caller's local
 * size, else the occupancy API's / a fixed shape) and the grid, and queues
 * cuLaunchKernel. kernel_create/destroy are ops; kiln__cu_enqueue_launch runs on the
 * submitting thread with the context current (submit.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

kiln_status kiln__cu_kernel_create(kiln__kernel *k, kiln__program *p) {
  cu_kernel *ck = kiln__calloc(1, sizeof *ck);
  if (!ck)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating kernel '%s'",
                       k->name);
  cu_module *m = p->native;
  kiln_CUresult r = kiln__cu_push(p->h.ctx->native);
  if (r == kiln_CUDA_SUCCESS) {
    r = kiln__cu.cuModuleGetFunction(&ck->fn, m->mod, k->name);
    if (r == kiln_CUDA_SUCCESS &&
        kiln__cu.cuFuncGetAttribute(&ck->max_threads, kiln_CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                    ck->fn) != kiln_CUDA_SUCCESS)
      ck->max_threads = (int)k->h.ctx->device->props.max_work_group_size;
    if (r == kiln_CUDA_SUCCESS &&
        kiln__cu.cuFuncGetAttribute(&ck->static_smem, kiln_CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                    ck->fn) != kiln_CUDA_SUCCESS)
      ck->static_smem = 0;
    kiln__cu_pop();
  }
  if (r != kiln_CUDA_SUCCESS) {
    kiln__free(ck, sizeof *ck);
    char what[128];
    snprintf(what, sizeof what, "cuModuleGetFunction('%s')", k->name);
    return kiln__cu_fail_device(k->h.ctx->device, r, what);
  }
  if (ck->max_threads <= 0)
    ck->max_threads = 1;
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
static size_t round_up(size_t v, size_t m) {
  return m ? (v + m - 1) / m * m : v;
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
      smem = round_up(smem, KILN__LOCAL_ALIGN);
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
 * kernel's MAX_DYNAMIC_SHARED_SIZE_BYTES to all the device allows, once. A refusal
 * kiln detects itself sets the detail and *own. */
static kiln_CUresult allow_smem(const kiln__kernel *k, cu_kernel *ck, const cu_device *cd,
                                size_t smem, kiln_status *own) {
  if (smem + (size_t)ck->static_smem > (size_t)cd->smem_optin_bytes) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': %zu bytes of local memory (+%d static) exceed the device's %d bytes "
                "of shared memory",
                k->name, smem, ck->static_smem, cd->smem_optin_bytes);
    *own = KILN_ERROR_LIMIT_EXCEEDED;
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
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

/* Block: the caller's local size, else the occupancy API's (1-D) or 16x16 / 8x8x4. */
static void choose_block(const cu_kernel *ck, const kiln_range *rg, size_t smem, size_t block[3]) {
  block[0] = block[1] = block[2] = 1;
  bool given = false;
  for (unsigned d = 0; d < rg->dims; d++)
    given = given || rg->local[d];
  size_t limit = (size_t)ck->max_threads;
  if (given) {
    for (unsigned d = 0; d < rg->dims; d++)
      block[d] = rg->local[d] ? rg->local[d] : 1;
  } else if (rg->dims == 1) {
    int min_grid = 0, best = 0;
    if (!kiln__cu.cuOccupancyMaxPotentialBlockSize ||
        kiln__cu.cuOccupancyMaxPotentialBlockSize(&min_grid, &best, ck->fn, NULL, smem,
                                                  (int)limit) != kiln_CUDA_SUCCESS ||
        best <= 0)
      best = limit < 256 ? (int)limit : 256;
    block[0] = (size_t)best;
    size_t small = round_up(rg->global[0], 32);
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
}

/* Grid: the range in whole blocks. A refusal sets the detail and *own. */
static kiln_CUresult choose_grid(const kiln__kernel *k, const cu_kernel *ck, const cu_device *cd,
                                 const kiln_range *rg, const size_t block[3], unsigned grid[3],
                                 kiln_status *own) {
  size_t limit = (size_t)ck->max_threads;
  if (block[0] * block[1] * block[2] > limit) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': a block of %zu threads exceeds the kernel's limit of %zu", k->name,
                block[0] * block[1] * block[2], limit);
    *own = KILN_ERROR_LIMIT_EXCEEDED;
    return kiln_CUDA_ERROR_INVALID_VALUE;
  }
  for (unsigned d = 0; d < 3; d++) {
    size_t g = d < rg->dims ? (rg->global[d] + block[d] - 1) / block[d] : 1;
    if (g > cd->grid_max[d]) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': %zu blocks in dimension %u exceed the device's %u", k->name, g, d,
                  cd->grid_max[d]);
      *own = KILN_ERROR_LIMIT_EXCEEDED;
      return kiln_CUDA_ERROR_INVALID_VALUE;
    }
    grid[d] = (unsigned)g;
  }
  return kiln_CUDA_SUCCESS;
}

kiln_CUresult kiln__cu_enqueue_launch(cu_stream *cs, kiln__op *op, kiln_status *own) {
  kiln__kernel *k = op->u.launch.kernel;
  cu_kernel *ck = k->native;
  const cu_device *cd = kiln__cu_dev(cs->device);
  const kiln_range *rg = &op->u.launch.range;
  void *params[KILN_MAX_KERNEL_ARGS + KILN__HIDDEN_GS_PARAMS];
  kiln_CUdeviceptr ptrs[KILN_MAX_KERNEL_ARGS];
  uint32_t offs[KILN_MAX_KERNEL_ARGS];
  uint64_t gs[3];
  size_t smem = pack_params(op, params, ptrs, offs, gs);
  kiln_CUresult r = allow_smem(k, ck, cd, smem, own);
  if (r != kiln_CUDA_SUCCESS)
    return r;
  size_t block[3];
  unsigned grid[3];
  choose_block(ck, rg, smem, block);
  r = choose_grid(k, ck, cd, rg, block, grid, own);
  if (r != kiln_CUDA_SUCCESS)
    return r;
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG,
              "launch '%s': grid %ux%ux%u, block %zux%zux%zu, %zu bytes of dynamic shared memory",
              k->name, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem);
  return kiln__cu.cuLaunchKernel(ck->fn, grid[0], grid[1], grid[2], (unsigned)block[0],
                                 (unsigned)block[1], (unsigned)block[2], (unsigned)smem, cs->stream,
                                 params, NULL);
}
