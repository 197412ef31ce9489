/* SPDX-License-Identifier: MIT */
/* Task graphs: a DAG of host functions, kernel launches, buffer transfers and joins,
 * built once, compiled once into a schedule (a topological order, device nodes placed
 * on a few streams of the graph's own, cross-stream edges as events) and launched
 * many times. Edges are explicit (kiln_graph_precede) and, by default, implied by the
 * buffers nodes use, in insertion order (read after write, write after read, write
 * after write: StarPU's sequential data consistency). Built on kiln's public API only
 * (src/graph): a graph is what a program could issue by hand. docs/graph.md. */
#ifndef KILN_GRAPH_H
#define KILN_GRAPH_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/future.h"
#include "kiln/kernel.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_graph_s *kiln_graph;

/* A node of one graph: a value (the graph's serial number and the node's index); zero
 * = no node. Valid only with the graph that made it, until that graph is destroyed. */
typedef struct kiln_graph_node {
  uint64_t id;
} kiln_graph_node;
#define KILN_GRAPH_NODE_INIT \
  { 0 }

/* kiln_graph_desc.flags */
enum {
  /* No edges from buffer use: only kiln_graph_precede orders nodes. (kiln's buffer
   * rules still order conflicting device work in the schedule's order.) */
  KILN_GRAPH_NO_IMPLICIT_DEPS = 1u << 0
};

/* Most streams one graph spreads its device nodes over. */
#define KILN_GRAPH_MAX_STREAMS 16u
/* Most threads one graph runs host nodes on. */
#define KILN_GRAPH_MAX_WORKERS 64u

typedef struct kiln_graph_desc {
  size_t struct_size;
  unsigned flags;       /* KILN_GRAPH_* */
  const char *name;     /* in errors, traces and the DOT dump; copied (47 bytes kept);
                           NULL: "graph-<serial>" */
  unsigned max_streams; /* streams for independent device branches, 1..16; 0: 4 */
  unsigned workers;     /* threads running independent host nodes at once, counting the
                           launching one (kiln_graph_run's caller, or the graph's thread),
                           1..64; 0: the machine's online cores (at most 64); 1: one at
                           a time in schedule order */
} kiln_graph_desc;
#define KILN_GRAPH_DESC_INIT \
  { sizeof(kiln_graph_desc), 0, NULL, 0, 0 }

/* How a host node uses a buffer (for implicit edges). */
typedef enum kiln_graph_access {
  KILN_GRAPH_READ = 1,
  KILN_GRAPH_WRITE = 2,
  KILN_GRAPH_READ_WRITE = 3
} kiln_graph_access;

typedef struct kiln_graph_use {
  kiln_buffer buffer;
  kiln_graph_access access;
} kiln_graph_use;

/* A host node's function: runs once per launch, after every predecessor has completed,
 * on the launching thread (kiln_graph_run) or the graph's own thread (kiln_graph_launch)
 * or, with desc.workers > 1, on one of the graph's worker threads, at the same time as
 * independent host nodes (docs/graph.md).
 * A status other than KILN_SUCCESS stops the node's successors (they report
 * KILN_ERROR_DEPENDENCY_FAILED) and is the launch's failure, naming the node. It may
 * call kiln (blocking calls included) but not launch, wait for or change its own graph. */
typedef kiln_status (*kiln_graph_host_fn)(void *user);

KILN_BEGIN_DECLS

/* desc may be NULL (defaults). The graph's streams are made at its first launch. */
KILN_API kiln_status kiln_graph_create(kiln_context context, const kiln_graph_desc *desc,
                                       kiln_graph *graph);
/* Waits for a launch in flight (its outcome is dropped), then destroys the graph's
 * streams and events and frees it. Destroy graphs before their context. NULL: no-op. */
KILN_API kiln_status kiln_graph_destroy(kiln_graph graph);

/* Nodes. `name` (may be NULL: "<kind>-<index>") is copied (47 bytes kept) and appears
 * in errors, the DOT dump and, while a trace records, in kiln's trace. Adding a node
 * while a launch is in flight is KILN_ERROR_INVALID_STATE. */
/* A host function; `uses` (may be NULL when use_count is 0) lists the buffers it
 * touches, for implicit edges only. */
KILN_API kiln_status kiln_graph_add_host(kiln_graph graph, const char *name, kiln_graph_host_fn fn,
                                         void *user, const kiln_graph_use *uses, size_t use_count,
                                         kiln_graph_node *node);
/* A kernel launch. The range and the arguments (scalar bytes too) are copied now; the
 * argument count and kinds are checked against the kernel's parameters now, and each
 * buffer argument uses its buffer as its parameter declares. */
KILN_API kiln_status kiln_graph_add_kernel(kiln_graph graph, const char *name, kiln_kernel kernel,
                                           const kiln_range *range, const kiln_arg *args,
                                           size_t count, kiln_graph_node *node);
/* Transfers, as kiln_buffer_write_async & co. Host memory (src, dst) is the caller's:
 * it is read or written at each launch and must stay valid while the graph lives; the
 * pattern of a fill is copied. Ranges are checked against the buffers' sizes now. */
KILN_API kiln_status kiln_graph_add_write(kiln_graph graph, const char *name, kiln_buffer dst,
                                          size_t offset, size_t bytes, const void *src,
                                          kiln_graph_node *node);
KILN_API kiln_status kiln_graph_add_read(kiln_graph graph, const char *name, kiln_buffer src,
                                         size_t offset, size_t bytes, void *dst,
                                         kiln_graph_node *node);
KILN_API kiln_status kiln_graph_add_copy(kiln_graph graph, const char *name, kiln_buffer dst,
                                         size_t dst_offset, kiln_buffer src, size_t src_offset,
                                         size_t bytes, kiln_graph_node *node);
KILN_API kiln_status kiln_graph_add_fill(kiln_graph graph, const char *name, kiln_buffer dst,
                                         size_t offset, size_t bytes, const void *pattern,
                                         size_t pattern_bytes, kiln_graph_node *node);
/* A node that does nothing: a join (or fork) point for edges. */
KILN_API kiln_status kiln_graph_add_empty(kiln_graph graph, const char *name,
                                          kiln_graph_node *node);

/* `before` completes before `after` starts. Both of this graph; a repeated edge is
 * accepted once. Refused: a node with itself (INVALID_ARGUMENT), a node of another
 * graph or a zero node (INVALID_HANDLE), an edge that closes a cycle
 * (INVALID_ARGUMENT naming the nodes on it). */
KILN_API kiln_status kiln_graph_precede(kiln_graph graph, kiln_graph_node before,
                                        kiln_graph_node after);

/* Start one launch and return: device nodes are queued on the graph's streams at once
 * when the graph has no host node, else by the graph's own thread, which also runs the
 * host nodes. One launch at a time: launching again before kiln_graph_wait is
 * KILN_ERROR_INVALID_STATE. The first launch after a change compiles the schedule. */
KILN_API kiln_status kiln_graph_launch(kiln_graph graph);
/* Wait for the launch: its first failure (in schedule order) naming the node, or
 * KILN_SUCCESS. No launch in flight, or one started by kiln_graph_launch_future (wait
 * its future): KILN_ERROR_INVALID_STATE. */
KILN_API KILN_NODISCARD kiln_status kiln_graph_wait(kiln_graph graph);
/* As kiln_graph_wait, giving up after timeout_ns with KILN_TIMEOUT (still in flight). */
KILN_API KILN_NODISCARD kiln_status kiln_graph_wait_timeout(kiln_graph graph, uint64_t timeout_ns);
/* KILN_SUCCESS when the launch is complete (or none is in flight), KILN_NOT_READY if
 * not. Does not report its outcome: kiln_graph_wait does. */
KILN_API kiln_status kiln_graph_query(kiln_graph graph);
/* Start one launch, as kiln_graph_launch, and make *future (zeroed on failure) a kiln
 * future that completes with the launch's outcome (the status and message
 * kiln_graph_wait would give): wait it, chain it (kiln_future_then, when_all) like any
 * other. The graph's own thread runs and waits the launch, and the graph is ready for
 * another launch before the future completes (a continuation may relaunch it). While
 * it is in flight kiln_graph_wait is KILN_ERROR_INVALID_STATE (wait the future);
 * kiln_graph_destroy waits for it and the future still completes. */
KILN_API kiln_status kiln_graph_launch_future(kiln_graph graph, kiln_future *future);
/* Launch and wait, the host nodes on the calling thread (and the graph's workers). */
KILN_API kiln_status kiln_graph_run(kiln_graph graph);

/* The node's outcome in the last waited launch: KILN_SUCCESS, its failure, or
 * KILN_ERROR_DEPENDENCY_FAILED when it was stopped by a failed predecessor (the detail
 * names that one). KILN_NOT_READY before any launch was waited. */
KILN_API kiln_status kiln_graph_node_status(kiln_graph graph, kiln_graph_node node);

/* Introspection. */
KILN_API kiln_status kiln_graph_node_count(kiln_graph graph, size_t *count);
KILN_API kiln_status kiln_graph_edge_count(kiln_graph graph, size_t *count);
/* The graph in Graphviz DOT (nodes with kind, name and, once compiled, stream;
 * implicit edges dashed) into buf (bytes, always terminated). *needed (may be NULL)
 * receives the length it needs without the terminator; a short buf is
 * KILN_ERROR_INVALID_ARGUMENT saying so, with *needed set. */
KILN_API kiln_status kiln_graph_dump_dot(kiln_graph graph, char *buf, size_t bytes, size_t *needed);

KILN_END_DECLS
#endif
