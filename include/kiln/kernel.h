/* SPDX-License-Identifier: MIT */
/* Kernels and launches. Arguments are passed to each launch as an array of tagged
 * values (no state on the kernel object), so launches are thread-safe. On the CPU
 * backend kernels are native C functions registered with their parameter kinds. */
#ifndef KILN_KERNEL_H
#define KILN_KERNEL_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* Kinds of kernel parameters, as declared by a native kernel (or parsed from a source
 * kernel's signature: a const pointer is a read). */
typedef enum kiln_param_kind {
  KILN_PARAM_BUFFER_READ = 1,
  KILN_PARAM_BUFFER_WRITE = 2,
  KILN_PARAM_BUFFER_READ_WRITE = 3,
  KILN_PARAM_SCALAR = 4, /* by value, `bytes` wide */
  KILN_PARAM_LOCAL = 5   /* local (shared) memory, size given at launch */
} kiln_param_kind;

typedef struct kiln_param {
  kiln_param_kind kind;
  size_t bytes; /* scalar size; 0 for the other kinds */
} kiln_param;

/* Kinds of launch arguments. */
typedef enum kiln_arg_kind {
  KILN_ARG_BUFFER = 1,
  KILN_ARG_SCALAR = 2,
  KILN_ARG_LOCAL = 3
} kiln_arg_kind;

typedef struct kiln_arg {
  kiln_arg_kind kind;
  kiln_buffer buffer; /* KILN_ARG_BUFFER */
  const void *value;  /* KILN_ARG_SCALAR: copied at the launch call */
  size_t bytes;       /* KILN_ARG_SCALAR: value size; KILN_ARG_LOCAL: bytes */
} kiln_arg;

static inline kiln_arg kiln_arg_buffer(kiln_buffer buffer) {
  kiln_arg a = {KILN_ARG_BUFFER, buffer, NULL, 0};
  return a;
}
static inline kiln_arg kiln_arg_scalar(const void *value, size_t bytes) {
  kiln_arg a = {KILN_ARG_SCALAR, NULL, value, bytes};
  return a;
}
static inline kiln_arg kiln_arg_local(size_t bytes) {
  kiln_arg a = {KILN_ARG_LOCAL, NULL, NULL, bytes};
  return a;
}

/* A 1-3-D launch range. local[d] = 0 lets kiln choose. The global size is rounded up
 * to a multiple of the local size by kiln; kernels see the size asked for. */
typedef struct kiln_range {
  size_t struct_size;
  unsigned dims; /* 1, 2 or 3 */
  size_t global[3];
  size_t local[3];
} kiln_range;
#define KILN_RANGE_INIT                 \
  {                                     \
    sizeof(kiln_range), 1, {0, 1, 1}, { \
      0, 0, 0                           \
    }                                   \
  }

static inline kiln_range kiln_range_1d(size_t n) {
  kiln_range r = KILN_RANGE_INIT;
  r.global[0] = n;
  return r;
}
static inline kiln_range kiln_range_2d(size_t x, size_t y) {
  kiln_range r = KILN_RANGE_INIT;
  r.dims = 2;
  r.global[0] = x;
  r.global[1] = y;
  return r;
}

/* What a native kernel is called with: the part [begin, end) of the range it must
 * compute (per dimension), and the global size asked for. */
typedef struct kiln_native_range {
  unsigned dims;
  size_t global[3];
  size_t begin[3];
  size_t end[3];
} kiln_native_range;

/* args[i]: for a buffer, its storage (void *) at offset 0; for a scalar, a pointer to
 * its bytes; for local memory, a pointer to scratch of the requested size. */
typedef void (*kiln_native_fn)(const kiln_native_range *range, void *const *args, void *user);

typedef struct kiln_native_kernel_desc {
  size_t struct_size;
  const char *name;  /* required; copied */
  kiln_native_fn fn; /* required */
  void *user;
  const kiln_param *params;
  size_t param_count; /* up to KILN_MAX_KERNEL_ARGS */
} kiln_native_kernel_desc;
#define KILN_NATIVE_KERNEL_DESC_INIT \
  { sizeof(kiln_native_kernel_desc), NULL, NULL, NULL, NULL, 0 }

#define KILN_MAX_KERNEL_ARGS 64

KILN_BEGIN_DECLS

/* Register a native C kernel (CPU backend; other backends: KILN_ERROR_UNSUPPORTED). */
KILN_API kiln_status kiln_kernel_create_native(kiln_context context,
                                               const kiln_native_kernel_desc *desc,
                                               kiln_kernel *kernel);
/* Blocks until the work queued so far on every stream of the kernel's context has
 * finished (launches hold no reference on the kernel), then frees it: launches already
 * queued run with it. NULL is a no-op. */
KILN_API kiln_status kiln_kernel_destroy(kiln_kernel kernel);
KILN_API kiln_status kiln_kernel_get_name(kiln_kernel kernel, const char **name);
KILN_API kiln_status kiln_kernel_get_params(kiln_kernel kernel, const kiln_param **params,
                                            size_t *count);

/* The work-group size a launch of `kernel` over `range` runs with, and why: the
 * caller's range->local when given, else kiln's choice for this kernel on its device
 * (CUDA: the occupancy API's block; OpenCL: a multiple of the kernel's preferred
 * work-group multiple within its limit; the CPU backend: a loop of work-items per
 * call, or fibers for kernels with barriers; docs/kernels.md "Launch configuration").
 * The range is checked as kiln_launch checks it. KILN_LOG=debug logs it at each launch
 * that leaves the size to kiln. */
/* Where the local size of a launch comes from (kiln_launch_config.origin; docs/kernels.md
 * "Launch configuration"): the caller; kiln's heuristic for the kernel and device; the
 * compile cache's store, where an earlier process left its choice for this kernel,
 * device and range class; autotuning in this process (KILN_AUTOTUNE=1), done, or still
 * timing its candidates on real launches (the size reported is then the heuristic's). */
typedef enum kiln_launch_origin {
  KILN_LAUNCH_ORIGIN_CALLER = 0,
  KILN_LAUNCH_ORIGIN_HEURISTIC = 1,
  KILN_LAUNCH_ORIGIN_STORED = 2,
  KILN_LAUNCH_ORIGIN_AUTOTUNED = 3,
  KILN_LAUNCH_ORIGIN_TUNING = 4
} kiln_launch_origin;
typedef struct kiln_launch_config {
  size_t struct_size;
  size_t local[3];  /* work-items per group in each dimension (1 in unused ones) */
  size_t groups[3]; /* work-groups in each dimension: the global size rounded up */
  int chosen;       /* 1: kiln chose local (range->local all 0); 0: the caller's */
  char why[256];    /* how it was chosen, in words */
  /* appended */
  kiln_launch_origin origin; /* where local comes from */
} kiln_launch_config;
#define KILN_LAUNCH_CONFIG_INIT \
  { sizeof(kiln_launch_config), {0, 0, 0}, {0, 0, 0}, 0, {0}, KILN_LAUNCH_ORIGIN_CALLER }
KILN_API kiln_status kiln_kernel_get_launch_config(kiln_kernel kernel, const kiln_range *range,
                                                   kiln_launch_config *config);

/* Blocking launch on `stream`: returns when the kernel has run. */
KILN_API kiln_status kiln_launch(kiln_stream stream, kiln_kernel kernel, const kiln_range *range,
                                 const kiln_arg *args, size_t count);
KILN_API KILN_NODISCARD kiln_status kiln_launch_async_at(kiln_stream stream, kiln_kernel kernel,
                                                         const kiln_range *range,
                                                         const kiln_arg *args, size_t count,
                                                         kiln_pending *token, const char *file,
                                                         int line);

KILN_END_DECLS

#define kiln_launch_async(stream, kernel, range, args, count, token) \
  kiln_launch_async_at((stream), (kernel), (range), (args), (count), (token), __FILE__, __LINE__)

#endif
