/* SPDX-License-Identifier: MIT */
/* Loop fission on the CPU backend (docs/kernels.md, "Barriers on the CPU"): kernels with
 * barriers in loops (for, while, do, nested), in uniform ifs, with private scalars,
 * arrays, pointers and structs live across barriers, in 1-3 dimensions, and random
 * kernels of such statements give the same bytes with fission, on fibers
 * (KILN_CPU_FISSION=0) and on PoCL; tests/kernels' barrier kernels take fission;
 * barriers in divergent control flow fail with CPU_DIVERGENT_BARRIER; the shapes fission
 * does not take stay on fibers with their reason in the debug log and still compute
 * the right result, as does C of fission that does not compile; the per-work-item
 * storage's allocation failing fails the launch cleanly.
 * kiln-test-labels: unit cpu opencl */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

/* ---- the path each kernel took, from the debug log (kt_log_capture) */
static kt_log_capture logged;

static void capture_paths(void) {
  kt_log_capture_start(&logged, KILN_LOG_DEBUG);
}

/* The logged path of kernel `name` (the line's text after "on cpu: "). */
static const char *path_of(const char *name, char *out, size_t out_bytes) {
  char key[96];
  snprintf(key, sizeof key, "kernel '%s' on cpu: ", name);
  const char *at = strstr(logged.text, key);
  if (!at)
    fail_msg("no path logged for kernel '%s'; log:\n%s", name, logged.text);
  at += strlen(key);
  size_t n = strcspn(at, "\n");
  snprintf(out, out_bytes, "%.*s", (int)n, at);
  return out;
}

static void expect_path(const char *name, const char *needle) {
  char p[256];
  path_of(name, p, sizeof p);
  if (!strstr(p, needle))
    fail_msg("kernel '%s': expected a path with \"%s\", got \"%s\"", name, needle, p);
}

/* ---- running a kernel */
typedef struct karg {
  int kind; /* 0 buffer, 1 scalar, 2 local */
  int buf;
  const void *value;
  size_t bytes;
} karg;

/* Runs source:name over r on `kind` (cpu: with fission unless fibers) with nbuf int
 * buffers of `items` each, buffer 0 initialised from in; returns buffer nbuf-1 (caller
 * frees) and the launch's status. */
static kiln_status run(kiln_backend_kind kind, bool fibers, const char *source, const char *name,
                       kiln_range r, const int *in, size_t items, int nbuf, const karg *args,
                       int nargs, int **out) {
  kiln_device dev;
  kiln_context ctx;
  kiln_stream s;
  KT_OK(kiln_device_find(kind, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = name;
  kiln_program p = NULL;
  if (kiln_program_create(ctx, &pd, &p) != KILN_SUCCESS)
    fail_msg("%s: %s\n%s", name, kiln_last_error()->message, kiln_last_build_log());
  if (fibers)
    setenv("KILN_CPU_FISSION", "0", 1);
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, name, &k));
  unsetenv("KILN_CPU_FISSION");
  kiln_buffer b[4];
  for (int i = 0; i < nbuf; i++) {
    b[i] = kt_buffer(ctx, items * sizeof(int));
    if (i == 0 && in) {
      KT_OK(kiln_buffer_write(b[i], 0, items * sizeof(int), in));
    } else {
      int zero = 0;
      KT_OK(kiln_buffer_fill(b[i], 0, items * sizeof(int), &zero, sizeof zero));
    }
  }
  kiln_arg a[8];
  for (int i = 0; i < nargs; i++)
    a[i] = args[i].kind == 0   ? kiln_arg_buffer(b[args[i].buf])
           : args[i].kind == 1 ? kiln_arg_scalar(args[i].value, args[i].bytes)
                               : kiln_arg_local(args[i].bytes);
  kiln_pending t;
  KT_OK(kiln_launch_async(s, k, &r, a, (size_t)nargs, &t));
  kiln_status st = kiln_wait(&t);
  *out = malloc(items * sizeof(int));
  assert_non_null(*out);
  if (st == KILN_SUCCESS)
    KT_OK(kiln_buffer_read(b[nbuf - 1], 0, items * sizeof(int), *out));
  for (int i = 0; i < nbuf; i++)
    KT_OK(kiln_buffer_destroy(b[i]));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_context_destroy(ctx));
  return st;
}

/* PoCL under the sanitizers costs ~10 s a test: there fission is compared with fibers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WITH_POCL 0
#else
#define WITH_POCL 1
#endif

/* The same bytes with fission, on fibers and (release trees) on PoCL. */
static void same_three_ways(const char *source, const char *name, kiln_range r, const int *in,
                            size_t items, int nbuf, const karg *args, int nargs) {
  int *f, *g;
  KT_OK(run(KILN_BACKEND_CPU, false, source, name, r, in, items, nbuf, args, nargs, &f));
  KT_OK(run(KILN_BACKEND_CPU, true, source, name, r, in, items, nbuf, args, nargs, &g));
  if (memcmp(f, g, items * sizeof(int)))
    fail_msg("%s: fission and fibers differ", name);
  free(g);
  if (WITH_POCL && kt_backend_available(KILN_BACKEND_OPENCL)) {
    KT_OK(run(KILN_BACKEND_OPENCL, false, source, name, r, in, items, nbuf, args, nargs, &g));
    for (size_t i = 0; i < items; i++)
      if (f[i] != g[i])
        fail_msg("%s: cpu and PoCL differ first at item %zu: %d vs %d", name, i, f[i], g[i]);
    free(g);
  }
  free(f);
}

static const char shapes[] =
    /* a uniform for loop; a private value modified across its barriers */
    "KILN_KERNEL void loop_for(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                          KILN_LOCAL int *t, int rounds) {\n"
    "  size_t l = kiln_local_id(0), n = kiln_local_size(0);\n"
    "  int v = in[kiln_global_id(0)];\n"
    "  for (int r = 0; r < rounds; r++) {\n"
    "    t[l] = v;\n"
    "    kiln_barrier();\n"
    "    v = t[(l + 1) % n] + (int)l;\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  out[kiln_global_id(0)] = v;\n"
    "}\n"
    /* a while loop whose condition reads a private counter (checked per work-item) */
    "KILN_KERNEL void loop_while(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                            KILN_LOCAL int *t) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  int acc = in[kiln_global_id(0)];\n"
    "  int k = 0;\n"
    "  while (k < 5) {\n"
    "    t[l] = acc;\n"
    "    kiln_barrier();\n"
    "    acc += t[kiln_local_size(0) - 1 - l] * (k + 1);\n"
    "    k++;\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  out[kiln_global_id(0)] = acc + k;\n"
    "}\n"
    /* a do-while inside a for, a loop variable declared in the outer body */
    "KILN_KERNEL void nested(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                        KILN_LOCAL int *t, int outer) {\n"
    "  size_t l = kiln_local_id(0), n = kiln_local_size(0);\n"
    "  int x = in[kiln_global_id(0)];\n"
    "  for (int i = 0; i < outer; i++) {\n"
    "    int j = 0;\n"
    "    do {\n"
    "      t[l] = x;\n"
    "      kiln_barrier();\n"
    "      x = (x >> 1) + t[(l + (size_t)j + 1) % n] + i;\n"
    "      kiln_barrier();\n"
    "      j++;\n"
    "    } while (j < 3);\n"
    "  }\n"
    "  out[kiln_global_id(0)] = x;\n"
    "}\n"
    /* ifs around barriers (a parameter's, one evaluated per work-item), a private
     * array, variables declared between barriers */
    "KILN_KERNEL void branches(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                          KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  int priv[4];\n"
    "  for (int q = 0; q < 4; q++) priv[q] = in[kiln_global_id(0)] * (q + 1);\n"
    "  int m = mode + (int)(kiln_local_id(0) * 0u);\n"
    "  if (mode > 0) {\n"
    "    t[l] = priv[1];\n"
    "    kiln_barrier();\n"
    "    priv[2] += t[l ^ 1u];\n"
    "  } else {\n"
    "    t[l] = priv[3];\n"
    "    kiln_barrier();\n"
    "    priv[0] -= t[l ^ 1u];\n"
    "  }\n"
    "  kiln_barrier();\n"
    "  int late = priv[0] + priv[2];\n"
    "  t[l] = late;\n"
    "  kiln_barrier();\n"
    "  int later = t[(l + 2) % kiln_local_size(0)];\n"
    "  if (m > 0) {\n"
    "    kiln_barrier();\n"
    "    later += t[0];\n"
    "  }\n"
    "  out[kiln_global_id(0)] = late * 3 + later + priv[1] + priv[3];\n"
    "}\n"
    /* a uniform variable, pointers (one to const, changed), a const and a struct across
     * barriers, a loop variable set by an expression, an if inside a loop, a return
     * after the last barrier */
    "struct pair { int a; int b; };\n"
    "KILN_KERNEL void mixed(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                       KILN_LOCAL int *t, int n) {\n"
    "  const int hw = (int)kiln_local_size(0) / 2;\n"
    "  size_t gid = kiln_global_id(0), l = kiln_local_id(0);\n"
    "  KILN_GLOBAL const int *p = in + gid;\n"
    "  struct pair q;\n"
    "  KILN_GLOBAL const int *w = in;\n"
    "  w += gid;\n"
    "  const int c0 = p[0] * 2;\n"
    "  q.a = p[0]; q.b = -p[0];\n"
    "  int i, acc = 0;\n"
    "  for (i = 0; i < 3; i++) {\n"
    "    t[l] = q.a + i;\n"
    "    kiln_barrier();\n"
    "    if (i % 2 == 0) {\n"
    "      acc += t[(l + (size_t)hw) % kiln_local_size(0)];\n"
    "      kiln_barrier();\n"
    "    }\n"
    "    q.b += acc;\n"
    "  }\n"
    "  kiln_barrier();\n"
    "  if (gid >= (size_t)n) return;\n"
    "  out[gid] = acc * 7 + q.b + (int)l + w[0] - c0;\n"
    "}\n"
    /* 3-D: every id function, with a dimension known only at run time */
    "KILN_KERNEL void ids3d(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                       KILN_LOCAL int *t) {\n"
    "  size_t me = kiln_local_id(0) + kiln_local_size(0) * (kiln_local_id(1) +\n"
    "              kiln_local_size(1) * kiln_local_id(2));\n"
    "  size_t n = kiln_local_size(0) * kiln_local_size(1) * kiln_local_size(2);\n"
    "  int v = 0;\n"
    "  for (int d = 0; d < 3; d++)\n"
    "    v += (int)(kiln_local_id(d) * 1000u + kiln_group_id(d) * 100u +\n"
    "               kiln_num_groups(d) * 10u + kiln_global_size(d)) * (d + 1);\n"
    "  t[me] = v;\n"
    "  kiln_barrier();\n"
    "  int other = t[n - 1u - me];\n"
    "  kiln_barrier();\n"
    "  size_t g = kiln_global_id(0) + kiln_global_size(0) * (kiln_global_id(1) +\n"
    "             kiln_global_size(1) * kiln_global_id(2));\n"
    "  out[g] = other + v + in[0] * 0;\n"
    "}\n"
    /* 2-D: a tile transposed through local memory, ids across barriers */
    "KILN_KERNEL void transpose2d(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                             KILN_LOCAL int *t) {\n"
    "  size_t x = kiln_local_id(0), y = kiln_local_id(1), w = kiln_local_size(0);\n"
    "  int v = in[kiln_global_id(1) * kiln_global_size(0) + kiln_global_id(0)];\n"
    "  t[y * w + x] = v;\n"
    "  kiln_barrier();\n"
    "  int u = t[x * w + y];\n"
    "  kiln_barrier();\n"
    "  out[kiln_global_id(1) * kiln_global_size(0) + kiln_global_id(0)] = u - v;\n"
    "}\n";

/* Returns on uniform conditions, before and after a barrier: whole groups end. */
static const char guarded[] =
    "KILN_KERNEL void guarded(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                         KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  if (mode < 0) return;\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  kiln_barrier();\n"
    "  if ((int)kiln_group_id(0) == mode) { return; }\n"
    "  out[kiln_global_id(0)] = t[l ^ 1u];\n"
    "}\n";

static int *input(size_t n) {
  int *v = malloc(n * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = (int)((i * 2654435761u) % 1000u) - 500;
  return v;
}

static void loops_and_ifs_match_fibers_and_pocl(void **state) {
  (void)state;
  capture_paths();
  size_t n = 64 * 600; /* enough groups for the helper threads */
  int *in = input(n);
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 64;
  int rounds = 7, outer = 3, mode = 1;
  karg a_for[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}, {1, 0, &rounds, 4}};
  same_three_ways(shapes, "loop_for", r, in, n, 2, a_for, 4);
  karg a_while[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}};
  same_three_ways(shapes, "loop_while", r, in, n, 2, a_while, 3);
  karg a_nested[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}, {1, 0, &outer, 4}};
  same_three_ways(shapes, "nested", r, in, n, 2, a_nested, 4);
  karg a_br[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}, {1, 0, &mode, 4}};
  same_three_ways(shapes, "branches", r, in, n, 2, a_br, 4);
  mode = 0;
  same_three_ways(shapes, "branches", r, in, n, 2, a_br, 4);
  int two = 2;
  karg a_guard[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}, {1, 0, &two, 4}};
  same_three_ways(guarded, "guarded", r, in, n, 2, a_guard, 4);
  int limit = (int)n - 333;
  karg a_mixed[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}, {1, 0, &limit, 4}};
  same_three_ways(shapes, "mixed", r, in, n, 2, a_mixed, 4);
  kiln_range r2 = kiln_range_2d(64, 48);
  r2.local[0] = 8;
  r2.local[1] = 8;
  karg a_tr[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 64 * 4}};
  same_three_ways(shapes, "transpose2d", r2, in, 64 * 48, 2, a_tr, 3);
  kiln_range r3 = KILN_RANGE_INIT;
  r3.dims = 3;
  r3.global[0] = 8;
  r3.global[1] = 6;
  r3.global[2] = 4;
  r3.local[0] = 4;
  r3.local[1] = 3;
  r3.local[2] = 2;
  same_three_ways(shapes, "ids3d", r3, in, 8 * 6 * 4, 2, a_tr, 3);
  kt_log_capture_stop(&logged);
  expect_path("guarded", "loop fission: 1 barrier, 0 private variables");
  expect_path("ids3d", "loop fission: 2 barriers, 2 private variables kept");
  expect_path("loop_for", "loop fission: 2 barriers, 1 private variable kept");
  expect_path("loop_while", "loop fission: 2 barriers, 1 private variable kept");
  expect_path("nested", "loop fission: 2 barriers, 1 private variable kept");
  expect_path("branches", "loop fission: 5 barriers, 3 private variables kept");
  expect_path("mixed", "loop fission: 3 barriers, 5 private variables kept");
  expect_path("transpose2d", "loop fission: 2 barriers, 2 private variables kept");
  free(in);
}

/* The kernels with barriers that test_dialect_cpu compares with PoCL take fission. */
static void test_kernels_take_fission(void **state) {
  (void)state;
  static const struct {
    const char *file, *kernel, *path;
  } cases[] = {
      {"reduce.kiln", "reduce_sum", "loop fission: 2 barriers, 0 private variables"},
      {"reduce.kiln", "reduce_sum_static", "loop fission: 2 barriers, 0 private variables"},
      {"atomics.kiln", "histogram_local", "loop fission: 2 barriers, 0 private variables"},
      {"atomics.kiln", "fadd", "loop fission: 2 barriers, 0 private variables"},
  };
  capture_paths();
  kiln_device dev;
  kiln_context ctx;
  KT_OK(kiln_device_find(KILN_BACKEND_CPU, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", KT_KERNELS_DIR, cases[i].file);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[32768];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
    pd.source = text;
    pd.name = cases[i].file;
    kiln_program p;
    KT_OK(kiln_program_create(ctx, &pd, &p));
    kiln_kernel k;
    KT_OK(kiln_kernel_create(p, cases[i].kernel, &k));
    KT_OK(kiln_kernel_destroy(k));
    KT_OK(kiln_program_destroy(p));
  }
  KT_OK(kiln_context_destroy(ctx));
  kt_log_capture_stop(&logged);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_path(cases[i].kernel, cases[i].path);
}

/* Work-items that disagree on a condition around a barrier: the launch fails as on
 * fibers, nothing hangs, the next launch runs. */
static void divergent_barriers_fail_with_fission(void **state) {
  (void)state;
  static const char src[] =
      "KILN_KERNEL void div_if(KILN_GLOBAL int *a, KILN_GLOBAL int *o) {\n"
      "  if (kiln_local_id(0) < 3) { kiln_barrier(); }\n"
      "  o[kiln_global_id(0)] = 1;\n"
      "}\n"
      "KILN_KERNEL void div_loop(KILN_GLOBAL int *a, KILN_GLOBAL int *o) {\n"
      "  for (size_t i = 0; i < kiln_local_id(0) % 3; i++) kiln_barrier();\n"
      "  o[kiln_global_id(0)] = 2;\n"
      "}\n"
      "KILN_KERNEL void agree(KILN_GLOBAL int *a, KILN_GLOBAL int *o) {\n"
      "  for (size_t i = 0; i < kiln_local_id(0) * 0 + 2; i++) kiln_barrier();\n"
      "  o[kiln_global_id(0)] = 3;\n"
      "}\n";
  capture_paths();
  kiln_range r = kiln_range_1d(64);
  r.local[0] = 16;
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}};
  int *o;
  KT_EXPECT(run(KILN_BACKEND_CPU, false, src, "div_if", r, NULL, 64, 2, args, 2, &o),
            KILN_ERROR_BACKEND);
  assert_string_equal(kiln_last_error()->native_name, "CPU_DIVERGENT_BARRIER");
  free(o);
  KT_EXPECT(run(KILN_BACKEND_CPU, false, src, "div_loop", r, NULL, 64, 2, args, 2, &o),
            KILN_ERROR_BACKEND);
  assert_string_equal(kiln_last_error()->native_name, "CPU_DIVERGENT_BARRIER");
  free(o);
  KT_OK(run(KILN_BACKEND_CPU, false, src, "agree", r, NULL, 64, 2, args, 2, &o));
  assert_int_equal(o[63], 3);
  free(o);
  kt_log_capture_stop(&logged);
  expect_path("div_if", "loop fission");
  expect_path("div_loop", "loop fission");
  expect_path("agree", "loop fission");
}

/* What fission does not take stays on fibers, says why, and computes the same. */
static const char fallbacks[] =
    "KILN_KERNEL void in_switch(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                           KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  switch (mode) {\n"
    "  case 1: kiln_barrier(); out[kiln_global_id(0)] = t[l ^ 1u]; break;\n"
    "  default: kiln_barrier(); out[kiln_global_id(0)] = -t[l ^ 1u]; break;\n"
    "  }\n"
    "}\n"
    "KILN_KERNEL void with_goto(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                           KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  if (mode > 5) goto skip;\n"
    "  t[l] += 1;\n"
    "skip:\n"
    "  kiln_barrier();\n"
    "  out[kiln_global_id(0)] = t[l ^ 1u];\n"
    "}\n"
    "KILN_KERNEL void breaks(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                        KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  int v = in[kiln_global_id(0)];\n"
    "  for (int r = 0; r < 10; r++) {\n"
    "    if (r == mode + 2) break;\n"
    "    t[l] = v;\n"
    "    kiln_barrier();\n"
    "    v += t[l ^ 1u];\n"
    "    kiln_barrier();\n"
    "  }\n"
    "  out[kiln_global_id(0)] = v;\n"
    "}\n"
    "KILN_KERNEL void early_return(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                              KILN_LOCAL int *t, int mode) {\n"
    "  if (kiln_global_id(0) > 100000u) return;\n"
    "  size_t l = kiln_local_id(0);\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  kiln_barrier();\n"
    "  out[kiln_global_id(0)] = t[l ^ 1u];\n"
    "}\n"
    "KILN_KERNEL void assigns_param(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                               KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  mode += (int)l;\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  kiln_barrier();\n"
    "  out[kiln_global_id(0)] = t[l ^ 1u] + mode;\n"
    "}\n"
    "KILN_KERNEL void address_of(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                            KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  int v = in[kiln_global_id(0)] + mode;\n"
    "  int *p = &v;\n"
    "  t[l] = v;\n"
    "  kiln_barrier();\n"
    "  *p += t[l ^ 1u];\n"
    "  out[kiln_global_id(0)] = v;\n"
    "}\n"
    "KILN_KERNEL void array_pointer(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                               KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  int a[2] = {mode, 1};\n"
    "  int *p = a;\n"
    "  t[l] = in[kiln_global_id(0)];\n"
    "  kiln_barrier();\n"
    "  p[1] = t[l ^ 1u];\n"
    "  out[kiln_global_id(0)] = a[0] + a[1];\n"
    "}\n"
    "KILN_KERNEL void twice(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                       KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  { int v = in[kiln_global_id(0)]; t[l] = v; kiln_barrier(); out[kiln_global_id(0)] = "
    "t[l ^ 1u]; }\n"
    "  kiln_barrier();\n"
    "  { int v = mode; t[l] = v; kiln_barrier(); out[kiln_global_id(0)] += t[l ^ 1u]; }\n"
    "}\n"
    "KILN_KERNEL void in_expression(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
    "                               KILN_LOCAL int *t, int mode) {\n"
    "  size_t l = kiln_local_id(0);\n"
    "  t[l] = in[kiln_global_id(0)] + mode;\n"
    "  (void)(kiln_barrier(), 0);\n"
    "  out[kiln_global_id(0)] = t[l ^ 1u];\n"
    "}\n";

static void unsupported_shapes_stay_on_fibers(void **state) {
  (void)state;
  static const struct {
    const char *name, *why;
    bool pocl; /* OpenCL C takes it too */
  } cases[] = {
      {"in_switch", "a barrier inside a switch", true},
      {"with_goto", "goto, a label", true},
      {"breaks", "a break or continue in a loop with a barrier", true},
      {"early_return", "a return before the last barrier", true},
      {"assigns_param", "parameter 'mode' is assigned", true},
      {"address_of", "the address of private variable 'v'", true},
      {"array_pointer", "private array 'a' used as a pointer", true},
      {"twice", "'v' is declared twice", true},
      {"in_expression", "kiln_barrier used other than as a statement", false},
  };
  capture_paths();
  size_t n = 256;
  int *in = input(n);
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 32;
  int mode = 1;
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 32 * 4}, {1, 0, &mode, 4}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int *c, *o;
    KT_OK(run(KILN_BACKEND_CPU, false, fallbacks, cases[i].name, r, in, n, 2, args, 4, &c));
    if (WITH_POCL && cases[i].pocl && kt_backend_available(KILN_BACKEND_OPENCL)) {
      KT_OK(run(KILN_BACKEND_OPENCL, false, fallbacks, cases[i].name, r, in, n, 2, args, 4, &o));
      if (memcmp(c, o, n * sizeof(int)))
        fail_msg("%s: cpu (fibers) and PoCL differ", cases[i].name);
      free(o);
    }
    free(c);
  }
  kt_log_capture_stop(&logged);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    expect_path(cases[i].name, "fibers: line ");
    expect_path(cases[i].name, cases[i].why);
  }
  free(in);
}

/* A shape fission misreads (a declaration starting with __typeof__ is taken for an
 * expression, so `w` is missing in the next region): the C does not compile, the
 * program is built again without fission, with a warning, and runs on fibers. */
static void fission_that_does_not_compile_runs_on_fibers(void **state) {
  (void)state;
  static const char src[] =
      "KILN_KERNEL void misread(KILN_GLOBAL const int *in, KILN_GLOBAL int *out,\n"
      "                         KILN_LOCAL int *t) {\n"
      "  size_t l = kiln_local_id(0);\n"
      "  int v = in[kiln_global_id(0)];\n"
      "  __typeof__(v) w = v * 2;\n"
      "  t[l] = w;\n"
      "  kiln_barrier();\n"
      "  out[kiln_global_id(0)] = w + t[l ^ 1u];\n"
      "}\n";
  /* a compile cache hit would skip the compile and its warning: off in this process
   * (each ctest entry is one), else the warning is checked only when it compiled */
  setenv("KILN_CACHE", "off", 1);
  kiln_cache_info before = KILN_CACHE_INFO_INIT, after = KILN_CACHE_INFO_INIT;
  KT_OK(kiln_cache_stats(&before));
  capture_paths();
  size_t n = 128;
  int *in = input(n);
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 16;
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 16 * 4}};
  int *o;
  KT_OK(run(KILN_BACKEND_CPU, false, src, "misread", r, in, n, 2, args, 3, &o));
  kt_log_capture_stop(&logged);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(o[i], 2 * in[i] + 2 * in[i ^ 1u]);
  free(o);
  free(in);
  expect_path("misread", "fibers: the C of its loop fission did not compile");
  KT_OK(kiln_cache_stats(&after));
  if (after.memory_hits + after.disk_hits == before.memory_hits + before.disk_hits) {
    assert_int_equal(kt_log_capture_warnings(&logged), 1);
    assert_true(kt_log_capture_has(&logged, "did not compile"));
    assert_true(kt_log_capture_has(&logged, "please report"));
  }
}

/* ---- random kernels: statements, loops, ifs and barriers in uniform control flow,
 * values exchanged through local memory; fission against fibers, byte for byte */
typedef struct gen {
  char *out;
  size_t cap, len;
  uint64_t rng;
  int live[16], vars; /* the variables in scope: v<live[i]> */
  int names, depth;   /* names: the next fresh number */
} gen;

static unsigned rnd(gen *g, unsigned n) {
  g->rng = g->rng * 6364136223846793005ull + 1442695040888963407ull;
  return (unsigned)(g->rng >> 33) % n;
}

static void emit(gen *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g->out + g->len, g->cap - g->len, fmt, ap);
  va_end(ap);
  assert_true(n >= 0 && g->len + (size_t)n < g->cap);
  g->len += (size_t)n;
}

static void gen_block(gen *g, int count);

static void gen_stmt(gen *g) {
  unsigned k = g->depth < 3 ? rnd(g, 10) : rnd(g, 4);
  int a = g->live[rnd(g, (unsigned)g->vars)], b = g->live[rnd(g, (unsigned)g->vars)];
  int c = g->live[rnd(g, (unsigned)g->vars)];
  switch (k) {
  case 0:
    emit(g, "v%d = v%d %s v%d + %uu;\n", a, b, rnd(g, 2) ? "^" : "+", c, rnd(g, 50));
    return;
  case 1: /* a private array */
    emit(g, "arr[%u] += v%d ^ arr[%u];\n", rnd(g, 2), a, rnd(g, 2));
    return;
  case 2: /* an exchange through local memory */
    emit(g, "t[l] = v%d;\nkiln_barrier();\nv%d += t[(l + %uu) %% n];\nkiln_barrier();\n", a, b,
         1 + rnd(g, 7));
    return;
  case 3: /* a new variable, declared between barriers */
    if (g->vars < 12) {
      g->live[g->vars] = g->names++;
      emit(g, "uint v%d = v%d * 3u + %uu;\n", g->live[g->vars], a, rnd(g, 9));
      g->vars++;
    }
    return;
  }
  int saved = g->vars, name = g->names++;
  g->depth++;
  switch (k) {
  case 4: /* a uniform for */
    emit(g, "for (int i%d = 0; i%d < %u; i%d++) {\n", name, name, 1 + rnd(g, 3), name);
    break;
  case 5: /* a for whose condition every work-item evaluates */
    emit(g, "for (uint i%d = v%d * 0u; i%d < 2u + (uint)(l * 0u); i%d++) {\n", name, a, name, name);
    break;
  case 6: /* a while on a counter: uniform (w++) or, to fission, per work-item */
    emit(g, "uint w%d = 0;\nwhile (w%d < %uu) {\n", name, name, 1 + rnd(g, 3));
    emit(g, rnd(g, 2) ? "w%d++;\n" : "w%d += 1u + (uint)(l * 0u);\n", name);
    break;
  case 9: /* a do-while, its counter like the while's */
    emit(g, "uint w%d = 0;\ndo {\n", name);
    emit(g, rnd(g, 2) ? "w%d++;\n" : "w%d += 1u + (uint)(l * 0u);\n", name);
    break;
  case 7: /* an if on a parameter */
    emit(g, "if (p > %d) {\n", (int)rnd(g, 6));
    break;
  default: /* an if every work-item evaluates, agreeing */
    emit(g, "if (v%d * 0u + (uint)p > %uu) {\n", a, rnd(g, 6));
    break;
  }
  gen_block(g, 1 + (int)rnd(g, 3));
  if (k == 7 || k == 8) {
    emit(g, "} else {\n");
    g->vars = saved;
    gen_block(g, 1 + (int)rnd(g, 2));
  }
  if (k == 9)
    emit(g, "} while (w%d < %uu);\n", name, 1 + rnd(g, 3));
  else
    emit(g, "}\n");
  g->vars = saved; /* variables declared inside are out of scope */
  g->depth--;
}

static void gen_block(gen *g, int count) {
  for (int i = 0; i < count; i++)
    gen_stmt(g);
}

static void random_kernels_match_fibers(void **state) {
  (void)state;
  enum { KERNELS = 8 };
  static char src[64 << 10];
  gen g;
  memset(&g, 0, sizeof g);
  g.out = src;
  g.cap = sizeof src;
  g.rng = 0x6b696c6eull;
  for (int k = 0; k < KERNELS; k++) {
    emit(&g,
         "KILN_KERNEL void rnd%d(KILN_GLOBAL const uint *in, KILN_GLOBAL uint *out,\n"
         "                       KILN_LOCAL uint *t, int p) {\n"
         "size_t l = kiln_local_id(0), n = kiln_local_size(0);\n"
         "uint v0 = in[kiln_global_id(0)], v1 = (uint)p, v2 = (uint)l;\n"
         "uint arr[2];\narr[0] = v0 + 1u; arr[1] = v2;\n",
         k);
    g.vars = 3;
    g.names = 3;
    for (int v = 0; v < 3; v++)
      g.live[v] = v;
    gen_block(&g, 4 + (int)rnd(&g, 4));
    emit(&g, "t[l] = v0;\nkiln_barrier();\nout[kiln_global_id(0)] = t[n - 1u - l]");
    for (int v = 1; v < g.vars; v++)
      emit(&g, " + v%d * %uu", g.live[v], 2u * (unsigned)v + 1u);
    emit(&g, " + arr[0] + arr[1];\n}\n");
  }
  capture_paths();
  enum { ITEMS = 32 * 40 };
  int *in = input(ITEMS);
  kiln_device dev;
  kiln_context ctx;
  kiln_stream st;
  KT_OK(kiln_device_find(KILN_BACKEND_CPU, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  KT_OK(kiln_stream_create(ctx, NULL, &st));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = src;
  pd.name = "random";
  kiln_program prog;
  if (kiln_program_create(ctx, &pd, &prog) != KILN_SUCCESS)
    fail_msg("%s\n%s\n%s", kiln_last_error()->message, kiln_last_build_log(), src);
  kiln_buffer bin = kt_buffer(ctx, sizeof(int) * ITEMS), bout[2];
  KT_OK(kiln_buffer_write(bin, 0, sizeof(int) * ITEMS, in));
  bout[0] = kt_buffer(ctx, sizeof(int) * ITEMS);
  bout[1] = kt_buffer(ctx, sizeof(int) * ITEMS);
  kiln_range r = kiln_range_1d(ITEMS);
  r.local[0] = 32;
  int p = 3;
  static int res[2][ITEMS];
  for (int k = 0; k < KERNELS; k++) {
    char name[16];
    snprintf(name, sizeof name, "rnd%d", k);
    for (int way = 0; way < 2; way++) { /* fission, then fibers */
      if (way)
        setenv("KILN_CPU_FISSION", "0", 1);
      kiln_kernel kern;
      KT_OK(kiln_kernel_create(prog, name, &kern));
      unsetenv("KILN_CPU_FISSION");
      kiln_arg a[4] = {kiln_arg_buffer(bin), kiln_arg_buffer(bout[way]), kiln_arg_local(32 * 4),
                       kiln_arg_scalar(&p, sizeof p)};
      KT_OK(kiln_launch(st, kern, &r, a, 4));
      KT_OK(kiln_buffer_read(bout[way], 0, sizeof res[way], res[way]));
      KT_OK(kiln_kernel_destroy(kern));
    }
    if (memcmp(res[0], res[1], sizeof res[0]))
      fail_msg("%s: fission and fibers differ; the source:\n%s", name, src);
  }
  KT_OK(kiln_buffer_destroy(bin));
  KT_OK(kiln_buffer_destroy(bout[0]));
  KT_OK(kiln_buffer_destroy(bout[1]));
  KT_OK(kiln_program_destroy(prog));
  KT_OK(kiln_stream_destroy(st));
  KT_OK(kiln_context_destroy(ctx));
  kt_log_capture_stop(&logged);
  for (int k = 0; k < KERNELS; k++) {
    char name[16];
    snprintf(name, sizeof name, "rnd%d", k);
    expect_path(name, "loop fission");
  }
  free(in);
}

/* Each host allocation of a fission launch failing in turn (the launch's, the local
 * block, the per-work-item storage): OUT_OF_HOST_MEMORY or success, then a right
 * result; kt_teardown finds nothing leaked. */
static void storage_allocation_failures(void **state) {
  kt_env *env = *state;
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = shapes;
  pd.name = "shapes";
  kiln_program p;
  KT_OK(kiln_program_create(env->ctx, &pd, &p));
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, "loop_while", &k));
  enum { N = 64 };
  int in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = i;
  kiln_buffer a = kt_buffer(env->ctx, sizeof in), b = kt_buffer(env->ctx, sizeof out);
  KT_OK(kiln_buffer_write(a, 0, sizeof in, in));
  kiln_arg args[3] = {kiln_arg_buffer(a), kiln_arg_buffer(b), kiln_arg_local(N * 4)};
  kiln_range r = kiln_range_1d(N);
  r.local[0] = N;
  int failures = 0;
  for (size_t nth = 1; nth < 32; nth++) {
    kt_alloc_fail_nth(nth);
    kiln_pending t = KILN_PENDING_INIT;
    kiln_status st = kiln_launch_async(env->stream, k, &r, args, 3, &t);
    if (st == KILN_SUCCESS)
      st = kiln_wait(&t);
    size_t injected = kt_alloc_failures();
    kt_alloc_fail_none();
    if (!injected) {
      KT_OK(st);
      break;
    }
    if (st != KILN_SUCCESS) {
      assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
      failures++;
      KT_OK(kiln_buffer_write(a, 0, sizeof in, in)); /* clears the failed marks */
      KT_OK(kiln_buffer_write(b, 0, sizeof in, in));
    }
  }
  assert_true(failures >= 3); /* the launch record, the local block, the storage */
  KT_OK(kiln_launch(env->stream, k, &r, args, 3));
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  /* acc_0 = in[l]; acc += in[63 - l]' (k + 1) over k < 5, every item the same way */
  int want[N];
  int acc[N];
  for (int i = 0; i < N; i++)
    acc[i] = in[i];
  for (int kk = 0; kk < 5; kk++) {
    int prev[N];
    memcpy(prev, acc, sizeof prev);
    for (int i = 0; i < N; i++)
      acc[i] += prev[N - 1 - i] * (kk + 1);
  }
  for (int i = 0; i < N; i++)
    want[i] = acc[i] + 5;
  assert_memory_equal(out, want, sizeof want);
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(loops_and_ifs_match_fibers_and_pocl),
      cmocka_unit_test(test_kernels_take_fission),
      cmocka_unit_test(divergent_barriers_fail_with_fission),
      cmocka_unit_test(unsupported_shapes_stay_on_fibers),
      cmocka_unit_test(fission_that_does_not_compile_runs_on_fibers),
      cmocka_unit_test(random_kernels_match_fibers),
      cmocka_unit_test_setup_teardown(storage_allocation_failures, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
