/* SPDX-License-Identifier: MIT */
/* The kernel signature parser of the kiln dialect (docs/kernels.md). It finds every
 * `KILN_KERNEL void name(...) {` in a source text and derives each parameter's kind
 * (buffer read / read-write, scalar of N bytes, local memory) so the core can check
 * launch arguments on every backend before anything reaches a driver. It never
 * allocates: the caller owns the kiln__kfunc array. Any thread may call it. */
#ifndef KILN_KPARSE_H
#define KILN_KPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kernel.h"
#include "kiln/status.h"

typedef struct kiln__kparam {
  kiln_param_kind kind; /* BUFFER_READ (KILN_GLOBAL const T *), BUFFER_READ_WRITE
                           (KILN_GLOBAL T *), SCALAR, LOCAL (KILN_LOCAL T *) */
  size_t bytes;         /* scalar size in bytes; 0 for the other kinds */
  char type[48];        /* element or scalar type as written, words joined by one
                           space: "float", "unsigned int", "struct particle" */
  char name[64];        /* parameter name */
  size_t begin, end;    /* source span of the whole declaration [begin, end) */
} kiln__kparam;

typedef struct kiln__kfunc {
  char name[64];
  uint32_t param_count;
  kiln__kparam params[KILN_MAX_KERNEL_ARGS];
  size_t open_paren, close_paren; /* offsets of '(' and ')' of the parameter list */
  size_t body_open;               /* offset of the '{' opening the body */
  /* Set by the program builder, not the parser (0 from kiln__kparse): the OpenCL
   * rewrite adds no hidden global-size parameters (kiln__dialect_mark_sizes). */
  bool no_sizes;
  unsigned line; /* 1-based line of KILN_KERNEL */
} kiln__kfunc;

/* Find every `KILN_KERNEL void name(...) {` in source[0..len) — skipping comments,
 * string and character literals and preprocessor lines — and parse its parameters.
 * Writes up to `max` kernels to out (in source order) and the number found to *count.
 * out == NULL (max ignored): only count them. Errors:
 *   KILN_ERROR_PARSE "line L, column C: <what>" for a signature outside the dialect
 *     (unknown or vector type, pointer without KILN_GLOBAL/KILN_LOCAL, more than
 *     KILN_MAX_KERNEL_ARGS parameters, missing ')', a kernel defined twice, ...);
 *     *count is then the number of kernels parsed before the faulty one.
 *   KILN_ERROR_LIMIT_EXCEEDED when there are more than max kernels: the first max are
 *     in out and *count is the total, so the caller can retry with a bigger array. */
kiln_status kiln__kparse(const char *source, size_t len, kiln__kfunc *out, size_t max,
                         size_t *count);

/* The kernel called `name` in an already parsed list, or NULL. */
const kiln__kfunc *kiln__kfind(const kiln__kfunc *funcs, size_t count, const char *name);

/* 1-based line and column (in bytes) of `offset` in source. */
void kiln__kparse_position(const char *source, size_t offset, unsigned *line, unsigned *column);

#endif
