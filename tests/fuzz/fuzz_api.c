/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a hostile user of the public API. The input is a program: a header
 * (backend, the mock's chaos and fault settings, a host-allocation failure) and then ops,
 * each a byte naming an API call and bytes choosing its handles (live, destroyed, NULL,
 * of another context), sizes and offsets (in range, zero, past the end, overflowing).
 * It keeps a table of live handles and a shadow of every buffer's bytes.
 * Invariants: every call returns a status; misuse gets the documented code (one
 * argument at most is wrong per call, so the code is determined); data read back
 * through the API matches the shadow wherever the shadow knows it (an injected failure,
 * seen through kiln_mock_failures or the allocator's count, forgets every shadow);
 * at the end everything is destroyed, every callback ran once, nothing leaks.
 * Built with clang from all of kiln's sources (tests/fuzz.cmake); tests/README.md. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { MAXCTX = 2, NSTREAM = 4, NOWNED = 12, NEVENT = 4, NBUF = 8, NTOK = 8, NPOOL = 2 };
enum { NPIN = 4, NFUT = 6, NSTALE = 12, NHELD = 4 };
enum { KIND_PLAIN, KIND_POOLED, KIND_MANAGED };

/* ---- the input ---- */
typedef struct prog {
  const uint8_t *p;
  size_t n, i;
  int bad; /* one wrong argument per call: set once one is chosen */
} prog;

static uint8_t u8(prog *g) {
  return g->i < g->n ? g->p[g->i++] : 0;
}
static uint16_t u16(prog *g) {
  return (uint16_t)(u8(g) | (u8(g) << 8));
}
static uint32_t u32(prog *g) {
  return (uint32_t)u16(g) | ((uint32_t)u16(g) << 16);
}

/* FUZZ_API_TRACE=1: each op and each checked status on stderr. */
static int trace;

/* ---- what went wrong ---- */
/* A finding: a trap, which libFuzzer reports as a crash and saves the input of. */
static _Noreturn void crash(void) {
  __builtin_trap();
}

static void die(const char *what, kiln_status st) {
  const kiln_error_info *e = kiln_last_error();
  fprintf(stderr, "fuzz_api: %s: got %s (%d): %s\n", what, kiln_status_name(st), (int)st,
          e ? e->message : "");
  crash();
}

/* ---- allocation faults: kiln's host allocations fail from the Nth on (or once) ---- */
static atomic_ulong alloc_calls, alloc_failures;
static atomic_long alloc_live; /* blocks kiln holds from fz_alloc */
static unsigned long alloc_fail_at, alloc_fail_once;
static void *fz_alloc(size_t size, size_t align, void *user) {
  (void)user;
  unsigned long n = atomic_fetch_add(&alloc_calls, 1) + 1;
  if (alloc_fail_at && (n == alloc_fail_at || (!alloc_fail_once && n > alloc_fail_at))) {
    atomic_fetch_add(&alloc_failures, 1);
    return NULL;
  }
  if (align < sizeof(void *))
    align = sizeof(void *);
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : 1) != 0)
    return NULL;
  atomic_fetch_add(&alloc_live, 1);
  return p;
}
static void fz_free(void *ptr, size_t size, size_t align, void *user) {
  (void)size, (void)align, (void)user;
  if (ptr)
    atomic_fetch_sub(&alloc_live, 1);
  free(ptr);
}

/* ---- the handle table ---- */
typedef struct fbuf {
  kiln_buffer h;
  size_t bytes;
  uint8_t *data, *known; /* shadow: the value of each byte, and whether it is known */
  int kind;
  int acq; /* managed: 0 free, > 0 readers, -1 a writer */
  uint8_t *acq_ptr;
  int pool; /* pooled: its pool's index */
} fbuf;

typedef struct rec { /* what an async op owes the fuzzer when it is observed */
  uint8_t *host;     /* its host memory (freed when observed) */
  size_t bytes;
  uint8_t *expect, *expect_known; /* a read: what must arrive */
} rec;

typedef struct ftok {
  kiln_pending t;
  kiln_stream s; /* its op's stream: destroying it waits for the op and ends the token */
  rec r;
} ftok;

typedef struct ffut {
  kiln_future f;
  rec r; /* a future made from a token keeps the token's record */
} ffut;

typedef struct fctx {
  kiln_context h;
  int mock, pooled;
  kiln_stream streams[NSTREAM];
  int nstreams;
  kiln_stream owned[NOWNED]; /* the transfer stream, pool and set streams: not destroyable */
  int nowned;
  kiln_event events[NEVENT];
  int timing[NEVENT];
  int nevents;
  fbuf *bufs[NBUF];
  int nbufs;
  ftok toks[NTOK];
  kiln_pool pools[NPOOL];
  size_t pool_max_class[NPOOL];
  int npools;
  void *pins[NPIN];
  size_t pin_bytes[NPIN];
  int npins;
  ffut futs[NFUT];
  kiln_stream_pool spool;
  kiln_stream spool_streams[3], sset_streams[3]; /* as made (a lost device refuses _get) */
  size_t nspool_streams, nsset_streams;
  kiln_stream held[NHELD];
  int nheld;
  kiln_stream_set sset;
  kiln_kernel kernel;
  rec *deferred; /* host memory of ops only a context-wide wait observes */
  size_t ndeferred, cap_deferred;
  void *stale_bufs[NSTALE], *stale_streams[NSTALE], *stale_events[NSTALE];
  int nstale_bufs, nstale_streams, nstale_events;
} fctx;

static fctx ctxs[MAXCTX];
static int nctx;
/* Handles whose context is gone but that stay refusable: contexts (static table),
 * pools (static table), tokens and futures (ids with the context's slot). */
static kiln_context stale_ctx[NSTALE];
static kiln_pool stale_pools[NSTALE];
static kiln_pending stale_toks[NSTALE];
static kiln_future stale_futs[NSTALE];
static int nstale_ctx, nstale_pools, nstale_toks, nstale_futs;

static int faults;                /* injected failures configured: valid calls may fail */
static int lost;                  /* the mock device was lost or reset in this input */
static kiln_mock_config mock_cfg; /* this input's mock configuration */
static kiln_status fail_status;   /* the mock's injected status */
static uint64_t seen_failures;    /* injected failures the shadow has accounted for */
static int cb_expected, cb_ran;   /* callbacks registered / run */
static kiln_device cpu_dev, mock_dev;

static void push_stale(void **arr, int *n, void *h) {
  if (*n == NSTALE) {
    memmove(arr, arr + 1, (NSTALE - 1) * sizeof *arr);
    (*n)--;
  }
  arr[(*n)++] = h;
}

/* A handle handed out again (a slab slot after its quarantine, a pool block reissued at
 * once) is live again: it leaves every stale list. */
static void unstale(void *h) {
  for (int c = 0; c < nctx; c++) {
    fctx *x = &ctxs[c];
    void **lists[3] = {x->stale_bufs, x->stale_streams, x->stale_events};
    int *counts[3] = {&x->nstale_bufs, &x->nstale_streams, &x->nstale_events};
    for (int l = 0; l < 3; l++)
      for (int i = 0; i < *counts[l]; i++)
        if (lists[l][i] == h) {
          memmove(&lists[l][i], &lists[l][i + 1], (size_t)(*counts[l] - i - 1) * sizeof(void *));
          (*counts[l])--;
          i--;
        }
  }
  for (int i = 0; i < nstale_ctx; i++)
    if ((void *)stale_ctx[i] == h)
      stale_ctx[i--] = stale_ctx[--nstale_ctx];
  for (int i = 0; i < nstale_pools; i++)
    if ((void *)stale_pools[i] == h)
      stale_pools[i--] = stale_pools[--nstale_pools];
}

/* ---- statuses ---- */
/* Calls made, for FUZZ_API_STATS=1 (how deep the seeds reach). */
static unsigned long n_ok, n_fault, n_want, n_checked, n_lost;

static int is_fault(kiln_status st) {
  if (lost && st == KILN_ERROR_DEVICE_LOST) {
    n_lost++;
    return 1;
  }
  return faults && (st == fail_status || st == KILN_ERROR_DEPENDENCY_FAILED ||
                    st == KILN_ERROR_OUT_OF_HOST_MEMORY || st == KILN_ERROR_OUT_OF_DEVICE_MEMORY);
}

/* A valid call: success, or (with faults configured) an injected failure. */
static int ok(kiln_status st, const char *what) {
  if (trace)
    fprintf(stderr, "fuzz_api:   %s: %s\n", what, kiln_status_name(st));
  if (st == KILN_SUCCESS) {
    n_ok++;
    return 1;
  }
  if (is_fault(st)) {
    n_fault++;
    return 0;
  }
  die(what, st);
  return 0;
}
/* A call with one wrong argument: exactly the documented code. */
static void want(kiln_status st, kiln_status expected, const char *what) {
  if (trace)
    fprintf(stderr, "fuzz_api:   %s: %s (refused as expected?)\n", what, kiln_status_name(st));
  /* after a loss, a handle of the lost generation is refused with DEVICE_LOST first */
  if (st == expected || (lost && st == KILN_ERROR_DEVICE_LOST)) {
    n_lost += st != expected;
    n_want++;
    return;
  }
  fprintf(stderr, "fuzz_api: %s: expected %s\n", what, kiln_status_name(expected));
  die(what, st);
}

/* ---- the shadow ---- */
static void forget_all(void) {
  for (int c = 0; c < nctx; c++)
    for (int b = 0; b < ctxs[c].nbufs; b++)
      memset(ctxs[c].bufs[b]->known, 0, ctxs[c].bufs[b]->bytes);
}
/* Any injected failure so far makes every shadow unknown (which op failed is not
 * known here; its buffers' contents are not what the program asked for). */
static int failures_changed(void) {
  uint64_t f = kiln_mock_failures() + atomic_load(&alloc_failures);
  if (f != seen_failures) {
    seen_failures = f;
    forget_all();
    return 1;
  }
  return 0;
}
static void check_bytes(const uint8_t *got, const uint8_t *expect, const uint8_t *known,
                        size_t bytes, const char *what) {
  if (failures_changed() || lost)
    return;
  n_checked++;
  for (size_t i = 0; i < bytes; i++)
    if (known[i] && got[i] != expect[i]) {
      fprintf(stderr, "fuzz_api: %s: byte %zu of %zu is 0x%02x, the shadow says 0x%02x\n", what, i,
              bytes, got[i], expect[i]);
      crash();
    }
}
static void rec_free(rec *r) {
  free(r->host);
  free(r->expect);
  free(r->expect_known);
  memset(r, 0, sizeof *r);
}
/* The op was observed complete with `st`: check a read's bytes, free its memory. */
static void rec_observed(rec *r, kiln_status st, const char *what) {
  if (st == KILN_SUCCESS && r->expect)
    check_bytes(r->host, r->expect, r->expect_known, r->bytes, what);
  rec_free(r);
}
static void defer(fctx *x, rec *r) {
  if (!r->host) {
    rec_free(r);
    return;
  }
  if (x->ndeferred == x->cap_deferred) {
    size_t cap = x->cap_deferred ? x->cap_deferred * 2 : 16;
    rec *d = realloc(x->deferred, cap * sizeof *d);
    if (!d)
      crash();
    x->deferred = d;
    x->cap_deferred = cap;
  }
  x->deferred[x->ndeferred++] = *r;
  memset(r, 0, sizeof *r);
}
/* A context-wide wait observed every op of x: their host memory is free again. */
static void release_deferred(fctx *x) {
  for (size_t i = 0; i < x->ndeferred; i++)
    rec_free(&x->deferred[i]);
  x->ndeferred = 0;
}

/* ---- picking handles ---- */
static fctx *pick_ctx(prog *g) {
  return nctx ? &ctxs[u8(g) % nctx] : NULL;
}
/* Whether this argument is the call's wrong one: 0 live, 1 NULL, 2 destroyed, 3 foreign. */
static int pick_mode(prog *g) {
  uint8_t b = u8(g);
  if (g->bad || b < 200)
    return 0;
  g->bad = 1;
  return 1 + b % 3;
}
static fctx *other_ctx(fctx *x) {
  for (int c = 0; c < nctx; c++)
    if (&ctxs[c] != x)
      return &ctxs[c];
  return NULL;
}
/* A stream of x: user streams and owned (pool, set, transfer) streams alike. */
static kiln_stream live_stream(prog *g, fctx *x) {
  int n = x->nstreams + x->nowned;
  if (!n)
    return NULL;
  int i = u8(g) % n;
  return i < x->nstreams ? x->streams[i] : x->owned[i - x->nstreams];
}
/* For an argument that must be a stream of x: the stream and the status it must give
 * (KILN_SUCCESS: it is fine). NULL return with SUCCESS: x has no stream. */
static kiln_stream pick_stream(prog *g, fctx *x, kiln_status *expect) {
  *expect = KILN_SUCCESS;
  int m = pick_mode(g);
  if (m == 2 && x->nstale_streams) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return x->stale_streams[u8(g) % x->nstale_streams];
  }
  if (m == 3) {
    fctx *o = other_ctx(x);
    kiln_stream s = o ? live_stream(g, o) : NULL;
    if (s) {
      *expect = KILN_ERROR_DEVICE_MISMATCH;
      return s;
    }
  }
  if (m) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return NULL;
  }
  return live_stream(g, x);
}
static fbuf *live_buf(prog *g, fctx *x) {
  return x->nbufs ? x->bufs[u8(g) % x->nbufs] : NULL;
}
/* A buffer argument: *fb the live buffer (NULL when the argument is wrong). */
static kiln_buffer pick_buf(prog *g, fctx *x, fbuf **fb, kiln_status *expect, int foreign_ok) {
  *expect = KILN_SUCCESS;
  *fb = NULL;
  int m = pick_mode(g);
  if (m == 2 && x->nstale_bufs) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return x->stale_bufs[u8(g) % x->nstale_bufs];
  }
  if (m == 3 && foreign_ok) {
    fctx *o = other_ctx(x);
    fbuf *b = o ? live_buf(g, o) : NULL;
    if (b) {
      *expect = KILN_ERROR_DEVICE_MISMATCH;
      return b->h;
    }
  }
  if (m) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return NULL;
  }
  *fb = live_buf(g, x);
  return *fb ? (*fb)->h : NULL;
}
static kiln_event pick_event(prog *g, fctx *x, int *idx, kiln_status *expect) {
  *expect = KILN_SUCCESS;
  *idx = -1;
  int m = pick_mode(g);
  if (m == 2 && x->nstale_events) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return x->stale_events[u8(g) % x->nstale_events];
  }
  if (m == 3) {
    fctx *o = other_ctx(x);
    if (o && o->nevents) {
      *expect = KILN_ERROR_DEVICE_MISMATCH;
      return o->events[u8(g) % o->nevents];
    }
  }
  if (m) {
    *expect = KILN_ERROR_INVALID_HANDLE;
    return NULL;
  }
  if (!x->nevents)
    return NULL;
  *idx = u8(g) % x->nevents;
  return x->events[*idx];
}

/* A transfer range in a buffer of `size` bytes: valid, or (as the call's wrong
 * argument) zero, past the end, or overflowing. */
static kiln_status pick_range(prog *g, size_t size, size_t align, size_t *off, size_t *bytes) {
  uint8_t m = u8(g);
  if (g->bad || m < 200) {
    size_t units = size / align;
    if (!units) { /* the buffer is smaller than the pattern */
      g->bad = 1;
      *off = 0;
      *bytes = align;
      return KILN_ERROR_OUT_OF_RANGE;
    }
    size_t o = u16(g) % units;
    *off = o * align;
    *bytes = (1 + u16(g) % (units - o)) * align;
    return KILN_SUCCESS;
  }
  g->bad = 1;
  switch (m % 4) {
  case 0:
    *off = 0;
    *bytes = 0;
    return KILN_ERROR_INVALID_ARGUMENT;
  case 1:
    *off = size - size % align;
    *bytes = align * (1 + u8(g) % 4);
    return KILN_ERROR_OUT_OF_RANGE;
  case 2:
    *off = SIZE_MAX - align * (u8(g) % 4) - (align - 1);
    *bytes = align;
    return KILN_ERROR_OUT_OF_RANGE;
  default:
    *off = align;
    *bytes = SIZE_MAX - (SIZE_MAX % align);
    return KILN_ERROR_OUT_OF_RANGE;
  }
}

static size_t pick_size(prog *g) {
  uint8_t b = u8(g);
  switch (b >> 6) {
  case 0:
    return 1 + (b & 63);
  case 1:
    return 64 + (size_t)u8(g) * 8;
  case 2:
    return 1 + u16(g) % 8192;
  default:
    return (size_t)4096 << (b & 3);
  }
}

/* ---- the shadow's operations (applied at submission: the hazard rules order the
 * ops on one buffer as the program submitted them, whatever their streams) ---- */
static void sh_write(fbuf *b, size_t off, const uint8_t *src, size_t n) {
  memcpy(b->data + off, src, n);
  memset(b->known + off, 1, n);
}
static void sh_fill(fbuf *b, size_t off, size_t n, const uint8_t *pat, size_t pn) {
  for (size_t i = 0; i < n; i++)
    b->data[off + i] = pat[i % pn];
  memset(b->known + off, 1, n);
}
static void sh_copy(fbuf *d, size_t doff, fbuf *s, size_t soff, size_t n) {
  memmove(d->data + doff, s->data + soff, n);
  memmove(d->known + doff, s->known + soff, n);
}
static void sh_unknown(fbuf *b) {
  memset(b->known, 0, b->bytes);
}

static uint8_t *random_bytes(prog *g, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  if (!p)
    crash();
  uint8_t seed = u8(g), step = (uint8_t)(u8(g) | 1);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seed + step * i + (i >> 8));
  return p;
}
static uint8_t *dup_bytes(const uint8_t *s, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  if (!p)
    crash();
  memcpy(p, s, n);
  return p;
}

/* ---- the table's bookkeeping ---- */
static fbuf *fbuf_new(kiln_buffer h, size_t bytes, int kind) {
  fbuf *b = calloc(1, sizeof *b);
  if (!b)
    crash();
  b->h = h;
  b->bytes = bytes;
  b->kind = kind;
  b->data = calloc(1, bytes);
  b->known = calloc(1, bytes);
  if (!b->data || !b->known)
    crash();
  unstale(h);
  return b;
}
static void fbuf_gone(fctx *x, int i) {
  fbuf *b = x->bufs[i];
  push_stale(x->stale_bufs, &x->nstale_bufs, b->h);
  free(b->data);
  free(b->known);
  free(b);
  x->bufs[i] = x->bufs[--x->nbufs];
}
static ftok *free_tok(fctx *x) {
  for (int i = 0; i < NTOK; i++)
    if (!x->toks[i].t.id)
      return &x->toks[i];
  return NULL;
}
static ffut *free_fut(fctx *x) {
  for (int i = 0; i < NFUT; i++)
    if (!x->futs[i].f.id)
      return &x->futs[i];
  return NULL;
}
static void stale_tok(kiln_pending t) {
  if (nstale_toks == NSTALE)
    memmove(stale_toks, stale_toks + 1, (NSTALE - 1) * sizeof *stale_toks), nstale_toks--;
  stale_toks[nstale_toks++] = t;
}
static void stale_fut(kiln_future f) {
  if (nstale_futs == NSTALE)
    memmove(stale_futs, stale_futs + 1, (NSTALE - 1) * sizeof *stale_futs), nstale_futs--;
  stale_futs[nstale_futs++] = f;
}
/* A managed buffer acquired for write refuses transfers that use it; one acquired for
 * read refuses those that write it. */
static int managed_blocks(const fbuf *b, int write) {
  return b && b->kind == KIND_MANAGED && (b->acq < 0 || (write && b->acq > 0));
}

/* After a status of an _async call: record the token, or defer the host memory. */
static void after_async(fctx *x, kiln_status st, kiln_stream s, ftok *t, kiln_pending *tp, rec *r,
                        const char *what) {
  if (st != KILN_SUCCESS) {
    if (tp != KILN_NO_TOKEN && tp->id)
      die("a failed _async call left a token", st);
    rec_free(r);
    return;
  }
  (void)what;
  if (t) {
    if (!t->t.id)
      die("a successful _async call wrote an empty token", st);
    t->r = *r;
    t->s = s;
    memset(r, 0, sizeof *r);
  } else {
    defer(x, r);
  }
}

/* ---- callbacks ---- */
static atomic_int cb_count;
static void on_done(kiln_status status, void *user) {
  (void)status, (void)user;
  atomic_fetch_add(&cb_count, 1);
}
static kiln_status on_then(kiln_status status, void *user) {
  (void)user;
  atomic_fetch_add(&cb_count, 1);
  return status;
}

/* A callback that uses kiln (allowed: "fn may call kiln, including waits on this
 * stream"): it queries and waits a stream and reads a byte of a buffer of its context,
 * handles taken when it was registered and possibly destroyed since (refused then,
 * since the context, whose destroy runs every callback first, keeps their memory). Any
 * status is fine; a crash or a hang is not. */
typedef struct busy {
  kiln_stream s;
  kiln_buffer b;
} busy;
static void busy_work(busy *w) {
  uint8_t byte;
  if (w->s) {
    kiln_status q = kiln_stream_query(w->s), y = kiln_stream_synchronize(w->s);
    if (trace)
      fprintf(stderr, "fuzz_api:   (callback) stream %p query %s synchronize %s\n", (void *)w->s,
              kiln_status_name(q), kiln_status_name(y));
  }
  if (w->b) {
    if (trace)
      fprintf(stderr, "fuzz_api:   (callback) reading buffer %p\n", (void *)w->b);
    kiln_status r = kiln_buffer_read(w->b, 0, 1, &byte);
    if (trace)
      fprintf(stderr, "fuzz_api:   (callback) read buffer %p: %s\n", (void *)w->b,
              kiln_status_name(r));
  }
  free(w);
}
static void on_done_busy(kiln_status status, void *user) {
  (void)status;
  busy_work(user);
  atomic_fetch_add(&cb_count, 1);
}
static kiln_status on_then_busy(kiln_status status, void *user) {
  busy_work(user);
  atomic_fetch_add(&cb_count, 1);
  return status;
}
static fbuf *live_buf(prog *g, fctx *x);
static kiln_stream live_stream(prog *g, fctx *x);
/* The callback for a registration on a handle of x: plain, or busy with a stream and a
 * buffer of x (never of another context: x's destroy runs x's callbacks first, but
 * not another context's, and handles of a destroyed context must not be used). */
static kiln_callback_fn pick_cb(prog *g, fctx *x, void **user) {
  *user = NULL;
  if (!x || !(u8(g) & 1))
    return on_done;
  busy *w = calloc(1, sizeof *w);
  if (!w)
    crash();
  w->s = live_stream(g, x);
  fbuf *f = live_buf(g, x);
  w->b = f && !f->acq ? f->h : NULL;
  *user = w;
  return on_done_busy;
}
static void cb_refused(kiln_callback_fn fn, void *user) {
  if (fn == on_done_busy)
    free(user);
}

/* The native kernel: buf[i] += add for i < global[0]. */
static void add_kernel(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint8_t *buf = args[0];
  uint8_t add;
  memcpy(&add, args[1], 1);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    if (i < r->global[0])
      buf[i] = (uint8_t)(buf[i] + add);
}

/* The pipeline's compute: out = in, queued on the stream. */
static kiln_status pipe_copy(kiln_stream stream, kiln_buffer in, kiln_buffer out, size_t chunk,
                             size_t in_bytes, size_t out_bytes, void *user) {
  (void)chunk, (void)user;
  return kiln_buffer_copy_async(stream, out, 0, in, 0, in_bytes < out_bytes ? in_bytes : out_bytes,
                                KILN_NO_TOKEN);
}

/* ---- ops ---- */
static void op_ctx_create(prog *g) {
  uint8_t b = u8(g);
  kiln_context_desc d = KILN_CONTEXT_DESC_INIT;
  d.flags = (b & 2) ? KILN_CONTEXT_POOLED : 0;
  kiln_device dev = (b & 1) && mock_dev ? mock_dev : cpu_dev;
  kiln_context c = NULL;
  if (b >= 250) { /* the wrong argument: no out-parameter, or an unknown flag */
    if (b & 4) {
      want(kiln_context_create(dev, &d, NULL), KILN_ERROR_INVALID_ARGUMENT, "context_create(NULL)");
      return;
    }
    d.flags |= 0x80;
    want(kiln_context_create(dev, &d, &c), KILN_ERROR_INVALID_ARGUMENT, "context_create(flags)");
    if (c)
      die("a refused context_create wrote a handle", KILN_SUCCESS);
    return;
  }
  if (nctx == MAXCTX)
    return;
  kiln_status st = kiln_context_create(dev, &d, &c);
  if (!ok(st, "context_create"))
    return;
  fctx *x = &ctxs[nctx++];
  memset(x, 0, sizeof *x);
  x->h = c;
  x->mock = dev == mock_dev;
  x->pooled = (d.flags & KILN_CONTEXT_POOLED) != 0;
  unstale(c);
  kiln_native_kernel_desc kd = KILN_NATIVE_KERNEL_DESC_INIT;
  static const kiln_param params[2] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 1}};
  kd.name = "fz_add";
  kd.fn = add_kernel;
  kd.params = params;
  kd.param_count = 2;
  st = kiln_kernel_create_native(c, &kd, &x->kernel);
  if (!ok(st, "kernel_create_native"))
    x->kernel = NULL;
}

static void ctx_teardown(int i, int check) {
  fctx *x = &ctxs[i];
  /* Unobserved tokens and futures are fine to leave: the destroy covers them. */
  kiln_status st = kiln_context_destroy(x->h);
  if (check)
    ok(st, "context_destroy");
  push_stale((void **)stale_ctx, &nstale_ctx, x->h);
  for (int t = 0; t < NTOK; t++)
    if (x->toks[t].t.id) {
      stale_tok(x->toks[t].t);
      rec_free(&x->toks[t].r);
    }
  for (int f = 0; f < NFUT; f++)
    if (x->futs[f].f.id) {
      stale_fut(x->futs[f].f);
      rec_free(&x->futs[f].r);
    }
  for (int p = 0; p < x->npools; p++)
    push_stale((void **)stale_pools, &nstale_pools, x->pools[p]);
  while (x->nbufs) {
    fbuf *b = x->bufs[--x->nbufs];
    free(b->data);
    free(b->known);
    free(b);
  }
  release_deferred(x);
  free(x->deferred);
  for (int p = 0; p < x->npins; p++)
    (void)0; /* pinned blocks go with the context */
  ctxs[i] = ctxs[--nctx];
  memset(&ctxs[nctx], 0, sizeof ctxs[nctx]);
}

static void op_ctx_destroy(prog *g) {
  uint8_t b = u8(g);
  if (b >= 240 && nstale_ctx) {
    want(kiln_context_destroy(stale_ctx[b % nstale_ctx]), KILN_ERROR_INVALID_HANDLE,
         "context_destroy(destroyed)");
    return;
  }
  if (!nctx)
    return;
  ctx_teardown(b % nctx, 1);
}

static void op_stream_create(prog *g) {
  fctx *x = pick_ctx(g);
  uint8_t b = u8(g);
  if (b >= 240) {
    kiln_stream s = NULL;
    if (b & 1 && nstale_ctx)
      want(kiln_stream_create(stale_ctx[0], NULL, &s), KILN_ERROR_INVALID_HANDLE,
           "stream_create(destroyed context)");
    else
      want(kiln_stream_create(NULL, NULL, &s), KILN_ERROR_INVALID_HANDLE, "stream_create(NULL)");
    return;
  }
  if (!x || x->nstreams == NSTREAM)
    return;
  kiln_stream_desc d = KILN_STREAM_DESC_INIT;
  d.priority = (int)(b % 5) - 2;
  d.label = (b & 8) ? "fz" : NULL;
  kiln_stream s = NULL;
  if (ok(kiln_stream_create(x->h, &d, &s), "stream_create")) {
    unstale(s);
    x->streams[x->nstreams++] = s;
  }
}

/* A destroyed stream waited for its ops and released their tokens (docs/async.md): they
 * are stale now, their host memory observed. */
static void stream_gone(fctx *x, kiln_stream s) {
  for (int i = 0; i < NTOK; i++)
    if (x->toks[i].t.id && x->toks[i].s == s) {
      stale_tok(x->toks[i].t);
      x->toks[i].t.id = 0;
      rec_observed(&x->toks[i].r, KILN_ERROR_INVALID_STATE, "stream destroy");
    }
}

static void op_stream_destroy(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  if (b >= 230 && x->nstale_streams) {
    want(kiln_stream_destroy(x->stale_streams[b % x->nstale_streams]), KILN_ERROR_INVALID_HANDLE,
         "stream_destroy(destroyed)");
    return;
  }
  if (b >= 200 && x->nowned) { /* owned by its pool, set or context */
    want(kiln_stream_destroy(x->owned[b % x->nowned]), KILN_ERROR_INVALID_STATE,
         "stream_destroy(owned)");
    return;
  }
  if (!x->nstreams)
    return;
  int i = b % x->nstreams;
  kiln_stream s = x->streams[i];
  kiln_status st = kiln_stream_destroy(s);
  ok(st, "stream_destroy");
  x->streams[i] = x->streams[--x->nstreams];
  push_stale(x->stale_streams, &x->nstale_streams, s);
  stream_gone(x, s);
}

static void op_buffer_create(prog *g) {
  fctx *x = pick_ctx(g);
  uint8_t b = u8(g);
  size_t bytes = pick_size(g);
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes;
  kiln_buffer h = NULL;
  if (!x)
    return;
  if (b >= 236) {
    kiln_status expect = KILN_ERROR_INVALID_ARGUMENT;
    switch (b % 5) {
    case 0:
      d.bytes = 0;
      break;
    case 1:
      d.bytes = SIZE_MAX;
      expect = KILN_ERROR_LIMIT_EXCEEDED;
      break;
    case 2:
      d.flags = 1u << (b % 31);
      break;
    case 3:
      d.struct_size = sizeof d - 1;
      break;
    default:
      want(kiln_buffer_create(x->h, NULL, &h), expect, "buffer_create(desc NULL)");
      return;
    }
    want(kiln_buffer_create(x->h, &d, &h), expect, "buffer_create(bad desc)");
    if (h)
      die("a refused buffer_create wrote a handle", KILN_SUCCESS);
    return;
  }
  if (x->nbufs == NBUF)
    return;
  int managed = b < 40;
  kiln_status st =
      managed ? kiln_managed_create(x->h, bytes, &h) : kiln_buffer_create(x->h, &d, &h);
  if (ok(st, managed ? "managed_create" : "buffer_create")) {
    /* a pooled context's buffers come from its own pool (pool -1) */
    fbuf *f = fbuf_new(h, bytes, managed ? KIND_MANAGED : x->pooled ? KIND_POOLED : KIND_PLAIN);
    f->pool = -1;
    x->bufs[x->nbufs++] = f;
  }
}

static void op_buffer_destroy(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  if (b >= 230 && x->nstale_bufs) {
    want(kiln_buffer_destroy(x->stale_bufs[b % x->nstale_bufs]), KILN_ERROR_INVALID_HANDLE,
         "buffer_destroy(destroyed)");
    return;
  }
  if (!x->nbufs)
    return;
  int i = b % x->nbufs;
  fbuf *f = x->bufs[i];
  if (f->acq) /* destroying an acquired managed buffer: the program's mistake, not tested */
    return;
  if (trace)
    fprintf(stderr, "fuzz_api:   buffer_destroy %p\n", (void *)f->h);
  ok(kiln_buffer_destroy(f->h), "buffer_destroy");
  fbuf_gone(x, i);
}

/* write / read / copy / fill, blocking or _async */
static void op_transfer(prog *g, int kind, int async) {
  static const char *names[4] = {"write", "read", "copy", "fill"};
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  kiln_status e_stream = KILN_SUCCESS, e_dst, e_src = KILN_SUCCESS, e_range, e_range2 = 0;
  kiln_stream s = NULL;
  if (async) {
    s = pick_stream(g, x, &e_stream);
    if (!s && e_stream == KILN_SUCCESS)
      return;
  }
  fbuf *fd, *fs = NULL;
  kiln_buffer d = pick_buf(g, x, &fd, &e_dst, kind == 2);
  if (!d && e_dst == KILN_SUCCESS)
    return;
  kiln_buffer src = NULL;
  if (kind == 2) {
    src = pick_buf(g, x, &fs, &e_src, 1);
    if (!src && e_src == KILN_SUCCESS)
      return;
  }
  size_t pn = 1;
  uint8_t pat[128];
  if (kind == 3)
    pn = (size_t)1 << (u8(g) % 8);
  size_t size = fd ? fd->bytes : 4096;
  size_t off, bytes, soff = 0;
  e_range = pick_range(g, size, pn, &off, &bytes);
  if (kind == 2) {
    size_t ssize = fs ? fs->bytes : 4096;
    if (e_range == KILN_SUCCESS && bytes <= ssize) {
      soff = u16(g) % (ssize - bytes + 1);
      if (fs == fd && soff < off + bytes && off < soff + bytes) {
        if (g->bad) /* keep to one wrong argument */
          return;
        g->bad = 1;
        e_range2 = KILN_ERROR_INVALID_ARGUMENT; /* overlapping copy within one buffer */
      }
    } else if (e_range == KILN_SUCCESS) {
      if (g->bad)
        return;
      g->bad = 1;
      soff = 0;
      e_range2 = KILN_ERROR_OUT_OF_RANGE;
    }
  }
  int write_dst = kind != 1;
  if (managed_blocks(fd, write_dst) || managed_blocks(fs, 0))
    return; /* refused with INVALID_STATE: op_managed tests that */
  int host_null = 0;
  if (!g->bad && kind != 2 && u8(g) >= 250) {
    g->bad = 1;
    host_null = 1;
  }
  int no_token = async && (u8(g) & 1);
  ftok *t = NULL;
  kiln_pending tk = KILN_PENDING_INIT, *tp = &tk;
  if (async && !no_token) {
    t = free_tok(x);
    if (!t)
      return;
    tp = &t->t;
  } else if (async) {
    tp = KILN_NO_TOKEN;
  }
  /* The expected status, in the API's order of checks. */
  kiln_status expect = KILN_SUCCESS;
  if (async && !s)
    expect = KILN_ERROR_INVALID_HANDLE;
  else if (e_dst != KILN_SUCCESS && e_dst != KILN_ERROR_DEVICE_MISMATCH)
    expect = e_dst;
  else if (kind == 2 && e_src != KILN_SUCCESS && e_src != KILN_ERROR_DEVICE_MISMATCH)
    expect = e_src;
  else if (kind == 2 &&
           (e_dst == KILN_ERROR_DEVICE_MISMATCH || e_src == KILN_ERROR_DEVICE_MISMATCH))
    expect = KILN_ERROR_DEVICE_MISMATCH;
  else if (host_null)
    expect = KILN_ERROR_INVALID_ARGUMENT;
  else if (e_range != KILN_SUCCESS)
    expect = e_range;
  else if (e_range2 != KILN_SUCCESS)
    expect = e_range2;
  else if (e_stream != KILN_SUCCESS)
    expect = e_stream;
  rec r = {0};
  kiln_status st;
  char what[64];
  snprintf(what, sizeof what, "%s%s", names[kind], async ? "_async" : "");
  uint8_t *host = NULL;
  size_t hbytes = bytes < ((size_t)1 << 20) ? bytes : 1;
  if (trace)
    fprintf(stderr, "fuzz_api:   %s stream %p dst %p src %p off %zu soff %zu bytes %zu token %p\n",
            what, (void *)s, (void *)d, (void *)src, off, soff, bytes, (void *)tp);
  /* The effect, in submission order, applied before the call: the host memory of an
   * _async write is kiln's until the op is observed (and poisoned meanwhile). */
  if (kind == 3)
    for (size_t i = 0; i < pn; i++)
      pat[i] = u8(g);
  if (kind == 0)
    host = host_null ? NULL : random_bytes(g, hbytes);
  if (expect == KILN_SUCCESS) {
    if (kind == 0)
      sh_write(fd, off, host, bytes);
    else if (kind == 2)
      sh_copy(fd, off, fs, soff, bytes);
    else if (kind == 3)
      sh_fill(fd, off, bytes, pat, pn);
  }
  switch (kind) {
  case 0:
    st = async ? kiln_buffer_write_async(s, d, off, bytes, host, tp)
               : kiln_buffer_write(d, off, bytes, host);
    break;
  case 1:
    host = host_null ? NULL : malloc(hbytes);
    if (expect == KILN_SUCCESS) {
      r.expect = dup_bytes(fd->data + off, bytes);
      r.expect_known = dup_bytes(fd->known + off, bytes);
    }
    st = async ? kiln_buffer_read_async(s, d, off, bytes, host, tp)
               : kiln_buffer_read(d, off, bytes, host);
    break;
  case 2:
    st = async ? kiln_buffer_copy_async(s, d, off, src, soff, bytes, tp)
               : kiln_buffer_copy(d, off, src, soff, bytes);
    break;
  default:
    st = async ? kiln_buffer_fill_async(s, d, off, bytes, host_null ? NULL : pat, pn, tp)
               : kiln_buffer_fill(d, off, bytes, host_null ? NULL : pat, pn);
    break;
  }
  r.host = host;
  r.bytes = bytes;
  if (expect != KILN_SUCCESS) {
    want(st, expect, what);
  } else if (ok(st, what)) {
    if (kind == 1 && !async)
      check_bytes(host, r.expect, r.expect_known, bytes, what);
  } else if (kind != 1) {
    sh_unknown(fd);
  }
  if (async) {
    after_async(x, st, s, t, tp, &r, what);
  } else {
    rec_free(&r);
  }
}

static ftok *pick_tok(prog *g, fctx *x) {
  int live[NTOK], n = 0;
  for (int i = 0; i < NTOK; i++)
    if (x->toks[i].t.id)
      live[n++] = i;
  return n ? &x->toks[live[u8(g) % n]] : NULL;
}

/* A wrong token: empty, waited/released (stale), KILN_NO_TOKEN, NULL. */
static void bad_token(prog *g) {
  uint8_t b = u8(g);
  kiln_pending empty = KILN_PENDING_INIT;
  kiln_pending stale = nstale_toks ? stale_toks[b % nstale_toks] : empty;
  switch (u8(g) % 9) {
  case 0:
    want(kiln_wait(&empty), KILN_ERROR_INVALID_HANDLE, "wait(empty)");
    break;
  case 1:
    want(kiln_wait(&stale), KILN_ERROR_INVALID_HANDLE, "wait(stale)");
    break;
  case 2:
    want(kiln_wait(KILN_NO_TOKEN), KILN_ERROR_INVALID_ARGUMENT, "wait(KILN_NO_TOKEN)");
    break;
  case 3:
    want(kiln_wait(NULL), KILN_ERROR_INVALID_ARGUMENT, "wait(NULL)");
    break;
  case 4:
    want(kiln_pending_query(&stale), KILN_ERROR_INVALID_HANDLE, "pending_query(stale)");
    break;
  case 5:
    want(kiln_pending_release(&stale), KILN_ERROR_INVALID_HANDLE, "pending_release(stale)");
    break;
  case 6:
    want(kiln_wait_timeout(&stale, 1000), KILN_ERROR_INVALID_HANDLE, "wait_timeout(stale)");
    break;
  case 7: {
    kiln_future f = KILN_FUTURE_INIT;
    want(kiln_future_from_pending(&stale, &f), KILN_ERROR_INVALID_HANDLE,
         "future_from_pending(stale)");
    if (f.id)
      die("future_from_pending(stale) wrote a future", KILN_SUCCESS);
    break;
  }
  default:
    want(kiln_pending_add_callback(&stale, on_done, NULL), KILN_ERROR_INVALID_HANDLE,
         "pending_add_callback(stale)");
    break;
  }
}

static void op_token(prog *g) {
  fctx *x = pick_ctx(g);
  uint8_t b = u8(g);
  if (b >= 224 || !x) {
    bad_token(g);
    return;
  }
  ftok *t = pick_tok(g, x);
  if (!t)
    return;
  kiln_pending old = t->t;
  kiln_status st;
  switch (b % 8) {
  case 0:
  case 1:
    st = kiln_wait(&t->t);
    ok(st, "wait");
    if (t->t.id)
      die("wait left the token", st);
    rec_observed(&t->r, st, "wait(read)");
    stale_tok(old);
    break;
  case 2: {
    st = kiln_wait_timeout(&t->t, (uint64_t)u8(g) * 1000);
    if (st == KILN_TIMEOUT) {
      if (t->t.id != old.id)
        die("wait_timeout's TIMEOUT did not keep the token", st);
      break;
    }
    ok(st, "wait_timeout");
    rec_observed(&t->r, st, "wait_timeout(read)");
    stale_tok(old);
    break;
  }
  case 3:
    st = kiln_pending_query(&t->t);
    if (st != KILN_NOT_READY)
      ok(st, "pending_query");
    break;
  case 4:
    ok(kiln_pending_release(&t->t), "pending_release");
    if (t->t.id)
      die("pending_release left the token", KILN_SUCCESS);
    defer(x, &t->r);
    stale_tok(old);
    break;
  case 5: {
    void *user;
    kiln_callback_fn fn = pick_cb(g, x, &user);
    st = kiln_pending_add_callback(&t->t, fn, user);
    if (st != KILN_SUCCESS)
      cb_refused(fn, user);
    if (ok(st, "pending_add_callback")) {
      cb_expected++;
      defer(x, &t->r); /* observed by the callback; freed at the next context-wide wait */
      stale_tok(old);
    }
    break;
  }
  case 6: { /* wait_all over every live token of x */
    kiln_pending all[NTOK];
    int idx[NTOK], n = 0;
    for (int i = 0; i < NTOK; i++)
      if (x->toks[i].t.id) {
        idx[n] = i;
        all[n++] = x->toks[i].t;
      }
    int bad = u8(g) >= 240 && n < NTOK;
    if (bad)
      all[n].id = 0; /* an empty token in the array: refused up front */
    st = kiln_wait_all(all, (size_t)n + (size_t)bad);
    if (bad) {
      want(st, KILN_ERROR_INVALID_HANDLE, "wait_all(with an empty token)"); /* as kiln_wait's */
      break;
    }
    if (st != KILN_SUCCESS && !is_fault(st))
      die("wait_all", st);
    for (int i = 0; i < n; i++) {
      stale_tok(x->toks[idx[i]].t);
      x->toks[idx[i]].t.id = 0;
      /* the first failure is returned: a read's bytes are checked only when all succeeded */
      rec_observed(&x->toks[idx[i]].r, st, "wait_all(read)");
    }
    break;
  }
  default: {
    ffut *f = free_fut(x);
    if (!f)
      break;
    st = kiln_future_from_pending(&t->t, &f->f);
    if (ok(st, "future_from_pending")) {
      if (t->t.id || !f->f.id)
        die("future_from_pending: token kept or future empty", st);
      f->r = t->r;
      memset(&t->r, 0, sizeof t->r);
    } else if (t->t.id != old.id) {
      die("a failed future_from_pending did not keep the token", st);
    }
    break;
  }
  }
}

static void op_stream_sync(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  kiln_status e;
  kiln_stream s = pick_stream(g, x, &e);
  fctx *owner = x; /* the context the stream belongs to */
  if (e == KILN_ERROR_DEVICE_MISMATCH) {
    e = KILN_SUCCESS; /* a stream of the other context is a stream */
    owner = other_ctx(x);
  }
  if (!s && e == KILN_SUCCESS)
    return;
  uint8_t b = u8(g);
  kiln_status st;
  switch (b % 6) {
  case 0:
  case 1:
    st = kiln_stream_synchronize(s);
    break;
  case 2:
    st = kiln_stream_query(s);
    if (st == KILN_NOT_READY)
      st = KILN_SUCCESS;
    break;
  case 3: {
    uint64_t n;
    st = kiln_stream_pending(s, &n);
    break;
  }
  case 4: {
    kiln_stream_info info = KILN_STREAM_INFO_INIT;
    st = kiln_stream_get_info(s, &info);
    break;
  }
  default: {
    void *user;
    kiln_callback_fn fn = pick_cb(g, owner, &user);
    st = kiln_stream_add_callback(s, fn, user);
    if (trace)
      fprintf(stderr, "fuzz_api:   stream_add_callback %p busy %d\n", (void *)s,
              fn == on_done_busy);
    if (st == KILN_SUCCESS)
      cb_expected++;
    else
      cb_refused(fn, user);
  } break;
  }
  if (e != KILN_SUCCESS)
    want(st, e, "stream call (bad stream)");
  else
    ok(st, "stream call");
}

static void op_event(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  int idx;
  kiln_status e, es, st;
  switch (b % 10) {
  case 0: { /* create */
    if (x->nevents == NEVENT)
      return;
    kiln_event_desc d = KILN_EVENT_DESC_INIT;
    d.flags = (b & 16) ? KILN_EVENT_TIMING : 0;
    kiln_event ev = NULL;
    if (ok(kiln_event_create(x->h, &d, &ev), "event_create")) {
      unstale(ev);
      x->timing[x->nevents] = (b & 16) != 0;
      x->events[x->nevents++] = ev;
    }
    return;
  }
  case 1: { /* destroy */
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (e == KILN_ERROR_DEVICE_MISMATCH)
      return;
    if (!ev && e == KILN_SUCCESS)
      return;
    st = kiln_event_destroy(ev);
    if (e == KILN_ERROR_INVALID_HANDLE && !ev) {
      want(st, KILN_SUCCESS, "event_destroy(NULL)");
      return;
    }
    if (e != KILN_SUCCESS) {
      want(st, e, "event_destroy(bad)");
      return;
    }
    ok(st, "event_destroy");
    push_stale(x->stale_events, &x->nstale_events, ev);
    x->events[idx] = x->events[x->nevents - 1];
    x->timing[idx] = x->timing[x->nevents - 1];
    x->nevents--;
    return;
  }
  case 2: { /* record */
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    kiln_stream s = pick_stream(g, x, &es);
    if (!s && es == KILN_SUCCESS)
      return;
    st = kiln_event_record(ev, s);
    if (e != KILN_SUCCESS && e != KILN_ERROR_DEVICE_MISMATCH)
      want(st, e, "event_record(bad event)");
    else if (es != KILN_SUCCESS)
      want(st, es, "event_record(bad stream)");
    else if (e != KILN_SUCCESS)
      want(st, e, "event_record(foreign event)");
    else
      ok(st, "event_record");
    return;
  }
  case 3:
  case 4: { /* query / synchronize */
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    if (e == KILN_ERROR_DEVICE_MISMATCH)
      e = KILN_SUCCESS;
    st = (b % 10) == 3 ? kiln_event_query(ev) : kiln_event_synchronize(ev);
    if (st == KILN_NOT_READY && (b % 10) == 3)
      st = KILN_SUCCESS;
    if (e != KILN_SUCCESS)
      want(st, e, "event query/sync (bad)");
    else
      ok(st, "event query/sync");
    return;
  }
  case 5: { /* elapsed */
    int i2;
    kiln_status e2;
    kiln_event a = pick_event(g, x, &idx, &e);
    kiln_event z = pick_event(g, x, &i2, &e2);
    if ((!a && e == KILN_SUCCESS) || (!z && e2 == KILN_SUCCESS))
      return;
    uint64_t ns = 0;
    st = kiln_event_elapsed_ns(a, z, &ns);
    if (e != KILN_SUCCESS && e != KILN_ERROR_DEVICE_MISMATCH)
      want(st, e, "event_elapsed(bad start)");
    else if (e2 != KILN_SUCCESS && e2 != KILN_ERROR_DEVICE_MISMATCH)
      want(st, e2, "event_elapsed(bad end)");
    else if (e != KILN_SUCCESS || e2 != KILN_SUCCESS)
      want(st, KILN_ERROR_DEVICE_MISMATCH, "event_elapsed(foreign)");
    else if (!x->timing[idx] || !x->timing[i2])
      want(st, KILN_ERROR_INVALID_STATE, "event_elapsed(untimed)");
    else if (st != KILN_SUCCESS && st != KILN_ERROR_INVALID_STATE && st != KILN_NOT_READY)
      ok(st, "event_elapsed"); /* not complete, never recorded or out of order: INVALID_STATE */
    return;
  }
  case 6: { /* stream waits for event */
    kiln_stream s = pick_stream(g, x, &es);
    if (!s && es == KILN_SUCCESS)
      return;
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    st = kiln_stream_wait_event(s, ev);
    if (es != KILN_SUCCESS && es != KILN_ERROR_DEVICE_MISMATCH)
      want(st, es, "stream_wait_event(bad stream)");
    else if (e != KILN_SUCCESS && e != KILN_ERROR_DEVICE_MISMATCH)
      want(st, e, "stream_wait_event(bad event)");
    else if (es != KILN_SUCCESS || e != KILN_SUCCESS)
      want(st, KILN_ERROR_DEVICE_MISMATCH, "stream_wait_event(foreign)");
    else
      ok(st, "stream_wait_event");
    return;
  }
  case 7: { /* callback */
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    fctx *owner = x; /* the context the event belongs to */
    if (e == KILN_ERROR_DEVICE_MISMATCH) {
      e = KILN_SUCCESS;
      owner = other_ctx(x);
    }
    void *user;
    kiln_callback_fn fn = pick_cb(g, owner, &user);
    st = kiln_event_add_callback(ev, fn, user);
    if (st != KILN_SUCCESS)
      cb_refused(fn, user);
    if (e != KILN_SUCCESS)
      want(st, e, "event_add_callback(bad)");
    else if (ok(st, "event_add_callback"))
      cb_expected++;
    return;
  }
  case 8: { /* future of the event */
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    ffut *f = free_fut(x);
    if (e == KILN_ERROR_DEVICE_MISMATCH || !f)
      return;
    st = kiln_future_from_event(ev, &f->f);
    if (e != KILN_SUCCESS)
      want(st, e, "future_from_event(bad)");
    else
      ok(st, "future_from_event");
    return;
  }
  default: { /* descriptors */
    int fd = -1;
    kiln_event ev = pick_event(g, x, &idx, &e);
    if (!ev && e == KILN_SUCCESS)
      return;
    if (e == KILN_ERROR_DEVICE_MISMATCH)
      e = KILN_SUCCESS;
    st = kiln_event_fd(ev, &fd);
    if (e != KILN_SUCCESS)
      want(st, e, "event_fd(bad)");
    else
      ok(st, "event_fd");
    return;
  }
  }
}

static ffut *pick_fut(prog *g, fctx *x) {
  int live[NFUT], n = 0;
  for (int i = 0; i < NFUT; i++)
    if (x->futs[i].f.id)
      live[n++] = i;
  return n ? &x->futs[live[u8(g) % n]] : NULL;
}

static void op_future(prog *g) {
  fctx *x = pick_ctx(g);
  uint8_t b = u8(g);
  if (!x)
    return;
  if (b >= 230) {
    kiln_future empty = KILN_FUTURE_INIT;
    kiln_future stale = nstale_futs ? stale_futs[b % nstale_futs] : empty;
    kiln_future next = KILN_FUTURE_INIT;
    switch (u8(g) % 5) {
    case 0:
      want(kiln_future_wait(&stale), KILN_ERROR_INVALID_HANDLE, "future_wait(stale)");
      break;
    case 1:
      want(kiln_future_query(&stale), KILN_ERROR_INVALID_HANDLE, "future_query(stale)");
      break;
    case 2:
      want(kiln_future_drop(&stale), KILN_ERROR_INVALID_HANDLE, "future_drop(stale)");
      break;
    case 3:
      want(kiln_future_then(&stale, on_then, NULL, &next), KILN_ERROR_INVALID_HANDLE,
           "future_then(stale)");
      break;
    default:
      want(kiln_future_when_all(&stale, 1, &next), KILN_ERROR_INVALID_HANDLE,
           "future_when_all(stale)");
      break;
    }
    if (next.id)
      die("a refused future call wrote a future", KILN_SUCCESS);
    return;
  }
  ffut *f = pick_fut(g, x);
  if (!f)
    return;
  kiln_future old = f->f;
  kiln_status st;
  switch (b % 7) {
  case 0:
  case 1:
    st = kiln_future_wait(&f->f);
    ok(st, "future_wait");
    if (f->f.id)
      die("future_wait left the future", st);
    rec_observed(&f->r, st, "future_wait(read)");
    stale_fut(old);
    break;
  case 2:
    st = kiln_future_wait_timeout(&f->f, (uint64_t)u8(g) * 1000);
    if (st == KILN_TIMEOUT)
      break;
    ok(st, "future_wait_timeout");
    rec_observed(&f->r, st, "future_wait_timeout(read)");
    stale_fut(old);
    break;
  case 3:
    st = kiln_future_query(&f->f);
    if (st != KILN_NOT_READY)
      ok(st, "future_query");
    break;
  case 4:
    ok(kiln_future_drop(&f->f), "future_drop");
    defer(x, &f->r);
    stale_fut(old);
    break;
  case 5: { /* then, in place or into another slot */
    ffut *n = (u8(g) & 1) ? f : free_fut(x);
    if (!n)
      break;
    void *user;
    kiln_callback_fn cb = pick_cb(g, x, &user);
    kiln_future_fn fn = cb == on_done_busy ? on_then_busy : on_then;
    st = kiln_future_then(&f->f, fn, user, &n->f);
    if (st != KILN_SUCCESS)
      cb_refused(cb, user);
    if (ok(st, "future_then")) {
      cb_expected++;
      defer(x, &f->r);
      stale_fut(old);
    }
    break;
  }
  default: { /* when_all / when_any of every live future of x, maybe with a duplicate */
    kiln_future arr[NFUT + 1];
    int idx[NFUT], n = 0;
    for (int i = 0; i < NFUT; i++)
      if (x->futs[i].f.id) {
        idx[n] = i;
        arr[n++] = x->futs[i].f;
      }
    int dup = u8(g) >= 230;
    if (dup)
      arr[n] = arr[0];
    int any = b & 8;
    kiln_future out = KILN_FUTURE_INIT;
    size_t cnt = (size_t)n + (size_t)dup;
    st = any ? kiln_future_when_any(arr, cnt, &out) : kiln_future_when_all(arr, cnt, &out);
    if (dup) {
      /* as kiln_wait_all's "tokens[1] duplicates tokens[0]" */
      want(st, KILN_ERROR_INVALID_HANDLE, "when_all/any(duplicate)");
      if (out.id)
        die("a refused when_all/any wrote a future", st);
      for (int i = 0; i < n; i++)
        if (arr[i].id != x->futs[idx[i]].f.id)
          die("a refused when_all/any consumed its inputs", st);
      break;
    }
    if (!ok(st, "when_all/any"))
      break;
    for (int i = 0; i < n; i++) {
      stale_fut(x->futs[idx[i]].f);
      x->futs[idx[i]].f.id = 0;
      defer(x, &x->futs[idx[i]].r);
    }
    x->futs[idx[0]].f = out;
    break;
  }
  }
}

static void op_pool(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  kiln_status st, e;
  switch (b % 8) {
  case 0: { /* create */
    if (x->npools == NPOOL)
      return;
    kiln_pool_desc d = KILN_POOL_DESC_INIT;
    if (b & 8) {
      d.max_class_bytes = 4096;
      d.slab_bytes = 16384;
      d.fit_slab_bytes = 65536;
    }
    d.release_threshold = (b & 16) ? 8192 : 0;
    kiln_pool p = NULL;
    if (b >= 248) {
      d.min_class_bytes = 300; /* not a power of two */
      want(kiln_pool_create(x->h, &d, &p), KILN_ERROR_INVALID_ARGUMENT, "pool_create(class 300)");
      return;
    }
    if (ok(kiln_pool_create(x->h, &d, &p), "pool_create")) {
      unstale(p);
      x->pool_max_class[x->npools] = d.max_class_bytes ? d.max_class_bytes : 256 * 1024;
      x->pools[x->npools++] = p;
    }
    return;
  }
  case 1: { /* destroy: refused while it has live buffers */
    if (b >= 240 && nstale_pools) {
      want(kiln_pool_destroy(stale_pools[b % nstale_pools]), KILN_ERROR_INVALID_HANDLE,
           "pool_destroy(destroyed)");
      return;
    }
    if (!x->npools)
      return;
    int i = u8(g) % x->npools, live = 0;
    for (int k = 0; k < x->nbufs; k++)
      live += x->bufs[k]->kind == KIND_POOLED && x->bufs[k]->pool == i;
    st = kiln_pool_destroy(x->pools[i]);
    if (live) {
      want(st, KILN_ERROR_INVALID_STATE, "pool_destroy(live buffers)");
      return;
    }
    ok(st, "pool_destroy");
    push_stale((void **)stale_pools, &nstale_pools, x->pools[i]);
    x->pool_max_class[i] = x->pool_max_class[x->npools - 1];
    x->pools[i] = x->pools[--x->npools];
    for (int k = 0; k < x->nbufs; k++) /* the last pool moved to slot i */
      if (x->bufs[k]->kind == KIND_POOLED && x->bufs[k]->pool == x->npools)
        x->bufs[k]->pool = i;
    return;
  }
  case 2:
  case 3: { /* alloc */
    if (!x->npools || x->nbufs == NBUF)
      return;
    int i = u8(g) % x->npools;
    kiln_stream s = NULL;
    e = KILN_SUCCESS;
    if (u8(g) & 1)
      s = pick_stream(g, x, &e);
    size_t bytes = pick_size(g);
    kiln_status eb = KILN_SUCCESS;
    if (!g->bad && u8(g) >= 245) {
      g->bad = 1;
      bytes = (b & 16) ? 0 : SIZE_MAX;
      eb = bytes ? KILN_ERROR_LIMIT_EXCEEDED : KILN_ERROR_INVALID_ARGUMENT;
    }
    kiln_buffer h = NULL;
    st = kiln_pool_alloc(x->pools[i], s, bytes, &h);
    if (e == KILN_ERROR_INVALID_HANDLE && !s)
      e = KILN_SUCCESS; /* a NULL stream is allowed */
    if (eb != KILN_SUCCESS)
      want(st, eb, "pool_alloc(bad size)");
    else if (e != KILN_SUCCESS)
      want(st, e, "pool_alloc(bad stream)");
    else if (ok(st, "pool_alloc")) {
      fbuf *f = fbuf_new(h, bytes, KIND_POOLED);
      f->pool = i;
      x->bufs[x->nbufs++] = f;
    }
    return;
  }
  case 4: { /* free, ordered on a stream */
    fbuf *f;
    kiln_buffer h = pick_buf(g, x, &f, &e, 0);
    if (!h && e == KILN_SUCCESS)
      return;
    if (f && (f->kind != KIND_POOLED || f->acq))
      return;
    kiln_status es;
    kiln_stream s = pick_stream(g, x, &es);
    if (!s && es == KILN_SUCCESS)
      return;
    st = kiln_pool_free(h, s);
    if (e != KILN_SUCCESS)
      want(st, e, "pool_free(bad buffer)");
    else if (es != KILN_SUCCESS)
      want(st, es, "pool_free(bad stream)");
    else {
      ok(st, "pool_free");
      if (st == KILN_SUCCESS)
        for (int k = 0; k < x->nbufs; k++)
          if (x->bufs[k] == f) {
            fbuf_gone(x, k);
            break;
          }
    }
    return;
  }
  case 5: { /* a plain buffer given to pool_free */
    for (int k = 0; k < x->nbufs; k++)
      if (x->bufs[k]->kind != KIND_POOLED && !x->bufs[k]->acq && x->nstreams) {
        want(kiln_pool_free(x->bufs[k]->h, x->streams[0]), KILN_ERROR_INVALID_ARGUMENT,
             "pool_free(not pooled)");
        return;
      }
    return;
  }
  case 6: { /* trim / compact / warm / stats */
    if (!x->npools)
      return;
    int pi = u8(g) % x->npools;
    kiln_pool p = x->pools[pi];
    kiln_pool_stats ps = KILN_POOL_STATS_INIT;
    char json[4096];
    switch (u8(g) % 4) {
    case 0:
      ok(kiln_pool_trim(p, (size_t)u8(g) * 1024), "pool_trim");
      break;
    case 1:
      ok(kiln_pool_compact(p), "pool_compact");
      break;
    case 2: { /* only size classes are warmed: larger is INVALID_ARGUMENT */
      size_t n = pick_size(g);
      st = kiln_pool_warm(p, n, u8(g) % 4);
      if (n > x->pool_max_class[pi])
        want(st, KILN_ERROR_INVALID_ARGUMENT, "pool_warm(above the largest class)");
      else
        ok(st, "pool_warm");
      break;
    }
    default:
      if (ok(kiln_pool_get_stats(p, &ps), "pool_get_stats"))
        ok(kiln_pool_stats_json(&ps, json, sizeof json, NULL), "pool_stats_json");
      break;
    }
    return;
  }
  default: { /* the context's own pool */
    kiln_pool p = NULL;
    st = kiln_context_get_pool(x->h, &p);
    if (x->pooled)
      ok(st, "context_get_pool");
    else if (st == KILN_SUCCESS)
      die("context_get_pool of an unpooled context succeeded", st);
    return;
  }
  }
}

static void op_host(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  kiln_status st;
  switch (b % 6) {
  case 0: { /* alloc, and write/read through it */
    if (x->npins == NPIN)
      return;
    size_t bytes = pick_size(g);
    if (b >= 240) {
      void *p = NULL;
      want(kiln_host_alloc(x->h, 0, &p), KILN_ERROR_INVALID_ARGUMENT, "host_alloc(0)");
      return;
    }
    void *p = NULL;
    if (ok(kiln_host_alloc(x->h, bytes, &p), "host_alloc")) {
      memset(p, 0x5a, bytes);
      x->pins[x->npins] = p;
      x->pin_bytes[x->npins++] = bytes;
    }
    return;
  }
  case 1:
  case 2: { /* free, blocking or on a stream */
    if (!x->npins)
      return;
    int i = u8(g) % x->npins;
    if (b % 6 == 1) {
      st = kiln_host_free(x->h, x->pins[i]);
    } else {
      kiln_status e;
      kiln_stream s = pick_stream(g, x, &e);
      if (!s && e == KILN_SUCCESS)
        return;
      st = kiln_host_free_on(x->h, x->pins[i], s);
      if (e != KILN_SUCCESS) {
        want(st, e, "host_free_on(bad stream)");
        return;
      }
    }
    if (!ok(st, "host_free"))
      return;
    void *gone = x->pins[i];
    x->pins[i] = x->pins[x->npins - 1];
    x->pin_bytes[i] = x->pin_bytes[--x->npins];
    /* freed twice, or a pointer inside a block: refused, nothing freed */
    int reissued = 0;
    for (int k = 0; k < x->npins; k++)
      reissued |= x->pins[k] == gone;
    if (!reissued && (u8(g) & 1))
      want(kiln_host_free(x->h, gone), KILN_ERROR_INVALID_ARGUMENT, "host_free(twice)");
    return;
  }
  case 3: { /* a pointer that is not a block of this context */
    int stack;
    void *p = (b & 64) && x->npins ? (char *)x->pins[0] + 8 : (void *)&stack;
    want(kiln_host_free(x->h, p), KILN_ERROR_INVALID_ARGUMENT, "host_free(foreign pointer)");
    return;
  }
  case 4: { /* is_pinned */
    int pinned = -1;
    if (!x->npins)
      return;
    int i = u8(g) % x->npins;
    size_t n = 1 + u16(g) % (x->pin_bytes[i] + 8);
    ok(kiln_host_is_pinned(x->h, x->pins[i], n, &pinned), "host_is_pinned");
    if (n <= x->pin_bytes[i] && pinned != 1)
      die("host_is_pinned answered wrongly", KILN_SUCCESS);
    return;
  }
  default: { /* a pinned block as the source or destination of a blocking transfer */
    if (!x->npins || !x->nbufs)
      return;
    int i = u8(g) % x->npins;
    fbuf *f = live_buf(g, x);
    size_t n = x->pin_bytes[i] < f->bytes ? x->pin_bytes[i] : f->bytes;
    if (managed_blocks(f, 1))
      return;
    if (b & 8) {
      for (size_t k = 0; k < n; k++)
        ((uint8_t *)x->pins[i])[k] = (uint8_t)(k * 7 + b);
      if (ok(kiln_buffer_write(f->h, 0, n, x->pins[i]), "write(pinned)"))
        sh_write(f, 0, x->pins[i], n);
      else
        sh_unknown(f);
    } else if (!managed_blocks(f, 0)) {
      if (ok(kiln_buffer_read(f->h, 0, n, x->pins[i]), "read(pinned)"))
        check_bytes(x->pins[i], f->data, f->known, n, "read(pinned)");
    }
    return;
  }
  }
}

static void op_managed(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x || !x->nbufs)
    return;
  uint8_t b = u8(g);
  fbuf *f = live_buf(g, x);
  void *p = NULL;
  kiln_status st;
  if (f->kind != KIND_MANAGED) {
    want(kiln_managed_acquire(f->h, KILN_PARAM_BUFFER_READ, &p), KILN_ERROR_INVALID_ARGUMENT,
         "managed_acquire(not managed)");
    return;
  }
  switch (b % 5) {
  case 0:
  case 1: { /* acquire for read: the host copy holds the shadow's bytes */
    st = kiln_managed_acquire(f->h, KILN_PARAM_BUFFER_READ, &p);
    if (f->acq < 0) {
      want(st, KILN_ERROR_INVALID_STATE, "managed_acquire(read, held for write)");
      return;
    }
    if (!ok(st, "managed_acquire(read)")) {
      sh_unknown(f);
      return;
    }
    f->acq++;
    check_bytes(p, f->data, f->known, f->bytes, "managed_acquire(read)");
    return;
  }
  case 2: { /* acquire for write: the program writes the host copy */
    st = kiln_managed_acquire(f->h,
                              (b & 8) ? KILN_PARAM_BUFFER_WRITE : KILN_PARAM_BUFFER_READ_WRITE, &p);
    if (f->acq) {
      want(st, KILN_ERROR_INVALID_STATE, "managed_acquire(write, held)");
      return;
    }
    if (!ok(st, "managed_acquire(write)")) {
      sh_unknown(f);
      return;
    }
    f->acq = -1;
    if (!(b & 8))
      check_bytes(p, f->data, f->known, f->bytes, "managed_acquire(read-write)");
    uint8_t *src = random_bytes(g, f->bytes);
    memcpy(p, src, f->bytes);
    sh_write(f, 0, src, f->bytes);
    free(src);
    return;
  }
  case 3: /* release */
    st = kiln_managed_release(f->h);
    if (!f->acq) {
      want(st, KILN_ERROR_INVALID_STATE, "managed_release(not acquired)");
      return;
    }
    ok(st, "managed_release");
    f->acq = f->acq < 0 ? 0 : f->acq - 1;
    return;
  default: { /* a transfer while acquired: refused */
    uint8_t one = 1;
    if (f->acq < 0)
      want(kiln_buffer_read(f->h, 0, 1, &one), KILN_ERROR_INVALID_STATE,
           "read(acquired for write)");
    else if (f->acq > 0)
      want(kiln_buffer_write(f->h, 0, 1, &one), KILN_ERROR_INVALID_STATE,
           "write(acquired for read)");
    else if (ok(kiln_buffer_write(f->h, 0, 1, &one), "write(managed)"))
      sh_write(f, 0, &one, 1);
    else
      sh_unknown(f);
    return;
  }
  }
}

static void op_launch(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x || !x->kernel)
    return;
  kiln_status es, eb;
  kiln_stream s = pick_stream(g, x, &es);
  if (!s && es == KILN_SUCCESS)
    return;
  fbuf *f;
  kiln_buffer h = pick_buf(g, x, &f, &eb, 1);
  if (!h && eb == KILN_SUCCESS)
    return;
  uint8_t add = u8(g), mode = u8(g);
  size_t global = f ? 1 + u16(g) % f->bytes : 16;
  kiln_range r = kiln_range_1d(global);
  kiln_arg args[3] = {kiln_arg_buffer(h), kiln_arg_scalar(&add, 1), kiln_arg_local(8)};
  size_t count = 2;
  kiln_status ea = KILN_SUCCESS;
  if (!g->bad && mode >= 236) {
    g->bad = 1;
    switch (mode % 4) {
    case 0:
      count = 3; /* one argument too many */
      ea = KILN_ERROR_KERNEL_ARGS;
      break;
    case 1:
      args[1] = kiln_arg_scalar(&add, 4); /* a scalar of the wrong width */
      ea = KILN_ERROR_KERNEL_ARGS;
      break;
    case 2:
      r.global[0] = 0;
      ea = KILN_ERROR_INVALID_ARGUMENT;
      break;
    default:
      r.dims = 4;
      ea = KILN_ERROR_INVALID_ARGUMENT;
      break;
    }
  }
  if (managed_blocks(f, 1))
    return;
  int async = mode & 1;
  ftok *t = NULL;
  kiln_pending *tp = KILN_NO_TOKEN;
  if (async && (mode & 2)) {
    t = free_tok(x);
    if (!t)
      return;
    tp = &t->t;
  }
  kiln_status st = async ? kiln_launch_async(s, x->kernel, &r, args, count, tp)
                         : kiln_launch(s, x->kernel, &r, args, count);
  kiln_status expect = KILN_SUCCESS;
  if (es != KILN_SUCCESS && es != KILN_ERROR_DEVICE_MISMATCH)
    expect = es;
  else if (es == KILN_ERROR_DEVICE_MISMATCH)
    expect = KILN_ERROR_DEVICE_MISMATCH;
  else if (eb != KILN_SUCCESS && eb != KILN_ERROR_DEVICE_MISMATCH)
    expect = eb == KILN_ERROR_INVALID_HANDLE && !h ? KILN_ERROR_INVALID_HANDLE : eb;
  else if (ea != KILN_SUCCESS)
    expect = ea;
  else if (eb == KILN_ERROR_DEVICE_MISMATCH)
    expect = KILN_ERROR_DEVICE_MISMATCH;
  if (expect != KILN_SUCCESS) {
    /* which check comes first among several kinds is the API's business: one is wrong */
    want(st, expect, "launch(bad)");
    return;
  }
  if (ok(st, "launch") || async)
    for (size_t i = 0; i < global; i++)
      f->data[i] = (uint8_t)(f->data[i] + add);
  else
    sh_unknown(f);
  rec r0 = {0};
  if (async)
    after_async(x, st, s, t, tp, &r0, "launch_async");
}

static void op_ctx_misc(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  kiln_status st;
  if (b >= 248 && mock_dev) { /* lose the mock device a few calls from now, or reset it */
    lost = 1;
    if (b & 1) {
      mock_cfg.lose_device_call = 1 + u8(g) % 8;
      mock_cfg.reset_probe_fails = 0;
      if (kiln_mock_configure(&mock_cfg) != KILN_SUCCESS)
        crash();
      seen_failures = 0; /* the counter starts again */
      forget_all();
    } else {
      st = kiln_device_reset(mock_dev);
      if (st != KILN_SUCCESS && !is_fault(st))
        die("device_reset", st);
    }
    return;
  }
  switch (b % 6) {
  case 0:
  case 1:
    st = kiln_context_synchronize(x->h);
    ok(st, "context_synchronize");
    release_deferred(x);
    return;
  case 2: {
    kiln_context_stats cs = KILN_CONTEXT_STATS_INIT;
    ok(kiln_context_get_stats(x->h, &cs), "context_get_stats");
    return;
  }
  case 3: { /* the transfer stream: owned by the context */
    kiln_stream s = NULL;
    if (ok(kiln_context_transfer_stream(x->h, &s), "context_transfer_stream")) {
      for (int i = 0; i < x->nowned; i++)
        if (x->owned[i] == s)
          return;
      if (x->nowned < NOWNED)
        x->owned[x->nowned++] = s;
    }
    return;
  }
  case 4: { /* budget */
    kiln_budget_buffer bb = {u16(g), u16(g), u8(g) % 4};
    kiln_budget_plan plan = KILN_BUDGET_PLAN_INIT;
    kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
    plan.elements = (b & 64) ? UINT64_MAX / 3 : u32(g);
    plan.buffers = &bb;
    plan.buffer_count = 1;
    st = kiln_budget_check(x->h, &plan, &v);
    if (st != KILN_SUCCESS && st != KILN_ERROR_OUT_OF_DEVICE_MEMORY &&
        st != KILN_ERROR_INVALID_ARGUMENT && !is_fault(st))
      die("budget_check", st);
    return;
  }
  default: { /* buffer size and native pointer */
    if (!x->nbufs)
      return;
    fbuf *f = live_buf(g, x);
    size_t n = 0;
    if (ok(kiln_buffer_get_size(f->h, &n), "buffer_get_size") && n != f->bytes)
      die("buffer_get_size is wrong", KILN_SUCCESS);
    void *p = NULL;
    want(kiln_buffer_get_native(f->h, KILN_NATIVE_CL_MEM, &p), KILN_ERROR_UNSUPPORTED,
         "buffer_get_native(cl_mem)");
    return;
  }
  }
}

static void drop_owned(fctx *x, kiln_stream s) {
  for (int i = 0; i < x->nowned; i++)
    if (x->owned[i] == s) {
      x->owned[i] = x->owned[--x->nowned];
      push_stale(x->stale_streams, &x->nstale_streams, s);
      stream_gone(x, s);
      return;
    }
}

static void op_stream_group(prog *g) {
  fctx *x = pick_ctx(g);
  if (!x)
    return;
  uint8_t b = u8(g);
  kiln_status st;
  kiln_stream s = NULL;
  switch (b % 8) {
  case 0: { /* pool create */
    if (x->spool)
      return;
    size_t n = 1 + u8(g) % 3;
    if (x->nowned + (int)n > NOWNED)
      return;
    kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
    d.policy = (b & 8) ? KILN_STREAM_LEAST_PENDING : KILN_STREAM_ROUND_ROBIN;
    if (b >= 248) {
      want(kiln_stream_pool_create(x->h, (b & 1) ? 0 : KILN_STREAM_POOL_MAX + 1, &d, &x->spool),
           KILN_ERROR_INVALID_ARGUMENT, "stream_pool_create(count)");
      x->spool = NULL;
      return;
    }
    if (!ok(kiln_stream_pool_create(x->h, n, &d, &x->spool), "stream_pool_create")) {
      x->spool = NULL;
      return;
    }
    unstale(x->spool);
    for (size_t i = 0; i < n; i++)
      if (ok(kiln_stream_pool_get(x->spool, i, &s), "stream_pool_get")) {
        unstale(s);
        x->owned[x->nowned++] = s;
        x->spool_streams[x->nspool_streams++] = s;
      }
    return;
  }
  case 1: { /* pool destroy: its streams die with it */
    if (!x->spool)
      return;
    ok(kiln_stream_pool_destroy(x->spool), "stream_pool_destroy");
    for (size_t i = 0; i < x->nspool_streams; i++)
      drop_owned(x, x->spool_streams[i]);
    x->nspool_streams = 0;
    x->spool = NULL;
    x->nheld = 0;
    return;
  }
  case 2: /* acquire / release / pick */
    if (!x->spool)
      return;
    if (x->nheld < NHELD && (u8(g) & 1)) {
      if (ok(kiln_stream_pool_acquire(x->spool, &s), "stream_pool_acquire"))
        x->held[x->nheld++] = s;
    } else if (x->nheld) {
      s = x->held[--x->nheld];
      ok(kiln_stream_pool_release(x->spool, s), "stream_pool_release");
    } else {
      ok(kiln_stream_pool_pick(x->spool, &s), "stream_pool_pick");
      if (x->nstreams) /* a stream not of the pool */
        want(kiln_stream_pool_release(x->spool, x->streams[0]), KILN_ERROR_INVALID_ARGUMENT,
             "stream_pool_release(not its stream)");
    }
    return;
  case 3: { /* sync / stats / json / out-of-range index */
    if (!x->spool)
      return;
    size_t n = 0;
    char buf[64];
    kiln_stream_stats ss = KILN_STREAM_STATS_INIT;
    ok(kiln_stream_pool_size(x->spool, &n), "stream_pool_size");
    switch (u8(g) % 4) {
    case 0:
      ok(kiln_stream_pool_synchronize_all(x->spool), "stream_pool_synchronize_all");
      break;
    case 1:
      ok(kiln_stream_pool_get_stats(x->spool, u8(g) % n, &ss), "stream_pool_get_stats");
      break;
    case 2: {
      size_t need = 0;
      st = kiln_stream_pool_stats_json(x->spool, buf, sizeof buf, &need);
      if (st != KILN_SUCCESS)
        want(st, KILN_ERROR_INVALID_ARGUMENT, "stream_pool_stats_json(short)");
      break;
    }
    default:
      want(kiln_stream_pool_get(x->spool, n + u8(g), &s), KILN_ERROR_INVALID_ARGUMENT,
           "stream_pool_get(index)");
      break;
    }
    return;
  }
  case 4: { /* set create */
    if (x->sset)
      return;
    size_t n = 1 + u8(g) % 3;
    if (x->nowned + (int)n > NOWNED)
      return;
    if (!ok(kiln_stream_set_create(x->h, n, (b & 8) ? "fzset" : NULL, &x->sset),
            "stream_set_create")) {
      x->sset = NULL;
      return;
    }
    unstale(x->sset);
    for (size_t i = 0; i < n; i++) {
      s = kiln_stream_set_get(x->sset, i);
      if (!s) { /* refused only for a lost device */
        if (!lost)
          die("stream_set_get", KILN_ERROR_INTERNAL);
        continue;
      }
      unstale(s);
      x->owned[x->nowned++] = s;
      x->sset_streams[x->nsset_streams++] = s;
    }
    return;
  }
  case 5: { /* set destroy */
    if (!x->sset)
      return;
    ok(kiln_stream_set_destroy(x->sset), "stream_set_destroy");
    for (size_t i = 0; i < x->nsset_streams; i++)
      drop_owned(x, x->sset_streams[i]);
    x->nsset_streams = 0;
    x->sset = NULL;
    return;
  }
  case 6: /* set sync */
    if (x->sset)
      ok(kiln_stream_set_synchronize_all(x->sset), "stream_set_synchronize_all");
    return;
  default: { /* pipeline: dst = src through chunks */
    size_t n = 1 + u16(g) % 6000, chunk = 1 + u16(g) % 2048;
    if (chunk < n / 64) /* at most 64 chunks: thousands of them are slow, not wrong */
      chunk = n / 64 + (u8(g) & 1);
    uint8_t *src = random_bytes(g, n), *dst = calloc(1, n);
    if (!dst)
      crash();
    kiln_pipeline_desc d = KILN_PIPELINE_DESC_INIT;
    d.src = src;
    d.src_bytes = n;
    d.dst = dst;
    d.dst_bytes = n;
    d.chunk_bytes = chunk;
    d.compute = pipe_copy;
    d.depth = u8(g) % 4;
    if ((b & 8) && x->sset)
      d.streams = x->sset;
    /* The run makes buffers of its own, which may take the slots of destroyed ones: a
     * stale handle may then be one of them (detection is best effort once a slot is
     * reused, architecture.md), so the stale list starts again. */
    x->nstale_bufs = 0;
    if (b >= 248) {
      d.chunk_bytes = 0;
      want(kiln_pipeline_run(x->h, &d), KILN_ERROR_INVALID_ARGUMENT, "pipeline_run(chunk 0)");
    } else if (ok(kiln_pipeline_run(x->h, &d), "pipeline_run") && !failures_changed() &&
               memcmp(src, dst, n) != 0) {
      fprintf(stderr, "fuzz_api: pipeline_run: dst differs from src (%zu bytes, chunk %zu)\n", n,
              chunk);
      crash();
    }
    free(src);
    free(dst);
    return;
  }
  }
}

/* Tracing, registered host memory, descriptors, native handles. */
static int trace_on, trace_depth;
static void op_extra(prog *g) {
  fctx *x = pick_ctx(g);
  uint8_t b = u8(g);
  kiln_status st, e;
  switch (b % 8) {
  case 0: { /* start (ending any trace in progress) or stop, in memory */
    if (b & 8) {
      kiln_trace_desc d = KILN_TRACE_DESC_INIT;
      d.ring_events = (b & 16) ? 1 + u8(g) : 0;
      if (ok(kiln_trace_start(&d), "trace_start"))
        trace_on = 1;
    } else {
      ok(kiln_trace_stop(), "trace_stop");
      trace_on = 0;
    }
    return;
  }
  case 1: /* ranges: end without one open is INVALID_STATE */
    if ((b & 8) && trace_depth < 8) {
      if (ok(kiln_trace_range_begin((b & 16) ? "fz-range-with-a-name-longer-than-47-bytes-to-cut"
                                             : "fz",
                                    (kiln_trace_category)(u8(g) % KILN_TRACE_CATEGORY_COUNT)),
             "trace_range_begin"))
        trace_depth++;
    } else {
      st = kiln_trace_range_end();
      if (trace_depth) {
        ok(st, "trace_range_end");
        trace_depth--;
      } else {
        want(st, KILN_ERROR_INVALID_STATE, "trace_range_end(none open)");
      }
    }
    return;
  case 2:
    ok(kiln_trace_mark("fz-mark", (kiln_trace_category)(u8(g) % KILN_TRACE_CATEGORY_COUNT)),
       "trace_mark");
    return;
  case 3: { /* name a stream's track */
    if (!x)
      return;
    kiln_stream s = pick_stream(g, x, &e);
    if (!s && e == KILN_SUCCESS)
      return;
    if (e == KILN_ERROR_DEVICE_MISMATCH)
      e = KILN_SUCCESS;
    st = kiln_trace_name_stream(s, (b & 8) ? "upload"
                                           : "a-name-longer-than-47-bytes-which-is-cut-there");
    if (e != KILN_SUCCESS)
      want(st, e, "trace_name_stream(bad)");
    else
      ok(st, "trace_name_stream");
    return;
  }
  case 4: { /* the stream's descriptor */
    if (!x)
      return;
    kiln_stream s = pick_stream(g, x, &e);
    if (!s && e == KILN_SUCCESS)
      return;
    if (e == KILN_ERROR_DEVICE_MISMATCH)
      e = KILN_SUCCESS;
    int fd = -1;
    st = kiln_stream_fd(s, &fd);
    if (e != KILN_SUCCESS)
      want(st, e, "stream_fd(bad)");
    else if (ok(st, "stream_fd") && fd < 0)
      die("stream_fd gave no descriptor", st);
    return;
  }
  case 5: { /* register the program's memory, refuse an overlap, unregister */
    if (!x)
      return;
    size_t n = 64 + (size_t)u8(g) * 64;
    uint8_t *mem = calloc(1, n);
    if (!mem)
      crash();
    st = kiln_host_register(x->h, mem, n);
    if (ok(st, "host_register")) {
      int pinned = 0;
      if (ok(kiln_host_is_pinned(x->h, mem + 8, n - 8, &pinned), "host_is_pinned(registered)") &&
          !pinned)
        die("a registered range is not pinned", st);
      want(kiln_host_register(x->h, mem + n / 2, n), KILN_ERROR_INVALID_ARGUMENT,
           "host_register(overlap)");
      want(kiln_host_free(x->h, mem), KILN_ERROR_INVALID_ARGUMENT, "host_free(registered)");
      ok(kiln_host_unregister(x->h, mem), "host_unregister");
      want(kiln_host_unregister(x->h, mem), KILN_ERROR_INVALID_ARGUMENT, "host_unregister(twice)");
    }
    free(mem);
    if (x->npins)
      want(kiln_host_unregister(x->h, x->pins[0]), KILN_ERROR_INVALID_ARGUMENT,
           "host_unregister(a kiln_host_alloc block)");
    return;
  }
  case 6: { /* native handles: a CPU-backend buffer's storage; OpenCL kinds unsupported */
    if (!x || !x->nbufs)
      return;
    fbuf *f = live_buf(g, x);
    void *p = NULL;
    want(kiln_stream_get_native(x->nstreams ? x->streams[0] : NULL, KILN_NATIVE_CL_COMMAND_QUEUE,
                                &p),
         x->nstreams ? KILN_ERROR_UNSUPPORTED : KILN_ERROR_INVALID_HANDLE,
         "stream_get_native(cl queue)");
    want(kiln_context_get_native(x->h, KILN_NATIVE_CU_CONTEXT, &p), KILN_ERROR_UNSUPPORTED,
         "context_get_native(CUcontext)");
    (void)f;
    return;
  }
  default: { /* the device's view of the contexts */
    if (!x)
      return;
    kiln_device d = NULL;
    uint64_t free_bytes = 0, total = 0;
    if (ok(kiln_context_get_device(x->h, &d), "context_get_device"))
      ok(kiln_device_mem_info(d, &free_bytes, &total), "device_mem_info");
    size_t n = 0;
    if (d)
      ok(kiln_stream_pool_default_count(d, &n), "stream_pool_default_count");
    return;
  }
  }
}

/* ---- the program ---- */
static void quiet(kiln_log_level level, const char *message, void *user) {
  (void)level, (void)message, (void)user;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  kiln_set_log_callback(quiet, KILN_LOG_ERROR, NULL); /* forgotten tokens are expected */
  setenv("KILN_MOCK", "1", 1);
  /* cpu and mock only: no vendor runtime is loaded (PoCL brings LLVM, whose crash
   * handlers would replace libFuzzer's, and a crash would then save no input). */
  setenv("KILN_OPENCL_LIBRARY", "/nonexistent/fuzz_api/libOpenCL.so.1", 1);
  setenv("KILN_CUDA_LIBRARY", "/nonexistent/fuzz_api/libcuda.so.1", 1);
  if (kiln_device_find(KILN_BACKEND_CPU, 0, &cpu_dev) != KILN_SUCCESS) {
    fprintf(stderr, "fuzz_api: no cpu device\n");
    crash();
  }
  if (kiln_device_find(KILN_BACKEND_MOCK, 0, &mock_dev) != KILN_SUCCESS)
    mock_dev = NULL;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  prog g = {data, size, 0, 0};
  /* The header: faults and chaos. */
  uint8_t h = u8(&g);
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  lost = 0;
  faults = 0;
  if (h & 1)
    mc.fail_call = 1 + u8(&g);
  if (h & 2)
    mc.fail_from_call = 1 + u16(&g) % 512;
  fail_status = (h & 4) ? KILN_ERROR_OUT_OF_DEVICE_MEMORY : KILN_ERROR_BACKEND;
  mc.fail_status = fail_status;
  if (h & 8)
    mc.shuffle_seed = 1 + u8(&g);
  if (h & 16)
    mc.delay_ns = (uint64_t)u8(&g) * 200;
  faults = (h & 3) != 0;
  mock_cfg = mc;
  if (kiln_mock_configure(&mc) != KILN_SUCCESS)
    crash();
  alloc_fail_at = 0;
  atomic_store(&alloc_calls, 0);
  atomic_store(&alloc_failures, 0);
  int custom_alloc = (h & 32) != 0;
  if (custom_alloc) {
    alloc_fail_at = (h & 64) ? 1 + u16(&g) % 2048 : 0;
    alloc_fail_once = !(h & 128);
    faults |= alloc_fail_at != 0;
    atomic_store(&alloc_live, 0);
    kiln_allocator a = KILN_ALLOCATOR_INIT;
    a.alloc = fz_alloc;
    a.free = fz_free;
    if (kiln_set_allocator(&a) != KILN_SUCCESS)
      crash();
  }
  seen_failures = 0;
  atomic_store(&cb_count, 0);
  cb_expected = 0;
  nstale_ctx = nstale_pools = nstale_toks = nstale_futs = 0;

  int steps = 0;
  trace = getenv("FUZZ_API_TRACE") != NULL;
  while (g.i < g.n && steps++ < 256) {
    g.bad = 0;
    uint8_t op = u8(&g);
    if (trace) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      fprintf(stderr, "fuzz_api: %lld.%03ld step %d: op %u (byte %zu)\n", (long long)ts.tv_sec,
              ts.tv_nsec / 1000000, steps, op % 20u, g.i - 1);
    }
    switch (op % 20) {
    case 0:
      op_ctx_create(&g);
      break;
    case 1:
      op_ctx_destroy(&g);
      break;
    case 2:
      op_stream_create(&g);
      break;
    case 3:
      op_stream_destroy(&g);
      break;
    case 4:
      op_buffer_create(&g);
      break;
    case 5:
      op_buffer_destroy(&g);
      break;
    case 6:
    case 7:
    case 8:
    case 9:
      op_transfer(&g, op % 20 - 6, (op >> 5) & 1);
      break;
    case 10:
    case 11:
      op_token(&g);
      break;
    case 12:
      op_stream_sync(&g);
      break;
    case 13:
      op_event(&g);
      break;
    case 14:
      op_future(&g);
      break;
    case 15:
      op_pool(&g);
      break;
    case 16:
      op_host(&g);
      break;
    case 17:
      op_managed(&g);
      break;
    case 18:
      op_launch(&g);
      break;
    default:
      if (op & 32)
        op_stream_group(&g);
      else if (op & 64)
        op_extra(&g);
      else
        op_ctx_misc(&g);
      break;
    }
  }
  /* The end: release managed acquires, destroy every context (which waits for all
   * work and runs every callback), then nothing may be left. */
  for (int c = 0; c < nctx; c++)
    for (int b = 0; b < ctxs[c].nbufs; b++)
      while (ctxs[c].bufs[b]->acq) {
        ok(kiln_managed_release(ctxs[c].bufs[b]->h), "managed_release (end)");
        ctxs[c].bufs[b]->acq = ctxs[c].bufs[b]->acq < 0 ? 0 : ctxs[c].bufs[b]->acq - 1;
      }
  while (nctx)
    ctx_teardown(nctx - 1, 1);
  for (; trace_depth; trace_depth--)
    ok(kiln_trace_range_end(), "trace_range_end (end)");
  if (trace_on)
    ok(kiln_trace_stop(), "trace_stop (end)");
  trace_on = 0;
  if (atomic_load(&cb_count) != cb_expected) {
    fprintf(stderr, "fuzz_api: %d callbacks registered, %d ran\n", cb_expected,
            atomic_load(&cb_count));
    crash();
  }
  if (getenv("FUZZ_API_STATS"))
    fprintf(stderr,
            "fuzz_api: %lu calls succeeded, %lu failed as injected, %lu refused as "
            "documented, %lu reads checked, %lu refused for a lost device\n",
            n_ok, n_fault, n_want, n_checked, n_lost);
  n_ok = n_fault = n_want = n_checked = n_lost = 0;
  if (kiln_mock_configure(NULL) != KILN_SUCCESS)
    crash();
  if (custom_alloc) {
    /* every block kiln took from the allocator during the input came back */
    if (atomic_load(&alloc_live) != 0) {
      fprintf(stderr, "fuzz_api: %ld host blocks of kiln's allocator not freed\n",
              atomic_load(&alloc_live));
      crash();
    }
    if (kiln_set_allocator(NULL) != KILN_SUCCESS)
      crash();
  }
  if (mock_dev) { /* a device lost in this input comes back for the next */
    kiln_device_state_info si = KILN_DEVICE_STATE_INFO_INIT;
    if (kiln_device_get_state(mock_dev, &si) != KILN_SUCCESS)
      crash();
    if (si.state != KILN_DEVICE_STATE_OK && kiln_device_reset(mock_dev) != KILN_SUCCESS)
      die("device_reset (end)", KILN_ERROR_DEVICE_LOST);
  }
  return 0;
}
