/* SPDX-License-Identifier: MIT */
/* Hybrid dispatch (docs/hybrid.md): one saxpy kernel that can run on the CPU backend
 * and on a GPU (OpenCL or CUDA), sent by kiln's ADAPTIVE dispatcher to wherever it is
 * expected to finish first, copies included. Sizes from 1 Ki to --max items in a mixed
 * order; every result is checked. The models are kept in --model FILE across runs (a
 * second run starts knowing where each size runs best).
 *   hybrid [--device B:I] [--max N] [--rounds R] [--model FILE] [--stats-json FILE]
 * Without --device: the default device, or PoCL when the default is the CPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

static const char *saxpy =
    "KILN_KERNEL void saxpy(KILN_GLOBAL const float *x, KILN_GLOBAL float *y, float a,\n"
    "                       int n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < (size_t)n) y[i] = a * x[i] + y[i];\n"
    "}\n";

#define CHECK(call)                                                                                \
  do {                                                                                             \
    kiln_status st_ = (call);                                                                      \
    if (st_ != KILN_SUCCESS) {                                                                     \
      fprintf(stderr, "%s: %s\n  %s\n", #call, kiln_status_name(st_), kiln_last_error()->message); \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

int main(int argc, char **argv) {
  const char *device = NULL, *model = NULL, *stats = NULL;
  size_t max = (size_t)1 << 20;
  int rounds = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--device") == 0)
      device = argv[i + 1];
    else if (strcmp(argv[i], "--max") == 0)
      max = (size_t)strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--model") == 0)
      model = argv[i + 1];
    else if (strcmp(argv[i], "--stats-json") == 0)
      stats = argv[i + 1];
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (max < 1024)
    max = 1024;
  kiln_device cpu = NULL, gpu = NULL;
  CHECK(kiln_device_find(KILN_BACKEND_CPU, 0, &cpu));
  if (device) {
    CHECK(kiln_device_parse(device, &gpu));
  } else {
    CHECK(kiln_device_default(&gpu));
    if (gpu == cpu && kiln_device_find(KILN_BACKEND_OPENCL, 0, &gpu) != KILN_SUCCESS)
      gpu = cpu; /* no second device: two CPU contexts still show the mechanics */
  }
  kiln_context ctx[2];
  CHECK(kiln_context_create(cpu, NULL, &ctx[0]));
  CHECK(kiln_context_create(gpu, NULL, &ctx[1]));

  kiln_hybrid_target targets[2] = {{ctx[0], "cpu"}, {ctx[1], "gpu"}};
  kiln_hybrid_desc desc = KILN_HYBRID_DESC_INIT;
  desc.targets = targets;
  desc.target_count = 2;
  desc.mode = KILN_HYBRID_ADAPTIVE;
  desc.model_path = model; /* loaded now, saved at destroy */
  kiln_hybrid hybrid;
  CHECK(kiln_hybrid_create(&desc, &hybrid));
  kiln_hybrid_task_desc td = KILN_HYBRID_TASK_DESC_INIT;
  td.name = "saxpy";
  td.source = saxpy;
  td.kernel = "saxpy";
  kiln_hybrid_task task;
  CHECK(kiln_hybrid_task_create(hybrid, &td, &task));

  float *x = malloc(max * sizeof(float)), *y = malloc(max * sizeof(float));
  if (!x || !y)
    return 1;
  unsigned used[2] = {0, 0};
  int bad = 0;
  for (int r = 0; r < rounds; r++)
    for (unsigned step = 0; step < 11; step++) { /* 1 Ki << 0, 5, 10, 4, 9, ...: mixed */
      const size_t n = (size_t)1024 << ((step * 5) % 11);
      if (n > max)
        continue;
      float a = 2.0f;
      int ni = (int)n;
      for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i % 100);
        y[i] = 1.0f;
      }
      kiln_hybrid_arg args[4] = {{KILN_HYBRID_ARG_IN, x, sizeof(float)},
                                 {KILN_HYBRID_ARG_INOUT, y, sizeof(float)},
                                 {KILN_HYBRID_ARG_SCALAR, &a, sizeof a},
                                 {KILN_HYBRID_ARG_SCALAR, &ni, sizeof ni}};
      unsigned where;
      CHECK(kiln_hybrid_run_kernel(task, n, args, 4, &where));
      used[where]++;
      for (size_t i = 0; i < n; i++)
        bad += y[i] != 2.0f * (float)(i % 100) + 1.0f;
    }
  size_t cross = 0;
  if (kiln_hybrid_crossover(task, 0, 1, &cross) == KILN_SUCCESS) {
    if (cross == (size_t)-1)
      printf("learned: the cpu is faster at every size seen\n");
    else
      printf("learned: the gpu is faster from %zu items\n", cross);
  }
  printf("runs: cpu %u, gpu %u; %s\n", used[0], used[1], bad ? "WRONG RESULTS" : "results OK");
  if (stats) {
    char json[16384];
    CHECK(kiln_hybrid_stats_json(task, json, sizeof json, NULL));
    FILE *f = fopen(stats, "w");
    if (!f || fputs(json, f) < 0 || fclose(f) != 0)
      return 1;
  }
  CHECK(kiln_hybrid_destroy(hybrid));
  CHECK(kiln_context_destroy(ctx[1]));
  CHECK(kiln_context_destroy(ctx[0]));
  free(x);
  free(y);
  return bad ? 1 : 0;
}
