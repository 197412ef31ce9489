/* SPDX-License-Identifier: MIT */
/* Text into a caller's buffer for src/graph's dumps (kiln_graph_dump_dot,
 * kiln_hybrid_stats_json): an appender that keeps counting past the end, so a call
 * can report the size it needed, as kiln's *_json calls do. Not thread-safe: one
 * appender per call. */
#ifndef KILN_GRAPH_TEXT_H
#define KILN_GRAPH_TEXT_H

#include <stddef.h>

typedef struct kg_text {
  char *buf;    /* may be NULL when bytes is 0 */
  size_t bytes; /* the buffer's size */
  size_t len;   /* what was appended, written or not (excluding the terminator) */
} kg_text;

/* Append printf-style; what does not fit is counted, not written. */
void kg_text_put(kg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
