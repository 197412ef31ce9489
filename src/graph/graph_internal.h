/* SPDX-License-Identifier: MIT */
/* The task graph's objects, shared by graph.c (building, compiling, launching) and
 * graph_dot.c (introspection). src/graph sits above kiln's public API: it includes
 * only public headers (ctest packaging.layering) and allocates through
 * kiln_allocator_alloc, reports through kiln_error_report. */
#ifndef KILN_GRAPH_INTERNAL_H
#define KILN_GRAPH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "kiln/graph.h"

#define KG_MAGIC 0x4b475246u /* KGRF */
#define KG_NAME_BYTES 48
#define KG_NONE UINT32_MAX

enum kg_kind { KG_HOST = 1, KG_KERNEL, KG_WRITE, KG_READ, KG_COPY, KG_FILL, KG_EMPTY };

/* Edge flags: why the edge exists, and what the schedule made of it. */
enum {
  KG_E_EXPLICIT = 1u << 0, /* kiln_graph_precede */
  KG_E_DATA = 1u << 1,     /* buffer use (kiln's own hazard rules also order it) */
  KG_E_WAIT = 1u << 2      /* compiled: the successor's stream waits for the event of
                              the predecessor (set on the successor's pred entry) */
};

typedef struct kg_edge {
  uint32_t node;
  uint32_t flags;
} kg_edge;

typedef struct kg_edges {
  kg_edge *v;
  uint32_t count, cap;
} kg_edges;

typedef struct kg_node {
  int kind;
  char name[KG_NAME_BYTES];
  kg_edges succ, pred;
  union {
    struct {
      kiln_graph_host_fn fn;
      void *user;
    } host;
    struct {
      kiln_kernel kernel;
      kiln_range range;
      kiln_arg *args; /* count entries; scalar values point into `scalars` */
      size_t count;
      unsigned char *scalars;
      size_t scalar_bytes;
    } kern;
    struct {
      kiln_buffer buf;
      size_t offset, bytes;
      const void *src;
    } write;
    struct {
      kiln_buffer buf;
      size_t offset, bytes;
      void *dst;
    } read;
    struct {
      kiln_buffer dst, src;
      size_t dst_offset, src_offset, bytes;
    } copy;
    struct {
      kiln_buffer buf;
      size_t offset, bytes, pattern_bytes;
      unsigned char pattern[128];
    } fill;
  } u;
  /* compiled (valid while the graph is not dirty) */
  bool device;         /* queued on a stream: an op node, or an empty node after one */
  bool needs_event;    /* a successor on another stream waits for it */
  uint32_t stream;     /* index into graph->streams (device nodes) */
  uint32_t position;   /* in the schedule */
  uint32_t host_preds; /* predecessors that are not device nodes (parallel launches) */
  kiln_event event;    /* made when first needed, kept until the graph is destroyed */
} kg_node;

/* One buffer's users so far, in insertion order (implicit edges). */
typedef struct kg_buffer_use {
  kiln_buffer buffer;
  uint32_t writer; /* KG_NONE */
  uint32_t *readers;
  uint32_t reader_count, reader_cap;
} kg_buffer_use;

/* One node's state in a launch. */
typedef struct kg_state {
  kiln_pending token; /* of its op while not yet waited */
  kiln_status status;
  uint32_t cause; /* the node whose failure stopped it (itself when it failed) */
  bool done;      /* status is final */
  bool seen;      /* pushed by wait_ancestors in this launch */
  /* parallel launches (workers > 1), host-kind nodes: the executing thread's release
   * (1) plus the host-kind predecessors not yet finished; the thread that brings it
   * to zero runs the node */
  _Atomic uint32_t join;
  _Atomic uint32_t finished; /* host-kind node: status final (release; pairs with the
                                acquire loads of the executing thread) */
} kg_state;

/* The first failure of a launch (in schedule order), with kiln's detail of it. */
typedef struct kg_failure {
  uint32_t node; /* KG_NONE: none */
  uint32_t position;
  kiln_status status;
  char message[512];
  char suggestion[256];
} kg_failure;

struct kiln_graph_s {
  uint32_t magic;
  uint32_t serial;
  kiln_context context;
  char name[KG_NAME_BYTES];
  unsigned flags;
  unsigned max_streams;
  pthread_mutex_t lock;
  pthread_cond_t cond;

  kg_node *nodes;
  uint32_t node_count, node_cap;
  size_t edge_count;
  kg_buffer_use *uses;
  uint32_t use_count, use_cap;
  bool has_backward; /* an explicit edge from a later node to an earlier one */
  bool has_host;     /* a host node (a launch then needs a thread of the graph's) */
  bool dirty;        /* changed since the last compile */

  /* the schedule */
  uint32_t *order;
  uint32_t *stack; /* scratch of wait_ancestors */
  kg_state *state;
  uint32_t state_cap; /* entries of order, stack and state */
  kiln_stream streams[KILN_GRAPH_MAX_STREAMS];
  uint32_t stream_count;

  /* launches: fields under `lock` unless said */
  bool running;       /* launched, not yet waited to the end */
  bool driver_done;   /* the queueing and host part of the launch has finished */
  bool waiting;       /* a thread is in kiln_graph_wait */
  bool querying;      /* a thread is reading the tokens in kiln_graph_query */
  bool waited_once;   /* node_status is meaningful */
  pthread_t executor; /* the thread running the launch's queueing part */
  bool executor_set;
  bool thread_started, thread_go, thread_quit;
  pthread_t thread;
  kg_failure root; /* first failure other than DEPENDENCY_FAILED; by the executing
                      thread, then by the waiter (never at once) */
  kg_failure dep;  /* first DEPENDENCY_FAILED reported by kiln itself */

  /* the host-node pool (workers > 1): workers - 1 threads of the graph's own plus the
   * executing thread, which runs ready nodes while it waits for one */
  unsigned workers;
  pthread_mutex_t fail_lock; /* root and dep, written by several threads in parallel */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond;         /* work pushed, quit, what the executing thread awaits */
  uint32_t *ready;                  /* FIFO ring of ready host-kind nodes, state_cap entries */
  uint32_t ready_head, ready_count; /* under pool_lock */
  _Atomic uint32_t host_left;       /* host-kind nodes of this launch not yet finished */
  _Atomic bool exec_waiting;        /* the executing thread sleeps on pool_cond */
  _Atomic uint32_t exec_awaits;     /* for this node's end (KG_NONE: for every node's) */
  bool pool_quit;                   /* under pool_lock */
  unsigned pool_started;            /* threads started */
  pthread_t pool[KILN_GRAPH_MAX_WORKERS];
  /* kiln_graph_launch_future: the graph's thread waits the launch and completes it */
  bool future_mode;
  kiln_promise promise;
};

/* Validation of a graph handle (magic); fills error detail naming `function`. */
kiln_status kiln__graph_check(kiln_graph graph, const char *function);
/* The kind's name ("host", "kernel", ...). */
const char *kiln__graph_kind_name(int kind);

#endif
