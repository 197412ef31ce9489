/* SPDX-License-Identifier: MIT */
/* The kiln dialect's prelude for each device language, and the rewrite that turns a
 * dialect source into what the device compiler sees: prelude, `#line 1`, then the
 * user's text with kiln's hidden parameters added (docs/kernels.md). The backends'
 * program builders call it; it never allocates (the caller sizes the buffer). */
#ifndef KILN_PRELUDE_H
#define KILN_PRELUDE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/backend.h" /* kiln__dialect_target, KILN__LOCAL_ALIGN */
#include "core/kparse.h"
#include "kiln/status.h"

/* NUL-terminated prelude texts. */
extern const char kiln__prelude_opencl[];
extern const char kiln__prelude_cuda[];
extern const char kiln__prelude_c[];
/* The prelude of a target (NULL for an unknown one). */
const char *kiln__prelude_of(kiln__dialect_target target);

/* Text output with snprintf's semantics (rewrite_c.c): counts everything, stores what
 * fits (out may be NULL to measure). */
typedef struct kiln__sink {
  char *out;
  size_t cap, len;
} kiln__sink;
void kiln__sink_put(kiln__sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The offset after a comment, string or character literal starting at src[i] (i <
 * len), or i when none starts there (rewrite_c.c). */
size_t kiln__skip_lexical(const char *src, size_t len, size_t i);

/* C only (rewrite_c.c). The offset just past the '}' closing the body that opens at
 * src[body_open] (len when unclosed); comments and literals skipped. */
size_t kiln__kernel_body_end(const char *src, size_t len, size_t body_open);
/* Whether kernel k calls kiln_barrier(): in its body, or anywhere outside every kernel
 * body (a helper or a macro may call it; then every kernel counts as using it). */
bool kiln__kernel_uses_barrier(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               size_t k);
/* Whether the identifier `word` occurs in src outside every kernel body (in a helper,
 * a macro, a global). */
bool kiln__outside_kernels_has(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               const char *word);
/* Loop fission (fission.c) of kernel k, which uses kiln_barrier() in its body only: the
 * C text of `size_t kiln__fbytes_NAME(size_t items)` (the per-work-item storage a group
 * of `items` needs) and `int kiln__fission_NAME(kiln__wi *, void *const *args,
 * unsigned char *storage)` (a whole group, one loop over its work-items per region
 * between barriers; returns 1 when the work-items disagree on a condition around a
 * barrier), starting with a newline and ending with `#line` back at the line of the
 * body's '}'. snprintf-like (returns the length, stores what fits in out, may be NULL);
 * returns 0 when the kernel must stay on fibers. why (why_bytes) receives one line:
 * the path taken and, for fibers, the reason with its line. */
size_t kiln__fission_c(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                       size_t k, char *out, size_t out_cap, char *why, size_t why_bytes);
/* C only (rewrite_c.c): group-local arrays. A KILN_LOCAL_ARRAY declaration at the
 * outermost level of a kernel body: src[begin, end) from its first letter to just past
 * its ';' (closed: a ';' ends it), conditional: inside #if/#ifdef/#ifndef in the body.
 * The word in a nested block of the body is reported too (nested), to be refused where
 * it stands; elsewhere (helpers, file scope) the prelude's KILN_LOCAL_ARRAY refuses it. */
typedef struct kiln__ldecl {
  size_t begin, end;
  bool conditional, closed;
  bool inner;  /* not the declaration's first word (`volatile KILN_LOCAL_ARRAY ...`) */
  bool nested; /* in a nested block: [begin, end) is the word alone, refused */
} kiln__ldecl;
/* The first such declaration (or nested word) of the body opening at src[body_open]
 * that starts at or after `from`; false when none. */
bool kiln__local_decl_next(const char *src, size_t len, size_t body_open, size_t from,
                           kiln__ldecl *d);
/* The previous declarator written (its name, for the next one's offset) and how many. */
typedef struct kiln__lchain {
  const char *prev;
  int prev_len;
  unsigned count;
} kiln__lchain;
typedef enum kiln__ldecl_mode {
  KILN__LDECL_BODY,    /* in the kernel body: storage from `record`, then the names' macros */
  KILN__LDECL_FISSION, /* in its loop-fission entry: storage from `record`, no macros */
  KILN__LDECL_SIZE,    /* in kiln__lbytes_NAME: the layout only */
  KILN__LDECL_UNDEF    /* the names' #undef lines (chain unused, may be NULL) */
} kiln__ldecl_mode;
/* Write declaration d of kernel `kernel` for `mode` to s (one line, except the
 * directives of BODY and UNDEF, which end with `#line` back at the line of the ';').
 * A declaration kiln cannot take apart, with an initializer, or conditional becomes a
 * `_Static_assert(0, "...")` naming the kernel, the line and what to do (nothing in
 * SIZE and UNDEF mode). */
void kiln__local_decl_c(kiln__sink *s, const char *src, size_t len, const kiln__ldecl *d,
                        const char *kernel, const char *record, kiln__ldecl_mode mode,
                        kiln__lchain *chain);
/* Kernel f's body text src[from, to) with its local-array declarations rewritten
 * (KILN__LDECL_BODY). snprintf-like: returns the length, stores what fits. */
size_t kiln__rewrite_c_body(const char *src, size_t len, const kiln__kfunc *f, size_t from,
                            size_t to, char *out, size_t out_cap);
/* Whether anything outside the kernel bodies (a helper, a macro) reads the work-item
 * record: an id or size function, kiln_barrier. Then the group loop's entry tells
 * libkiln that its copy of the record is current (through kiln__current_slot()). */
bool kiln__helpers_read_wi(const char *src, size_t len, const kiln__kfunc *funcs, size_t count);

/* The entry points of kernel k for the C target, one line without a newline, which
 * the rewrite puts right after the '}' closing the kernel's body (so a kernel the
 * preprocessor drops drops its entries too, and line numbers stay the user's): for
 * kernel NAME the exported symbols the CPU backend looks up — `const unsigned
 * kiln__flags_NAME` (bit 0: uses kiln_barrier; bit 1: has the fission entries of
 * kiln__fission_c; bit 2: declares local arrays, and `size_t kiln__lbytes_NAME(void)`
 * says how many bytes of group storage they need), `const char kiln__why_NAME[]` (the path and why,
 * for the log), `void kiln__item_NAME(const kiln__wi *, void *const *args)` (one work-item) and
 * `void kiln__group_NAME(kiln__wi *, void *const *args)` (every work-item of a group in a loop).
 * With local arrays the text ends with kiln__lbytes_NAME, the names' #undef lines and
 * `#line` back at the line of the body's '}'. snprintf-like: returns the length,
 * stores what fits in out (may be NULL). */
size_t kiln__rewrite_c_entries(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               size_t k, char *out, size_t out_cap);

/* CUDA only: each `KILN_LOCAL T *p` parameter becomes a 4-byte `kiln_u32 kiln__lo_p`,
 * the byte offset of p's part of the kernel's one dynamic shared memory block
 * (`kiln__shared`, 16-byte aligned). The launcher lays the parts out in parameter
 * order, each offset rounded up to KILN__LOCAL_ALIGN, and launches with the total as
 * the dynamic shared memory size. */
#define KILN__LOCAL_OFFSET_BYTES 4u

/* Write prelude + "#line 1\n" + the rewritten source[0..len) to out. `funcs` are the
 * kernels kiln__kparse found in this very source (count of them, in source order).
 *   OpenCL: the hidden size parameters are added before each kernel's ')' (replacing
 *     a lone `void`), except to kernels marked no_sizes (kiln__dialect_mark_sizes).
 *   CUDA: the same, and each KILN_LOCAL parameter is replaced by its offset parameter,
 *     with `T *p = (T *)(kiln__shared + kiln__lo_p);` inserted right after the body's
 *     '{' on the same line.
 *   C: each kernel becomes a `static inline` function whose only hidden parameter is
 *     `const kiln__wi *const kiln__wi_` (no size parameters: the record has them); the
 *     user's text is followed by kiln__rewrite_c_trailer's entry points.
 * Line numbers of the user's text are kept, so compiler messages point at them.
 * *out_len receives the text's length without its terminating NUL; out needs
 * *out_len + 1 bytes. out == NULL: only compute *out_len (SUCCESS). out_cap too small:
 * KILN_ERROR_LIMIT_EXCEEDED naming the size needed (out holds a truncated, terminated
 * text when out_cap > 0). KILN_ERROR_INVALID_ARGUMENT for an unknown target or spans
 * that do not fit the source. */
kiln_status kiln__dialect_rewrite(const char *src, size_t len, const kiln__kfunc *funcs,
                                  size_t count, kiln__dialect_target target, char *out,
                                  size_t out_cap, size_t *out_len);

/* Whether kernel k may read kiln_global_size(): the identifier occurs in its body, or
 * anywhere outside every kernel body or in any preprocessor directive (a macro may
 * expand to it), or the source has a `#include` or a `##` (text kiln cannot see or a
 * name it cannot spell out). False
 * only when the kernel certainly never reads its hidden size parameters (rewrite_c.c). */
bool kiln__kernel_uses_global_size(const char *src, size_t len, const kiln__kfunc *funcs,
                                   size_t count, size_t k);
/* OpenCL only: set funcs[k].no_sizes for each kernel that never reads kiln_global_size(),
 * so the rewrite gives it no hidden size parameters and its launches pass none (every
 * kernel argument costs PoCL an allocation and a copy per launch: docs/kernels.md).
 * Other targets keep them on every kernel. */
void kiln__dialect_mark_sizes(const char *src, size_t len, kiln__kfunc *funcs, size_t count,
                              kiln__dialect_target target);

#endif
