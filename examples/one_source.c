/* SPDX-License-Identifier: MIT */
/* One kernel source on every device: examples/kernels/histogram.kiln (a byte histogram
 * with local memory, barriers and atomics) is read from disk and run, unchanged, on
 * each device named — the host compiler builds it for cpu, the OpenCL driver for PoCL
 * or a GPU, NVRTC for CUDA. Each result is checked against the host's count.
 *
 *   examples/one_source [--kernel FILE] [--bytes N] [B:I ...]     (default: cpu:0)
 *
 * Exits 0 when every device counted right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define CHECK(call)                                                                      \
  do {                                                                                   \
    kiln_status st_ = (call);                                                            \
    if (st_ != KILN_SUCCESS) {                                                           \
      fprintf(stderr, "one_source: %s failed: %s: %s\n%s", #call, kiln_status_name(st_), \
              kiln_last_error()->message, kiln_last_build_log());                        \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

#ifndef EXAMPLE_KERNEL
#define EXAMPLE_KERNEL "examples/kernels/histogram.kiln"
#endif

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "one_source: cannot open %s\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *text = malloc((size_t)n + 1);
  if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "one_source: cannot read %s\n", path);
    exit(1);
  }
  text[n] = '\0';
  fclose(f);
  return text;
}

static int run(const char *spec, const char *source, const unsigned char *data, size_t bytes,
               const unsigned *want) {
  kiln_device dev;
  CHECK(kiln_device_parse(spec, &dev));
  kiln_context ctx;
  kiln_stream s;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  CHECK(kiln_stream_create(ctx, NULL, &s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "histogram.kiln";
  kiln_program p;
  kiln_kernel k;
  CHECK(kiln_program_create(ctx, &pd, &p));
  CHECK(kiln_kernel_create(p, "byte_histogram", &k));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  kiln_buffer in, bins;
  bd.bytes = bytes;
  CHECK(kiln_buffer_create(ctx, &bd, &in));
  bd.bytes = 256 * sizeof(unsigned);
  CHECK(kiln_buffer_create(ctx, &bd, &bins));
  CHECK(kiln_buffer_write(in, 0, bytes, data));
  unsigned zero = 0;
  CHECK(kiln_buffer_fill(bins, 0, 256 * sizeof zero, &zero, sizeof zero));
  uint64_t n = bytes;
  kiln_arg args[4] = {kiln_arg_buffer(in), kiln_arg_buffer(bins), kiln_arg_local(256 * 4),
                      kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(64 * 128); /* 128 groups of 64, each loops over its share */
  r.local[0] = 64;
  CHECK(kiln_launch(s, k, &r, args, 4));
  unsigned got[256];
  CHECK(kiln_buffer_read(bins, 0, sizeof got, got));
  int bad = memcmp(got, want, sizeof got) != 0;
  printf("%s %s: %s\n", bad ? "FAIL" : "PASS", spec,
         bad ? "the counts differ from the host's" : "256 bins as the host counted");
  kiln_buffer_destroy(in);
  kiln_buffer_destroy(bins);
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  return bad;
}

int main(int argc, char **argv) {
  const char *kernel = EXAMPLE_KERNEL;
  size_t bytes = (size_t)1 << 20;
  const char *specs[16];
  int nspecs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--kernel") && i + 1 < argc)
      kernel = argv[++i];
    else if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
      bytes = strtoull(argv[++i], NULL, 0);
    else if (argv[i][0] != '-' && nspecs < 16)
      specs[nspecs++] = argv[i];
    else {
      fprintf(stderr, "usage: %s [--kernel FILE] [--bytes N] [B:I ...]\n", argv[0]);
      return 2;
    }
  }
  if (!nspecs)
    specs[nspecs++] = "cpu:0";
  if (!bytes)
    bytes = 1;
  char *source = read_text(kernel);
  unsigned char *data = malloc(bytes);
  unsigned want[256] = {0};
  if (!data)
    return 1;
  uint32_t x = 12345;
  for (size_t i = 0; i < bytes; i++) {
    x = x * 1664525u + 1013904223u;
    data[i] = (unsigned char)(x >> 24);
    want[data[i]]++;
  }
  int bad = 0;
  for (int i = 0; i < nspecs; i++)
    bad |= run(specs[i], source, data, bytes, want);
  free(data);
  free(source);
  return bad;
}
