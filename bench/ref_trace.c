/* SPDX-License-Identifier: MIT */
/* Reference baseline `ref-trace-off` (design.md: a configuration of kiln itself): the
 * cpu suite's op burst with no trace recording, the cost the tracing cases are
 * measured against. */
#include "trace_bench.h"

#include "kiln.h"
#include "suite_common.h"

int bench_ref_trace_off_burst(void *state, uint64_t iters) {
  if (kiln_trace_enabled())
    return KILN_ERROR_INVALID_STATE; /* would measure tracing on both sides */
  return kiln__suite_launch_burst(state, iters);
}
