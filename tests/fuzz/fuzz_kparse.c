/* SPDX-License-Identifier: MIT */
/* libFuzzer target: kiln's kernel-signature parser and the dialect rewrite take source
 * text from users, so any input must give a status, never a crash, an out-of-bounds
 * access or undefined behaviour. Built with clang -fsanitize=fuzzer,address,undefined
 * from the parser's own sources (tests/fuzz.cmake); seeds are the .kiln files of tests/kernels. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kparse.h"
#include "core/prelude.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static kiln__kfunc funcs[8];
  size_t count = 0;
  const char *src = (const char *)data;
  kiln_status st = kiln__kparse(src, size, funcs, 8, &count);
  if (st != KILN_SUCCESS || count > 8)
    return 0;
  for (size_t i = 0; i < count; i++) { /* spans lie inside the input */
    if (funcs[i].close_paren >= size || funcs[i].body_open >= size ||
        funcs[i].param_count > KILN_MAX_KERNEL_ARGS)
      abort();
    for (uint32_t p = 0; p < funcs[i].param_count; p++)
      if (funcs[i].params[p].end > size || funcs[i].params[p].begin > funcs[i].params[p].end)
        abort();
    (void)kiln__kfind(funcs, count, funcs[i].name);
  }
  for (int target = 0; target < 3; target++) {
    size_t need = 0;
    if (kiln__dialect_rewrite(src, size, funcs, count, (kiln__dialect_target)target, NULL, 0,
                              &need) != KILN_SUCCESS)
      continue;
    char *out = malloc(need + 1);
    if (!out)
      return 0;
    size_t got = 0;
    if (kiln__dialect_rewrite(src, size, funcs, count, (kiln__dialect_target)target, out, need + 1,
                              &got) == KILN_SUCCESS &&
        (got != need || out[got] != '\0'))
      abort();
    free(out);
  }
  return 0;
}
