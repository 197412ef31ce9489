/* SPDX-License-Identifier: MIT */
/* Seed 003's multi-stream examples (StreamPool, StreamSet, manual streams, the
 * double-buffer pipeline) written in C with kiln. Each example's own code lies between
 * a `seed:` marker and `seed end`; tests/examples/check_seed_lines.py holds it to at
 * most 1.5x the non-blank lines of the Rust original (the .rs files in tests/examples/seed_003).
 * What the Rust snippets take as given (device, buffers, input batches) is set up
 * outside the markers, and every result is checked (y = 2x + 1).
 *
 *   examples/seed_streams [--device B:I] [--stats-json FILE]
 *
 * exits 0 when every check passed; FILE receives the least-pending pool's statistics
 * (kiln_stream_pool_stats_json, schemas/stream_stats.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define CHECK(call)                                                                      \
  do {                                                                                   \
    kiln_status st_ = (call);                                                            \
    if (st_ != KILN_SUCCESS) {                                                           \
      fprintf(stderr, "seed_streams: %s failed: %s: %s\n", #call, kiln_status_name(st_), \
              kiln_last_error()->message);                                               \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

#define N 4096 /* floats per batch */
#define BATCHES 6
#define BYTES (N * sizeof(float))

static const char source[] =
    "KILN_KERNEL void affine(const KILN_GLOBAL float *x, KILN_GLOBAL float *y, kiln_u64 n) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < n) y[i] = 2.0f * x[i] + 1.0f;\n"
    "}\n";

static void affine_native(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *x = args[0];
  float *y = args[1];
  uint64_t n;
  memcpy(&n, args[2], sizeof n);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    if (i < n)
      y[i] = 2.0f * x[i] + 1.0f;
}

static kiln_kernel affine;     /* y = 2x + 1 over n floats */
static const char *stats_path; /* --stats-json FILE: the pool's statistics */

static kiln_kernel make_kernel(kiln_context ctx, kiln_backend_kind backend) {
  kiln_kernel k = NULL;
  if (backend == KILN_BACKEND_CPU || backend == KILN_BACKEND_MOCK) {
    static const kiln_param params[] = {
        {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_WRITE, 0}, {KILN_PARAM_SCALAR, 8}};
    kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
    d.name = "affine";
    d.fn = affine_native;
    d.params = params;
    d.param_count = 3;
    CHECK(kiln_kernel_create_native(ctx, &d, &k));
    return k;
  }
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "seed_streams";
  kiln_program p = NULL;
  CHECK(kiln_program_create(ctx, &pd, &p));
  CHECK(kiln_kernel_create(p, "affine", &k));
  CHECK(kiln_program_destroy(p));
  return k;
}

/* Queue y = 2x + 1 over n floats on stream s (no token: a later wait covers it). */
static kiln_status launch_affine(kiln_stream s, kiln_buffer x, kiln_buffer y, size_t n) {
  uint64_t n64 = n;
  kiln_arg args[3] = {kiln_arg_buffer(x), kiln_arg_buffer(y), kiln_arg_scalar(&n64, 8)};
  kiln_range r = kiln_range_1d(n);
  return kiln_launch_async(s, affine, &r, args, 3, KILN_NO_TOKEN);
}

static int expect(const char *what, const float *in, const float *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (out[i] != 2.0f * in[i] + 1.0f) {
      fprintf(stderr, "seed_streams: %s: element %zu is %g, expected %g\n", what, i, (double)out[i],
              2.0 * in[i] + 1.0);
      exit(1);
    }
  return 0;
}

static void stream_pool(kiln_context ctx, kiln_buffer buf, kiln_buffer out, const float *data) {
  float back[N];
  /* seed: stream_pool */
  /* Round-robin pool of 4 streams */
  kiln_stream_pool pool, lp;
  CHECK(kiln_stream_pool_create(ctx, 4, NULL, &pool));
  /* Least-loaded pool (picks the stream with the fewest pending ops) */
  kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
  d.policy = KILN_STREAM_LEAST_PENDING;
  CHECK(kiln_stream_pool_create(ctx, 4, &d, &lp));
  /* Acquire a stream from the pool: held until released */
  kiln_stream s;
  CHECK(kiln_stream_pool_acquire(lp, &s));
  CHECK(kiln_buffer_write_async(s, buf, 0, BYTES, data, KILN_NO_TOKEN));
  CHECK(kiln_stream_pool_release(lp, s)); /* never waits for the stream's work */
  /* Barrier: wait for all streams in the pool */
  CHECK(kiln_stream_pool_synchronize_all(lp));
  CHECK(kiln_stream_pool_destroy(pool));
  /* seed end */
  CHECK(kiln_stream_pool_acquire(lp, &s)); /* the check: compute on another stream */
  CHECK(launch_affine(s, buf, out, N));
  CHECK(kiln_stream_pool_release(lp, s));
  CHECK(kiln_buffer_read(out, 0, BYTES, back));
  char json[2048];
  CHECK(kiln_stream_pool_stats_json(lp, json, sizeof json, NULL));
  printf("stream pool: %s\n", json);
  FILE *f = stats_path ? fopen(stats_path, "w") : NULL;
  if (f) {
    fprintf(f, "%s\n", json);
    fclose(f);
  }
  CHECK(kiln_stream_pool_destroy(lp));
  expect("stream pool", data, back, N);
}

static void stream_set(kiln_context ctx, kiln_buffer buf, kiln_buffer out, float batches[][N]) {
  static float results[BATCHES][N];
  /* seed: stream_set */
  /* 3-deep pipeline: streams 0, 1, 2 cycle round-robin */
  kiln_stream_set set;
  CHECK(kiln_stream_set_create(ctx, 3, "compute", &set));
  for (size_t i = 0; i < BATCHES; i++) {
    if (i >= 3) /* sync the slot before reusing it: waits for stream i % 3 */
      CHECK(kiln_stream_synchronize(kiln_stream_set_get(set, i)));
    kiln_stream s = kiln_stream_set_get(set, i); /* i % 3 */
    CHECK(kiln_buffer_write_async(s, buf, 0, BYTES, batches[i], KILN_NO_TOKEN));
    CHECK(launch_affine(s, buf, out, N));
    CHECK(kiln_buffer_read_async(s, out, 0, BYTES, results[i], KILN_NO_TOKEN));
  }
  CHECK(kiln_stream_set_synchronize_all(set));
  CHECK(kiln_stream_set_destroy(set));
  /* seed end */
  for (size_t i = 0; i < BATCHES; i++)
    expect("stream set", batches[i], results[i], N);
}

static void manual_streams(kiln_context ctx, kiln_buffer buf_a, kiln_buffer buf_b,
                           kiln_buffer buf_out, const float *input_a, const float *input_b) {
  static float result[N];
  /* seed: manual_streams */
  kiln_stream s0, s1, s2;
  kiln_stream_desc d0 = KILN_STREAM_DESC_INIT, d1 = d0, d2 = d0;
  d0.label = "h2d-0", d1.label = "compute-0", d2.label = "d2h-0";
  CHECK(kiln_stream_create(ctx, &d0, &s0));
  CHECK(kiln_stream_create(ctx, &d1, &s1));
  CHECK(kiln_stream_create(ctx, &d2, &s2));
  kiln_pending t[3];
  CHECK(kiln_buffer_write_async(s0, buf_a, 0, BYTES, input_a, &t[0]));
  CHECK(kiln_buffer_write_async(s0, buf_b, 0, BYTES, input_b, &t[1])); /* s0: serial H2D */
  CHECK(launch_affine(s1, buf_a, buf_out, N)); /* on s1: waits for buf_a's upload only */
  CHECK(kiln_buffer_read_async(s2, buf_out, 0, BYTES, result, &t[2]));
  CHECK(kiln_wait_all(t, 3));
  CHECK(kiln_stream_destroy(s0));
  CHECK(kiln_stream_destroy(s1));
  CHECK(kiln_stream_destroy(s2));
  /* seed end */
  expect("manual streams", input_a, result, N);
  float b[N];
  CHECK(kiln_buffer_read(buf_b, 0, BYTES, b));
  if (memcmp(b, input_b, BYTES) != 0) {
    fprintf(stderr, "seed_streams: manual streams: buf_b was not uploaded\n");
    exit(1);
  }
}

/* seed: double_buffer */
static kiln_status compute(kiln_stream s, kiln_buffer in, kiln_buffer out, size_t chunk,
                           size_t in_bytes, size_t out_bytes, void *user) {
  (void)chunk, (void)out_bytes, (void)user;
  return launch_affine(s, in, out, in_bytes / sizeof(float));
}

static void double_buffer(kiln_context ctx, float batches[][N], float results[][N]) {
  kiln_pipeline_desc p = KILN_PIPELINE_DESC_INIT;
  p.src = batches, p.src_bytes = BATCHES * BYTES, p.chunk_bytes = BYTES;
  p.dst = results, p.dst_bytes = BATCHES * BYTES, p.compute = compute;
  CHECK(kiln_pipeline_run(ctx, &p)); /* upload i+1, compute i, download i-1 at once */
}
/* seed end */

int main(int argc, char **argv) {
  const char *spec = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--device"))
      spec = argv[i + 1];
    else if (!strcmp(argv[i], "--stats-json"))
      stats_path = argv[i + 1];
  }
  kiln_device dev = NULL;
  CHECK(spec ? kiln_device_parse(spec, &dev) : kiln_device_default(&dev));
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  CHECK(kiln_device_get_props(dev, &props));
  kiln_context ctx = NULL;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  affine = make_kernel(ctx, props.backend);
  static float batches[BATCHES][N], results[BATCHES][N];
  for (size_t b = 0; b < BATCHES; b++)
    for (size_t i = 0; i < N; i++)
      batches[b][i] = (float)(b * N + i) * 0.25f;
  kiln_buffer buf = NULL, buf_b = NULL, out = NULL;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = BYTES;
  CHECK(kiln_buffer_create(ctx, &bd, &buf));
  CHECK(kiln_buffer_create(ctx, &bd, &buf_b));
  CHECK(kiln_buffer_create(ctx, &bd, &out));
  stream_pool(ctx, buf, out, batches[0]);
  stream_set(ctx, buf, out, batches);
  manual_streams(ctx, buf, buf_b, out, batches[1], batches[2]);
  double_buffer(ctx, batches, results);
  for (size_t b = 0; b < BATCHES; b++)
    expect("double buffer", batches[b], results[b], N);
  CHECK(kiln_buffer_destroy(buf));
  CHECK(kiln_buffer_destroy(buf_b));
  CHECK(kiln_buffer_destroy(out));
  CHECK(kiln_kernel_destroy(affine));
  CHECK(kiln_context_destroy(ctx));
  printf("seed_streams on %s:%u (%s): stream pool, stream set, manual streams and double "
         "buffer all correct\n",
         kiln_backend_name(props.backend), props.index, props.name);
  return 0;
}
