/* SPDX-License-Identifier: MIT */
/* The pinned host pool's AddressSanitizer poisoning (src/pool/host_pool.c), run by
 * tests/host_pool.cmake in the ASan tree as `host_pool_asan_helper <variant>`: each
 * positive variant touches memory it must not at a line marked `host-touch: <variant>`
 * and passes only when ASan reports a use-after-poison there (a block freed with
 * kiln_host_free, one freed with kiln_host_free_on once its streams are idle, the bytes
 * of a block past the request); the negative one, `owned`, touches only what it owns —
 * including a reissued block after a guarded transfer from its previous life on another
 * stream, whose guard range must have been dropped when the block returned to the pool
 * (else the reissued block is poisoned again when a later guarded transfer ends) — and
 * must exit 0 without a report. */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

static volatile unsigned char sink;

int main(int argc, char **argv) {
  const char *v = argc > 1 ? argv[1] : "";
  kiln_device dev = NULL;
  kiln_context ctx = NULL;
  kiln_stream s1 = NULL, s2 = NULL;
  kiln_buffer buf = NULL;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 4096;
  if (kiln_device_find(KILN_BACKEND_CPU, 0, &dev) != KILN_SUCCESS ||
      kiln_context_create(dev, NULL, &ctx) != KILN_SUCCESS ||
      kiln_stream_create(ctx, NULL, &s1) != KILN_SUCCESS ||
      kiln_stream_create(ctx, NULL, &s2) != KILN_SUCCESS ||
      kiln_buffer_create(ctx, &bd, &buf) != KILN_SUCCESS) {
    fprintf(stderr, "setup failed: %s\n", kiln_last_error()->message);
    return 2;
  }
  unsigned char *p = NULL;
  if (kiln_host_alloc(ctx, 100, (void **)&p) != KILN_SUCCESS)
    return 2;
  memset(p, 1, 100);
  if (strcmp(v, "freed") == 0) {
    kiln_host_free(ctx, p);
    sink = p[8]; /* host-touch: freed */
  } else if (strcmp(v, "freed_on") == 0) {
    kiln_host_free_on(ctx, p, s1); /* nothing queued: back in the pool at once */
    sink = p[64];                  /* host-touch: freed_on */
  } else if (strcmp(v, "past_request") == 0) {
    sink = p[200]; /* host-touch: past_request */
  } else if (strcmp(v, "owned") == 0) {
    kiln_pending t1 = KILN_PENDING_INIT, t2 = KILN_PENDING_INIT;
    /* a guarded transfer from p on s1, never waited for; p freed behind it */
    if (kiln_buffer_write_async(s1, buf, 0, 100, p, &t1) != KILN_SUCCESS ||
        kiln_pending_release(&t1) != KILN_SUCCESS || kiln_host_free_on(ctx, p, s2) != KILN_SUCCESS)
      return 2;
    kiln_pool_stats st = KILN_POOL_STATS_INIT;
    do { /* the stats poll the pending frees */
      sched_yield();
      if (kiln_host_pool_get_stats(ctx, &st) != KILN_SUCCESS)
        return 2;
    } while (st.pending_frees);
    unsigned char *q = NULL;
    if (kiln_host_alloc(ctx, 100, (void **)&q) != KILN_SUCCESS || q != p)
      return 2;
    memset(q, 2, 100);
    if (kiln_buffer_write_async(s2, buf, 0, 100, q, &t2) != KILN_SUCCESS ||
        kiln_wait(&t2) != KILN_SUCCESS)
      return 2;
    memset(q, 3, 100); /* a stale range of the previous life would be poisoned again */
    kiln_host_free(ctx, q);
  } else {
    fprintf(stderr, "unknown variant '%s'\n", v);
    return 2;
  }
  kiln_context_destroy(ctx);
  return 0;
}
