/* SPDX-License-Identifier: MIT */
/* Suite `hybrid`: kiln's ADAPTIVE dispatcher (include/kiln/hybrid.h) over the CPU backend
 * (cpu:0) and the suite's device, on a mixed-size workload of one dialect kernel (sizes
 * 1 Ki..16 Mi items, log-uniform, in a fixed order; copies in and out included), after a
 * warm-up of four passes that calibrates its models; it keeps learning and exploring
 * while timed. Baselines (ref_hybrid.c): the best single target, and a per-size oracle. */
#include "ref_hybrid.h"
#include "suites.h"

static int adaptive_setup(const kiln_bench_env *env, void **state) {
  bench_hybrid *b = NULL;
  int st = bench_hybrid_open(env, &b);
  if (st != KILN_SUCCESS)
    return st;
  kiln_hybrid_target tg[BENCH_HYBRID_TARGETS] = {{b->ctx[0], NULL}, {b->ctx[1], NULL}};
  kiln_hybrid_desc d = KILN_HYBRID_DESC_INIT;
  d.targets = tg;
  d.target_count = BENCH_HYBRID_TARGETS;
  d.seed = 1;
  st = kiln_hybrid_create(&d, &b->hybrid);
  if (st == KILN_SUCCESS)
    st = bench_hybrid_task(b->hybrid, &b->task);
  for (int pass = 0; st == KILN_SUCCESS && pass < 4; pass++)
    st = bench_hybrid_pass(b, b->task);
  if (st != KILN_SUCCESS) {
    bench_hybrid_close(b);
    return st;
  }
  *state = b;
  return KILN_SUCCESS;
}

static int adaptive_run(void *state, uint64_t iters) {
  bench_hybrid *b = state;
  for (uint64_t i = 0; i < iters; i++) {
    int st = bench_hybrid_pass(b, b->task);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

static const kiln_bench_param p_work[] = {
    {"sizes", "1Ki..16Mi log-uniform, 24 runs (quick: 1Ki..1Mi, 12)", 0},
    {"targets", "cpu:0 + the suite's device", 0},
};

static const kiln_bench_case cases[] = {
    {
        .name = "adaptive_mixed",
        .description = "one pass of the mixed-size workload (a 32-term polynomial over n "
                       "floats, copies in and out) dispatched ADAPTIVE over cpu:0 and the "
                       "device vs always on the target that was faster over the whole "
                       "workload in a calibration pass",
        .params = p_work,
        .param_count = 2,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "adaptive at least as fast as the best single target",
        .setup = adaptive_setup,
        .run = adaptive_run,
        .teardown = bench_hybrid_close,
        .baseline_name = "ref-best-fixed",
        .baseline_setup_env = bench_ref_hybrid_best_setup,
        .baseline_run = bench_ref_hybrid_best_run,
        .baseline_teardown = bench_hybrid_close,
    },
    {
        .name = "adaptive_mixed_oracle",
        .description = "the same adaptive pass vs an oracle sending each run to the target a "
                       "calibration (median of 3 runs of that size on each) found faster",
        .params = p_work,
        .param_count = 2,
        .unit = "ms",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.9,
        .goal = "adaptive within 10% of the per-size oracle after warm-up",
        .setup = adaptive_setup,
        .run = adaptive_run,
        .teardown = bench_hybrid_close,
        .baseline_name = "ref-oracle",
        .baseline_setup_env = bench_ref_hybrid_oracle_setup,
        .baseline_run = bench_ref_hybrid_oracle_run,
        .baseline_teardown = bench_hybrid_close,
    },
};

const kiln_bench_suite kiln__bench_suite_hybrid = {
    .name = "hybrid",
    .description = "CPU/GPU hybrid dispatch: the ADAPTIVE dispatcher over cpu:0 and the "
                   "device (PoCL here) vs the best fixed target and a per-size oracle",
    .backend = KILN_BACKEND_OPENCL,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};

/* The same cases with a CUDA device as the second target (`--device cuda:I`). */
const kiln_bench_suite kiln__bench_suite_hybrid_cuda = {
    .name = "hybrid_cuda",
    .description = "CPU/GPU hybrid dispatch: the ADAPTIVE dispatcher over cpu:0 and a CUDA "
                   "device vs the best fixed target and a per-size oracle",
    .backend = KILN_BACKEND_CUDA,
    .host_only = 0,
    .cases = cases,
    .case_count = sizeof cases / sizeof cases[0],
};
