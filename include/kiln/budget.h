/* SPDX-License-Identifier: MIT */
/* The memory budget: check a planned batch against the memory the device can give now,
 * with a safety margin, before allocating it, and learn the largest batch that fits
 * (seed 002 §7, max_safe_elements). docs/memory.md explains where "available" comes
 * from on each backend (CUDA cuMemGetInfo; cpu MemAvailable minus kiln's live buffers;
 * OpenCL the global size minus kiln's live buffers, an estimate). */
#ifndef KILN_BUDGET_H
#define KILN_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* The default safety margin: 10% of the available memory stays free. */
#define KILN_BUDGET_DEFAULT_MARGIN 0.10

/* One kind of buffer of the batch: `count` buffers, each of fixed_bytes +
 * bytes_per_element * elements bytes. */
typedef struct kiln_budget_buffer {
  uint64_t bytes_per_element; /* scales with the batch */
  uint64_t fixed_bytes;       /* does not */
  uint64_t count;             /* how many such buffers (0: none) */
} kiln_budget_buffer;

typedef struct kiln_budget_plan {
  size_t struct_size;
  uint64_t elements;                 /* the batch size */
  const kiln_budget_buffer *buffers; /* buffer_count entries (NULL when 0) */
  size_t buffer_count;
  uint64_t scratch_bytes; /* kernel scratch and other fixed device memory */
  double safety_margin;   /* fraction of the available memory kept free, in [0, 1);
                             negative: KILN_BUDGET_DEFAULT_MARGIN */
} kiln_budget_plan;
#define KILN_BUDGET_PLAN_INIT \
  { sizeof(kiln_budget_plan), 0, NULL, 0, 0, -1.0 }

typedef struct kiln_budget_verdict {
  size_t struct_size;
  int fits;                              /* 1: needed_bytes <= usable_bytes */
  int estimate;                          /* 1: available_bytes is an estimate (OpenCL) */
  uint64_t needed_bytes;                 /* the plan's bytes */
  uint64_t available_bytes;              /* what the device can give now */
  uint64_t usable_bytes;                 /* available_bytes less the margin */
  uint64_t total_bytes;                  /* the device's memory */
  uint64_t cached_bytes;                 /* free bytes kiln's device pools of the context hold:
                                            kiln_pool_trim would give them back to the device */
  uint64_t max_safe_elements;            /* the largest batch that fits (UINT64_MAX: any) */
  uint64_t max_safe_elements_after_trim; /* the same, counting cached_bytes as available */
  double safety_margin;                  /* the margin applied */
} kiln_budget_verdict;
#define KILN_BUDGET_VERDICT_INIT \
  { sizeof(kiln_budget_verdict), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0 }

KILN_BEGIN_DECLS

/* Estimate `plan` against the memory the context's device can give now. Fills
 * *verdict either way; KILN_SUCCESS when the batch fits, else
 * KILN_ERROR_OUT_OF_DEVICE_MEMORY with a message giving needed / available / usable bytes
 * and a suggestion naming the largest batch that fits and the cached bytes trimming the
 * pools would release. A buffer larger than the device's max_alloc_bytes does not fit
 * either (max_safe_elements counts that limit too). Sizes that overflow 64 bits are
 * refused with INVALID_ARGUMENT naming the buffer. */
KILN_API kiln_status kiln_budget_check(kiln_context context, const kiln_budget_plan *plan,
                                       kiln_budget_verdict *verdict);

KILN_END_DECLS
#endif
