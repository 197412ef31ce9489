/* SPDX-License-Identifier: MIT */
/* Programs: kernel source in the kiln dialect (docs/kernels.md), compiled for the
 * context's device. kiln parses every kernel's signature itself, so launches are
 * checked (argument count, kinds, scalar sizes) before anything reaches the driver. */
#ifndef KILN_PROGRAM_H
#define KILN_PROGRAM_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_program_desc {
  size_t struct_size;
  const char *source;  /* required: kiln dialect source */
  size_t source_bytes; /* 0: source is NUL-terminated; else its length without a
                          terminator (a NUL within it is refused, naming its offset) */
  const char *options; /* passed to the backend's compiler; may be NULL */
  const char *name;    /* for messages (e.g. a file name); may be NULL */
} kiln_program_desc;
#define KILN_PROGRAM_DESC_INIT \
  { sizeof(kiln_program_desc), NULL, 0, NULL, NULL }

KILN_BEGIN_DECLS

/* Compile. Failure: KILN_ERROR_COMPILE_FAILED with the first error line in
 * kiln_last_error()->message and the whole log in kiln_last_build_log(). The CPU
 * backend answers KILN_ERROR_UNSUPPORTED (it runs native C kernels). */
KILN_API kiln_status kiln_program_create(kiln_context context, const kiln_program_desc *desc,
                                         kiln_program *program);
/* Kernels made from the program stay valid. NULL is a no-op. */
KILN_API kiln_status kiln_program_destroy(kiln_program program);
/* The kernel `name` of the program (a KILN_KERNEL function of its source). */
KILN_API kiln_status kiln_kernel_create(kiln_program program, const char *name,
                                        kiln_kernel *kernel);

KILN_END_DECLS
#endif
