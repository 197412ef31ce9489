/* SPDX-License-Identifier: MIT */
/* A task graph built once and launched many times (docs/graph.md): each launch
 * uploads a new input x, computes a = 2x + 1 and b = 2(2x + 1) + 1 on two branches,
 * downloads both, and a host node checks them; the edges come from the buffers the
 * nodes use (x is read by both copies, a and b are written and read), plus one
 * explicit edge from the downloads to the check. The graph's DOT text is printed once.
 *
 *   examples/graph [--device B:I] [--launches N]
 *
 * Runs on the default device (KILN_DEVICE / KILN_BACKEND pick another): a native C
 * kernel on the cpu backend, the same kernel in kiln's dialect elsewhere. Exits 0 when
 * every launch's check passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define CHECK(call)                                                               \
  do {                                                                            \
    kiln_status st_ = (call);                                                     \
    if (st_ != KILN_SUCCESS) {                                                    \
      fprintf(stderr, "graph: %s failed: %s: %s\n", #call, kiln_status_name(st_), \
              kiln_last_error()->message);                                        \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

enum { N = 4096 };

static const char source[] = "KILN_KERNEL void affine(KILN_GLOBAL float *x, kiln_u64 n) {\n"
                             "  size_t i = kiln_global_id(0);\n"
                             "  if (i < n) x[i] = 2.0f * x[i] + 1.0f;\n"
                             "}\n";

static void affine_native(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  float *x = args[0];
  uint64_t n;
  memcpy(&n, args[1], sizeof n);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    if (i < n)
      x[i] = 2.0f * x[i] + 1.0f;
}

static kiln_kernel make_kernel(kiln_context ctx, kiln_backend_kind backend) {
  kiln_kernel k = NULL;
  if (backend == KILN_BACKEND_CPU || backend == KILN_BACKEND_MOCK) {
    static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 8}};
    kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
    d.name = "affine";
    d.fn = affine_native;
    d.params = params;
    d.param_count = 2;
    CHECK(kiln_kernel_create_native(ctx, &d, &k));
    return k;
  }
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "graph";
  kiln_program p = NULL;
  CHECK(kiln_program_create(ctx, &pd, &p));
  CHECK(kiln_kernel_create(p, "affine", &k));
  CHECK(kiln_program_destroy(p));
  return k;
}

typedef struct io {
  float x[N], a[N], b[N];
  unsigned launch, failures;
} io;

/* The host node: runs after both downloads; a failure here would stop its successors
 * and be reported by the launch, naming the node. */
static kiln_status check(void *user) {
  io *d = user;
  for (int i = 0; i < N; i++) {
    float a = 2.0f * d->x[i] + 1.0f, b = 2.0f * a + 1.0f;
    if (d->a[i] != a || d->b[i] != b) {
      d->failures++;
      return KILN_ERROR_INTERNAL;
    }
  }
  return KILN_SUCCESS;
}

int main(int argc, char **argv) {
  const char *spec = NULL;
  unsigned launches = 100;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc)
      spec = argv[++i];
    else if (!strcmp(argv[i], "--launches") && i + 1 < argc)
      launches = (unsigned)strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--device B:I] [--launches N]\n", argv[0]);
      return 2;
    }
  }
  kiln_device dev = NULL;
  CHECK(spec ? kiln_device_parse(spec, &dev) : kiln_device_default(&dev));
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  CHECK(kiln_device_get_props(dev, &props));
  kiln_context ctx = NULL;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  kiln_kernel k = make_kernel(ctx, props.backend);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = N * sizeof(float);
  kiln_buffer x, a, b;
  CHECK(kiln_buffer_create(ctx, &bd, &x));
  CHECK(kiln_buffer_create(ctx, &bd, &a));
  CHECK(kiln_buffer_create(ctx, &bd, &b));
  io *d = calloc(1, sizeof *d);
  if (!d)
    return 1;

  kiln_graph_desc gd = KILN_GRAPH_DESC_INIT;
  gd.name = "affine-twice";
  kiln_graph g;
  CHECK(kiln_graph_create(ctx, &gd, &g));
  const uint64_t n = N;
  kiln_range r = kiln_range_1d(N);
  kiln_arg arg_a[2] = {kiln_arg_buffer(a), kiln_arg_scalar(&n, sizeof n)};
  kiln_arg arg_b[2] = {kiln_arg_buffer(b), kiln_arg_scalar(&n, sizeof n)};
  kiln_graph_node up, ca, cb, ka, kb1, kb2, da, db, chk;
  CHECK(kiln_graph_add_write(g, "upload x", x, 0, sizeof d->x, d->x, &up));
  CHECK(kiln_graph_add_copy(g, "x to a", a, 0, x, 0, sizeof d->x, &ca));
  CHECK(kiln_graph_add_copy(g, "x to b", b, 0, x, 0, sizeof d->x, &cb));
  CHECK(kiln_graph_add_kernel(g, "a = 2a+1", k, &r, arg_a, 2, &ka));
  CHECK(kiln_graph_add_kernel(g, "b = 2b+1", k, &r, arg_b, 2, &kb1));
  CHECK(kiln_graph_add_kernel(g, "b = 2b+1 again", k, &r, arg_b, 2, &kb2));
  CHECK(kiln_graph_add_read(g, "download a", a, 0, sizeof d->a, d->a, &da));
  CHECK(kiln_graph_add_read(g, "download b", b, 0, sizeof d->b, d->b, &db));
  CHECK(kiln_graph_add_host(g, "check", check, d, NULL, 0, &chk));
  CHECK(kiln_graph_precede(g, da, chk)); /* host memory: no buffer says so */
  CHECK(kiln_graph_precede(g, db, chk));

  for (unsigned l = 0; l < launches; l++) {
    for (int i = 0; i < N; i++)
      d->x[i] = (float)(l + (unsigned)i % 97u);
    d->launch = l;
    CHECK(kiln_graph_run(g)); /* the first launch compiles the schedule */
  }
  size_t nodes, edges;
  CHECK(kiln_graph_node_count(g, &nodes));
  CHECK(kiln_graph_edge_count(g, &edges));
  char dot[4096];
  CHECK(kiln_graph_dump_dot(g, dot, sizeof dot, NULL));
  printf("%s", dot);
  printf("graph: %zu nodes, %zu edges, %u launches on %s, every check passed\n", nodes, edges,
         launches, props.name);
  CHECK(kiln_graph_destroy(g));
  CHECK(kiln_context_destroy(ctx));
  free(d);
  return 0;
}
