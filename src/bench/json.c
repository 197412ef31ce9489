/* SPDX-License-Identifier: MIT */
/* A streaming JSON writer for the benchmark report (the bench library may not depend
 * on tools/, which has its own). Writes UTF-8 strings with the escapes RFC 8259
 * requires, numbers with 17 significant digits at most, non-finite numbers as null.
 * Also the number formatting compare's messages use (kiln__json_format_number). */
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

void kiln__json_init(kiln__json *j, FILE *out) {
  memset(j, 0, sizeof *j);
  j->out = out;
  j->first[0] = 1;
}

static void put(kiln__json *j, const char *s) {
  if (fputs(s, j->out) == EOF)
    j->failed = 1;
}

static void indent(kiln__json *j) {
  for (int i = 0; i < j->depth; i++)
    put(j, "  ");
}

static void put_string(kiln__json *j, const char *s) {
  put(j, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    char buf[8];
    switch (*p) {
    case '"':
      put(j, "\\\"");
      break;
    case '\\':
      put(j, "\\\\");
      break;
    case '\n':
      put(j, "\\n");
      break;
    case '\r':
      put(j, "\\r");
      break;
    case '\t':
      put(j, "\\t");
      break;
    default:
      if (*p < 0x20) {
        snprintf(buf, sizeof buf, "\\u%04x", (unsigned)*p);
        put(j, buf);
      } else {
        buf[0] = (char)*p;
        buf[1] = '\0';
        put(j, buf);
      }
    }
  }
  put(j, "\"");
}

/* Separator, newline, indentation and key before a value. */
static void member(kiln__json *j, const char *key) {
  if (j->depth > 0) {
    put(j, j->first[j->depth] ? "\n" : ",\n");
    indent(j);
  }
  j->first[j->depth] = 0;
  if (key != NULL) {
    put_string(j, key);
    put(j, ": ");
  }
}

static void open_(kiln__json *j, const char *key, const char *bracket) {
  member(j, key);
  put(j, bracket);
  if (j->depth + 1 < (int)(sizeof j->first / sizeof j->first[0])) {
    j->depth++;
    j->first[j->depth] = 1;
  } else {
    j->failed = 1;
  }
}

static void close_(kiln__json *j, const char *bracket) {
  int empty = j->first[j->depth];
  j->depth--;
  if (!empty) {
    put(j, "\n");
    indent(j);
  }
  put(j, bracket);
}

void kiln__json_begin_object(kiln__json *j, const char *key) {
  open_(j, key, "{");
}
void kiln__json_end_object(kiln__json *j) {
  close_(j, "}");
}
void kiln__json_begin_array(kiln__json *j, const char *key) {
  open_(j, key, "[");
}
void kiln__json_end_array(kiln__json *j) {
  close_(j, "]");
}

void kiln__json_string(kiln__json *j, const char *key, const char *value) {
  member(j, key);
  put_string(j, value != NULL ? value : "");
}

void kiln__json_format_number(char *buf, size_t size, double value) {
  /* shortest of %.6g .. %.17g that reads back exactly */
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, value);
    if (!isfinite(value) || strtod(buf, NULL) == value)
      break;
  }
}

void kiln__json_number(kiln__json *j, const char *key, double value) {
  member(j, key);
  if (!isfinite(value)) {
    put(j, "null");
    return;
  }
  char buf[40];
  kiln__json_format_number(buf, sizeof buf, value);
  put(j, buf);
}

void kiln__json_uint(kiln__json *j, const char *key, uint64_t value) {
  char buf[24];
  member(j, key);
  snprintf(buf, sizeof buf, "%" PRIu64, value);
  put(j, buf);
}

void kiln__json_int(kiln__json *j, const char *key, int64_t value) {
  char buf[24];
  member(j, key);
  snprintf(buf, sizeof buf, "%" PRId64, value);
  put(j, buf);
}

void kiln__json_null(kiln__json *j, const char *key) {
  member(j, key);
  put(j, "null");
}

int kiln__json_finish(kiln__json *j) {
  put(j, "\n");
  if (fflush(j->out) == EOF)
    j->failed = 1;
  return j->failed ? -1 : 0;
}
