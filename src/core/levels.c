/* SPDX-License-Identifier: MIT */
/* The feature-level scan of a dialect source (levels.h): the declaration
 * `KILN_FEATURE_LEVEL(name)` and the names that belong to a level. A level's names are
 * refused unless the source declares the level, so a kernel that compiles on one
 * backend (where the prelude happens to define them) cannot fail only on another. Pure
 * text work, no allocation, any thread. */
#include "core/levels.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/kparse.h"
#include "core/prelude.h"

static const char *const level_names[] = {
    [KILN__LEVEL_BASE] = "base",
    [KILN__LEVEL_SCOPED_ATOMICS] = "scoped_atomics",
};
#define LEVEL_COUNT (sizeof level_names / sizeof level_names[0])

const char *kiln__level_name(kiln__level level) {
  return (size_t)level < LEVEL_COUNT ? level_names[level] : "unknown";
}

static bool ident_start(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool ident_char(char c) {
  return ident_start(c) || (c >= '0' && c <= '9');
}

static bool has_prefix(const char *id, size_t n, const char *prefix) {
  size_t p = strlen(prefix);
  return n > p && !memcmp(id, prefix, p);
}

/* The level an identifier of the dialect belongs to (BASE for every other name). */
static kiln__level level_of(const char *id, size_t n) {
  static const char explicit_suffix[] = "_explicit";
  size_t s = sizeof explicit_suffix - 1;
  if ((n == 10 && !memcmp(id, "kiln_fence", 10)) || has_prefix(id, n, "KILN_ORDER_") ||
      has_prefix(id, n, "KILN_SCOPE_") ||
      (has_prefix(id, n, "kiln_atomic") && n > s && !memcmp(id + n - s, explicit_suffix, s)))
    return KILN__LEVEL_SCOPED_ATOMICS;
  return KILN__LEVEL_BASE;
}

static kiln_status parse_error(const char *src, size_t at, const char *fmt, const char *a,
                               const char *b) {
  unsigned line, column;
  kiln__kparse_position(src, at, &line, &column);
  char what[320];
  snprintf(what, sizeof what, fmt, a, b);
  return kiln__error(KILN_ERROR_PARSE, "line %u, column %u: %s", line, column, what);
}

static size_t skip_blank(const char *src, size_t len, size_t i) {
  while (i < len && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r'))
    i++;
  return i;
}

kiln_status kiln__dialect_level(const char *src, size_t len, kiln__level *level) {
  *level = KILN__LEVEL_BASE;
  bool declared[LEVEL_COUNT] = {false};
  size_t first_use[LEVEL_COUNT] = {0};
  bool used[LEVEL_COUNT] = {false};
  char name[64];
  size_t i = 0, declaration = len; /* the first KILN_FEATURE_LEVEL */
  while (i < len) {
    size_t next = kiln__skip_lexical(src, len, i);
    if (next != i) {
      i = next;
      continue;
    }
    if (!ident_start(src[i]) || (i > 0 && ident_char(src[i - 1]))) {
      i++;
      continue;
    }
    size_t begin = i;
    while (i < len && ident_char(src[i]))
      i++;
    size_t n = i - begin;
    if (n == 18 && !memcmp(src + begin, "KILN_FEATURE_LEVEL", 18)) {
      if (declaration < len) { /* the prelude's enum would be defined twice */
        unsigned first, column;
        kiln__kparse_position(src, declaration, &first, &column);
        char what[96];
        snprintf(what, sizeof what, "%u", first);
        return parse_error(src, begin,
                           "a second KILN_FEATURE_LEVEL (the first is on line %s): declare "
                           "the level once%s",
                           what, "");
      }
      declaration = begin;
      size_t at = skip_blank(src, len, i);
      if (at >= len || src[at] != '(')
        return parse_error(src, begin, "KILN_FEATURE_LEVEL needs a level name in parentheses: %s%s",
                           "KILN_FEATURE_LEVEL(scoped_atomics);", "");
      size_t nb = skip_blank(src, len, at + 1), ne = nb;
      while (ne < len && ident_char(src[ne]))
        ne++;
      size_t close = skip_blank(src, len, ne);
      snprintf(name, sizeof name, "%.*s", (int)(ne - nb < 63 ? ne - nb : 63), src + nb);
      if (close >= len || src[close] != ')')
        return parse_error(src, begin, "KILN_FEATURE_LEVEL(%s: expected one level name and ')'%s",
                           name, "");
      size_t k = 1; /* "base" is not declared: it is what every program has */
      while (k < LEVEL_COUNT && strcmp(name, level_names[k]) != 0)
        k++;
      if (k == LEVEL_COUNT)
        return parse_error(src, nb,
                           "unknown feature level '%s' (the levels a program can declare: "
                           "%s)",
                           name, "scoped_atomics");
      declared[k] = true;
      if ((kiln__level)k > *level)
        *level = (kiln__level)k;
      i = close + 1;
      continue;
    }
    kiln__level l = level_of(src + begin, n);
    if (l != KILN__LEVEL_BASE && !used[l]) {
      used[l] = true;
      first_use[l] = begin;
    }
  }
  for (size_t k = 1; k < LEVEL_COUNT; k++) {
    if (!used[k] || declared[k])
      continue;
    size_t b = first_use[k], e = b;
    while (e < len && ident_char(src[e]))
      e++;
    snprintf(name, sizeof name, "%.*s", (int)(e - b < 63 ? e - b : 63), src + b);
    return parse_error(src, b,
                       "'%s' belongs to the feature level '%s', which this source does not "
                       "declare: add `KILN_FEATURE_LEVEL(scoped_atomics);` before its kernels",
                       name, level_names[k]);
  }
  return KILN_SUCCESS;
}
