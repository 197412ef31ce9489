/* SPDX-License-Identifier: MIT */
/* The graph suite (task graphs, include/kiln/graph.h) on the CPU backend:
 * - layered_1000_w8_starpu, chain_1000_starpu: one launch of a DAG of 1000 tiny host
 *   nodes (one counter increment each; 125 layers of 8, each node after every node of
 *   the layer before, or a chain) against the same DAG as StarPU tasks with declared
 *   dependencies (bench/baseline_starpu.c); left out, saying why, without libstarpu;
 * - device_fan4: one launch of a device DAG (upload, 4 branches of copy / kernel / copy,
 *   download; 14 ops on 4 KiB buffers) against the same ops issued by hand on 4 streams
 *   every iteration (ref-hand-issued, bench/ref_graph.c).
 * Per launch, lower is better; ratio = baseline / kiln (> 1: the graph is faster). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "graph_suite.h"
#include "host_work.h"
#include "suites.h"

/* ---- host DAGs */

static const bench_dag_shape layered = {125, 8, 0};
static const bench_dag_shape chain = {1000, 1, 0};
static const bench_dag_shape layered_work = {20, 8, 1};

static volatile uint64_t host_counter;

static kiln_status tiny(void *user) {
  (void)user;
  host_counter = host_counter + 1;
  return KILN_SUCCESS;
}

static kiln_status work(void *user) {
  (void)user;
  volatile uint64_t sink = 42; /* the work's result is stored here: kept */
  bench_host_work(&sink);
  return KILN_SUCCESS;
}

typedef struct host_state {
  kiln_context context;
  kiln_graph graph;
} host_state;

static void host_teardown(void *state) {
  host_state *s = state;
  if (!s)
    return;
  kiln_graph_destroy(s->graph);
  kiln_context_destroy(s->context);
  free(s);
}

static int host_setup(const kiln_bench_env *env, void **state) {
  const bench_dag_shape *shape = env->arg;
  *state = NULL;
  host_state *s = calloc(1, sizeof *s);
  if (!s)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  kiln_status st = kiln_context_create(env->device, NULL, &s->context);
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.name = shape->work ? "layered-work" : shape->width > 1 ? "layered" : "chain";
  d.workers = shape->work ? 0 : 1; /* 0: the machine's cores, as StarPU's ncpus then */
  if (st == KILN_SUCCESS)
    st = kiln_graph_create(s->context, &d, &s->graph);
  kiln_graph_node *prev = calloc(shape->width, sizeof *prev);
  kiln_graph_node *cur = calloc(shape->width, sizeof *cur);
  if (!prev || !cur)
    st = KILN_ERROR_OUT_OF_HOST_MEMORY;
  for (unsigned l = 0; l < shape->layers && st == KILN_SUCCESS; l++) {
    for (unsigned i = 0; i < shape->width && st == KILN_SUCCESS; i++) {
      st = kiln_graph_add_host(s->graph, NULL, shape->work ? work : tiny, NULL, NULL, 0, &cur[i]);
      for (unsigned k = 0; l > 0 && k < shape->width && st == KILN_SUCCESS; k++)
        st = kiln_graph_precede(s->graph, prev[k], cur[i]);
    }
    memcpy(prev, cur, shape->width * sizeof *cur);
  }
  free(prev);
  free(cur);
  if (st == KILN_SUCCESS)
    st = kiln_graph_run(s->graph); /* compiled before timing, like StarPU's start */
  if (st != KILN_SUCCESS) {
    host_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

static int host_run(void *state, uint64_t iters) {
  host_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_graph_run(s->graph);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* ---- the device DAG (its hand-issued form: bench/ref_graph.c) */

static void add_one(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  uint32_t *buf = args[0];
  uint64_t off;
  uint32_t add;
  memcpy(&off, args[1], sizeof off);
  memcpy(&add, args[2], sizeof add);
  for (size_t i = range->begin[0]; i < range->end[0]; i++)
    buf[off + i] += add;
}

static int device_setup(const kiln_bench_env *env, void **state) {
  graph_bench_state *s = NULL;
  int rc = graph_ref_dag_setup(env, (void **)&s);
  if (rc != 0)
    return rc;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.name = "fan4";
  d.max_streams = GRAPH_BENCH_BRANCHES;
  kiln_status st = kiln_graph_create(s->context, &d, &s->graph);
  const size_t bytes = GRAPH_BENCH_WORDS * 4;
  kiln_graph_node n;
  if (st == KILN_SUCCESS)
    st = kiln_graph_add_write(s->graph, "upload", s->x, 0, bytes, s->in, &n);
  kiln_range r = kiln_range_1d(GRAPH_BENCH_WORDS);
  for (unsigned i = 0; i < GRAPH_BENCH_BRANCHES && st == KILN_SUCCESS; i++) {
    kiln_arg args[3] = {kiln_arg_buffer(s->b[i]), kiln_arg_scalar(&s->offset, 8),
                        kiln_arg_scalar(&s->one, 4)};
    st = kiln_graph_add_copy(s->graph, NULL, s->b[i], 0, s->x, 0, bytes, &n);
    if (st == KILN_SUCCESS)
      st = kiln_graph_add_kernel(s->graph, NULL, s->add, &r, args, 3, &n);
    if (st == KILN_SUCCESS)
      st = kiln_graph_add_copy(s->graph, NULL, s->w, i * bytes, s->b[i], 0, bytes, &n);
  }
  if (st == KILN_SUCCESS)
    st = kiln_graph_add_read(s->graph, "download", s->w, 0, bytes * GRAPH_BENCH_BRANCHES, s->out,
                             &n);
  if (st == KILN_SUCCESS)
    st = kiln_graph_run(s->graph);
  if (st != KILN_SUCCESS) {
    graph_bench_teardown(s);
    return st;
  }
  *state = s;
  return KILN_SUCCESS;
}

static int device_run(void *state, uint64_t iters) {
  graph_bench_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    kiln_status st = kiln_graph_run(s->graph);
    if (st != KILN_SUCCESS)
      return st;
  }
  return KILN_SUCCESS;
}

/* The native kernel both sides launch (made by graph_ref_dag_setup). */
kiln_status graph_bench_make_kernel(kiln_context ctx, kiln_kernel *kernel);
kiln_status graph_bench_make_kernel(kiln_context ctx, kiln_kernel *kernel) {
  static const kiln_param p[] = {
      {KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 8}, {KILN_PARAM_SCALAR, 4}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "add_one";
  d.fn = add_one;
  d.params = p;
  d.param_count = 3;
  return kiln_kernel_create_native(ctx, &d, kernel);
}

static const kiln_bench_param p_layered[] = {{"nodes", NULL, 1000}, {"width", NULL, 8}};
static const kiln_bench_param p_chain[] = {{"nodes", NULL, 1000}, {"width", NULL, 1}};
static const kiln_bench_param p_work[] = {
    {"nodes", NULL, 160}, {"width", NULL, 8}, {"work_iters", NULL, BENCH_HOST_WORK_ITERS}};
static const kiln_bench_param p_fan[] = {{"ops", NULL, 14}, {"branches", NULL, 4}};

static const kiln_bench_case cases[] = {
    {
        .name = "device_fan4",
        .description = "one launch of a graph of 14 device ops (upload, 4 branches of copy / "
                       "kernel / copy, download; 4 KiB buffers); vs the same ops issued by "
                       "hand on 4 streams and synchronized, every iteration",
        .params = p_fan,
        .param_count = 2,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 0.95,
        .goal = "a launch no slower than issuing the same ops by hand",
        .setup = device_setup,
        .run = device_run,
        .teardown = graph_bench_teardown,
        .baseline_name = "ref-hand-issued",
        .baseline_setup_env = graph_ref_dag_setup,
        .baseline_run = graph_ref_dag_run,
        .baseline_teardown = graph_bench_teardown,
    },
    /* The StarPU cases: last, STARPU_CASES of them (left out when StarPU is absent). */
    {
        .name = "layered_1000_w8_starpu",
        .description = "one launch of 1000 tiny host nodes in 125 layers of 8, each after "
                       "every node of the layer before; vs the same DAG as StarPU tasks with "
                       "declared dependencies, submitted and waited for",
        .params = p_layered,
        .param_count = 2,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "a launch faster than StarPU's submission and run of the DAG",
        .arg = (void *)&layered,
        .setup = host_setup,
        .run = host_run,
        .teardown = host_teardown,
        .baseline_name = "starpu",
        .baseline_setup = bench_baseline_starpu_dag_setup,
        .baseline_run = bench_baseline_starpu_dag_run,
        .baseline_teardown = bench_baseline_starpu_dag_teardown,
    },
    {
        .name = "chain_1000_starpu",
        .description = "one launch of a chain of 1000 tiny host nodes; vs the same chain as "
                       "StarPU tasks with declared dependencies",
        .params = p_chain,
        .param_count = 2,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "a launch faster than StarPU's submission and run of the chain",
        .arg = (void *)&chain,
        .setup = host_setup,
        .run = host_run,
        .teardown = host_teardown,
        .baseline_name = "starpu",
        .baseline_setup = bench_baseline_starpu_dag_setup,
        .baseline_run = bench_baseline_starpu_dag_run,
        .baseline_teardown = bench_baseline_starpu_dag_teardown,
    },
    {
        .name = "layered_work_160_w8_starpu",
        .description = "one launch of 160 host nodes doing the same fixed CPU work each "
                       "(~25 us of integer arithmetic here, bench/host_work.h) in 20 layers of 8, "
                       "each after every node of the layer before, on as many workers as "
                       "the machine has cores; vs the same DAG as StarPU tasks with declared "
                       "dependencies on as many CPU workers",
        .params = p_work,
        .param_count = 3,
        .unit = "us",
        .better = KILN_BENCH_LOWER,
        .goal_ratio = 1.0,
        .goal = "a launch of real parallel host work no slower than StarPU's with the same "
                "number of CPU workers",
        .arg = (void *)&layered_work,
        .setup = host_setup,
        .run = host_run,
        .teardown = host_teardown,
        .baseline_name = "starpu",
        .baseline_setup = bench_baseline_starpu_dag_setup,
        .baseline_run = bench_baseline_starpu_dag_run,
        .baseline_teardown = bench_baseline_starpu_dag_teardown,
    },
};
#define STARPU_CASES 3u
#define CASE_COUNT (sizeof cases / sizeof cases[0])

static const kiln_bench_suite with_starpu = {
    .name = "graph",
    .description = "task graph launches vs the same ops issued by hand, and vs StarPU",
    .backend = KILN_BACKEND_CPU,
    .cases = cases,
    .case_count = CASE_COUNT,
};

static const kiln_bench_suite without_starpu = {
    .name = "graph",
    .description = "task graph launches vs the same ops issued by hand (StarPU cases skipped: "
                   "no libstarpu)",
    .backend = KILN_BACKEND_CPU,
    .cases = cases,
    .case_count = CASE_COUNT - STARPU_CASES,
};

const kiln_bench_suite *kiln__bench_suite_graph(void) {
  static const kiln_bench_suite *chosen;
  if (chosen)
    return chosen;
  char why[512];
  chosen = &with_starpu;
  if (!bench_baseline_starpu_available(why, sizeof why)) {
    chosen = &without_starpu;
    fprintf(stderr,
            "kiln bench: skipping cases layered_1000_w8_starpu, chain_1000_starpu, "
            "layered_work_160_w8_starpu of suite graph: %s\n",
            why);
  }
  return chosen;
}
