/* SPDX-License-Identifier: MIT */
/* The kiln dialect's prelude for each device language, and the rewrite that turns a
 * dialect source into what the device compiler sees: prelude, `#line 1`, then the
 * user's text with kiln's hidden parameters added (docs/kernels.md). The backends'
 * program builders call it; it never allocates (the caller sizes the buffer). */
#ifndef KILN_PRELUDE_H
#define KILN_PRELUDE_H

#include <stddef.h>

#include "core/backend.h" /* kiln__dialect_target, KILN__LOCAL_ALIGN */
#include "core/kparse.h"
#include "kiln/status.h"

/* NUL-terminated prelude texts. */
extern const char kiln__prelude_opencl[];
extern const char kiln__prelude_cuda[];

/* CUDA only: each `KILN_LOCAL T *p` parameter becomes a 4-byte `kiln_u32 kiln__lo_p`,
 * the byte offset of p's part of the kernel's one dynamic shared memory block
 * (`kiln__shared`, 16-byte aligned). The launcher lays the parts out in parameter
 * order, each offset rounded up to KILN__LOCAL_ALIGN, and launches with the total as
 * the dynamic shared memory size. */
#define KILN__LOCAL_OFFSET_BYTES 4u

/* Write prelude + "#line 1\n" + the rewritten source[0..len) to out. `funcs` are the
 * kernels kiln__kparse found in this very source (count of them, in source order).
 *   OpenCL: the hidden size parameters are added before each kernel's ')' (replacing
 *     a lone `void`).
 *   CUDA: the same, and each KILN_LOCAL parameter is replaced by its offset parameter,
 *     with `T *p = (T *)(kiln__shared + kiln__lo_p);` inserted right after the body's
 *     '{' on the same line.
 * Line numbers of the user's text are kept, so compiler messages point at them.
 * *out_len receives the text's length without its terminating NUL; out needs
 * *out_len + 1 bytes. out == NULL: only compute *out_len (SUCCESS). out_cap too small:
 * KILN_ERROR_LIMIT_EXCEEDED naming the size needed (out holds a truncated, terminated
 * text when out_cap > 0). KILN_ERROR_INVALID_ARGUMENT for an unknown target or spans
 * that do not fit the source. */
kiln_status kiln__dialect_rewrite(const char *src, size_t len, const kiln__kfunc *funcs,
                                  size_t count, kiln__dialect_target target, char *out,
                                  size_t out_cap, size_t *out_len);

#endif
