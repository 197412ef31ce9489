/* SPDX-License-Identifier: MIT */
/* Interop: the native objects behind handles (through the backend's get_native), and
 * buffers around existing native ones (buffer_wrap). The core validates handles and
 * arguments; backends check that a native object belongs to the context. */
#include "core/core.h"

static kiln_status get(const kiln__backend_ops *ops, uint32_t tag, void *handle,
                       kiln_native_kind kind, void *out, const char *what) {
  if (!out)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "out is NULL");
  if (!ops->get_native) {
    kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' has no native %s objects (kind %d)",
                ops->name, what, (int)kind);
    return KILN_ERROR_UNSUPPORTED;
  }
  return ops->get_native(tag, handle, kind, out);
}

kiln_status kiln_device_get_native(kiln_device device, kiln_native_kind kind, void *out) {
  KILN__API_ENTER();
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  kiln_status st = kiln_device_get_props(device, &p); /* validates the device */
  KILN__API_ENTER();
  if (st != KILN_SUCCESS)
    return st;
  return get(device->ops, KILN__TAG_DEVICE, device, kind, out, "device");
}

kiln_status kiln_context_get_native(kiln_context context, kiln_native_kind kind, void *out) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  return st != KILN_SUCCESS ? st
                            : get(context->h.ops, KILN__TAG_CONTEXT, context, kind, out, "context");
}

kiln_status kiln_stream_get_native(kiln_stream stream, kiln_native_kind kind, void *out) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  return st != KILN_SUCCESS ? st
                            : get(stream->h.ops, KILN__TAG_STREAM, stream, kind, out, "stream");
}

kiln_status kiln_buffer_get_native(kiln_buffer buffer, kiln_native_kind kind, void *out) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(buffer, KILN__TAG_BUFFER, "buffer");
  return st != KILN_SUCCESS ? st
                            : get(buffer->h.ops, KILN__TAG_BUFFER, buffer, kind, out, "buffer");
}

kiln_status kiln_kernel_get_native(kiln_kernel kernel, kiln_native_kind kind, void *out) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(kernel, KILN__TAG_KERNEL, "kernel");
  return st != KILN_SUCCESS ? st
                            : get(kernel->h.ops, KILN__TAG_KERNEL, kernel, kind, out, "kernel");
}

kiln_status kiln_buffer_wrap_native(kiln_context context, kiln_native_kind kind, const void *native,
                                    size_t bytes, kiln_buffer *buffer) {
  KILN__API_ENTER();
  if (!buffer)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buffer (the out-parameter) is NULL");
  *buffer = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!native)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "native is NULL");
  if (!bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is 0: a buffer needs at least 1 byte");
  const kiln_device_props *p = &context->device->props;
  if ((uint64_t)bytes > p->max_alloc_bytes) {
    kiln__error(
        KILN_ERROR_LIMIT_EXCEEDED,
        "a wrapped buffer of %zu bytes exceeds the largest allocation of device %s:%u (%llu bytes)",
        bytes, kiln_backend_name(p->backend), p->index, (unsigned long long)p->max_alloc_bytes);
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  if (!context->h.ops->buffer_wrap) {
    kiln__error(KILN_ERROR_UNSUPPORTED, "backend '%s' cannot wrap native buffers (kind %d)",
                context->h.ops->name, (int)kind);
    return KILN_ERROR_UNSUPPORTED;
  }
  kiln__buffer_obj *b;
  st = kiln__buffer_new(context, bytes, "wrapped", &b);
  if (st != KILN_SUCCESS)
    return st;
  st = context->h.ops->buffer_wrap(&b->view, kind, native);
  if (st != KILN_SUCCESS) {
    kiln__buffer_release(b);
    return st;
  }
  b->wrapped = true;
  atomic_store(&b->h.tag, KILN__TAG_BUFFER);
  *buffer = b;
  return KILN_SUCCESS;
}
