/* SPDX-License-Identifier: MIT */
/* The one JSON writer of kiln's tools: the bench report (report.c) and the CLI's
 * `--json` output (tools/kiln, which links this library statically) both write with it.
 * A streaming writer: it places commas, indents and escapes by itself; each value call
 * takes its key inside an object and NULL inside an array or at the top. Strings come
 * out as valid JSON whatever their bytes (control characters escaped, invalid UTF-8 as
 * U+FFFD), NULL strings and non-finite numbers as null, doubles in the shortest form
 * that reads back exactly. Not thread-safe: one writer per output. Internal (kiln__),
 * not installed. */
#ifndef KILN_BENCH_JSON_H
#define KILN_BENCH_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KILN__JSON_MAX_DEPTH 32

typedef struct kiln__json {
  FILE *out;
  int pretty; /* 2-space indent, one value a line; else no white space at all */
  int depth;  /* open objects and arrays */
  unsigned char has_items[KILN__JSON_MAX_DEPTH]; /* per level: a member written yet */
  unsigned char is_object[KILN__JSON_MAX_DEPTH];
  int misuse; /* a nesting or key mistake of the caller: finish fails */
} kiln__json;

void kiln__json_init(kiln__json *j, FILE *out, int pretty);

void kiln__json_begin_object(kiln__json *j, const char *key);
void kiln__json_end_object(kiln__json *j);
void kiln__json_begin_array(kiln__json *j, const char *key);
void kiln__json_end_array(kiln__json *j);

void kiln__json_string(kiln__json *j, const char *key, const char *value); /* NULL: null */
void kiln__json_null(kiln__json *j, const char *key);
void kiln__json_bool(kiln__json *j, const char *key, int value);
void kiln__json_int(kiln__json *j, const char *key, int64_t value);
void kiln__json_uint(kiln__json *j, const char *key, uint64_t value);
void kiln__json_number(kiln__json *j, const char *key, double value); /* NaN, inf: null */

/* Ends the document (a newline when it is complete) and flushes. Returns 0 when the
 * document was complete, well nested and written without a stream error; else -1. */
int kiln__json_finish(kiln__json *j);

/* `value` as the writer prints it: the shortest of %.6g .. %.17g that reads back exactly
 * ("10", "-70350.7", "1e+308"); 40 bytes always suffice. Also compare's messages. */
void kiln__json_format_number(char *buf, size_t size, double value);

#endif
