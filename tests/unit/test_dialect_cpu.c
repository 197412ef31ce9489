/* SPDX-License-Identifier: MIT */
/* The kiln dialect on the CPU backend (host compiler -> shared object): the test
 * kernels of tests/kernels give the same bytes on cpu as on PoCL (values chosen so the
 * arithmetic is exact on both), ids and sizes in 1-3 dimensions, barriers and local
 * memory (parameters, KILN_LOCAL_ARRAY, a barrier inside a helper), a barrier in
 * divergent control flow, and the compiler's failures: a compile error with the
 * dialect line, options outside the allow-list, a missing or relative compiler.
 * kiln-test-labels: unit cpu opencl */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "kt_dialect.h"

static kiln_buffer new_buffer(kiln_context ctx, size_t bytes) {
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = bytes;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(ctx, &bd, &b));
  return b;
}

static kiln_program build(kiln_context ctx, const char *name, const char *source,
                          const char *options) {
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = name;
  pd.options = options;
  kiln_program p = NULL;
  kiln_status st = kiln_program_create(ctx, &pd, &p);
  if (st != KILN_SUCCESS)
    fail_msg("%s: %s\n%s", name, kiln_last_error()->message, kiln_last_build_log());
  return p;
}

/* A kernel's arguments: buffers by index into the run's buffers, scalars, local bytes. */
typedef struct karg {
  int kind; /* 0 buffer, 1 scalar, 2 local */
  int buf;
  const void *value;
  size_t bytes;
} karg;
typedef struct kbuf {
  const void *init; /* NULL: zeros */
  size_t bytes;
} kbuf;

/* Run source:name over r on one backend; out[i] receives buffer i after the launch. */
static void run_on(kiln_backend_kind kind, const char *source, const char *name, kiln_range r,
                   const kbuf *bufs, int nbuf, const karg *args, int nargs, void **out) {
  kt_side d;
  kt_side_open(&d, kind);
  kiln_program p = build(d.ctx, name, source, NULL);
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, name, &k));
  kiln_buffer b[8];
  for (int i = 0; i < nbuf; i++) {
    b[i] = new_buffer(d.ctx, bufs[i].bytes);
    if (bufs[i].init) {
      KT_OK(kiln_buffer_write(b[i], 0, bufs[i].bytes, bufs[i].init));
    } else {
      unsigned char zero = 0;
      KT_OK(kiln_buffer_fill(b[i], 0, bufs[i].bytes, &zero, 1));
    }
  }
  kiln_arg a[16];
  for (int i = 0; i < nargs; i++)
    a[i] = args[i].kind == 0   ? kiln_arg_buffer(b[args[i].buf])
           : args[i].kind == 1 ? kiln_arg_scalar(args[i].value, args[i].bytes)
                               : kiln_arg_local(args[i].bytes);
  KT_OK(kiln_launch(d.s, k, &r, a, (size_t)nargs));
  for (int i = 0; i < nbuf; i++) {
    out[i] = malloc(bufs[i].bytes);
    assert_non_null(out[i]);
    KT_OK(kiln_buffer_read(b[i], 0, bufs[i].bytes, out[i]));
    KT_OK(kiln_buffer_destroy(b[i]));
  }
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
  kt_side_close(&d);
}

/* The backend compared with cpu: OpenCL device 0 (PoCL here), or CUDA's with
 * KILN_DIALECT_OTHER=cuda (tests/dialect.cmake: scripts/gpu-check.sh runs them). */
/* In sanitizer trees only the CPU kt_side runs (kernels compiled with the sanitizer, every
 * host-kt_side check kept): PoCL under ASan costs ~10 s a test, and the comparison itself
 * is the release tree's. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COMPARE_WITH_OTHER 0
#else
#define COMPARE_WITH_OTHER 1
#endif

/* Runs on cpu and the other backend: c[i] and o[i] receive buffer i of each (caller
 * frees; o[i] is a copy of c[i] where the other side does not run). */
static void run_both(const char *source, const char *name, kiln_range r, const kbuf *bufs, int nbuf,
                     const karg *args, int nargs, void **c, void **o) {
  run_on(KILN_BACKEND_CPU, source, name, r, bufs, nbuf, args, nargs, c);
  if (COMPARE_WITH_OTHER || kt_dialect_other() == KILN_BACKEND_CUDA) {
    run_on(kt_dialect_other(), source, name, r, bufs, nbuf, args, nargs, o);
    return;
  }
  for (int i = 0; i < nbuf; i++) {
    o[i] = malloc(bufs[i].bytes);
    assert_non_null(o[i]);
    memcpy(o[i], c[i], bufs[i].bytes);
  }
}

/* Runs on cpu and PoCL and checks every buffer is the same, byte for byte. *cpu_out
 * (may be NULL) keeps the CPU's buffers for further checks (caller frees). */
static void same_on_both(const char *source, const char *name, kiln_range r, const kbuf *bufs,
                         int nbuf, const karg *args, int nargs, void **cpu_out) {
  void *c[8], *o[8];
  run_both(source, name, r, bufs, nbuf, args, nargs, c, o);
  for (int i = 0; i < nbuf; i++) {
    if (memcmp(c[i], o[i], bufs[i].bytes) != 0) {
      size_t at = 0;
      while (((unsigned char *)c[i])[at] == ((unsigned char *)o[i])[at])
        at++;
      fail_msg("%s: buffer %d differs between cpu and %s first at byte %zu", name, i,
               kiln_backend_name(kt_dialect_other()), at);
    }
    free(o[i]);
    if (cpu_out)
      cpu_out[i] = c[i];
    else
      free(c[i]);
  }
}

static float *floats(size_t n, unsigned mul, unsigned mod) {
  float *v = malloc(n * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = (float)((i * mul) % mod) * 0.25f;
  return v;
}

/* ---- the test kernels */

static void vecadd_matches_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("vecadd.kiln");
  int n = 200003; /* large enough for the helper threads, not a multiple of any group */
  float *a = floats((size_t)n, 7, 1001), *b = floats((size_t)n, 13, 997);
  kbuf bufs[] = {{a, (size_t)n * 4}, {b, (size_t)n * 4}, {NULL, (size_t)n * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {0, 2, NULL, 0}, {1, 0, &n, sizeof n}};
  void *out[3];
  same_on_both(src, "vecadd", kiln_range_1d((size_t)n), bufs, 3, args, 4, out);
  const float *c = out[2];
  for (int i = 0; i < n; i += 997)
    assert_true(c[i] == a[i] + b[i]);
  for (int i = 0; i < 3; i++)
    free(out[i]);
  free(a);
  free(b);
  free(src);
}

static void saxpy_matches_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("saxpy.kiln");
  unsigned n = 4099;
  float alpha = 2.5f;
  float *x = floats(n, 3, 101), *y = floats(n, 5, 103);
  kbuf bufs[] = {{x, n * 4}, {y, n * 4}};
  karg args[] = {{1, 0, &alpha, 4}, {0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  void *out[2];
  same_on_both(src, "saxpy", kiln_range_1d(n), bufs, 2, args, 4, out);
  assert_true(((float *)out[1])[100] == alpha * x[100] + y[100]);
  free(out[0]);
  free(out[1]);
  free(x);
  free(y);
  free(src);
}

static void reduce_with_barriers_matches_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("reduce.kiln");
  unsigned n = (1u << 17) + 77;
  float *in = floats(n, 1, 17); /* small multiples of 0.25: every partial sum is exact */
  double want = 0;
  for (unsigned i = 0; i < n; i++)
    want += in[i];
  /* reduce_sum: local memory from a parameter, local size 128 */
  size_t groups = (n + 127) / 128;
  kbuf bufs[] = {{in, n * 4}, {NULL, groups * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 128 * 4}, {1, 0, &n, 4}};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 128;
  void *out[2];
  same_on_both(src, "reduce_sum", r, bufs, 2, args, 4, out);
  double got = 0;
  for (size_t g = 0; g < groups; g++)
    got += ((float *)out[1])[g];
  assert_true(got == want);
  free(out[0]);
  free(out[1]);
  /* reduce_sum_static: KILN_LOCAL_ARRAY of 256, local size 256 */
  groups = (n + 255) / 256;
  kbuf bufs2[] = {{in, n * 4}, {NULL, groups * 4}};
  karg args2[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  r.local[0] = 256;
  same_on_both(src, "reduce_sum_static", r, bufs2, 2, args2, 3, out);
  got = 0;
  for (size_t g = 0; g < groups; g++)
    got += ((float *)out[1])[g];
  assert_true(got == want);
  free(out[0]);
  free(out[1]);
  free(in);
  free(src);
}

static void stencil2d_matches_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("stencil2d.kiln");
  int w = 131, h = 77;
  float *in = floats((size_t)(w * h), 11, 89);
  kbuf bufs[] = {{in, (size_t)(w * h) * 4}, {NULL, (size_t)(w * h) * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &w, 4}, {1, 0, &h, 4}};
  same_on_both(src, "stencil2d", kiln_range_2d((size_t)w, (size_t)h), bufs, 2, args, 4, NULL);
  kiln_range r = kiln_range_2d((size_t)w, (size_t)h);
  r.local[0] = 16;
  r.local[1] = 4;
  same_on_both(src, "stencil2d", r, bufs, 2, args, 4, NULL);
  free(in);
  free(src);
}

/* The global size rounded up to the local size: the buffers hold exactly the size
 * asked for, so an unguarded work-item would write past them (ASan's redzone). */
static void guard_sizes_match_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("guard.kiln");
  kbuf bufs[] = {{NULL, 1000 * 4}};
  karg args[] = {{0, 0, NULL, 0}};
  kiln_range r = kiln_range_1d(1000);
  r.local[0] = 64;
  void *out[1];
  same_on_both(src, "guard", r, bufs, 1, args, 1, out);
  for (unsigned i = 0; i < 1000; i++)
    assert_int_equal(((unsigned *)out[0])[i], i * 3u + 1u);
  free(out[0]);
  kbuf bufs2[] = {{NULL, 37 * 23 * 4}};
  kiln_range r2 = kiln_range_2d(37, 23);
  r2.local[0] = 8;
  r2.local[1] = 8;
  same_on_both(src, "guard2d", r2, bufs2, 1, args, 1, out);
  assert_int_equal(((int *)out[0])[22 * 37 + 36], 36 + 22000);
  free(out[0]);
  free(src);
}

/* Every id and size function in 3-D, with and without a barrier (the loop and the
 * fiber paths). */
static const char ids_source[] =
    "KILN_KERNEL void ids(KILN_GLOBAL kiln_u32 *o) {\n"
    "  size_t x = kiln_global_id(0), y = kiln_global_id(1), z = kiln_global_id(2);\n"
    "  if (x >= kiln_global_size(0) || y >= kiln_global_size(1) || z >= kiln_global_size(2))\n"
    "    return;\n"
    "  size_t i = 8 * (x + kiln_global_size(0) * (y + kiln_global_size(1) * z));\n"
    "  for (int d = 0; d < 3; d++) {\n"
    "    o[i + d] = (kiln_u32)(kiln_local_id(d) + 100 * kiln_group_id(d));\n"
    "  }\n"
    "  o[i + 3] = (kiln_u32)(kiln_local_size(0) + 10 * kiln_local_size(1) + 100 * "
    "kiln_local_size(2));\n"
    "  o[i + 4] = (kiln_u32)(kiln_num_groups(0) + 10 * kiln_num_groups(1) + 100 * "
    "kiln_num_groups(2));\n"
    "}\n"
    "KILN_INLINE kiln_u32 flat_lid(void) {\n"
    "  return (kiln_u32)(kiln_local_id(0) + kiln_local_size(0) * (kiln_local_id(1) +\n"
    "                    kiln_local_size(1) * kiln_local_id(2)));\n"
    "}\n"
    "KILN_KERNEL void ids_barrier(KILN_GLOBAL kiln_u32 *o, KILN_LOCAL kiln_u32 *t) {\n"
    "  kiln_u32 me = flat_lid();\n"
    "  kiln_u32 n = (kiln_u32)(kiln_local_size(0) * kiln_local_size(1) * kiln_local_size(2));\n"
    "  t[me] = (kiln_u32)kiln_global_id(0) * 7u + (kiln_u32)kiln_global_id(1) * 131u +\n"
    "          (kiln_u32)kiln_global_id(2) * 1009u;\n"
    "  kiln_barrier();\n"
    "  kiln_u32 other = t[n - 1u - me];\n"
    "  kiln_barrier();\n"
    "  size_t x = kiln_global_id(0), y = kiln_global_id(1), z = kiln_global_id(2);\n"
    "  o[x + kiln_global_size(0) * (y + kiln_global_size(1) * z)] = other + flat_lid();\n"
    "}\n";

static void ids_in_3d_match_pocl(void **state) {
  (void)state;
  kiln_range r = KILN_RANGE_INIT;
  r.dims = 3;
  r.global[0] = 10;
  r.global[1] = 6;
  r.global[2] = 7;
  r.local[0] = 4;
  r.local[1] = 3;
  r.local[2] = 2;
  size_t items = 10 * 6 * 7;
  kbuf bufs[] = {{NULL, items * 8 * 4}};
  karg args[] = {{0, 0, NULL, 0}};
  void *out[1];
  same_on_both(ids_source, "ids", r, bufs, 1, args, 1, out);
  const unsigned *o = out[0];
  /* x = 9, y = 5, z = 6: local (1, 2, 0), group (2, 1, 3), 3 x 2 x 4 groups */
  const unsigned *e = o + 8 * (9 + 10 * (5 + 6 * 6));
  assert_int_equal(e[0], 1 + 200);
  assert_int_equal(e[1], 2 + 100);
  assert_int_equal(e[2], 0 + 300);
  assert_int_equal(e[3], 4 + 30 + 200);
  assert_int_equal(e[4], 3 + 20 + 400);
  free(out[0]);
  /* the global size a multiple of the local one, so every work-item stores */
  r.global[0] = 8;
  r.global[2] = 8;
  kbuf bufs2[] = {{NULL, 8 * 6 * 8 * 4}};
  karg args2[] = {{0, 0, NULL, 0}, {2, 0, NULL, 24 * 4}};
  same_on_both(ids_source, "ids_barrier", r, bufs2, 1, args2, 2, NULL);
}

/* A barrier in a helper, a KILN_LOCAL_ARRAY and a long chain of barriers in a loop,
 * over enough groups for the helper threads. */
static const char helper_source[] =
    "KILN_INLINE void group_sync(void) { kiln_barrier(); }\n"
    "KILN_KERNEL void rotate_tile(KILN_GLOBAL const int *in, KILN_GLOBAL int *out, int rounds) {\n"
    "  KILN_LOCAL_ARRAY int tile[64];\n"
    "  size_t l = kiln_local_id(0), n = kiln_local_size(0);\n"
    "  int v = in[kiln_global_id(0)];\n"
    "  for (int r = 0; r < rounds; r++) {\n"
    "    tile[l] = v;\n"
    "    group_sync();\n"
    "    v = tile[(l + 1) % n] + (int)l;\n"
    "    group_sync();\n"
    "  }\n"
    "  out[kiln_global_id(0)] = v;\n"
    "}\n";

static void barrier_in_helper_matches_pocl(void **state) {
  (void)state;
  size_t n = 64 * 700;
  int *in = malloc(n * sizeof *in);
  assert_non_null(in);
  for (size_t i = 0; i < n; i++)
    in[i] = (int)(i % 1000);
  int rounds = 9;
  kbuf bufs[] = {{in, n * 4}, {NULL, n * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &rounds, 4}};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 64;
  same_on_both(helper_source, "rotate_tile", r, bufs, 2, args, 3, NULL);
  free(in);
}

/* ---- atomics (tests/kernels/atomics.kiln) and math (tests/kernels/math.kiln) */

static unsigned *pattern_u32(size_t n) {
  unsigned *v = malloc(n * sizeof *v);
  assert_non_null(v);
  for (size_t i = 0; i < n; i++)
    v[i] = (unsigned)((i * 2654435761u) >> 7);
  return v;
}

static void histograms_match_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("atomics.kiln");
  unsigned n = 100000, nbins = 97;
  unsigned *in = pattern_u32(n);
  unsigned want[97] = {0};
  for (unsigned i = 0; i < n; i++)
    want[in[i] % nbins]++;
  kbuf bufs[] = {{in, n * 4}, {NULL, nbins * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &nbins, 4}, {1, 0, &n, 4}};
  void *out[2];
  same_on_both(src, "histogram", kiln_range_1d(n), bufs, 2, args, 4, out);
  assert_memory_equal(out[1], want, sizeof want);
  kt_free_all(out, 2);
  karg largs[] = {
      {0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 97 * 4}, {1, 0, &nbins, 4}, {1, 0, &n, 4}};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 64;
  same_on_both(src, "histogram_local", r, bufs, 2, largs, 5, out);
  assert_memory_equal(out[1], want, sizeof want);
  kt_free_all(out, 2);
  free(in);
  free(src);
}

/* The order work-items take slots differs between devices; each slot is taken once. */
static void counter_hands_out_every_slot_once(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("atomics.kiln");
  unsigned n = 50000;
  kbuf bufs[] = {{NULL, 4}, {NULL, n * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  void *c[2], *o[2];
  run_both(src, "counter", kiln_range_1d(n), bufs, 2, args, 3, c, o);
  void **sides[2] = {c, o};
  unsigned char *seen = calloc(n, 1);
  assert_non_null(seen);
  for (int s = 0; s < 2; s++) {
    assert_int_equal(*(unsigned *)sides[s][0], n);
    memset(seen, 0, n);
    const unsigned *slots = sides[s][1];
    for (unsigned k = 0; k < n; k++) {
      assert_true(slots[k] >= 1 && slots[k] <= n);
      assert_int_equal(seen[slots[k] - 1], 0);
      seen[slots[k] - 1] = 1;
    }
  }
  free(seen);
  kt_free_all(c, 2);
  kt_free_all(o, 2);
  free(src);
}

static void compare_exchange_has_one_winner(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("atomics.kiln");
  unsigned n = 40000;
  kbuf bufs[] = {{NULL, 4}, {NULL, n * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  void *c[2], *o[2];
  run_both(src, "one_winner", kiln_range_1d(n), bufs, 2, args, 3, c, o);
  void **sides[2] = {c, o};
  for (int s = 0; s < 2; s++) {
    int flag = *(int *)sides[s][0];
    const int *won = sides[s][1];
    unsigned winners = 0;
    for (unsigned i = 0; i < n; i++)
      winners += (unsigned)won[i];
    assert_int_equal(winners, 1);
    assert_true(flag >= 1 && (unsigned)flag <= n);
    assert_int_equal(won[flag - 1], 1);
  }
  kt_free_all(c, 2);
  kt_free_all(o, 2);
  free(src);
}

static void every_atomic_operation_matches_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("atomics.kiln");
  unsigned n = 70001;
  int s0[5] = {0, 0, 1000, -1000, 0};
  unsigned u0[5] = {0xffffffffu, 0, 0, 0xffffffffu, 0};
  kbuf bufs[] = {{s0, sizeof s0}, {u0, sizeof u0}, {NULL, (n + 1) * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {0, 2, NULL, 0}, {1, 0, &n, 4}};
  void *c[3], *o[3];
  run_both(src, "ops32", kiln_range_1d(n), bufs, 3, args, 4, c, o);
  assert_memory_equal(c[0], o[0], sizeof s0);
  assert_memory_equal(c[1], o[1], sizeof u0);
  const int *s = c[0];
  assert_int_equal(s[0], (int)((unsigned long long)n * (n - 1) / 2));
  assert_int_equal(s[2], -500);
  assert_int_equal(s[4], -(int)n);
  /* xchg: every value but the last swapped in came out exactly once */
  void **sides[2] = {c, o};
  unsigned char *seen = calloc(n + 1, 1);
  assert_non_null(seen);
  for (int k = 0; k < 2; k++) {
    const int *x = sides[k][2];
    memset(seen, 0, n + 1);
    seen[x[n]] = 1;
    for (unsigned i = 0; i < n; i++) {
      assert_true(x[i] >= 0 && (unsigned)x[i] <= n);
      assert_int_equal(seen[x[i]], 0);
      seen[x[i]] = 1;
    }
  }
  free(seen);
  kt_free_all(c, 3);
  kt_free_all(o, 3);

  long l0[5] = {0, 0, 1L << 60, -(1L << 60), 0};
  unsigned long ul0[4] = {~0ul, 0, 0, 0};
  kbuf bufs64[] = {{l0, sizeof l0}, {ul0, sizeof ul0}};
  karg args64[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  run_both(src, "ops64", kiln_range_1d(n), bufs64, 2, args64, 3, c, o);
  assert_memory_equal(c[0], o[0], sizeof l0);
  assert_memory_equal(c[1], o[1], 3 * sizeof(unsigned long)); /* [3]: whoever won */
  const long *l = c[0];
  assert_int_equal(l[2], -(500L << 33));
  assert_int_equal(l[3], ((long)n - 1 - 500) << 33);
  assert_int_equal(l[4], (long)n);
  for (int k = 0; k < 2; k++) {
    unsigned long w = ((unsigned long *)sides[k][1])[3];
    assert_true(w >= 1 && w <= n);
  }
  kt_free_all(c, 2);
  kt_free_all(o, 2);

  /* float add of multiples of 0.25: every order gives the exact sum */
  float *in = floats(n, 3, 64);
  double want = 0;
  for (unsigned i = 0; i < n; i++)
    want += in[i];
  kbuf fb[] = {{in, n * 4}, {NULL, 8}};
  karg fa[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {2, 0, NULL, 4}, {1, 0, &n, 4}};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 128;
  void *f[2];
  same_on_both(src, "fadd", r, fb, 2, fa, 4, f);
  assert_true(((float *)f[1])[0] == (float)want);
  assert_true(((float *)f[1])[1] == (float)want);
  kt_free_all(f, 2);
  free(in);
  free(src);
}

/* |a - b| within `ulps` units in the last place of the larger. */
static int close_ulps(float a, float b, int ulps) {
  if (a == b)
    return 1;
  float m = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b);
  return fabsf(a - b) <= (float)ulps * (nextafterf(m, INFINITY) - m);
}

static void math_builtins_agree_with_pocl(void **state) {
  (void)state;
  char *src = kt_slurp_kernel("math.kiln");
  unsigned n = 1000;
  float *in = malloc(n * sizeof *in);
  assert_non_null(in);
  for (unsigned i = 0; i < n; i++)
    in[i] = (float)i * 0.0997f;
  kbuf bufs[] = {{in, n * 4}, {NULL, n * 16 * 4}};
  karg args[] = {{0, 0, NULL, 0}, {0, 1, NULL, 0}, {1, 0, &n, 4}};
  void *c[2], *o[2];
  run_both(src, "math_f32", kiln_range_1d(n), bufs, 2, args, 3, c, o);
  /* per function: the exact ones (fabs, floor, ceil, fmin, fmax, min/max) bit for bit;
   * the others within the OpenCL 1.2 maximum plus the C library's 1 ulp (docs/kernels.md,
   * "Math"): sqrt 3, exp 3, log 3, sin 4, cos 4, pow 16, tanh 5, atan2 6, exp2 3, log2 3 */
  static const int ulps[16] = {4, 4, 4, 5, 5, 17, 0, 0, 0, 0, 0, 6, 7, 4, 4, 0};
  const float *cf = c[1], *of = o[1];
  for (unsigned i = 0; i < n; i++)
    for (unsigned k = 0; k < 16; k++)
      if (!close_ulps(cf[i * 16 + k], of[i * 16 + k], ulps[k]))
        fail_msg("math_f32 function %u of %.9g: cpu %.9g, PoCL %.9g (more than %d ulp apart)", k,
                 (double)in[i], (double)cf[i * 16 + k], (double)of[i * 16 + k], ulps[k]);
  kt_free_all(c, 2);
  kt_free_all(o, 2);
  free(in);
  free(src);
}

/* ---- the CPU backend alone */

/* What kiln chooses for source kernels, and says: a loop of 1024 work-items a call
 * without barriers, 256 with barriers by loop fission, 64 fibers on fibers. */
static void launch_config_of_source_kernels(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  char *src = kt_slurp_kernel("reduce.kiln");
  char *vsrc = kt_slurp_kernel("vecadd.kiln");
  kiln_program p = build(d.ctx, "reduce.kiln", src, NULL);
  kiln_program vp = build(d.ctx, "vecadd.kiln", vsrc, NULL);
  kiln_kernel red, vec;
  KT_OK(kiln_kernel_create(p, "reduce_sum", &red));
  KT_OK(kiln_kernel_create(vp, "vecadd", &vec));
  kiln_range r = kiln_range_1d(100000);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  KT_OK(kiln_kernel_get_launch_config(vec, &r, &c));
  assert_int_equal(c.local[0], 1024);
  assert_int_equal(c.groups[0], (100000 + 1023) / 1024);
  assert_non_null(strstr(c.why, "no barrier"));
  KT_OK(kiln_kernel_get_launch_config(red, &r, &c));
  assert_int_equal(c.local[0], 256);
  assert_non_null(strstr(c.why, "loop fission"));
  kiln_kernel fib; /* the same kernel on fibers */
  setenv("KILN_CPU_FISSION", "0", 1);
  KT_OK(kiln_kernel_create(p, "reduce_sum", &fib));
  unsetenv("KILN_CPU_FISSION");
  KT_OK(kiln_kernel_get_launch_config(fib, &r, &c));
  assert_int_equal(c.local[0], 64);
  assert_non_null(strstr(c.why, "fiber"));
  KT_OK(kiln_kernel_destroy(fib));
  r = kiln_range_1d(10); /* never more than the range */
  KT_OK(kiln_kernel_get_launch_config(vec, &r, &c));
  assert_int_equal(c.local[0], 10);
  KT_OK(kiln_kernel_destroy(red));
  KT_OK(kiln_kernel_destroy(vec));
  KT_OK(kiln_program_destroy(p));
  KT_OK(kiln_program_destroy(vp));
  free(src);
  free(vsrc);
  kt_side_close(&d);
}

/* Work-items that skip a barrier: the launch fails (the results are undefined on
 * every device), the stream goes on. */
static void divergent_barrier_fails_the_launch(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  kiln_program p = build(d.ctx, "divergent.kiln",
                         "KILN_KERNEL void div(KILN_GLOBAL int *o) {\n"
                         "  if (kiln_local_id(0) == 3) return;\n"
                         "  kiln_barrier();\n"
                         "  o[kiln_global_id(0)] = 1;\n"
                         "}\n"
                         "KILN_KERNEL void fine(KILN_GLOBAL int *o) {\n"
                         "  o[kiln_global_id(0)] = 2;\n"
                         "}\n",
                         NULL);
  kiln_kernel k, ok;
  KT_OK(kiln_kernel_create(p, "div", &k));
  KT_OK(kiln_kernel_create(p, "fine", &ok));
  kiln_buffer b;
  b = new_buffer(d.ctx, 64 * 4);
  kiln_arg a = kiln_arg_buffer(b);
  kiln_range r = kiln_range_1d(64);
  r.local[0] = 16;
  kiln_pending t;
  KT_OK(kiln_launch_async(d.s, k, &r, &a, 1, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  assert_string_equal(kiln_last_error()->native_name, "CPU_DIVERGENT_BARRIER");
  int zero = 0; /* a whole write clears the buffer's failure */
  KT_OK(kiln_buffer_fill(b, 0, 64 * 4, &zero, sizeof zero));
  KT_OK(kiln_launch(d.s, ok, &r, &a, 1));
  int host[64];
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  assert_int_equal(host[63], 2);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_kernel_destroy(ok));
  KT_OK(kiln_program_destroy(p));
  kt_side_close(&d);
}

/* Each host allocation of a launch failing in turn (the op's, the launch's own, the
 * work-group's local memory, the fibers' stacks): the launch completes with
 * OUT_OF_HOST_MEMORY, or succeeds when the failure was one it does not need; a later
 * launch computes the right sums; kt_teardown finds nothing leaked. One work-group's
 * worth of work-items, so the stream's worker is the only participant. */
static void launch_allocation_failures(void **state) {
  kt_env *env = *state;
  char *src = kt_slurp_kernel("reduce.kiln");
  kiln_program p = build(env->ctx, "reduce.kiln", src, NULL);
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, "reduce_sum", &k));
  unsigned n = 64;
  float in[64], part[1] = {0};
  for (unsigned i = 0; i < n; i++)
    in[i] = (float)i;
  kiln_buffer a = new_buffer(env->ctx, sizeof in), b = new_buffer(env->ctx, sizeof part);
  KT_OK(kiln_buffer_write(a, 0, sizeof in, in));
  kiln_arg args[4] = {kiln_arg_buffer(a), kiln_arg_buffer(b), kiln_arg_local(64 * 4),
                      kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(n);
  r.local[0] = 64;
  int failures = 0;
  for (size_t nth = 1; nth < 32; nth++) {
    kt_alloc_fail_nth(nth);
    kiln_pending t = KILN_PENDING_INIT;
    kiln_status st = kiln_launch_async(env->stream, k, &r, args, 4, &t);
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
      KT_OK(kiln_buffer_write(a, 0, sizeof in, in)); /* clears a failed mark */
      float zero = 0;
      KT_OK(kiln_buffer_write(b, 0, sizeof zero, &zero));
    }
  }
  assert_true(failures >= 3); /* the launch record, the local block, the fibers' */
  KT_OK(kiln_launch(env->stream, k, &r, args, 4));
  KT_OK(kiln_buffer_read(b, 0, sizeof part, part));
  assert_true(part[0] == 2016.0f);
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
  free(src);
}

static void compile_error_names_the_dialect_line(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  char *src = kt_slurp_kernel("broken.kiln");
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = src;
  pd.name = "broken.kiln";
  kiln_program p = (kiln_program)(uintptr_t)1;
  KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_COMPILE_FAILED, "<source>:6:");
  KT_MSG_HAS("broken.kiln");
  KT_MSG_HAS("kiln_undeclared_value");
  assert_null(p);
  assert_non_null(strstr(kiln_last_build_log(), "<source>:6:"));
  free(src);
  kt_side_close(&d);
}

static const char tiny[] = "KILN_KERNEL void t(KILN_GLOBAL int *o) { o[0] = VALUE; }\n";

static void options_pass_the_allow_list(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = tiny;
  pd.name = "tiny.kiln";
  kiln_program p = (kiln_program)(uintptr_t)1;
  const char *bad[] = {"-DVALUE=1 -fplugin=/tmp/x.so",
                       "-o /tmp/elsewhere",
                       "-DVALUE=`id`",
                       "-Wl,-rpath,/tmp",
                       "-D1X=2",
                       "-include /etc/passwd"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pd.options = bad[i];
    KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_INVALID_ARGUMENT,
                  "is not one the CPU backend passes");
    assert_null(p);
    assert_non_null(strstr(kiln_last_error()->suggestion, "-DNAME"));
  }
  /* allowed: a macro, OpenCL's options (mapped or without effect here) */
  pd.options = "-DVALUE=41 -cl-fast-relaxed-math -cl-std=CL1.2 -O2";
  KT_OK(kiln_program_create(d.ctx, &pd, &p));
  kiln_kernel k;
  KT_OK(kiln_kernel_create(p, "t", &k));
  KT_OK(kiln_program_destroy(p)); /* the kernel keeps the compiled object loaded */
  kiln_buffer b;
  b = new_buffer(d.ctx, 4);
  kiln_arg a = kiln_arg_buffer(b);
  kiln_range r = kiln_range_1d(1);
  KT_OK(kiln_launch(d.s, k, &r, &a, 1));
  int v = 0;
  KT_OK(kiln_buffer_read(b, 0, 4, &v));
  assert_int_equal(v, 41);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  kt_side_close(&d);
}

static void missing_compiler_is_named(void **state) {
  (void)state;
  kt_side d;
  kt_side_open(&d, KILN_BACKEND_CPU);
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = tiny;
  pd.options = "-DVALUE=1";
  pd.name = "tiny.kiln";
  kiln_program p = (kiln_program)(uintptr_t)1;
  setenv("KILN_CC", "/nonexistent/kiln-test-cc", 1);
  KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_COMPILE_FAILED,
                "/nonexistent/kiln-test-cc");
  assert_null(p);
  setenv("KILN_CC", "gcc", 1);
  KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_INVALID_ARGUMENT, "relative path");
  /* a "compiler" that fails without a word: the exit code, no log */
  setenv("KILN_CC", "/bin/false", 1);
  KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_COMPILE_FAILED, "exit 1");
  KT_MSG_HAS("gave no log");
  unsetenv("KILN_CC");
  char *path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin");
  setenv("PATH", "/nonexistent-kiln-dir", 1);
  KT_EXPECT_MSG(kiln_program_create(d.ctx, &pd, &p), KILN_ERROR_COMPILE_FAILED, "no C compiler");
  assert_non_null(strstr(kiln_last_error()->suggestion, "KILN_CC"));
  setenv("PATH", path, 1);
  free(path);
  KT_OK(kiln_program_create(d.ctx, &pd, &p));
  KT_OK(kiln_program_destroy(p));
  kt_side_close(&d);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vecadd_matches_pocl),
      cmocka_unit_test(saxpy_matches_pocl),
      cmocka_unit_test(reduce_with_barriers_matches_pocl),
      cmocka_unit_test(stencil2d_matches_pocl),
      cmocka_unit_test(guard_sizes_match_pocl),
      cmocka_unit_test(ids_in_3d_match_pocl),
      cmocka_unit_test(barrier_in_helper_matches_pocl),
      cmocka_unit_test(histograms_match_pocl),
      cmocka_unit_test(counter_hands_out_every_slot_once),
      cmocka_unit_test(compare_exchange_has_one_winner),
      cmocka_unit_test(every_atomic_operation_matches_pocl),
      cmocka_unit_test(math_builtins_agree_with_pocl),
      cmocka_unit_test(launch_config_of_source_kernels),
      cmocka_unit_test(divergent_barrier_fails_the_launch),
      cmocka_unit_test_setup_teardown(launch_allocation_failures, kt_setup, kt_teardown),
      cmocka_unit_test(compile_error_names_the_dialect_line),
      cmocka_unit_test(options_pass_the_allow_list),
      cmocka_unit_test(missing_compiler_is_named),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU) || !kt_backend_available(kt_dialect_other()))
    return 77;
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
