/* SPDX-License-Identifier: MIT */
/* managed_roundtrip's reference baseline (bench/ref_managed.h): the round trip a program
 * writes without managed buffers — the input made in host memory and written, vecadd,
 * the output read back into host memory. */
#include <stdlib.h>
#include <string.h>

#include "kiln.h"
#include "ref_managed.h"
#include "suite_common.h"

typedef struct ref_state {
  kiln__suite_state common; /* first */
  float *source, *host_in, *host_out;
} ref_state;

int bench_ref_managed_check(const float *c, uint64_t round) {
  const float last = (float)(BENCH_MANAGED_ITEMS - 1u) + 1.0f;
  return c[0] == (float)(round & 1023u) + 1.0f && c[BENCH_MANAGED_ITEMS - 1u] == last
             ? 0
             : KILN_ERROR_BACKEND;
}

static kiln_status ref_prepare(kiln__suite_state *c, const kiln_bench_env *env) {
  (void)env;
  ref_state *s = (ref_state *)c;
  size_t bytes = BENCH_MANAGED_ITEMS * sizeof(float);
  kiln_status st = kiln__suite_vecadd_kernel(c, "ref_managed");
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(c, BENCH_MANAGED_ITEMS);
  s->source = malloc(bytes);
  s->host_in = malloc(bytes);
  s->host_out = malloc(bytes);
  if (st == KILN_SUCCESS && (!s->source || !s->host_in || !s->host_out))
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (size_t i = 0; st == KILN_SUCCESS && i < BENCH_MANAGED_ITEMS; i++)
    s->source[i] = (float)i;
  float one = 1.0f;
  if (st == KILN_SUCCESS)
    st = kiln_buffer_fill(c->b, 0, bytes, &one, sizeof one);
  return st;
}

int bench_ref_managed_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(ref_state), ref_prepare, state);
}

void bench_ref_managed_teardown(void *state) {
  ref_state *s = state;
  if (s == NULL)
    return;
  free(s->source);
  free(s->host_in);
  free(s->host_out);
  kiln__suite_teardown(s);
}

int bench_ref_managed_explicit(void *state, uint64_t iters) {
  ref_state *s = state;
  size_t bytes = BENCH_MANAGED_ITEMS * sizeof(float);
  for (uint64_t i = 0; i < iters; i++) {
    kiln_pending t = KILN_PENDING_INIT;
    memcpy(s->host_in, s->source, bytes);
    s->host_in[0] = (float)(i & 1023u);
    kiln_status st = kiln_buffer_write(s->common.a, 0, bytes, s->host_in);
    if (st != KILN_SUCCESS ||
        (st = kiln_launch_async(s->common.stream, s->common.kernel, &s->common.range,
                                s->common.args, s->common.arg_count, &t)) != KILN_SUCCESS ||
        (st = kiln_pending_release(&t)) != KILN_SUCCESS ||
        (st = kiln_buffer_read(s->common.c, 0, bytes, s->host_out)) != KILN_SUCCESS)
      return st;
    int bad = bench_ref_managed_check(s->host_out, i);
    if (bad)
      return bad;
  }
  return 0;
}
