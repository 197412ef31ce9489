/* SPDX-License-Identifier: MIT */
/* A small streaming JSON writer for the CLI's machine-readable output. It places
 * commas, indents and escapes by itself; callers only say what comes next. Strings
 * are written as valid JSON whatever their bytes: control characters are escaped and
 * invalid UTF-8 becomes U+FFFD. Not thread-safe (one writer per output). */
#ifndef KILN_CLI_JSON_H
#define KILN_CLI_JSON_H

#include <stdint.h>
#include <stdio.h>

#define KILN_JSON_MAX_DEPTH 32

typedef struct kiln_json {
  FILE *out;
  int pretty;                                   /* 2-space indent, one value a line */
  int depth;                                    /* open objects and arrays */
  int after_key;                                /* a key was written, its value is next */
  unsigned char has_items[KILN_JSON_MAX_DEPTH]; /* per level: something written yet */
  unsigned char is_object[KILN_JSON_MAX_DEPTH];
  int misuse; /* nesting error (a bug in the caller) */
} kiln_json;

void kiln_json_init(kiln_json *j, FILE *out, int pretty);

void kiln_json_object_begin(kiln_json *j);
void kiln_json_object_end(kiln_json *j);
void kiln_json_array_begin(kiln_json *j);
void kiln_json_array_end(kiln_json *j);

/* Inside an object: the key of the next value. */
void kiln_json_key(kiln_json *j, const char *key);

/* Values. kiln_json_string(j, NULL) writes null; non-finite doubles write null. */
void kiln_json_string(kiln_json *j, const char *s);
void kiln_json_null(kiln_json *j);
void kiln_json_bool(kiln_json *j, int value);
void kiln_json_int(kiln_json *j, int64_t value);
void kiln_json_uint(kiln_json *j, uint64_t value);
void kiln_json_double(kiln_json *j, double value);

/* key + value in one call, for object members. */
void kiln_json_kv_string(kiln_json *j, const char *key, const char *s);
void kiln_json_kv_bool(kiln_json *j, const char *key, int value);
void kiln_json_kv_int(kiln_json *j, const char *key, int64_t value);
void kiln_json_kv_uint(kiln_json *j, const char *key, uint64_t value);
void kiln_json_kv_double(kiln_json *j, const char *key, double value);

/* Ends the document (a newline when it is complete) and flushes. Returns 0 when the
 * document was complete, well nested and written without a stream error; -1 otherwise. */
int kiln_json_finish(kiln_json *j);

/* Write `s` as a quoted JSON string to `out` (the escaping of kiln_json_string). */
void kiln_json_write_escaped(FILE *out, const char *s);

#endif
