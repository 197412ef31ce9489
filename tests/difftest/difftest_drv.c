/* SPDX-License-Identifier: MIT */
/* The driver of tests/difftest/difftest.py: runs kernel `gen` of a kiln-dialect file on
 * one device and prints a hash of what it wrote, so that one kernel's results on several
 * paths (cpu with loop fission, cpu on fibers, PoCL) can be compared.
 *   difftest_drv FILE DEVICE LOCAL GROUPS
 * The kernel: gen(const int *in, int *out, int n), over LOCAL * GROUPS work-items in
 * groups of LOCAL; in holds pseudo-random ints, out (4 ints a work-item) starts as -7s.
 * Prints "OK <fnv-1a of out> <4 sample values>" (exit 0), or "ERR <call>: <status>:
 * <message>" (exit 3). DIFFTEST_DUMP=PATH also writes every output value to PATH. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define WORDS 4

#define CHECK(call)                                                                         \
  do {                                                                                      \
    kiln_status st_ = (call);                                                               \
    if (st_ != KILN_SUCCESS) {                                                              \
      printf("ERR %s: %s: %s\n", #call, kiln_status_name(st_), kiln_last_error()->message); \
      fprintf(stderr, "%s", kiln_last_build_log());                                         \
      return 3;                                                                             \
    }                                                                                       \
  } while (0)

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *text = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1)) != NULL) {
    if (fread(text, 1, (size_t)n, f) == (size_t)n)
      text[n] = '\0';
    else {
      free(text);
      text = NULL;
    }
  }
  fclose(f);
  return text;
}

static int run(const char *src, const char *spec, size_t local, size_t groups, int *h) {
  size_t items = local * groups;
  kiln_device dev;
  CHECK(kiln_device_parse(spec, &dev));
  kiln_context ctx;
  kiln_stream s;
  CHECK(kiln_context_create(dev, NULL, &ctx));
  CHECK(kiln_stream_create(ctx, NULL, &s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = src;
  pd.name = "difftest.kiln";
  kiln_program p;
  kiln_kernel k;
  CHECK(kiln_program_create(ctx, &pd, &p));
  CHECK(kiln_kernel_create(p, "gen", &k));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  kiln_buffer in, out;
  bd.bytes = items * sizeof(int);
  CHECK(kiln_buffer_create(ctx, &bd, &in));
  bd.bytes = items * WORDS * sizeof(int);
  CHECK(kiln_buffer_create(ctx, &bd, &out));
  uint32_t x = 777;
  for (size_t i = 0; i < items; i++) {
    x = x * 1664525u + 1013904223u;
    h[i] = (int)(x >> 20) - 2048;
  }
  CHECK(kiln_buffer_write(in, 0, items * sizeof(int), h));
  int fill = -7, n = (int)items;
  CHECK(kiln_buffer_fill(out, 0, items * WORDS * sizeof(int), &fill, sizeof fill));
  kiln_arg args[3] = {kiln_arg_buffer(in), kiln_arg_buffer(out), kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(items);
  r.local[0] = local;
  CHECK(kiln_launch(s, k, &r, args, 3));
  CHECK(kiln_buffer_read(out, 0, items * WORDS * sizeof(int), h));
  CHECK(kiln_buffer_destroy(in));
  CHECK(kiln_buffer_destroy(out));
  CHECK(kiln_kernel_destroy(k));
  CHECK(kiln_program_destroy(p));
  CHECK(kiln_stream_destroy(s));
  CHECK(kiln_context_destroy(ctx));
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s FILE DEVICE LOCAL GROUPS\n", argv[0]);
    return 2;
  }
  size_t local = strtoul(argv[3], NULL, 0), groups = strtoul(argv[4], NULL, 0);
  char *src = read_text(argv[1]);
  int *h = malloc(local * groups * WORDS * sizeof(int));
  if (!src || !h || !local || !groups) {
    fprintf(stderr, "difftest_drv: cannot read %s, or a size is 0\n", argv[1]);
    return 2;
  }
  int rc = run(src, argv[2], local, groups, h);
  if (rc == 0) {
    size_t n = local * groups * WORDS;
    uint64_t hash = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
      hash ^= (uint32_t)h[i];
      hash *= 1099511628211ull;
    }
    printf("OK %016llx %d %d %d %d\n", (unsigned long long)hash, h[0], h[1], h[n / 2], h[n - 1]);
    const char *dump = getenv("DIFFTEST_DUMP");
    FILE *d = dump ? fopen(dump, "w") : NULL;
    for (size_t i = 0; d && i < n; i++)
      fprintf(d, "%zu %zu %d\n", i / WORDS, i % WORDS, h[i]);
    if (d)
      fclose(d);
  }
  free(h);
  free(src);
  return rc;
}
