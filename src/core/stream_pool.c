/* SPDX-License-Identifier: MIT */
/* Stream pools and stream sets (include/kiln/stream_pool.h): handles in the context's
 * slabs (a destroyed pool is refused, as every handle), each owning an array of
 * streams made for it (owner POOL or SET: kiln_stream_destroy refuses them) and, for a
 * set, the device buffers kiln_pipeline_run keeps between runs. The hot path takes no
 * lock: round-robin is a relaxed load and store of the cursor, least-pending reads
 * each stream's submitted/completed/held, acquire and release are one atomic add or
 * subtraction on the stream's holder count. Any thread; destroying a pool while other
 * threads use it is the caller's error. Busy time is kept by op.c (stats_on). */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

typedef struct kiln__spool_obj {
  kiln__handle_obj h;
  kiln_stream_policy policy;
  uint32_t count;
  int kind; /* KILN__OWNER_POOL or _SET */
  uint64_t created_ns;
  char label[48];
  /* count of them used. The array lives as long as the slot (slab keep + slot life;
   * freed with the context, grown when a later group in the slot needs more): a call
   * whose handle check came just before a destroy on another thread reads the torn-down
   * streams' slots (refusable handles) instead of a freed array. */
  kiln__stream_obj **streams;
  size_t streams_cap;
  /* A set's pipeline buffers, kept between kiln_pipeline_run calls (pipeline.c): taken
   * by one run at a time (scratch_busy), destroyed with the set. */
  _Atomic int scratch_busy;
  unsigned scratch_depth;
  size_t scratch_in_bytes, scratch_out_bytes;
  kiln_buffer scratch_in[KILN__PIPELINE_MAX_DEPTH], scratch_out[KILN__PIPELINE_MAX_DEPTH];
  /* Written by every pick: a line of its own, apart from what picks read above. */
  _Alignas(64) _Atomic uint64_t next; /* round-robin cursor (and least-pending's tie start) */
  char pad[56];
} kiln__spool_obj;

struct kiln_stream_pool_s {
  kiln__spool_obj o;
};
struct kiln_stream_set_s {
  kiln__spool_obj o;
};

static void slot_fini(void *elem) {
  kiln__spool_obj *g = elem;
  if (g->streams)
    kiln__free(g->streams, sizeof *g->streams * g->streams_cap);
}

void kiln__stream_groups_init(kiln__context_obj *ctx) {
  kiln__slab_init(&ctx->stream_pools, sizeof(kiln__spool_obj), SIZE_MAX, KILN__TAG_STREAM_POOL, 64);
  kiln__slab_init(&ctx->stream_sets, sizeof(kiln__spool_obj), SIZE_MAX, KILN__TAG_STREAM_SET, 64);
  size_t keep = offsetof(kiln__spool_obj, streams), keep_bytes = 2 * sizeof(size_t);
  _Static_assert(offsetof(kiln__spool_obj, streams_cap) == offsetof(kiln__spool_obj, streams) + 8,
                 "streams and streams_cap are one kept range");
  kiln__slab_keep(&ctx->stream_pools, keep, keep_bytes);
  kiln__slab_keep(&ctx->stream_sets, keep, keep_bytes);
  kiln__slab_set_slot_life(&ctx->stream_pools, NULL, slot_fini);
  kiln__slab_set_slot_life(&ctx->stream_sets, NULL, slot_fini);
}

static void scratch_drop(kiln__spool_obj *g) {
  for (unsigned i = 0; i < g->scratch_depth; i++) {
    kiln_buffer_destroy(g->scratch_in[i]);
    kiln_buffer_destroy(g->scratch_out[i]);
    g->scratch_in[i] = g->scratch_out[i] = NULL;
  }
  g->scratch_depth = 0;
}

bool kiln__set_scratch_take(kiln_stream_set set, unsigned depth, size_t in_bytes, size_t out_bytes,
                            kiln_buffer *in, kiln_buffer *out) {
  kiln__spool_obj *g = &set->o;
  if (atomic_exchange(&g->scratch_busy, 1))
    return false; /* another run has them: the caller makes its own */
  if (g->scratch_depth == depth && g->scratch_in_bytes == in_bytes &&
      g->scratch_out_bytes == out_bytes) {
    memcpy(in, g->scratch_in, sizeof *in * depth);
    memcpy(out, g->scratch_out, sizeof *out * depth);
    g->scratch_depth = 0; /* the run holds them now */
    return true;
  }
  scratch_drop(g); /* other sizes: the run makes new ones and gives them back */
  return true;
}

void kiln__set_scratch_give(kiln_stream_set set, unsigned depth, size_t in_bytes, size_t out_bytes,
                            const kiln_buffer *in, const kiln_buffer *out) {
  kiln__spool_obj *g = &set->o;
  for (unsigned i = 0; i < depth; i++) {
    g->scratch_in[i] = in[i];
    g->scratch_out[i] = out[i];
  }
  g->scratch_depth = depth;
  g->scratch_in_bytes = in_bytes;
  g->scratch_out_bytes = out_bytes;
  atomic_store(&g->scratch_busy, 0);
}

/* Destroy a group: its streams (idle first), its array, its slot. */
static void group_free(kiln__spool_obj *g, bool streams_too) {
  kiln__context_obj *ctx = g->h.ctx;
  if (streams_too) /* explicit destroy: its buffers too (at context teardown the
                      context's own pass takes them) */
    scratch_drop(g);
  g->scratch_depth = 0;
  if (streams_too)
    for (uint32_t i = 0; i < g->count; i++)
      if (g->streams[i])
        kiln__stream_teardown(g->streams[i]);
  if (!streams_too) /* context teardown: the streams stay alive for the context's pass */
    for (uint32_t i = 0; i < g->count; i++)
      if (g->streams[i])
        g->streams[i]->pool = NULL;
  /* The array stays with the slot (slot_fini frees it): a racing call may read it. */
  kiln__slab_release(g->kind == KILN__OWNER_POOL ? &ctx->stream_pools : &ctx->stream_sets, g);
}

static void teardown_group(void *elem, void *user) {
  (void)user;
  group_free(elem, false);
}

void kiln__stream_groups_teardown(kiln__context_obj *ctx) {
  kiln__slab_each_alive(&ctx->stream_pools, teardown_group, NULL);
  kiln__slab_each_alive(&ctx->stream_sets, teardown_group, NULL);
}

static const char *kind_name(int kind) {
  return kind == KILN__OWNER_POOL ? "stream pool" : "stream set";
}

static kiln_status group_create(kiln__context_obj *ctx, int kind, size_t count, int priority,
                                kiln_stream_policy policy, const char *label,
                                kiln__spool_obj **out) {
  const char *what = kind == KILN__OWNER_POOL ? "count" : "depth";
  if (count == 0 || count > KILN_STREAM_POOL_MAX) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "%s is %zu: a %s holds 1 to %u streams", what, count,
                kind_name(kind), KILN_STREAM_POOL_MAX);
    if (count == 0 && kind == KILN__OWNER_POOL)
      kiln__error_suggest("ask for at least one stream; kiln_stream_pool_default_count() gives "
                          "the device's default");
    else
      kiln__error_suggest("ask for 1 to %u streams", KILN_STREAM_POOL_MAX);
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  void *e;
  kiln__slab *slab = kind == KILN__OWNER_POOL ? &ctx->stream_pools : &ctx->stream_sets;
  kiln_status st = kiln__slab_alloc(slab, &e);
  if (st != KILN_SUCCESS)
    return st;
  kiln__spool_obj *g = e;
  g->h.ops = ctx->h.ops;
  g->h.generation = ctx->h.generation;
  g->h.ctx = ctx;
  g->policy = policy;
  g->kind = kind;
  g->count = 0;
  g->scratch_depth = 0;
  atomic_store(&g->scratch_busy, 0);
  atomic_store(&g->next, 0);
  kiln__strlcpy(g->label, label ? label : (kind == KILN__OWNER_POOL ? "pool" : "set"),
                sizeof g->label);
  if (g->streams_cap < count) { /* the slot's array (kept) is too small, or none yet */
    kiln__stream_obj **a = kiln__calloc(count, sizeof *a);
    if (!a) {
      kiln__slab_release(slab, g);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory making a %s of %zu",
                         kind_name(kind), count);
    }
    if (g->streams) /* a reused slot: stale calls on it are best effort (architecture.md) */
      kiln__free(g->streams, sizeof *g->streams * g->streams_cap);
    g->streams = a;
    g->streams_cap = count;
  } else {
    memset(g->streams, 0, sizeof *g->streams * count);
  }
  g->count = (uint32_t)count;
  for (uint32_t i = 0; i < g->count; i++) {
    char name[64];
    snprintf(name, sizeof name, "%.40s[%u]", g->label, i);
    st = kiln__stream_new(ctx, priority, name, kind, &g->streams[i]);
    if (st != KILN_SUCCESS) {
      group_free(g, true);
      return st;
    }
    kiln__stream_obj *s = g->streams[i];
    s->pool = g;
    s->pool_index = i;
    s->stats_ops_base = atomic_load(&s->ops_counted);
    s->stats_on = 1;
  }
  g->created_ns = kiln__now_ns();
  atomic_store(&g->h.tag, kind == KILN__OWNER_POOL ? KILN__TAG_STREAM_POOL : KILN__TAG_STREAM_SET);
  *out = g;
  return KILN_SUCCESS;
}

/* Pending work plus holders, without a lock (a snapshot; exactness is not needed). */
static uint64_t load_of(kiln__stream_obj *s) {
  uint64_t done = atomic_load_explicit(&s->completed, memory_order_relaxed);
  uint64_t sub = atomic_load_explicit(&s->submitted, memory_order_relaxed);
  int64_t held = atomic_load_explicit(&s->held, memory_order_relaxed);
  return (sub > done ? sub - done : 0) + (held > 0 ? (uint64_t)held : 0);
}

/* Round-robin's cursor is a relaxed load and store, not an atomic add: one thread gets
 * exact round-robin; threads picking at the same moment may share a turn (holding is
 * not exclusive, so that only evens the spread less), and the pick stays a plain load
 * and store on a line the pickers share. `picked` is counted the same way (a
 * statistic, approximate under contention). */
static kiln__stream_obj *choose(kiln__spool_obj *g) {
  /* The cursor stays in [0, count): no division on the hot path. */
  uint32_t n = g->count;
  uint32_t best = (uint32_t)atomic_load_explicit(&g->next, memory_order_relaxed);
  atomic_store_explicit(&g->next, best + 1 < n ? best + 1 : 0, memory_order_relaxed);
  if (g->policy == KILN_STREAM_LEAST_PENDING) {
    uint64_t best_load = load_of(g->streams[best]);
    for (uint32_t k = 1, i = best; k < n && best_load; k++) {
      i = i + 1 < n ? i + 1 : 0;
      uint64_t l = load_of(g->streams[i]);
      if (l < best_load) {
        best_load = l;
        best = i;
      }
    }
  }
  kiln__stream_obj *s = g->streams[best];
  atomic_store_explicit(&s->picked, atomic_load_explicit(&s->picked, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  return s;
}

/* The hot path's handle check: alive, of its type, of the device's current generation
 * and the device not lost — what kiln__check_handle checks, without its call and
 * without recording the API name, which only a refusal needs (the slow path then
 * redoes the check with the full message). */
static inline bool fast_ok(const void *handle, uint32_t tag) {
  const kiln__handle_obj *h = handle;
  if (!h || atomic_load(&h->tag) != tag)
    return false;
  const kiln__device_obj *dev = h->ctx->device;
  return h->generation == atomic_load(&dev->generation) && !atomic_load(&dev->lost);
}

/* ------------------------------------------------------------------ pools */
kiln_status kiln_stream_pool_default_count(kiln_device device, size_t *count) {
  KILN__API_ENTER();
  if (!count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count (the out-parameter) is NULL");
  *count = 0;
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "device is NULL");
  const kiln_device_props *p = &device->props;
  size_t n;
  switch (p->backend) {
  case KILN_BACKEND_CUDA:
    n = (size_t)p->copy_engines + 1;
    if (n < 2)
      n = 2;
    break;
  case KILN_BACKEND_OPENCL:
    n = 2;
    break;
  default: /* cpu, mock: one worker thread per stream, one per core */
    n = p->compute_units ? p->compute_units : 1;
    break;
  }
  *count = n > KILN_STREAM_POOL_MAX ? KILN_STREAM_POOL_MAX : n;
  return KILN_SUCCESS;
}

static kiln_status check_pool(kiln_stream_pool pool) {
  return kiln__check_handle(pool, KILN__TAG_STREAM_POOL, "pool");
}

kiln_status kiln_stream_pool_create(kiln_context context, size_t count,
                                    const kiln_stream_pool_desc *desc, kiln_stream_pool *pool) {
  KILN__API_ENTER();
  if (!pool)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pool (the out-parameter) is NULL");
  *pool = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (desc && desc->struct_size < sizeof(kiln_stream_pool_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_STREAM_POOL_DESC_INIT",
                       desc->struct_size, sizeof(kiln_stream_pool_desc));
  kiln_stream_policy policy = desc ? desc->policy : KILN_STREAM_ROUND_ROBIN;
  if (policy != KILN_STREAM_ROUND_ROBIN && policy != KILN_STREAM_LEAST_PENDING) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->policy is %d: not a kiln_stream_policy",
                (int)policy);
    kiln__error_suggest("use KILN_STREAM_ROUND_ROBIN or KILN_STREAM_LEAST_PENDING");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  kiln__spool_obj *g;
  st = group_create(context, KILN__OWNER_POOL, count, desc ? desc->priority : 0, policy,
                    desc ? desc->label : NULL, &g);
  if (st == KILN_SUCCESS)
    *pool = (kiln_stream_pool)(void *)g;
  return st;
}

kiln_status kiln_stream_pool_destroy(kiln_stream_pool pool) {
  KILN__API_ENTER();
  if (!pool)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(pool, KILN__TAG_STREAM_POOL, "pool");
  if (st == KILN_SUCCESS)
    st = kiln__claim_destroy(pool, KILN__TAG_STREAM_POOL, "pool");
  if (st != KILN_SUCCESS)
    return st;
  group_free(&pool->o, true);
  return KILN_SUCCESS;
}

kiln_status kiln_stream_pool_acquire(kiln_stream_pool pool, kiln_stream *stream) {
  if (!stream || !fast_ok(pool, KILN__TAG_STREAM_POOL)) {
    KILN__API_ENTER();
    if (!stream)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
    *stream = NULL;
    kiln_status st = check_pool(pool);
    if (st != KILN_SUCCESS)
      return st;
  }
  kiln__stream_obj *s = choose(&pool->o);
  atomic_fetch_add_explicit(&s->held, 1, memory_order_relaxed);
  *stream = s;
  return KILN_SUCCESS;
}

/* Release is bookkeeping: like destroy it is allowed once the device is lost (a holder
 * must be able to give its stream back), so only liveness and type are checked. */
kiln_status kiln_stream_pool_release(kiln_stream_pool pool, kiln_stream stream) {
  if (pool && atomic_load(&pool->o.h.tag) == KILN__TAG_STREAM_POOL && stream &&
      atomic_load(&stream->h.tag) == KILN__TAG_STREAM && stream->pool == &pool->o) {
    /* One atomic subtraction; a release of a stream not held is undone and refused. */
    if (atomic_fetch_sub_explicit(&stream->held, 1, memory_order_relaxed) > 0)
      return KILN_SUCCESS;
    atomic_fetch_add_explicit(&stream->held, 1, memory_order_relaxed);
  }
  KILN__API_ENTER();
  kiln_status st = kiln__check_alive(pool, KILN__TAG_STREAM_POOL, "pool");
  if (st != KILN_SUCCESS)
    return st;
  st = kiln__check_alive(stream, KILN__TAG_STREAM, "stream");
  if (st != KILN_SUCCESS)
    return st;
  char name[KILN__STREAM_NAME_BYTES], q[KILN__QUOTE_BYTES];
  kiln__spool_obj *g = &pool->o;
  if (stream->pool != g) {
    if (stream->pool)
      kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                  "%s belongs to the %s %s, not to pool %s: it was not acquired here",
                  kiln__stream_name(name, stream), kind_name(stream->pool->kind),
                  stream->pool->label, kiln__quote(q, g->label, strlen(g->label)));
    else
      kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                  "%s is in no stream pool: pool %s did not hand it out",
                  kiln__stream_name(name, stream), kiln__quote(q, g->label, strlen(g->label)));
    kiln__error_suggest("release a stream to the pool kiln_stream_pool_acquire took it from");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  kiln__error(KILN_ERROR_INVALID_STATE,
              "%s of pool %s is not held: it was released more often than acquired "
              "(released twice?)",
              kiln__stream_name(name, stream), kiln__quote(q, g->label, strlen(g->label)));
  kiln__error_suggest("release each acquired stream once, and only after acquiring it");
  return KILN_ERROR_INVALID_STATE;
}

kiln_status kiln_stream_pool_pick(kiln_stream_pool pool, kiln_stream *stream) {
  KILN__API_ENTER();
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
  *stream = NULL;
  kiln_status st = check_pool(pool);
  if (st != KILN_SUCCESS)
    return st;
  *stream = choose(&pool->o);
  return KILN_SUCCESS;
}

/* Tests (core.h): a destroy placed between a call's handle check and its reads. */
static void group_checked(kiln__spool_obj *g) {
  void (*hook)(void *) = atomic_load_explicit(&kiln__test_hooks_now.group_checked,
                                              memory_order_relaxed); /* set before the call */
  if (hook)
    hook(g);
}

static kiln_status group_get(kiln__spool_obj *g, size_t index, kiln_stream *stream) {
  group_checked(g);
  if (index >= g->count) {
    char q[KILN__QUOTE_BYTES];
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "index %zu is past the %u streams of %s %s", index,
                g->count, kind_name(g->kind), kiln__quote(q, g->label, strlen(g->label)));
    kiln__error_suggest("use an index below the size (kiln_stream_pool_size)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  *stream = g->streams[index];
  return KILN_SUCCESS;
}

kiln_status kiln_stream_pool_get(kiln_stream_pool pool, size_t index, kiln_stream *stream) {
  KILN__API_ENTER();
  if (!stream)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stream (the out-parameter) is NULL");
  *stream = NULL;
  kiln_status st = check_pool(pool);
  if (st != KILN_SUCCESS)
    return st;
  return group_get(&pool->o, index, stream);
}

kiln_status kiln_stream_pool_size(kiln_stream_pool pool, size_t *count) {
  KILN__API_ENTER();
  if (!count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count (the out-parameter) is NULL");
  *count = 0;
  kiln_status st = check_pool(pool);
  if (st == KILN_SUCCESS)
    *count = pool->o.count;
  return st;
}

/* Wait for every stream, then report the first failure not yet reported (in stream
 * order); the failures of later streams stay for the next synchronize. */
static kiln_status group_sync(kiln__spool_obj *g) {
  group_checked(g);
  for (uint32_t i = 0; i < g->count; i++)
    kiln__stream_wait_idle(g->streams[i]);
  for (uint32_t i = 0; i < g->count; i++) {
    kiln_status st = kiln__stream_synchronize(g->streams[i]);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

kiln_status kiln_stream_pool_synchronize_all(kiln_stream_pool pool) {
  KILN__API_ENTER();
  kiln_status st = check_pool(pool);
  if (st != KILN_SUCCESS)
    return st;
  return group_sync(&pool->o);
}

static kiln_status fill_stats(kiln__spool_obj *g, size_t index, kiln_stream_stats *stats) {
  if (!stats)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof(kiln_stream_stats))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_STREAM_STATS_INIT",
                       stats->struct_size, sizeof(kiln_stream_stats));
  kiln_stream s;
  kiln_status st = group_get(g, index, &s);
  if (st != KILN_SUCCESS)
    return st;
  stats->id = s->number;
  kiln__strlcpy(stats->label, s->label, sizeof stats->label);
  stats->ops = atomic_load_explicit(&s->ops_counted, memory_order_relaxed) - s->stats_ops_base;
  uint64_t done = atomic_load(&s->completed), sub = atomic_load(&s->submitted);
  stats->pending = sub > done ? sub - done : 0;
  int64_t held = atomic_load(&s->held);
  stats->held = held > 0 ? (uint64_t)held : 0;
  stats->picked = atomic_load(&s->picked);
  stats->busy_ns = atomic_load_explicit(&s->busy_ns, memory_order_relaxed);
  uint64_t now = kiln__now_ns();
  stats->elapsed_ns = now > g->created_ns ? now - g->created_ns : 0;
  if (stats->busy_ns > stats->elapsed_ns)
    stats->busy_ns = stats->elapsed_ns;
  stats->utilisation = stats->elapsed_ns ? (double)stats->busy_ns / (double)stats->elapsed_ns : 0.0;
  stats->priority_applied = s->priority_applied;
  return KILN_SUCCESS;
}

kiln_status kiln_stream_pool_get_stats(kiln_stream_pool pool, size_t index,
                                       kiln_stream_stats *stats) {
  KILN__API_ENTER();
  kiln_status st = check_pool(pool);
  if (st != KILN_SUCCESS)
    return st;
  return fill_stats(&pool->o, index, stats);
}

/* Append to a fixed buffer, counting what would not fit. */
typedef struct jbuf {
  char *buf;
  size_t cap, len;
} jbuf;

static void jput(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jput(jbuf *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = j->len < j->cap ? j->cap - j->len : 0;
  int n = vsnprintf(room ? j->buf + j->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    j->len += (size_t)n;
}

/* A JSON string of a label (printable ASCII kept, quotes and backslashes escaped,
 * anything else as \u00XX). */
static void jstr(jbuf *j, const char *s) {
  jput(j, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      jput(j, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f)
      jput(j, "\\u%04x", *p);
    else
      jput(j, "%c", *p);
  }
  jput(j, "\"");
}

kiln_status kiln_stream_pool_stats_json(kiln_stream_pool pool, char *buf, size_t bytes,
                                        size_t *needed) {
  KILN__API_ENTER();
  if (needed)
    *needed = 0;
  if (!buf && bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buf is NULL but bytes is %zu", bytes);
  if (buf && bytes)
    buf[0] = '\0';
  kiln_status st = check_pool(pool);
  if (st != KILN_SUCCESS)
    return st;
  kiln__spool_obj *g = &pool->o;
  jbuf j = {buf, bytes, 0};
  jput(&j, "{\"label\":");
  jstr(&j, g->label);
  jput(&j, ",\"policy\":\"%s\",\"streams\":[",
       g->policy == KILN_STREAM_LEAST_PENDING ? "least_pending" : "round_robin");
  for (uint32_t i = 0; i < g->count; i++) {
    kiln_stream_stats s = KILN_STREAM_STATS_INIT;
    fill_stats(g, i, &s);
    jput(&j, "%s{\"index\":%u,\"id\":%llu,\"label\":", i ? "," : "", i, (unsigned long long)s.id);
    jstr(&j, s.label);
    jput(&j,
         ",\"ops\":%llu,\"pending\":%llu,\"held\":%llu,\"picked\":%llu,\"busy_ns\":%llu,"
         "\"elapsed_ns\":%llu,\"utilisation\":%.6f,\"priority_applied\":%d}",
         (unsigned long long)s.ops, (unsigned long long)s.pending, (unsigned long long)s.held,
         (unsigned long long)s.picked, (unsigned long long)s.busy_ns,
         (unsigned long long)s.elapsed_ns, s.utilisation, s.priority_applied);
  }
  jput(&j, "]}");
  if (needed)
    *needed = j.len;
  if (j.len >= bytes) {
    if (buf && bytes)
      buf[0] = '\0';
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "buf holds %zu bytes; the statistics need %zu (and a terminator)", bytes, j.len);
    kiln__error_suggest("pass a buffer of at least *needed + 1 bytes");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------------ sets */
static kiln_status check_set(kiln_stream_set set) {
  return kiln__check_handle(set, KILN__TAG_STREAM_SET, "set");
}

kiln_status kiln_stream_set_create(kiln_context context, size_t depth, const char *label,
                                   kiln_stream_set *set) {
  KILN__API_ENTER();
  if (!set)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "set (the out-parameter) is NULL");
  *set = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  kiln__spool_obj *g;
  st = group_create(context, KILN__OWNER_SET, depth, 0, KILN_STREAM_ROUND_ROBIN, label, &g);
  if (st == KILN_SUCCESS)
    *set = (kiln_stream_set)(void *)g;
  return st;
}

kiln_status kiln_stream_set_destroy(kiln_stream_set set) {
  KILN__API_ENTER();
  if (!set)
    return KILN_SUCCESS;
  kiln_status st = kiln__check_alive(set, KILN__TAG_STREAM_SET, "set");
  if (st == KILN_SUCCESS)
    st = kiln__claim_destroy(set, KILN__TAG_STREAM_SET, "set");
  if (st != KILN_SUCCESS)
    return st;
  group_free(&set->o, true);
  return KILN_SUCCESS;
}

kiln_stream kiln_stream_set_get(kiln_stream_set set, size_t i) {
  KILN__API_ENTER();
  if (check_set(set) != KILN_SUCCESS)
    return NULL;
  return set->o.streams[i % set->o.count];
}

kiln_status kiln_stream_set_size(kiln_stream_set set, size_t *depth) {
  KILN__API_ENTER();
  if (!depth)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "depth (the out-parameter) is NULL");
  *depth = 0;
  kiln_status st = check_set(set);
  if (st == KILN_SUCCESS)
    *depth = set->o.count;
  return st;
}

kiln_status kiln_stream_set_synchronize_all(kiln_stream_set set) {
  KILN__API_ENTER();
  kiln_status st = check_set(set);
  if (st != KILN_SUCCESS)
    return st;
  return group_sync(&set->o);
}

kiln_status kiln_stream_set_get_stats(kiln_stream_set set, size_t index, kiln_stream_stats *stats) {
  KILN__API_ENTER();
  kiln_status st = check_set(set);
  if (st != KILN_SUCCESS)
    return st;
  return fill_stats(&set->o, index, stats);
}
