/* SPDX-License-Identifier: MIT */
/* Writing a session as a Chrome trace-event file (the JSON object form, which Perfetto
 * and chrome://tracing open): a snapshot of every thread's published events (a torn
 * ring slot is skipped), in ring mode cut to the last N by time; each op's start and
 * end events joined into its span on its stream's track (and a device-timed span on
 * the stream's device sub-track), API spans and instants on the thread's, flows
 * between op spans,
 * user ranges as B/E pairs (a range still open is closed at the snapshot, with a
 * warning). Written to PATH.tmp.PID, then renamed. Called under the trace lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/buf.h"
#include "trace/trace.h"

/* A stream's track is its uid: context slot (bits 40-49), the slot's generation (20-39),
 * the stream's number in the context (0-19). Its tid: base + slot * 10000 + number. */
#define STREAM_TID_BASE 1000000u
#define STREAM_NO(uid) ((unsigned long long)((uid)&0xfffffu))
#define STREAM_CTX(uid) ((unsigned long long)((uid) >> 40))
/* A stream's device sub-track (device-timed spans): its tid plus this. */
#define DEVICE_TID_OFFSET 20000000u

typedef struct rec {
  uint64_t w[KILN__EV_WORDS - 1];
  uint32_t thread_no;
  uint32_t order; /* position within its thread */
} rec;

typedef struct snap {
  rec *r;
  size_t n, cap;
  uint64_t dropped;
} snap;

static int push(snap *s, const uint64_t *w, uint32_t thread_no, uint32_t order) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4096;
    rec *r = realloc(s->r, cap * sizeof *r);
    if (!r)
      return -1;
    s->r = r;
    s->cap = cap;
  }
  memcpy(s->r[s->n].w, w, sizeof s->r[s->n].w);
  s->r[s->n].thread_no = thread_no;
  s->r[s->n].order = order;
  s->n++;
  return 0;
}

/* Read one event; false when it was being overwritten (ring mode). */
static bool read_ev(kiln__trace_ev *e, uint64_t *w) {
  uint64_t s1 = atomic_load_explicit(&e->w[KILN__EV_SEQ], memory_order_acquire);
  if (s1 & 1u)
    return false;
  for (int k = 0; k < KILN__EV_WORDS - 1; k++) /* acquire: pairs with the release stores */
    w[k] = atomic_load_explicit(&e->w[KILN__EV_SLOT(k)], memory_order_acquire);
  return atomic_load_explicit(&e->w[KILN__EV_SEQ], memory_order_relaxed) == s1;
}

/* Ticks of kiln__trace_clock to monotonic ns: identity, or the TSC anchored at the
 * write's own (TSC, ns) pair and scaled by the rate measured since the first anchor. */
static int use_tsc;
static uint64_t conv_tsc, conv_ns;
static double ns_per_tick;

static void clock_setup(void) {
  use_tsc = atomic_load(&kiln__trace_tsc);
  if (!use_tsc)
    return;
#if defined(__x86_64__)
  uint64_t tsc0 = atomic_load(&kiln__trace_anchor_tsc), ns0 = atomic_load(&kiln__trace_anchor_ns);
  do { /* at least 1 ms since the first anchor, so a pair's jitter is < 1e-4 of it */
    kiln__trace_clock_pair(&conv_tsc, &conv_ns);
  } while (conv_ns < ns0 + 1000000u);
  ns_per_tick = (double)(conv_ns - ns0) / (double)(conv_tsc - tsc0);
#endif
}

static uint64_t to_ns(uint64_t t) {
  if (!use_tsc || !t)
    return t;
  double d = ((double)t - (double)conv_tsc) * ns_per_tick;
  double ns = (double)conv_ns + d;
  return ns > 0 ? (uint64_t)ns : 0;
}

static void convert(uint64_t *w) {
  switch (KILN__EV_TYPE(w[0])) {
  case KILN__EV_DEVICE:
    return; /* a backend's stamps: monotonic ns already */
  case KILN__EV_OP_START:
    w[3] = to_ns(w[3]);
    w[4] = to_ns(w[4]);
    return;
  case KILN__EV_API:
  case KILN__EV_OP_END:
    w[2] = to_ns(w[2]);
    /* fall through */
  default:
    w[1] = to_ns(w[1]);
  }
}

static int take_snapshot(snap *s) {
  uint64_t session = atomic_load(&kiln__trace_session);
  for (kiln__trace_buf *b = atomic_load(&kiln__trace_bufs); b; b = b->next) {
    if (atomic_load_explicit(&b->session, memory_order_acquire) != session)
      continue;
    uint64_t n = atomic_load_explicit(&b->count, memory_order_acquire); /* pairs with emit */
    s->dropped += atomic_load_explicit(&b->dropped, memory_order_relaxed);
    uint64_t w[KILN__EV_WORDS - 1];
    uint32_t order = 0;
    kiln__trace_ev *ring = atomic_load_explicit(&b->ring, memory_order_acquire);
    uint64_t cap = atomic_load_explicit(&b->ring_cap, memory_order_relaxed);
    if (atomic_load(&kiln__trace_ring)) {
      if (!ring || !cap)
        continue;
      for (uint64_t i = n > cap ? n - cap : 0; i < n; i++)
        if (read_ev(&ring[i % cap], w) && (convert(w), push(s, w, b->thread_no, order++)) != 0)
          return -1;
      continue;
    }
    kiln__trace_chunk *c = atomic_load_explicit(&b->first, memory_order_acquire);
    for (uint64_t i = 0; i < n && c; i++) {
      if (i && i % KILN__CHUNK_EVENTS == 0)
        c = atomic_load_explicit(&c->next, memory_order_acquire);
      if (c && read_ev(&c->ev[i % KILN__CHUNK_EVENTS], w) &&
          (convert(w), push(s, w, b->thread_no, order++)) != 0)
        return -1;
    }
  }
  return 0;
}

static uint64_t ev_time(const rec *r) {
  unsigned t = KILN__EV_TYPE(r->w[0]);
  if (t == KILN__EV_OP_START)
    return r->w[3];
  return t == KILN__EV_OP || t == KILN__EV_API || t == KILN__EV_DEVICE || t == KILN__EV_OP_END
             ? r->w[2]
             : r->w[1];
}

static int by_time(const void *a, const void *b) {
  uint64_t x = ev_time(a), y = ev_time(b);
  return x < y ? -1 : x > y;
}

static int by_thread_order(const void *a, const void *b) {
  const rec *x = a, *y = b;
  if (x->thread_no != y->thread_no)
    return x->thread_no < y->thread_no ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* ------------------------------------------------------------- JSON output */
static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static uint64_t t0;

static void put_ts(FILE *f, const char *key, uint64_t ns) {
  uint64_t rel = ns > t0 ? ns - t0 : 0;
  fprintf(f, ",\"%s\":%llu.%03llu", key, (unsigned long long)(rel / 1000),
          (unsigned long long)(rel % 1000));
}

static void put_dur(FILE *f, uint64_t begin, uint64_t end) {
  uint64_t d = end > begin ? end - begin : 0;
  fprintf(f, ",\"dur\":%llu.%03llu", (unsigned long long)(d / 1000),
          (unsigned long long)(d % 1000));
}

static void put_dur_key(FILE *f, const char *key, uint64_t ns) {
  fprintf(f, ",\"%s\":%llu.%03llu", key, (unsigned long long)(ns / 1000),
          (unsigned long long)(ns % 1000));
}

static unsigned long long stream_tid(uint64_t track) {
  return STREAM_TID_BASE + STREAM_CTX(track) * 10000u + STREAM_NO(track) % 10000u;
}

static const char *const kind_names[] = {
    [KILN__OP_WRITE] = "write", [KILN__OP_READ] = "read",        [KILN__OP_COPY] = "copy",
    [KILN__OP_FILL] = "fill",   [KILN__OP_LAUNCH] = "launch",    [KILN__OP_MARKER] = "marker",
    [KILN__OP_WAIT] = "wait",   [KILN__OP_CALLBACK] = "callback"};

static const char *kind_name(unsigned k) {
  return k < sizeof kind_names / sizeof kind_names[0] && kind_names[k] ? kind_names[k] : "op";
}

/* Chrome's reserved colour names, by kiln_trace_category. */
static const char *const cat_names[KILN_TRACE_CATEGORY_COUNT] = {
    [KILN_TRACE_USER] = "user",          [KILN_TRACE_KERNEL] = "kernel",
    [KILN_TRACE_MEMORY] = "memory",      [KILN_TRACE_TRANSFER] = "transfer",
    [KILN_TRACE_SYNC] = "sync",          [KILN_TRACE_IO] = "io",
    [KILN_TRACE_ALGORITHM] = "algorithm"};
static const char *const cat_colours[KILN_TRACE_CATEGORY_COUNT] = {
    [KILN_TRACE_USER] = "grey",
    [KILN_TRACE_KERNEL] = "good",
    [KILN_TRACE_MEMORY] = "rail_response",
    [KILN_TRACE_TRANSFER] = "rail_load",
    [KILN_TRACE_SYNC] = "terrible",
    [KILN_TRACE_IO] = "yellow",
    [KILN_TRACE_ALGORITHM] = "olive"};

static unsigned cat_of(const rec *r) {
  unsigned c = KILN__EV_SMALL(r->w[0]);
  return c < KILN_TRACE_CATEGORY_COUNT ? c : 0;
}

/* An op's span, found by (track, seq) for flows. */
typedef struct span_key {
  uint64_t track, seq, begin;
  bool device; /* the op has a device-timed span too */
} span_key;

static int cmp_span(const void *a, const void *b) {
  const span_key *x = a, *y = b;
  if (x->track != y->track)
    return x->track < y->track ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const span_key *find_span(const span_key *k, size_t n, uint64_t track, uint64_t seq) {
  span_key key = {track, seq, 0, false};
  return bsearch(&key, k, n, sizeof *k, cmp_span);
}

static void sep(FILE *f, int *first) {
  fputs(*first ? "\n" : ",\n", f);
  *first = 0;
}

static void write_op(FILE *f, int *first, int pid, const rec *r) {
  const uint64_t *w = r->w;
  unsigned kind = KILN__EV_SMALL(w[0]), flags = KILN__EV_FLAGS(w[0]);
  kiln_status st = (kiln_status)KILN__EV_VALUE(w[0]);
  const char *kernel = (const char *)(uintptr_t)w[8];
  const char *api = (const char *)(uintptr_t)w[9];
  const char *file = (const char *)(uintptr_t)w[10];
  sep(f, first);
  fputs("{\"ph\":\"X\",\"cat\":\"op\",\"name\":", f);
  put_str(f, kernel ? kernel : kind_name(kind));
  fprintf(f, ",\"pid\":%d,\"tid\":%llu", pid, stream_tid(w[5]));
  put_ts(f, "ts", w[1]);
  put_dur(f, w[1], w[2]);
  fputs(",\"cname\":", f);
  put_str(f, st != KILN_SUCCESS ? "bad" : kind == KILN__OP_LAUNCH ? "good" : "rail_response");
  fputs(",\"args\":{\"kind\":", f);
  put_str(f, kind_name(kind));
  fprintf(f, ",\"stream\":%llu,\"seq\":%llu,\"bytes\":%llu", STREAM_NO(w[5]),
          (unsigned long long)w[6], (unsigned long long)w[7]);
  if (kernel) {
    fputs(",\"kernel\":", f);
    put_str(f, kernel);
  }
  if (kernel && w[12]) { /* (a ring's ops carry no range) */
    fprintf(f, ",\"range\":[%llu,%llu,%llu]", (unsigned long long)w[12], (unsigned long long)w[13],
            (unsigned long long)w[14]);
  }
  /* run: the worker's own start and end; observed: a device backend's op, from when
   * it could start (queued, and its stream's previous op done) to when kiln saw it
   * complete (docs/observability.md, "Clocks") */
  fprintf(f, ",\"timing\":\"%s\"", (flags & KILN__EVF_RUN) ? "run" : "observed");
  fputs(",\"status\":", f);
  put_str(f, kiln_status_name(st));
  if (api) {
    fputs(",\"api\":", f);
    put_str(f, api);
  }
  if (file) {
    char site[512];
    snprintf(site, sizeof site, "%s:%u", file, (unsigned)w[11]);
    fputs(",\"site\":", f);
    put_str(f, site);
  }
  if (w[3])
    put_ts(f, "queued_us", w[3]);
  fputs("}}", f);
  /* The API time of the call that queued it, on the submitting thread's track. */
  if ((flags & KILN__EVF_API) && !(flags & KILN__EVF_BLOCKING) && w[4] && w[3] >= w[4]) {
    sep(f, first);
    fputs("{\"ph\":\"X\",\"cat\":\"api\",\"name\":", f);
    put_str(f, api ? api : "kiln");
    fprintf(f, ",\"pid\":%d,\"tid\":%u", pid, r->thread_no);
    put_ts(f, "ts", w[4]);
    put_dur(f, w[4], w[3]);
    fprintf(f, ",\"args\":{\"stream\":%llu,\"seq\":%llu}}", STREAM_NO(w[5]),
            (unsigned long long)w[6]);
  }
}

/* An op's span on the device (KILN__EV_DEVICE), on its stream's device sub-track. */
static void write_device(FILE *f, int *first, int pid, const rec *r) {
  const uint64_t *w = r->w;
  unsigned kind = KILN__EV_SMALL(w[0]);
  kiln_status st = (kiln_status)KILN__EV_VALUE(w[0]);
  const char *kernel = (const char *)(uintptr_t)w[6];
  sep(f, first);
  fputs("{\"ph\":\"X\",\"cat\":\"device\",\"name\":", f);
  put_str(f, kernel ? kernel : kind_name(kind));
  fprintf(f, ",\"pid\":%d,\"tid\":%llu", pid, stream_tid(w[3]) + DEVICE_TID_OFFSET);
  put_ts(f, "ts", w[1]);
  put_dur(f, w[1], w[2]);
  fputs(",\"cname\":", f);
  put_str(f, st != KILN_SUCCESS ? "bad" : kind == KILN__OP_LAUNCH ? "good" : "rail_response");
  fputs(",\"args\":{\"kind\":", f);
  put_str(f, kind_name(kind));
  /* op_tid: the track of the op's own (observed) span, which `kiln trace summary`
   * replaces with this one */
  fprintf(f, ",\"stream\":%llu,\"seq\":%llu,\"bytes\":%llu,\"op_tid\":%llu", STREAM_NO(w[3]),
          (unsigned long long)w[4], (unsigned long long)w[5], stream_tid(w[3]));
  /* anchor_error_us: how far the mapping of the device's clock onto the host's may be
   * off (the backend's anchor, docs/observability.md) */
  fputs(",\"timing\":\"device\"", f);
  put_dur_key(f, "anchor_error_us", w[7]);
  fputs(",\"status\":", f);
  put_str(f, kiln_status_name(st));
  fputs("}}", f);
}

static void write_instant(FILE *f, int *first, int pid, const rec *r) {
  const uint64_t *w = r->w;
  sep(f, first);
  fputs("{\"ph\":\"i\",\"s\":\"t\",\"cat\":", f);
  put_str(f, (const char *)(uintptr_t)w[2]);
  fputs(",\"name\":", f);
  put_str(f, (const char *)(uintptr_t)w[3]);
  fprintf(f, ",\"pid\":%d,\"tid\":%u", pid, r->thread_no);
  put_ts(f, "ts", w[1]);
  fputs(",\"args\":{", f);
  if (KILN__EV_TYPE(w[0]) == KILN__EV_INSTANT_STR) {
    char v[KILN__TRACE_NAME_BYTES];
    memcpy(v, &w[5], sizeof v);
    v[sizeof v - 1] = '\0';
    put_str(f, (const char *)(uintptr_t)w[4]);
    fputc(':', f);
    put_str(f, v);
  } else {
    for (uint64_t i = 0; i < w[4] && i < 3; i++) {
      if (i)
        fputc(',', f);
      put_str(f, (const char *)(uintptr_t)w[5 + 2 * i]);
      fprintf(f, ":%lld", (long long)(int64_t)w[6 + 2 * i]);
    }
  }
  fputs("}}", f);
}

static void write_user(FILE *f, int *first, int pid, const rec *r, const char *ph) {
  char name[KILN__TRACE_NAME_BYTES];
  memcpy(name, &r->w[2], sizeof name);
  name[sizeof name - 1] = '\0';
  unsigned c = cat_of(r);
  sep(f, first);
  fprintf(f, "{\"ph\":\"%s\",", ph);
  if (ph[0] == 'i')
    fputs("\"s\":\"t\",", f);
  fputs("\"cat\":", f);
  put_str(f, cat_names[c]);
  fputs(",\"name\":", f);
  put_str(f, name);
  fputs(",\"cname\":", f);
  put_str(f, cat_colours[c]);
  fprintf(f, ",\"pid\":%d,\"tid\":%u", pid, r->thread_no);
  put_ts(f, "ts", r->w[1]);
  fputs("}", f);
}

/* B/E pairs of one thread's run [lo, hi) of records (in recorded order). */
static void write_ranges(FILE *f, int *first, int pid, const rec *r, size_t lo, size_t hi,
                         uint64_t now, unsigned *left_open) {
  enum { MAX_DEPTH = 256 };
  size_t stack[MAX_DEPTH];
  size_t depth = 0, skipped = 0;
  for (size_t i = lo; i < hi; i++) {
    unsigned t = KILN__EV_TYPE(r[i].w[0]);
    if (t == KILN__EV_RANGE_BEGIN) {
      if (depth < MAX_DEPTH) {
        stack[depth++] = i;
        write_user(f, first, pid, &r[i], "B");
      } else {
        skipped++;
      }
    } else if (t == KILN__EV_RANGE_END) {
      if (skipped) {
        skipped--;
      } else if (depth) { /* an end without its begin (cut off by a ring) is dropped */
        rec e = r[stack[--depth]];
        e.w[1] = r[i].w[1];
        write_user(f, first, pid, &e, "E");
      }
    }
  }
  while (depth) {
    rec e = r[stack[--depth]];
    char name[KILN__TRACE_NAME_BYTES];
    memcpy(name, &e.w[2], sizeof name);
    name[sizeof name - 1] = '\0';
    kiln__log(KILN_LOG_WARN,
              "trace: range '%s' on thread %u is still open as the trace is written: closed "
              "there",
              name, e.thread_no);
    e.w[1] = now;
    write_user(f, first, pid, &e, "E");
    (*left_open)++;
  }
}

/* An op's start (OP_START, from the submitting thread) and end (OP_END, from the
 * completing one) become one OP record, in the start's place (its thread is the one
 * whose API span it carries). A start without its end (the op is still running) is
 * dropped; an end without its start (a ring records none, or cut it off) keeps what
 * it has: span, kind, kernel name, bytes, status. */
static int start_key(const void *a, const void *b) {
  const rec *x = *(const rec *const *)a, *y = *(const rec *const *)b;
  if (x->w[5] != y->w[5])
    return x->w[5] < y->w[5] ? -1 : 1;
  return x->w[6] < y->w[6] ? -1 : x->w[6] > y->w[6];
}

static int join_ops(snap *s) {
  size_t nstart = 0;
  for (size_t i = 0; i < s->n; i++)
    nstart += KILN__EV_TYPE(s->r[i].w[0]) == KILN__EV_OP_START;
  rec **starts = malloc((nstart ? nstart : 1) * sizeof *starts);
  if (!starts)
    return -1;
  nstart = 0;
  for (size_t i = 0; i < s->n; i++)
    if (KILN__EV_TYPE(s->r[i].w[0]) == KILN__EV_OP_START)
      starts[nstart++] = &s->r[i];
  if (nstart)
    qsort(starts, nstart, sizeof *starts, start_key);
  for (size_t i = 0; i < s->n; i++) {
    rec *e = &s->r[i];
    if (KILN__EV_TYPE(e->w[0]) != KILN__EV_OP_END)
      continue;
    rec key = {.w = {[5] = e->w[3], [6] = e->w[4]}}, *kp = &key;
    rec **found = nstart ? bsearch(&kp, starts, nstart, sizeof *starts, start_key) : NULL;
    unsigned kind = KILN__EV_SMALL(e->w[0]), flags = KILN__EV_FLAGS(e->w[0]);
    int32_t status = KILN__EV_VALUE(e->w[0]);
    uint64_t begin = e->w[1], end = e->w[2], track = e->w[3], seq = e->w[4];
    uint64_t name = e->w[5], bytes = e->w[6];
    if (found && KILN__EV_TYPE((*found)->w[0]) == KILN__EV_OP_START) {
      rec *st = *found;
      st->w[0] = KILN__EV_HDR(KILN__EV_OP, kind, flags | KILN__EV_FLAGS(st->w[0]), status);
      st->w[1] = begin;
      st->w[2] = end;
      e->w[0] = 0; /* consumed */
    } else {
      memset(e->w, 0, sizeof e->w);
      e->w[0] = KILN__EV_HDR(KILN__EV_OP, kind, flags, status);
      e->w[1] = begin;
      e->w[2] = end;
      e->w[5] = track;
      e->w[6] = seq;
      e->w[7] = bytes;
      e->w[8] = name;
    }
  }
  for (size_t i = 0; i < nstart; i++) /* still running when the trace was written */
    if (KILN__EV_TYPE(starts[i]->w[0]) == KILN__EV_OP_START)
      starts[i]->w[0] = 0;
  free(starts);
  return 0;
}

static int write_all(FILE *f, snap *s, uint64_t now, const char *why) {
  int pid = (int)getpid();
  int first = 1;
  uint64_t ring = atomic_load(&kiln__trace_ring);
  if (ring && s->n > ring) { /* the last N events in all */
    qsort(s->r, s->n, sizeof *s->r, by_time);
    memmove(s->r, s->r + (s->n - ring), ring * sizeof *s->r);
    s->n = ring;
  }
  if (join_ops(s) != 0)
    return -1;
  if (s->n) /* (an empty trace has no array at all) */
    qsort(s->r, s->n, sizeof *s->r, by_thread_order);
  /* Spans of ops for the flows, and the tracks seen. */
  size_t nspan = 0;
  span_key *spans = malloc((s->n ? s->n : 1) * sizeof *spans);
  if (!spans)
    return -1;
  for (size_t i = 0; i < s->n; i++)
    if (KILN__EV_TYPE(s->r[i].w[0]) == KILN__EV_OP)
      spans[nspan++] = (span_key){s->r[i].w[5], s->r[i].w[6], s->r[i].w[1], false};
  if (nspan)
    qsort(spans, nspan, sizeof *spans, cmp_span);
  for (size_t i = 0; i < s->n; i++)
    if (KILN__EV_TYPE(s->r[i].w[0]) == KILN__EV_DEVICE) {
      span_key *k = (span_key *)find_span(spans, nspan, s->r[i].w[3], s->r[i].w[4]);
      if (k)
        k->device = true;
    }

  fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"kiln ", f);
  fputs(kiln_version_string(), f);
  fprintf(
      f,
      "\",\"clock\":\"CLOCK_MONOTONIC\",\"recorded_with\":\"%s\",\"t0_ns\":%llu,\"mode\":\"%s\","
      "\"ring_events\":%llu,\"dropped_events\":%llu,\"written_because\":",
      use_tsc ? "tsc" : "clock_gettime", (unsigned long long)t0, ring ? "ring" : "full",
      (unsigned long long)ring, (unsigned long long)s->dropped);
  put_str(f, why);
  fputs("},\"traceEvents\":[", f);
  sep(f, &first);
  fprintf(f,
          "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":"
          "\"kiln\"}}",
          pid);
  /* Track names: threads, then streams (each once). */
  uint32_t last_thread = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->r[i].thread_no != last_thread) {
      last_thread = s->r[i].thread_no;
      sep(f, &first);
      fprintf(f,
              "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%u,\"args\":{"
              "\"name\":\"thread %u\"}}",
              pid, last_thread, last_thread);
      sep(f, &first);
      fprintf(f,
              "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%u,\"args\":{"
              "\"sort_index\":%u}}",
              pid, last_thread, 1000u + last_thread);
    }
  for (size_t i = 0; i < nspan; i++)
    if (i == 0 || spans[i].track != spans[i - 1].track) {
      bool has_device = false; /* the track's device sub-track, when an op has one */
      for (size_t k = i; k < nspan && spans[k].track == spans[i].track && !has_device; k++)
        has_device = spans[k].device;
      char label[KILN__TRACE_NAME_BYTES], name[KILN__TRACE_NAME_BYTES + 64];
      if (kiln__trace_track_name_locked(spans[i].track, label))
        snprintf(name, sizeof name, "%s (stream %llu, context %llu)", label,
                 STREAM_NO(spans[i].track), STREAM_CTX(spans[i].track));
      else
        snprintf(name, sizeof name, "stream %llu (context %llu)", STREAM_NO(spans[i].track),
                 STREAM_CTX(spans[i].track));
      sep(f, &first);
      fprintf(f,
              "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%llu,\"args\":{\"name\":",
              pid, stream_tid(spans[i].track));
      put_str(f, name);
      fputs("}}", f);
      sep(f, &first);
      fprintf(
          f,
          "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%llu,\"args\":{"
          "\"sort_index\":%u}}",
          pid, stream_tid(spans[i].track),
          (unsigned)(STREAM_CTX(spans[i].track) * 200u + STREAM_NO(spans[i].track) % 100u * 2u));
      if (has_device) {
        char dname[KILN__TRACE_NAME_BYTES + 80];
        snprintf(dname, sizeof dname, "%s: on the device", name);
        unsigned long long dtid = stream_tid(spans[i].track) + DEVICE_TID_OFFSET;
        sep(f, &first);
        fprintf(f,
                "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%llu,\"args\":{"
                "\"name\":",
                pid, dtid);
        put_str(f, dname);
        fputs("}}", f);
        sep(f, &first);
        fprintf(f,
                "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%llu,\"args\":{"
                "\"sort_index\":%u}}",
                pid, dtid,
                (unsigned)(STREAM_CTX(spans[i].track) * 200u +
                           STREAM_NO(spans[i].track) % 100u * 2u + 1u));
      }
    }
  uint64_t flow_id = 0;
  unsigned left_open = 0;
  size_t run_lo = 0;
  for (size_t i = 0; i < s->n; i++) {
    const rec *r = &s->r[i];
    switch (KILN__EV_TYPE(r->w[0])) {
    case KILN__EV_OP:
      write_op(f, &first, pid, r);
      break;
    case KILN__EV_DEVICE:
      write_device(f, &first, pid, r);
      break;
    case KILN__EV_API:
      sep(f, &first);
      fputs("{\"ph\":\"X\",\"cat\":\"api\",\"name\":", f);
      put_str(f, r->w[3] ? (const char *)(uintptr_t)r->w[3] : "kiln");
      fprintf(f, ",\"pid\":%d,\"tid\":%u", pid, r->thread_no);
      put_ts(f, "ts", r->w[1]);
      put_dur(f, r->w[1], r->w[2]);
      fputs("}", f);
      break;
    case KILN__EV_FLOW: {
      const span_key *from = find_span(spans, nspan, r->w[2], r->w[3]);
      const span_key *to = find_span(spans, nspan, r->w[4], r->w[5]);
      if (!from || !to)
        break; /* one end not in the trace (not complete yet, or cut off by a ring) */
      const char *name = KILN__EV_SMALL(r->w[0]) ? "event wait" : "hazard";
      flow_id++;
      sep(f, &first);
      fprintf(f,
              "{\"ph\":\"s\",\"cat\":\"dep\",\"name\":\"%s\",\"id\":%llu,\"pid\":%d,\"tid\":%llu",
              name, (unsigned long long)flow_id, pid, stream_tid(from->track));
      put_ts(f, "ts", from->begin);
      fprintf(f,
              ",\"args\":{\"from_stream\":%llu,\"from_seq\":%llu,\"to_stream\":%llu,"
              "\"to_seq\":%llu}}",
              STREAM_NO(r->w[2]), (unsigned long long)r->w[3], STREAM_NO(r->w[4]),
              (unsigned long long)r->w[5]);
      sep(f, &first);
      fprintf(f,
              "{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"dep\",\"name\":\"%s\",\"id\":%llu,\"pid\":%d,"
              "\"tid\":%llu",
              name, (unsigned long long)flow_id, pid, stream_tid(to->track));
      put_ts(f, "ts", to->begin);
      fputs("}", f);
      break;
    }
    case KILN__EV_INSTANT:
    case KILN__EV_INSTANT_STR:
      write_instant(f, &first, pid, r);
      break;
    case KILN__EV_MARK:
      write_user(f, &first, pid, r, "i");
      break;
    default:
      break; /* ranges: per thread, below */
    }
    if (i + 1 == s->n || s->r[i + 1].thread_no != r->thread_no) {
      write_ranges(f, &first, pid, s->r, run_lo, i + 1, now, &left_open);
      run_lo = i + 1;
    }
  }
  free(spans);
  fputs("\n]}\n", f);
  return 0;
}

kiln_status kiln__trace_write_file(const char *path, const char *why) {
  char q[KILN__QUOTE_BYTES];
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  snap s = {0};
  t0 = atomic_load(&kiln__trace_t0);
  clock_setup();
  uint64_t now = kiln__now_ns();
  if (take_snapshot(&s) != 0) {
    free(s.r);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory collecting the trace for %s",
                       kiln__quote(q, path, strlen(path)));
  }
  FILE *f = fopen(tmp, "w");
  if (!f) {
    int e = errno;
    free(s.r);
    kiln__log(KILN_LOG_ERROR, "trace: cannot write %s: %s (the program carries on)", tmp,
              strerror(e));
    kiln__error(KILN_ERROR_IO, "cannot write the trace to %s: %s", kiln__quote(q, tmp, strlen(tmp)),
                strerror(e));
    kiln__error_suggest("give a path in a writable folder");
    return KILN_ERROR_IO;
  }
  static char iobuf[1 << 16];
  setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
  int rc = write_all(f, &s, now, why);
  free(s.r);
  int e = ferror(f) ? EIO : 0;
  if (fclose(f) != 0 && !e)
    e = errno ? errno : EIO;
  if (rc != 0 || e || rename(tmp, path) != 0) {
    e = rc != 0 ? ENOMEM : e ? e : errno;
    unlink(tmp);
    kiln__log(KILN_LOG_ERROR, "trace: writing %s failed: %s (the program carries on)", path,
              strerror(e));
    return kiln__error(KILN_ERROR_IO, "writing the trace to %s failed: %s",
                       kiln__quote(q, path, strlen(path)), strerror(e));
  }
  kiln__log(KILN_LOG_DEBUG, "trace: wrote %zu events to %s (%s)", s.n, path, why);
  return KILN_SUCCESS;
}
