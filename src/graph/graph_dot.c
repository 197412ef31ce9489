/* SPDX-License-Identifier: MIT */
/* Introspection of task graphs: node and edge counts and the Graphviz DOT dump (into
 * the caller's buffer, with the length needed on truncation, like kiln's *_json
 * calls). Reads the graph under its lock; safe while a launch is in flight. */
#include <string.h>

#include "graph_internal.h"
#include "text.h"

kiln_status kiln_graph_node_count(kiln_graph graph, size_t *count) {
  static const char f[] = "kiln_graph_node_count";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  if (!count)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the address of a size_t",
                             "count is NULL");
  pthread_mutex_lock(&graph->lock);
  *count = graph->node_count;
  pthread_mutex_unlock(&graph->lock);
  return KILN_SUCCESS;
}

kiln_status kiln_graph_edge_count(kiln_graph graph, size_t *count) {
  static const char f[] = "kiln_graph_edge_count";
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  if (!count)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass the address of a size_t",
                             "count is NULL");
  pthread_mutex_lock(&graph->lock);
  *count = graph->edge_count;
  pthread_mutex_unlock(&graph->lock);
  return KILN_SUCCESS;
}

/* A name as a DOT string's contents: quotes and backslashes escaped, control
 * characters dropped. */
static void put_name(kg_text *o, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      kg_text_put(o, "\\%c", c);
    else if (c >= 0x20)
      kg_text_put(o, "%c", c);
  }
}

kiln_status kiln_graph_dump_dot(kiln_graph graph, char *buf, size_t bytes, size_t *needed) {
  static const char f[] = "kiln_graph_dump_dot";
  if (needed)
    *needed = 0;
  kiln_status st = kiln__graph_check(graph, f);
  if (st != KILN_SUCCESS)
    return st;
  if (!buf && bytes)
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f, "pass a buffer, or bytes 0",
                             "buf is NULL but bytes is %zu", bytes);
  kiln_graph g = graph;
  kg_text o = {buf, bytes, 0};
  pthread_mutex_lock(&g->lock);
  kg_text_put(&o, "digraph \"");
  put_name(&o, g->name);
  kg_text_put(&o, "\" {\n  node [fontname=\"monospace\"];\n");
  for (uint32_t i = 0; i < g->node_count; i++) {
    const kg_node *n = &g->nodes[i];
    kg_text_put(&o, "  n%u [label=\"", i);
    put_name(&o, n->name);
    kg_text_put(&o, "\\n%s", kiln__graph_kind_name(n->kind));
    if (!g->dirty && n->device)
      kg_text_put(&o, " (stream %u)", n->stream);
    kg_text_put(&o, "\", shape=%s];\n",
                n->kind == KG_HOST    ? "ellipse"
                : n->kind == KG_EMPTY ? "point"
                                      : "box");
  }
  for (uint32_t i = 0; i < g->node_count; i++) {
    const kg_node *n = &g->nodes[i];
    for (uint32_t k = 0; k < n->succ.count; k++) {
      const kg_edge *e = &n->succ.v[k];
      kg_text_put(&o, "  n%u -> n%u%s;\n", i, e->node,
                  (e->flags & KG_E_EXPLICIT) ? "" : " [style=dashed]");
    }
  }
  kg_text_put(&o, "}\n");
  pthread_mutex_unlock(&g->lock);
  if (needed)
    *needed = o.len;
  if (o.len >= bytes) {
    if (bytes)
      buf[bytes - 1] = '\0';
    return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, f,
                             "pass a buffer of at least *needed + 1 bytes",
                             "the DOT text of graph '%s' needs %zu bytes and a terminator; buf "
                             "holds %zu",
                             g->name, o.len, bytes);
  }
  return KILN_SUCCESS;
}
