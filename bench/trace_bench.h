/* SPDX-License-Identifier: MIT */
/* The tracing cases of the cpu suite (bench/cpu_suite.c): op_burst_10000 with a trace
 * recording (full, and a ring) on the kiln side (trace_bench.c), against the same
 * burst with tracing off, the reference baseline `ref-trace-off` (ref_trace.c). */
#ifndef KILN_BENCH_TRACE_H
#define KILN_BENCH_TRACE_H
#include <stdint.h>

/* Events each thread's ring keeps in the ring case. */
#define KILN__BENCH_TRACE_RING 4096u

/* kiln__suite_launch_burst with a trace recording every op in memory (no file):
 * started before each batch and stopped after it, so memory stays one batch's. */
int kiln__suite_burst_traced(void *state, uint64_t iters);
/* The same with the ring of KILN__BENCH_TRACE_RING events per thread. */
int kiln__suite_burst_traced_ring(void *state, uint64_t iters);
/* ref-trace-off: kiln__suite_launch_burst while no trace records (a trace recording
 * then, e.g. from KILN_TRACE, makes the case fail rather than measure it). */
int bench_ref_trace_off_burst(void *state, uint64_t iters);
#endif
