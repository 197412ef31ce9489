/* SPDX-License-Identifier: MIT */
/* Managed buffers (include/kiln/managed.h): a host shadow and two dirty bits per
 * buffer. host_dirty: the program wrote the shadow (a write release); the next device
 * use uploads it, on the using op's stream, just before it (kiln__submit calls
 * kiln__managed_before_use). device_dirty: a device op wrote the buffer since the last
 * download; the next acquire downloads. Both are never set together: an upload clears
 * host_dirty before the device write that sets device_dirty, and an acquire downloads
 * before the program may write. Zero-copy (cpu): no shadow, the host copy is the
 * buffer's memory, nothing moves. The shadow is a block of the context's pinned host pool.
 * Every state change under the buffer's managed lock;
 * lock order: the managed lock, then the stream's submit lock and hazard locks. */
#include <string.h>

#include "core/core.h"
#include "kiln/managed.h"

typedef struct kiln__managed {
  pthread_mutex_t lock;
  unsigned char *shadow; /* NULL: zero-copy */
  void *host;            /* what acquire gives: the shadow or the buffer's own memory */
  size_t bytes;
  bool host_dirty, device_dirty, writer;
  bool dead; /* the buffer was destroyed: the record outlives it (core.h) */
  uint32_t readers;
} kiln__managed;

void kiln__managed_retire(kiln__buffer_obj *b) {
  kiln__managed *m = b->managed;
  pthread_mutex_lock(&m->lock);
  m->dead = true;
  unsigned char *shadow = m->shadow;
  m->shadow = NULL;
  m->host = NULL;
  pthread_mutex_unlock(&m->lock);
  if (shadow) /* the buffer's work is done (destroy quiesced it, or no stream is left) */
    kiln__host_pool_free_now(b->h.ctx, shadow);
}

void kiln__managed_slot_free(kiln__buffer_obj *b) {
  kiln__managed *m = b->managed;
  b->managed = NULL;
  pthread_mutex_destroy(&m->lock);
  kiln__free(m, sizeof *m);
}

/* A call that checked the handle before a destroy on another thread ran to its end;
 * called with m->lock, which the destroy takes to mark the record dead. */
static kiln_status refuse_dead(const kiln__buffer_obj *b) {
  return kiln__error(KILN_ERROR_INVALID_HANDLE,
                     "buffer %p was destroyed by another thread while this call used it",
                     (const void *)b);
}

static kiln_status refuse_acquired(const kiln__buffer_obj *b, const kiln__managed *m) {
  kiln__error(KILN_ERROR_INVALID_STATE,
              "buffer %p is acquired for %s with kiln_managed_acquire: a device use that %s it "
              "is refused until kiln_managed_release",
              (void *)b, m->writer ? "write" : "read", m->writer ? "touches" : "writes");
  kiln__error_suggest("release the buffer (kiln_managed_release) before launching on it or "
                      "transferring to or from it");
  return KILN_ERROR_INVALID_STATE;
}

kiln_status kiln__managed_check_use(kiln__buffer_obj *b, bool write) {
  kiln__managed *m = b->managed;
  if (!m)
    return KILN_SUCCESS;
  pthread_mutex_lock(&m->lock);
  bool dead = m->dead, refused = m->writer || (write && m->readers);
  pthread_mutex_unlock(&m->lock);
  if (dead)
    return refuse_dead(b);
  return refused ? refuse_acquired(b, m) : KILN_SUCCESS;
}

kiln_status kiln__managed_before_use(kiln__stream_obj *s, kiln__buffer_obj *b, bool write) {
  kiln__managed *m = b->managed;
  pthread_mutex_lock(&m->lock);
  if (m->dead) {
    pthread_mutex_unlock(&m->lock);
    return refuse_dead(b);
  }
  if (m->writer || (write && m->readers)) {
    pthread_mutex_unlock(&m->lock);
    return refuse_acquired(b, m);
  }
  kiln_status st = KILN_SUCCESS;
  if (m->host_dirty) { /* upload the host copy on this stream, before the op */
    kiln__op_obj *up;
    if ((st = kiln__op_new(s, KILN__OP_WRITE, &up)) == KILN_SUCCESS) {
      up->managed_sync = 1;
      up->u.write.buffer = b;
      up->u.write.offset = 0;
      up->u.write.bytes = m->bytes;
      up->u.write.src = m->shadow;
      kiln__use use = {b, true};
      if ((st = kiln__submit(up, &use, 1, NULL, NULL, 0)) == KILN_SUCCESS)
        m->host_dirty = false;
    }
  }
  if (st == KILN_SUCCESS && write && m->shadow)
    m->device_dirty = true;
  pthread_mutex_unlock(&m->lock);
  return st;
}

kiln_status kiln_managed_create(kiln_context context, size_t bytes, kiln_buffer *buffer) {
  KILN__API_ENTER();
  if (!buffer)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buffer (the out-parameter) is NULL");
  *buffer = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  const kiln_device_props *p = &context->device->props;
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is 0: a buffer holds at least a byte");
  if (bytes > p->max_alloc_bytes)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "bytes %zu exceeds the largest allocation of device %s:%u (%llu bytes)",
                       bytes, kiln_backend_name(p->backend), p->index,
                       (unsigned long long)p->max_alloc_bytes);
  kiln__managed *m = kiln__calloc(1, sizeof *m);
  if (!m)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory for a managed buffer's record");
  m->bytes = bytes;
  bool zero_copy = p->backend == KILN_BACKEND_CPU;
  /* The host copy is pinned memory of the context's host pool: uploads and downloads go
   * straight to the device (CUDA: no staging). */
  if (!zero_copy &&
      (st = kiln__host_pool_alloc(context, bytes, (void **)&m->shadow)) != KILN_SUCCESS) {
    kiln__free(m, sizeof *m);
    return st;
  }
  kiln__buffer_obj *b;
  if ((st = kiln__buffer_new(context, bytes, "managed", &b)) != KILN_SUCCESS) {
    b = NULL;
  } else if ((st = context->h.ops->buffer_create(&b->view)) != KILN_SUCCESS) {
    kiln__buffer_release(b);
    b = NULL;
  }
  if (!b) {
    if (m->shadow)
      kiln__host_pool_free_now(context, m->shadow);
    kiln__free(m, sizeof *m);
    return st;
  }
  pthread_mutex_init(&m->lock, NULL);
  m->host = zero_copy ? b->view.native : m->shadow;
  b->managed = m;
  atomic_store(&b->h.tag, KILN__TAG_BUFFER);
  *buffer = b;
  return KILN_SUCCESS;
}

static kiln_status check_managed(kiln_buffer buffer) {
  kiln_status st = kiln__check_handle(buffer, KILN__TAG_BUFFER, "buffer");
  if (st != KILN_SUCCESS)
    return st;
  if (!buffer->managed) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buffer %p is not a managed buffer", (void *)buffer);
    kiln__error_suggest("make it with kiln_managed_create, or move its data with "
                        "kiln_buffer_read / kiln_buffer_write");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  return KILN_SUCCESS;
}

kiln_status kiln_managed_acquire(kiln_buffer buffer, kiln_param_kind access, void **ptr) {
  KILN__API_ENTER();
  if (!ptr)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr (the out-parameter) is NULL");
  *ptr = NULL;
  kiln_status st = check_managed(buffer);
  if (st != KILN_SUCCESS)
    return st;
  if (access != KILN_PARAM_BUFFER_READ && access != KILN_PARAM_BUFFER_WRITE &&
      access != KILN_PARAM_BUFFER_READ_WRITE)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "access is %d: give KILN_PARAM_BUFFER_READ, KILN_PARAM_BUFFER_WRITE or "
                       "KILN_PARAM_BUFFER_READ_WRITE",
                       (int)access);
  kiln__buffer_obj *b = buffer;
  kiln__managed *m = b->managed;
  bool write = access != KILN_PARAM_BUFFER_READ;
  pthread_mutex_lock(&m->lock);
  if (m->dead) {
    pthread_mutex_unlock(&m->lock);
    return refuse_dead(b);
  }
  if (m->writer || (write && m->readers)) {
    bool w = m->writer;
    pthread_mutex_unlock(&m->lock);
    kiln__error(KILN_ERROR_INVALID_STATE, "buffer %p is already acquired for %s%s", (void *)b,
                w ? "write" : "read", write ? ": a write acquire is exclusive" : "");
    kiln__error_suggest("release it (kiln_managed_release) first");
    return KILN_ERROR_INVALID_STATE;
  }
  kiln__buffer_quiesce(b); /* device work on it, and uploads reading the shadow */
  if (m->device_dirty) {
    kiln__stream_obj *s;
    kiln__op_obj *op;
    if ((st = kiln__default_stream(b->h.ctx, &s)) == KILN_SUCCESS &&
        (st = kiln__op_new(s, KILN__OP_READ, &op)) == KILN_SUCCESS) {
      op->managed_sync = 1;
      op->u.read.buffer = b;
      op->u.read.offset = 0;
      op->u.read.bytes = m->bytes;
      op->u.read.dst = m->shadow;
      kiln__use use = {b, false};
      st = kiln__submit_and_wait(op, &use, 1);
    }
    if (st != KILN_SUCCESS) {
      pthread_mutex_unlock(&m->lock);
      if (!kiln_last_error()->message[0])
        kiln__error(st, "downloading the managed buffer %p failed", (void *)b);
      return st;
    }
    m->device_dirty = false;
  }
  if (write)
    m->writer = true;
  else
    m->readers++;
  void *host = m->host;
  pthread_mutex_unlock(&m->lock);
  *ptr = host;
  return KILN_SUCCESS;
}

kiln_status kiln_managed_release(kiln_buffer buffer) {
  KILN__API_ENTER();
  kiln_status st = check_managed(buffer);
  if (st != KILN_SUCCESS)
    return st;
  kiln__managed *m = buffer->managed;
  pthread_mutex_lock(&m->lock);
  if (m->dead) {
    pthread_mutex_unlock(&m->lock);
    return refuse_dead(buffer);
  }
  if (!m->writer && !m->readers) {
    pthread_mutex_unlock(&m->lock);
    kiln__error(KILN_ERROR_INVALID_STATE,
                "buffer %p is not acquired: kiln_managed_release ends a kiln_managed_acquire",
                (void *)buffer);
    kiln__error_suggest("call kiln_managed_acquire first, and release each acquire once");
    return KILN_ERROR_INVALID_STATE;
  }
  if (m->writer) {
    m->writer = false;
    if (m->shadow)
      m->host_dirty = true;
  } else {
    m->readers--;
  }
  pthread_mutex_unlock(&m->lock);
  return KILN_SUCCESS;
}
