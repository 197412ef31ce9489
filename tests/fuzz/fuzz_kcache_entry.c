/* SPDX-License-Identifier: MIT */
/* libFuzzer target of the compile cache's entry reader (src/kcache/entry.c), built by
 * tests/fuzz.cmake with ASan+UBSan. Two properties per input:
 *   1. any bytes, read as an entry file, are checked without reading outside them,
 *      and what passes has its payload inside them;
 *   2. the input as a payload makes a valid entry, which passes; then a bit flip and a
 *      truncation chosen by the input must each be caught.
 * A violation aborts (libFuzzer reports it with the input). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcache/kcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_kcache_entry: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln__kcache_key key;
  for (unsigned i = 0; i < sizeof key.b; i++)
    key.b[i] = (uint8_t)(i * 31u + size);
  /* 1: an exact-size copy, so ASan sees any read past the end */
  uint8_t *copy = malloc(size ? size : 1);
  if (size)
    memcpy(copy, data, size);
  size_t n = 99;
  if (!kiln__kcache_entry_check(copy, size, NULL, NULL, &n))
    require(n == size - KILN__KCACHE_HEADER_BYTES, "a passing entry's payload is not the rest");
  else
    require(n == 0, "a refused entry reports a payload");
  kiln__kcache_entry_check(copy, size, "program", &key, &n);
  free(copy);

  /* 2: a valid entry over the input, then one change */
  if (size < 4)
    return 0;
  size_t len = KILN__KCACHE_HEADER_BYTES + size - 4;
  uint8_t *buf = malloc(len);
  kiln__kcache_entry_header(buf, "fuzz", &key, data + 4, size - 4, 7);
  memcpy(buf + KILN__KCACHE_HEADER_BYTES, data + 4, size - 4);
  require(kiln__kcache_entry_check(buf, len, "fuzz", &key, &n) == NULL, "a valid entry refused");
  require(n == size - 4, "a valid entry's payload size is wrong");
  size_t pos = ((size_t)data[0] | (size_t)data[1] << 8) % len;
  buf[pos] ^= (uint8_t)(1u << (data[2] & 7));
  require(kiln__kcache_entry_check(buf, len, "fuzz", &key, &n) != NULL,
          "a bit flip went unnoticed");
  buf[pos] ^= (uint8_t)(1u << (data[2] & 7));
  size_t cut = data[3] % len; /* strictly shorter */
  require(kiln__kcache_entry_check(buf, cut, "fuzz", &key, &n) != NULL,
          "a truncation went unnoticed");
  free(buf);
  return 0;
}
