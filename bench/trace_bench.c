/* SPDX-License-Identifier: MIT */
/* The kiln side of the cpu suite's tracing cases (trace_bench.h): the op burst with a
 * trace recording. Public kiln API only. */
#include "trace_bench.h"

#include "kiln.h"
#include "suite_common.h"

static int traced(void *state, uint64_t iters, uint64_t ring) {
  kiln_trace_desc td = KILN_TRACE_DESC_INIT;
  td.ring_events = ring;
  kiln_status st = kiln_trace_start(&td);
  if (st != KILN_SUCCESS)
    return st;
  int rc = kiln__suite_launch_burst(state, iters);
  st = kiln_trace_stop();
  return rc != 0 ? rc : st;
}

int kiln__suite_burst_traced(void *state, uint64_t iters) {
  return traced(state, iters, 0);
}

int kiln__suite_burst_traced_ring(void *state, uint64_t iters) {
  return traced(state, iters, KILN__BENCH_TRACE_RING);
}
