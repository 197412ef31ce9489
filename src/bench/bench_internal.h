/* SPDX-License-Identifier: MIT */
/* Internals shared by the files of src/bench: a small streaming JSON writer and the
 * host description. Not installed; only src/bench includes it. */
#ifndef KILN_BENCH_INTERNAL_H
#define KILN_BENCH_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

/* Pretty-printing JSON writer. Each value call takes the member's key inside an object
 * and NULL inside an array or at the top. Non-finite numbers are written as null.
 * Errors of the stream are sticky in `failed`. */
typedef struct kiln__json {
  FILE *out;
  int depth;
  int first[32];   /* no member written yet at this depth */
  int failed;
} kiln__json;

void kiln__json_init(kiln__json *j, FILE *out);
void kiln__json_begin_object(kiln__json *j, const char *key);
void kiln__json_end_object(kiln__json *j);
void kiln__json_begin_array(kiln__json *j, const char *key);
void kiln__json_end_array(kiln__json *j);
void kiln__json_string(kiln__json *j, const char *key, const char *value);
void kiln__json_number(kiln__json *j, const char *key, double value);
void kiln__json_uint(kiln__json *j, const char *key, uint64_t value);
void kiln__json_int(kiln__json *j, const char *key, int64_t value);
void kiln__json_null(kiln__json *j, const char *key);
/* Ends the document with a newline; returns 0, or -1 if any write failed. */
int kiln__json_finish(kiln__json *j);

typedef struct kiln__bench_host {
  char hostname[256];
  char cpu[256];
  unsigned cores;
  char os[256];
} kiln__bench_host;

void kiln__bench_host_get(kiln__bench_host *host);

#endif
