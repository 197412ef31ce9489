/* SPDX-License-Identifier: MIT */
/* The baseline of the streams suite's pool cases (bench/baseline_stream_rr.c): what a C
 * programmer writes without kiln to share a few streams between threads — an array of
 * stream handles handed out round-robin under a pthread mutex, with a holder count per
 * stream. No kiln header, no kiln_ symbol (checked with nm). */
#ifndef KILN_BENCH_BASELINE_STREAMS_H
#define KILN_BENCH_BASELINE_STREAMS_H

#include <stdint.h>

/* Acquire/release pairs per thread and iteration of the pool cases (both sides). */
#define BENCH_STREAM_RR_PAIRS 1000u
/* Streams in the array (the kiln side's pool has as many). */
#define BENCH_STREAM_RR_STREAMS 4u

/* arg: a const unsigned * number of threads (1..8), NULL: 1. */
int bench_baseline_stream_rr_setup(void *arg, void **state);
void bench_baseline_stream_rr_teardown(void *state);
/* Per iteration every thread does BENCH_STREAM_RR_PAIRS acquire/release pairs. */
int bench_baseline_stream_rr_run(void *state, uint64_t iters);

#endif
