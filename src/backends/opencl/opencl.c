/* SPDX-License-Identifier: MIT */
/* The OpenCL backend's ops table, the only place the backend is named to the core
 * (backend.h states each op's preconditions). Its files, by concept: cl_api.c (loading
 * the ICD loader, error names, object counters), device.c (devices, contexts),
 * stream.c (queues, the profiling switch, covering events), submit.c (ops into
 * commands: the knobs of the submit path), complete.c (in-order completion, waits,
 * polls), memory.c (buffers, pinned host memory), program.c (programs, kernels),
 * launch.c (geometry, arguments), native.c (interop, wrapping). */
#include "backends/opencl/opencl_internal.h"

const kiln__backend_ops kiln__opencl_backend = {
    .kind = KILN_BACKEND_OPENCL,
    .name = "opencl",
    .dialect = KILN__TARGET_OPENCL,
    .probe = kiln__ocl_probe,
    .mem_info = kiln__ocl_mem_info,
    .context_create = kiln__ocl_context_create,
    .context_destroy = kiln__ocl_context_destroy,
    .stream_create = kiln__ocl_stream_create,
    .stream_destroy = kiln__ocl_stream_destroy,
    .buffer_create = kiln__ocl_buffer_create,
    .buffer_destroy = kiln__ocl_buffer_destroy,
    .host_alloc = kiln__ocl_host_alloc,
    .host_free = kiln__ocl_host_free,
    .program_build = kiln__ocl_program_build,
    .program_destroy = kiln__ocl_program_destroy,
    .level_check = kiln__ocl_level_check,
    .kernel_create = kiln__ocl_kernel_create,
    .launch_check = kiln__ocl_launch_check,
    .launch_config = kiln__ocl_launch_config,
    .kernel_create_native = NULL,
    .kernel_destroy = kiln__ocl_kernel_destroy,
    .submit = kiln__ocl_submit,
    .op_wait = kiln__ocl_op_wait,
    .stream_wait = kiln__ocl_stream_wait,
    .poll = kiln__ocl_poll,
    .get_native = kiln__ocl_get_native,
    .buffer_wrap = kiln__ocl_buffer_wrap,
    .stream_wrap = kiln__ocl_stream_wrap,
    .device_reset = NULL,
    .device_probe = NULL,
    .buffer_view_create = kiln__ocl_buffer_view_create,
    .buffer_view_destroy = kiln__ocl_buffer_view_destroy,
    .program_cache_id = kiln__ocl_program_cache_id,
    .program_export = kiln__ocl_program_export,
    .program_import = kiln__ocl_program_import,
    .program_share = kiln__ocl_program_share,
    .op_notify = kiln__ocl_op_notify,
};
