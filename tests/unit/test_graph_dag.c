/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu opencl cuda-fake cuda */
/* The device side of task graphs on every backend (the same kernel, kt_add_u32,
 * everywhere): a diamond of transfers and kernels over four streams checked by buffer
 * contents, a fan-out of 8 branches joined into one buffer, a chain of 64 adds, each
 * relaunched with new inputs; and a fan-out joined through an empty node with explicit
 * edges only (no implicit ones), where the join's read waits on events of the other
 * streams. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

enum { N = 256 };

typedef struct dag {
  kiln_kernel add;
  uint64_t offset;
  uint32_t adds[16];
} dag;

static kiln_graph_node add_node(kiln_graph g, dag *d, kiln_buffer buf, uint32_t k) {
  kiln_arg args[3];
  kt_add_args(args, buf, &d->offset, &d->adds[k]);
  kiln_range r = kiln_range_1d(N);
  kiln_graph_node n;
  KT_OK(kiln_graph_add_kernel(g, NULL, d->add, &r, args, 3, &n));
  return n;
}

/* upload X; branch b (b = 0..branches-1): copy X -> B[b], add b+1, copy B[b] -> slice
 * b of W; read W. With 2 branches it is a diamond. */
static void fan(kt_env *env, unsigned branches, unsigned flags) {
  dag d = {0};
  KT_OK(kt_kernel(env->ctx, "kt_add_u32", &d.add));
  for (uint32_t k = 0; k < 16; k++)
    d.adds[k] = k + 1;
  kiln_buffer x = kt_buffer(env->ctx, N * 4), w = kt_buffer(env->ctx, (size_t)N * 4 * branches);
  kiln_buffer b[8];
  uint32_t in[N], *out = calloc((size_t)N * branches, 4);
  assert_non_null(out);
  kiln_graph_desc gd = KILN_GRAPH_DESC_INIT;
  gd.flags = flags;
  gd.name = "fan";
  kiln_graph g;
  KT_OK(kiln_graph_create(env->ctx, &gd, &g));
  kiln_graph_node up, rd, join;
  KT_OK(kiln_graph_add_write(g, "upload", x, 0, sizeof in, in, &up));
  KT_OK(kiln_graph_add_empty(g, "join", &join));
  for (unsigned i = 0; i < branches; i++) {
    b[i] = kt_buffer(env->ctx, N * 4);
    kiln_graph_node c1, k, c2;
    KT_OK(kiln_graph_add_copy(g, NULL, b[i], 0, x, 0, N * 4, &c1));
    k = add_node(g, &d, b[i], i);
    KT_OK(kiln_graph_add_copy(g, NULL, w, (size_t)i * N * 4, b[i], 0, N * 4, &c2));
    if (flags & KILN_GRAPH_NO_IMPLICIT_DEPS) {
      KT_OK(kiln_graph_precede(g, up, c1));
      KT_OK(kiln_graph_precede(g, c1, k));
      KT_OK(kiln_graph_precede(g, k, c2));
    }
    KT_OK(kiln_graph_precede(g, c2, join));
  }
  KT_OK(kiln_graph_add_read(g, "download", w, 0, (size_t)N * 4 * branches, out, &rd));
  KT_OK(kiln_graph_precede(g, join, rd));
  for (uint32_t it = 0; it < 20; it++) {
    for (uint32_t i = 0; i < N; i++)
      in[i] = it * 7919u + i;
    memset(out, 0, (size_t)N * 4 * branches);
    KT_OK(kiln_graph_run(g));
    for (unsigned br = 0; br < branches; br++)
      for (uint32_t i = 0; i < N; i++)
        if (out[br * N + i] != it * 7919u + i + br + 1)
          fail_msg("launch %u branch %u word %u: %u, expected %u", it, br, i, out[br * N + i],
                   it * 7919u + i + br + 1);
  }
  KT_OK(kiln_graph_destroy(g));
  for (unsigned i = 0; i < branches; i++)
    KT_OK(kiln_buffer_destroy(b[i]));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_buffer_destroy(w));
  KT_OK(kiln_kernel_destroy(d.add));
  free(out);
}

static void test_diamond(void **state) {
  fan(*state, 2, 0);
}

static void test_fan_out_fan_in(void **state) {
  fan(*state, 8, 0);
}

static void test_explicit_edges_only(void **state) {
  fan(*state, 4, KILN_GRAPH_NO_IMPLICIT_DEPS);
}

/* fill 0 -> 64 x (add 1) -> read: each launch 64, twenty times. */
static void test_long_chain(void **state) {
  kt_env *env = *state;
  dag d = {0};
  KT_OK(kt_kernel(env->ctx, "kt_add_u32", &d.add));
  d.adds[0] = 1;
  kiln_buffer x = kt_buffer(env->ctx, N * 4);
  kiln_graph g;
  KT_OK(kiln_graph_create(env->ctx, NULL, &g));
  uint32_t zero = 0, out[N];
  kiln_graph_node n;
  KT_OK(kiln_graph_add_fill(g, "zero", x, 0, N * 4, &zero, 4, &n));
  for (int i = 0; i < 64; i++)
    add_node(g, &d, x, 0);
  KT_OK(kiln_graph_add_read(g, "out", x, 0, sizeof out, out, &n));
  for (int it = 0; it < 20; it++) {
    memset(out, 0, sizeof out);
    KT_OK(kiln_graph_launch(g));
    KT_OK(kiln_graph_wait(g));
    for (uint32_t i = 0; i < N; i++)
      assert_int_equal(out[i], 64);
  }
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(d.add));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_diamond, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(test_fan_out_fan_in, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(test_explicit_edges_only, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(test_long_chain, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(kt_backend())) {
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
