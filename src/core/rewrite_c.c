/* SPDX-License-Identifier: MIT */
/* The kiln dialect as C for the CPU backend (prelude.h): the C prelude, and the entry
 * points appended after the user's text, one pair per kernel, which the CPU backend
 * finds with dlsym in the compiled shared object. A kernel becomes a `static inline`
 * function with one hidden trailing parameter, `const kiln__wi *const kiln__wi_`
 * (its work-item: ids, sizes, the barrier); helpers reach the same record through a
 * thread-local of the same name, which the kernel's parameter shadows. Pure text work
 * on caller buffers: no allocation, any thread. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/prelude.h"

/* The work-item record (kiln__cpu_wi in the CPU backend has the same layout: keep the
 * two in step). lid is the work-item's own; the rest is its group's. barrier(ctx) is
 * kiln_barrier(): it returns once every work-item of the group has called it. */
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
    "#define KILN_LOCAL_ARRAY static _Thread_local\n"
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
    "} kiln__wi;\n"
    "static _Thread_local const kiln__wi *kiln__wi_;\n"
    "#define kiln_local_id(d) (kiln__wi_->lid[d])\n"
    "#define kiln_group_id(d) (kiln__wi_->grp[d])\n"
    "#define kiln_local_size(d) (kiln__wi_->lsz[d])\n"
    "#define kiln_num_groups(d) (kiln__wi_->ngr[d])\n"
    "#define kiln_global_id(d) (kiln__wi_->grp[d] * kiln__wi_->lsz[d] + kiln__wi_->lid[d])\n"
    "#define kiln_global_size(d) (kiln__wi_->gsz[d])\n"
    /* in a kernel body kiln__wi_ is its parameter, in a helper the thread-local; after
     * the switch back, helpers must see this work-item again */
    "static inline void kiln__barrier(const kiln__wi *me) {\n"
    "  me->barrier(me->barrier_ctx);\n"
    "  kiln__wi_ = me;\n"
    "}\n"
    "#define kiln_barrier() kiln__barrier(kiln__wi_)\n"
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

bool kiln__kernel_uses_global_size(const char *src, size_t len, const kiln__kfunc *funcs,
                                   size_t count, size_t k) {
  static const char word[] = "kiln_global_size";
  size_t end = kiln__kernel_body_end(src, len, funcs[k].body_open);
  return has_ident(src, funcs[k].body_open, end, word, NULL, 0) ||
         kiln__outside_kernels_has(src, len, funcs, count, word) || directive_has(src, len, word) ||
         has_ident(src, 0, len, "include", NULL, 0) || has_paste(src, len);
}

void kiln__dialect_mark_sizes(const char *src, size_t len, kiln__kfunc *funcs, size_t count,
                              kiln__dialect_target target) {
  for (size_t k = 0; k < count; k++)
    funcs[k].no_sizes =
        target == KILN__TARGET_OPENCL && !kiln__kernel_uses_global_size(src, len, funcs, count, k);
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
  if (fission) {
    kiln__sink_put(&s, " const unsigned kiln__flags_%s = 1u | KILN__FISSION;", f->name);
  } else {
    kiln__sink_put(&s, " const unsigned kiln__flags_%s = %uu;", f->name, barrier ? 1u : 0u);
    kiln__sink_put(&s, " const char kiln__why_%s[] = \"%s\";", f->name, why);
  }
  /* One work-item (a fiber of a kernel with barriers). */
  kiln__sink_put(&s, " void kiln__item_%s(const kiln__wi *kiln__w, void *const *kiln__a) {",
                 f->name);
  kiln__sink_put(&s, " kiln__wi_ = kiln__w; %s(", f->name);
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
  kiln__sink_put(
      &s,
      " kiln__wi kiln__r = *kiln__w0; kiln__wi *const kiln__w = &kiln__r; kiln__wi_ = kiln__w;");
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
  if (out && out_cap)
    out[s.len < out_cap ? s.len : out_cap - 1] = '\0';
  return s.len;
}
