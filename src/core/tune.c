/* SPDX-License-Identifier: MIT */
/* Launch configurations remembered and autotuned (tune.h). A source kernel's table holds
 * one entry per range class (dimensions, and the power of two below each global size):
 * the heuristic's choice, one read from the blob store (namespace "launch-config"), or
 * autotuning's, which takes candidates in turn on successive real launches (never a
 * rerun: kernels may accumulate) and keeps the fastest. Invariants: entries never leave
 * the table before the kernel does, so a launch's measurement may point at its entry;
 * the table's lock guards the entries; store I/O happens on launching threads only,
 * never in kiln__tune_record (a completion, maybe on a backend's thread). */
#include "core/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcache/kcache.h"

#define MAX_CLASSES 8
#define MAX_CANDIDATES 6
#define DEFAULT_SAMPLES 3u
#define MAX_SAMPLES KILN__ENV_AUTOTUNE_SAMPLES_MAX
#define NS "launch-config"

enum { ST_HEURISTIC, ST_STORED, ST_TUNING, ST_TUNED };
enum { STORED_HEURISTIC = 1, STORED_AUTOTUNED = 2 };

typedef struct kiln__tune_entry {
  struct kiln__tune *table;
  unsigned dims;
  unsigned bucket[3]; /* floor(log2(global[d])) */
  int state;
  size_t local[3]; /* the choice (the heuristic's while tuning) */
  size_t heur[3];
  int stored_origin;  /* STORED: what the store said */
  uint64_t stored_ns; /* and its best time (autotuned; 0: none) */
  bool keyed;         /* the store can hold it (the program has a cache key) */
  bool need_store;    /* a choice not yet written (launching threads write it) */
  bool logged;        /* the tuning result was logged */
  uint32_t ncand, next, samples;
  size_t cand[MAX_CANDIDATES][3];
  uint32_t issued[MAX_CANDIDATES], done[MAX_CANDIDATES];
  uint64_t best_ns[MAX_CANDIDATES]; /* UINT64_MAX: no successful sample */
} tune_entry;

typedef struct kiln__tune {
  pthread_mutex_t lock;
  uint32_t count;
  tune_entry e[MAX_CLASSES];
} tune_table;

/* The stored blob: native byte order (the store is per user and machine). */
typedef struct stored_config {
  char magic[8]; /* "KILNLC01" */
  uint32_t origin, dims;
  uint64_t local[3];
  uint64_t best_ns;
  uint32_t candidates, samples;
} stored_config;
static const char stored_magic[8] = {'K', 'I', 'L', 'N', 'L', 'C', '0', '1'};

static unsigned log2_floor(size_t v) {
  unsigned b = 0;
  while (v > 1) {
    v >>= 1;
    b++;
  }
  return b;
}

static bool autotune_on(void) {
  return kiln__env_word("KILN_AUTOTUNE", kiln__env_autotune_words, 0) % 2 == 1; /* 1, on */
}

static uint32_t samples_wanted(void) {
  return (uint32_t)kiln__env_uint("KILN_AUTOTUNE_SAMPLES", 1, MAX_SAMPLES, DEFAULT_SAMPLES);
}

static bool program_keyed(const kiln__kernel_obj *k) {
  if (!k->program)
    return false;
  for (size_t i = 0; i < sizeof k->program->cache_key; i++)
    if (k->program->cache_key[i])
      return true;
  return false;
}

/* The blob's key: what the choice depends on, as text. */
static int key_text(const kiln__kernel_obj *k, const tune_entry *e, char *out, size_t n) {
  const kiln_device_props *p = &k->h.ctx->device->props;
  char hex[65];
  for (size_t i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", k->program->cache_key[i]);
  return snprintf(out, n, "kiln %s|%s|%s|%s|%u|program %s|kernel %s|%u-D|%u,%u,%u",
                  kiln_version_string(), k->h.ops->name, p->name, p->arch, p->driver_version, hex,
                  k->name, e->dims, e->bucket[0], e->bucket[1], e->bucket[2]);
}

static bool blob_key(const kiln__kernel_obj *k, const tune_entry *e, kiln__kcache_key *key) {
  char text[1024];
  int n = key_text(k, e, text, sizeof text);
  kiln__sha256 h;
  if (n < 0 || !kiln__sha256_begin(&h))
    return false;
  /* as kiln_cache_put(NS, text) keys it: a program may read the entry that way */
  kiln__sha256_field(&h, "kiln blob namespace", NS, strlen(NS));
  kiln__sha256_field(&h, "key", text, (size_t)n);
  kiln__sha256_end(&h, key->b);
  return true;
}

/* The range of class e with local size `local` (the class's smallest member). */
static kiln_range class_range(const tune_entry *e, const size_t local[3]) {
  kiln_range r = kiln_range_1d(1);
  r.dims = e->dims;
  for (unsigned d = 0; d < 3; d++) {
    r.global[d] = d < e->dims ? (size_t)1 << e->bucket[d] : 1;
    r.local[d] = d < e->dims ? local[d] : 0;
  }
  return r;
}

/* Whether local fits the kernel and device, for every range of the class (NULL) or why
 * not, in words. Sets no error detail that outlives it (the launch succeeds). */
static const char *local_unfit(const kiln__kernel_obj *k, const tune_entry *e,
                               const size_t local[3], char *why, size_t why_bytes) {
  const kiln_device_props *p = &k->h.ctx->device->props;
  size_t total = 1;
  for (unsigned d = 0; d < 3; d++) {
    size_t l = local[d];
    if (l == 0 || (d >= e->dims && l != 1)) {
      snprintf(why, why_bytes, "local size %zu in dimension %u", l, d);
      return why;
    }
    if (p->max_work_item_sizes[d] && l > p->max_work_item_sizes[d]) {
      snprintf(why, why_bytes, "local size %zu in dimension %u exceeds the device's %zu", l, d,
               p->max_work_item_sizes[d]);
      return why;
    }
    if (l > ((size_t)1 << 20) || total > ((size_t)1 << 20)) {
      snprintf(why, why_bytes, "local size %zu in dimension %u is not a work-group size", l, d);
      return why;
    }
    total *= l;
  }
  size_t limit = p->max_work_group_size;
  if (k->max_group_size && (!limit || k->max_group_size < limit))
    limit = k->max_group_size;
  if (limit && total > limit) {
    snprintf(why, why_bytes, "%zu work-items per group exceed the kernel's limit %zu", total,
             limit);
    return why;
  }
  if (k->h.ops->launch_check) {
    kiln_range r = class_range(e, local);
    kiln_error_info saved = *kiln_last_error();
    kiln_status st = k->h.ops->launch_check(&k->view, &r);
    if (st != KILN_SUCCESS) {
      kiln__strlcpy(why, kiln_last_error()->message, why_bytes);
      *(kiln_error_info *)kiln_last_error() = saved;
      return why;
    }
  }
  return NULL;
}

static void fmt_local(char *out, size_t n, unsigned dims, const size_t l[3]) {
  if (dims == 1)
    snprintf(out, n, "%zu", l[0]);
  else if (dims == 2)
    snprintf(out, n, "%zux%zu", l[0], l[1]);
  else
    snprintf(out, n, "%zux%zux%zu", l[0], l[1], l[2]);
}

/* Read the store for e (the kernel's lock held: first launch of the class only). */
static void load_stored(kiln__kernel_obj *k, tune_entry *e) {
  kiln__kcache_key key;
  if (!e->keyed || !blob_key(k, e, &key))
    return;
  void *data = NULL;
  size_t bytes = 0;
  if (kiln__kcache_lookup(NS, &key, &data, &bytes) != KILN_SUCCESS || !data)
    return;
  stored_config sc;
  char why[200] = "";
  if (bytes != sizeof sc) {
    snprintf(why, sizeof why, "%zu bytes, expected %zu", bytes, sizeof sc);
  } else {
    memcpy(&sc, data, sizeof sc);
    size_t local[3] = {(size_t)sc.local[0], (size_t)sc.local[1], (size_t)sc.local[2]};
    if (memcmp(sc.magic, stored_magic, sizeof stored_magic) != 0)
      snprintf(why, sizeof why, "not a kiln launch configuration (bad magic)");
    else if (sc.origin != STORED_HEURISTIC && sc.origin != STORED_AUTOTUNED)
      snprintf(why, sizeof why, "unknown origin %u", sc.origin);
    else if (sc.dims != e->dims)
      snprintf(why, sizeof why, "%u dimensions for a %u-D range", sc.dims, e->dims);
    else if (!local_unfit(k, e, local, why, sizeof why)) {
      memcpy(e->local, local, sizeof local);
      e->state = ST_STORED;
      e->stored_origin = (int)sc.origin;
      e->stored_ns = sc.best_ns;
    }
  }
  kiln__free(data, bytes);
  if (e->state != ST_STORED)
    kiln__log(KILN_LOG_WARN,
              "kernel '%s' on %s: ignoring the launch configuration stored in the compile "
              "cache (namespace " NS "): %s; kiln chooses again",
              k->name, k->h.ops->name, why);
}

static void store_choice(kiln__kernel_obj *k, tune_entry *e) {
  e->need_store = false;
  kiln__kcache_key key;
  if (!e->keyed || !blob_key(k, e, &key))
    return;
  stored_config sc;
  memset(&sc, 0, sizeof sc);
  memcpy(sc.magic, stored_magic, sizeof sc.magic);
  sc.origin = e->state == ST_TUNED ? STORED_AUTOTUNED : STORED_HEURISTIC;
  sc.dims = e->dims;
  for (unsigned d = 0; d < 3; d++)
    sc.local[d] = e->local[d];
  if (e->state == ST_TUNED) {
    sc.best_ns = UINT64_MAX;
    for (uint32_t c = 0; c < e->ncand; c++)
      if (e->best_ns[c] < sc.best_ns)
        sc.best_ns = e->best_ns[c];
    sc.candidates = e->ncand;
    sc.samples = e->samples;
  }
  kiln_error_info saved = *kiln_last_error();
  if (kiln__kcache_put(NS, &key, &sc, sizeof sc) != KILN_SUCCESS)
    kiln__log(KILN_LOG_WARN, "kernel '%s': the launch configuration was not stored: %s", k->name,
              kiln_last_error()->message);
  *(kiln_error_info *)kiln_last_error() = saved;
}

/* Candidates around the heuristic's h: each dimension's size halved, doubled, and a
 * quarter and four times in dimension 0, as far as they fit every range of the class. */
static void make_candidates(kiln__kernel_obj *k, tune_entry *e) {
  static const int scale[][3] = {{0, 0, 0},  {-1, 0, 0}, {1, 0, 0}, {-2, 0, 0},
                                 {2, 0, 0},  {0, -1, 0}, {0, 1, 0}, {1, -1, 0},
                                 {-1, 1, 0}, {0, 0, -1}, {0, 0, 1}};
  char why[200];
  e->ncand = 0;
  for (size_t i = 0; i < sizeof scale / sizeof scale[0] && e->ncand < MAX_CANDIDATES; i++) {
    size_t c[3];
    bool ok = true;
    for (unsigned d = 0; d < 3 && ok; d++) {
      int s = scale[i][d];
      if (s && d >= e->dims)
        ok = false;
      c[d] = s >= 0 ? e->heur[d] << s : e->heur[d] >> -s;
      if (c[d] == 0 || (d < e->dims && c[d] > ((size_t)1 << e->bucket[d]) && s > 0))
        ok = false; /* never larger than the class's smallest range */
    }
    if (ok && !local_unfit(k, e, c, why, sizeof why)) {
      memcpy(e->cand[e->ncand], c, sizeof c);
      e->best_ns[e->ncand] = UINT64_MAX;
      e->ncand++;
    }
  }
  if (e->ncand < 2)
    e->state = ST_HEURISTIC; /* nothing to choose from */
}

static tune_table *table_of(kiln__kernel_obj *k) {
  tune_table *t = atomic_load_explicit(&k->tune, memory_order_acquire);
  if (t)
    return t;
  t = kiln__calloc(1, sizeof *t);
  if (!t)
    return NULL;
  pthread_mutex_init(&t->lock, NULL);
  tune_table *none = NULL;
  /* acq_rel: publishes the initialised table; pairs with the acquire load above */
  if (!atomic_compare_exchange_strong_explicit(&k->tune, &none, t, memory_order_acq_rel,
                                               memory_order_acquire)) {
    pthread_mutex_destroy(&t->lock);
    kiln__free(t, sizeof *t);
    return none;
  }
  return t;
}

/* The entry of r's class (the table's lock held), made at the class's first use. */
static tune_entry *entry_of(kiln__kernel_obj *k, tune_table *t, const kiln_range *r) {
  unsigned b[3] = {0, 0, 0};
  for (unsigned d = 0; d < r->dims; d++)
    b[d] = log2_floor(r->global[d]);
  for (uint32_t i = 0; i < t->count; i++)
    if (t->e[i].dims == r->dims && !memcmp(t->e[i].bucket, b, sizeof b))
      return &t->e[i];
  if (t->count == MAX_CLASSES)
    return NULL;
  tune_entry *e = &t->e[t->count];
  memset(e, 0, sizeof *e);
  e->table = t;
  e->dims = r->dims;
  memcpy(e->bucket, b, sizeof b);
  char why[256];
  kiln_range cr = class_range(e, (const size_t[3]){0, 0, 0});
  k->h.ops->launch_config(&k->view, &cr, e->heur, why, sizeof why);
  memcpy(e->local, e->heur, sizeof e->local);
  e->keyed = program_keyed(k);
  e->state = ST_HEURISTIC;
  load_stored(k, e);
  if (e->state == ST_HEURISTIC) {
    bool has_local_args = false;
    for (uint32_t i = 0; i < k->param_count; i++)
      has_local_args = has_local_args || k->params[i].kind == KILN_PARAM_LOCAL;
    if (autotune_on() && !has_local_args) {
      e->state = ST_TUNING;
      e->samples = samples_wanted();
      make_candidates(k, e);
    }
  }
  t->count++;
  return e;
}

/* Tuning done (all samples in): choose the fastest (lock held). */
static void finish_locked(tune_entry *e) {
  uint32_t best = UINT32_MAX;
  for (uint32_t c = 0; c < e->ncand; c++)
    if (e->best_ns[c] != UINT64_MAX && (best == UINT32_MAX || e->best_ns[c] < e->best_ns[best]))
      best = c;
  if (best == UINT32_MAX) { /* every candidate's launches failed: keep the heuristic */
    e->state = ST_HEURISTIC;
    return;
  }
  memcpy(e->local, e->cand[best], sizeof e->local);
  e->state = ST_TUNED;
  e->need_store = true;
}

static void timings(const tune_entry *e, char *out, size_t n) {
  size_t at = 0;
  out[0] = '\0';
  for (uint32_t c = 0; c < e->ncand && at + 1 < n; c++) {
    char l[64];
    fmt_local(l, sizeof l, e->dims, e->cand[c]);
    int w = e->best_ns[c] == UINT64_MAX
                ? snprintf(out + at, n - at, "%s%s failed", c ? ", " : "", l)
                : snprintf(out + at, n - at, "%s%s %.3f ms", c ? ", " : "", l,
                           (double)e->best_ns[c] / 1e6);
    if (w < 0)
      break;
    at += (size_t)w;
  }
}

/* Work a launching thread does for e (lock held): store a new choice, log a result. */
static void settle_locked(kiln__kernel_obj *k, tune_entry *e) {
  if (e->state == ST_TUNED && !e->logged && kiln__log_enabled(KILN_LOG_DEBUG)) {
    char t[400], l[64];
    timings(e, t, sizeof t);
    fmt_local(l, sizeof l, e->dims, e->local);
    kiln__log(KILN_LOG_DEBUG,
              "kernel '%s' on %s: autotuned the local size for %u-D ranges of 2^%u.. "
              "work-items: %s (best of %u launches each: %s)",
              k->name, k->h.ops->name, e->dims, e->bucket[0], l, e->samples, t);
  }
  e->logged = e->logged || e->state == ST_TUNED;
  if (e->need_store)
    store_choice(k, e);
}

bool kiln__tune_pick(kiln__kernel_obj *k, const kiln_range *r, kiln_range *eff,
                     struct kiln__tune_entry **timed, uint32_t *cand) {
  *timed = NULL;
  *cand = 0;
  if (!k->source || !k->h.ops->launch_config)
    return false;
  tune_table *t = table_of(k);
  if (!t)
    return false;
  pthread_mutex_lock(&t->lock);
  tune_entry *e = entry_of(k, t, r);
  bool set = false;
  if (e) {
    settle_locked(k, e);
    const size_t *use = NULL;
    if (e->state == ST_STORED || e->state == ST_TUNED) {
      use = e->local;
    } else if (e->state == ST_TUNING) {
      /* the next candidate still short of samples; none: wait on the heuristic */
      for (uint32_t i = 0; i < e->ncand && !use; i++) {
        uint32_t c = (e->next + i) % e->ncand;
        if (e->issued[c] < e->samples) {
          e->issued[c]++;
          e->next = (c + 1) % e->ncand;
          use = e->cand[c];
          *timed = e;
          *cand = c;
        }
      }
    }
    if (use) {
      *eff = *r;
      for (unsigned d = 0; d < r->dims; d++)
        eff->local[d] = use[d];
      set = true;
    }
  }
  pthread_mutex_unlock(&t->lock);
  return set;
}

void kiln__tune_record(struct kiln__tune_entry *e, uint32_t cand, uint64_t ns, kiln_status status) {
  pthread_mutex_lock(&e->table->lock);
  if (e->state == ST_TUNING && cand < e->ncand) {
    e->done[cand]++;
    if (status == KILN_SUCCESS && ns < e->best_ns[cand])
      e->best_ns[cand] = ns;
    bool all = true;
    for (uint32_t c = 0; c < e->ncand; c++)
      all = all && e->done[c] >= e->samples;
    if (all)
      finish_locked(e);
  }
  pthread_mutex_unlock(&e->table->lock);
}

bool kiln__tune_describe(kiln__kernel_obj *k, const kiln_range *r, size_t local[3],
                         kiln_launch_origin *origin, char *why, size_t why_bytes) {
  if (!k->source || !k->h.ops->launch_config)
    return false;
  tune_table *t = table_of(k);
  if (!t)
    return false;
  pthread_mutex_lock(&t->lock);
  tune_entry *e = entry_of(k, t, r);
  bool known = e != NULL;
  if (e) {
    settle_locked(k, e);
    char l[64], tm[200];
    fmt_local(l, sizeof l, e->dims, e->local);
    for (unsigned d = 0; d < 3; d++)
      local[d] = d < r->dims ? e->local[d] : 1;
    switch (e->state) {
    case ST_STORED:
      *origin = KILN_LAUNCH_ORIGIN_STORED;
      if (e->stored_origin == STORED_AUTOTUNED)
        snprintf(why, why_bytes,
                 "stored in the compile cache (" NS ") by an earlier process that autotuned it "
                 "(best %.3f ms) for %u-D ranges of 2^%u.. work-items",
                 (double)e->stored_ns / 1e6, e->dims, e->bucket[0]);
      else
        snprintf(why, why_bytes,
                 "stored in the compile cache (" NS ") by an earlier process, from kiln's "
                 "heuristic, for %u-D ranges of 2^%u.. work-items",
                 e->dims, e->bucket[0]);
      break;
    case ST_TUNED:
      *origin = KILN_LAUNCH_ORIGIN_AUTOTUNED;
      timings(e, tm, sizeof tm);
      snprintf(why, why_bytes, "autotuned (KILN_AUTOTUNE): %s was fastest of %s", l, tm);
      break;
    case ST_TUNING:
      *origin = KILN_LAUNCH_ORIGIN_TUNING;
      snprintf(why, why_bytes,
               "autotuning (KILN_AUTOTUNE): launches try %u candidates %u times each in turn; "
               "this is the heuristic's until then",
               e->ncand, e->samples);
      break;
    default:
      known = false; /* the backend's own words */
      break;
    }
  }
  pthread_mutex_unlock(&t->lock);
  return known;
}

void kiln__tune_free(kiln__kernel_obj *k) {
  tune_table *t = atomic_exchange(&k->tune, NULL);
  if (!t)
    return;
  for (uint32_t i = 0; i < t->count; i++)
    if (t->e[i].need_store)
      store_choice(k, &t->e[i]);
  pthread_mutex_destroy(&t->lock);
  kiln__free(t, sizeof *t);
}
