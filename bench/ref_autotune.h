/* SPDX-License-Identifier: MIT */
/* Reference baseline of the `dialect` suite's autotune case (bench/ref_autotune.c):
 * kiln compared with another configuration of itself (design.md: `ref-` names, public
 * API allowed). */
#ifndef KILN_BENCH_REF_AUTOTUNE_H
#define KILN_BENCH_REF_AUTOTUNE_H

#include "kiln/bench.h"

/* ref-heuristic: vecadd over `items` floats on the suite's device with the local size
 * kiln's heuristic picks (a program of its own, so no stored or tuned choice applies),
 * fixed as the caller's; run it with kiln__suite_launch_wait. */
int kiln__ref_autotune_heuristic_setup(const kiln_bench_env *env, void **state);
/* The items both sides run over. */
#define KILN__AUTOTUNE_ITEMS ((size_t)4 << 20)

#endif
