/* SPDX-License-Identifier: MIT */
/* ref-heuristic for the dialect suite's autotune_vecadd_4M (ref_autotune.h): the same
 * vecadd as the kiln side, in a program of its own (another cache key, so nothing
 * stored applies) with autotuning off, launched with the size kiln's heuristic reports
 * (kiln_kernel_get_launch_config), fixed as the caller's local size. */
#include "ref_autotune.h"

#include <stdlib.h>

#include "suite_common.h"

static kiln_status prepare(kiln__suite_state *s, const kiln_bench_env *env) {
  (void)env;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = kiln__suite_vecadd_source;
  d.name = "dialect_autotune_ref";
  d.options = "-DKILN_REF_HEURISTIC=1";
  kiln_status st = kiln_program_create(s->context, &d, &s->program);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(s->program, "vecadd", &s->kernel);
  if (st == KILN_SUCCESS)
    st = kiln__suite_vecadd(s, KILN__AUTOTUNE_ITEMS);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  if (st == KILN_SUCCESS)
    st = kiln_kernel_get_launch_config(s->kernel, &s->range, &c);
  if (st == KILN_SUCCESS && c.origin != KILN_LAUNCH_ORIGIN_HEURISTIC)
    st = KILN_ERROR_INVALID_STATE; /* KILN_AUTOTUNE set for the bench: not a heuristic */
  if (st == KILN_SUCCESS)
    s->range.local[0] = c.local[0];
  return st;
}

int kiln__ref_autotune_heuristic_setup(const kiln_bench_env *env, void **state) {
  return kiln__suite_setup(env, sizeof(kiln__suite_state), prepare, state);
}
