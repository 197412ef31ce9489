/* SPDX-License-Identifier: MIT */
/* Kernel shapes found by differential testing of the CPU backend's two barrier paths
 * (loop fission and fibers) against PoCL 3.1 (docs/kernels.md, "Barriers on PoCL"):
 * PoCL computes the first wrongly and never finishes the second, on its own (a plain
 * OpenCL host program shows the same); kiln's CPU backend must compute both right,
 * with fission and on fibers. The first is checked against the host's own result, the
 * second between the two paths (and against the host for its output that the barrier
 * loops do not touch).
 * kiln-test-labels: unit cpu */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

enum { LOCAL = 3, GROUPS = 4, ITEMS = LOCAL * GROUPS, WORDS = 4 };

/* A barrier in a uniform if, then loops whose trip count differs per work-item: PoCL
 * 3.1 skips the loops for some work-items and reads uninitialised values for others. */
static const char uniform_if_then_loops[] =
    "KILN_KERNEL void k(KILN_GLOBAL const int *in, KILN_GLOBAL int *out, int n) {\n"
    "  size_t gid = kiln_global_id(0);\n"
    "  uint u = (uint)n % 7u;\n"
    "  uint a = (uint)in[gid];\n"
    "  uint b = 1u, c = 2u;\n"
    "  uint pa[3] = {3u, 4u, 5u};\n"
    "  if (u > 2u) {\n"
    "    kiln_barrier();\n"
    "    for (uint q = 0; q < (a & 3u); q++) pa[0] += q * 4u;\n"
    "  }\n"
    "  for (uint q = 0; q < (a & 3u); q++) b += q * 3u;\n"
    "  out[gid * 4 + 0] = (int)a; out[gid * 4 + 1] = (int)b; out[gid * 4 + 2] = (int)c;\n"
    "  out[gid * 4 + 3] = (int)(pa[0] + pa[1] * 3u + pa[2] * 7u);\n"
    "}\n";

/* Barriers in branches and a uniform if inside a while on a uniform counter, one
 * work-item per group: PoCL 3.1 hangs in it. */
static const char while_with_branch_barriers[] =
    "KILN_KERNEL void k(KILN_GLOBAL const int *in, KILN_GLOBAL int *out, int n) {\n"
    "  KILN_LOCAL_ARRAY uint tile[512];\n"
    "  size_t lid = kiln_local_id(0);\n"
    "  size_t gid = kiln_global_id(0);\n"
    "  size_t L = kiln_local_size(0);\n"
    "  uint g = (uint)kiln_group_id(0);\n"
    "  uint u = (uint)n % 7u;\n"
    "  uint a = (uint)in[gid];\n"
    "  uint b = 1u, c = 2u;\n"
    "  uint pa[3] = {3u, 4u, 5u};\n"
    "  uint k3 = 0u;\n"
    "  tile[lid] = a;\n"
    "  while (k3 < u % 4u) {\n"
    "    if (g % 2u == 0u) {\n"
    "    } else {\n"
    "      for (uint q = 0; q < (a & 3u); q++) a += q * 3u;\n"
    "      kiln_barrier();\n"
    "      a = (u | (uint)gid);\n"
    "      b += tile[(lid + 135u) % L];\n"
    "      kiln_barrier();\n"
    "    }\n"
    "    if (L > 8) {\n"
    "      kiln_barrier();\n"
    "      if ((a & 3u) == 1u) pa[1] += (g ^ c);\n"
    "    }\n"
    "    k3++;\n"
    "  }\n"
    "  kiln_barrier();\n"
    "  if ((a & 7u) == 3u) return;\n"
    "  out[gid * 4 + 0] = (int)a; out[gid * 4 + 1] = (int)b; out[gid * 4 + 2] = (int)c;\n"
    "  out[gid * 4 + 3] = (int)(pa[0] + pa[1] * 3u + pa[2] * 7u);\n"
    "}\n";

static void input(int in[ITEMS]) {
  uint32_t x = 777;
  for (int i = 0; i < ITEMS; i++) {
    x = x * 1664525u + 1013904223u;
    in[i] = (int)(x >> 20) - 2048;
  }
}

/* Runs kernel k of `source` on the CPU backend over ITEMS work-items in groups of
 * `local` (fission, or fibers), n = ITEMS; out is ITEMS * WORDS ints, filled with -7 first. */
static void run(const char *source, size_t local, bool fibers, int out[ITEMS * WORDS]) {
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "barrier_shape";
  kiln_program p;
  if (kiln_program_create(ctx, &pd, &p) != KILN_SUCCESS)
    fail_msg("%s\n%s", kiln_last_error()->message, kiln_last_build_log());
  if (fibers)
    setenv("KILN_CPU_FISSION", "0", 1);
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, "k", &k));
  unsetenv("KILN_CPU_FISSION");
  int in[ITEMS], n = ITEMS, fill = -7;
  input(in);
  kiln_buffer bin = kt_buffer(ctx, sizeof in), bout = kt_buffer(ctx, sizeof(int) * ITEMS * WORDS);
  KT_OK(kiln_buffer_write(bin, 0, sizeof in, in));
  KT_OK(kiln_buffer_fill(bout, 0, sizeof(int) * ITEMS * WORDS, &fill, sizeof fill));
  kiln_arg a[3] = {kiln_arg_buffer(bin), kiln_arg_buffer(bout), kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(ITEMS);
  r.local[0] = local;
  KT_OK(kiln_launch(s, k, &r, a, 3));
  KT_OK(kiln_buffer_read(bout, 0, sizeof(int) * ITEMS * WORDS, out));
  KT_OK(kiln_buffer_destroy(bin));
  KT_OK(kiln_buffer_destroy(bout));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
}

static void uniform_if_then_variable_loops(void **state) {
  (void)state;
  int in[ITEMS], want[ITEMS * WORDS], got[ITEMS * WORDS];
  input(in);
  for (int i = 0; i < ITEMS; i++) { /* n % 7 = 5 > 2: the if is taken */
    uint32_t a = (uint32_t)in[i], b = 1, pa0 = 3;
    for (uint32_t q = 0; q < (a & 3u); q++) {
      pa0 += q * 4u;
      b += q * 3u;
    }
    want[i * 4] = (int)a;
    want[i * 4 + 1] = (int)b;
    want[i * 4 + 2] = 2;
    want[i * 4 + 3] = (int)(pa0 + 4u * 3u + 5u * 7u);
  }
  for (int fibers = 0; fibers < 2; fibers++) {
    run(uniform_if_then_loops, LOCAL, fibers, got);
    for (int i = 0; i < ITEMS * WORDS; i++)
      if (got[i] != want[i])
        fail_msg("%s: out[%d] = %d, the host says %d", fibers ? "fibers" : "fission", i, got[i],
                 want[i]);
  }
}

static void while_with_barriers_in_branches(void **state) {
  (void)state;
  int in[ITEMS], f[ITEMS * WORDS], g[ITEMS * WORDS];
  input(in);
  run(while_with_branch_barriers, 1, false, f);
  run(while_with_branch_barriers, 1, true, g);
  if (memcmp(f, g, sizeof f))
    fail_msg("fission and fibers differ");
  for (int i = 0; i < ITEMS; i++) /* c is 2 wherever the work-item got to its stores */
    if (f[i * 4 + 2] != 2 && f[i * 4 + 2] != -7)
      fail_msg("out[%d] = %d: neither stored (2) nor left (-7)", i * 4 + 2, f[i * 4 + 2]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(uniform_if_then_variable_loops),
    cmocka_unit_test(while_with_barriers_in_branches),
};
KT_MAIN_CPU(tests)
