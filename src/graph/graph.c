/* SPDX-License-Identifier: MIT */
/* Task graphs (include/kiln/graph.h, docs/graph.md): building (nodes, explicit and
 * implicit edges, cycle refusal), compiling into a schedule (a topological order that
 * queues device work before host work that must wait, device nodes on the graph's
 * streams, events for cross-stream edges kiln's buffer rules do not cover), launching
 * and waiting. Above the public API: kiln's public calls only. Invariants: edges are
 * unique per node pair and the graph is acyclic at every moment; while `running` the
 * graph is not changed; a launch's state is written by one thread at a time (the
 * executing thread, then the waiter, handed over under `lock`), except the state of
 * host-kind nodes in a parallel launch (workers > 1), owned by the thread that runs
 * each and published by its join counter and `finished` flag; device nodes are
 * queued by the executing thread alone, in schedule order. Thread-safe. */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graph_internal.h"

static _Atomic uint32_t next_serial = 1;

/* ---------------------------------------------------------------- small helpers */

static void copy_name(char *dst, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= KG_NAME_BYTES)
    n = KG_NAME_BYTES - 1;
  if (n)
    memcpy(dst, src, n);
  dst[n] = '\0';
}

const char *kiln__graph_kind_name(int kind) {
  switch (kind) {
  case KG_HOST:
    return "host";
  case KG_KERNEL:
    return "kernel";
  case KG_WRITE:
    return "write";
  case KG_READ:
    return "read";
  case KG_COPY:
    return "copy";
  case KG_FILL:
    return "fill";
  case KG_EMPTY:
    return "empty";
  default:
    return "?";
  }
}

kiln_status kiln__graph_check(kiln_graph graph, const char *function) {
  if (!graph)
    return kiln_error_report(KILN_ERROR_INVALID_HANDLE, function,
                             "pass a graph made by kiln_graph_create", "graph is NULL");
  if (graph->magic != KG_MAGIC)
    return kiln_error_report(KILN_ERROR_INVALID_HANDLE, function,
                             "pass a graph made by kiln_graph_create and not yet destroyed",
                             "graph %p is not a live kiln graph (destroyed, or not a graph)",
                             (void *)graph);
  return KILN_SUCCESS;
}

static kiln_status oom(const char *function, const char *what, size_t bytes) {
  return kiln_error_report(KILN_ERROR_OUT_OF_HOST_MEMORY, function, NULL,
                           "could not allocate %zu bytes for %s", bytes, what);
}

/* Report kiln's own failure `st` of a call made for `function` again, its message
 * prefixed (the detail is copied first: kiln_error_report writes the same buffers). */
static kiln_status pass_on(kiln_status st, const char *function, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kiln_status pass_on(kiln_status st, const char *function, const char *fmt, ...) {
  char prefix[256], msg[512], sugg[256];
  const kiln_error_info *e = kiln_last_error();
  bool ours = e->status == st && e->message[0];
  snprintf(msg, sizeof msg, "%s", ours ? e->message : kiln_status_message(st));
  snprintf(sugg, sizeof sugg, "%s", ours ? e->suggestion : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  return kiln_error_report(st, function, sugg[0] ? sugg : NULL, "%s: %s", prefix, msg);
}

/* Grow an array of `elem` bytes from *cap to at least `need` elements. */
static bool grow(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap)
    return true;
  uint32_t ncap = *cap ? *cap * 2 : 4;
  while (ncap < need)
    ncap *= 2;
  void *n = kiln_allocator_alloc((size_t)ncap * elem, 0);
  if (!n)
    return false;
  if (*cap)
    memcpy(n, *arr, (size_t)*cap * elem);
  if (*arr)
    kiln_allocator_free(*arr, (size_t)*cap * elem, 0);
  *arr = n;
  *cap = ncap;
  return true;
}

static void edges_free(kg_edges *e) {
  if (e->v)
    kiln_allocator_free(e->v, (size_t)e->cap * sizeof *e->v, 0);
  e->v = NULL;
  e->count = e->cap = 0;
}

static void node_free(kg_node *n) {
  edges_free(&n->succ);
  edges_free(&n->pred);
  if (n->kind == KG_KERNEL) {
    if (n->u.kern.args)
      kiln_allocator_free(n->u.kern.args, n->u.kern.count * sizeof(kiln_arg), 0);
    if (n->u.kern.scalars)
      kiln_allocator_free(n->u.kern.scalars, n->u.kern.scalar_bytes, 0);
  }
}

/* ---------------------------------------------------------------- node handles */

static kiln_graph_node node_id(const kiln_graph g, uint32_t index) {
  kiln_graph_node n = {((uint64_t)g->serial << 32) | (uint64_t)(index + 1u)};
  return n;
}

/* The node's index, or an error naming `what` (lock held). */
static kiln_status node_index_locked(kiln_graph g, kiln_graph_node node, const char *function,
                                     const char *what, uint32_t *index) {
  if (node.id == 0)
    return kiln_error_report(KILN_ERROR_INVALID_HANDLE, function,
                             "pass a node a kiln_graph_add_* call of this graph returned",
                             "%s is the zero node (no node) in graph '%s'", what, g->name);
  uint32_t serial = (uint32_t)(node.id >> 32);
  uint32_t idx = (uint32_t)(node.id & 0xffffffffu);
  if (serial != g->serial)
    return kiln_error_report(KILN_ERROR_INVALID_HANDLE, function,
                             "nodes are valid only in the graph that made them",
                             "%s (id 0x%llx) belongs to another graph (serial %u), not to graph "
                             "'%s' (serial %u)",
                             what, (unsigned long long)node.id, serial, g->name, g->serial);
  if (idx == 0 || idx > g->node_count)
    return kiln_error_report(KILN_ERROR_INVALID_HANDLE, function,
                             "pass a node a kiln_graph_add_* call of this graph returned",
                             "%s (id 0x%llx) names node %u, but graph '%s' has %u nodes", what,
                             (unsigned long long)node.id, idx, g->name, g->node_count);
  *index = idx - 1u;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- create, destroy */

kiln_status kiln_graph_create(kiln_context context, const kiln_graph_desc *desc,
                              kiln_graph *graph) {
  static const char fn[] = "kiln_graph_create";
  if (!graph)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, fn, "pass the address of a kiln_graph",
                             "graph (the out-parameter) is NULL");
  *graph = NULL;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  if (desc) {
    /* a desc of before `workers` (fields are only appended) keeps its default */
    size_t old_size = offsetof(kiln_graph_desc, workers);
    if (desc->struct_size < old_size)
      return kiln_error_report(
          KILN_ERROR_INVALID_ARGUMENT, fn, "initialise it with KILN_GRAPH_DESC_INIT",
          "desc->struct_size is %zu, expected %zu: initialise it with KILN_GRAPH_DESC_INIT",
          desc->struct_size, sizeof(kiln_graph_desc));
    memcpy(&d, desc, desc->struct_size < sizeof d ? desc->struct_size : sizeof d);
    d.struct_size = sizeof d;
  }
  if (d.workers > KILN_GRAPH_MAX_WORKERS)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, fn,
                             "use 1..KILN_GRAPH_MAX_WORKERS, or 0 for the machine's cores",
                             "desc->workers is %u, more than KILN_GRAPH_MAX_WORKERS (%u)",
                             d.workers, KILN_GRAPH_MAX_WORKERS);
  if (d.workers == 0) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d.workers = cores < 1                              ? 1u
                : cores > (long)KILN_GRAPH_MAX_WORKERS ? KILN_GRAPH_MAX_WORKERS
                                                       : (unsigned)cores;
  }
  if (d.flags & ~(unsigned)KILN_GRAPH_NO_IMPLICIT_DEPS)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, fn,
                             "use only KILN_GRAPH_NO_IMPLICIT_DEPS (or 0)",
                             "desc->flags 0x%x has unknown bits 0x%x", d.flags,
                             d.flags & ~(unsigned)KILN_GRAPH_NO_IMPLICIT_DEPS);
  if (d.max_streams > KILN_GRAPH_MAX_STREAMS)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, fn,
                             "use 1..KILN_GRAPH_MAX_STREAMS, or 0 for the default (4)",
                             "desc->max_streams is %u, more than KILN_GRAPH_MAX_STREAMS (%u)",
                             d.max_streams, KILN_GRAPH_MAX_STREAMS);
  kiln_device dev;
  kiln_status st = kiln_context_get_device(context, &dev); /* validates the context */
  if (st != KILN_SUCCESS)
    return pass_on(st, fn, "context");
  kiln_graph g = kiln_allocator_alloc(sizeof *g, 0);
  if (!g)
    return oom(fn, "the graph", sizeof *g);
  memset(g, 0, sizeof *g);
  g->magic = KG_MAGIC;
  g->serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed);
  if (g->serial == 0) /* after 2^32 graphs: skip the zero node's serial */
    g->serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed);
  g->context = context;
  if (d.name)
    copy_name(g->name, d.name);
  else
    snprintf(g->name, sizeof g->name, "graph-%u", g->serial);
  g->flags = d.flags;
  g->max_streams = d.max_streams ? d.max_streams : 4u;
  g->workers = d.workers;
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cond, NULL);
  pthread_mutex_init(&g->fail_lock, NULL);
  pthread_mutex_init(&g->pool_lock, NULL);
  pthread_cond_init(&g->pool_cond, NULL);
  g->dirty = true;
  g->root.node = g->dep.node = KG_NONE;
  *graph = g;
  return KILN_SUCCESS;
}

static kiln_status finish_launch(kiln_graph g, uint64_t timeout_ns, bool timed,
                                 const char *function);
static void *graph_thread(void *arg);
static void pool_stop(kiln_graph g);

/* The calling thread runs this graph's launch or host nodes (lock held). */
static bool own_thread_locked(kiln_graph g) {
  pthread_t self = pthread_self();
  if (g->executor_set && pthread_equal(g->executor, self))
    return true;
  for (unsigned i = 0; i < g->pool_started; i++)
    if (pthread_equal(g->pool[i], self))
      return true;
  return false;
}

kiln_status kiln_graph_destroy(kiln_graph graph) {
  static const char fn[] = "kiln_graph_destroy";
  if (!graph)
    return KILN_SUCCESS;
  kiln_status st = kiln__graph_check(graph, fn);
  if (st != KILN_SUCCESS)
    return st;
  kiln_graph g = graph;
  pthread_mutex_lock(&g->lock);
  if (own_thread_locked(g)) {
    pthread_mutex_unlock(&g->lock);
    return kiln_error_report(KILN_ERROR_INVALID_STATE, fn,
                             "destroy the graph after its launch, not from one of its nodes",
                             "graph '%s' is destroyed from its own host node", g->name);
  }
  while (g->querying)
    pthread_cond_wait(&g->cond, &g->lock);
  bool in_flight = g->running && !g->waiting;
  /* a launch of kiln_graph_launch_future is waited by the graph's thread, which
   * completes its future: joining that thread below lets it finish */
  if (g->running && g->waiting && !g->future_mode) {
    pthread_mutex_unlock(&g->lock);
    return kiln_error_report(KILN_ERROR_INVALID_STATE, fn, "let that kiln_graph_wait return first",
                             "another thread is waiting for graph '%s'", g->name);
  }
  if (in_flight)
    g->waiting = true;
  pthread_mutex_unlock(&g->lock);
  if (in_flight)
    (void)finish_launch(g, 0, false, fn); /* its outcome is dropped (documented) */
  if (g->thread_started) {
    pthread_mutex_lock(&g->lock);
    g->thread_quit = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
  }
  pool_stop(g);
  kiln_status first = KILN_SUCCESS;
  for (uint32_t i = 0; i < g->node_count; i++) {
    if (g->nodes[i].event) {
      kiln_status s = kiln_event_destroy(g->nodes[i].event);
      if (first == KILN_SUCCESS)
        first = s;
    }
    node_free(&g->nodes[i]);
  }
  for (uint32_t i = 0; i < g->stream_count; i++) {
    kiln_status s = kiln_stream_destroy(g->streams[i]);
    if (first == KILN_SUCCESS && s != KILN_ERROR_DEVICE_LOST)
      first = s;
  }
  for (uint32_t i = 0; i < g->use_count; i++)
    if (g->uses[i].readers)
      kiln_allocator_free(g->uses[i].readers, g->uses[i].reader_cap * sizeof(uint32_t), 0);
  if (g->uses)
    kiln_allocator_free(g->uses, g->use_cap * sizeof *g->uses, 0);
  if (g->nodes)
    kiln_allocator_free(g->nodes, g->node_cap * sizeof *g->nodes, 0);
  if (g->order)
    kiln_allocator_free(g->order, g->state_cap * sizeof *g->order, 0);
  if (g->stack)
    kiln_allocator_free(g->stack, g->state_cap * sizeof *g->stack, 0);
  if (g->state)
    kiln_allocator_free(g->state, g->state_cap * sizeof *g->state, 0);
  if (g->ready)
    kiln_allocator_free(g->ready, g->state_cap * sizeof *g->ready, 0);
  pthread_cond_destroy(&g->pool_cond);
  pthread_mutex_destroy(&g->pool_lock);
  pthread_mutex_destroy(&g->fail_lock);
  pthread_cond_destroy(&g->cond);
  pthread_mutex_destroy(&g->lock);
  g->magic = 0;
  kiln_allocator_free(g, sizeof *g, 0);
  (void)first; /* the streams' and events' destroys do not fail on live handles */
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- edges */

/* Add from -> to with `flags`, or merge the flags into the existing edge (lock held). */
static bool add_edge_locked(kiln_graph g, uint32_t from, uint32_t to, uint32_t flags) {
  kg_node *a = &g->nodes[from], *b = &g->nodes[to];
  for (uint32_t i = 0; i < a->succ.count; i++)
    if (a->succ.v[i].node == to) {
      a->succ.v[i].flags |= flags;
      for (uint32_t j = 0; j < b->pred.count; j++)
        if (b->pred.v[j].node == from)
          b->pred.v[j].flags |= flags;
      return true;
    }
  if (!grow((void **)&a->succ.v, &a->succ.cap, a->succ.count + 1, sizeof(kg_edge)) ||
      !grow((void **)&b->pred.v, &b->pred.cap, b->pred.count + 1, sizeof(kg_edge)))
    return false;
  a->succ.v[a->succ.count++] = (kg_edge){to, flags};
  b->pred.v[b->pred.count++] = (kg_edge){from, flags};
  g->edge_count++;
  return true;
}

/* The tracker of `buffer`, made when absent (an empty tracker changes nothing). */
static kg_buffer_use *tracker_locked(kiln_graph g, kiln_buffer buffer) {
  for (uint32_t k = 0; k < g->use_count; k++)
    if (g->uses[k].buffer == buffer)
      return &g->uses[k];
  if (!grow((void **)&g->uses, &g->use_cap, g->use_count + 1, sizeof *g->uses))
    return NULL;
  kg_buffer_use *u = &g->uses[g->use_count++];
  memset(u, 0, sizeof *u);
  u->buffer = buffer;
  u->writer = KG_NONE;
  return u;
}

/* The merged mode of bufs[i] for this node, or 0 when bufs[i] appeared before. */
static unsigned merged_mode(const kiln_buffer *bufs, const unsigned *modes, size_t count,
                            size_t i) {
  for (size_t j = 0; j < i; j++)
    if (bufs[j] == bufs[i])
      return 0;
  unsigned mode = 0;
  for (size_t j = i; j < count; j++)
    if (bufs[j] == bufs[i])
      mode |= modes[j];
  return mode;
}

/* The implicit edges of node n's buffer uses, merged per buffer (lock held). Every
 * array the edges and trackers need is grown first, so that a failed allocation
 * (false) changes no tracker and adds no edge: the caller only drops the node. */
static bool apply_uses_locked(kiln_graph g, uint32_t n, const kiln_buffer *bufs,
                              const unsigned *modes, size_t count) {
  if (g->flags & KILN_GRAPH_NO_IMPLICIT_DEPS)
    return true;
  kg_node *node = &g->nodes[n];
  uint32_t in_edges = 0;
  for (size_t i = 0; i < count; i++) {
    unsigned mode = merged_mode(bufs, modes, count, i);
    if (!mode)
      continue;
    kg_buffer_use *u = tracker_locked(g, bufs[i]);
    if (!u)
      return false;
    if (u->writer != KG_NONE) {
      kg_node *w = &g->nodes[u->writer];
      if (!grow((void **)&w->succ.v, &w->succ.cap, w->succ.count + 1, sizeof(kg_edge)))
        return false;
      in_edges++;
    }
    if (mode & KILN_GRAPH_WRITE) {
      for (uint32_t r = 0; r < u->reader_count; r++) {
        kg_node *rd = &g->nodes[u->readers[r]];
        if (!grow((void **)&rd->succ.v, &rd->succ.cap, rd->succ.count + 1, sizeof(kg_edge)))
          return false;
      }
      in_edges += u->reader_count;
    } else if (!grow((void **)&u->readers, &u->reader_cap, u->reader_count + 1, sizeof(uint32_t))) {
      return false;
    }
  }
  if (!grow((void **)&node->pred.v, &node->pred.cap, in_edges, sizeof(kg_edge)))
    return false;
  /* nothing below allocates: every grow is within what was reserved */
  for (size_t i = 0; i < count; i++) {
    unsigned mode = merged_mode(bufs, modes, count, i);
    if (!mode)
      continue;
    kg_buffer_use *u = tracker_locked(g, bufs[i]);
    bool ok = true;
    if (u->writer != KG_NONE)
      ok = add_edge_locked(g, u->writer, n, KG_E_DATA);
    if (mode & KILN_GRAPH_WRITE) {
      for (uint32_t r = 0; r < u->reader_count; r++)
        ok = add_edge_locked(g, u->readers[r], n, KG_E_DATA) && ok;
      u->reader_count = 0;
      u->writer = n;
    } else {
      u->readers[u->reader_count++] = n;
    }
    if (!ok)
      return false; /* cannot happen: reserved above */
  }
  return true;
}

/* Undo a node being added last (lock held) whose implicit edges could not be
 * reserved: it has no edges and no tracker names it (apply_uses_locked). */
static void drop_last_node_locked(kiln_graph g) {
  node_free(&g->nodes[g->node_count - 1]);
  g->node_count--;
}

/* ---------------------------------------------------------------- adding nodes */

/* Start adding a node: lock, refuse while running, make room. On success the lock is
 * held and *out points at the new (zeroed) node, not yet counted. */
static kiln_status begin_add(kiln_graph g, const char *function, kg_node **out) {
  *out = NULL;
  pthread_mutex_lock(&g->lock);
  if (g->running) {
    pthread_mutex_unlock(&g->lock);
    return kiln_error_report(
        KILN_ERROR_INVALID_STATE, function, "call kiln_graph_wait first, then change the graph",
        "graph '%s' has a launch in flight: it cannot be changed now", g->name);
  }
  if (g->node_count >= (uint32_t)INT32_MAX) {
    pthread_mutex_unlock(&g->lock);
    return kiln_error_report(KILN_ERROR_LIMIT_EXCEEDED, function, "split the graph",
                             "graph '%s' has %u nodes, the most a graph may hold", g->name,
                             g->node_count);
  }
  if (!grow((void **)&g->nodes, &g->node_cap, g->node_count + 1, sizeof *g->nodes)) {
    pthread_mutex_unlock(&g->lock);
    return oom(function, "the graph's node table", (size_t)(g->node_count + 1) * sizeof *g->nodes);
  }
  kg_node *n = &g->nodes[g->node_count];
  memset(n, 0, sizeof *n);
  n->stream = KG_NONE;
  *out = n;
  return KILN_SUCCESS;
}

/* Finish adding: count it, apply its buffer uses, write its id, unlock. On failure
 * the node's own allocations are freed and nothing of it remains. */
static kiln_status end_add(kiln_graph g, const char *function, kg_node *n, const char *name,
                           const kiln_buffer *bufs, const unsigned *modes, size_t use_count,
                           kiln_graph_node *node) {
  uint32_t index = g->node_count++;
  if (name)
    copy_name(n->name, name);
  else
    snprintf(n->name, sizeof n->name, "%s-%u", kiln__graph_kind_name(n->kind), index);
  if (!apply_uses_locked(g, index, bufs, modes, use_count)) {
    drop_last_node_locked(g);
    pthread_mutex_unlock(&g->lock);
    return oom(function, "the node's implicit edges", sizeof(kg_edge));
  }
  if (n->kind == KG_HOST)
    g->has_host = true;
  g->dirty = true;
  *node = node_id(g, index);
  pthread_mutex_unlock(&g->lock);
  return KILN_SUCCESS;
}

/* Common argument checks of every add call. */
static kiln_status check_add(kiln_graph g, const char *function, kiln_graph_node *node) {
  if (node)
    node->id = 0;
  kiln_status st = kiln__graph_check(g, function);
  if (st != KILN_SUCCESS)
    return st;
  if (!node)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, function,
                             "pass the address of a kiln_graph_node",
                             "node (the out-parameter) is NULL");
  return KILN_SUCCESS;
}

/* A buffer range of a transfer node: the buffer is live and [offset, offset+bytes)
 * lies within it. */
static kiln_status check_range(const char *function, const char *what, kiln_buffer buf,
                               size_t offset, size_t bytes) {
  size_t size = 0;
  kiln_status st = kiln_buffer_get_size(buf, &size);
  if (st != KILN_SUCCESS)
    return pass_on(st, function, "%s", what);
  if (bytes == 0)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, function,
                             "give a size of at least 1 byte", "%s: bytes is 0", what);
  if (offset > size || bytes > size - offset)
    return kiln_error_report(KILN_ERROR_OUT_OF_RANGE, function, NULL,
                             "%s: offset %zu + bytes %zu reaches past the buffer's %zu bytes", what,
                             offset, bytes, size);
  return KILN_SUCCESS;
}

kiln_status kiln_graph_add_host(kiln_graph graph, const char *name, kiln_graph_host_fn fn,
                                void *user, const kiln_graph_use *uses, size_t use_count,
                                kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_host";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  if (!fn)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the function the node runs",
                             "fn is NULL");
  if (use_count && !uses)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the array, or use_count 0",
                             "uses is NULL but use_count is %zu", use_count);
  if (use_count > KILN_MAX_KERNEL_ARGS)
    return kiln_error_report(KILN_ERROR_LIMIT_EXCEEDED, f,
                             "declare at most 64 buffers per host node",
                             "use_count is %zu, more than %d", use_count, KILN_MAX_KERNEL_ARGS);
  kiln_buffer bufs[KILN_MAX_KERNEL_ARGS];
  unsigned modes[KILN_MAX_KERNEL_ARGS];
  for (size_t i = 0; i < use_count; i++) {
    size_t size;
    if (uses[i].access < KILN_GRAPH_READ || uses[i].access > KILN_GRAPH_READ_WRITE)
      return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                               "use KILN_GRAPH_READ, KILN_GRAPH_WRITE or KILN_GRAPH_READ_WRITE",
                               "uses[%zu].access is %d", i, (int)uses[i].access);
    st = kiln_buffer_get_size(uses[i].buffer, &size);
    if (st != KILN_SUCCESS)
      return pass_on(st, f, "uses[%zu].buffer", i);
    bufs[i] = uses[i].buffer;
    modes[i] = (unsigned)uses[i].access;
  }
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_HOST;
  n->u.host.fn = fn;
  n->u.host.user = user;
  return end_add(graph, f, n, name, bufs, modes, use_count, node);
}

kiln_status kiln_graph_add_empty(kiln_graph graph, const char *name, kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_empty";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_EMPTY;
  return end_add(graph, f, n, name, NULL, NULL, 0, node);
}

kiln_status kiln_graph_add_write(kiln_graph graph, const char *name, kiln_buffer dst, size_t offset,
                                 size_t bytes, const void *src, kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_write";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  if ((st = check_range(f, "dst", dst, offset, bytes)) != KILN_SUCCESS)
    return st;
  if (!src)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "pass host memory of at least `bytes` bytes", "src is NULL");
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_WRITE;
  n->u.write.buf = dst;
  n->u.write.offset = offset;
  n->u.write.bytes = bytes;
  n->u.write.src = src;
  unsigned m = KILN_GRAPH_WRITE;
  return end_add(graph, f, n, name, &dst, &m, 1, node);
}

kiln_status kiln_graph_add_read(kiln_graph graph, const char *name, kiln_buffer src, size_t offset,
                                size_t bytes, void *dst, kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_read";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  if ((st = check_range(f, "src", src, offset, bytes)) != KILN_SUCCESS)
    return st;
  if (!dst)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "pass host memory of at least `bytes` bytes", "dst is NULL");
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_READ;
  n->u.read.buf = src;
  n->u.read.offset = offset;
  n->u.read.bytes = bytes;
  n->u.read.dst = dst;
  unsigned m = KILN_GRAPH_READ;
  return end_add(graph, f, n, name, &src, &m, 1, node);
}

kiln_status kiln_graph_add_copy(kiln_graph graph, const char *name, kiln_buffer dst,
                                size_t dst_offset, kiln_buffer src, size_t src_offset, size_t bytes,
                                kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_copy";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  if ((st = check_range(f, "dst", dst, dst_offset, bytes)) != KILN_SUCCESS ||
      (st = check_range(f, "src", src, src_offset, bytes)) != KILN_SUCCESS)
    return st;
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_COPY;
  n->u.copy.dst = dst;
  n->u.copy.src = src;
  n->u.copy.dst_offset = dst_offset;
  n->u.copy.src_offset = src_offset;
  n->u.copy.bytes = bytes;
  kiln_buffer bufs[2] = {src, dst};
  unsigned modes[2] = {KILN_GRAPH_READ, KILN_GRAPH_WRITE};
  return end_add(graph, f, n, name, bufs, modes, 2, node);
}

kiln_status kiln_graph_add_fill(kiln_graph graph, const char *name, kiln_buffer dst, size_t offset,
                                size_t bytes, const void *pattern, size_t pattern_bytes,
                                kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_fill";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  if ((st = check_range(f, "dst", dst, offset, bytes)) != KILN_SUCCESS)
    return st;
  if (!pattern)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the pattern's bytes",
                             "pattern is NULL");
  bool pow2 = pattern_bytes && (pattern_bytes & (pattern_bytes - 1)) == 0;
  if (!pow2 || pattern_bytes > 128)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "use a pattern of 1, 2, 4, 8, 16, 32, 64 or 128 bytes",
                             "pattern_bytes is %zu", pattern_bytes);
  if (offset % pattern_bytes || bytes % pattern_bytes)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "make offset and bytes multiples of pattern_bytes",
                             "offset %zu and bytes %zu must be multiples of pattern_bytes %zu",
                             offset, bytes, pattern_bytes);
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS)
    return st;
  n->kind = KG_FILL;
  n->u.fill.buf = dst;
  n->u.fill.offset = offset;
  n->u.fill.bytes = bytes;
  n->u.fill.pattern_bytes = pattern_bytes;
  memcpy(n->u.fill.pattern, pattern, pattern_bytes);
  unsigned m = KILN_GRAPH_WRITE;
  return end_add(graph, f, n, name, &dst, &m, 1, node);
}

kiln_status kiln_graph_add_kernel(kiln_graph graph, const char *name, kiln_kernel kernel,
                                  const kiln_range *range, const kiln_arg *args, size_t count,
                                  kiln_graph_node *node) {
  static const char f[] = "kiln_graph_add_kernel";
  kiln_status st = check_add(graph, f, node);
  if (st != KILN_SUCCESS)
    return st;
  const kiln_param *params = NULL;
  size_t param_count = 0;
  if ((st = kiln_kernel_get_params(kernel, &params, &param_count)) != KILN_SUCCESS)
    return pass_on(st, f, "kernel");
  const char *kname = "?";
  (void)kiln_kernel_get_name(kernel, &kname);
  if (!range)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass a range, e.g. kiln_range_1d(n)",
                             "range is NULL");
  if (count && !args)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the arguments, or count 0",
                             "args is NULL but count is %zu", count);
  if (count != param_count)
    return kiln_error_report(KILN_ERROR_KERNEL_ARGS, f, NULL,
                             "kernel '%s' takes %zu arguments, %zu were given", kname, param_count,
                             count);
  kiln_buffer bufs[KILN_MAX_KERNEL_ARGS];
  unsigned modes[KILN_MAX_KERNEL_ARGS];
  size_t nbufs = 0, scalar_bytes = 0;
  for (size_t i = 0; i < count; i++) {
    kiln_param_kind pk = params[i].kind;
    bool is_buf = pk == KILN_PARAM_BUFFER_READ || pk == KILN_PARAM_BUFFER_WRITE ||
                  pk == KILN_PARAM_BUFFER_READ_WRITE;
    if (is_buf) {
      if (args[i].kind != KILN_ARG_BUFFER)
        return kiln_error_report(KILN_ERROR_KERNEL_ARGS, f, NULL,
                                 "kernel '%s' argument %zu: expected a buffer, got kind %d", kname,
                                 i, (int)args[i].kind);
      size_t size;
      if ((st = kiln_buffer_get_size(args[i].buffer, &size)) != KILN_SUCCESS)
        return pass_on(st, f, "kernel '%s' argument %zu", kname, i);
      bufs[nbufs] = args[i].buffer;
      modes[nbufs++] = pk == KILN_PARAM_BUFFER_READ    ? KILN_GRAPH_READ
                       : pk == KILN_PARAM_BUFFER_WRITE ? KILN_GRAPH_WRITE
                                                       : KILN_GRAPH_READ_WRITE;
    } else if (pk == KILN_PARAM_SCALAR) {
      if (args[i].kind != KILN_ARG_SCALAR || args[i].bytes != params[i].bytes || !args[i].value)
        return kiln_error_report(KILN_ERROR_KERNEL_ARGS, f, NULL,
                                 "kernel '%s' argument %zu: expected a %zu-byte scalar, got kind "
                                 "%d of %zu bytes%s",
                                 kname, i, params[i].bytes, (int)args[i].kind, args[i].bytes,
                                 args[i].value ? "" : " (value NULL)");
      scalar_bytes += (args[i].bytes + 15u) & ~(size_t)15u;
    } else if (args[i].kind != KILN_ARG_LOCAL) {
      return kiln_error_report(KILN_ERROR_KERNEL_ARGS, f, NULL,
                               "kernel '%s' argument %zu: expected local memory, got kind %d",
                               kname, i, (int)args[i].kind);
    }
  }
  kiln_launch_config cfg = KILN_LAUNCH_CONFIG_INIT;
  if ((st = kiln_kernel_get_launch_config(kernel, range, &cfg)) != KILN_SUCCESS)
    return pass_on(st, f, "kernel '%s' range", kname);
  kiln_arg *acopy = NULL;
  unsigned char *scalars = NULL;
  if (count && !(acopy = kiln_allocator_alloc(count * sizeof *acopy, 0)))
    return oom(f, "the kernel's arguments", count * sizeof *acopy);
  if (scalar_bytes && !(scalars = kiln_allocator_alloc(scalar_bytes, 0))) {
    kiln_allocator_free(acopy, count * sizeof *acopy, 0);
    return oom(f, "the kernel's scalar arguments", scalar_bytes);
  }
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    acopy[i] = args[i];
    if (args[i].kind == KILN_ARG_SCALAR) {
      memcpy(scalars + at, args[i].value, args[i].bytes);
      acopy[i].value = scalars + at;
      at += (args[i].bytes + 15u) & ~(size_t)15u;
    }
  }
  kg_node *n;
  if ((st = begin_add(graph, f, &n)) != KILN_SUCCESS) {
    if (acopy)
      kiln_allocator_free(acopy, count * sizeof *acopy, 0);
    if (scalars)
      kiln_allocator_free(scalars, scalar_bytes, 0);
    return st;
  }
  n->kind = KG_KERNEL;
  n->u.kern.kernel = kernel;
  n->u.kern.range = *range;
  n->u.kern.range.struct_size = sizeof(kiln_range);
  n->u.kern.args = acopy;
  n->u.kern.count = count;
  n->u.kern.scalars = scalars;
  n->u.kern.scalar_bytes = scalar_bytes;
  if (!name)
    name = kname; /* the kernel's name reads better than "kernel-N" */
  return end_add(graph, f, n, name, bufs, modes, nbufs, node);
}

/* ---------------------------------------------------------------- explicit edges */

/* Whether `target` is reachable from `from`; the path from -> ... -> target into
 * msg (names joined by " -> "). Returns -1 when scratch memory could not be had. */
static int reachable_locked(kiln_graph g, uint32_t from, uint32_t target, char *msg,
                            size_t msg_bytes) {
  size_t n = g->node_count;
  uint32_t *parent = kiln_allocator_alloc(n * sizeof *parent, 0);
  uint32_t *stack = kiln_allocator_alloc(n * sizeof *stack, 0);
  if (!parent || !stack) {
    kiln_allocator_free(parent, n * sizeof *parent, 0);
    kiln_allocator_free(stack, n * sizeof *stack, 0);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    parent[i] = KG_NONE;
  size_t top = 0;
  stack[top++] = from;
  parent[from] = from;
  int found = 0;
  while (top && !found) {
    uint32_t v = stack[--top];
    const kg_node *node = &g->nodes[v];
    for (uint32_t i = 0; i < node->succ.count; i++) {
      uint32_t w = node->succ.v[i].node;
      if (parent[w] != KG_NONE)
        continue;
      parent[w] = v;
      if (w == target) {
        found = 1;
        break;
      }
      stack[top++] = w;
    }
  }
  if (found) {
    /* walk back target -> from, then print in forward order (at most 16 names) */
    uint32_t path[16];
    size_t len = 0, total = 0;
    for (uint32_t v = target;; v = parent[v]) {
      if (len < 16)
        path[len++] = v;
      total++;
      if (v == from)
        break;
    }
    size_t used = 0;
    msg[0] = '\0';
    for (size_t i = len; i-- > 0;) {
      int w = snprintf(msg + used, msg_bytes - used, "%s'%s'", i + 1 < len ? " -> " : "",
                       g->nodes[path[i]].name);
      if (w < 0 || (size_t)w >= msg_bytes - used)
        break;
      used += (size_t)w;
      if (i == len - 1 && total > len) {
        w = snprintf(msg + used, msg_bytes - used, " -> ... (%zu more)", total - len);
        if (w > 0 && (size_t)w < msg_bytes - used)
          used += (size_t)w;
      }
    }
  }
  kiln_allocator_free(parent, n * sizeof *parent, 0);
  kiln_allocator_free(stack, n * sizeof *stack, 0);
  return found;
}

kiln_status kiln_graph_precede(kiln_graph graph, kiln_graph_node before, kiln_graph_node after) {
  static const char f[] = "kiln_graph_precede";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  kiln_graph g = graph;
  pthread_mutex_lock(&g->lock);
  uint32_t a = 0, b = 0;
  if ((st = node_index_locked(g, before, f, "before", &a)) != KILN_SUCCESS ||
      (st = node_index_locked(g, after, f, "after", &b)) != KILN_SUCCESS)
    goto out;
  if (g->running) {
    st = kiln_error_report(KILN_ERROR_INVALID_STATE, f,
                           "call kiln_graph_wait first, then change the graph",
                           "graph '%s' has a launch in flight: it cannot be changed now", g->name);
    goto out;
  }
  if (a == b) {
    st = kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "an edge joins two different nodes",
                           "node '%s' cannot precede itself (graph '%s')", g->nodes[a].name,
                           g->name);
    goto out;
  }
  if (a > b || g->has_backward) {
    /* every edge so far goes from an earlier node to a later one unless has_backward:
     * then and for a backward edge, look for a path after -> ... -> before */
    char path[400];
    int r = reachable_locked(g, b, a, path, sizeof path);
    if (r < 0) {
      st = oom(f, "the cycle check", (size_t)g->node_count * 2 * sizeof(uint32_t));
      goto out;
    }
    if (r > 0) {
      st = kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "remove one edge of that cycle: a graph is acyclic",
                             "'%s' -> '%s' would close a cycle in graph '%s': %s -> '%s'",
                             g->nodes[a].name, g->nodes[b].name, g->name, path, g->nodes[b].name);
      goto out;
    }
  }
  if (!add_edge_locked(g, a, b, KG_E_EXPLICIT)) {
    st = oom(f, "the edge", sizeof(kg_edge));
    goto out;
  }
  if (a > b)
    g->has_backward = true;
  g->dirty = true;
out:
  pthread_mutex_unlock(&g->lock);
  return st;
}

/* ---------------------------------------------------------------- compiling */

static bool is_op(int kind) {
  return kind != KG_HOST && kind != KG_EMPTY;
}

/* Node v has all its predecessors placed: classify it (an empty node after a device
 * node is a device node) and queue it. */
static void enqueue(kiln_graph g, uint32_t v, uint32_t *devq, uint32_t *dt, uint32_t *hostq,
                    uint32_t *ht) {
  kg_node *nv = &g->nodes[v];
  bool dev = is_op(nv->kind);
  if (nv->kind == KG_EMPTY)
    for (uint32_t k = 0; k < nv->pred.count && !dev; k++)
      dev = g->nodes[nv->pred.v[k].node].device;
  nv->device = dev;
  if (dev)
    devq[(*dt)++] = v;
  else
    hostq[(*ht)++] = v;
}

/* Compile the schedule (lock held, not running). Allocation and stream/event creation
 * failures leave the graph dirty; what was made is kept for the next try. */
static kiln_status compile_locked(kiln_graph g, const char *function) {
  uint32_t n = g->node_count;
  if (n > g->state_cap) {
    uint32_t *order = kiln_allocator_alloc((size_t)n * sizeof *order, 0);
    uint32_t *stack = kiln_allocator_alloc((size_t)n * sizeof *stack, 0);
    kg_state *state = kiln_allocator_alloc((size_t)n * sizeof *state, 0);
    uint32_t *ready = g->workers > 1 ? kiln_allocator_alloc((size_t)n * sizeof *ready, 0) : NULL;
    if (!order || !stack || !state || (g->workers > 1 && !ready)) {
      kiln_allocator_free(order, (size_t)n * sizeof *order, 0);
      kiln_allocator_free(stack, (size_t)n * sizeof *stack, 0);
      kiln_allocator_free(state, (size_t)n * sizeof *state, 0);
      kiln_allocator_free(ready, (size_t)n * sizeof *ready, 0);
      return oom(function, "the graph's schedule", (size_t)n * (3 * sizeof *order + sizeof *state));
    }
    if (g->ready)
      kiln_allocator_free(g->ready, g->state_cap * sizeof *g->ready, 0);
    g->ready = ready;
    if (g->order)
      kiln_allocator_free(g->order, g->state_cap * sizeof *g->order, 0);
    if (g->stack)
      kiln_allocator_free(g->stack, g->state_cap * sizeof *g->stack, 0);
    if (g->state)
      kiln_allocator_free(g->state, g->state_cap * sizeof *g->state, 0);
    g->order = order;
    g->stack = stack;
    g->state = state;
    g->state_cap = n;
  }
  /* Kahn's algorithm with two FIFO queues: device-kind nodes first, so that device
   * work is queued before host work that must wait for the device. The queues live in
   * two scratch arrays; the remaining predecessors of each node in state[].cause. */
  for (uint32_t i = 0; i < n; i++) {
    g->state[i].cause = g->nodes[i].pred.count; /* remaining predecessors */
    g->state[i].done = false;
  }
  uint32_t *hostq = kiln_allocator_alloc((size_t)(n ? n : 1) * sizeof *hostq, 0);
  uint32_t *devq = kiln_allocator_alloc((size_t)(n ? n : 1) * sizeof *devq, 0);
  if (!hostq || !devq) {
    kiln_allocator_free(hostq, (size_t)(n ? n : 1) * sizeof *hostq, 0);
    kiln_allocator_free(devq, (size_t)(n ? n : 1) * sizeof *devq, 0);
    return oom(function, "the graph's schedule", (size_t)n * 2 * sizeof(uint32_t));
  }
  uint32_t dh = 0, dt = 0, hh = 0, ht = 0, placed = 0;
  for (uint32_t i = 0; i < n; i++)
    if (g->nodes[i].pred.count == 0)
      enqueue(g, i, devq, &dt, hostq, &ht);
  while (dh < dt || hh < ht) {
    uint32_t v = dh < dt ? devq[dh++] : hostq[hh++];
    g->nodes[v].position = placed;
    g->order[placed++] = v;
    kg_node *nv = &g->nodes[v];
    for (uint32_t k = 0; k < nv->succ.count; k++) {
      uint32_t w = nv->succ.v[k].node;
      if (--g->state[w].cause == 0)
        enqueue(g, w, devq, &dt, hostq, &ht);
    }
  }
  kiln_allocator_free(hostq, (size_t)(n ? n : 1) * sizeof *hostq, 0);
  kiln_allocator_free(devq, (size_t)(n ? n : 1) * sizeof *devq, 0);
  if (placed != n) /* cannot happen: edges are refused when they close a cycle */
    return kiln_error_report(KILN_ERROR_INTERNAL, function, NULL,
                             "graph '%s': only %u of %u nodes could be ordered", g->name, placed,
                             n);

  /* Streams: a device node continues the stream of a device predecessor that is still
   * the last node on it (chains stay on one stream); else it takes the stream with the
   * fewest nodes so far (independent branches spread). */
  uint32_t tail[KILN_GRAPH_MAX_STREAMS], load[KILN_GRAPH_MAX_STREAMS];
  for (unsigned s = 0; s < KILN_GRAPH_MAX_STREAMS; s++) {
    tail[s] = KG_NONE;
    load[s] = 0;
  }
  uint32_t used = 0;
  for (uint32_t i = 0; i < n; i++) {
    kg_node *nv = &g->nodes[g->order[i]];
    nv->needs_event = false;
    for (uint32_t k = 0; k < nv->pred.count; k++)
      nv->pred.v[k].flags &= ~(uint32_t)KG_E_WAIT;
    nv->host_preds = 0;
    for (uint32_t k = 0; k < nv->pred.count; k++)
      if (!g->nodes[nv->pred.v[k].node].device)
        nv->host_preds++;
    if (!nv->device) {
      nv->stream = KG_NONE;
      continue;
    }
    uint32_t s = KG_NONE;
    for (uint32_t k = 0; k < nv->pred.count && s == KG_NONE; k++) {
      const kg_node *p = &g->nodes[nv->pred.v[k].node];
      if (p->device && tail[p->stream] == nv->pred.v[k].node)
        s = p->stream;
    }
    if (s == KG_NONE) {
      s = 0;
      for (uint32_t t = 1; t < g->max_streams; t++)
        if (load[t] < load[s])
          s = t;
    }
    nv->stream = s;
    tail[s] = g->order[i];
    load[s]++;
    if (s + 1 > used)
      used = s + 1;
  }
  /* Edges between device nodes on different streams: kiln's buffer rules order the
   * data edges of two ops already; every other one waits for an event — of each other
   * stream, only the predecessor placed last on it: its event follows the others' ops
   * there (a stream runs in order), and when it is stopped so is this node. */
  for (uint32_t i = 0; i < n; i++) {
    kg_node *nv = &g->nodes[i];
    if (!nv->device)
      continue;
    uint32_t last[KILN_GRAPH_MAX_STREAMS]; /* pred index into nv->pred, per stream */
    for (unsigned t = 0; t < KILN_GRAPH_MAX_STREAMS; t++)
      last[t] = KG_NONE;
    for (uint32_t k = 0; k < nv->pred.count; k++) {
      kg_edge *e = &nv->pred.v[k];
      kg_node *p = &g->nodes[e->node];
      if (!p->device || p->stream == nv->stream)
        continue;
      bool covered = (e->flags & KG_E_DATA) && !(e->flags & KG_E_EXPLICIT) && is_op(p->kind) &&
                     is_op(nv->kind);
      if (covered)
        continue;
      uint32_t *l = &last[p->stream];
      if (*l == KG_NONE || g->nodes[nv->pred.v[*l].node].position < p->position)
        *l = k;
    }
    for (unsigned t = 0; t < KILN_GRAPH_MAX_STREAMS; t++)
      if (last[t] != KG_NONE) {
        kg_edge *e = &nv->pred.v[last[t]];
        e->flags |= KG_E_WAIT;
        g->nodes[e->node].needs_event = true;
      }
  }
  /* Make what the schedule needs: streams, then events. */
  for (uint32_t s = g->stream_count; s < used; s++) {
    char label[64];
    snprintf(label, sizeof label, "%.40s[%u]", g->name, s);
    kiln_stream_desc sd = KILN_STREAM_DESC_INIT;
    sd.label = label;
    kiln_status st = kiln_stream_create(g->context, &sd, &g->streams[s]);
    if (st != KILN_SUCCESS)
      return pass_on(st, function, "graph '%s': creating stream %u", g->name, s);
    g->stream_count = s + 1;
  }
  for (uint32_t i = 0; i < n; i++) {
    kg_node *nv = &g->nodes[i];
    if (!nv->needs_event || nv->event)
      continue;
    kiln_status st = kiln_event_create(g->context, NULL, &nv->event);
    if (st != KILN_SUCCESS)
      return pass_on(st, function, "graph '%s' node '%s': creating its event", g->name, nv->name);
  }
  g->dirty = false;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- executing */

/* Record node v's own failure (status st) with the calling thread's kiln detail when
 * it comes first in schedule order. */
static void note_failure(kiln_graph g, uint32_t v, kiln_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note_failure(kiln_graph g, uint32_t v, kiln_status st, const char *fmt, ...) {
  kg_failure *f = st == KILN_ERROR_DEPENDENCY_FAILED ? &g->dep : &g->root;
  uint32_t pos = g->nodes[v].position;
  /* host nodes of a parallel launch fail on several threads at once: failures are
   * rare, so the lock is taken in every mode */
  pthread_mutex_lock(&g->fail_lock);
  if (f->node != KG_NONE && f->position <= pos) {
    pthread_mutex_unlock(&g->fail_lock);
    return;
  }
  f->node = v;
  f->position = pos;
  f->status = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->message, sizeof f->message, fmt, ap);
  va_end(ap);
  const kiln_error_info *e = kiln_last_error();
  snprintf(f->suggestion, sizeof f->suggestion, "%s",
           e->status == st && e->suggestion[0] ? e->suggestion : kiln_status_suggestion(st));
  pthread_mutex_unlock(&g->fail_lock);
}

static void fail_node(kiln_graph g, uint32_t v, kiln_status st) {
  kg_state *s = &g->state[v];
  s->status = st;
  s->cause = v;
  s->done = true;
  const kiln_error_info *e = kiln_last_error();
  note_failure(g, v, st, "%s", e->status == st ? e->message : kiln_status_message(st));
}

static void skip_node(kiln_graph g, uint32_t v, uint32_t cause) {
  kg_state *s = &g->state[v];
  s->status = KILN_ERROR_DEPENDENCY_FAILED;
  s->cause = cause;
  s->done = true;
}

/* Wait until node v has completed (device nodes: their op; empty device nodes: their
 * predecessors) and return its status. On the executing thread or the waiter. A
 * timed wait may return KILN_TIMEOUT with the node not done. */
static kiln_status wait_node(kiln_graph g, uint32_t v, uint64_t deadline_ns, bool timed);

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static kiln_status wait_node(kiln_graph g, uint32_t v, uint64_t deadline_ns, bool timed) {
  kg_state *s = &g->state[v];
  if (s->done)
    return s->status;
  kg_node *nv = &g->nodes[v];
  if (nv->kind == KG_EMPTY) {
    for (uint32_t k = 0; k < nv->pred.count; k++) {
      uint32_t p = nv->pred.v[k].node;
      kiln_status st = wait_node(g, p, deadline_ns, timed);
      if (st == KILN_TIMEOUT)
        return st;
      if (st != KILN_SUCCESS && !s->done)
        skip_node(g, v, g->state[p].cause);
    }
    if (!s->done) {
      s->status = KILN_SUCCESS;
      s->done = true;
    }
    return s->status;
  }
  kiln_status st;
  if (timed) {
    uint64_t now = now_ns();
    st = kiln_wait_timeout(&s->token, deadline_ns > now ? deadline_ns - now : 0);
    if (st == KILN_TIMEOUT)
      return st;
  } else {
    st = kiln_wait(&s->token);
  }
  if (st != KILN_SUCCESS)
    fail_node(g, v, st);
  else {
    s->status = KILN_SUCCESS;
    s->done = true;
  }
  return st;
}

/* Wait for every device ancestor of host node v (not only its predecessors): a host
 * node may touch the host memory of any transfer before it (the upload's source, a
 * read's destination), and that memory is the program's again only once a wait has
 * observed the op (design.md: the host-range guard; ASan builds poison it until then).
 * They have completed already when the predecessors have; each node is waited at most
 * once per launch, so a launch's waits stay O(nodes + edges). Iterative (g->stack). */
/* In a parallel launch (par) the state of host-kind nodes belongs to the workers: they
 * are walked through by `seen` alone (their device ancestors were waited before they
 * were released, so the walk stays O(nodes + edges) per launch). */
static bool ancestor_open(const kiln_graph g, uint32_t p, bool par) {
  if (g->state[p].seen)
    return false;
  return (par && !g->nodes[p].device) || !g->state[p].done;
}

static void wait_ancestors(kiln_graph g, uint32_t v, bool par) {
  uint32_t top = 0;
  const kg_node *nv = &g->nodes[v];
  for (uint32_t k = 0; k < nv->pred.count; k++) {
    uint32_t p = nv->pred.v[k].node;
    if (ancestor_open(g, p, par)) {
      g->state[p].seen = true;
      g->stack[top++] = p;
    }
  }
  while (top) {
    uint32_t u = g->stack[--top];
    const kg_node *nu = &g->nodes[u];
    if (is_op(nu->kind))
      (void)wait_node(g, u, 0, false);
    for (uint32_t k = 0; k < nu->pred.count; k++) {
      uint32_t p = nu->pred.v[k].node;
      if (ancestor_open(g, p, par)) {
        g->state[p].seen = true;
        g->stack[top++] = p;
      }
    }
  }
}

/* Queue device node v on its stream (waits for cross-stream events first, records
 * its event after). Failures of the calls make the node's failure. */
static void submit_node(kiln_graph g, uint32_t v, bool traced) {
  kg_node *nv = &g->nodes[v];
  kg_state *s = &g->state[v];
  if (traced) /* the node's name on the queueing thread's track, where its op starts */
    (void)kiln_trace_mark(nv->name, nv->kind == KG_KERNEL  ? KILN_TRACE_KERNEL
                                    : nv->kind == KG_EMPTY ? KILN_TRACE_SYNC
                                                           : KILN_TRACE_TRANSFER);
  kiln_stream stream = g->streams[nv->stream];
  kiln_status st = KILN_SUCCESS;
  for (uint32_t k = 0; k < nv->pred.count && st == KILN_SUCCESS; k++)
    if (nv->pred.v[k].flags & KG_E_WAIT)
      st = kiln_stream_wait_event(stream, g->nodes[nv->pred.v[k].node].event);
  if (st == KILN_SUCCESS) {
    switch (nv->kind) {
    case KG_KERNEL:
      st = kiln_launch_async(stream, nv->u.kern.kernel, &nv->u.kern.range, nv->u.kern.args,
                             nv->u.kern.count, &s->token);
      break;
    case KG_WRITE:
      st = kiln_buffer_write_async(stream, nv->u.write.buf, nv->u.write.offset, nv->u.write.bytes,
                                   nv->u.write.src, &s->token);
      break;
    case KG_READ:
      st = kiln_buffer_read_async(stream, nv->u.read.buf, nv->u.read.offset, nv->u.read.bytes,
                                  nv->u.read.dst, &s->token);
      break;
    case KG_COPY:
      st = kiln_buffer_copy_async(stream, nv->u.copy.dst, nv->u.copy.dst_offset, nv->u.copy.src,
                                  nv->u.copy.src_offset, nv->u.copy.bytes, &s->token);
      break;
    case KG_FILL:
      st = kiln_buffer_fill_async(stream, nv->u.fill.buf, nv->u.fill.offset, nv->u.fill.bytes,
                                  nv->u.fill.pattern, nv->u.fill.pattern_bytes, &s->token);
      break;
    default: /* an empty node on a stream: only its waits and its event */
      break;
    }
  }
  if (st == KILN_SUCCESS && nv->needs_event)
    st = kiln_event_record(nv->event, stream);
  if (st != KILN_SUCCESS) {
    if (s->token.id) { /* queued, but its event could not be recorded: wait for it here */
      kiln_status ignored = kiln_wait(&s->token);
      (void)ignored;
    }
    fail_node(g, v, st);
  }
}

static void run_host(kiln_graph g, uint32_t v) {
  kg_node *nv = &g->nodes[v];
  kg_state *s = &g->state[v];
  bool traced = kiln_trace_enabled();
  if (traced)
    (void)kiln_trace_range_begin(nv->name, KILN_TRACE_USER);
  /* a stale failure on this thread must not pass for the function's own detail;
   * clearing is a 1.4 KB memset (perf: a quarter of a tiny node's cost), so only
   * when there is one */
  if (kiln_last_error()->status != KILN_SUCCESS)
    kiln_clear_error();
  kiln_status st = nv->u.host.fn(nv->u.host.user);
  if (traced)
    (void)kiln_trace_range_end();
  if (st == KILN_SUCCESS) {
    s->status = st;
    s->done = true;
    return;
  }
  s->status = st;
  s->cause = v;
  s->done = true;
  const kiln_error_info *e = kiln_last_error();
  if (e->status == st && e->message[0])
    note_failure(g, v, st, "its function returned %s: %s", kiln_status_name(st), e->message);
  else
    note_failure(g, v, st, "its function returned %s", kiln_status_name(st));
}

/* The launch's queueing and host part, in schedule order. */
static void execute(kiln_graph g) {
  bool traced = kiln_trace_enabled();
  if (traced)
    (void)kiln_trace_range_begin(g->name, KILN_TRACE_USER);
  uint32_t n = g->node_count;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t v = g->order[i];
    kg_node *nv = &g->nodes[v];
    /* a predecessor known to have failed stops it; one pass also tells whether a
     * host node has a predecessor to wait for (none: the common host-only case) */
    uint32_t cause = KG_NONE;
    bool pending = false;
    for (uint32_t k = 0; k < nv->pred.count; k++) {
      const kg_state *ps = &g->state[nv->pred.v[k].node];
      if (!ps->done)
        pending = true;
      else if (ps->status != KILN_SUCCESS && cause == KG_NONE)
        cause = ps->cause;
    }
    if (cause == KG_NONE && !nv->device && pending) {
      /* host work: every device ancestor observed, every predecessor complete */
      wait_ancestors(g, v, false);
      for (uint32_t k = 0; k < nv->pred.count && cause == KG_NONE; k++) {
        uint32_t p = nv->pred.v[k].node;
        if (wait_node(g, p, 0, false) != KILN_SUCCESS)
          cause = g->state[p].cause;
      }
    }
    if (cause != KG_NONE) {
      skip_node(g, v, cause);
      continue;
    }
    if (nv->device)
      submit_node(g, v, traced);
    else if (nv->kind == KG_HOST)
      run_host(g, v);
    else {
      g->state[v].status = KILN_SUCCESS;
      g->state[v].done = true;
    }
  }
  if (traced)
    (void)kiln_trace_range_end();
}

/* ---------------------------------------------------------------- parallel host nodes */
/* With workers > 1 the executing thread still walks the schedule and queues device
 * nodes in schedule order (streams, events and kiln's buffer rules rely on it), but it
 * only *releases* host-kind nodes: after waiting their device ancestors it drops their
 * join counter by one; host-kind predecessors drop it as they finish; the thread that
 * brings it to zero makes the node ready. A finishing node keeps one ready successor
 * for its own thread (no hand-off) and pushes the others to the pool's FIFO. Before a
 * device node with host-kind predecessors is queued, and at the end of the walk, the
 * executing thread waits for them, running ready nodes itself meanwhile. */

static uint32_t pop_locked(kiln_graph g) {
  if (!g->ready_count)
    return KG_NONE;
  uint32_t v = g->ready[g->ready_head];
  g->ready_head = g->ready_head + 1 == g->state_cap ? 0 : g->ready_head + 1;
  g->ready_count--;
  return v;
}

static void pool_push(kiln_graph g, uint32_t v) {
  pthread_mutex_lock(&g->pool_lock);
  uint32_t at = g->ready_head + g->ready_count; /* each node is pushed once a launch */
  g->ready[at >= g->state_cap ? at - g->state_cap : at] = v;
  g->ready_count++;
  /* the executing thread may sleep on the same condition */
  if (atomic_load(&g->exec_waiting))
    pthread_cond_broadcast(&g->pool_cond);
  else
    pthread_cond_signal(&g->pool_cond);
  pthread_mutex_unlock(&g->pool_lock);
}

/* Run host-kind node v (its join is zero: every predecessor is final), then release
 * its host-kind successors. Returns one that became ready, for the caller to run. */
static uint32_t run_ready(kiln_graph g, uint32_t v) {
  kg_node *nv = &g->nodes[v];
  uint32_t cause = KG_NONE;
  for (uint32_t k = 0; k < nv->pred.count && cause == KG_NONE; k++) {
    const kg_state *ps = &g->state[nv->pred.v[k].node];
    if (ps->status != KILN_SUCCESS)
      cause = ps->cause;
  }
  if (cause != KG_NONE)
    skip_node(g, v, cause);
  else if (nv->kind == KG_HOST)
    run_host(g, v);
  else {
    g->state[v].status = KILN_SUCCESS;
    g->state[v].done = true;
  }
  /* seq_cst: with exec_waiting below, a Dekker pair with exec_wait's store of
   * exec_waiting and load of finished/host_left (no lost wake-up) */
  atomic_store(&g->state[v].finished, 1u);
  uint32_t next = KG_NONE;
  for (uint32_t k = 0; k < nv->succ.count; k++) {
    uint32_t w = nv->succ.v[k].node;
    if (g->nodes[w].device)
      continue;
    /* acq_rel: the release publishes v's state to w's runner; the acquire of the
     * last decrement sees every predecessor's */
    if (atomic_fetch_sub_explicit(&g->state[w].join, 1u, memory_order_acq_rel) == 1u) {
      if (next == KG_NONE)
        next = w;
      else
        pool_push(g, w);
    }
  }
  uint32_t left = atomic_fetch_sub(&g->host_left, 1u); /* seq_cst: as `finished` */
  /* wake the executing thread only for what it waits for (a futex wake per node
   * costs more than a tiny node) */
  if (atomic_load(&g->exec_waiting) && (left == 1u || atomic_load(&g->exec_awaits) == v)) {
    pthread_mutex_lock(&g->pool_lock);
    pthread_cond_broadcast(&g->pool_cond);
    pthread_mutex_unlock(&g->pool_lock);
  }
  return next;
}

static void run_chain(kiln_graph g, uint32_t v) {
  while (v != KG_NONE)
    v = run_ready(g, v);
}

static bool exec_done(kiln_graph g, uint32_t v) {
  return v == KG_NONE ? atomic_load(&g->host_left) == 0 : atomic_load(&g->state[v].finished) != 0;
}

/* The executing thread: until host-kind node v has finished (KG_NONE: every one has),
 * run ready nodes, else sleep on pool_cond. */
static void exec_wait(kiln_graph g, uint32_t v) {
  while (!exec_done(g, v)) {
    pthread_mutex_lock(&g->pool_lock);
    uint32_t w = pop_locked(g);
    if (w == KG_NONE) {
      atomic_store(&g->exec_awaits, v);     /* seq_cst, before exec_waiting: see run_ready */
      atomic_store(&g->exec_waiting, true); /* seq_cst: see run_ready */
      if (!exec_done(g, v))
        pthread_cond_wait(&g->pool_cond, &g->pool_lock);
      atomic_store(&g->exec_waiting, false);
    }
    pthread_mutex_unlock(&g->pool_lock);
    run_chain(g, w);
  }
}

static void *pool_thread(void *arg) {
  kiln_graph g = arg;
  pthread_mutex_lock(&g->pool_lock);
  for (;;) {
    uint32_t w = pop_locked(g);
    if (w == KG_NONE) {
      if (g->pool_quit)
        break;
      pthread_cond_wait(&g->pool_cond, &g->pool_lock);
      continue;
    }
    pthread_mutex_unlock(&g->pool_lock);
    run_chain(g, w);
    pthread_mutex_lock(&g->pool_lock);
  }
  pthread_mutex_unlock(&g->pool_lock);
  return NULL;
}

/* Start the pool's threads (g->lock held); already started ones are kept. */
static kiln_status pool_start_locked(kiln_graph g, const char *function) {
  while (g->pool_started + 1 < g->workers) {
    int rc = pthread_create(&g->pool[g->pool_started], NULL, pool_thread, g);
    if (rc != 0)
      return kiln_error_report(KILN_ERROR_OUT_OF_HOST_MEMORY, function,
                               "free resources, or create the graph with fewer workers",
                               "could not start worker %u of graph '%s': %s", g->pool_started + 1,
                               g->name, strerror(rc));
    g->pool_started++;
  }
  return KILN_SUCCESS;
}

static void pool_stop(kiln_graph g) {
  pthread_mutex_lock(&g->pool_lock);
  g->pool_quit = true;
  pthread_cond_broadcast(&g->pool_cond);
  pthread_mutex_unlock(&g->pool_lock);
  for (unsigned i = 0; i < g->pool_started; i++)
    pthread_join(g->pool[i], NULL);
  g->pool_started = 0;
}

static void execute_parallel(kiln_graph g) {
  bool traced = kiln_trace_enabled();
  if (traced)
    (void)kiln_trace_range_begin(g->name, KILN_TRACE_USER);
  uint32_t n = g->node_count;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t v = g->order[i];
    kg_node *nv = &g->nodes[v];
    if (!nv->device) {
      /* host-kind: every device ancestor observed, then released */
      if (nv->pred.count > nv->host_preds) {
        wait_ancestors(g, v, true);
        for (uint32_t k = 0; k < nv->pred.count; k++) {
          uint32_t p = nv->pred.v[k].node;
          if (g->nodes[p].device)
            (void)wait_node(g, p, 0, false);
        }
      }
      if (atomic_fetch_sub_explicit(&g->state[v].join, 1u, memory_order_acq_rel) == 1u)
        pool_push(g, v); /* not run here: the walk must go on to release the others */
      continue;
    }
    uint32_t cause = KG_NONE;
    for (uint32_t k = 0; k < nv->pred.count; k++) {
      uint32_t p = nv->pred.v[k].node;
      if (!g->nodes[p].device)
        exec_wait(g, p);
      const kg_state *ps = &g->state[p];
      if (cause == KG_NONE && ps->done && ps->status != KILN_SUCCESS)
        cause = ps->cause;
    }
    if (cause != KG_NONE)
      skip_node(g, v, cause);
    else
      submit_node(g, v, traced);
  }
  exec_wait(g, KG_NONE);
  if (traced)
    (void)kiln_trace_range_end();
}

static bool parallel(const kiln_graph g) {
  return g->workers > 1 && g->has_host;
}

static void run_execute(kiln_graph g) {
  if (parallel(g))
    execute_parallel(g);
  else
    execute(g);
}

static void *graph_thread(void *arg) {
  kiln_graph g = arg;
  pthread_mutex_lock(&g->lock);
  for (;;) {
    while (!g->thread_go && !g->thread_quit)
      pthread_cond_wait(&g->cond, &g->lock);
    if (g->thread_go) { /* a launch handed over before a quit still runs */
      g->thread_go = false;
      bool fut = g->future_mode;
      kiln_promise promise = g->promise;
      g->promise.id = 0;
      pthread_mutex_unlock(&g->lock);
      run_execute(g);
      pthread_mutex_lock(&g->lock);
      g->driver_done = true;
      pthread_cond_broadcast(&g->cond);
      if (fut) { /* kiln_graph_launch_future: this thread is the waiter */
        pthread_mutex_unlock(&g->lock);
        kiln_status st = finish_launch(g, 0, false, "kiln_graph_launch_future");
        char msg[512] = "";
        if (st != KILN_SUCCESS)
          snprintf(msg, sizeof msg, "%s", kiln_last_error()->message);
        /* the graph may be launched again from here on (the continuation may) */
        (void)kiln_promise_complete(&promise, st, st != KILN_SUCCESS ? msg : NULL);
        pthread_mutex_lock(&g->lock);
      }
      continue;
    }
    break;
  }
  pthread_mutex_unlock(&g->lock);
  return NULL;
}

/* Start a launch: compile when needed, reset the state, then queue (inline) or hand
 * over to the graph's thread. */
static kiln_status start_launch(kiln_graph g, const char *function, bool inline_run,
                                const kiln_promise *promise) {
  pthread_mutex_lock(&g->lock);
  if (g->running) {
    pthread_mutex_unlock(&g->lock);
    return kiln_error_report(KILN_ERROR_INVALID_STATE, function,
                             "call kiln_graph_wait for the launch in flight first",
                             "graph '%s' has a launch in flight (one at a time)", g->name);
  }
  if (g->dirty) {
    kiln_status st = compile_locked(g, function);
    if (st != KILN_SUCCESS) {
      pthread_mutex_unlock(&g->lock);
      return st;
    }
  }
  bool threaded = promise || (!inline_run && g->has_host);
  if (parallel(g)) {
    kiln_status st = pool_start_locked(g, function);
    if (st != KILN_SUCCESS) {
      pthread_mutex_unlock(&g->lock);
      return st;
    }
  }
  if (threaded && !g->thread_started) {
    int rc = pthread_create(&g->thread, NULL, graph_thread, g);
    if (rc != 0) {
      pthread_mutex_unlock(&g->lock);
      return kiln_error_report(KILN_ERROR_OUT_OF_HOST_MEMORY, function,
                               "free resources, or run the graph with kiln_graph_run",
                               "could not start the thread of graph '%s': %s", g->name,
                               strerror(rc));
    }
    g->thread_started = true;
  }
  for (uint32_t i = 0; i < g->node_count; i++) {
    kg_state *s = &g->state[i];
    s->token.id = 0;
    s->status = KILN_SUCCESS;
    s->cause = i;
    s->done = false;
    s->seen = false;
  }
  if (parallel(g)) { /* published to the workers by pool_push's lock */
    uint32_t hosts = 0;
    for (uint32_t i = 0; i < g->node_count; i++)
      if (!g->nodes[i].device) {
        atomic_store_explicit(&g->state[i].join, 1u + g->nodes[i].host_preds, memory_order_relaxed);
        atomic_store_explicit(&g->state[i].finished, 0u, memory_order_relaxed);
        hosts++;
      }
    atomic_store(&g->host_left, hosts);
  }
  g->root.node = g->dep.node = KG_NONE;
  g->running = true;
  g->driver_done = false;
  g->waiting = inline_run || promise; /* kiln_graph_run, or the graph's thread, waits */
  g->future_mode = promise != NULL;
  if (promise)
    g->promise = *promise;
  if (threaded) {
    g->executor = g->thread;
    g->executor_set = true;
    g->thread_go = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return KILN_SUCCESS;
  }
  g->executor = pthread_self();
  g->executor_set = true;
  pthread_mutex_unlock(&g->lock);
  run_execute(g);
  pthread_mutex_lock(&g->lock);
  g->driver_done = true;
  g->executor_set = false;
  pthread_mutex_unlock(&g->lock);
  return KILN_SUCCESS;
}

/* The waiter's part (g->waiting set by the caller): wait for the queueing part, then
 * every device node; report the first failure. */
static kiln_status finish_launch(kiln_graph g, uint64_t timeout_ns, bool timed,
                                 const char *function) {
  uint64_t deadline = timed ? now_ns() + timeout_ns : 0;
  pthread_mutex_lock(&g->lock);
  while (!g->driver_done) {
    if (!timed) {
      pthread_cond_wait(&g->cond, &g->lock);
      continue;
    }
    uint64_t now = now_ns();
    if (now >= deadline) {
      g->waiting = false;
      pthread_mutex_unlock(&g->lock);
      return KILN_TIMEOUT;
    }
    /* the condition uses the default clock (CLOCK_REALTIME): wait in short slices */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t slice = deadline - now < 1000000ull ? deadline - now : 1000000ull;
    ts.tv_nsec += (long)slice;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&g->cond, &g->lock, &ts);
  }
  g->executor_set = false;
  pthread_mutex_unlock(&g->lock);
  /* last node first: once the sinks are done most ops are too, and their waits only
   * look (one blocking wait per stream rather than one per op; the first failure is
   * chosen by schedule position, not by the order of these waits) */
  for (uint32_t i = g->node_count; i-- > 0;) {
    if (wait_node(g, g->order[i], deadline, timed) == KILN_TIMEOUT) {
      pthread_mutex_lock(&g->lock);
      g->waiting = false;
      pthread_mutex_unlock(&g->lock);
      return KILN_TIMEOUT;
    }
  }
  kg_failure *f = g->root.node != KG_NONE ? &g->root : g->dep.node != KG_NONE ? &g->dep : NULL;
  kiln_status st = KILN_SUCCESS;
  if (f) {
    const kg_node *nv = &g->nodes[f->node];
    st = kiln_error_report(f->status, function, f->suggestion,
                           "graph '%s' node '%s' (%s) failed: %s", g->name, nv->name,
                           kiln__graph_kind_name(nv->kind), f->message);
  }
  pthread_mutex_lock(&g->lock);
  g->running = false;
  g->waiting = false;
  g->future_mode = false;
  g->waited_once = true;
  pthread_mutex_unlock(&g->lock);
  return st;
}

kiln_status kiln_graph_launch(kiln_graph graph) {
  static const char f[] = "kiln_graph_launch";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  return start_launch(graph, f, false, NULL);
}

kiln_status kiln_graph_launch_future(kiln_graph graph, kiln_future *future) {
  static const char f[] = "kiln_graph_launch_future";
  if (!future)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the address of a kiln_future",
                             "future (the out-parameter) is NULL");
  future->id = 0;
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  kiln_future fut = KILN_FUTURE_INIT;
  kiln_promise promise = KILN_PROMISE_INIT;
  st = kiln_future_promise(graph->context, &fut, &promise);
  if (st != KILN_SUCCESS)
    return pass_on(st, f, "graph '%s': making its future", graph->name);
  st = start_launch(graph, f, false, &promise);
  if (st != KILN_SUCCESS) { /* the future is given up; the launch's refusal reported */
    char msg[512], sugg[256];
    snprintf(msg, sizeof msg, "%s", kiln_last_error()->message);
    snprintf(sugg, sizeof sugg, "%s", kiln_last_error()->suggestion);
    (void)kiln_promise_complete(&promise, st, NULL);
    (void)kiln_future_drop(&fut);
    return kiln_error_report(st, f, sugg[0] ? sugg : NULL, "%s", msg);
  }
  *future = fut;
  return KILN_SUCCESS;
}

static kiln_status begin_wait(kiln_graph g, const char *function) {
  pthread_mutex_lock(&g->lock);
  while (g->querying) /* a query reads the tokens: a short wait */
    pthread_cond_wait(&g->cond, &g->lock);
  kiln_status st = KILN_SUCCESS;
  if (!g->running)
    st = kiln_error_report(KILN_ERROR_INVALID_STATE, function,
                           "call kiln_graph_launch first (kiln_graph_run launches and waits)",
                           "graph '%s' has no launch in flight", g->name);
  else if (g->future_mode)
    st = kiln_error_report(
        KILN_ERROR_INVALID_STATE, function, "wait the future kiln_graph_launch_future returned",
        "graph '%s' was launched by kiln_graph_launch_future: wait the future it returned",
        g->name);
  else if (g->waiting)
    st = kiln_error_report(KILN_ERROR_INVALID_STATE, function, "wait for a launch from one thread",
                           "another thread is already waiting for graph '%s'", g->name);
  else if (own_thread_locked(g))
    st = kiln_error_report(KILN_ERROR_INVALID_STATE, function,
                           "a host node must not wait for its own graph",
                           "graph '%s' is waited for from one of its own host nodes", g->name);
  else
    g->waiting = true;
  pthread_mutex_unlock(&g->lock);
  return st;
}

kiln_status kiln_graph_wait(kiln_graph graph) {
  static const char f[] = "kiln_graph_wait";
  kiln_status st = kiln__graph_check(graph, f);
  if (st == KILN_SUCCESS)
    st = begin_wait(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  return finish_launch(graph, 0, false, f);
}

kiln_status kiln_graph_wait_timeout(kiln_graph graph, uint64_t timeout_ns) {
  static const char f[] = "kiln_graph_wait_timeout";
  kiln_status st = kiln__graph_check(graph, f);
  if (st == KILN_SUCCESS)
    st = begin_wait(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  return finish_launch(graph, timeout_ns, true, f);
}

kiln_status kiln_graph_query(kiln_graph graph) {
  static const char f[] = "kiln_graph_query";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  kiln_graph g = graph;
  pthread_mutex_lock(&g->lock);
  if (!g->running) {
    pthread_mutex_unlock(&g->lock);
    return KILN_SUCCESS;
  }
  if (!g->driver_done || g->waiting || g->querying) {
    pthread_mutex_unlock(&g->lock);
    return KILN_NOT_READY;
  }
  /* the queueing part is over and no waiter writes the state; a wait that starts now
   * waits for this query to end (begin_wait) */
  g->querying = true;
  pthread_mutex_unlock(&g->lock);
  st = KILN_SUCCESS;
  for (uint32_t i = 0; i < g->node_count && st == KILN_SUCCESS; i++) {
    const kg_state *s = &g->state[i];
    if (!s->done && s->token.id && kiln_pending_query(&s->token) == KILN_NOT_READY)
      st = KILN_NOT_READY;
  }
  pthread_mutex_lock(&g->lock);
  g->querying = false;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
  return st;
}

kiln_status kiln_graph_run(kiln_graph graph) {
  static const char f[] = "kiln_graph_run";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  if ((st = start_launch(graph, f, true, NULL)) != KILN_SUCCESS)
    return st;
  return finish_launch(graph, 0, false, f);
}

kiln_status kiln_graph_node_status(kiln_graph graph, kiln_graph_node node) {
  static const char f[] = "kiln_graph_node_status";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  kiln_graph g = graph;
  pthread_mutex_lock(&g->lock);
  uint32_t v = 0;
  if ((st = node_index_locked(g, node, f, "node", &v)) != KILN_SUCCESS)
    goto out;
  if (g->running || !g->waited_once || v >= g->state_cap || g->dirty) {
    st = KILN_NOT_READY;
    goto out;
  }
  const kg_state *s = &g->state[v];
  st = s->status;
  if (st == KILN_ERROR_DEPENDENCY_FAILED && s->cause != v)
    kiln_error_report(st, f, "handle the failure of the node named",
                      "node '%s' of graph '%s' did not run: its predecessor '%s' failed with %s",
                      g->nodes[v].name, g->name, g->nodes[s->cause].name,
                      kiln_status_name(g->state[s->cause].status));
  else if (st != KILN_SUCCESS)
    kiln_error_report(st, f, NULL, "node '%s' (%s) of graph '%s' failed with %s in the last launch",
                      g->nodes[v].name, kiln__graph_kind_name(g->nodes[v].kind), g->name,
                      kiln_status_name(st));
out:
  pthread_mutex_unlock(&g->lock);
  return st;
}
