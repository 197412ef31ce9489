/* SPDX-License-Identifier: MIT */
/* The trace's storage, shared by record.c (writers) and write.c (the JSON writer):
 * per-thread buffers of 128-byte event slots (64-byte aligned). A buffer belongs to
 * one thread at a time (its owner appends without a lock) and is registered once in a
 * global list that only grows; a thread's exit hands its buffer to the next new
 * thread. Event words are atomics written with release stores and read with acquire
 * loads, so a reader racing a writer (ring mode overwrites) sees a torn event only as
 * a changed slot sequence (slot word 7, a seqlock) and skips it. An op is two events:
 * its start from the submitting thread and its end from the completing one (a ring
 * records only the end), which write.c joins. */
#ifndef KILN_TRACE_BUF_H
#define KILN_TRACE_BUF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kiln.h"

#define KILN__EV_WORDS 16
/* Events are 15 logical words (w[0..14]) and the slot's sequence word (odd while
 * written), which sits in the middle — slot word 7 — so an event of at most 7 words
 * (an op's end) touches one cache line of its 64-byte-aligned slot. KILN__EV_SLOT(k):
 * the slot word of logical word k. */
#define KILN__EV_SEQ 7
#define KILN__EV_SLOT(k) ((k) < KILN__EV_SEQ ? (k) : (k) + 1)
#define KILN__CHUNK_EVENTS 512u   /* events per chunk (64 KiB) in full mode */
#define KILN__TRACE_NAME_BYTES 48 /* inline copies of names (6 words) */

enum {
  KILN__EV_OP = 1,      /* an op's span (write.c joins an OP_START and an OP_END into one) */
  KILN__EV_FLOW,        /* a dependency between two ops */
  KILN__EV_INSTANT,     /* a decision of kiln's, integer arguments */
  KILN__EV_INSTANT_STR, /* a decision with one string argument */
  KILN__EV_API,         /* a public call that waited */
  KILN__EV_RANGE_BEGIN, /* a user range (name inline) */
  KILN__EV_RANGE_END,
  KILN__EV_MARK,
  KILN__EV_DEVICE,   /* an op's span on the device (a device backend's stamps, in ns) */
  KILN__EV_OP_START, /* an op handed to its backend: what the submitting thread knows */
  KILN__EV_OP_END    /* the op completed: its span (begin, end) and status, 5 words */
};

/* Word 0 of every event: type (bits 0-7), a small field (8-15: op kind, category),
 * flags (16-31), a signed 32-bit value (32-63: status). */
#define KILN__EV_HDR(type, small, flags, value)                              \
  ((uint64_t)(type) | ((uint64_t)(small) << 8) | ((uint64_t)(flags) << 16) | \
   ((uint64_t)(uint32_t)(value) << 32))
#define KILN__EV_TYPE(w0) ((unsigned)((w0)&0xffu))
#define KILN__EV_SMALL(w0) ((unsigned)(((w0) >> 8) & 0xffu))
#define KILN__EV_FLAGS(w0) ((unsigned)(((w0) >> 16) & 0xffffu))
#define KILN__EV_VALUE(w0) ((int32_t)(uint32_t)((w0) >> 32))

/* KILN__EVF_RUN: the op's start is when a host backend's worker began it
 * (kiln__op_begin); without it the start is inferred (see record.c). */
enum { KILN__EVF_API = 1u, KILN__EVF_BLOCKING = 2u, KILN__EVF_RUN = 4u };

typedef struct kiln__trace_ev {
  _Alignas(64) _Atomic uint64_t w[KILN__EV_WORDS];
} kiln__trace_ev;

typedef struct kiln__trace_chunk {
  kiln__trace_ev ev[KILN__CHUNK_EVENTS]; /* first: 64-byte aligned with the chunk */
  struct kiln__trace_chunk *_Atomic next;
} kiln__trace_chunk;

/* An op a host backend's worker began, and when (record.c). */
#define KILN__TRACE_RUN_SLOTS 8u
typedef struct kiln__trace_run {
  const void *op;
  uint64_t uid, seq, begin;
} kiln__trace_run;

typedef struct kiln__trace_buf {
  struct kiln__trace_buf *next; /* the global list (written before publication) */
  uint32_t thread_no;           /* its track: "thread N" */
  _Atomic int owned;            /* a live thread writes it */
  _Atomic uint64_t session;     /* the trace its events belong to */
  _Atomic uint64_t count;       /* events written in that session (release: published) */
  _Atomic uint64_t dropped;
  /* full mode: chunks (the first written once, then linked; reused by later sessions) */
  kiln__trace_chunk *_Atomic first;
  kiln__trace_chunk *cur; /* owner only */
  /* owner only: the ops its thread began as a host backend's worker (record.c) */
  kiln__trace_run run[KILN__TRACE_RUN_SLOTS];
  unsigned run_next;
  /* owner only, ring mode: the end stamp of the op this worker completed last, while it
   * has not found its queue empty since (kiln__trace_worker_idle clears it): the next
   * op it begins began then, and its begin costs no clock read (record.c). */
  uint64_t chain_end;
  /* ring mode */
  kiln__trace_ev *_Atomic ring;
  _Atomic uint64_t ring_cap;
} kiln__trace_buf;

/* The global state (record.c). */
extern _Atomic(kiln__trace_buf *) kiln__trace_bufs; /* list head */
extern _Atomic uint64_t kiln__trace_session;        /* 0: none yet */
extern _Atomic uint64_t kiln__trace_ring;           /* ring events of the session, 0: full */
extern _Atomic uint64_t kiln__trace_t0;             /* the session's start (monotonic ns) */
/* The process's first (TSC, monotonic ns) pair, taken at its first trace start: the
 * TSC's rate is measured from it to each write (record.c, write.c). */
extern _Atomic uint64_t kiln__trace_anchor_tsc, kiln__trace_anchor_ns;
/* One (TSC, monotonic ns) pair taken together (x86-64): the ns read bracketed by two
 * TSC reads, the tightest of a few tries, the TSC taken at the bracket's middle. A
 * plain pair is off by however long the thread was preempted between its two reads
 * (milliseconds on a loaded machine), which then skews every converted timestamp. */
void kiln__trace_clock_pair(uint64_t *tsc, uint64_t *ns);
extern _Atomic int kiln__trace_active; /* a session exists (maybe paused) */

/* The calling thread's buffer for the current session, or NULL (out of memory). */
kiln__trace_buf *kiln__trace_my_buf(void);
/* Append an event (words 0..14) to the calling thread's buffer. */
void kiln__trace_emit(const uint64_t w[KILN__EV_WORDS - 1]);
/* The same for an event of `n` words (the slot's other words are left as they were). */
void kiln__trace_emit_n(const uint64_t *w, unsigned n);
/* Copy a string into words (KILN__TRACE_NAME_BYTES bytes, always terminated). */
void kiln__trace_pack_name(uint64_t *words, const char *s);

/* The name kiln_trace_name_stream gave the track of stream uid, copied into out
 * (KILN__TRACE_NAME_BYTES); false when none. Under the trace lock. */
bool kiln__trace_track_name_locked(uint64_t uid, char *out);

/* write.c: write the current session's events as a Chrome trace (the caller holds
 * the trace lock). Returns SUCCESS or IO (error detail set, naming the path). */
kiln_status kiln__trace_write_file(const char *path, const char *why);

/* range.c: NVTX */
void kiln__trace_nvtx_push(const char *name, int category);
void kiln__trace_nvtx_pop(void);
void kiln__trace_nvtx_mark(const char *name, int category);

#endif
