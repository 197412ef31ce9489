/* SPDX-License-Identifier: MIT */
/* The CLI's JSON writer (see json.h). Invariant: has_items[d] says whether level d has
 * written a member, so the next one is preceded by a comma; after_key says the next
 * value belongs to a key and takes no separator. Nesting mistakes set `misuse` and
 * make kiln_json_finish() fail rather than print broken JSON silently. */
#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln_json_init(kiln_json *j, FILE *out, int pretty) {
  memset(j, 0, sizeof *j);
  j->out = out;
  j->pretty = pretty;
}

static void newline_indent(kiln_json *j) {
  if (!j->pretty)
    return;
  fputc('\n', j->out);
  for (int d = 0; d < j->depth; ++d)
    fputs("  ", j->out);
}

/* Called before every value and every key: the separator and the indentation. */
static void before_item(kiln_json *j, int is_key) {
  if (j->after_key) {
    if (is_key)
      j->misuse = 1; /* two keys in a row */
    j->after_key = 0;
    return;
  }
  if (j->depth == 0) {
    if (j->has_items[0])
      j->misuse = 1; /* a second top-level value */
    j->has_items[0] = 1;
    return;
  }
  int d = j->depth;
  if (j->is_object[d] && !is_key)
    j->misuse = 1; /* object member without a key */
  if (!j->is_object[d] && is_key)
    j->misuse = 1; /* key inside an array */
  if (j->has_items[d])
    fputc(',', j->out);
  j->has_items[d] = 1;
  newline_indent(j);
}

static void open_level(kiln_json *j, int is_object) {
  before_item(j, 0);
  fputc(is_object ? '{' : '[', j->out);
  if (j->depth + 1 >= KILN_JSON_MAX_DEPTH) {
    j->misuse = 1;
    return;
  }
  j->depth++;
  j->has_items[j->depth] = 0;
  j->is_object[j->depth] = (unsigned char)is_object;
}

static void close_level(kiln_json *j, int is_object) {
  if (j->depth == 0 || j->is_object[j->depth] != is_object || j->after_key) {
    j->misuse = 1;
    return;
  }
  int had_items = j->has_items[j->depth];
  j->depth--;
  if (had_items)
    newline_indent(j);
  fputc(is_object ? '}' : ']', j->out);
}

void kiln_json_object_begin(kiln_json *j) {
  open_level(j, 1);
}
void kiln_json_object_end(kiln_json *j) {
  close_level(j, 1);
}
void kiln_json_array_begin(kiln_json *j) {
  open_level(j, 0);
}
void kiln_json_array_end(kiln_json *j) {
  close_level(j, 0);
}

void kiln_json_key(kiln_json *j, const char *key) {
  before_item(j, 1);
  kiln_json_write_escaped(j->out, key ? key : "");
  fputs(j->pretty ? ": " : ":", j->out);
  j->after_key = 1;
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

void kiln_json_write_escaped(FILE *out, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', out);
  while (*s) {
    unsigned char c = *s;
    if (c < 0x80) {
      switch (c) {
      case '"':
        fputs("\\\"", out);
        break;
      case '\\':
        fputs("\\\\", out);
        break;
      case '\b':
        fputs("\\b", out);
        break;
      case '\f':
        fputs("\\f", out);
        break;
      case '\n':
        fputs("\\n", out);
        break;
      case '\r':
        fputs("\\r", out);
        break;
      case '\t':
        fputs("\\t", out);
        break;
      default:
        if (c < 0x20 || c == 0x7F)
          fprintf(out, "\\u%04x", (unsigned)c);
        else
          fputc(c, out);
      }
      s++;
      continue;
    }
    size_t n = utf8_sequence_length(s);
    if (n == 0) {
      fputs("\\ufffd", out); /* not UTF-8: replace the byte, go on with the next */
      s++;
    } else {
      fwrite(s, 1, n, out);
      s += n;
    }
  }
  fputc('"', out);
}

void kiln_json_string(kiln_json *j, const char *s) {
  if (!s) {
    kiln_json_null(j);
    return;
  }
  before_item(j, 0);
  kiln_json_write_escaped(j->out, s);
}

void kiln_json_null(kiln_json *j) {
  before_item(j, 0);
  fputs("null", j->out);
}

void kiln_json_bool(kiln_json *j, int value) {
  before_item(j, 0);
  fputs(value ? "true" : "false", j->out);
}

void kiln_json_int(kiln_json *j, int64_t value) {
  before_item(j, 0);
  fprintf(j->out, "%lld", (long long)value);
}

void kiln_json_uint(kiln_json *j, uint64_t value) {
  before_item(j, 0);
  fprintf(j->out, "%llu", (unsigned long long)value);
}

void kiln_json_double(kiln_json *j, double value) {
  if (!isfinite(value)) { /* JSON has no NaN or infinity */
    kiln_json_null(j);
    return;
  }
  before_item(j, 0);
  /* The shortest of %.15g / %.17g that reads back as the same double. */
  char buf[40];
  snprintf(buf, sizeof buf, "%.15g", value);
  if (strtod(buf, NULL) != value)
    snprintf(buf, sizeof buf, "%.17g", value);
  fputs(buf, j->out);
}

void kiln_json_kv_string(kiln_json *j, const char *key, const char *s) {
  kiln_json_key(j, key);
  kiln_json_string(j, s);
}
void kiln_json_kv_bool(kiln_json *j, const char *key, int value) {
  kiln_json_key(j, key);
  kiln_json_bool(j, value);
}
void kiln_json_kv_int(kiln_json *j, const char *key, int64_t value) {
  kiln_json_key(j, key);
  kiln_json_int(j, value);
}
void kiln_json_kv_uint(kiln_json *j, const char *key, uint64_t value) {
  kiln_json_key(j, key);
  kiln_json_uint(j, value);
}
void kiln_json_kv_double(kiln_json *j, const char *key, double value) {
  kiln_json_key(j, key);
  kiln_json_double(j, value);
}

int kiln_json_finish(kiln_json *j) {
  int complete = j->depth == 0 && !j->after_key && j->has_items[0] && !j->misuse;
  if (complete)
    fputc('\n', j->out);
  if (fflush(j->out) != 0 || ferror(j->out))
    return -1;
  return complete ? 0 : -1;
}
