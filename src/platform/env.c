/* SPDX-License-Identifier: MIT */
/* kiln's environment variables, read: pure parsing on getenv's text, no logging (this
 * layer sits below the core). An unset, empty or malformed value reads as the caller's
 * default; the core reports malformed ones once per process (src/core/env.c), with the
 * same parsers, so what is reported is what is read. Any thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"

int kiln__parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out) {
  if (!text || *text < '0' || *text > '9') /* no sign, no space, no empty text */
    return -1;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 0); /* decimal, 0x hex or 0 octal */
  if (errno || !end || *end || v < min || v > max)
    return -1;
  *out = (uint64_t)v;
  return 0;
}

int kiln__parse_word(const char *text, const char *const *words) {
  for (int i = 0; text && words[i]; i++)
    if (strcmp(text, words[i]) == 0)
      return i;
  return -1;
}

uint64_t kiln__env_uint(const char *name, uint64_t min, uint64_t max, uint64_t dflt) {
  uint64_t v;
  return kiln__parse_uint(getenv(name), min, max, &v) == 0 ? v : dflt;
}

int kiln__env_word(const char *name, const char *const *words, int dflt) {
  int i = kiln__parse_word(getenv(name), words);
  return i >= 0 ? i : dflt;
}

const char *const kiln__env_flag_words[] = {"0", "1", NULL};
const char *const kiln__env_ocl_events_words[] = {"needed", "all", NULL};

int kiln__env_flag(const char *name, int dflt) {
  return kiln__env_word(name, kiln__env_flag_words, dflt);
}
