/* SPDX-License-Identifier: MIT */
/* Host<->device transfers: page-locked memory goes straight to the driver; pageable
 * memory is staged through a pinned block of the stream's cache (cut into chunks, so
 * the copy of one overlaps the DMA of the next), except small writes and small
 * blocking reads. The cache (cs->stage_free / stage_dead / stage_bytes) is guarded by
 * cs->lock and capped per stream. The submitting thread queues a transfer
 * (kiln__cu_enqueue_transfer); the stream's completion thread copies a staged read
 * out and gives its block back; stream destroy frees the blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

#define STAGE_CHUNK_MIN ((size_t)4 << 20)   /* a transfer is cut into <= 16 chunks of >= this */
#define STAGE_DIRECT_MAX ((size_t)64 << 10) /* pageable writes up to this go to the driver */
#define STAGE_MAX_BYTES ((size_t)1 << 30)   /* pinned staging per stream, at most */

/* A pinned block of the stream's staging cache. */
typedef struct stage_block {
  void *ptr;
  size_t bytes;
  struct stage_block *next;
} stage_block;

/* A staged transfer (op->native_aux): its block and, for a read, one event per chunk,
 * so the completion thread copies each chunk out as soon as it has landed while the
 * DMA of the next ones goes on. */
struct stage_op {
  stage_block *blk;
  bool read;
  void *user; /* read: the user's destination */
  size_t bytes, chunk;
  size_t rec_bytes; /* this record's size */
  unsigned chunks;  /* chunk events recorded so far (read) */
  kiln_CUevent ev[];
};

static size_t stage_chunk(size_t bytes) {
  size_t c = (bytes + 15) / 16;
  c = (c + 4095) / 4096 * 4096;
  return c < STAGE_CHUNK_MIN ? STAGE_CHUNK_MIN : c;
}

/* Blocks come in a few sizes, well reused: 64 KiB << k up to 64 MiB, then multiples
 * of 64 MiB (so a 300 MiB transfer pins 320 MiB, not 512). */
static size_t stage_block_size(size_t need) {
  const size_t big = (size_t)64 << 20;
  if (need > big)
    return need / big * big + (need % big ? big : 0);
  size_t b = (size_t)64 << 10;
  while (b < need)
    b <<= 1;
  return b;
}

/* A block of at least `need` bytes: the smallest idle one, else a new one (ctx
 * current). NULL when none can be had (cap reached, allocation refused): the caller
 * then hands the transfer to the driver. Submitting thread. */
static stage_block *stage_take(cu_stream *cs, size_t need) {
  pthread_mutex_lock(&cs->lock);
  stage_block **best = NULL;
  for (stage_block **pp = &cs->stage_free; *pp; pp = &(*pp)->next)
    if ((*pp)->bytes >= need && (!best || (*pp)->bytes < (*best)->bytes))
      best = pp;
  stage_block *blk = NULL;
  if (best) {
    blk = *best;
    *best = blk->next;
  }
  size_t size = stage_block_size(need);
  bool room = !blk && cs->stage_bytes + size <= STAGE_MAX_BYTES;
  if (room)
    cs->stage_bytes += size; /* reserved */
  pthread_mutex_unlock(&cs->lock);
  if (blk || !room)
    return blk;
  blk = kiln__alloc(sizeof *blk);
  kiln_CUresult r = kiln_CUDA_ERROR_OUT_OF_MEMORY;
  if (blk && kiln__cu.cuMemHostAlloc)
    r = kiln__cu.cuMemHostAlloc(&blk->ptr, size, 0);
  if (r == kiln_CUDA_SUCCESS) {
    blk->bytes = size;
    kiln__cu_count(KILN__CUO_MEM, 1);
    return blk;
  }
  kiln__log(KILN_LOG_INFO,
            "cuda: no pinned staging block of %zu bytes (%s); the driver copies this transfer",
            size, blk ? kiln__cu_error_name(r) : "out of host memory");
  kiln__free(blk, sizeof *blk);
  pthread_mutex_lock(&cs->lock);
  cs->stage_bytes -= size;
  pthread_mutex_unlock(&cs->lock);
  return NULL;
}

/* After the op (completion thread): the block back to the cache, the chunk events to
 * the pool. An op that failed before all of it was queued may still have DMAs using
 * its block: the block waits in `dead` for stream destroy, its events are destroyed
 * (the driver releases them once they passed). */
void kiln__cu_stage_finish(cu_stream *cs, stage_op *so, bool queued_whole) {
  pthread_mutex_lock(&cs->lock);
  for (unsigned i = 0; i < so->chunks; i++) {
    if (queued_whole) {
      kiln__cu_event_put_locked(cs, so->ev[i], 0);
    } else {
      kiln__cu.cuEventDestroy(so->ev[i]);
      kiln__cu_count(KILN__CUO_EVENT, -1);
    }
  }
  stage_block **list = queued_whole ? &cs->stage_free : &cs->stage_dead;
  so->blk->next = *list;
  *list = so->blk;
  pthread_mutex_unlock(&cs->lock);
  kiln__free(so, so->rec_bytes);
}

/* A staged read's copy-out (completion thread): wait for each chunk's event, copy it
 * to the user's memory (uninstrumented: the range is the ASan guard's until the wait
 * that observes this op). */
kiln_status kiln__cu_stage_copy_out(cu_stream *cs, stage_op *so) {
  if (!so->read)
    return KILN_SUCCESS;
  for (unsigned i = 0; i < so->chunks; i++) {
    kiln_CUresult r = kiln__cu.cuEventSynchronize(so->ev[i]);
    if (r != kiln_CUDA_SUCCESS)
      return kiln__cu_complete_status(cs, r);
    size_t off = (size_t)i * so->chunk,
           n = so->bytes - off < so->chunk ? so->bytes - off : so->chunk;
    kiln__copy_large((char *)so->user + off, (char *)so->blk->ptr + off, n);
  }
  return KILN_SUCCESS;
}

void kiln__cu_stage_teardown(cu_stream *cs) {
  stage_block *lists[2] = {cs->stage_free, cs->stage_dead};
  for (int l = 0; l < 2; l++) {
    for (stage_block *b = lists[l], *next; b; b = next) {
      next = b->next;
      kiln__cu.cuMemFreeHost(b->ptr);
      kiln__cu_count(KILN__CUO_MEM, -1);
      kiln__free(b, sizeof *b);
    }
  }
  cs->stage_free = cs->stage_dead = NULL;
  cs->stage_bytes = 0;
}

/* Queue a staged transfer in chunks (ctx current). Write: copy chunk i of the user's
 * memory into the block (on this thread, as the driver does for pageable memory),
 * then its DMA, so the DMA of one chunk overlaps the copy of the next. Read: the DMA
 * of every chunk into the block, each followed by an event for the completion
 * thread. op->native_aux stays NULL when it was not staged (no block or record): the
 * caller then goes direct. */
static kiln_CUresult enqueue_staged(cu_stream *cs, kiln__op *op, bool read, kiln_CUdeviceptr dev,
                                    void *host, size_t bytes, const char **what) {
  size_t chunk = stage_chunk(bytes), chunks = (bytes + chunk - 1) / chunk;
  size_t rec_bytes = sizeof(stage_op) + (read ? chunks : 0) * sizeof(kiln_CUevent);
  stage_op *so = kiln__alloc(rec_bytes);
  if (!so)
    return kiln_CUDA_SUCCESS; /* not staged */
  so->blk = stage_take(cs, bytes);
  if (!so->blk) {
    kiln__free(so, rec_bytes);
    return kiln_CUDA_SUCCESS; /* not staged */
  }
  so->read = read;
  so->user = host;
  so->bytes = bytes;
  so->chunk = chunk;
  so->rec_bytes = rec_bytes;
  so->chunks = 0;
  op->native_aux = so; /* from here on, the completion thread gives everything back */
  kiln_CUresult r = kiln_CUDA_SUCCESS;
  for (size_t i = 0; i < chunks && r == kiln_CUDA_SUCCESS; i++) {
    size_t off = i * chunk, n = bytes - off < chunk ? bytes - off : chunk;
    char *stage = (char *)so->blk->ptr + off;
    if (!read) {
      kiln__copy_large(stage, (const char *)host + off, n);
      *what = "cuMemcpyHtoDAsync";
      r = kiln__cu.cuMemcpyHtoDAsync(dev + off, stage, n, cs->stream);
      continue;
    }
    *what = "cuMemcpyDtoHAsync";
    r = kiln__cu.cuMemcpyDtoHAsync(stage, dev + off, n, cs->stream);
    kiln_CUevent ev = NULL;
    if (r == kiln_CUDA_SUCCESS) {
      *what = "cuEventCreate";
      pthread_mutex_lock(&cs->lock);
      r = kiln__cu_event_get_locked(cs, 0, &ev);
      pthread_mutex_unlock(&cs->lock);
    }
    if (r == kiln_CUDA_SUCCESS) {
      *what = "cuEventRecord";
      so->ev[so->chunks++] = ev; /* given back by stage_finish, recorded or not */
      r = kiln__cu.cuEventRecord(ev, cs->stream);
    }
  }
  return r;
}

/* A host<->device transfer: pinned memory straight to the driver (asynchronous);
 * pageable memory staged through a pinned block, except small writes (the driver
 * copies them into its own staging at the call) and small blocking reads (nothing to
 * overlap). Without a block, the driver's pageable copy: a read then blocks the
 * caller until it is done (CUDA's rule for pageable device-to-host copies). */
kiln_CUresult kiln__cu_enqueue_transfer(cu_stream *cs, kiln__op *op, bool read, const char **what) {
  kiln__buffer *b = read ? op->u.read.buffer : op->u.write.buffer;
  kiln_CUdeviceptr dev =
      (kiln_CUdeviceptr)(uintptr_t)b->native + (read ? op->u.read.offset : op->u.write.offset);
  void *host = read ? op->u.read.dst : (void *)(uintptr_t)op->u.write.src;
  size_t bytes = read ? op->u.read.bytes : op->u.write.bytes;
  bool blocking =
      (atomic_load_explicit(&op->flags, memory_order_relaxed) & KILN__OPF_BLOCKING) != 0;
  bool direct = (read ? blocking : true) && bytes <= STAGE_DIRECT_MAX;
  if (!direct && !kiln__cu_host_range_pinned(b->h.ctx, host, bytes)) {
    kiln_CUresult r = enqueue_staged(cs, op, read, dev, host, bytes, what);
    if (op->native_aux)
      return r;
  }
  *what = read ? "cuMemcpyDtoHAsync" : "cuMemcpyHtoDAsync";
  return read ? kiln__cu.cuMemcpyDtoHAsync(host, dev, bytes, cs->stream)
              : kiln__cu.cuMemcpyHtoDAsync(dev, host, bytes, cs->stream);
}
