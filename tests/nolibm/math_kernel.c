/* SPDX-License-Identifier: MIT */
/* A program that does not link libm (this file is built without -lm, tests/dialect.cmake)
 * builds and runs, on the CPU backend, tests/kernels/math.kiln, whose kernel calls the
 * math builtins: kiln links libm into every kernel object, since libkiln.so does not
 * need libm itself (the object failed to load: "undefined symbol: exp2f"). It checks
 * results without calling libm: sqrt(x)^2 near x, exp(0) == 1, fabs, floor, fmin, fmax.
 * Usage: kiln_nolibm_math PATH-TO-math.kiln. Exit 0 when all held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln.h>

#define N 64u

static int fail(const char *what) {
  fprintf(stderr, "kiln_nolibm_math: %s: %s\n", what, kiln_last_error()->message);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f)
    return 2;
  static char src[1 << 16];
  size_t len = fread(src, 1, sizeof src - 1, f);
  fclose(f);
  src[len] = '\0';
  kiln_device dev = NULL;
  kiln_context ctx = NULL;
  kiln_stream s = NULL;
  kiln_program p = NULL;
  kiln_kernel k = NULL;
  if (kiln_device_find(KILN_BACKEND_CPU, 0, &dev) || kiln_context_create(dev, NULL, &ctx) ||
      kiln_stream_create(ctx, NULL, &s))
    return fail("setup");
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = "math.kiln";
  if (kiln_program_create(ctx, &d, &p) || kiln_kernel_create(p, "math_f32", &k))
    return fail("building math.kiln (is libm linked into the kernel object?)");
  float in[N];
  static float out[N * 16];
  for (unsigned i = 0; i < N; i++)
    in[i] = (float)i * 1.5f;
  kiln_buffer bin = NULL, bout = NULL;
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = sizeof in;
  if (kiln_buffer_create(ctx, &bd, &bin))
    return fail("buffer");
  bd.bytes = sizeof out;
  if (kiln_buffer_create(ctx, &bd, &bout) || kiln_buffer_write(bin, 0, sizeof in, in))
    return fail("buffer");
  unsigned n = N;
  kiln_arg args[3] = {kiln_arg_buffer(bin), kiln_arg_buffer(bout), kiln_arg_scalar(&n, sizeof n)};
  kiln_range r = kiln_range_1d(N);
  if (kiln_launch(s, k, &r, args, 3) || kiln_buffer_read(bout, 0, sizeof out, out))
    return fail("launch");
  int bad = 0;
  for (unsigned i = 0; i < N; i++) {
    float x = in[i], *o = out + i * 16;
    float sq = o[0] * o[0] - x;
    bad += sq > 1e-3f * (x + 1.0f) || sq < -1e-3f * (x + 1.0f);
    bad += i == 0 && o[1] != 1.0f;                      /* exp(0) */
    bad += o[6] != (x > 50.0f ? x - 50.0f : 50.0f - x); /* fabs */
    bad += o[9] != (x < 40.0f ? x : 40.0f);             /* fmin */
    bad += o[10] != (x > 40.0f ? x : 40.0f);            /* fmax */
  }
  kiln_buffer_destroy(bin);
  kiln_buffer_destroy(bout);
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  kiln_stream_destroy(s);
  kiln_context_destroy(ctx);
  if (bad)
    fprintf(stderr, "kiln_nolibm_math: %d wrong results\n", bad);
  return bad ? 1 : 0;
}
