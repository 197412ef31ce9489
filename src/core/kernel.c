/* SPDX-License-Identifier: MIT */
/* Kernels and launches: the kernel's signature (parameter kinds and sizes) is checked
 * against every launch's tagged arguments before anything is queued; scalars are
 * copied into the op, so the caller's values may change after the call. Launches hold
 * no reference on the kernel (a shared counter would bounce between the submitting
 * thread and the worker on every launch): destroying a kernel waits instead until
 * every stream of its context has finished the work queued so far. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/launch.h"
#include "core/tune.h"

void kiln__kernel_free(kiln__kernel_obj *k) {
  kiln__tune_free(k);
  if (k->h.ops->kernel_destroy)
    k->h.ops->kernel_destroy(&k->view);
  kiln__slab_release(&k->h.ctx->kernels, k);
}

static void wait_stream(void *elem, void *user) {
  (void)user;
  kiln__stream_wait_idle(elem);
}

static const char *param_kind_name(kiln_param_kind kind) {
  switch (kind) {
  case KILN_PARAM_BUFFER_READ:
    return "read-only buffer";
  case KILN_PARAM_BUFFER_WRITE:
    return "write-only buffer";
  case KILN_PARAM_BUFFER_READ_WRITE:
    return "read-write buffer";
  case KILN_PARAM_SCALAR:
    return "scalar";
  case KILN_PARAM_LOCAL:
    return "local memory";
  default:
    return "unknown";
  }
}

kiln_status kiln_kernel_create_native(kiln_context context, const kiln_native_kernel_desc *desc,
                                      kiln_kernel *kernel) {
  KILN__API_ENTER();
  if (!kernel)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel (the out-parameter) is NULL");
  *kernel = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!desc)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL");
  if (desc->struct_size < sizeof(kiln_native_kernel_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_NATIVE_KERNEL_DESC_INIT",
                       desc->struct_size, sizeof(kiln_native_kernel_desc));
  if (!desc->name || !desc->name[0])
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->name is %s: a kernel needs a name",
                       desc->name ? "empty" : "NULL");
  if (strlen(desc->name) >= sizeof(((kiln__kernel_obj *)0)->name))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "kernel name '%.40s...' is longer than %zu bytes", desc->name,
                       sizeof(((kiln__kernel_obj *)0)->name) - 1);
  if (!desc->fn)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel '%s': desc->fn is NULL", desc->name);
  if (desc->param_count > KILN_MAX_KERNEL_ARGS)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "kernel '%s' declares %zu parameters, at most %d",
                       desc->name, desc->param_count, KILN_MAX_KERNEL_ARGS);
  if (desc->param_count && !desc->params)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "kernel '%s': desc->params is NULL with param_count %zu", desc->name,
                       desc->param_count);
  for (size_t i = 0; i < desc->param_count; i++) {
    const kiln_param *p = &desc->params[i];
    if (p->kind < KILN_PARAM_BUFFER_READ || p->kind > KILN_PARAM_LOCAL)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "kernel '%s' parameter %zu: kind %d is not a kiln_param_kind", desc->name,
                         i, (int)p->kind);
    if (p->kind == KILN_PARAM_SCALAR && (p->bytes == 0 || p->bytes > 256))
      return kiln__error(
          KILN_ERROR_INVALID_ARGUMENT,
          "kernel '%s' parameter %zu: scalar of %zu bytes; scalars are 1 to 256 bytes", desc->name,
          i, p->bytes);
  }
  if (!context->h.ops->kernel_create_native) {
    kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' cannot run native C kernels",
                context->h.ops->name);
    kiln__error_suggest(
        "create native kernels on a CPU-backend context; other backends take kernel source");
    return KILN_ERROR_UNSUPPORTED;
  }
  void *e;
  st = kiln__slab_alloc(&context->kernels, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__kernel_obj *k = e;
  k->h.ops = context->h.ops;
  k->h.generation = context->h.generation;
  k->h.ctx = context;
  kiln__strlcpy(k->name, desc->name, sizeof k->name);
  k->fn = desc->fn;
  k->user = desc->user;
  k->param_count = (uint32_t)desc->param_count;
  if (desc->param_count)
    memcpy(k->params, desc->params, sizeof(kiln_param) * desc->param_count);
  st = context->h.ops->kernel_create_native(&k->view);
  if (st != KILN_SUCCESS) {
    kiln__slab_release(&context->kernels, k);
    return st;
  }
  atomic_store(&k->h.tag, KILN__TAG_KERNEL);
  *kernel = k;
  return KILN_SUCCESS;
}

kiln_status kiln_kernel_destroy(kiln_kernel kernel) {
  KILN__API_ENTER();
  if (!kernel)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(kernel, KILN__TAG_KERNEL, "kernel");
  if (st == KILN_SUCCESS) /* dead for new calls now; queued launches finish first */
    st = kiln__claim_destroy(kernel, KILN__TAG_KERNEL, "kernel");
  if (st != KILN_SUCCESS)
    return st;
  kiln__context_obj *ctx = kernel->h.ctx;
  kiln__slab_each_alive(&ctx->streams, wait_stream, NULL);
  pthread_mutex_lock(&ctx->lock);
  kiln__stream_obj *def = ctx->default_stream;
  pthread_mutex_unlock(&ctx->lock);
  if (def)
    kiln__stream_wait_idle(def);
  kiln__kernel_free(kernel);
  return KILN_SUCCESS;
}

kiln_status kiln_kernel_get_name(kiln_kernel kernel, const char **name) {
  KILN__API_ENTER();
  if (!name)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  *name = NULL;
  kiln_status st = kiln__check_handle(kernel, KILN__TAG_KERNEL, "kernel");
  if (st != KILN_SUCCESS)
    return st;
  *name = kernel->name;
  return KILN_SUCCESS;
}

kiln_status kiln_kernel_get_params(kiln_kernel kernel, const kiln_param **params, size_t *count) {
  KILN__API_ENTER();
  if (!params || !count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "%s is NULL", params ? "count" : "params");
  *params = NULL;
  *count = 0;
  kiln_status st = kiln__check_handle(kernel, KILN__TAG_KERNEL, "kernel");
  if (st != KILN_SUCCESS)
    return st;
  *params = kernel->params;
  *count = kernel->param_count;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- launch */
static void describe_arg(const kiln_arg *a, char *out, size_t n) {
  switch (a->kind) {
  case KILN_ARG_BUFFER:
    snprintf(out, n, "a buffer");
    break;
  case KILN_ARG_SCALAR:
    snprintf(out, n, "a %zu-byte scalar", a->bytes);
    break;
  case KILN_ARG_LOCAL:
    snprintf(out, n, "%zu bytes of local memory", a->bytes);
    break;
  default:
    snprintf(out, n, "an argument of unknown kind %d", (int)a->kind);
    break;
  }
}

kiln_status kiln__check_range_arg(const kiln__kernel_obj *k, const kiln_range *r,
                                  const kiln_device_props *p) {
  size_t group_limit = p->max_work_group_size;
  bool kernel_limit = k->max_group_size && k->max_group_size < group_limit;
  if (kernel_limit)
    group_limit = k->max_group_size;
  if (!r)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel '%s': range is NULL", k->name);
  if (r->struct_size < sizeof(kiln_range))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "kernel '%s': range->struct_size is %zu, expected at least %zu: initialise "
                       "it with KILN_RANGE_INIT or kiln_range_1d()",
                       k->name, r->struct_size, sizeof(kiln_range));
  if (r->dims < 1 || r->dims > 3)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "kernel '%s': range->dims is %u, expected 1, 2 or 3", k->name, r->dims);
  size_t group = 1;
  for (unsigned d = 0; d < r->dims; d++) {
    if (r->global[d] == 0)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel '%s': range->global[%u] is 0",
                         k->name, d);
    if (p->max_global_size[d] && r->global[d] > p->max_global_size[d]) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': range->global[%u] = %zu exceeds the device's %zu", k->name, d,
                  r->global[d], p->max_global_size[d]);
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
    if (r->local[d]) {
      if (r->local[d] > p->max_work_item_sizes[d]) {
        kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                    "kernel '%s': range->local[%u] = %zu exceeds the device's %zu", k->name, d,
                    r->local[d], p->max_work_item_sizes[d]);
        return KILN_ERROR_LIMIT_EXCEEDED;
      }
      group *= r->local[d];
    }
  }
  if (group > group_limit) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': a work-group of %zu items exceeds the %s %zu", k->name, group,
                kernel_limit ? "kernel's limit of" : "device's", group_limit);
    if (kernel_limit)
      kiln__error_suggest("use a work-group of at most %zu items for this kernel (its registers "
                          "or local memory bound it below the device's %zu)",
                          group_limit, p->max_work_group_size);
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  /* The whole range, each dimension rounded up to its local size (1 where the caller
   * gave none: the backend's choice only rounds further, and its own check sees it),
   * must be countable: at most KILN__MAX_TOTAL_ITEMS work-items, so that every
   * backend's linear work-item and work-group arithmetic stays within size_t. */
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  size_t total = 1;
  for (unsigned d = 0; d < r->dims; d++) {
    size_t l = given && r->local[d] ? r->local[d] : 1;
    size_t groups = r->global[d] / l + (r->global[d] % l != 0);
    size_t rounded = groups <= KILN__MAX_TOTAL_ITEMS / l ? groups * l : 0; /* 0: too many */
    if (rounded == 0 || rounded > KILN__MAX_TOTAL_ITEMS / total) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "kernel '%s': a range of %zu x %zu x %zu work-items%s exceeds the %zu (2^63 - 1) "
                  "work-items one launch may have",
                  k->name, r->global[0], r->dims > 1 ? r->global[1] : (size_t)1,
                  r->dims > 2 ? r->global[2] : (size_t)1,
                  given ? " (rounded up to the local size)" : "", (size_t)KILN__MAX_TOTAL_ITEMS);
      kiln__error_suggest("split the work into several launches, each with an offset argument");
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
    total *= rounded;
  }
  return KILN_SUCCESS;
}

static kiln_status check_args(const kiln__kernel_obj *k, const kiln__context_obj *ctx,
                              const kiln_arg *args, size_t count, size_t *storage_bytes) {
  if (count != k->param_count) {
    kiln__error(KILN_ERROR_KERNEL_ARGS, "kernel '%s' takes %u argument%s, got %zu", k->name,
                k->param_count, k->param_count == 1 ? "" : "s", count);
    return KILN_ERROR_KERNEL_ARGS;
  }
  if (count && !args)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "kernel '%s': args is NULL with count %zu",
                       k->name, count);
  size_t storage = 0, local_total = 0, local_count = 0;
  for (size_t i = 0; i < count; i++) {
    const kiln_param *p = &k->params[i];
    const kiln_arg *a = &args[i];
    char got[64];
    describe_arg(a, got, sizeof got);
    bool want_buffer = p->kind <= KILN_PARAM_BUFFER_READ_WRITE;
    if (want_buffer) {
      if (a->kind != KILN_ARG_BUFFER) {
        kiln__error(KILN_ERROR_KERNEL_ARGS,
                    "kernel '%s' argument %zu: expected a buffer (%s), got %s", k->name, i,
                    param_kind_name(p->kind), got);
        return KILN_ERROR_KERNEL_ARGS;
      }
      kiln_status st = kiln__check_handle(a->buffer, KILN__TAG_BUFFER, "buffer argument");
      if (st != KILN_SUCCESS) {
        char msg[sizeof kiln_last_error()->message];
        kiln__strlcpy(msg, kiln_last_error()->message, sizeof msg);
        kiln__error(st, "kernel '%s' argument %zu: %s", k->name, i, msg);
        return st;
      }
      if (a->buffer->h.ctx != ctx) {
        kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                    "kernel '%s' argument %zu: buffer %p belongs to another context", k->name, i,
                    (void *)a->buffer);
        return KILN_ERROR_DEVICE_MISMATCH;
      }
      if ((st = kiln__managed_check_use(a->buffer, p->kind != KILN_PARAM_BUFFER_READ)) !=
          KILN_SUCCESS)
        return st;
    } else if (p->kind == KILN_PARAM_SCALAR) {
      if (a->kind != KILN_ARG_SCALAR || a->bytes != p->bytes) {
        kiln__error(KILN_ERROR_KERNEL_ARGS,
                    "kernel '%s' argument %zu: expected a %zu-byte scalar, got %s", k->name, i,
                    p->bytes, got);
        return KILN_ERROR_KERNEL_ARGS;
      }
      if (!a->value) {
        kiln__error(KILN_ERROR_KERNEL_ARGS,
                    "kernel '%s' argument %zu: scalar value pointer is NULL", k->name, i);
        return KILN_ERROR_KERNEL_ARGS;
      }
      storage += (a->bytes + 15u) & ~(size_t)15u;
    } else {
      if (a->kind != KILN_ARG_LOCAL || a->bytes == 0) {
        kiln__error(KILN_ERROR_KERNEL_ARGS,
                    "kernel '%s' argument %zu: expected local memory (bytes > 0), got %s", k->name,
                    i, got);
        return KILN_ERROR_KERNEL_ARGS;
      }
      const kiln_device_props *dp = &ctx->device->props;
      if (a->bytes > dp->local_mem_bytes) {
        kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                    "kernel '%s' argument %zu: %zu bytes of local memory exceed the device's %llu",
                    k->name, i, a->bytes, (unsigned long long)dp->local_mem_bytes);
        return KILN_ERROR_LIMIT_EXCEEDED;
      }
      storage += (a->bytes + 63u) & ~(size_t)63u;
      if (k->local_align_bytes > 1) /* the backend places each part aligned */
        local_total =
            (local_total + k->local_align_bytes - 1) / k->local_align_bytes * k->local_align_bytes;
      local_total += a->bytes; /* each <= local_mem_bytes, at most 64 of them: no overflow */
      local_count++;
    }
  }
  /* The work-group's local memory: its local arguments (each part aligned as the
   * backend places it) plus what the kernel declares itself (kernel->static_local_bytes,
   * filled by the backend at kernel creation). */
  const kiln_device_props *dp = &ctx->device->props;
  if ((local_count > 1 || k->static_local_bytes) &&
      local_total + k->static_local_bytes > dp->local_mem_bytes) {
    char own[64] = "";
    if (k->static_local_bytes)
      snprintf(own, sizeof own, " (plus %llu it declares itself)",
               (unsigned long long)k->static_local_bytes);
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "kernel '%s': its %zu local-memory arguments total %zu bytes%s, more than the "
                "device's %llu bytes of local memory per work-group",
                k->name, local_count, local_total, own, (unsigned long long)dp->local_mem_bytes);
    kiln__error_suggest("give the local arguments fewer bytes in all (smaller tiles), or use a "
                        "global buffer");
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  *storage_bytes = storage;
  return KILN_SUCCESS;
}

static kiln_status do_launch(kiln_stream stream, kiln_kernel kernel, const kiln_range *range,
                             const kiln_arg *args, size_t count, bool async, kiln_pending *token,
                             const char *file, int line) {
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if ((st = kiln__check_handle(kernel, KILN__TAG_KERNEL, "kernel")) != KILN_SUCCESS)
    return st;
  kiln__context_obj *ctx = stream->h.ctx;
  if (kernel->h.ctx != ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "kernel '%s' and stream %p belong to different contexts", kernel->name,
                       (void *)stream);
  if ((st = kiln__check_range_arg(kernel, range, &ctx->device->props)) != KILN_SUCCESS)
    return st;
  if (ctx->h.ops->launch_check &&
      (st = ctx->h.ops->launch_check(&kernel->view, range)) != KILN_SUCCESS)
    return st;
  size_t storage_bytes = 0;
  if ((st = check_args(kernel, ctx, args, count, &storage_bytes)) != KILN_SUCCESS)
    return st;
  /* The local size kiln remembers or autotunes, when the caller gives none (tune.c): it
   * fits every range of the class, checked when chosen. */
  kiln_range eff = *range;
  struct kiln__tune_entry *timed = NULL;
  uint32_t cand = 0;
  bool given = false;
  for (unsigned d = 0; d < range->dims; d++)
    given = given || range->local[d];
  if (!given)
    kiln__tune_pick(kernel, range, &eff, &timed, &cand);
  if (kiln__log_enabled(KILN_LOG_DEBUG)) {
    if (timed) /* the size this launch tries, not the one reported meanwhile */
      kiln__log(KILN_LOG_DEBUG,
                "kernel '%s' on %s: local size %zux%zux%zu (autotuning candidate %u) for a %u-D "
                "range of %zu in dimension 0",
                kernel->name, kernel->h.ops->name, eff.local[0],
                eff.dims > 1 ? eff.local[1] : (size_t)1, eff.dims > 2 ? eff.local[2] : (size_t)1,
                cand + 1, eff.dims, eff.global[0]);
    else
      kiln__log_launch_config(kernel, range);
  }

  kiln__op_obj *op;
  if ((st = kiln__op_new(stream, KILN__OP_LAUNCH, &op)) != KILN_SUCCESS) {
    if (timed)
      kiln__tune_record(timed, cand, 0, st);
    return st;
  }
  op->tune_entry = timed;
  op->tune_cand = cand;
  op->u.launch.range = eff;
  op->u.launch.arg_count = (uint32_t)count;
  op->u.launch.args = count <= KILN__INLINE_ARGS ? op->u.launch.args_inline
                                                 : kiln__alloc(sizeof(kiln__launch_arg) * count);
  op->u.launch.storage_bytes = storage_bytes;
  op->u.launch.storage = storage_bytes <= KILN__INLINE_SCALAR_BYTES
                             ? op->u.launch.storage_inline
                             : kiln__alloc_aligned(storage_bytes, 64);
  if (!op->u.launch.args || !op->u.launch.storage) {
    kiln__op_discard(op);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory copying %zu launch arguments", count);
  }
  kiln__use uses[KILN_MAX_KERNEL_ARGS];
  size_t use_count = 0, at = 0;
  for (size_t i = 0; i < count; i++) {
    kiln__launch_arg *la = &op->u.launch.args[i];
    la->kind = args[i].kind;
    la->reads = la->writes = false;
    la->buffer = NULL;
    la->offset = at;
    la->bytes = args[i].bytes;
    if (args[i].kind == KILN_ARG_BUFFER) {
      la->buffer = &args[i].buffer->view;
      la->bytes = 0;
      la->reads = kernel->params[i].kind != KILN_PARAM_BUFFER_WRITE;
      la->writes = kernel->params[i].kind != KILN_PARAM_BUFFER_READ;
      uses[use_count].buffer = args[i].buffer;
      uses[use_count].write = kernel->params[i].kind != KILN_PARAM_BUFFER_READ;
      use_count++;
    } else if (args[i].kind == KILN_ARG_SCALAR) {
      memcpy(op->u.launch.storage + at, args[i].value, args[i].bytes);
      at += (args[i].bytes + 15u) & ~(size_t)15u;
    } else {
      at += (args[i].bytes + 63u) & ~(size_t)63u;
    }
  }
  op->u.launch.kernel = kernel;
  if (async)
    return kiln__submit(op, uses, use_count, token, file, line);
  return kiln__submit_and_wait(op, uses, use_count);
}

kiln_status kiln_launch(kiln_stream stream, kiln_kernel kernel, const kiln_range *range,
                        const kiln_arg *args, size_t count) {
  KILN__API_ENTER();
  return do_launch(stream, kernel, range, args, count, false, NULL, NULL, 0);
}

kiln_status kiln_launch_async_at(kiln_stream stream, kiln_kernel kernel, const kiln_range *range,
                                 const kiln_arg *args, size_t count, kiln_pending *token,
                                 const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  if (!token)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "token is NULL: every _async call needs one (or KILN_NO_TOKEN when a "
                       "later stream, event or context wait covers it)");
  if (token != KILN_NO_TOKEN)
    token->id = 0;
  return do_launch(stream, kernel, range, args, count, true, token, file, line);
}
