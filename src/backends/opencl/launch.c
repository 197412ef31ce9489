/* SPDX-License-Identifier: MIT */
/* Launches: the local size (the caller's, else a multiple of the kernel's preferred
 * multiple within its limit), the global size rounded up to it, and the arguments set on
 * the shared cl_kernel (unchanged ones skipped; the three hidden sizes only for a kernel
 * that reads kiln_global_size()) together with the enqueue, under the
 * kernel's lock. launch_check runs at the call (ops table) and must not block;
 * kiln__ocl_enqueue_launch runs from submit.c under the stream's submit lock. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backends/opencl/opencl_internal.h"

/* clSetKernelArg unless the cache says the argument already has this value. value NULL:
 * local memory of `size` bytes. Called under ok->lock. */
static cl_int set_arg(kiln__ocl_kernel *ok, cl_uint i, size_t size, const void *value) {
  kiln__ocl_arg_cache *c = &ok->cache[i];
  unsigned char kind = value ? 1 : 2;
  if (c->set == kind && c->size == size && size <= sizeof c->bytes &&
      (!value || memcmp(c->bytes, value, size) == 0))
    return CL_SUCCESS;
  cl_int err = kiln__cl.clSetKernelArg(ok->kernel, i, size, value);
  if (err == CL_SUCCESS && size <= sizeof c->bytes) {
    c->set = kind;
    c->size = (unsigned char)size;
    if (value)
      memcpy(c->bytes, value, size);
  } else {
    c->set = 0;
  }
  return err;
}

/* The local size: the caller's, else a multiple of the kernel's preferred multiple
 * within its work-group limit, aiming at 64-256 work-items (design.md "Kernels"). */
static void choose_local(const kiln__ocl_kernel *ok, const kiln_device_props *p,
                         const kiln_range *r, size_t local[3]) {
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  if (given) {
    for (unsigned d = 0; d < 3; d++)
      local[d] = d < r->dims && r->local[d] ? r->local[d] : 1;
    return;
  }
  size_t limit = ok->wg_max < p->max_work_group_size ? ok->wg_max : p->max_work_group_size;
  size_t m = ok->multiple;
  local[0] = local[1] = local[2] = 1;
  if (r->dims == 1) {
    size_t want = 256 < limit ? 256 : limit;
    if (want > p->max_work_item_sizes[0])
      want = p->max_work_item_sizes[0];
    size_t small = kiln__round_up(r->global[0], m);
    if (want > small)
      want = small;
    if (want >= m)
      want = want / m * m;
    local[0] = want ? want : 1;
  } else {
    size_t x = 16, y = 16, z = r->dims == 3 ? 4 : 1;
    if (r->dims == 3)
      x = y = 8;
    while (x * y * z > limit && y > 1)
      y /= 2;
    while (x * y * z > limit && x > 1)
      x /= 2;
    local[0] = x;
    local[1] = y;
    local[2] = z;
    for (unsigned d = 0; d < 3; d++)
      if (local[d] > p->max_work_item_sizes[d])
        local[d] = p->max_work_item_sizes[d] ? p->max_work_item_sizes[d] : 1;
  }
}

void kiln__ocl_launch_config(const kiln__kernel *k, const kiln_range *r, size_t local[3], char *why,
                             size_t why_bytes) {
  const kiln__ocl_kernel *ok = k->native;
  const kiln_device_props *p = &k->h.ctx->device->props;
  choose_local(ok, p, r, local);
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  size_t limit = ok->wg_max < p->max_work_group_size ? ok->wg_max : p->max_work_group_size;
  if (given)
    snprintf(why, why_bytes, "the caller's local size");
  else if (r->dims == 1)
    snprintf(why, why_bytes,
             "a multiple of the kernel's preferred work-group multiple %zu "
             "(CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE) within its limit %zu "
             "(CL_KERNEL_WORK_GROUP_SIZE and the device's), aiming at 256, at most the range",
             ok->multiple, limit);
  else
    snprintf(why, why_bytes, "a %s tile, halved until within the kernel's limit %zu",
             r->dims == 3 ? "8x8x4" : "16x16", limit);
}

/* Work-groups one launch may have in all. OpenCL reports no such bound; PoCL's CPU
 * drivers count a launch's work-groups in 32 bits (and abort beyond), and GPU drivers
 * schedule far fewer in one launch, so kiln refuses more at the call. */
#define OCL_MAX_TOTAL_GROUPS ((size_t)UINT32_MAX)

kiln_status kiln__ocl_launch_check(const kiln__kernel *k, const kiln_range *r) {
  /* A launch never has more groups than work-items: the common case needs no local
   * size (the enqueue chooses it anyway). The core has bounded the total by 2^63. */
  size_t items = 1;
  for (unsigned d = 0; d < r->dims && items <= OCL_MAX_TOTAL_GROUPS; d++)
    items = r->global[d] <= OCL_MAX_TOTAL_GROUPS ? items * r->global[d] : SIZE_MAX;
  if (items <= OCL_MAX_TOTAL_GROUPS)
    return KILN_SUCCESS;
  size_t local[3], groups = 1;
  choose_local(k->native, &k->h.ctx->device->props, r, local);
  for (unsigned d = 0; d < r->dims; d++) {
    size_t n = r->global[d] / local[d] + (r->global[d] % local[d] != 0);
    if (n > OCL_MAX_TOTAL_GROUPS / groups) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': a range of %zu x %zu x %zu work-items in groups of %zu x %zu x %zu "
                  "makes more than the %zu work-groups kiln runs in one OpenCL launch",
                  k->name, r->global[0], r->dims > 1 ? r->global[1] : (size_t)1,
                  r->dims > 2 ? r->global[2] : (size_t)1, local[0], local[1], local[2],
                  OCL_MAX_TOTAL_GROUPS);
      kiln__error_suggest("split the work into several launches, or give a larger local size");
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
    groups *= n;
  }
  return KILN_SUCCESS;
}

kiln_status kiln__ocl_enqueue_launch(kiln__stream *s, kiln__op *op, cl_uint nwait,
                                     const cl_event *wait, cl_event *ev) {
  kiln__ocl_stream *cs = s->native;
  kiln__kernel *k = op->u.launch.kernel;
  kiln__ocl_kernel *ok = k->native;
  const kiln_range *r = &op->u.launch.range;
  size_t local[3], global[3];
  choose_local(ok, &s->h.ctx->device->props, r, local);
  for (unsigned d = 0; d < 3; d++)
    global[d] = d < r->dims ? kiln__round_up(r->global[d], local[d]) : 1;
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG, "launch '%s': global %zux%zux%zu (asked %zu), local %zux%zux%zu",
              k->name, global[0], global[1], global[2], r->global[0], local[0], local[1], local[2]);
  pthread_mutex_lock(&ok->lock);
  cl_int err = CL_SUCCESS;
  cl_uint i = 0;
  for (; i < op->u.launch.arg_count && err == CL_SUCCESS; i++) {
    const kiln__launch_arg *a = &op->u.launch.args[i];
    if (a->kind == KILN_ARG_BUFFER) {
      cl_mem m = a->buffer->native;
      err = set_arg(ok, i, sizeof m, &m);
    } else if (a->kind == KILN_ARG_SCALAR) {
      err = set_arg(ok, i, a->bytes, op->u.launch.storage + a->offset);
    } else {
      err = set_arg(ok, i, a->bytes, NULL);
    }
  }
  /* hidden: the sizes asked for, for a kernel that reads kiln_global_size() (prelude.h) */
  for (unsigned d = 0; d < 3 && err == CL_SUCCESS && k->hidden_sizes; d++) {
    cl_ulong g = d < r->dims ? (cl_ulong)r->global[d] : 1u;
    err = set_arg(ok, i + d, sizeof g, &g);
  }
  if (err == CL_SUCCESS)
    err = kiln__cl.clEnqueueNDRangeKernel(kiln__ocl_queue(cs), ok->kernel, r->dims, NULL, global,
                                          local, nwait, wait, ev);
  pthread_mutex_unlock(&ok->lock);
  if (err != CL_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "launching kernel '%s'", k->name);
    return kiln__cl_fail(err, what);
  }
  return KILN_SUCCESS;
}
