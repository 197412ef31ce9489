/* SPDX-License-Identifier: MIT */
/* The CUDA backend's ops table (kiln__cuda_backend, registered in core/registry.c) and
 * the count of live CUDA objects its files keep. The driver API and NVRTC are loaded
 * at run time (loader.c, never linked); each op lives in the file of its concept:
 * device.c (probe, contexts, reset), memory.c, stream.c, submit.c, staging.c,
 * program.c, kernel.c, native.c — cuda_internal.h is what they share. Parts not yet
 * run on a GPU are listed in docs/cuda.md. */
#include "backends/cuda/cuda_internal.h"

_Atomic long kiln__cu_live[5]; /* contexts, streams, events, allocations, modules */

long kiln__cu_live_total(void) {
  long n = 0;
  for (int i = 0; i < 5; i++)
    n += atomic_load(&kiln__cu_live[i]);
  return n;
}

/* Feature levels (docs/kernels.md): scoped atomics and fences are the _block and
 * _system intrinsics and __threadfence_block, from compute capability 6.0 on. */
static kiln_status cu_level_check(const kiln__device *device, kiln__level level,
                                  const char **options) {
  *options = "";
  const cu_device *cd = kiln__cu_dev(device);
  if (level == KILN__LEVEL_SCOPED_ATOMICS && cd->cc_major >= 6)
    return KILN_SUCCESS;
  return kiln__error(KILN_ERROR_UNSUPPORTED,
                     "the feature level 'scoped_atomics' needs what CUDA device '%s' (sm_%d%d) "
                     "lacks: compute capability 6.0 for atomicAdd_block and the other "
                     "block-scoped atomics",
                     device->props.name, cd->cc_major, cd->cc_minor);
}

const kiln__backend_ops kiln__cuda_backend = {
    .kind = KILN_BACKEND_CUDA,
    .name = "cuda",
    .dialect = KILN__TARGET_CUDA,
    .probe = kiln__cu_probe,
    .mem_info = kiln__cu_mem_info,
    .context_create = kiln__cu_context_create,
    .context_destroy = kiln__cu_context_destroy,
    .stream_create = kiln__cu_stream_create,
    .stream_destroy = kiln__cu_stream_destroy,
    .buffer_create = kiln__cu_buffer_create,
    .buffer_destroy = kiln__cu_buffer_destroy,
    .host_alloc = kiln__cu_host_alloc,
    .host_free = kiln__cu_host_free,
    .host_register = kiln__cu_host_register,
    .host_unregister = kiln__cu_host_unregister,
    .program_build = kiln__cu_program_build,
    .program_destroy = kiln__cu_program_destroy,
    .level_check = cu_level_check,
    .kernel_create = kiln__cu_kernel_create,
    .kernel_create_native = NULL,
    .kernel_destroy = kiln__cu_kernel_destroy,
    .launch_check = kiln__cu_launch_check,
    .launch_config = kiln__cu_launch_config,
    .submit = kiln__cu_submit,
    .get_native = kiln__cu_get_native,
    .buffer_wrap = kiln__cu_buffer_wrap,
    .stream_wrap = kiln__cu_stream_wrap,
    .device_reset = kiln__cu_device_reset,
    .device_probe = NULL,
    .buffer_view_create = kiln__cu_buffer_view_create,
    .buffer_view_destroy = kiln__cu_buffer_view_destroy,
    .program_cache_id = kiln__cu_program_cache_id,
    .program_export = kiln__cu_program_export,
    .program_import = kiln__cu_program_import,
    .program_share = kiln__cu_program_share,
};
