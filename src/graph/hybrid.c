/* SPDX-License-Identifier: MIT */
/* The hybrid dispatcher (include/kiln/hybrid.h, docs/hybrid.md): task classes with one
 * implementation per target, a cost model per (task, target) — log2-size buckets of
 * windowed means of (n, time), piecewise linear between the buckets' means —, the
 * decision (mode, calibration, seeded exploration), timed runs, and the model file.
 * Sits above the public API: public calls only (host memory through
 * kiln_allocator_alloc, error detail through kiln_error_report, log lines through
 * kiln_log_write). Invariants: a task's
 * models, counters and random state change only under its lock; the dispatcher's task
 * list under the dispatcher's lock; `lost` flags are atomics set once. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kiln.h"
#include "kiln/hybrid.h"
#include "text.h"

#define HY_BUCKETS 64                /* log2 of n: bucket b holds [2^b, 2^(b+1)) */
#define HY_DEFAULT_EXPLORE 0.05      /* fraction of ADAPTIVE decisions that explore */
#define HY_EXPLORE_CAP 3.0           /* only targets expected within 3x the best */
#define HY_MAGIC 0x4859424e494c4bULL /* "KLINBYH": dispatcher handles */
#define HY_TASK_MAGIC 0x4b534154594eULL
#define HY_FILE_MAGIC "KILNHYBR"
#define HY_FILE_VERSION 1u
#define HY_FILE_MAX (64u << 20) /* bytes: a model file larger than this is refused */
#define HY_IDENT 96

typedef struct hy_bucket {
  uint64_t count; /* samples seen (the mean fades older ones past `window`) */
  double n;       /* mean size */
  double t_ns;    /* mean time */
  uint64_t last;  /* the task's sequence number at the last sample */
} hy_bucket;

typedef struct hy_counts {
  uint64_t runs, total_ns, explored, failures;
} hy_counts;

/* One record of the model file: fixed size, native byte order. */
typedef struct hy_record {
  char task[KILN_HYBRID_NAME_MAX + 1];
  char target[HY_IDENT];
  uint32_t bucket;
  uint32_t reserved;
  uint64_t count;
  double n;
  double t_ns;
} hy_record;
_Static_assert(sizeof(hy_record) == 192, "the model file's record layout is fixed");

typedef struct hy_file_header {
  char magic[8];
  uint32_t version;
  uint32_t record_bytes;
  uint64_t records;
} hy_file_header;

struct kiln_hybrid_task_s {
  uint64_t magic;
  struct kiln_hybrid_s *h;
  struct kiln_hybrid_task_s *next;
  char name[KILN_HYBRID_NAME_MAX + 1];
  int is_kernel;
  kiln_hybrid_fn fns[KILN_HYBRID_MAX_TARGETS];
  kiln_program programs[KILN_HYBRID_MAX_TARGETS];
  kiln_kernel kernels[KILN_HYBRID_MAX_TARGETS];
  kiln_stream streams[KILN_HYBRID_MAX_TARGETS];
  size_t param_count;
  kiln_param_kind params[KILN_MAX_KERNEL_ARGS];
  pthread_mutex_t lock;
  uint64_t rng; /* xorshift64* state */
  uint64_t seq; /* samples recorded, the clock of hy_bucket.last */
  hy_bucket model[KILN_HYBRID_MAX_TARGETS][HY_BUCKETS];
  hy_counts counts[KILN_HYBRID_MAX_TARGETS];
  unsigned char warmed[KILN_HYBRID_MAX_TARGETS]; /* its first timed run was made */
};

struct kiln_hybrid_s {
  uint64_t magic;
  size_t count;
  kiln_context ctx[KILN_HYBRID_MAX_TARGETS];
  char label[KILN_HYBRID_MAX_TARGETS][64];
  char ident[KILN_HYBRID_MAX_TARGETS][HY_IDENT];
  _Atomic int lost[KILN_HYBRID_MAX_TARGETS];
  /* expected time of the runs kiln_hybrid_run* has in flight on each target (added at
   * the decision, taken off when the run ends): ADAPTIVE adds it to a target's expected
   * time, so concurrent callers spread over the targets as StarPU's dmda does */
  _Atomic uint64_t busy_ns[KILN_HYBRID_MAX_TARGETS];
  kiln_hybrid_mode mode;
  unsigned fixed;
  size_t thresholds[KILN_HYBRID_MAX_TARGETS];
  unsigned flags;
  double explore_rate;
  uint64_t seed;
  unsigned min_samples, window;
  char *path; /* halloc'd, path_bytes */
  size_t path_bytes;
  hy_record *stored; /* the model file's records at create */
  size_t stored_count;
  pthread_mutex_t lock; /* tasks */
  kiln_hybrid_task tasks;
};

/* ------------------------------------------------------------------ errors, memory */

/* The public call the calling thread is in (its error detail names it). */
static _Thread_local const char *hy_fn = "kiln_hybrid";
#define HY_ENTER() (hy_fn = __func__)
/* Fill kiln_last_error() for the current call; returns st. (No thread-local message
 * buffer of its own: libkiln's initial-exec TLS must stay small enough for dlopen,
 * ctest trace.libkiln_loads_with_dlopen.) */
static kiln_status herr(kiln_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kiln_status herr(kiln_status st, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kiln_error_report(st, hy_fn, NULL, "%s", msg);
}

/* Replace the suggestion of the error herr just set. */
static void hsuggest(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hsuggest(const char *fmt, ...) {
  char sugg[256], msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sugg, sizeof sugg, fmt, ap);
  va_end(ap);
  const kiln_error_info *e = kiln_last_error();
  snprintf(msg, sizeof msg, "%s", e->message);
  kiln_error_report(e->status, hy_fn, sugg, "%s", msg);
}

static void *halloc(size_t bytes) {
  return kiln_allocator_alloc(bytes, 0);
}
static void *hcalloc(size_t bytes) {
  void *p = kiln_allocator_alloc(bytes, 0);
  if (p)
    memset(p, 0, bytes);
  return p;
}
static void hfree(void *p, size_t bytes) {
  if (p)
    kiln_allocator_free(p, bytes, 0);
}
static void hstrcpy(char *dst, const char *src, size_t dst_bytes) {
  snprintf(dst, dst_bytes, "%s", src);
}

static const char *const mode_names[] = {
    [KILN_HYBRID_ADAPTIVE] = "adaptive",
    [KILN_HYBRID_FIXED] = "fixed",
    [KILN_HYBRID_THRESHOLD] = "threshold",
};
static const char *const reason_names[] = {
    [KILN_HYBRID_REASON_MODEL] = "model",         [KILN_HYBRID_REASON_CALIBRATE] = "calibrate",
    [KILN_HYBRID_REASON_EXPLORE] = "explore",     [KILN_HYBRID_REASON_FIXED] = "fixed",
    [KILN_HYBRID_REASON_THRESHOLD] = "threshold", [KILN_HYBRID_REASON_ONLY] = "only",
};

/* ------------------------------------------------------------------ helpers */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes) {
  const unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_SEED 0xcbf29ce484222325ULL

/* Uniform in [0, 1) from the task's sequence (xorshift64*). Under the task's lock. */
static double rng_next_locked(kiln_hybrid_task t) {
  uint64_t x = t->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t->rng = x;
  return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* An expected time as whole ns, capped at 10^18 (31 years) so that sums of them stay
 * far from wrapping and no conversion overflows. */
static uint64_t to_ns(double v) {
  return v >= 1e18 ? 1000000000000000000ULL : v > 0 ? (uint64_t)v : 0;
}

static unsigned bucket_of(size_t n) {
  return n < 2 ? 0u : (unsigned)(63 - __builtin_clzll((unsigned long long)n));
}

static kiln_status check_hybrid(kiln_hybrid h) {
  if (!h)
    return herr(KILN_ERROR_INVALID_HANDLE, "hybrid is NULL");
  if (h->magic != HY_MAGIC)
    return herr(KILN_ERROR_INVALID_HANDLE, "hybrid %p is not a live dispatcher", (void *)h);
  return KILN_SUCCESS;
}

static kiln_status check_task(kiln_hybrid_task t) {
  if (!t)
    return herr(KILN_ERROR_INVALID_HANDLE, "task is NULL");
  if (t->magic != HY_TASK_MAGIC)
    return herr(KILN_ERROR_INVALID_HANDLE, "task %p is not a live hybrid task", (void *)t);
  return KILN_SUCCESS;
}

static kiln_status check_target(kiln_hybrid_task t, unsigned target) {
  if (target >= t->h->count)
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "target %u is out of range: the dispatcher has %zu targets (0..%zu)", target,
                t->h->count, t->h->count - 1);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ the model */

/* Expected time of size n on target k from its buckets: piecewise linear through the
 * buckets' mean points, extrapolated along the nearest segment (slope >= 0), or in
 * proportion to n with one point. 0 when the target has no sample. Under the lock. */
static int predict_locked(kiln_hybrid_task t, unsigned k, size_t n, double *out) {
  const hy_bucket *b = t->model[k];
  int lo = -1, lo2 = -1, hi = -1, hi2 = -1;
  const double x = (double)n;
  for (int i = 0; i < HY_BUCKETS; i++) {
    if (!b[i].count)
      continue;
    if (b[i].n <= x) {
      lo2 = lo;
      lo = i;
    } else if (hi < 0) {
      hi = i;
    } else if (hi2 < 0) {
      hi2 = i;
      break;
    }
  }
  int p, q; /* the segment used */
  if (lo >= 0 && hi >= 0) {
    p = lo;
    q = hi;
  } else if (lo >= 0 && lo2 >= 0) {
    p = lo2;
    q = lo;
  } else if (hi >= 0 && hi2 >= 0) {
    p = hi;
    q = hi2;
  } else {
    int only = lo >= 0 ? lo : hi;
    if (only < 0)
      return 0;
    double v = b[only].n > 0 ? b[only].t_ns * x / b[only].n : b[only].t_ns;
    *out = v < 1.0 ? 1.0 : v;
    return 1;
  }
  double dn = b[q].n - b[p].n;
  double slope = dn > 0 ? (b[q].t_ns - b[p].t_ns) / dn : 0.0;
  if (slope < 0 && !(lo >= 0 && hi >= 0))
    slope = 0; /* extrapolation never predicts less for more work */
  double v = b[p].t_ns + slope * (x - b[p].n);
  *out = v < 1.0 ? 1.0 : v;
  return 1;
}

static void record_locked(kiln_hybrid_task t, unsigned k, size_t n, uint64_t ns) {
  hy_bucket *b = &t->model[k][bucket_of(n)];
  b->count++;
  uint64_t w = b->count < t->h->window ? b->count : t->h->window;
  b->n += ((double)n - b->n) / (double)w;
  b->t_ns += ((double)ns - b->t_ns) / (double)w;
  b->last = ++t->seq;
  t->counts[k].runs++;
  t->counts[k].total_ns += ns;
}

/* A timed run of kiln_hybrid_run*: learned, except each target's first run of the task
 * in this process, which carries one-time costs (code loading, thread start, driver
 * JIT) that later runs do not pay; it is counted in the statistics only. */
static void record_run(kiln_hybrid_task t, unsigned k, size_t n, uint64_t ns) {
  pthread_mutex_lock(&t->lock);
  if (t->warmed[k]) {
    record_locked(t, k, n, ns);
  } else {
    t->warmed[k] = 1;
    t->counts[k].runs++;
    t->counts[k].total_ns += ns;
  }
  pthread_mutex_unlock(&t->lock);
}

static int eligible(kiln_hybrid_task t, unsigned k) {
  /* acquire: pairs with the release store of mark_lost (a flag, no data behind it) */
  if (atomic_load_explicit(&t->h->lost[k], memory_order_acquire))
    return 0;
  return t->is_kernel || t->fns[k] != NULL;
}

static kiln_status no_target(kiln_hybrid_task t, size_t n) {
  const kiln_hybrid h = t->h;
  int any_lost = 0;
  for (unsigned k = 0; k < h->count; k++)
    any_lost |= atomic_load_explicit(&h->lost[k], memory_order_acquire);
  herr(any_lost ? KILN_ERROR_DEVICE_LOST : KILN_ERROR_INVALID_STATE,
       "task '%s' (n %zu): no target can run it (every target with an implementation "
       "lost its device)",
       t->name, n);
  hsuggest("reset the devices, then create a new dispatcher over new contexts");
  return any_lost ? KILN_ERROR_DEVICE_LOST : KILN_ERROR_INVALID_STATE;
}

static kiln_status fixed_target_unusable(kiln_hybrid_task t, unsigned k, const char *mode) {
  if (atomic_load_explicit(&t->h->lost[k], memory_order_acquire)) {
    herr(KILN_ERROR_DEVICE_LOST,
         "task '%s': target %u (%s), where %s mode sends it, lost its device", t->name, k,
         t->h->label[k], mode);
    hsuggest("use ADAPTIVE mode to move work off lost targets, or reset the "
             "device and create a new dispatcher");
    return KILN_ERROR_DEVICE_LOST;
  }
  herr(KILN_ERROR_UNSUPPORTED,
       "task '%s' has no function for target %u (%s), where %s mode sends it", t->name, k,
       t->h->label[k], mode);
  hsuggest("give the task a function for that target, or change the mode");
  return KILN_ERROR_UNSUPPORTED;
}

/* The decision; *expect_ns gets the chosen target's expected time (0 when unknown or
 * not ADAPTIVE), which a run adds to the target's busy_ns while it runs. */
static kiln_status decide_locked(kiln_hybrid_task t, size_t n, unsigned *out,
                                 kiln_hybrid_reason *why, uint64_t *expect_ns) {
  const kiln_hybrid h = t->h;
  *expect_ns = 0;
  if (h->mode == KILN_HYBRID_FIXED) {
    if (!eligible(t, h->fixed))
      return fixed_target_unusable(t, h->fixed, "FIXED");
    *out = h->fixed;
    *why = KILN_HYBRID_REASON_FIXED;
    return KILN_SUCCESS;
  }
  if (h->mode == KILN_HYBRID_THRESHOLD) {
    unsigned k = 0;
    while (k + 1 < h->count && n >= h->thresholds[k])
      k++;
    if (!eligible(t, k))
      return fixed_target_unusable(t, k, "THRESHOLD");
    *out = k;
    *why = KILN_HYBRID_REASON_THRESHOLD;
    return KILN_SUCCESS;
  }
  unsigned cand[KILN_HYBRID_MAX_TARGETS], nc = 0;
  for (unsigned k = 0; k < h->count; k++)
    if (eligible(t, k))
      cand[nc++] = k;
  if (nc == 0)
    return no_target(t, n);
  if (nc == 1) {
    *out = cand[0];
    *why = KILN_HYBRID_REASON_ONLY;
    return KILN_SUCCESS;
  }
  const unsigned b = bucket_of(n);
  /* calibration: the eligible target with the fewest samples here, when short */
  unsigned few = cand[0];
  for (unsigned i = 1; i < nc; i++)
    if (t->model[cand[i]][b].count < t->model[few][b].count)
      few = cand[i];
  double pred[KILN_HYBRID_MAX_TARGETS];
  if (t->model[few][b].count < h->min_samples) {
    *out = few;
    *why = KILN_HYBRID_REASON_CALIBRATE;
    if (predict_locked(t, few, n, &pred[few]))
      *expect_ns = to_ns(pred[few]);
    return KILN_SUCCESS;
  }
  /* expected finish: the run's expected time after what is in flight there; relaxed:
   * a heuristic input, no data is published through busy_ns */
  unsigned best = cand[0];
  double run[KILN_HYBRID_MAX_TARGETS];
  for (unsigned i = 0; i < nc; i++) {
    const unsigned k = cand[i];
    predict_locked(t, k, n, &run[k]); /* every candidate has samples here */
    pred[k] = run[k] + (double)atomic_load_explicit(&h->busy_ns[k], memory_order_relaxed);
    if (pred[k] < pred[best])
      best = cand[i];
  }
  if (!(h->flags & KILN_HYBRID_NO_EXPLORATION) && rng_next_locked(t) < h->explore_rate) {
    /* the least recently sampled target here that is expected within the cap */
    int pick = -1;
    for (unsigned i = 0; i < nc; i++) {
      unsigned k = cand[i];
      if (k == best || pred[k] > HY_EXPLORE_CAP * pred[best])
        continue;
      if (pick < 0 || t->model[k][b].last < t->model[pick][b].last)
        pick = (int)k;
    }
    if (pick >= 0) {
      t->counts[pick].explored++;
      *out = (unsigned)pick;
      *why = KILN_HYBRID_REASON_EXPLORE;
      *expect_ns = to_ns(run[pick]);
      return KILN_SUCCESS;
    }
  }
  *out = best;
  *why = KILN_HYBRID_REASON_MODEL;
  *expect_ns = to_ns(run[best]);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ model file */

static void ident_of(kiln_hybrid h, unsigned k, char out[HY_IDENT]) {
  kiln_device dev = NULL;
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  if (kiln_context_get_device(h->ctx[k], &dev) != KILN_SUCCESS ||
      kiln_device_get_props(dev, &props) != KILN_SUCCESS) {
    snprintf(out, HY_IDENT, "%s", h->label[k]);
    return;
  }
  snprintf(out, HY_IDENT, "%s|%s:%u|%.60s", h->label[k], kiln_backend_name(props.backend),
           props.index, props.name);
}

/* Read and check the model file. 1: *recs (halloc'd, *count records; NULL when 0);
 * 0: no usable file (why says why, "" when it does not exist); -1: out of host memory. */
static int load_file(const char *path, hy_record **recs, size_t *count, char *why,
                     size_t why_bytes) {
  *recs = NULL;
  *count = 0;
  why[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno != ENOENT)
      snprintf(why, why_bytes, "cannot open it: %s", strerror(errno));
    return 0;
  }
  struct stat st;
  int rc = 0;
  unsigned char *data = NULL;
  size_t size = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, why_bytes, "not a regular file");
    goto out;
  }
  size = (size_t)st.st_size;
  if (size > HY_FILE_MAX) {
    snprintf(why, why_bytes, "%zu bytes, more than the %u a model file may have", size,
             HY_FILE_MAX);
    goto out;
  }
  if (size < sizeof(hy_file_header) + 8) {
    snprintf(why, why_bytes, "truncated: %zu bytes, shorter than a header", size);
    goto out;
  }
  data = halloc(size);
  if (!data) {
    rc = -1;
    goto out;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, data + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got != size) {
    snprintf(why, why_bytes, "read %zu of its %zu bytes", got, size);
    goto out;
  }
  hy_file_header hd;
  memcpy(&hd, data, sizeof hd);
  if (memcmp(hd.magic, HY_FILE_MAGIC, 8) != 0) {
    snprintf(why, why_bytes, "not a kiln hybrid model file (no %s magic)", HY_FILE_MAGIC);
    goto out;
  }
  if (hd.version != HY_FILE_VERSION || hd.record_bytes != sizeof(hy_record)) {
    snprintf(why, why_bytes, "version %u (record %u bytes); this kiln reads version %u", hd.version,
             hd.record_bytes, HY_FILE_VERSION);
    goto out;
  }
  if (hd.records > (size - sizeof hd - 8) / sizeof(hy_record) ||
      sizeof hd + hd.records * sizeof(hy_record) + 8 != size) {
    snprintf(why, why_bytes, "truncated or overlong: %zu bytes for %llu records", size,
             (unsigned long long)hd.records);
    goto out;
  }
  uint64_t sum;
  memcpy(&sum, data + size - 8, 8);
  if (fnv1a(FNV_SEED, data, size - 8) != sum) {
    snprintf(why, why_bytes, "its checksum does not match (damaged)");
    goto out;
  }
  if (hd.records) {
    *recs = halloc((size_t)hd.records * sizeof(hy_record));
    if (!*recs) {
      rc = -1;
      goto out;
    }
    memcpy(*recs, data + sizeof hd, (size_t)hd.records * sizeof(hy_record));
    for (size_t i = 0; i < hd.records; i++) { /* terminate what the file may not have */
      (*recs)[i].task[KILN_HYBRID_NAME_MAX] = '\0';
      (*recs)[i].target[HY_IDENT - 1] = '\0';
    }
  }
  *count = (size_t)hd.records;
  rc = 1;
out:
  if (data)
    hfree(data, size);
  close(fd);
  return rc;
}

static void apply_stored_locked(kiln_hybrid h, kiln_hybrid_task t) {
  for (size_t i = 0; i < h->stored_count; i++) {
    const hy_record *r = &h->stored[i];
    if (strcmp(r->task, t->name) != 0 || r->bucket >= HY_BUCKETS || !r->count || !isfinite(r->n) ||
        !isfinite(r->t_ns) || r->n < 0 || r->t_ns < 0)
      continue;
    for (unsigned k = 0; k < h->count; k++)
      if (strcmp(r->target, h->ident[k]) == 0) {
        hy_bucket *b = &t->model[k][r->bucket];
        b->count = r->count;
        b->n = r->n;
        b->t_ns = r->t_ns;
      }
  }
}

static int write_all(int fd, const void *data, size_t bytes) {
  const unsigned char *p = data;
  while (bytes) {
    ssize_t w = write(fd, p, bytes);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    bytes -= (size_t)w;
  }
  return 0;
}

static kiln_status save_locked(kiln_hybrid h) {
  /* the file as it is now: other processes' tasks are kept */
  hy_record *old = NULL;
  size_t old_count = 0;
  char why[256];
  if (load_file(h->path, &old, &old_count, why, sizeof why) < 0)
    return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "reading model file '%s' to merge it", h->path);
  /* room for every bucket of every task (the models change while this runs: each
   * task's buckets are read under its lock) and the file's other tasks */
  size_t ntasks = 0;
  for (kiln_hybrid_task t = h->tasks; t; t = t->next)
    ntasks++;
  const size_t cap = ntasks * h->count * HY_BUCKETS + old_count;
  const size_t cap_bytes = sizeof(hy_file_header) + cap * sizeof(hy_record) + 8;
  unsigned char *data = hcalloc(cap_bytes);
  if (!data) {
    hfree(old, old_count * sizeof(hy_record));
    return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "%zu bytes for model file '%s'", cap_bytes, h->path);
  }
  hy_record *r = (hy_record *)(void *)(data + sizeof(hy_file_header));
  size_t i = 0;
  for (kiln_hybrid_task t = h->tasks; t; t = t->next) {
    pthread_mutex_lock(&t->lock);
    for (unsigned k = 0; k < h->count; k++)
      for (unsigned b = 0; b < HY_BUCKETS; b++) {
        const hy_bucket *m = &t->model[k][b];
        if (!m->count)
          continue;
        memcpy(r[i].task, t->name, sizeof r[i].task);
        memcpy(r[i].target, h->ident[k], sizeof r[i].target);
        r[i].bucket = b;
        r[i].count = m->count;
        r[i].n = m->n;
        r[i].t_ns = m->t_ns;
        i++;
      }
    pthread_mutex_unlock(&t->lock);
  }
  for (size_t j = 0; j < old_count; j++) {
    int mine = 0;
    for (kiln_hybrid_task t = h->tasks; t && !mine; t = t->next)
      mine = strcmp(old[j].task, t->name) == 0;
    if (!mine)
      r[i++] = old[j];
  }
  const size_t bytes = sizeof(hy_file_header) + i * sizeof(hy_record) + 8;
  hy_file_header hd = {HY_FILE_MAGIC, HY_FILE_VERSION, (uint32_t)sizeof(hy_record), i};
  memcpy(data, &hd, sizeof hd);
  hfree(old, old_count * sizeof(hy_record));
  uint64_t sum = fnv1a(FNV_SEED, data, bytes - 8);
  memcpy(data + bytes - 8, &sum, 8);

  static _Atomic unsigned serial;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", h->path, (long)getpid(),
           atomic_fetch_add_explicit(&serial, 1, memory_order_relaxed));
  kiln_status st = KILN_SUCCESS;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    st = herr(KILN_ERROR_IO, "cannot create '%s' to save the hybrid model: %s", tmp,
              strerror(errno));
  } else {
    int bad = write_all(fd, data, bytes) != 0 || fsync(fd) != 0;
    int err = errno;
    bad |= close(fd) != 0;
    if (bad)
      st = herr(KILN_ERROR_IO, "cannot write '%s' (hybrid model): %s", tmp, strerror(err));
    else if (rename(tmp, h->path) != 0)
      st = herr(KILN_ERROR_IO, "cannot rename '%s' to '%s': %s", tmp, h->path, strerror(errno));
    if (st != KILN_SUCCESS)
      unlink(tmp);
  }
  hfree(data, cap_bytes);
  return st;
}

/* ------------------------------------------------------------------ dispatcher */

static void task_free(kiln_hybrid_task t, size_t count);

static void hybrid_free(kiln_hybrid h) {
  while (h->tasks) {
    kiln_hybrid_task t = h->tasks;
    h->tasks = t->next;
    task_free(t, h->count);
  }
  if (h->path)
    hfree(h->path, h->path_bytes);
  if (h->stored)
    hfree(h->stored, h->stored_count * sizeof(hy_record));
  pthread_mutex_destroy(&h->lock);
  h->magic = 0;
  hfree(h, sizeof *h);
}

kiln_status kiln_hybrid_create(const kiln_hybrid_desc *desc, kiln_hybrid *hybrid) {
  HY_ENTER();
  if (!hybrid)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "hybrid (the out-parameter) is NULL");
  *hybrid = NULL;
  if (!desc)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL");
  if (desc->struct_size < sizeof(kiln_hybrid_desc)) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "desc->struct_size is %zu, expected %zu", desc->struct_size,
         sizeof(kiln_hybrid_desc));
    hsuggest("initialise the desc with KILN_HYBRID_DESC_INIT");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (!desc->targets || desc->target_count == 0 || desc->target_count > KILN_HYBRID_MAX_TARGETS) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "desc->target_count is %zu%s: 1 to %d targets",
         desc->target_count, desc->targets ? "" : " and targets NULL", KILN_HYBRID_MAX_TARGETS);
    hsuggest("pass an array of targets, one kiln context each");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  const size_t count = desc->target_count;
  for (size_t k = 0; k < count; k++) {
    kiln_device dev = NULL;
    kiln_status st = kiln_context_get_device(desc->targets[k].context, &dev);
    if (st != KILN_SUCCESS) {
      char msg[sizeof kiln_last_error()->message];
      hstrcpy(msg, kiln_last_error()->message, sizeof msg);
      HY_ENTER();
      return herr(st, "desc->targets[%zu].context: %s", k, msg);
    }
  }
  if ((unsigned)desc->mode > KILN_HYBRID_THRESHOLD)
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "desc->mode is %d: ADAPTIVE (0), FIXED (1) or THRESHOLD (2)", (int)desc->mode);
  if (desc->mode == KILN_HYBRID_FIXED && desc->fixed_target >= count)
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "desc->fixed_target is %u but there are %zu targets (0..%zu)", desc->fixed_target,
                count, count - 1);
  if (desc->mode == KILN_HYBRID_THRESHOLD) {
    if (count < 2 || !desc->thresholds) {
      herr(KILN_ERROR_INVALID_ARGUMENT,
           "THRESHOLD mode needs at least 2 targets and %zu thresholds (have %zu "
           "targets, thresholds %s)",
           count > 1 ? count - 1 : 1, count, desc->thresholds ? "set" : "NULL");
      hsuggest("give target_count - 1 ascending sizes in desc->thresholds");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    for (size_t i = 1; i + 1 < count; i++)
      if (desc->thresholds[i] < desc->thresholds[i - 1])
        return herr(KILN_ERROR_INVALID_ARGUMENT,
                    "desc->thresholds[%zu] (%zu) is below thresholds[%zu] (%zu): they "
                    "must ascend",
                    i, desc->thresholds[i], i - 1, desc->thresholds[i - 1]);
  }
  if (!(desc->explore_rate >= 0.0 && desc->explore_rate <= 1.0))
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "desc->explore_rate is %g: a fraction in [0, 1] (0: the default %g)",
                desc->explore_rate, HY_DEFAULT_EXPLORE);
  if (desc->flags & ~(unsigned)(KILN_HYBRID_NO_EXPLORATION | KILN_HYBRID_NO_AUTOSAVE))
    return herr(KILN_ERROR_INVALID_ARGUMENT, "desc->flags has unknown bits 0x%x",
                desc->flags & ~(unsigned)(KILN_HYBRID_NO_EXPLORATION | KILN_HYBRID_NO_AUTOSAVE));
  size_t path_len = desc->model_path ? strlen(desc->model_path) : 0;
  if (desc->model_path && (path_len == 0 || desc->model_path[0] != '/' || path_len >= 4096)) {
    herr(KILN_ERROR_INVALID_ARGUMENT,
         "desc->model_path '%.64s'%s is not an absolute path (of at most 4095 bytes)",
         desc->model_path, path_len > 64 ? "..." : "");
    hsuggest("give an absolute path, e.g. under the compile cache's directory");
    return KILN_ERROR_INVALID_ARGUMENT;
  }

  kiln_hybrid h = hcalloc(sizeof *h);
  if (!h)
    return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "%zu bytes for the dispatcher", sizeof *h);
  pthread_mutex_init(&h->lock, NULL);
  h->magic = HY_MAGIC;
  h->count = count;
  h->mode = desc->mode;
  h->fixed = desc->fixed_target;
  h->flags = desc->flags;
  h->explore_rate = desc->explore_rate > 0 ? desc->explore_rate : HY_DEFAULT_EXPLORE;
  h->seed = desc->seed ? desc->seed : 0x6b696c6e68796272ULL;
  h->min_samples = desc->min_samples ? desc->min_samples : 2;
  h->window = desc->window ? desc->window : 16;
  for (size_t k = 0; k < count; k++) {
    h->ctx[k] = desc->targets[k].context;
    if (desc->mode == KILN_HYBRID_THRESHOLD && k + 1 < count)
      h->thresholds[k] = desc->thresholds[k];
    if (desc->targets[k].label) {
      hstrcpy(h->label[k], desc->targets[k].label, sizeof h->label[k]);
    } else {
      kiln_device dev = NULL;
      kiln_device_props props = KILN_DEVICE_PROPS_INIT;
      (void)kiln_context_get_device(h->ctx[k], &dev);
      if (kiln_device_get_props(dev, &props) == KILN_SUCCESS)
        snprintf(h->label[k], sizeof h->label[k], "%s:%u", kiln_backend_name(props.backend),
                 props.index);
      else
        snprintf(h->label[k], sizeof h->label[k], "target%zu", k);
    }
    ident_of(h, (unsigned)k, h->ident[k]);
  }
  if (desc->model_path) {
    h->path_bytes = path_len + 1;
    h->path = halloc(h->path_bytes);
    if (!h->path) {
      h->path_bytes = 0;
      hybrid_free(h);
      HY_ENTER();
      return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "%zu bytes for the model path", path_len + 1);
    }
    memcpy(h->path, desc->model_path, path_len + 1);
    char why[256];
    int rc = load_file(h->path, &h->stored, &h->stored_count, why, sizeof why);
    if (rc < 0) {
      hybrid_free(h);
      HY_ENTER();
      return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "reading model file '%s'", desc->model_path);
    }
    if (rc == 0 && why[0])
      kiln_log_write(KILN_LOG_WARN, "hybrid: model file '%s' ignored (models start empty): %s",
                     h->path, why);
    else if (rc > 0)
      kiln_log_write(KILN_LOG_DEBUG, "hybrid: model file '%s': %zu records", h->path,
                     h->stored_count);
  }
  *hybrid = h;
  return KILN_SUCCESS;
}

kiln_status kiln_hybrid_destroy(kiln_hybrid hybrid) {
  HY_ENTER();
  if (!hybrid)
    return KILN_SUCCESS;
  kiln_status st = check_hybrid(hybrid);
  if (st != KILN_SUCCESS)
    return st;
  if (hybrid->path && !(hybrid->flags & KILN_HYBRID_NO_AUTOSAVE)) {
    pthread_mutex_lock(&hybrid->lock);
    kiln_status s = save_locked(hybrid);
    pthread_mutex_unlock(&hybrid->lock);
    if (s != KILN_SUCCESS)
      kiln_log_write(KILN_LOG_WARN, "hybrid: the models were not saved at destroy: %s",
                     kiln_last_error()->message);
  }
  hybrid_free(hybrid);
  return KILN_SUCCESS;
}

kiln_status kiln_hybrid_save(kiln_hybrid hybrid) {
  HY_ENTER();
  kiln_status st = check_hybrid(hybrid);
  if (st != KILN_SUCCESS)
    return st;
  if (!hybrid->path) {
    herr(KILN_ERROR_INVALID_STATE, "the dispatcher has no model file (desc->model_path "
                                   "was NULL)");
    hsuggest("set kiln_hybrid_desc.model_path to an absolute path");
    return KILN_ERROR_INVALID_STATE;
  }
  pthread_mutex_lock(&hybrid->lock);
  st = save_locked(hybrid);
  pthread_mutex_unlock(&hybrid->lock);
  return st;
}

/* ------------------------------------------------------------------ tasks */

/* Re-raise the failure of a kiln call made for target k as the dispatcher call `fn`'s,
 * naming the task and target, keeping the runtime's native name (in the message: the
 * public kiln_error_report carries no native code) and the suggestion. */
static kiln_status wrap(const char *fn, kiln_status st, kiln_hybrid_task t, unsigned k,
                        const char *what) {
  const kiln_error_info *e = kiln_last_error();
  char msg[sizeof e->message], name[sizeof e->native_name], sugg[sizeof e->suggestion];
  hstrcpy(msg, e->message, sizeof msg);
  hstrcpy(name, e->native_name, sizeof name);
  hstrcpy(sugg, e->suggestion, sizeof sugg);
  hy_fn = fn;
  herr(st, "task '%s' on target %u (%s), %s: %s%s%s%s", t->name, k, t->h->label[k], what, msg,
       name[0] ? " [" : "", name, name[0] ? "]" : "");
  if (sugg[0])
    hsuggest("%s", sugg);
  return st;
}

static void task_free(kiln_hybrid_task t, size_t count) {
  for (unsigned k = 0; k < count; k++) {
    kiln_kernel_destroy(t->kernels[k]);
    kiln_program_destroy(t->programs[k]);
    kiln_stream_destroy(t->streams[k]);
  }
  pthread_mutex_destroy(&t->lock);
  t->magic = 0;
  hfree(t, sizeof *t);
}

kiln_status kiln_hybrid_task_create(kiln_hybrid hybrid, const kiln_hybrid_task_desc *desc,
                                    kiln_hybrid_task *task) {
  HY_ENTER();
  if (!task)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "task (the out-parameter) is NULL");
  *task = NULL;
  kiln_status st = check_hybrid(hybrid);
  if (st != KILN_SUCCESS)
    return st;
  if (!desc)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "desc is NULL");
  if (desc->struct_size < sizeof(kiln_hybrid_task_desc)) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "desc->struct_size is %zu, expected %zu", desc->struct_size,
         sizeof(kiln_hybrid_task_desc));
    hsuggest("initialise the desc with KILN_HYBRID_TASK_DESC_INIT");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  size_t len = desc->name ? strlen(desc->name) : 0;
  if (len == 0 || len > KILN_HYBRID_NAME_MAX) {
    herr(KILN_ERROR_INVALID_ARGUMENT,
         "desc->name %s%.64s%s%s: a task needs a name of 1 to %d bytes",
         desc->name ? "'" : "is NULL", desc->name ? desc->name : "", desc->name ? "'" : "",
         len > 64 ? "... (too long)" : "", KILN_HYBRID_NAME_MAX);
    hsuggest("name the task: the name keys its model in the model file");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (!desc->fns == !desc->source) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s': %s", desc->name,
         desc->fns ? "both desc->fns and desc->source are set"
                   : "neither desc->fns nor desc->source is set");
    hsuggest("give either one function per target (fns) or kernel source (source "
             "and kernel)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (desc->source && !desc->kernel)
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "task '%s': desc->kernel is NULL; a source task names its kernel", desc->name);
  if (desc->fns) {
    size_t some = 0;
    for (size_t k = 0; k < hybrid->count; k++)
      some += desc->fns[k] != NULL;
    if (!some)
      return herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s': every one of desc->fns[0..%zu] is NULL",
                  desc->name, hybrid->count - 1);
  }
  pthread_mutex_lock(&hybrid->lock);
  for (kiln_hybrid_task o = hybrid->tasks; o; o = o->next)
    if (strcmp(o->name, desc->name) == 0) {
      pthread_mutex_unlock(&hybrid->lock);
      herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s' exists already in this dispatcher", desc->name);
      hsuggest("use the existing task, or give this one another name");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
  pthread_mutex_unlock(&hybrid->lock);

  kiln_hybrid_task t = hcalloc(sizeof *t);
  if (!t)
    return herr(KILN_ERROR_OUT_OF_HOST_MEMORY, "%zu bytes for task '%s'", sizeof *t, desc->name);
  pthread_mutex_init(&t->lock, NULL);
  t->magic = HY_TASK_MAGIC;
  t->h = hybrid;
  memcpy(t->name, desc->name, len + 1);
  t->rng = splitmix64(fnv1a(hybrid->seed, t->name, len)) | 1u;
  if (desc->fns) {
    for (size_t k = 0; k < hybrid->count; k++)
      t->fns[k] = desc->fns[k];
  } else {
    t->is_kernel = 1;
    for (unsigned k = 0; k < hybrid->count; k++) {
      kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
      pd.source = desc->source;
      pd.options = desc->options;
      pd.name = t->name;
      const char *what = "compiling its program";
      st = kiln_program_create(hybrid->ctx[k], &pd, &t->programs[k]);
      if (st == KILN_SUCCESS) {
        what = "creating its kernel";
        st = kiln_kernel_create(t->programs[k], desc->kernel, &t->kernels[k]);
      }
      if (st == KILN_SUCCESS) {
        what = "creating its stream";
        st = kiln_stream_create(hybrid->ctx[k], NULL, &t->streams[k]);
      }
      const kiln_param *params = NULL;
      size_t pc = 0;
      if (st == KILN_SUCCESS) {
        what = "reading its parameters";
        st = kiln_kernel_get_params(t->kernels[k], &params, &pc);
      }
      if (st != KILN_SUCCESS) {
        wrap("kiln_hybrid_task_create", st, t, k, what);
        task_free(t, hybrid->count);
        return st;
      }
      t->param_count = pc;
      for (size_t i = 0; i < pc; i++)
        t->params[i] = params[i].kind;
    }
  }
  pthread_mutex_lock(&hybrid->lock);
  int dup = 0;
  for (kiln_hybrid_task o = hybrid->tasks; o; o = o->next)
    dup |= strcmp(o->name, t->name) == 0;
  if (dup) { /* another thread made one of this name meanwhile */
    pthread_mutex_unlock(&hybrid->lock);
    task_free(t, hybrid->count);
    HY_ENTER();
    return herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s' exists already in this dispatcher",
                desc->name);
  }
  apply_stored_locked(hybrid, t);
  t->next = hybrid->tasks;
  hybrid->tasks = t;
  pthread_mutex_unlock(&hybrid->lock);
  *task = t;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ decisions, runs */

kiln_status kiln_hybrid_decide(kiln_hybrid_task task, size_t n, unsigned *target,
                               kiln_hybrid_reason *why) {
  HY_ENTER();
  if (!target)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "target (the out-parameter) is NULL");
  kiln_status st = check_task(task);
  if (st != KILN_SUCCESS)
    return st;
  kiln_hybrid_reason r = KILN_HYBRID_REASON_MODEL;
  uint64_t expect = 0;
  pthread_mutex_lock(&task->lock);
  st = decide_locked(task, n, target, &r, &expect);
  pthread_mutex_unlock(&task->lock);
  if (why)
    *why = r;
  if (st == KILN_SUCCESS)
    kiln_log_write(KILN_LOG_DEBUG, "hybrid: task '%s' n %zu -> target %u (%s): %s", task->name, n,
                   *target, task->h->label[*target], reason_names[r]);
  return st;
}

kiln_status kiln_hybrid_record(kiln_hybrid_task task, unsigned target, size_t n,
                               uint64_t elapsed_ns) {
  HY_ENTER();
  kiln_status st = check_task(task);
  if (st == KILN_SUCCESS)
    st = check_target(task, target);
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&task->lock);
  record_locked(task, target, n, elapsed_ns);
  pthread_mutex_unlock(&task->lock);
  return KILN_SUCCESS;
}

kiln_status kiln_hybrid_predict(kiln_hybrid_task task, unsigned target, size_t n,
                                uint64_t *expected_ns) {
  HY_ENTER();
  if (!expected_ns)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "expected_ns (the out-parameter) is NULL");
  *expected_ns = 0;
  kiln_status st = check_task(task);
  if (st == KILN_SUCCESS)
    st = check_target(task, target);
  if (st != KILN_SUCCESS)
    return st;
  double v = 0;
  pthread_mutex_lock(&task->lock);
  int ok = predict_locked(task, target, n, &v);
  pthread_mutex_unlock(&task->lock);
  if (!ok) {
    herr(KILN_ERROR_INVALID_STATE, "task '%s' has no sample on target %u (%s) yet", task->name,
         target, task->h->label[target]);
    hsuggest("run the task there, or feed timings with kiln_hybrid_record");
    return KILN_ERROR_INVALID_STATE;
  }
  *expected_ns = to_ns(v);
  return KILN_SUCCESS;
}

/* In-flight accounting of kiln_hybrid_run* (relaxed: a counter read as a heuristic). */
static void busy_add(kiln_hybrid h, unsigned k, uint64_t ns) {
  atomic_fetch_add_explicit(&h->busy_ns[k], ns, memory_order_relaxed);
}
static void busy_sub(kiln_hybrid h, unsigned k, uint64_t ns) {
  atomic_fetch_sub_explicit(&h->busy_ns[k], ns, memory_order_relaxed);
}

static void mark_lost(kiln_hybrid_task t, unsigned k) {
  int was = atomic_exchange_explicit(&t->h->lost[k], 1, memory_order_release);
  if (!was)
    kiln_log_write(
        KILN_LOG_WARN,
        "hybrid: target %u (%s) lost its device (task '%s'); decisions avoid it from now "
        "on",
        k, t->h->label[k], t->name);
}

/* Count a failed run; a lost device marks its target. */
static void count_failure(kiln_hybrid_task t, unsigned k, kiln_status st) {
  pthread_mutex_lock(&t->lock);
  t->counts[k].failures++;
  pthread_mutex_unlock(&t->lock);
  if (st == KILN_ERROR_DEVICE_LOST)
    mark_lost(t, k);
}

kiln_status kiln_hybrid_run(kiln_hybrid_task task, size_t n, void *user, unsigned *ran_on) {
  HY_ENTER();
  kiln_status st = check_task(task);
  if (st != KILN_SUCCESS)
    return st;
  if (task->is_kernel) {
    herr(KILN_ERROR_INVALID_ARGUMENT,
         "task '%s' is a kernel task: run it with kiln_hybrid_run_kernel", task->name);
    hsuggest("call kiln_hybrid_run_kernel with its arguments");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  unsigned k = 0;
  kiln_hybrid_reason why;
  uint64_t expect = 0;
  pthread_mutex_lock(&task->lock);
  st = decide_locked(task, n, &k, &why, &expect);
  pthread_mutex_unlock(&task->lock);
  if (st != KILN_SUCCESS)
    return st;
  busy_add(task->h, k, expect);
  if (ran_on)
    *ran_on = k;
  uint64_t t0 = now_ns();
  st = task->fns[k](task->h->ctx[k], n, user);
  uint64_t dt = now_ns() - t0;
  busy_sub(task->h, k, expect);
  if (st > KILN_SUCCESS) { /* NOT_READY, TIMEOUT: not an answer a finished run gives */
    count_failure(task, k, KILN_ERROR_INVALID_STATE);
    hy_fn = __func__;
    herr(KILN_ERROR_INVALID_STATE,
         "task '%s' on target %u (%s): its function returned %s, which is no failure and no "
         "success",
         task->name, k, task->h->label[k], kiln_status_name(st));
    hsuggest("return KILN_SUCCESS once the work is done, or an error status");
    return KILN_ERROR_INVALID_STATE;
  }
  if (st != KILN_SUCCESS) {
    count_failure(task, k, st);
    return wrap(__func__, st, task, k, "its function failed");
  }
  record_run(task, k, n, dt);
  return KILN_SUCCESS;
}

/* Copy in, launch, copy out on target k; the buffers are the run's own. */
static kiln_status run_kernel_on(kiln_hybrid_task t, unsigned k, size_t n,
                                 const kiln_hybrid_arg *args, size_t count, const char **what) {
  kiln_buffer bufs[KILN_MAX_KERNEL_ARGS] = {0};
  kiln_arg kargs[KILN_MAX_KERNEL_ARGS] = {{0}};
  kiln_status st = KILN_SUCCESS;
  const kiln_context ctx = t->h->ctx[k];
  for (size_t i = 0; i < count && st == KILN_SUCCESS; i++) {
    if (args[i].kind == KILN_HYBRID_ARG_SCALAR) {
      kargs[i] = kiln_arg_scalar(args[i].host, args[i].bytes);
      continue;
    }
    kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
    bd.bytes = n * args[i].bytes;
    *what = "creating a buffer";
    st = kiln_buffer_create(ctx, &bd, &bufs[i]);
    if (st == KILN_SUCCESS && args[i].kind != KILN_HYBRID_ARG_OUT) {
      *what = "copying an input";
      st = kiln_buffer_write(bufs[i], 0, bd.bytes, args[i].host);
    }
    kargs[i] = kiln_arg_buffer(bufs[i]);
  }
  if (st == KILN_SUCCESS) {
    kiln_range r = kiln_range_1d(n);
    *what = "launching";
    st = kiln_launch(t->streams[k], t->kernels[k], &r, kargs, count);
  }
  for (size_t i = 0; i < count && st == KILN_SUCCESS; i++)
    if (args[i].kind == KILN_HYBRID_ARG_OUT || args[i].kind == KILN_HYBRID_ARG_INOUT) {
      *what = "copying an output back";
      st = kiln_buffer_read(bufs[i], 0, n * args[i].bytes, args[i].host);
    }
  for (size_t i = 0; i < count; i++)
    kiln_buffer_destroy(bufs[i]); /* NULL: no-op; an error here changes no result */
  return st;
}

kiln_status kiln_hybrid_run_kernel(kiln_hybrid_task task, size_t n, const kiln_hybrid_arg *args,
                                   size_t count, unsigned *ran_on) {
  HY_ENTER();
  kiln_status st = check_task(task);
  if (st != KILN_SUCCESS)
    return st;
  if (!task->is_kernel) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s' is a function task: run it with kiln_hybrid_run",
         task->name);
    hsuggest("call kiln_hybrid_run with the functions' user pointer");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (n == 0)
    return herr(KILN_ERROR_INVALID_ARGUMENT,
                "task '%s': n is 0; a kernel task launches over n >= 1 work-items", task->name);
  if (count != task->param_count || (count && !args)) {
    herr(KILN_ERROR_KERNEL_ARGS, "task '%s': %zu arguments%s for a kernel of %zu parameters",
         task->name, count, count && !args ? " (args NULL)" : "", task->param_count);
    hsuggest("pass one kiln_hybrid_arg per kernel parameter");
    return KILN_ERROR_KERNEL_ARGS;
  }
  for (size_t i = 0; i < count; i++) {
    const kiln_hybrid_arg *a = &args[i];
    const kiln_param_kind p = task->params[i];
    const int scalar = a->kind == KILN_HYBRID_ARG_SCALAR;
    if (a->kind < KILN_HYBRID_ARG_IN || a->kind > KILN_HYBRID_ARG_SCALAR)
      return herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s': args[%zu].kind is %d", task->name, i,
                  (int)a->kind);
    if (!a->host || !a->bytes)
      return herr(KILN_ERROR_INVALID_ARGUMENT,
                  "task '%s': args[%zu] has host %p and bytes %zu; both are needed", task->name, i,
                  a->host, a->bytes);
    if (scalar != (p == KILN_PARAM_SCALAR) || p == KILN_PARAM_LOCAL ||
        (a->kind == KILN_HYBRID_ARG_IN && p != KILN_PARAM_BUFFER_READ) ||
        (!scalar && a->kind != KILN_HYBRID_ARG_IN && p == KILN_PARAM_BUFFER_READ)) {
      herr(KILN_ERROR_KERNEL_ARGS, "task '%s': args[%zu] is %s but parameter %zu is %s", task->name,
           i,
           scalar                          ? "a scalar"
           : a->kind == KILN_HYBRID_ARG_IN ? "an input array"
                                           : "an output array",
           i,
           p == KILN_PARAM_SCALAR        ? "a scalar"
           : p == KILN_PARAM_BUFFER_READ ? "a const pointer (an input)"
           : p == KILN_PARAM_LOCAL       ? "local memory (not supported by hybrid tasks)"
                                         : "a pointer the kernel writes");
      hsuggest("IN for const pointers, OUT or INOUT for written ones, SCALAR for "
               "values");
      return KILN_ERROR_KERNEL_ARGS;
    }
    if (!scalar && n > SIZE_MAX / a->bytes)
      return herr(KILN_ERROR_INVALID_ARGUMENT, "task '%s': args[%zu]: n %zu x %zu bytes overflows",
                  task->name, i, n, a->bytes);
  }
  unsigned k = 0;
  kiln_hybrid_reason why;
  uint64_t expect = 0;
  pthread_mutex_lock(&task->lock);
  st = decide_locked(task, n, &k, &why, &expect);
  pthread_mutex_unlock(&task->lock);
  if (st != KILN_SUCCESS)
    return st;
  busy_add(task->h, k, expect);
  if (ran_on)
    *ran_on = k;
  const char *what = "";
  uint64_t t0 = now_ns();
  st = run_kernel_on(task, k, n, args, count, &what);
  uint64_t dt = now_ns() - t0;
  busy_sub(task->h, k, expect);
  if (st != KILN_SUCCESS) {
    count_failure(task, k, st);
    return wrap(__func__, st, task, k, what);
  }
  record_run(task, k, n, dt);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ what was learned */

/* Smallest n in [lo, hi] from which `large` is expected faster than `small`. Under the
 * task's lock; both have samples. */
static size_t crossover_locked(kiln_hybrid_task t, unsigned small, unsigned large, size_t lo,
                               size_t hi) {
  /* Scan downwards on a fine log grid for the last point where large is not faster,
   * then bisect between it and the next point. */
  double ps, pl;
  predict_locked(t, small, hi, &ps);
  predict_locked(t, large, hi, &pl);
  if (!(pl < ps))
    return SIZE_MAX;
  size_t good = hi, x = hi;
  for (;;) {
    size_t next = x - x / 32 - 1; /* about 3% smaller each step */
    if (x <= lo || next < lo)
      return lo;
    x = next;
    predict_locked(t, small, x, &ps);
    predict_locked(t, large, x, &pl);
    if (!(pl < ps))
      break;
    good = x;
  }
  size_t bad = x; /* large not faster at bad, faster at good > bad */
  while (good - bad > 1) {
    size_t mid = bad + (good - bad) / 2;
    predict_locked(t, small, mid, &ps);
    predict_locked(t, large, mid, &pl);
    if (pl < ps)
      good = mid;
    else
      bad = mid;
  }
  return good;
}

static void seen_range_locked(kiln_hybrid_task t, unsigned k, size_t *lo, size_t *hi) {
  for (unsigned b = 0; b < HY_BUCKETS; b++) {
    const hy_bucket *m = &t->model[k][b];
    if (!m->count)
      continue;
    size_t v = m->n < 1 ? 1 : m->n >= 1.8e19 ? SIZE_MAX : (size_t)m->n;
    if (v < *lo)
      *lo = v;
    if (v > *hi)
      *hi = v;
  }
}

kiln_status kiln_hybrid_crossover(kiln_hybrid_task task, unsigned small, unsigned large,
                                  size_t *n) {
  HY_ENTER();
  if (!n)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "n (the out-parameter) is NULL");
  *n = 0;
  kiln_status st = check_task(task);
  if (st == KILN_SUCCESS)
    st = check_target(task, small);
  if (st == KILN_SUCCESS)
    st = check_target(task, large);
  if (st != KILN_SUCCESS)
    return st;
  if (small == large)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "small and large are both target %u", small);
  pthread_mutex_lock(&task->lock);
  size_t lo = SIZE_MAX, hi = 0;
  seen_range_locked(task, small, &lo, &hi);
  int has_small = hi != 0;
  size_t lo2 = SIZE_MAX, hi2 = 0;
  seen_range_locked(task, large, &lo2, &hi2);
  int has_large = hi2 != 0;
  if (!has_small || !has_large) {
    pthread_mutex_unlock(&task->lock);
    unsigned k = has_small ? large : small;
    herr(KILN_ERROR_INVALID_STATE, "task '%s' has no sample on target %u (%s) yet", task->name, k,
         task->h->label[k]);
    hsuggest("run the task on both targets, or feed timings with kiln_hybrid_record");
    return KILN_ERROR_INVALID_STATE;
  }
  lo = lo2 < lo ? lo2 : lo;
  hi = hi2 > hi ? hi2 : hi;
  *n = crossover_locked(task, small, large, lo, hi);
  pthread_mutex_unlock(&task->lock);
  return KILN_SUCCESS;
}

kiln_status kiln_hybrid_get_stats(kiln_hybrid_task task, unsigned target,
                                  kiln_hybrid_target_stats *stats) {
  HY_ENTER();
  if (!stats)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof *stats) {
    herr(KILN_ERROR_INVALID_ARGUMENT, "stats->struct_size is %zu, expected %zu", stats->struct_size,
         sizeof *stats);
    hsuggest("initialise it with KILN_HYBRID_TARGET_STATS_INIT");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  kiln_status st = check_task(task);
  if (st == KILN_SUCCESS)
    st = check_target(task, target);
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&task->lock);
  const hy_counts c = task->counts[target];
  pthread_mutex_unlock(&task->lock);
  stats->runs = c.runs;
  stats->total_ns = c.total_ns;
  stats->explored = c.explored;
  stats->failures = c.failures;
  stats->lost = atomic_load_explicit(&task->h->lost[target], memory_order_acquire);
  hstrcpy(stats->label, task->h->label[target], sizeof stats->label);
  return KILN_SUCCESS;
}

static void jstr(kg_text *j, const char *s) {
  kg_text_put(j, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      kg_text_put(j, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      kg_text_put(j, "\\u%04x", *p);
    else
      kg_text_put(j, "%c", *p);
  }
  kg_text_put(j, "\"");
}

kiln_status kiln_hybrid_stats_json(kiln_hybrid_task task, char *buf, size_t bytes, size_t *needed) {
  HY_ENTER();
  if (needed)
    *needed = 0;
  if (!buf && bytes)
    return herr(KILN_ERROR_INVALID_ARGUMENT, "buf is NULL but bytes is %zu", bytes);
  if (buf && bytes)
    buf[0] = '\0';
  kiln_status st = check_task(task);
  if (st != KILN_SUCCESS)
    return st;
  const kiln_hybrid h = task->h;
  kg_text j = {buf, bytes, 0};
  kg_text_put(&j, "{\"task\":");
  jstr(&j, task->name);
  kg_text_put(&j, ",\"kind\":\"%s\",\"mode\":\"%s\",\"targets\":[",
              task->is_kernel ? "kernel" : "function", mode_names[h->mode]);
  pthread_mutex_lock(&task->lock);
  for (unsigned k = 0; k < h->count; k++) {
    const hy_counts *c = &task->counts[k];
    kg_text_put(&j, "%s{\"index\":%u,\"label\":", k ? "," : "", k);
    jstr(&j, h->label[k]);
    kg_text_put(&j,
                ",\"runs\":%llu,\"total_ns\":%llu,\"explored\":%llu,\"failures\":%llu,\"lost\":%s,"
                "\"buckets\":[",
                (unsigned long long)c->runs, (unsigned long long)c->total_ns,
                (unsigned long long)c->explored, (unsigned long long)c->failures,
                atomic_load_explicit(&h->lost[k], memory_order_acquire) ? "true" : "false");
    int first = 1;
    for (unsigned b = 0; b < HY_BUCKETS; b++) {
      const hy_bucket *m = &task->model[k][b];
      if (!m->count)
        continue;
      kg_text_put(&j, "%s{\"log2\":%u,\"samples\":%llu,\"mean_n\":%.1f,\"mean_ns\":%.1f}",
                  first ? "" : ",", b, (unsigned long long)m->count, m->n, m->t_ns);
      first = 0;
    }
    kg_text_put(&j, "]}");
  }
  kg_text_put(&j, "],\"crossover\":");
  size_t lo = SIZE_MAX, hi = 0, lo2 = SIZE_MAX, hi2 = 0;
  if (h->count >= 2) {
    seen_range_locked(task, 0, &lo, &hi);
    seen_range_locked(task, 1, &lo2, &hi2);
  }
  if (hi && hi2) {
    size_t x = crossover_locked(task, 0, 1, lo2 < lo ? lo2 : lo, hi2 > hi ? hi2 : hi);
    if (x == SIZE_MAX)
      kg_text_put(&j, "null");
    else
      kg_text_put(&j, "%zu", x);
  } else {
    kg_text_put(&j, "null");
  }
  pthread_mutex_unlock(&task->lock);
  kg_text_put(&j, "}");
  if (needed)
    *needed = j.len;
  if (j.len >= bytes) {
    if (buf && bytes)
      buf[0] = '\0';
    herr(KILN_ERROR_INVALID_ARGUMENT,
         "buf holds %zu bytes; the statistics need %zu (and a terminator)", bytes, j.len);
    hsuggest("pass a buffer of at least *needed + 1 bytes");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  return KILN_SUCCESS;
}
