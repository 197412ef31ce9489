/* SPDX-License-Identifier: MIT */
/* The skeleton every built-in suite's kiln side shares (bench/<suite>_suite.c): one
 * state that holds whatever handles a case needs, a set-up that opens a context and a
 * stream on the suite's device and then runs the suite's own preparation (tearing all
 * down when a step fails), one teardown for every case, the building blocks several
 * suites prepare alike (a program's kernel, a vecadd, a host block with its buffer),
 * and the run functions they time alike. Public kiln API only; not a baseline (those
 * include no kiln header). */
#ifndef KILN_BENCH_SUITE_COMMON_H
#define KILN_BENCH_SUITE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "kiln.h"
#include "kiln/bench.h"

/* A case's kiln-side state; a suite that needs more embeds it as its first member.
 * Unused handles stay NULL (destroying NULL is a no-op). */
typedef struct kiln__suite_state {
  kiln_context context;
  kiln_stream stream;
  kiln_program program;
  kiln_kernel kernel;    /* launched over `range` with args[0..arg_count) */
  kiln_event event;      /* untimed */
  kiln_event start, end; /* timing events (kiln__suite_launch_timed) */
  kiln_buffer a, b, c;   /* vecadd's; a copy's source a and destination b; a transfer's a */
  void *host;            /* a host block of `bytes`: kiln_host_alloc'ed when pinned */
  int pinned;
  size_t bytes;
  size_t items; /* vecadd's floats per vector; n is the same as the int argument */
  int n;
  unsigned burst; /* launches per iteration of kiln__suite_launch_burst */
  kiln_range range;
  kiln_arg args[4];
  size_t arg_count;
} kiln__suite_state;

/* A suite's own preparation, after the context and the stream are open. */
typedef kiln_status (*kiln__suite_prepare_fn)(kiln__suite_state *s, const kiln_bench_env *env);

/* The set-up skeleton: a zeroed state of `size` bytes (at least the common state,
 * which begins it), a context and a stream on env->device, then `prepare` (may be
 * NULL). On failure everything made so far is destroyed, *state is NULL and the
 * failing kiln_status returned. */
int kiln__suite_setup(const kiln_bench_env *env, size_t size, kiln__suite_prepare_fn prepare,
                      void **state);
/* Destroys every handle of the common state (in reverse order of creation) and frees. */
void kiln__suite_teardown(void *state);

/* A case's kiln side on the skeleton, as kiln_bench_case initialisers: its set-up, its
 * run function and the common teardown. */
#define KILN__SUITE_SIDE(SETUP, RUN) \
  .setup = (SETUP), .run = (RUN), .teardown = kiln__suite_teardown
/* A case's raw OpenCL baseline (baseline_opencl.h), set up from the run's parameters. */
#define KILN__SUITE_RAW_OPENCL(SETUP, RUN)                                             \
  .baseline_name = "raw-opencl", .baseline_setup_env = (SETUP), .baseline_run = (RUN), \
  .baseline_teardown = bench_baseline_ocl_teardown

/* ---- building blocks ---- */

/* c = a + b over n floats; and an empty kernel. The kiln dialect (docs/kernels.md). */
extern const char kiln__suite_vecadd_source[];
extern const char kiln__suite_empty_source[];

/* Program `name` from `source` and its kernel `kernel` into s->program, s->kernel. */
kiln_status kiln__suite_build(kiln__suite_state *s, const char *source, const char *name,
                              const char *kernel);
/* vecadd as s->kernel on any device: a native kernel on cpu and mock (which compile no
 * source), the kiln dialect's (program `program_name`) elsewhere. */
kiln_status kiln__suite_vecadd_kernel(kiln__suite_state *s, const char *program_name);
/* Buffers a, b, c of `items` floats, the timing events start and end, and the
 * arguments (a, b, c, n) over a range of `items` with kiln's default local size. */
kiln_status kiln__suite_vecadd(kiln__suite_state *s, size_t items);
/* 1 when the run's parameter memory is "pinned" (the default is "pageable"). */
int kiln__suite_pinned(const kiln_bench_env *env);
/* The run's `bytes` (> 0) as a host block, pinned (kiln_host_alloc) or page-aligned,
 * touched, and buffer a of that size labelled `label`, written once from it: no timed
 * transfer takes a page fault. */
kiln_status kiln__suite_transfer(kiln__suite_state *s, const kiln_bench_env *env,
                                 const char *label);

/* ---- run functions (kiln_bench_fn, kiln_bench_timed_fn) ---- */

/* Launch the kernel and wait for it, per iteration. */
int kiln__suite_launch_wait(void *state, uint64_t iters);
/* `burst` launches with their tokens released, then one stream synchronize, per
 * iteration. */
int kiln__suite_launch_burst(void *state, uint64_t iters);
/* Record the event on the stream and query it until complete, per iteration. */
int kiln__suite_event_record_query(void *state, uint64_t iters);
/* A blocking write of `bytes` from the host block into a (read: back), per iteration. */
int kiln__suite_write(void *state, uint64_t iters);
int kiln__suite_read(void *state, uint64_t iters);
/* Each launch between the two timing events; the device time is the sum of the gaps. */
int kiln__suite_launch_timed(void *state, uint64_t iters, uint64_t *device_ns);

/* ---- the raw OpenCL baseline's set-up on the same device ---- */

/* args->device is filled in here (kiln hands its cl_device_id over, so both sides
 * always measure one device), the caller sets the rest. Returns the baseline's code,
 * or a kiln_status when the device has no cl_device_id. */
struct bench_ocl_args;
int kiln__suite_ocl_raw_setup(const kiln_bench_env *env, struct bench_ocl_args *args, void **state);

#endif
