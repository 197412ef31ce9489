/* SPDX-License-Identifier: MIT */
/* A double-buffered pipeline through pinned host memory: the data is processed in
 * chunks; chunk i goes up, through a kernel (y = 2x + 1) and back down on stream i % 2,
 * from and to pinned slot i % 2, so one chunk's transfers overlap the other chunk's
 * work. Before a slot is reused, the waits on its previous chunk's tokens give it back
 * (the only way to touch the host memory of an _async transfer again). Nothing orders
 * the two streams but the hazards kiln tracks per buffer — each stream has its own
 * device buffer here, so they run freely.
 *
 *   examples/pipeline [--device B:I] [--chunks N] [--chunk-mib M]
 *
 * Runs on the default device (KILN_DEVICE / KILN_BACKEND pick another): a native C
 * kernel on the cpu backend, the same kernel in kiln's dialect elsewhere. Prints the
 * throughput and exits 0 when every element came back right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

#define CHECK(call)                                                                  \
  do {                                                                               \
    kiln_status st_ = (call);                                                        \
    if (st_ != KILN_SUCCESS) {                                                       \
      fprintf(stderr, "pipeline: %s failed: %s: %s\n", #call, kiln_status_name(st_), \
              kiln_last_error()->message);                                           \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

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
  pd.name = "pipeline";
  kiln_program p = NULL;
  CHECK(kiln_program_create(ctx, &pd, &p));
  CHECK(kiln_kernel_create(p, "affine", &k));
  CHECK(kiln_program_destroy(p)); /* the kernel keeps what it needs */
  return k;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  const char *spec = NULL;
  unsigned chunks = 16;
  size_t chunk_mib = 4;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc)
      spec = argv[++i];
    else if (!strcmp(argv[i], "--chunks") && i + 1 < argc)
      chunks = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--chunk-mib") && i + 1 < argc)
      chunk_mib = strtoul(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--device B:I] [--chunks N] [--chunk-mib M]\n", argv[0]);
      return 2;
    }
  }
  if (chunks == 0 || chunk_mib == 0) {
    fprintf(stderr, "pipeline: --chunks and --chunk-mib must be at least 1\n");
    return 2;
  }
  kiln_device dev = NULL;
  CHECK(spec ? kiln_device_parse(spec, &dev) : kiln_device_default(&dev));
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  CHECK(kiln_device_get_props(dev, &props));
  kiln_context ctx = NULL;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  kiln_kernel k = make_kernel(ctx, props.backend);

  const size_t n = chunk_mib * (1u << 20) / sizeof(float), bytes = n * sizeof(float);
  const uint64_t n64 = n;
  kiln_stream s[2];
  kiln_buffer d[2];
  float *slot[2];
  kiln_pending up[2], run[2], down[2];
  unsigned in_slot[2] = {0, 0}; /* chunk number + 1 held by the slot, 0: none */
  for (int j = 0; j < 2; j++) {
    CHECK(kiln_stream_create(ctx, NULL, &s[j]));
    CHECK(kiln_trace_name_stream(s[j], j ? "odd chunks" : "even chunks")); /* KILN_TRACE */
    kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
    bd.bytes = bytes;
    bd.label = "pipeline chunk";
    CHECK(kiln_buffer_create(ctx, &bd, &d[j]));
    CHECK(kiln_host_alloc(ctx, bytes, (void **)&slot[j]));
  }
  unsigned bad = 0;
  double t0 = now_s();
  for (unsigned c = 0; c < chunks + 2; c++) {
    int j = (int)(c % 2);
    if (in_slot[j]) { /* the slot's previous chunk: wait, check, the slot is ours again */
      CHECK(kiln_wait(&up[j]));
      CHECK(kiln_wait(&run[j]));
      CHECK(kiln_wait(&down[j]));
      unsigned done = in_slot[j] - 1;
      for (size_t i = 0; i < n; i++)
        if (slot[j][i] != 2.0f * (float)((done * 7u + (unsigned)i) % 1000u) + 1.0f)
          bad++;
      in_slot[j] = 0;
    }
    if (c >= chunks)
      continue;
    for (size_t i = 0; i < n; i++)
      slot[j][i] = (float)((c * 7u + (unsigned)i) % 1000u);
    kiln_range r = kiln_range_1d(n);
    kiln_arg args[2] = {kiln_arg_buffer(d[j]), kiln_arg_scalar(&n64, sizeof n64)};
    CHECK(kiln_buffer_write_async(s[j], d[j], 0, bytes, slot[j], &up[j]));
    CHECK(kiln_launch_async(s[j], k, &r, args, 2, &run[j]));
    CHECK(kiln_buffer_read_async(s[j], d[j], 0, bytes, slot[j], &down[j]));
    in_slot[j] = c + 1;
  }
  double secs = now_s() - t0;
  printf("pipeline on %s:%u (%s): %u chunks of %zu MiB, %.2f GB/s moved end to end (up + down; the "
         "host's fill and check included), %s\n",
         kiln_backend_name(props.backend), props.index, props.name, chunks, chunk_mib,
         2.0 * (double)bytes * chunks / secs / 1e9, bad ? "WRONG RESULTS" : "all correct");
  for (int j = 0; j < 2; j++) {
    CHECK(kiln_host_free(ctx, slot[j]));
    CHECK(kiln_buffer_destroy(d[j]));
    CHECK(kiln_stream_destroy(s[j]));
  }
  CHECK(kiln_kernel_destroy(k));
  CHECK(kiln_context_destroy(ctx));
  return bad ? 1 : 0;
}
