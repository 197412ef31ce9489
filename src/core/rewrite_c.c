/* SPDX-License-Identifier: MIT */
/* The kiln dialect as C for the CPU backend (prelude.h): the C prelude, the kernel
 * bodies' group-local arrays, and the entry points appended after the user's text, one
 * set per kernel, which the CPU backend finds with dlsym in the compiled shared object.
 * A kernel becomes a `static inline` function with one hidden trailing parameter,
 * `const kiln__wi *const kiln__wi_` (its work-item: ids, sizes, the barrier, the
 * group's local arrays); helpers reach the current record in libkiln's thread-local
 * (at the offset from the thread pointer kiln__bind hands over at load), never
 * through a thread-local of the object. Pure text work on caller buffers: no
 * allocation, any thread. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/prelude.h"

/* The work-item record (kiln__cpu_wi in the CPU backend has the same layout: keep the
 * two in step). lid is the work-item's own; the rest is its group's. barrier(ctx) is
 * kiln_barrier(): it returns once every work-item of the group has called it. local is
 * the group's storage of its KILN_LOCAL_ARRAYs (kiln__lbytes_NAME() bytes, 64-byte
 * aligned). kiln__rt is the CPU backend's kiln__cpu_rt (the same layout): where
 * libkiln keeps the record of the work-item running on the calling thread, for
 * helpers. */
/* The preludes are longer than the 4095 characters ISO C requires a compiler to take in
 * one string literal; GCC and Clang (the only compilers kiln builds with) take any. */
#pragma GCC diagnostic ignored "-Woverlength-strings"
const char kiln__prelude_c[] =
    "/* kiln dialect prelude: C (the CPU backend) */\n"
    "#include <stddef.h>\n"
    "#include <stdint.h>\n"
    "#include <tgmath.h>\n"
    "#define KILN_C 1\n"
    /* loop fission's entries (fission.c) drop out with -DKILN__NO_FISSION: the CPU
     * backend's second try when they do not compile */
    "#ifdef KILN__NO_FISSION\n"
    "#define KILN__FISSION 0u\n"
    "#else\n"
    "#define KILN__FISSION 2u\n"
    "#endif\n"
    "#define KILN_KERNEL static inline\n"
    "#define KILN_GLOBAL\n"
    "#define KILN_LOCAL\n"
    "#define KILN_RESTRICT restrict\n"
    "#define KILN_INLINE static inline\n"
    "typedef unsigned char uchar;\n"
    "typedef unsigned short ushort;\n"
    "typedef unsigned int uint;\n"
    "typedef unsigned long ulong;\n"
    "typedef signed char kiln_i8;\n"
    "typedef unsigned char kiln_u8;\n"
    "typedef short kiln_i16;\n"
    "typedef unsigned short kiln_u16;\n"
    "typedef int kiln_i32;\n"
    "typedef unsigned int kiln_u32;\n"
    "typedef long kiln_i64;\n"
    "typedef unsigned long kiln_u64;\n"
    "typedef float kiln_f32;\n"
    "typedef double kiln_f64;\n"
    "typedef struct kiln__wi {\n"
    "  size_t lid[3], grp[3], lsz[3], ngr[3], gsz[3];\n"
    "  void (*barrier)(void *);\n"
    "  void *barrier_ctx;\n"
    "  unsigned char *local;\n"
    "} kiln__wi;\n"
    "typedef struct kiln__rt {\n"
    "  ptrdiff_t current_offset;\n"
    "} kiln__rt;\n"
    "static kiln__rt kiln__rt_;\n"
    "void kiln__bind(const kiln__rt *rt) { kiln__rt_ = *rt; }\n"
    /* kiln__W is the current work-item's record: in a kernel body its parameter
     * kiln__wi_ (which shadows the function below: no cost), in a helper the function:
     * libkiln's record of the work-item running on this thread, read at the offset from
     * the thread pointer that libkiln handed over (its variable is initial-exec TLS:
     * the same offset in every thread), one load, no call and no TLS of the object's */
    "#define kiln__current_slot() \\\n"
    "  ((const kiln__wi **)(void *)((char *)__builtin_thread_pointer() + "
    "kiln__rt_.current_offset))\n"
    "static inline const kiln__wi *kiln__wi_(void) { return *kiln__current_slot(); }\n"
    /* the group entry's copy of the record, where helpers see it (its address is
     * published, so the copy is made in memory): word by word, since one 32-byte load
     * over the caller's 8-byte stores of grp[] cannot be forwarded from the store
     * buffer and waits for it to drain (the previous group's stores of the output:
     * vecadd with a helper ran 30% slower with the plain struct copy) */
    "static inline void kiln__copy_wi(kiln__wi *to, const kiln__wi *from) {\n"
    "  const size_t *f = (const size_t *)(const void *)from;\n"
    "  size_t *t = (size_t *)(void *)to;\n"
    "  for (unsigned k = 0; k < sizeof *to / sizeof *t; k++) {\n"
    "    size_t v = f[k];\n"
    "    __asm__(\"\" : \"+r\"(v));\n"
    "    t[k] = v;\n"
    "  }\n"
    "}\n"
    "#define kiln__W _Generic(kiln__wi_, const kiln__wi *: kiln__wi_, kiln__wi *: kiln__wi_,\\\n"
    "  default: ((const kiln__wi *(*)(void))(uintptr_t)(kiln__wi_))())\n"
    "#define kiln_local_id(d) (kiln__W->lid[d])\n"
    "#define kiln_group_id(d) (kiln__W->grp[d])\n"
    "#define kiln_local_size(d) (kiln__W->lsz[d])\n"
    "#define kiln_num_groups(d) (kiln__W->ngr[d])\n"
    "#define kiln_global_id(d) (kiln__W->grp[d] * kiln__W->lsz[d] + kiln__W->lid[d])\n"
    "#define kiln_global_size(d) (kiln__W->gsz[d])\n"
    "static inline void kiln__barrier(const kiln__wi *me) { me->barrier(me->barrier_ctx); }\n"
    "#define kiln_barrier() kiln__barrier(kiln__W)\n"
    /* the C rewrite turns each KILN_LOCAL_ARRAY at the outermost level of a kernel body
     * into storage of the group (kiln__rewrite_c_body): any other is refused */
    "#define KILN_LOCAL_ARRAY _Static_assert(0, \"KILN_LOCAL_ARRAY is allowed only at the \"\\\n"
    "  \"outermost level of a kernel body (as OpenCL requires), not in a nested block, a \"\\\n"
    "  \"helper, a macro or at file scope: move the declaration there\"); static\n"
    /* atomics: GCC's __atomic built-ins, relaxed as OpenCL C 1.2's and CUDA's are */
    "#define KILN__R __ATOMIC_RELAXED\n"
    "#define kiln_atomic_add(p, v) __atomic_fetch_add(p, v, KILN__R)\n"
    "#define kiln_atomic_sub(p, v) __atomic_fetch_sub(p, v, KILN__R)\n"
    "#define kiln_atomic_and(p, v) __atomic_fetch_and(p, v, KILN__R)\n"
    "#define kiln_atomic_or(p, v) __atomic_fetch_or(p, v, KILN__R)\n"
    "#define kiln_atomic_xor(p, v) __atomic_fetch_xor(p, v, KILN__R)\n"
    "#define kiln_atomic_xchg(p, v) __atomic_exchange_n(p, v, KILN__R)\n"
    "#define kiln_atomic_cmpxchg(p, c, v) ({ __typeof__(*(p)) kiln__e = (c);\\\n"
    "  __atomic_compare_exchange_n(p, &kiln__e, v, 0, KILN__R, KILN__R); kiln__e; })\n"
    "#define kiln__atomic_pick(p, v, BETTER) ({ __typeof__(p) kiln__q = (p);\\\n"
    "  __typeof__(*kiln__q) kiln__v = (v), kiln__o = __atomic_load_n(kiln__q, KILN__R);\\\n"
    "  while (kiln__v BETTER kiln__o &&\\\n"
    "    !__atomic_compare_exchange_n(kiln__q, &kiln__o, kiln__v, 1, KILN__R, KILN__R)) {}\\\n"
    "  kiln__o; })\n"
    "#define kiln_atomic_min(p, v) kiln__atomic_pick(p, v, <)\n"
    "#define kiln_atomic_max(p, v) kiln__atomic_pick(p, v, >)\n"
    "#define kiln_atomic_inc(p) __atomic_fetch_add(p, 1, KILN__R)\n"
    "#define kiln_atomic_dec(p) __atomic_fetch_sub(p, 1, KILN__R)\n"
    "#define kiln_atomic64_add kiln_atomic_add\n"
    "#define kiln_atomic64_sub kiln_atomic_sub\n"
    "#define kiln_atomic64_min kiln_atomic_min\n"
    "#define kiln_atomic64_max kiln_atomic_max\n"
    "#define kiln_atomic64_and kiln_atomic_and\n"
    "#define kiln_atomic64_or kiln_atomic_or\n"
    "#define kiln_atomic64_xor kiln_atomic_xor\n"
    "#define kiln_atomic64_xchg kiln_atomic_xchg\n"
    "#define kiln_atomic64_cmpxchg kiln_atomic_cmpxchg\n"
    "#define kiln_atomic64_inc kiln_atomic_inc\n"
    "#define kiln_atomic64_dec kiln_atomic_dec\n"
    "static inline float kiln__fadd(float *p, float v) {\n"
    "  union { float f; uint32_t u; } o, n;\n"
    "  o.u = __atomic_load_n((uint32_t *)p, KILN__R);\n"
    "  do { n.f = o.f + v; } while (!__atomic_compare_exchange_n((uint32_t *)p, &o.u, n.u, 1,\n"
    "                                                             KILN__R, KILN__R));\n"
    "  return o.f;\n"
    "}\n"
    "#define kiln_atomic_add_f32(p, v) kiln__fadd(p, v)\n"
    "#define kiln_mem_fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)\n"
    "#define kiln_read_mem_fence() __atomic_thread_fence(__ATOMIC_ACQUIRE)\n"
    "#define kiln_write_mem_fence() __atomic_thread_fence(__ATOMIC_RELEASE)\n"
    /* feature level scoped_atomics: GCC's __atomic built-ins with the order asked for;
     * every scope is the process (work-items are threads of it, or fibers on one) */
    "#define KILN_FEATURE_LEVEL(name) enum { kiln__level_##name = 1 }\n"
    "#define KILN_ORDER_RELAXED __ATOMIC_RELAXED\n"
    "#define KILN_ORDER_ACQUIRE __ATOMIC_ACQUIRE\n"
    "#define KILN_ORDER_RELEASE __ATOMIC_RELEASE\n"
    "#define KILN_ORDER_ACQ_REL __ATOMIC_ACQ_REL\n"
    "#define KILN_ORDER_SEQ_CST __ATOMIC_SEQ_CST\n"
    "#define KILN_SCOPE_WORK_GROUP 1\n"
    "#define KILN_SCOPE_DEVICE 2\n"
    /* a failed compare-exchange only loads: no release in its order */
    "#define kiln__fail_order(o) ((o) == __ATOMIC_RELEASE ? __ATOMIC_RELAXED\\\n"
    "  : (o) == __ATOMIC_ACQ_REL ? __ATOMIC_ACQUIRE : (o))\n"
    "#define kiln_atomic_add_explicit(p, v, o, s) __atomic_fetch_add(p, v, o)\n"
    "#define kiln_atomic_sub_explicit(p, v, o, s) __atomic_fetch_sub(p, v, o)\n"
    "#define kiln_atomic_and_explicit(p, v, o, s) __atomic_fetch_and(p, v, o)\n"
    "#define kiln_atomic_or_explicit(p, v, o, s) __atomic_fetch_or(p, v, o)\n"
    "#define kiln_atomic_xor_explicit(p, v, o, s) __atomic_fetch_xor(p, v, o)\n"
    "#define kiln_atomic_xchg_explicit(p, v, o, s) __atomic_exchange_n(p, v, o)\n"
    "#define kiln_atomic_load_explicit(p, o, s) __atomic_load_n(p, o)\n"
    "#define kiln_atomic_store_explicit(p, v, o, s) __atomic_store_n(p, v, o)\n"
    "#define kiln_atomic_cmpxchg_explicit(p, c, v, o, s) ({ __typeof__(*(p)) kiln__e = (c);\\\n"
    "  __atomic_compare_exchange_n(p, &kiln__e, v, 0, o, kiln__fail_order(o)); kiln__e; })\n"
    "#define kiln__atomic_pick_x(p, v, BETTER, o) ({ __typeof__(p) kiln__q = (p);\\\n"
    "  __typeof__(*kiln__q) kiln__v = (v), kiln__o = __atomic_load_n(kiln__q, "
    "__ATOMIC_RELAXED);\\\n"
    "  while (kiln__v BETTER kiln__o &&\\\n"
    "    !__atomic_compare_exchange_n(kiln__q, &kiln__o, kiln__v, 1, o, kiln__fail_order(o))) "
    "{}\\\n"
    "  kiln__o; })\n"
    "#define kiln_atomic_min_explicit(p, v, o, s) kiln__atomic_pick_x(p, v, <, o)\n"
    "#define kiln_atomic_max_explicit(p, v, o, s) kiln__atomic_pick_x(p, v, >, o)\n"
    "#define kiln_fence(o, s) __atomic_thread_fence(o)\n"
    "#define kiln_min(a, b) ({ __typeof__(a) kiln__a = (a); __typeof__(b) kiln__b = (b);\\\n"
    "  kiln__b < kiln__a ? kiln__b : kiln__a; })\n"
    "#define kiln_max(a, b) ({ __typeof__(a) kiln__a = (a); __typeof__(b) kiln__b = (b);\\\n"
    "  kiln__a < kiln__b ? kiln__b : kiln__a; })\n";

size_t kiln__skip_lexical(const char *src, size_t len, size_t i) {
  if (src[i] == '/' && i + 1 < len && src[i + 1] == '*') {
    i += 2;
    while (i + 1 < len && !(src[i] == '*' && src[i + 1] == '/'))
      i++;
    return i + 2 < len ? i + 2 : len;
  }
  if (src[i] == '/' && i + 1 < len && src[i + 1] == '/') {
    while (i < len && src[i] != '\n')
      i++;
    return i;
  }
  if (src[i] == '"' || src[i] == '\'') {
    char q = src[i++];
    while (i < len && src[i] != q && src[i] != '\n') {
      if (src[i] == '\\')
        i++;
      i++;
    }
    return i < len ? i + 1 : len;
  }
  return i;
}

static bool ident_char(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the identifier `word` occurs in src[begin, end) outside comments and
 * literals; skip[k] (k < nskip, pairs) are spans to ignore. */
static bool has_ident(const char *src, size_t begin, size_t end, const char *word,
                      const size_t *skip, size_t nskip) {
  size_t wl = strlen(word);
  size_t i = begin;
  while (i < end) {
    for (size_t k = 0; k < nskip; k++)
      if (i >= skip[2 * k] && i < skip[2 * k + 1]) {
        i = skip[2 * k + 1];
        break;
      }
    if (i >= end)
      break;
    size_t j = kiln__skip_lexical(src, end, i);
    if (j != i) {
      i = j;
      continue;
    }
    if (ident_char(src[i])) {
      size_t s = i;
      while (i < end && ident_char(src[i]))
        i++;
      if (i - s == wl && !memcmp(src + s, word, wl))
        return true;
      continue;
    }
    i++;
  }
  return false;
}

size_t kiln__kernel_body_end(const char *src, size_t len, size_t body_open) {
  int depth = 0;
  size_t i = body_open;
  while (i < len) {
    size_t j = kiln__skip_lexical(src, len, i);
    if (j != i) {
      i = j;
      continue;
    }
    if (src[i] == '{')
      depth++;
    else if (src[i] == '}' && --depth == 0)
      return i + 1;
    i++;
  }
  return len;
}

bool kiln__outside_kernels_has(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               const char *word) {
  size_t spans[2 * 64];
  size_t n = 0;
  for (size_t i = 0; i < count && n < 64; i++, n++) {
    spans[2 * n] = funcs[i].body_open;
    spans[2 * n + 1] = kiln__kernel_body_end(src, len, funcs[i].body_open);
  }
  return has_ident(src, 0, len, word, spans, n);
}

bool kiln__kernel_uses_barrier(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               size_t k) {
  size_t end = kiln__kernel_body_end(src, len, funcs[k].body_open);
  if (has_ident(src, funcs[k].body_open, end, "kiln_barrier", NULL, 0))
    return true;
  /* A barrier anywhere outside every kernel (a helper, a macro) counts for all. */
  return kiln__outside_kernels_has(src, len, funcs, count, "kiln_barrier");
}

/* Whether `##` occurs outside comments and literals. */
static bool has_paste(const char *src, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t j = kiln__skip_lexical(src, len, i);
    if (j != i) {
      i = j;
      continue;
    }
    if (src[i] == '#' && i + 1 < len && src[i + 1] == '#')
      return true;
    i++;
  }
  return false;
}

/* Whether `word` occurs in a preprocessor directive anywhere, kernel bodies included (a
 * macro defined inside one kernel's body may be used in another's), continuation lines
 * included. */
static bool directive_has(const char *src, size_t len, const char *word) {
  size_t i = 0;
  while (i < len) {
    size_t line = i;
    while (i < len && (src[i] == ' ' || src[i] == '\t'))
      i++;
    bool directive = i < len && src[i] == '#';
    while (i < len && !(src[i] == '\n' && (i == 0 || src[i - 1] != '\\')))
      i++;
    if (directive && has_ident(src, line, i, word, NULL, 0))
      return true;
    i++;
  }
  return false;
}

static const char global_size_word[] = "kiln_global_size";

/* The part of kiln__kernel_uses_global_size that is the same for every kernel: the
 * identifier outside every kernel body or in a directive, or `#include` or `##`. */
static bool any_kernel_may_read_sizes(const char *src, size_t len, const kiln__kfunc *funcs,
                                      size_t count) {
  return kiln__outside_kernels_has(src, len, funcs, count, global_size_word) ||
         directive_has(src, len, global_size_word) || has_ident(src, 0, len, "include", NULL, 0) ||
         has_paste(src, len);
}

static bool body_reads_sizes(const char *src, size_t len, const kiln__kfunc *f) {
  size_t end = kiln__kernel_body_end(src, len, f->body_open);
  return has_ident(src, f->body_open, end, global_size_word, NULL, 0);
}

bool kiln__kernel_uses_global_size(const char *src, size_t len, const kiln__kfunc *funcs,
                                   size_t count, size_t k) {
  return body_reads_sizes(src, len, &funcs[k]) || any_kernel_may_read_sizes(src, len, funcs, count);
}

void kiln__dialect_mark_sizes(const char *src, size_t len, kiln__kfunc *funcs, size_t count,
                              kiln__dialect_target target) {
  /* the source-wide scans once, not once a kernel */
  bool all = target != KILN__TARGET_OPENCL || any_kernel_may_read_sizes(src, len, funcs, count);
  for (size_t k = 0; k < count; k++)
    funcs[k].no_sizes = !all && !body_reads_sizes(src, len, &funcs[k]);
}

void kiln__sink_put(kiln__sink *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *at = s->out && s->len < s->cap ? s->out + s->len : NULL;
  size_t room = at ? s->cap - s->len : 0;
  int n = vsnprintf(at, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    s->len += (size_t)n;
}

/* ---- group-local arrays. A KILN_LOCAL_ARRAY declaration at the outermost level of a
 * kernel body becomes, per declarator `name`, a typedef of its type, its offset in the
 * group's storage (after the previous declarator's end, aligned for its type: constant
 * expressions the compiler folds) and a pointer into the record's `local`; a macro
 * `name` for `(*(kiln__LT_name *)kiln__LA_name)` keeps every use an lvalue of the
 * declared type (sizeof, &name, decay as before), and fails to compile as a
 * declarator, so a nested declaration reusing the name is refused rather than
 * silently shadowed. The macros are #undef'd after the kernel's entry points. */
static const char local_word[] = "KILN_LOCAL_ARRAY";

static bool id_start_char(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool kiln__local_decl_next(const char *src, size_t len, size_t body_open, size_t from,
                           kiln__ldecl *d) {
  size_t end = kiln__kernel_body_end(src, len, body_open);
  if (end > len || end < body_open + 2)
    return false;
  end--; /* the body's '}' */
  int depth = 0, cond = 0;
  bool line_start = false;
  char prev = '{'; /* the last character of the text before i, comments aside */
  size_t i = body_open + 1;
  while (i < end) {
    size_t j = kiln__skip_lexical(src, end, i);
    if (j != i) {
      i = j;
      continue;
    }
    char c = src[i];
    if (c == '\n') {
      line_start = true;
      i++;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      i++;
      continue;
    }
    if (c == '#' && line_start) { /* a directive: conditionals counted, the line skipped */
      size_t w = i + 1;
      while (w < end && (src[w] == ' ' || src[w] == '\t'))
        w++;
      if (w + 2 <= end && !memcmp(src + w, "if", 2))
        cond++;
      else if (w + 5 <= end && !memcmp(src + w, "endif", 5) && cond > 0)
        cond--;
      while (i < end && src[i] != '\n')
        i += src[i] == '\\' && i + 1 < end ? 2 : 1;
      continue;
    }
    line_start = false;
    char before = prev;
    prev = c;
    if (c == '(' || c == '[' || c == '{') {
      depth++;
      i++;
      continue;
    }
    if (c == ')' || c == ']' || c == '}') {
      depth--;
      i++;
      continue;
    }
    if (!id_start_char(c)) {
      i++;
      continue;
    }
    size_t w0 = i;
    while (i < end && ident_char(src[i]))
      i++;
    prev = src[i - 1];
    if (w0 < from || i - w0 != sizeof local_word - 1 || memcmp(src + w0, local_word, i - w0))
      continue;
    if (depth != 0) { /* refused where it stands (the word alone is replaced) */
      memset(d, 0, sizeof *d);
      d->begin = w0;
      d->end = i;
      d->nested = true;
      return true;
    }
    /* its end: the ';' at this level */
    int dd = 0;
    size_t k = i;
    while (k < end) {
      size_t q = kiln__skip_lexical(src, end, k);
      if (q != k) {
        k = q;
        continue;
      }
      if (src[k] == '(' || src[k] == '[' || src[k] == '{')
        dd++;
      else if (src[k] == ')' || src[k] == ']' || src[k] == '}')
        dd--;
      else if (src[k] == ';' && dd == 0)
        break;
      if (dd < 0)
        break;
      k++;
    }
    d->begin = w0;
    d->end = k < end && src[k] == ';' ? k + 1 : k;
    d->conditional = cond > 0;
    d->closed = k < end && src[k] == ';';
    d->inner = before != ';' && before != '{' && before != '}';
    d->nested = false;
    return true;
  }
  return false;
}

/* The tokens of src[b, e): identifiers, numbers and single punctuation characters
 * (comments skipped). Returns the count, or cap + 1 when there are more. */
typedef struct ltok {
  size_t b, e;
} ltok;
#define MAX_LTOKENS 256u

static size_t ltokens(const char *src, size_t b, size_t e, ltok *t, size_t cap) {
  size_t n = 0, i = b;
  while (i < e) {
    size_t j = kiln__skip_lexical(src, e, i);
    char c = src[i];
    if (j != i && (c == '/')) { /* a comment */
      i = j;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
        (c == '\\' && i + 1 < e && src[i + 1] == '\n')) {
      i++;
      continue;
    }
    if (n == cap)
      return cap + 1;
    t[n].b = i;
    if (j != i) /* a literal */
      i = j;
    else if (ident_char(c))
      while (i < e && (ident_char(src[i]) || src[i] == '.'))
        i++;
    else
      i++;
    t[n++].e = i;
  }
  return n;
}

static bool ltok_is(const char *src, const ltok *t, const char *w) {
  size_t n = strlen(w);
  return t->e - t->b == n && !memcmp(src + t->b, w, n);
}

static bool ltok_ident(const char *src, const ltok *t) {
  return id_start_char(src[t->b]);
}

static void put_ltoks(kiln__sink *s, const char *src, const ltok *t, size_t b, size_t e,
                      size_t name, const char *name_prefix) {
  for (size_t i = b; i < e; i++) {
    if (i == name)
      kiln__sink_put(s, "%s", name_prefix);
    kiln__sink_put(s, "%.*s ", (int)(t[i].e - t[i].b), src + t[i].b);
  }
}

void kiln__local_decl_c(kiln__sink *s, const char *src, size_t len, const kiln__ldecl *d,
                        const char *kernel, const char *record, kiln__ldecl_mode mode,
                        kiln__lchain *chain) {
  static const char *const qualifiers[] = {
      "const", "volatile", "restrict", "__restrict", "KILN_LOCAL", "KILN_GLOBAL", "KILN_RESTRICT"};
  unsigned line = 0, col = 0, end_line = 0;
  kiln__kparse_position(src, d->begin, &line, &col);
  kiln__kparse_position(src, d->end ? d->end - 1 : 0, &end_line, &col);
  ltok t[MAX_LTOKENS];
  size_t tb = d->begin + sizeof local_word - 1, te = d->closed ? d->end - 1 : d->end;
  size_t n = tb <= te && te <= len ? ltokens(src, tb, te, t, MAX_LTOKENS) : 0;
  const char *why = NULL;
  size_t spec_end = 0;
  if (d->nested)
    why = "it is inside a nested block; local arrays are declared at the outermost level of "
          "a kernel body (as OpenCL requires): move it there";
  else if (d->inner)
    why = "KILN_LOCAL_ARRAY must begin the declaration (`KILN_LOCAL_ARRAY type name[size];`)";
  else if (d->conditional)
    why = "it is inside #if, #ifdef or #ifndef in the body, which the CPU backend does not "
          "follow when it lays the group's local arrays out: declare them unconditionally";
  else if (!d->closed)
    why = "no ';' ends it";
  else if (n > MAX_LTOKENS)
    why = "it is longer than 256 tokens";
  if (!why) {
    size_t p = 0;
    while (p < n && ltok_ident(src, &t[p]))
      p++;
    if (p < n && (ltok_is(src, &t[p], "*") || ltok_is(src, &t[p], "(")))
      spec_end = p;
    else if (p == n || ltok_is(src, &t[p], "[") || ltok_is(src, &t[p], ",") ||
             ltok_is(src, &t[p], "="))
      spec_end = p ? p - 1 : 0;
    else
      why = "kiln cannot take it apart (a struct defined in place, an attribute?): declare the "
            "type first, then `KILN_LOCAL_ARRAY type name[size];`";
    if (!why && spec_end == 0)
      why = "it has no type";
  }
  /* the declarators: [c, next) each */
  size_t names[MAX_LTOKENS], bounds[MAX_LTOKENS][2];
  size_t count = 0;
  for (size_t c = spec_end; !why && c < n;) {
    size_t next = c, name = n;
    int depth = 0, brackets = 0;
    for (; next < n; next++) {
      if (ltok_is(src, &t[next], "(") || ltok_is(src, &t[next], "["))
        depth++;
      else if (ltok_is(src, &t[next], ")") || ltok_is(src, &t[next], "]"))
        depth--;
      else if (depth == 0 && ltok_is(src, &t[next], ","))
        break;
      else if (depth == 0 && ltok_is(src, &t[next], "="))
        why = "local memory cannot be initialized in its declaration (OpenCL and CUDA refuse "
              "it too): assign it in the body, then kiln_barrier()";
      brackets += ltok_is(src, &t[next], "[") ? 1 : ltok_is(src, &t[next], "]") ? -1 : 0;
      if (name == n && brackets == 0 && ltok_ident(src, &t[next])) {
        bool qual = false;
        for (size_t k = 0; k < sizeof qualifiers / sizeof *qualifiers; k++)
          qual = qual || ltok_is(src, &t[next], qualifiers[k]);
        if (!qual)
          name = next;
      }
    }
    if (!why && name == n)
      why = "a declarator without a name";
    if (!why) {
      names[count] = name;
      bounds[count][0] = c;
      bounds[count][1] = next;
      count++;
    }
    c = next + 1;
  }
  if (mode == KILN__LDECL_UNDEF) {
    for (size_t i = 0; !why && i < count; i++)
      kiln__sink_put(s, "#undef %.*s\n", (int)(t[names[i]].e - t[names[i]].b), src + t[names[i]].b);
    return;
  }
  if (why) {
    if (mode != KILN__LDECL_SIZE)
      kiln__sink_put(s,
                     " _Static_assert(0, \"kernel %s: the KILN_LOCAL_ARRAY declaration at line "
                     "%u: %s\");",
                     kernel, line, why);
    return;
  }
  for (size_t i = 0; i < count; i++) {
    const ltok *nm = &t[names[i]];
    int nl = (int)(nm->e - nm->b);
    const char *nt = src + nm->b;
    kiln__sink_put(s, " typedef ");
    put_ltoks(s, src, t, 0, spec_end, n, "");
    put_ltoks(s, src, t, bounds[i][0], bounds[i][1], names[i], "kiln__LT_");
    kiln__sink_put(s, "; const size_t kiln__LO_%.*s = (", nl, nt);
    if (chain->prev_len)
      kiln__sink_put(s, "kiln__LE_%.*s", chain->prev_len, chain->prev);
    else
      kiln__sink_put(s, "(size_t)0");
    kiln__sink_put(s,
                   " + _Alignof(kiln__LT_%.*s) - 1) / _Alignof(kiln__LT_%.*s) * "
                   "_Alignof(kiln__LT_%.*s), kiln__LE_%.*s = kiln__LO_%.*s + "
                   "sizeof(kiln__LT_%.*s);",
                   nl, nt, nl, nt, nl, nt, nl, nt, nl, nt, nl, nt);
    if (mode == KILN__LDECL_SIZE)
      kiln__sink_put(s,
                     " _Static_assert(_Alignof(kiln__LT_%.*s) <= 64, \"kernel %s: "
                     "KILN_LOCAL_ARRAY %.*s asks for an alignment over 64 bytes, more than the "
                     "CPU backend's group storage has\");",
                     nl, nt, kernel, nl, nt);
    else
      kiln__sink_put(s, " unsigned char *const kiln__LA_%.*s = %s->local + kiln__LO_%.*s;", nl, nt,
                     record, nl, nt);
    chain->prev = nt;
    chain->prev_len = nl;
    chain->count++;
  }
  if (mode == KILN__LDECL_BODY) {
    kiln__sink_put(s, "\n#line %u \"<source>\"\n", end_line);
    for (size_t i = 0; i < count; i++) {
      const ltok *nm = &t[names[i]];
      int nl = (int)(nm->e - nm->b);
      kiln__sink_put(s, "#define %.*s (*(kiln__LT_%.*s *)kiln__LA_%.*s)\n", nl, src + nm->b, nl,
                     src + nm->b, nl, src + nm->b);
    }
    kiln__sink_put(s, "#line %u \"<source>\"\n", end_line);
  }
}

size_t kiln__rewrite_c_body(const char *src, size_t len, const kiln__kfunc *f, size_t from,
                            size_t to, char *out, size_t out_cap) {
  kiln__sink s = {out, out_cap, 0};
  kiln__lchain chain = {NULL, 0, 0};
  kiln__ldecl d;
  size_t at = from;
  while (kiln__local_decl_next(src, len, f->body_open, at, &d) && d.end <= to) {
    kiln__sink_put(&s, "%.*s", (int)(d.begin - at), src + at);
    kiln__local_decl_c(&s, src, len, &d, f->name, "kiln__wi_", KILN__LDECL_BODY, &chain);
    at = d.end;
  }
  kiln__sink_put(&s, "%.*s", (int)(to - at), src + at);
  if (out && out_cap)
    out[s.len < out_cap ? s.len : out_cap - 1] = '\0';
  return s.len;
}

bool kiln__helpers_read_wi(const char *src, size_t len, const kiln__kfunc *funcs, size_t count) {
  static const char *const names[] = {"kiln_local_id",   "kiln_global_id",  "kiln_group_id",
                                      "kiln_local_size", "kiln_num_groups", "kiln_global_size",
                                      "kiln_barrier",    "kiln__wi_",       "kiln__W"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (kiln__outside_kernels_has(src, len, funcs, count, names[i]))
      return true;
  return false;
}

/* The argument expression of parameter i from `void *const *kiln__a` (the CPU
 * backend's convention, as for native kernels: a buffer's storage, a pointer to a
 * scalar's bytes, a pointer to local memory). */
static void put_arg(kiln__sink *s, const kiln__kparam *p, uint32_t i) {
  if (p->kind == KILN_PARAM_SCALAR)
    kiln__sink_put(s, "*(const %s *)kiln__a[%u]", p->type, i);
  else
    kiln__sink_put(s, "(%s *)kiln__a[%u]", p->type, i);
}

size_t kiln__rewrite_c_entries(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                               size_t k, char *out, size_t out_cap) {
  kiln__sink s = {out, out_cap, 0};
  const kiln__kfunc *f = &funcs[k];
  bool barrier = kiln__kernel_uses_barrier(src, len, funcs, count, k);
  /* Loop fission where the body allows it (fission.c), fibers otherwise. */
  char why[200] = "no barrier: a group is one loop over its work-items";
  size_t fission = 0;
  if (barrier && kiln__outside_kernels_has(src, len, funcs, count, "kiln_barrier")) {
    snprintf(why, sizeof why,
             "fibers: kiln_barrier outside the kernel bodies (a helper or "
             "a macro) may be called from this kernel");
  } else if (barrier) {
    char *at = s.out && s.len < s.cap ? s.out + s.len : NULL;
    fission =
        kiln__fission_c(src, len, funcs, count, k, at, at ? s.cap - s.len : 0, why, sizeof why);
    s.len += fission;
  }
  /* the group's local arrays (kiln__rewrite_c_body wrote them into the body) */
  kiln__ldecl d;
  bool locals = false;
  for (size_t at = 0; !locals && kiln__local_decl_next(src, len, f->body_open, at, &d); at = d.end)
    locals = !d.nested;
  bool helpers = kiln__helpers_read_wi(src, len, funcs, count);
  unsigned lflag = locals ? 4u : 0u;
  if (fission) {
    kiln__sink_put(&s, " const unsigned kiln__flags_%s = %uu | KILN__FISSION;", f->name,
                   1u | lflag);
  } else {
    kiln__sink_put(&s, " const unsigned kiln__flags_%s = %uu;", f->name,
                   (barrier ? 1u : 0u) | lflag);
    kiln__sink_put(&s, " const char kiln__why_%s[] = \"%s\";", f->name, why);
  }
  /* One work-item (a fiber of a kernel with barriers). */
  kiln__sink_put(&s, " void kiln__item_%s(const kiln__wi *kiln__w, void *const *kiln__a) {",
                 f->name);
  kiln__sink_put(&s, " %s(", f->name);
  for (uint32_t i = 0; i < f->param_count; i++) {
    put_arg(&s, &f->params[i], i);
    kiln__sink_put(&s, ", ");
  }
  kiln__sink_put(&s, "kiln__w); }");
  /* A whole work-group in one loop (kernels without barriers), over a copy of the
   * work-item record on the stack: with the caller's record (a pointer the stores of
   * the kernel might alias, for all the compiler knows) GCC vectorised nothing ("complicated
   * access pattern"); with a local copy the loop over dimension 0 is vectorised. */
  kiln__sink_put(&s, " void kiln__group_%s(kiln__wi *kiln__w0, void *const *kiln__a) {", f->name);
  if (helpers) /* the copy is the record helpers must see (the backend set the caller's) */
    kiln__sink_put(&s, " kiln__wi kiln__r; kiln__copy_wi(&kiln__r, kiln__w0);"
                       " kiln__wi *const kiln__w = &kiln__r; *kiln__current_slot() = kiln__w;");
  else
    kiln__sink_put(&s, " kiln__wi kiln__r = *kiln__w0; kiln__wi *const kiln__w = &kiln__r;");
  for (uint32_t i = 0; i < f->param_count; i++) {
    const kiln__kparam *p = &f->params[i];
    if (p->kind == KILN_PARAM_SCALAR)
      kiln__sink_put(&s, " const %s kiln__p%u = ", p->type, i);
    else
      kiln__sink_put(&s, " %s *const kiln__p%u = ", p->type, i);
    put_arg(&s, p, i);
    kiln__sink_put(&s, ";");
  }
  kiln__sink_put(&s,
                 " const size_t kiln__n0 = kiln__w->lsz[0], kiln__n1 = kiln__w->lsz[1], "
                 "kiln__n2 = kiln__w->lsz[2];"
                 " for (size_t kiln__z = 0; kiln__z < kiln__n2; kiln__z++) {"
                 " kiln__w->lid[2] = kiln__z;"
                 " for (size_t kiln__y = 0; kiln__y < kiln__n1; kiln__y++) {"
                 " kiln__w->lid[1] = kiln__y;"
                 " for (size_t kiln__x = 0; kiln__x < kiln__n0; kiln__x++) {"
                 " kiln__w->lid[0] = kiln__x; %s(",
                 f->name);
  for (uint32_t i = 0; i < f->param_count; i++)
    kiln__sink_put(&s, "kiln__p%u, ", i);
  kiln__sink_put(&s, "kiln__w); } } } }");
  if (locals) {
    /* the bytes of the group's storage, from the same declarations at file scope (so
     * their types must be declared there), then the names' macros end */
    unsigned line = 0, col = 0;
    size_t body_end = kiln__kernel_body_end(src, len, f->body_open);
    kiln__kparse_position(src, body_end ? body_end - 1 : 0, &line, &col);
    kiln__sink_put(&s, "\nsize_t kiln__lbytes_%s(void) {", f->name);
    kiln__lchain chain = {NULL, 0, 0};
    for (size_t at = 0; kiln__local_decl_next(src, len, f->body_open, at, &d); at = d.end) {
      if (d.nested)
        continue;
      unsigned dl = 0;
      kiln__kparse_position(src, d.begin, &dl, &col);
      kiln__sink_put(&s, "\n#line %u \"<source>\"\n", dl);
      kiln__local_decl_c(&s, src, len, &d, f->name, NULL, KILN__LDECL_SIZE, &chain);
    }
    if (chain.prev_len)
      kiln__sink_put(&s, " return kiln__LE_%.*s; }\n", chain.prev_len, chain.prev);
    else
      kiln__sink_put(&s, " return 0; }\n");
    for (size_t at = 0; kiln__local_decl_next(src, len, f->body_open, at, &d); at = d.end)
      if (!d.nested)
        kiln__local_decl_c(&s, src, len, &d, f->name, NULL, KILN__LDECL_UNDEF, NULL);
    kiln__sink_put(&s, "#line %u \"<source>\"\n", line);
  }
  if (out && out_cap)
    out[s.len < out_cap ? s.len : out_cap - 1] = '\0';
  return s.len;
}
