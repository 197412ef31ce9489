/* SPDX-License-Identifier: MIT */
/* Baseline of copy_64MiB and of the copy scaling case: libc memcpy between two blocks
 * aligned to 64 bytes as the CPU device's buffers are (posix_memalign), whose pages
 * were touched at set-up (as the kiln side's buffers are filled at set-up), so no
 * batch pays for page faults. Includes no kiln header (checked with nm). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"

typedef struct copy_state {
  unsigned char *src, *dst;
  size_t bytes;
} copy_state;

int bench_baseline_memcpy_setup(void *arg, void **state) {
  *state = NULL;
  size_t bytes = arg != NULL ? *(const size_t *)arg : 0;
  if (bytes == 0)
    return EINVAL;
  copy_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->bytes = bytes;
  void *src = NULL, *dst = NULL;
  if (posix_memalign(&src, 64, bytes) != 0)
    src = NULL;
  if (posix_memalign(&dst, 64, bytes) != 0)
    dst = NULL;
  s->src = src;
  s->dst = dst;
  if (s->src == NULL || s->dst == NULL) {
    free(s->src);
    free(s->dst);
    free(s);
    return ENOMEM;
  }
  memset(s->src, 0x5a, bytes);
  memset(s->dst, 0, bytes);
  *state = s;
  return 0;
}

void bench_baseline_memcpy_teardown(void *state) {
  copy_state *s = state;
  if (s == NULL)
    return;
  free(s->src);
  free(s->dst);
  free(s);
}

int bench_baseline_memcpy_run(void *state, uint64_t iters) {
  copy_state *s = state;
  for (uint64_t i = 0; i < iters; i++)
    memcpy(s->dst, s->src, s->bytes);
  /* dst is reachable from the caller's state, so the copies cannot be elided */
  return 0;
}
