/* SPDX-License-Identifier: MIT */
/* Buffers: validation of every transfer (ranges, overflow, contexts, patterns), then
 * one op per transfer on the caller's stream (async) or the context's default stream
 * (blocking). Cross-stream ordering comes from kiln__submit's hazard tracking. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

kiln_status kiln__buffer_new(kiln__context_obj *ctx, size_t bytes, const char *label,
                             kiln__buffer_obj **out) {
  void *e;
  kiln_status st = kiln__slab_alloc(&ctx->buffers, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__buffer_obj *b = e;
  if (b->managed) /* the record of the slot's last buffer: its late users are long gone */
    kiln__managed_slot_free(b);
  b->h.ops = ctx->h.ops;
  b->h.generation = ctx->h.generation;
  b->h.ctx = ctx;
  b->bytes = bytes;
  kiln__strlcpy(b->label, label ? label : "", sizeof b->label);
  b->readers = b->readers_inline;
  b->reader_cap = 4;
  *out = b;
  return KILN_SUCCESS;
}

void kiln__buffer_release(kiln__buffer_obj *b) {
  if (b->managed)
    kiln__managed_retire(b);
  if (b->readers != b->readers_inline)
    kiln__free(b->readers, sizeof(kiln__dep) * b->reader_cap);
  /* The hazard mutex stays (kiln__buffer_slot_fini): a call on another thread that
   * checked the handle before this destroy may still lock it, to find the buffer dead. */
  kiln__slab_release(&b->h.ctx->buffers, b);
}

void kiln__buffer_slot_init(void *elem) {
  pthread_mutex_init(&((kiln__buffer_obj *)elem)->hazard_lock, NULL);
}

void kiln__buffer_slot_fini(void *elem) {
  kiln__buffer_obj *b = elem;
  if (b->managed)
    kiln__managed_slot_free(b);
  pthread_mutex_destroy(&b->hazard_lock);
}

kiln_status kiln_buffer_create(kiln_context context, const kiln_buffer_desc *desc,
                               kiln_buffer *buffer) {
  KILN__API_ENTER();
  if (!buffer)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buffer (the out-parameter) is NULL");
  *buffer = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!desc)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL: a buffer needs its size");
  if (desc->struct_size < sizeof(kiln_buffer_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_BUFFER_DESC_INIT",
                       desc->struct_size, sizeof(kiln_buffer_desc));
  if (desc->bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->bytes is 0: a buffer needs at least 1 byte");
  if (desc->flags)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->flags is 0x%x: no flags are defined yet",
                       desc->flags);
  const kiln_device_props *p = &context->device->props;
  if ((uint64_t)desc->bytes > p->max_alloc_bytes) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "buffer of %zu bytes exceeds the largest allocation of device %s:%u (%llu bytes)",
                desc->bytes, kiln_backend_name(p->backend), p->index,
                (unsigned long long)p->max_alloc_bytes);
    kiln__error_suggest("split the data over several buffers of at most max_alloc_bytes");
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  kiln__buffer_obj *b;
  if (context->buffer_pool) { /* KILN_CONTEXT_POOLED */
    st = kiln__pool_buffer_create(context, desc->bytes, desc->label, &b);
    if (st == KILN_SUCCESS)
      *buffer = b;
    return st;
  }
  st = kiln__buffer_new(context, desc->bytes, desc->label, &b);
  if (st != KILN_SUCCESS)
    return st;
  st = context->h.ops->buffer_create(&b->view);
  if (st == KILN_ERROR_OUT_OF_DEVICE_MEMORY) { /* kiln's pools give back, once */
    uint64_t trimmed = kiln__pool_context_trim(context);
    if (trimmed) {
      kiln__log(KILN_LOG_INFO,
                "a buffer of %zu bytes failed: trimmed %llu cached bytes of the context's "
                "pools and retrying",
                desc->bytes, (unsigned long long)trimmed);
      st = context->h.ops->buffer_create(&b->view);
      if (st != KILN_SUCCESS)
        kiln__error_suggest("the context's pools already gave their %llu cached bytes back and "
                            "the allocation failed again: free buffers or ask for less "
                            "(kiln_budget_check says what fits)",
                            (unsigned long long)trimmed);
    }
  }
  if (st != KILN_SUCCESS) {
    kiln__buffer_release(b);
    return st;
  }
  atomic_store(&b->h.tag, KILN__TAG_BUFFER);
  *buffer = b;
  return KILN_SUCCESS;
}

void kiln__buffer_quiesce(kiln__buffer_obj *b) {
  kiln__dep deps[64];
  uint32_t n = 0;
  pthread_mutex_lock(&b->hazard_lock);
  if (b->last_write.stream)
    deps[n++] = b->last_write;
  for (uint32_t i = 0; i < b->reader_count && n < 64; i++)
    deps[n++] = b->readers[i];
  pthread_mutex_unlock(&b->hazard_lock);
  for (uint32_t i = 0; i < n; i++)
    kiln__dep_wait(&deps[i], UINT64_MAX);
  /* More readers than fit above: wait for whole streams. */
  pthread_mutex_lock(&b->hazard_lock);
  uint32_t more = b->reader_count > 63 ? b->reader_count : 0;
  pthread_mutex_unlock(&b->hazard_lock);
  for (uint32_t i = 63; i < more; i++) {
    pthread_mutex_lock(&b->hazard_lock);
    kiln__dep d = i < b->reader_count ? b->readers[i] : (kiln__dep){NULL, 0, 0};
    pthread_mutex_unlock(&b->hazard_lock);
    kiln__dep_wait(&d, UINT64_MAX);
  }
}

kiln_status kiln_buffer_destroy(kiln_buffer buffer) {
  KILN__API_ENTER();
  if (!buffer)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(buffer, KILN__TAG_BUFFER, "buffer");
  if (st != KILN_SUCCESS)
    return st;
  /* Dead before its work is waited for: a call on another thread that checked the
   * handle earlier is refused when it registers its op (kiln__submit checks under the
   * same lock), so nothing is queued on storage freed below; of two destroys, one. */
  pthread_mutex_lock(&buffer->hazard_lock);
  uint32_t alive = KILN__TAG_BUFFER;
  bool mine =
      atomic_compare_exchange_strong(&buffer->h.tag, &alive, KILN__TAG_BUFFER | KILN__TAG_DEAD);
  pthread_mutex_unlock(&buffer->hazard_lock);
  if (!mine)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "buffer %p was destroyed", (void *)buffer);
  kiln__buffer_quiesce(buffer);
  /* A covering wait for the host memory of the buffer's _async reads and writes. */
  kiln__guard_release_buffer(buffer);
  if (buffer->pool) {
    kiln__pool_buffer_destroy(buffer); /* its block goes back to its pool */
    return KILN_SUCCESS;
  }
  buffer->h.ops->buffer_destroy(&buffer->view);
  kiln__buffer_release(buffer);
  return KILN_SUCCESS;
}

kiln_status kiln_buffer_get_size(kiln_buffer buffer, size_t *bytes) {
  KILN__API_ENTER();
  if (!bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is NULL");
  *bytes = 0;
  kiln_status st = kiln__check_handle(buffer, KILN__TAG_BUFFER, "buffer");
  if (st != KILN_SUCCESS)
    return st;
  *bytes = buffer->bytes;
  return KILN_SUCCESS;
}

kiln_status kiln_buffer_get_context(kiln_buffer buffer, kiln_context *context) {
  KILN__API_ENTER();
  if (!context)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "context (the out-parameter) is NULL");
  *context = NULL;
  kiln_status st = kiln__check_handle(buffer, KILN__TAG_BUFFER, "buffer");
  if (st != KILN_SUCCESS)
    return st;
  *context = buffer->h.ctx;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- validation */
static kiln_status check_range(const kiln__buffer_obj *b, const char *what, size_t offset,
                               size_t bytes) {
  char name[96];
  if (b->label[0])
    snprintf(name, sizeof name, "%s (buffer '%s')", what, b->label);
  else
    snprintf(name, sizeof name, "%s", what);
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is 0: nothing to transfer on %s", name);
  if (offset > b->bytes || bytes > b->bytes - offset) {
    kiln__error(KILN_ERROR_OUT_OF_RANGE,
                "%s: offset %zu + bytes %zu reaches past its end (%zu bytes)", name, offset, bytes,
                b->bytes);
    return KILN_ERROR_OUT_OF_RANGE;
  }
  return KILN_SUCCESS;
}

/* Stream for the call: the given one (async) or the context's default (blocking). */
static kiln_status pick_stream(kiln_stream stream, kiln__buffer_obj *b, kiln__stream_obj **out) {
  if (!stream)
    return kiln__default_stream(b->h.ctx, out);
  kiln_status st = kiln__check_handle(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  if (stream->h.ctx != b->h.ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "buffer %p and stream %p belong to different contexts", (void *)b,
                       (void *)stream);
  *out = stream;
  return KILN_SUCCESS;
}

static kiln_status finish(kiln__op_obj *op, const kiln__use *uses, size_t n, bool async,
                          kiln_pending *token, const char *file, int line) {
  if (async)
    return kiln__submit(op, uses, n, token, file, line);
  kiln_status st = kiln__submit_and_wait(op, uses, n);
  if (st != KILN_SUCCESS && !kiln_last_error()->message[0])
    kiln__error(st, "the transfer failed: %s", kiln_status_message(st));
  return st;
}

static kiln_status check_async_args(kiln_stream stream, kiln_pending *token) {
  if (!token)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "token is NULL: every _async call needs one (or KILN_NO_TOKEN when a "
                       "later stream, event or context wait covers it)");
  if (token != KILN_NO_TOKEN)
    token->id = 0;
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_HANDLE,
                       "stream is NULL: _async calls need a stream (blocking calls use the "
                       "context's own)");
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- write / read */
static kiln_status do_write(kiln_stream stream, kiln_buffer dst, size_t offset, size_t bytes,
                            const void *src, bool async, kiln_pending *token, const char *file,
                            int line) {
  kiln_status st = kiln__check_handle(dst, KILN__TAG_BUFFER, "dst");
  if (st != KILN_SUCCESS)
    return st;
  if (!src)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "src is NULL");
  if ((st = check_range(dst, "dst", offset, bytes)) != KILN_SUCCESS)
    return st;
  if ((st = kiln__managed_check_use(dst, true)) != KILN_SUCCESS)
    return st;
  kiln__stream_obj *s;
  if ((st = pick_stream(async ? stream : NULL, dst, &s)) != KILN_SUCCESS)
    return st;
  kiln__op_obj *op;
  if ((st = kiln__op_new(s, KILN__OP_WRITE, &op)) != KILN_SUCCESS)
    return st;
  op->u.write.buffer = dst;
  op->u.write.offset = offset;
  op->u.write.bytes = bytes;
  op->u.write.src = src;
  if (async) {
    op->host_ptr = src;
    op->host_bytes = bytes;
  }
  kiln__use use = {dst, true};
  return finish(op, &use, 1, async, token, file, line);
}

kiln_status kiln_buffer_write(kiln_buffer dst, size_t offset, size_t bytes, const void *src) {
  KILN__API_ENTER();
  return do_write(NULL, dst, offset, bytes, src, false, NULL, NULL, 0);
}

kiln_status kiln_buffer_write_async_at(kiln_stream stream, kiln_buffer dst, size_t offset,
                                       size_t bytes, const void *src, kiln_pending *token,
                                       const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln_status st = check_async_args(stream, token);
  if (st != KILN_SUCCESS)
    return st;
  return do_write(stream, dst, offset, bytes, src, true, token, file, line);
}

static kiln_status do_read(kiln_stream stream, kiln_buffer src, size_t offset, size_t bytes,
                           void *dst, bool async, kiln_pending *token, const char *file, int line) {
  kiln_status st = kiln__check_handle(src, KILN__TAG_BUFFER, "src");
  if (st != KILN_SUCCESS)
    return st;
  if (!dst)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "dst is NULL");
  if ((st = check_range(src, "src", offset, bytes)) != KILN_SUCCESS ||
      (st = kiln__managed_check_use(src, false)) != KILN_SUCCESS)
    return st;
  kiln__stream_obj *s;
  if ((st = pick_stream(async ? stream : NULL, src, &s)) != KILN_SUCCESS)
    return st;
  kiln__op_obj *op;
  if ((st = kiln__op_new(s, KILN__OP_READ, &op)) != KILN_SUCCESS)
    return st;
  op->u.read.buffer = src;
  op->u.read.offset = offset;
  op->u.read.bytes = bytes;
  op->u.read.dst = dst;
  if (async) {
    op->host_ptr = dst;
    op->host_bytes = bytes;
  }
  kiln__use use = {src, false};
  return finish(op, &use, 1, async, token, file, line);
}

kiln_status kiln_buffer_read(kiln_buffer src, size_t offset, size_t bytes, void *dst) {
  KILN__API_ENTER();
  return do_read(NULL, src, offset, bytes, dst, false, NULL, NULL, 0);
}

kiln_status kiln_buffer_read_async_at(kiln_stream stream, kiln_buffer src, size_t offset,
                                      size_t bytes, void *dst, kiln_pending *token,
                                      const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln_status st = check_async_args(stream, token);
  if (st != KILN_SUCCESS)
    return st;
  return do_read(stream, src, offset, bytes, dst, true, token, file, line);
}

/* ------------------------------------------------------------- copy */
static kiln_status do_copy(kiln_stream stream, kiln_buffer dst, size_t dst_offset, kiln_buffer src,
                           size_t src_offset, size_t bytes, bool async, kiln_pending *token,
                           const char *file, int line) {
  kiln_status st = kiln__check_handle(dst, KILN__TAG_BUFFER, "dst");
  if (st != KILN_SUCCESS)
    return st;
  if ((st = kiln__check_handle(src, KILN__TAG_BUFFER, "src")) != KILN_SUCCESS)
    return st;
  if (dst->h.ctx != src->h.ctx) {
    const kiln_device_props *a = &dst->h.ctx->device->props, *b = &src->h.ctx->device->props;
    kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                "dst %p (context on %s:%u) and src %p (context on %s:%u) belong to different "
                "contexts",
                (void *)dst, kiln_backend_name(a->backend), a->index, (void *)src,
                kiln_backend_name(b->backend), b->index);
    return KILN_ERROR_DEVICE_MISMATCH;
  }
  if ((st = check_range(dst, "dst", dst_offset, bytes)) != KILN_SUCCESS)
    return st;
  if ((st = check_range(src, "src", src_offset, bytes)) != KILN_SUCCESS)
    return st;
  if (dst == src && dst_offset < src_offset + bytes && src_offset < dst_offset + bytes) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "copy within buffer %p: ranges [%zu, %zu) and [%zu, %zu) overlap", (void *)dst,
                src_offset, src_offset + bytes, dst_offset, dst_offset + bytes);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if ((st = kiln__managed_check_use(dst, true)) != KILN_SUCCESS ||
      (st = kiln__managed_check_use(src, false)) != KILN_SUCCESS)
    return st;
  kiln__stream_obj *s;
  if ((st = pick_stream(async ? stream : NULL, dst, &s)) != KILN_SUCCESS)
    return st;
  kiln__op_obj *op;
  if ((st = kiln__op_new(s, KILN__OP_COPY, &op)) != KILN_SUCCESS)
    return st;
  op->u.copy.dst = dst;
  op->u.copy.src = src;
  op->u.copy.dst_offset = dst_offset;
  op->u.copy.src_offset = src_offset;
  op->u.copy.bytes = bytes;
  kiln__use uses[2] = {{dst, true}, {src, false}};
  return finish(op, uses, 2, async, token, file, line);
}

kiln_status kiln_buffer_copy(kiln_buffer dst, size_t dst_offset, kiln_buffer src, size_t src_offset,
                             size_t bytes) {
  KILN__API_ENTER();
  return do_copy(NULL, dst, dst_offset, src, src_offset, bytes, false, NULL, NULL, 0);
}

kiln_status kiln_buffer_copy_async_at(kiln_stream stream, kiln_buffer dst, size_t dst_offset,
                                      kiln_buffer src, size_t src_offset, size_t bytes,
                                      kiln_pending *token, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln_status st = check_async_args(stream, token);
  if (st != KILN_SUCCESS)
    return st;
  return do_copy(stream, dst, dst_offset, src, src_offset, bytes, true, token, file, line);
}

/* ------------------------------------------------------------- fill */
static kiln_status do_fill(kiln_stream stream, kiln_buffer dst, size_t offset, size_t bytes,
                           const void *pattern, size_t pattern_bytes, bool async,
                           kiln_pending *token, const char *file, int line) {
  kiln_status st = kiln__check_handle(dst, KILN__TAG_BUFFER, "dst");
  if (st != KILN_SUCCESS)
    return st;
  if (!pattern)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pattern is NULL");
  if (pattern_bytes == 0 || pattern_bytes > 128 || (pattern_bytes & (pattern_bytes - 1)) != 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "pattern_bytes is %zu: it must be 1, 2, 4, 8, 16, 32, 64 or 128",
                       pattern_bytes);
  if ((st = check_range(dst, "dst", offset, bytes)) != KILN_SUCCESS)
    return st;
  if (offset % pattern_bytes || bytes % pattern_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "offset %zu and bytes %zu must be multiples of pattern_bytes %zu", offset,
                       bytes, pattern_bytes);
  if ((st = kiln__managed_check_use(dst, true)) != KILN_SUCCESS)
    return st;
  kiln__stream_obj *s;
  if ((st = pick_stream(async ? stream : NULL, dst, &s)) != KILN_SUCCESS)
    return st;
  kiln__op_obj *op;
  if ((st = kiln__op_new(s, KILN__OP_FILL, &op)) != KILN_SUCCESS)
    return st;
  op->u.fill.buffer = dst;
  op->u.fill.offset = offset;
  op->u.fill.bytes = bytes;
  op->u.fill.pattern_bytes = pattern_bytes;
  memcpy(op->u.fill.pattern, pattern, pattern_bytes); /* copied: the caller's may change */
  kiln__use use = {dst, true};
  return finish(op, &use, 1, async, token, file, line);
}

kiln_status kiln_buffer_fill(kiln_buffer dst, size_t offset, size_t bytes, const void *pattern,
                             size_t pattern_bytes) {
  KILN__API_ENTER();
  return do_fill(NULL, dst, offset, bytes, pattern, pattern_bytes, false, NULL, NULL, 0);
}

kiln_status kiln_buffer_fill_async_at(kiln_stream stream, kiln_buffer dst, size_t offset,
                                      size_t bytes, const void *pattern, size_t pattern_bytes,
                                      kiln_pending *token, const char *file, int line) {
  KILN__API_ENTER_AT(file, line);
  kiln_status st = check_async_args(stream, token);
  if (st != KILN_SUCCESS)
    return st;
  return do_fill(stream, dst, offset, bytes, pattern, pattern_bytes, true, token, file, line);
}
