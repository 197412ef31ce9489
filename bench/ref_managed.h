/* SPDX-License-Identifier: MIT */
/* The reference baseline of managed_roundtrip (suite pool, bench/pool_suite.c): the same
 * round trip written with kiln's explicit calls. A reference baseline (design.md): kiln's
 * public API, its own file, exempt from the nm test, JSON name "ref-explicit". */
#ifndef KILN_BENCH_REF_MANAGED_H
#define KILN_BENCH_REF_MANAGED_H
#include <stdint.h>

#include "kiln/bench.h"

#define BENCH_MANAGED_ITEMS 65536u /* 256 KiB of floats per vector */

/* 0 when c[i] = a[i] + 1 holds where round `round` put its mark (the work is not
 * elided), else KILN_ERROR_BACKEND. */
int bench_ref_managed_check(const float *c, uint64_t round);
/* The skeleton's context and stream, vecadd (a, b = 1, c), host arrays. */
int bench_ref_managed_setup(const kiln_bench_env *env, void **state);
/* Per iteration: the input made in host memory, kiln_buffer_write, the launch,
 * kiln_buffer_read of the output into host memory, a check. */
int bench_ref_managed_explicit(void *state, uint64_t iters);
void bench_ref_managed_teardown(void *state);
#endif
