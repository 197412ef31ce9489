/* SPDX-License-Identifier: MIT */
/* The device pool's AddressSanitizer poisoning on a host-visible pool (the CPU
 * backend), run by tests/pool.cmake in the ASan tree as `pool_asan_helper <variant>`:
 * each positive variant touches memory it must not at a line marked
 * `pool-touch: <variant>`, and passes only when ASan reports a use-after-poison there;
 * the negative one touches only what it owns and must exit 0 without a report. */
#include <stdio.h>
#include <string.h>

#include "kiln.h"

static volatile unsigned char sink;

static void *host_of(kiln_buffer b) {
  void *p = NULL;
  if (kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, &p) != KILN_SUCCESS)
    return NULL;
  return p;
}

int main(int argc, char **argv) {
  const char *v = argc > 1 ? argv[1] : "";
  kiln_device dev = NULL;
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  kiln_pool pool = NULL;
  if (kiln_device_find(KILN_BACKEND_CPU, 0, &dev) != KILN_SUCCESS ||
      kiln_context_create(dev, NULL, &ctx) != KILN_SUCCESS ||
      kiln_stream_create(ctx, NULL, &s) != KILN_SUCCESS ||
      kiln_pool_create(ctx, NULL, &pool) != KILN_SUCCESS) {
    fprintf(stderr, "setup failed: %s\n", kiln_last_error()->message);
    return 2;
  }
  kiln_buffer a = NULL, b = NULL;
  if (kiln_pool_alloc(pool, s, 256, &a) != KILN_SUCCESS ||
      kiln_pool_alloc(pool, s, 200, &b) != KILN_SUCCESS)
    return 2;
  unsigned char *pa = host_of(a), *pb = host_of(b);
  if (!pa || !pb)
    return 2;
  memset(pa, 1, 256);
  memset(pb, 2, 200);
  if (strcmp(v, "freed") == 0) {
    kiln_pool_free(a, s);                       /* idle: poisoned at once */
    sink = pa[8];                               /* pool-touch: freed */
  } else if (strcmp(v, "debug_reissue") == 0) { /* run with KILN_POOL=debug */
    kiln_pool_free(a, s);
    kiln_buffer c = NULL;
    if (kiln_pool_alloc(pool, s, 256, &c) != KILN_SUCCESS || host_of(c) == pa)
      return 2;   /* debug mode must not reissue the block */
    sink = pa[0]; /* pool-touch: debug_reissue */
  } else if (strcmp(v, "redzone") == 0) {
    pa[256] = 3; /* pool-touch: redzone */
  } else if (strcmp(v, "past_request") == 0) {
    sink = pb[208]; /* pool-touch: past_request */
  } else if (strcmp(v, "owned") == 0) {
    for (int i = 0; i < 256; i++)
      pa[i] = (unsigned char)(pa[i] + 1);
    kiln_pool_free(a, s);
    kiln_buffer c = NULL;
    if (kiln_pool_alloc(pool, s, 256, &c) != KILN_SUCCESS)
      return 2;
    unsigned char *pc = host_of(c);
    memset(pc, 4, 256); /* the reissued block is unpoisoned again */
    kiln_pool_free(c, s);
  } else {
    fprintf(stderr, "unknown variant '%s'\n", v);
    return 2;
  }
  kiln_context_destroy(ctx);
  return 0;
}
