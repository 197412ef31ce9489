/* SPDX-License-Identifier: MIT */
/* The JSON writer (json.h). Invariant: has_items[d] says whether level d has written a
 * member, so the next one is preceded by a comma; is_object[d] says whether members
 * there need a key. A key where none belongs (or none where one does), unbalanced
 * nesting or a second top-level value set `misuse`, and kiln__json_finish() then fails
 * rather than leave broken JSON unnoticed. Uses no kiln API: the tests compile it alone. */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln__json_init(kiln__json *j, FILE *out, int pretty) {
  memset(j, 0, sizeof *j);
  j->out = out;
  j->pretty = pretty;
}

static void newline_indent(kiln__json *j) {
  if (!j->pretty)
    return;
  fputc('\n', j->out);
  for (int d = 0; d < j->depth; ++d)
    fputs("  ", j->out);
}

/* Length of the valid UTF-8 sequence starting at s, or 0 if it is not one. */
static size_t utf8_sequence_length(const unsigned char *s) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xBF;
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    if (c == 0xED)
      hi = 0x9F; /* UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; ++i)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0; /* also stops at the terminating NUL */
  return n;
}

/* The escape of an ASCII character that needs one, or NULL. */
static const char *ascii_escape(unsigned char c) {
  switch (c) {
  case '"':
    return "\\\"";
  case '\\':
    return "\\\\";
  case '\b':
    return "\\b";
  case '\f':
    return "\\f";
  case '\n':
    return "\\n";
  case '\r':
    return "\\r";
  case '\t':
    return "\\t";
  default:
    return NULL;
  }
}

static void write_escaped(FILE *out, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', out);
  while (*s) {
    unsigned char c = *s;
    size_t n = c < 0x80 ? 1 : utf8_sequence_length(s);
    const char *esc = c < 0x80 ? ascii_escape(c) : NULL;
    if (esc)
      fputs(esc, out);
    else if (c < 0x20 || c == 0x7F)
      fprintf(out, "\\u%04x", (unsigned)c);
    else if (n == 0)
      fputs("\\ufffd", out); /* not UTF-8: replace the byte, go on with the next */
    else
      fwrite(s, 1, n, out);
    s += n ? n : 1;
  }
  fputc('"', out);
}

/* Before every value: the separator, the indentation and the key, checking that a key
 * is given exactly where the enclosing level is an object. */
static void member(kiln__json *j, const char *key) {
  if (j->depth == 0) {
    if (j->has_items[0] || key)
      j->misuse = 1; /* a second top-level value, or a key outside an object */
    j->has_items[0] = 1;
    return;
  }
  int d = j->depth;
  if (j->is_object[d] != (key != NULL))
    j->misuse = 1; /* an object member without a key, or a key inside an array */
  if (j->has_items[d])
    fputc(',', j->out);
  j->has_items[d] = 1;
  newline_indent(j);
  if (key) {
    write_escaped(j->out, key);
    fputs(j->pretty ? ": " : ":", j->out);
  }
}

static void open_level(kiln__json *j, const char *key, int is_object) {
  member(j, key);
  fputc(is_object ? '{' : '[', j->out);
  if (j->depth + 1 >= KILN__JSON_MAX_DEPTH) {
    j->misuse = 1;
    return;
  }
  j->depth++;
  j->has_items[j->depth] = 0;
  j->is_object[j->depth] = (unsigned char)is_object;
}

static void close_level(kiln__json *j, int is_object) {
  if (j->depth == 0 || j->is_object[j->depth] != is_object) {
    j->misuse = 1;
    return;
  }
  int had_items = j->has_items[j->depth];
  j->depth--;
  if (had_items)
    newline_indent(j);
  fputc(is_object ? '}' : ']', j->out);
}

void kiln__json_begin_object(kiln__json *j, const char *key) {
  open_level(j, key, 1);
}
void kiln__json_end_object(kiln__json *j) {
  close_level(j, 1);
}
void kiln__json_begin_array(kiln__json *j, const char *key) {
  open_level(j, key, 0);
}
void kiln__json_end_array(kiln__json *j) {
  close_level(j, 0);
}

void kiln__json_string(kiln__json *j, const char *key, const char *value) {
  member(j, key);
  if (value)
    write_escaped(j->out, value);
  else
    fputs("null", j->out);
}

void kiln__json_null(kiln__json *j, const char *key) {
  member(j, key);
  fputs("null", j->out);
}

void kiln__json_bool(kiln__json *j, const char *key, int value) {
  member(j, key);
  fputs(value ? "true" : "false", j->out);
}

void kiln__json_int(kiln__json *j, const char *key, int64_t value) {
  member(j, key);
  fprintf(j->out, "%lld", (long long)value);
}

void kiln__json_uint(kiln__json *j, const char *key, uint64_t value) {
  member(j, key);
  fprintf(j->out, "%llu", (unsigned long long)value);
}

void kiln__json_format_number(char *buf, size_t size, double value) {
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, value);
    if (!isfinite(value) || strtod(buf, NULL) == value)
      break;
  }
}

void kiln__json_number(kiln__json *j, const char *key, double value) {
  member(j, key);
  if (!isfinite(value)) { /* JSON has no NaN or infinity */
    fputs("null", j->out);
    return;
  }
  char buf[40];
  kiln__json_format_number(buf, sizeof buf, value);
  fputs(buf, j->out);
}

int kiln__json_finish(kiln__json *j) {
  int complete = j->depth == 0 && j->has_items[0] && !j->misuse;
  if (complete)
    fputc('\n', j->out);
  if (fflush(j->out) != 0 || ferror(j->out))
    return -1;
  return complete ? 0 : -1;
}
