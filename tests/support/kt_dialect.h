/* SPDX-License-Identifier: MIT */
/* Helpers of the dialect tests that compare the CPU backend with another backend
 * (unit/test_dialect_cpu.c, unit/test_levels.c): reading a test kernel file, a
 * context and stream on device 0 of a backend, and which backend is compared. */
#ifndef KT_DIALECT_H
#define KT_DIALECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

/* tests/kernels/<file>, whole, NUL-terminated (the caller frees). */
static inline char *kt_slurp_kernel(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", KT_KERNELS_DIR, file);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  return b;
}

/* A context and a stream on device 0 of one backend. */
typedef struct kt_side {
  kiln_context ctx;
  kiln_stream s;
} kt_side;

static inline void kt_side_open(kt_side *d, kiln_backend_kind kind) {
  kiln_device dev;
  KT_OK(kiln_device_find(kind, 0, &dev));
  KT_OK(kiln_context_create(dev, NULL, &d->ctx));
  KT_OK(kiln_stream_create(d->ctx, NULL, &d->s));
}

static inline void kt_side_close(kt_side *d) {
  KT_OK(kiln_stream_destroy(d->s));
  KT_OK(kiln_context_destroy(d->ctx));
}

/* The backend compared with cpu: OpenCL device 0 (PoCL here), or CUDA's with
 * KILN_DIALECT_OTHER=cuda (tests/dialect.cmake: scripts/gpu-check.sh runs them). */
static inline kiln_backend_kind kt_dialect_other(void) {
  const char *o = getenv("KILN_DIALECT_OTHER");
  return o && !strcmp(o, "cuda") ? KILN_BACKEND_CUDA : KILN_BACKEND_OPENCL;
}

static inline void kt_free_all(void **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
}

#endif
