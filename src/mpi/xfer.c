/* SPDX-License-Identifier: MIT */
/* The chunked transfer engine of libkiln_mpi. A transfer is cut into chunks of
 * m->chunk bytes; each chunk takes a staging slot (pinned host memory of the context,
 * cached by the kiln_mpi) and runs through up to three phases: a kiln read of the
 * buffer into the slot (send, allreduce, broadcast root), one MPI call (posted in
 * chunk order, so messages of one (peer, tag) match in order), a kiln write of the
 * slot into the buffer (receive, allreduce, broadcast leaves). With depth slots the
 * copy of chunk i+1 overlaps the network transfer of chunk i. A direct transfer (CPU
 * storage, CUDA-aware MPI) has no slots and no copies.
 *
 * Failure protocol (docs/mpi.md): a failed rank still takes part in every chunk's MPI
 * call, so no peer hangs: a sender that fails at chunk j > 0 sends empty messages for
 * chunks j.. (at chunk 0: one empty message); a receiver that fails receives the rest
 * into the drain block; collectives run on the drain block. Used by one thread at a
 * time per transfer (the caller's, or the progress thread). */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpi/mpi_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

enum { S_FREE = 0, S_READING, S_STAGED, S_NET, S_WRITING };

static size_t chunk_len(const kmpi_xfer *x, size_t i) {
  size_t c = x->m->chunk, o = i * c;
  return x->bytes - o < c ? x->bytes - o : c;
}

static bool has_read(const kmpi_xfer *x) {
  return !x->direct && (x->kind == KMPI_SEND || x->kind == KMPI_ALLREDUCE ||
                        (x->kind == KMPI_BCAST && x->is_root));
}

static bool has_write(const kmpi_xfer *x) {
  return !x->direct && !x->gate &&
         (x->kind == KMPI_RECV || x->kind == KMPI_ALLREDUCE ||
          (x->kind == KMPI_BCAST && !x->is_root));
}

__attribute__((format(printf, 3, 4))) static void fail(kmpi_xfer *x, kiln_status st,
                                                       const char *fmt, ...) {
  if (x->status != KILN_SUCCESS)
    return;
  x->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->msg, sizeof x->msg, fmt, ap);
  va_end(ap);
}

/* A kiln call failed: keep its detail. */
static void fail_kiln(kmpi_xfer *x, kiln_status st, const char *what, size_t i) {
  if (x->status != KILN_SUCCESS)
    return;
  const kiln_error_info *e = kiln_last_error();
  fail(x, st, "rank %d: %s of chunk %zu failed with %s: %s", x->m->rank, what, i,
       kiln_status_name(st), e->status == st ? e->message : kiln_status_message(st));
}

static void fail_mpi(kmpi_xfer *x, int rc, const char *call, size_t i) {
  if (x->status != KILN_SUCCESS)
    return;
  char text[300];
  kiln_status st = kmpi__from_mpi(rc, &x->native_name, &x->native_code, text, sizeof text);
  fail(x, st, "rank %d: %s of chunk %zu failed: %s", x->m->rank, call, i, text);
}

/* ---------------------------------------------------------------- staging slots */
static kiln_status slot_take(kiln_mpi m, char **out) {
  *out = NULL;
  pthread_mutex_lock(&m->lock);
  if (m->free_count) {
    *out = m->free_slots[--m->free_count];
    pthread_mutex_unlock(&m->lock);
    return KILN_SUCCESS;
  }
  pthread_mutex_unlock(&m->lock);
  void *p = NULL;
  kiln_status st = kiln_host_alloc(m->ctx, m->chunk, &p);
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&m->lock);
  m->slots_live++;
  pthread_mutex_unlock(&m->lock);
  *out = p;
  return KILN_SUCCESS;
}

static void slot_give(kiln_mpi m, char *p) {
  if (!p)
    return;
  pthread_mutex_lock(&m->lock);
  if (m->free_count == m->free_cap) {
    size_t cap = m->free_cap ? m->free_cap * 2 : 8;
    void **n = realloc(m->free_slots, cap * sizeof *n);
    if (!n) { /* cannot cache it: give it back to the context's pool */
      m->slots_live--;
      pthread_mutex_unlock(&m->lock);
      (void)kiln_host_free(m->ctx, p);
      return;
    }
    m->free_slots = n;
    m->free_cap = cap;
  }
  m->free_slots[m->free_count++] = p;
  pthread_mutex_unlock(&m->lock);
}

void kmpi__slots_free_all(kiln_mpi m) {
  for (size_t i = 0; i < m->free_count; i++)
    (void)kiln_host_free(m->ctx, m->free_slots[i]);
  m->slots_live -= m->free_count;
  m->free_count = 0;
  free(m->free_slots);
  m->free_slots = NULL;
  m->free_cap = 0;
}

void kmpi__xfer_release(kmpi_xfer *x) {
  for (unsigned s = 0; s < x->depth; s++) {
    slot_give(x->m, x->slots[s].host);
    x->slots[s].host = NULL;
  }
  if (x->slots != x->slots_inline)
    free(x->slots);
  x->slots = x->slots_inline;
  x->depth = 0;
}

kiln_status kmpi__xfer_slots_all(kmpi_xfer *x) {
  if (x->nchunks <= KMPI_MAX_DEPTH) {
    x->depth = (unsigned)x->nchunks;
    return KILN_SUCCESS;
  }
  if (x->nchunks > UINT_MAX)
    return KILN_ERROR_LIMIT_EXCEEDED;
  kmpi_slot *s = calloc(x->nchunks, sizeof *s);
  if (!s)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; i < x->nchunks; i++)
    s[i].req = MPI_REQUEST_NULL;
  x->slots = s;
  x->depth = (unsigned)x->nchunks;
  return KILN_SUCCESS;
}

bool kmpi__xfer_posting(const kmpi_xfer *x) {
  return !x->done && x->net_next < x->nchunks;
}

void kmpi__xfer_init(kmpi_xfer *x, kiln_mpi m, kmpi_kind kind, const char *api, kiln_stream stream,
                     kiln_buffer buf, size_t off, size_t bytes) {
  memset(x, 0, sizeof *x);
  x->m = m;
  x->kind = kind;
  x->api = api;
  x->stream = stream;
  x->buf = buf;
  x->off = off;
  x->bytes = bytes;
  x->dt = MPI_BYTE;
  x->op = MPI_OP_NULL;
  x->elem = 1;
  x->nchunks = bytes ? (bytes + m->chunk - 1) / m->chunk : 1;
  x->depth = m->depth;
  if (x->depth > x->nchunks)
    x->depth = (unsigned)x->nchunks;
  atomic_init(&x->net_next, 0);
  atomic_init(&x->done, false);
  x->slots = x->slots_inline;
  for (unsigned s = 0; s < KMPI_MAX_DEPTH; s++)
    x->slots[s].req = MPI_REQUEST_NULL;
}

/* ---------------------------------------------------------------- receive gates */
static void gate_fn(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)user;
  unsigned char *storage = args[0];
  kmpi_gate *g = NULL;
  memcpy(&g, args[1], sizeof g);
  kmpi_xfer *x = g->x;
  for (size_t i = 0; i < x->nchunks; i++) {
    pthread_mutex_lock(&g->lock);
    while (g->arrived <= i && !g->failed)
      pthread_cond_wait(&g->cond, &g->lock);
    bool failed = g->failed;
    pthread_mutex_unlock(&g->lock);
    if (failed)
      return;
    size_t len = chunk_len(x, i);
    if (len)
      memcpy(storage + x->off + i * x->m->chunk, x->slots[i].host, len);
  }
}

kiln_status kmpi__gate_kernel_create(kiln_mpi m) {
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0},
                                      {KILN_PARAM_SCALAR, sizeof(kmpi_gate *)}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kiln_mpi_receive_gate";
  d.fn = gate_fn;
  d.params = params;
  d.param_count = 2;
  return kiln_kernel_create_native(m->ctx, &d, &m->gate_kernel);
}

kiln_status kmpi__gate_start(kmpi_xfer *x) {
  kmpi_gate *g = calloc(1, sizeof *g);
  if (!g)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cond, NULL);
  g->x = x;
  /* every slot now: the kernel reads them once their chunk has arrived */
  kiln_status st = KILN_SUCCESS;
  for (size_t i = 0; i < x->nchunks && st == KILN_SUCCESS; i++)
    if (chunk_len(x, i))
      st = slot_take(x->m, &x->slots[i].host);
  if (st == KILN_SUCCESS) {
    kiln_range r = kiln_range_1d(1);
    kiln_arg args[2] = {kiln_arg_buffer(x->buf), kiln_arg_scalar(&g, sizeof g)};
    st = kiln_launch_async(x->stream, x->m->gate_kernel, &r, args, 2, &g->tok);
  }
  if (st != KILN_SUCCESS) {
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
    free(g);
    return st;
  }
  x->gate = g;
  return KILN_SUCCESS;
}

static void wgate_open(kmpi_xfer *x, kmpi_slot *s) {
  if (x->m->cl)
    kmpi__cl_gate_open(x, s);
  else
    kmpi__cu_gate_open(x, s);
}

kiln_status kmpi__wgate_start(kmpi_xfer *x) {
  kiln_status st = KILN_SUCCESS;
  size_t i = 0;
  for (; i < x->nchunks && st == KILN_SUCCESS; i++) {
    size_t len = chunk_len(x, i);
    if (len)
      st = slot_take(x->m, &x->slots[i].host);
    if (st == KILN_SUCCESS)
      st = x->m->cl ? kmpi__cl_gate_chunk(x, i, x->off + i * x->m->chunk, len)
                    : kmpi__cu_gate_chunk(x, i, x->off + i * x->m->chunk, len);
  }
  if (st != KILN_SUCCESS) { /* let what was queued run, and wait for it */
    kiln_error_info saved = *kiln_last_error();
    for (size_t k = 0; k < x->nchunks; k++) {
      wgate_open(x, &x->slots[k]);
      if (x->slots[k].tok.id) {
        kiln_status ignored = kiln_wait(&x->slots[k].tok);
        (void)ignored;
      }
    }
    return kiln_error_report_native(st, saved.function, saved.native_code, saved.native_name, NULL,
                                    "%s", saved.message);
  }
  x->wgate = true;
  return KILN_SUCCESS;
}

/* Tell the gate how many chunks have arrived, or that it must stop. */
static void gate_signal(kmpi_gate *g, size_t arrived, bool failed) {
  pthread_mutex_lock(&g->lock);
  if (arrived > g->arrived)
    g->arrived = arrived;
  if (failed)
    g->failed = true;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
}

/* The transfer is over: wait for the gate's kernel (it has all it needs), free it. */
static kiln_status gate_finish(kmpi_xfer *x) {
  kmpi_gate *g = x->gate;
  kiln_status st = kiln_wait(&g->tok);
  pthread_cond_destroy(&g->cond);
  pthread_mutex_destroy(&g->lock);
  free(g);
  x->gate = NULL;
  return st;
}

/* ---------------------------------------------------------------- phases */
static char *net_ptr(kmpi_xfer *x, kmpi_slot *s) {
  if (x->direct)
    return x->direct + x->off + s->chunk * x->m->chunk;
  return s->host;
}

static int post_net(kmpi_xfer *x, kmpi_slot *s, const char **call) {
  size_t len = chunk_len(x, s->chunk);
  char *p = net_ptr(x, s);
  MPI_Comm c = x->m->comm;
  switch (x->kind) {
  case KMPI_SEND:
    *call = "MPI_Isend";
    return MPI_Isend(p, (int)len, MPI_BYTE, x->peer, x->tag, c, &s->req);
  case KMPI_RECV:
    *call = "MPI_Irecv";
#if defined(__SANITIZE_ADDRESS__)
    /* A gated write already holds the slot (kiln's host-range guard poisoned it); it
     * reads the slot only once the gate opens, after this receive has completed. */
    if (x->wgate && len)
      __asan_unpoison_memory_region(p, len);
#endif
    return MPI_Irecv(p, (int)len, MPI_BYTE, x->peer, x->tag, c, &s->req);
  case KMPI_ALLREDUCE:
    *call = "MPI_Iallreduce";
    return MPI_Iallreduce(MPI_IN_PLACE, p, (int)(len / x->elem), x->dt, x->op, c, &s->req);
  case KMPI_BCAST:
    *call = "MPI_Ibcast";
    return MPI_Ibcast(p, (int)len, MPI_BYTE, x->peer, c, &s->req);
  }
  return MPI_ERR_INTERN;
}

/* The receive of chunk i brought `count` bytes where len were expected. */
static void recv_short(kmpi_xfer *x, size_t i, size_t count, size_t len, bool *sender_failed) {
  if (count == 0 && i > 0) {
    *sender_failed = true;
    fail(x, KILN_ERROR_DEPENDENCY_FAILED,
         "rank %d: %s from rank %d tag %d: the sender failed at chunk %zu of %zu (it sent an "
         "empty chunk): see the error on rank %d",
         x->m->rank, x->api, x->peer, x->tag, i, x->nchunks, x->peer);
    return;
  }
  size_t total = i * x->m->chunk + count;
  fail(x, KILN_ERROR_INVALID_ARGUMENT,
       "rank %d: %s expected %zu bytes from rank %d tag %d, but the message has %zu%s (chunk %zu "
       "brought %zu of %zu bytes)",
       x->m->rank, x->api, x->bytes, x->peer, x->tag, total,
       count == 0 ? " (or the sender failed before its first chunk)" : "", i, count, len);
}

/* Blocking MPI call of a chunk that was never posted, on a transfer that failed, so
 * that the peers' matching calls complete. */
static void drain_chunk(kmpi_xfer *x, size_t i, bool sender_failed, bool recv_mismatch) {
  size_t len = chunk_len(x, i);
  MPI_Comm c = x->m->comm;
  switch (x->kind) {
  case KMPI_SEND:
    if (i == 0 || x->net_next > 0) /* chunk 0: one empty message, else one per chunk */
      (void)MPI_Send(NULL, 0, MPI_BYTE, x->peer, x->tag, c);
    break;
  case KMPI_RECV:
    if (!recv_mismatch || sender_failed)
      (void)MPI_Recv(x->m->drain, (int)len, MPI_BYTE, x->peer, x->tag, c, MPI_STATUS_IGNORE);
    break;
  case KMPI_ALLREDUCE:
    memset(x->m->drain, 0, len);
    (void)MPI_Allreduce(MPI_IN_PLACE, x->m->drain, (int)(len / x->elem), x->dt, x->op, c);
    break;
  case KMPI_BCAST:
    (void)MPI_Bcast(x->m->drain, (int)len, MPI_BYTE, x->peer, c);
    break;
  }
}

/* The transfer failed: finish its kiln work and every MPI call the peers expect. */
static void drain(kmpi_xfer *x, bool sender_failed, bool recv_mismatch) {
  for (unsigned k = 0; k < x->depth; k++) {
    kmpi_slot *s = &x->slots[k];
    if (x->wgate)
      wgate_open(x, s); /* its write copies what the slot holds: the future fails */
    if (s->tok.id) {
      kiln_status ignored = kiln_wait(&s->tok); /* the first failure is already kept */
      (void)ignored;
    }
    if (s->state == S_NET && s->req != MPI_REQUEST_NULL) {
      if (x->kind == KMPI_RECV && recv_mismatch && !sender_failed)
        (void)MPI_Cancel(&s->req);
      (void)MPI_Wait(&s->req, MPI_STATUS_IGNORE);
    }
    s->state = S_FREE;
  }
  size_t first = x->net_next;
  if (x->kind == KMPI_SEND && first == 0) {
    drain_chunk(x, 0, false, false);
  } else {
    for (size_t i = first; i < x->nchunks; i++)
      drain_chunk(x, i, sender_failed, recv_mismatch);
  }
  x->net_next = x->nchunks;
  if (x->gate) {
    gate_signal(x->gate, 0, true);
    (void)gate_finish(x);
  }
  x->done = true;
}

bool kmpi__xfer_step(kmpi_xfer *x, bool may_post) {
  if (x->done)
    return false;
  bool moved = false, sender_failed = false, recv_mismatch = false;
  /* start chunks in free slots */
  while (x->status == KILN_SUCCESS && x->started < x->nchunks) {
    size_t i = x->started;
    kmpi_slot *s = &x->slots[i % x->depth];
    if (s->state != S_FREE)
      break;
    size_t len = chunk_len(x, i);
    s->chunk = i;
    if (!x->direct && len && !s->host) {
      kiln_status st = slot_take(x->m, &s->host);
      if (st != KILN_SUCCESS) {
        fail_kiln(x, st, "kiln_host_alloc of the staging slot", i);
        break;
      }
    }
    x->started++;
    moved = true;
    if (has_read(x) && len) {
      kiln_status st = kiln_buffer_read_async(x->stream, x->buf, x->off + i * x->m->chunk, len,
                                              s->host, &s->tok);
      if (st != KILN_SUCCESS) {
        s->state = S_FREE;
        fail_kiln(x, st, "kiln_buffer_read_async", i);
        break;
      }
      s->state = S_READING;
    } else {
      s->state = S_STAGED;
    }
  }
  /* advance the chunks in flight, in chunk order */
  for (size_t i = x->finished; i < x->started && x->status == KILN_SUCCESS; i++) {
    kmpi_slot *s = &x->slots[i % x->depth];
    if (s->chunk != i)
      continue;
    if (s->state == S_READING) {
      if (kiln_pending_query(&s->tok) == KILN_NOT_READY)
        continue;
      kiln_status st = kiln_wait(&s->tok);
      s->state = S_STAGED;
      moved = true;
      if (st != KILN_SUCCESS) {
        s->state = S_FREE;
        fail_kiln(x, st, "the staging read (kiln_buffer_read_async)", i);
        break;
      }
    }
    if (s->state == S_STAGED && i == x->net_next && may_post) {
      const char *call = "";
      int rc = post_net(x, s, &call);
      moved = true;
      if (rc != MPI_SUCCESS) {
        s->state = S_FREE;
        fail_mpi(x, rc, call, i);
        break;
      }
      x->net_next++;
      s->state = S_NET;
    }
    if (s->state == S_NET) {
      int flag = 0;
      MPI_Status status;
      int rc = MPI_Test(&s->req, &flag, &status);
      if (rc != MPI_SUCCESS) {
        s->state = S_FREE;
        if (x->kind == KMPI_RECV)
          recv_mismatch = x->recv_mismatch = true;
        fail_mpi(x, rc, "the MPI request", i);
        break;
      }
      if (!flag)
        continue;
      moved = true;
      size_t len = chunk_len(x, i);
      if (x->kind == KMPI_RECV) {
        int count = 0;
        MPI_Get_count(&status, MPI_BYTE, &count);
        if ((size_t)count != len) {
          s->state = S_FREE;
          recv_mismatch = true;
          recv_short(x, i, (size_t)count, len, &sender_failed);
          x->sender_failed = sender_failed;
          x->recv_mismatch = true;
          break;
        }
      }
      if (x->wgate) {
        wgate_open(x, s);
        s->state = s->tok.id ? S_WRITING : S_FREE;
      } else if (has_write(x) && len) {
        kiln_status st = kiln_buffer_write_async(x->stream, x->buf, x->off + i * x->m->chunk, len,
                                                 s->host, &s->tok);
        if (st != KILN_SUCCESS) {
          s->state = S_FREE;
          fail_kiln(x, st, "kiln_buffer_write_async", i);
          break;
        }
        s->state = S_WRITING;
      } else {
        s->state = S_FREE;
      }
    }
    if (s->state == S_WRITING) {
      if (kiln_pending_query(&s->tok) == KILN_NOT_READY)
        continue;
      kiln_status st = kiln_wait(&s->tok);
      moved = true;
      s->state = S_FREE;
      if (st != KILN_SUCCESS) {
        fail_kiln(x, st, "the write of the received chunk (kiln_buffer_write_async)", i);
        break;
      }
    }
  }
  /* retire finished chunks in order */
  while (x->status == KILN_SUCCESS && x->finished < x->started &&
         x->slots[x->finished % x->depth].state == S_FREE &&
         x->slots[x->finished % x->depth].chunk == x->finished && x->finished < x->net_next)
    x->finished++;
  if (x->status != KILN_SUCCESS) {
    if (!may_post) /* an earlier transfer to the same peer and tag posts first */
      return moved;
    drain(x, sender_failed || x->sender_failed, recv_mismatch || x->recv_mismatch);
    return true;
  }
  if (x->gate) {
    gate_signal(x->gate, x->finished, false);
    if (x->finished < x->nchunks || kiln_pending_query(&x->gate->tok) == KILN_NOT_READY)
      return moved;
    kiln_status st = gate_finish(x);
    if (st != KILN_SUCCESS)
      fail_kiln(x, st, "the receive gate (the copy into the buffer)", x->nchunks - 1);
    x->done = true;
    return true;
  }
  if (x->finished == x->nchunks)
    x->done = true;
  return moved || x->done;
}

/* One chunk, on the calling thread: the plain sequence a program would write. */
static void run_single(kmpi_xfer *x) {
  kmpi_slot *s = &x->slots[0];
  size_t len = x->bytes;
  s->chunk = 0;
  if (!x->direct && len) {
    kiln_status st = slot_take(x->m, &s->host);
    if (st != KILN_SUCCESS) {
      fail_kiln(x, st, "kiln_host_alloc of the staging slot", 0);
      drain(x, false, false);
      return;
    }
  }
  x->started = 1;
  if (has_read(x) && len) {
    kiln_status st = kiln_buffer_read(x->buf, x->off, len, s->host);
    if (st != KILN_SUCCESS) {
      fail_kiln(x, st, "the staging read (kiln_buffer_read)", 0);
      drain(x, false, false);
      return;
    }
  }
  char *p = net_ptr(x, s);
  MPI_Comm c = x->m->comm;
  int rc = MPI_SUCCESS;
  const char *call = "";
  MPI_Status status;
  switch (x->kind) {
  case KMPI_SEND:
    call = "MPI_Send";
    rc = MPI_Send(p, (int)len, MPI_BYTE, x->peer, x->tag, c);
    break;
  case KMPI_RECV:
    call = "MPI_Recv";
    rc = MPI_Recv(p, (int)len, MPI_BYTE, x->peer, x->tag, c, &status);
    break;
  case KMPI_ALLREDUCE:
    call = "MPI_Allreduce";
    rc = MPI_Allreduce(MPI_IN_PLACE, p, (int)(len / x->elem), x->dt, x->op, c);
    break;
  case KMPI_BCAST:
    call = "MPI_Bcast";
    rc = MPI_Bcast(p, (int)len, MPI_BYTE, x->peer, c);
    break;
  }
  x->net_next = 1;
  if (rc != MPI_SUCCESS) {
    fail_mpi(x, rc, call, 0);
    x->done = true;
    return;
  }
  if (x->kind == KMPI_RECV) {
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    if ((size_t)count != len) {
      bool sf = false;
      recv_short(x, 0, (size_t)count, len, &sf);
      x->done = true;
      return;
    }
  }
  if (has_write(x) && len) {
    kiln_status st = kiln_buffer_write(x->buf, x->off, len, s->host);
    if (st != KILN_SUCCESS)
      fail_kiln(x, st, "the write of the received data (kiln_buffer_write)", 0);
  }
  x->finished = 1;
  x->done = true;
}

kiln_status kmpi__xfer_run(kmpi_xfer *x) {
  if (x->nchunks == 1) {
    run_single(x);
  } else {
    unsigned idle = 0;
    while (!x->done) {
      if (kmpi__xfer_step(x, true)) {
        idle = 0;
      } else if (++idle > 64) {
        sched_yield(); /* the copies and MPI progress on other threads and processes */
      }
    }
  }
  kmpi__xfer_release(x);
  return x->status;
}
