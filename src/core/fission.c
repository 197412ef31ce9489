/* SPDX-License-Identifier: MIT */
/* Loop fission at barriers for the C target (docs/kernels.md, "Barriers on the CPU"):
 * a kernel body is parsed into statements and cut at its kiln_barrier() statements into
 * regions, each written as one loop over the group's work-items; conditions around
 * barriers run once or are checked to agree; private variables live across regions are
 * recomputed, kept once or kept per work-item. Shapes it cannot prove safe return 0 and
 * a reason (the kernel stays on fibers). Called by the C rewrite (rewrite_c.c): pure
 * text work, fixed tables on the stack, no allocation, any thread, deterministic. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "core/prelude.h"

#define MAX_TOKENS 2048u
#define MAX_STMTS 512
#define MAX_VARS 96
#define MAX_MACROS 128
#define MAX_DEPTH 48

enum { T_ID, T_NUM, T_STR, T_PUNCT };
enum { S_BLOCK, S_DECL, S_EXPR, S_IF, S_FOR, S_WHILE, S_DO, S_RETURN, S_JUMP, S_BARRIER, S_EMPTY };
/* V_UNIFORM: the same in every work-item, never written; V_UMUT: the same in every
 * work-item, written only by uniform statements at the structured level (run once) */
enum { V_LOCAL, V_UNIFORM, V_UMUT, V_REMAT, V_PROMOTED, V_STATIC };

typedef struct ftok {
  uint32_t b, e, line;
  uint8_t kind;
} ftok;

typedef struct fstmt {
  uint8_t kind;
  bool barrier;
  bool hoist;              /* a declaration emitted once, outside the loops */
  bool uniform;            /* a for whose header runs once */
  bool ucond;              /* its condition runs once (pass 0 decides) */
  bool structured;         /* in a list fission cuts */
  bool uupdate;            /* a uniform statement run once, outside the loops */
  bool ureturn;            /* `if (uniform) return;`: the whole group returns */
  uint32_t tb, te;         /* tokens [tb, te) */
  uint32_t c0, c1, s0, s1; /* condition; for: step */
  int a, b, init, next;    /* children: then/else, body (a); block: first child */
} fstmt;

typedef struct fvar {
  uint32_t name, s0, s1, d0, d1, v0, v1; /* name token; specifiers, declarator, initializer */
  uint32_t decl_tb, scope_end;           /* the declaring statement's first token; scope end */
  uint8_t cls;
  bool array;
  int regions; /* regions that declare or use it */
} fvar;

typedef struct fx {
  const char *src;
  const kiln__kfunc *f;
  ftok tok[MAX_TOKENS];
  uint32_t nt, pos;
  fstmt st[MAX_STMTS];
  int ns;
  fvar var[MAX_VARS];
  int nv;
  int loops[MAX_DEPTH]; /* enclosing loops while parsing */
  int nloops;
  int jumps[64][2]; /* break/continue: token, target loop */
  int njumps;
  uint32_t macros[MAX_MACROS][2]; /* names #define'd in the source (offsets) */
  int nmacros;
  bool macros_overflow, helper_ids, failed;
  kiln__lchain locals;        /* the body's local arrays written so far (pass 1) */
  uint32_t demoted[MAX_VARS]; /* names (tokens) that proved not uniform: pass 0 again */
  int ndemoted;
  bool redo;
  char why[200];
  int pass, nbarriers, ncond;
  kiln__sink *s;
} fx;

static bool fail(fx *x, uint32_t t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(fx *x, uint32_t t, const char *fmt, ...) {
  if (x->failed)
    return false;
  x->failed = true;
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  uint32_t line = t < x->nt ? x->tok[t].line : (x->nt ? x->tok[x->nt - 1].line : 0);
  snprintf(x->why, sizeof x->why, "fibers: line %u: %s", line, what);
  return false;
}

static void put_span(kiln__sink *s, const char *src, size_t b, size_t e) {
  kiln__sink_put(s, "%.*s", (int)(e - b), src + b);
}

/* ------------------------------------------------------------ tokens */
static bool id_start(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool id_char(char c) {
  return id_start(c) || (c >= '0' && c <= '9');
}

static const char *const puncts3[] = {"...", "<<=", ">>="};
static const char *const puncts2[] = {"->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&",
                                      "||", "*=", "/=", "%=", "+=", "-=", "&=", "^=", "|=", "##"};

static bool tokenize(fx *x, size_t b, size_t e) {
  const char *s = x->src;
  uint32_t line = 1;
  for (size_t i = 0; i < b; i++)
    line += s[i] == '\n';
  bool line_start = false;
  size_t i = b;
  while (i < e) {
    char c = s[i];
    if (c == '\n') {
      line++;
      line_start = true;
      i++;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      i++;
      continue;
    }
    if (c == '\\' && i + 1 < e && (s[i + 1] == '\n' || s[i + 1] == '\r')) {
      i++;
      continue;
    }
    if (c == '/' && i + 1 < e && s[i + 1] == '/') {
      while (i < e && s[i] != '\n')
        i++;
      continue;
    }
    if (c == '/' && i + 1 < e && s[i + 1] == '*') {
      i += 2;
      while (i + 1 < e && !(s[i] == '*' && s[i + 1] == '/')) {
        line += s[i] == '\n';
        i++;
      }
      i += 2;
      continue;
    }
    if (x->nt == MAX_TOKENS)
      return fail(x, x->nt, "the body is longer than %u tokens", MAX_TOKENS);
    if (c == '#' && line_start)
      return fail(x, x->nt, "a preprocessor directive inside the body");
    line_start = false;
    ftok *t = &x->tok[x->nt];
    t->b = (uint32_t)i;
    t->line = line;
    if (id_start(c)) {
      while (i < e && id_char(s[i]))
        i++;
      t->kind = T_ID;
    } else if ((c >= '0' && c <= '9') ||
               (c == '.' && i + 1 < e && s[i + 1] >= '0' && s[i + 1] <= '9')) {
      i++;
      while (i < e && (id_char(s[i]) || s[i] == '.' ||
                       ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E' ||
                                                         s[i - 1] == 'p' || s[i - 1] == 'P'))))
        i++;
      t->kind = T_NUM;
    } else if (c == '"' || c == '\'') {
      i++;
      while (i < e && s[i] != c && s[i] != '\n')
        i += s[i] == '\\' ? 2 : 1;
      i++;
      t->kind = T_STR;
    } else {
      size_t n = 1;
      for (size_t k = 0; k < sizeof puncts3 / sizeof *puncts3 && n == 1; k++)
        if (i + 3 <= e && !memcmp(s + i, puncts3[k], 3))
          n = 3;
      for (size_t k = 0; k < sizeof puncts2 / sizeof *puncts2 && n == 1; k++)
        if (i + 2 <= e && !memcmp(s + i, puncts2[k], 2))
          n = 2;
      i += n;
      t->kind = T_PUNCT;
    }
    t->e = (uint32_t)(i < e ? i : e);
    x->nt++;
  }
  return true;
}

static bool is(const fx *x, uint32_t t, const char *w) {
  if (t >= x->nt)
    return false;
  size_t n = strlen(w);
  return x->tok[t].e - x->tok[t].b == n && !memcmp(x->src + x->tok[t].b, w, n);
}

static bool same(const fx *x, uint32_t a, uint32_t b) {
  uint32_t n = x->tok[a].e - x->tok[a].b;
  return x->tok[b].e - x->tok[b].b == n && !memcmp(x->src + x->tok[a].b, x->src + x->tok[b].b, n);
}

static bool is_id(const fx *x, uint32_t t) {
  return t < x->nt && x->tok[t].kind == T_ID;
}

static bool word_in(const fx *x, uint32_t t, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (is(x, t, list[i]))
      return true;
  return false;
}

static const char *const type_words[] = {
    "void",       "char",        "short",         "int",      "long",      "float",
    "double",     "signed",      "unsigned",      "_Bool",    "bool",      "const",
    "volatile",   "restrict",    "static",        "register", "auto",      "struct",
    "union",      "enum",        "_Thread_local", "size_t",   "ptrdiff_t", "uchar",
    "ushort",     "uint",        "ulong",         "int8_t",   "int16_t",   "int32_t",
    "int64_t",    "uint8_t",     "uint16_t",      "uint32_t", "uint64_t",  "intptr_t",
    "uintptr_t",  "kiln_i8",     "kiln_u8",       "kiln_i16", "kiln_u16",  "kiln_i32",
    "kiln_u32",   "kiln_i64",    "kiln_u64",      "kiln_f32", "kiln_f64",  "KILN_LOCAL_ARRAY",
    "KILN_LOCAL", "KILN_GLOBAL", "KILN_RESTRICT", "extern",   "typedef",   "__restrict"};
static const char *const stmt_words[] = {"if",      "else",  "for",      "while",  "do",
                                         "return",  "break", "continue", "switch", "case",
                                         "default", "goto",  "sizeof"};
static const char *const qualifiers[] = {"const",      "volatile",   "restrict",   "KILN_RESTRICT",
                                         "__restrict", "KILN_LOCAL", "KILN_GLOBAL"};

static bool type_word(const fx *x, uint32_t t) {
  return word_in(x, t, type_words, sizeof type_words / sizeof *type_words);
}

/* The matching ')' ']' '}' of the opener at t (x->nt when unbalanced). */
static uint32_t match(const fx *x, uint32_t t) {
  int depth = 0;
  for (uint32_t i = t; i < x->nt; i++) {
    if (x->tok[i].kind != T_PUNCT)
      continue;
    char c = x->src[x->tok[i].b];
    if (x->tok[i].e - x->tok[i].b != 1)
      continue;
    if (c == '(' || c == '[' || c == '{')
      depth++;
    else if ((c == ')' || c == ']' || c == '}') && --depth == 0)
      return i;
  }
  return x->nt;
}

/* The first `c` at bracket depth 0 in [t, end) (end when none). */
static uint32_t find0(const fx *x, uint32_t t, uint32_t end, const char *c) {
  for (uint32_t i = t; i < end; i++) {
    if (is(x, i, c))
      return i;
    if (is(x, i, "(") || is(x, i, "[") || is(x, i, "{")) {
      i = match(x, i);
      if (i >= end)
        return end;
    }
  }
  return end;
}

/* Whether the token before t ends an operand (so a '&' or '*' at t is binary). */
static bool operand_before(const fx *x, uint32_t t, uint32_t lo) {
  if (t <= lo)
    return false;
  const ftok *p = &x->tok[t - 1];
  if (p->kind == T_NUM || p->kind == T_STR)
    return true;
  if (p->kind == T_ID)
    return !word_in(x, t - 1, stmt_words, sizeof stmt_words / sizeof *stmt_words);
  return is(x, t - 1, ")") || is(x, t - 1, "]");
}

static bool assign_op(const fx *x, uint32_t t) {
  static const char *const ops[] = {
      "=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="};
  return word_in(x, t, ops, sizeof ops / sizeof *ops);
}

/* Whether the identifier occurrence at t may change the variable it names: assigned,
 * incremented, its address taken, a member written, an element of an array. */
static bool writes_at(const fx *x, uint32_t t, uint32_t lo, bool array) {
  if (t > lo && (is(x, t - 1, "++") || is(x, t - 1, "--")))
    return true;
  uint32_t n = t + 1;
  if (t > lo && is(x, t - 1, "&") && !operand_before(x, t - 1, lo))
    return array || !(is(x, n, "[") || is(x, n, "->")); /* &p[i]: p itself stays */
  return assign_op(x, n) || is(x, n, "++") || is(x, n, "--") || is(x, n, ".") ||
         (array && is(x, n, "["));
}

static bool member_at(const fx *x, uint32_t t, uint32_t lo) {
  return t > lo && (is(x, t - 1, ".") || is(x, t - 1, "->"));
}

/* Whether the name at token `name` is written in [b, e) (its own declarator aside). */
static bool written(const fx *x, uint32_t name, uint32_t b, uint32_t e, bool array) {
  for (uint32_t i = b; i < e; i++)
    if (i != name && x->tok[i].kind == T_ID && same(x, i, name) && !member_at(x, i, b) &&
        writes_at(x, i, b, array))
      return true;
  return false;
}

static bool refers(const fx *x, uint32_t name, uint32_t b, uint32_t e) {
  for (uint32_t i = b; i < e; i++)
    if (x->tok[i].kind == T_ID && same(x, i, name) && !member_at(x, i, b))
      return true;
  return false;
}

static int param_of(const fx *x, uint32_t t) {
  size_t n = x->tok[t].e - x->tok[t].b;
  for (uint32_t i = 0; i < x->f->param_count; i++)
    if (strlen(x->f->params[i].name) == n && !memcmp(x->f->params[i].name, x->src + x->tok[t].b, n))
      return (int)i;
  return -1;
}

static int var_of(const fx *x, uint32_t t) {
  for (int i = x->nv - 1; i >= 0; i--)
    if (same(x, x->var[i].name, t))
      return i;
  return -1;
}

static bool is_macro(const fx *x, uint32_t t) {
  if (x->macros_overflow)
    return true;
  size_t n = x->tok[t].e - x->tok[t].b;
  for (int i = 0; i < x->nmacros; i++)
    if (x->macros[i][1] - x->macros[i][0] == n &&
        !memcmp(x->src + x->macros[i][0], x->src + x->tok[t].b, n))
      return true;
  return false;
}

/* ------------------------------------------------------------ statements */
static int new_stmt(fx *x, uint8_t kind, uint32_t tb) {
  if (x->ns == MAX_STMTS) {
    fail(x, tb, "more than %d statements", MAX_STMTS);
    return -1;
  }
  fstmt *s = &x->st[x->ns];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->tb = tb;
  s->a = s->b = s->init = s->next = -1;
  return x->ns++;
}

static bool starts_decl(const fx *x, uint32_t t) {
  if (type_word(x, t))
    return true;
  if (!is_id(x, t) || word_in(x, t, stmt_words, sizeof stmt_words / sizeof *stmt_words))
    return false;
  if (is_id(x, t + 1))
    return true; /* `real x` */
  return is(x, t + 1, "*") && is_id(x, t + 2) &&
         (is(x, t + 3, "=") || is(x, t + 3, ";") || is(x, t + 3, ",") || is(x, t + 3, "["));
}

static int parse_stmt(fx *x, int depth);

/* A break or continue at token t: its loop (a switch's own breaks are never parsed:
 * its body is one unit), which must not hold a barrier (checked after parsing). */
static bool jump(fx *x, uint32_t t) {
  int target = x->nloops ? x->loops[x->nloops - 1] : -1;
  if (target < 0)
    return fail(x, t, "a break or continue outside any loop");
  if (x->njumps == 64)
    return fail(x, t, "more than 64 break or continue statements");
  x->jumps[x->njumps][0] = (int)t;
  x->jumps[x->njumps][1] = target;
  x->njumps++;
  return true;
}

/* `( ... )` at x->pos: the inside as [*c0, *c1), pos after ')'. */
static bool paren(fx *x, uint32_t *c0, uint32_t *c1) {
  if (!is(x, x->pos, "("))
    return fail(x, x->pos, "expected '('");
  uint32_t close = match(x, x->pos);
  if (close >= x->nt)
    return fail(x, x->pos, "unbalanced '('");
  *c0 = x->pos + 1;
  *c1 = close;
  x->pos = close + 1;
  return true;
}

static int parse_body(fx *x, int self, int depth) {
  if (x->nloops == MAX_DEPTH) {
    fail(x, x->pos, "loops nested deeper than %d", MAX_DEPTH);
    return -1;
  }
  x->loops[x->nloops++] = self;
  int b = parse_stmt(x, depth + 1);
  x->nloops--;
  return b;
}

static int parse_simple(fx *x, uint32_t t, uint32_t end, uint8_t kind) {
  int i = new_stmt(x, kind, t);
  if (i < 0)
    return -1;
  x->st[i].te = end + 1;
  x->pos = end + 1;
  return i;
}

static int parse_stmt(fx *x, int depth) {
  uint32_t t = x->pos;
  if (x->failed)
    return -1;
  if (depth > MAX_DEPTH) {
    fail(x, t, "statements nested deeper than %d", MAX_DEPTH);
    return -1;
  }
  if (t >= x->nt) {
    fail(x, t, "unexpected end of the body");
    return -1;
  }
  int i;
  if (is(x, t, "{")) {
    if ((i = new_stmt(x, S_BLOCK, t)) < 0)
      return -1;
    x->pos++;
    int last = -1;
    while (x->pos < x->nt && !is(x, x->pos, "}")) {
      int c = parse_stmt(x, depth + 1);
      if (c < 0)
        return -1;
      if (last < 0)
        x->st[i].a = c;
      else
        x->st[last].next = c;
      x->st[i].barrier |= x->st[c].barrier;
      last = c;
    }
    if (x->pos >= x->nt) {
      fail(x, t, "unbalanced '{'");
      return -1;
    }
    x->st[i].te = ++x->pos;
    return i;
  }
  if (is(x, t, ";"))
    return parse_simple(x, t, t, S_EMPTY);
  if (is(x, t, "if")) {
    if ((i = new_stmt(x, S_IF, t)) < 0)
      return -1;
    x->pos++;
    if (!paren(x, &x->st[i].c0, &x->st[i].c1))
      return -1;
    int a = parse_stmt(x, depth + 1), b = -1;
    if (a < 0)
      return -1;
    if (is(x, x->pos, "else")) {
      x->pos++;
      if ((b = parse_stmt(x, depth + 1)) < 0)
        return -1;
    }
    x->st[i].a = a;
    x->st[i].b = b;
    x->st[i].barrier = x->st[a].barrier || (b >= 0 && x->st[b].barrier);
    x->st[i].te = x->pos;
    return i;
  }
  if (is(x, t, "for")) {
    if ((i = new_stmt(x, S_FOR, t)) < 0)
      return -1;
    x->pos++;
    uint32_t p0 = 0, p1 = 0;
    if (!paren(x, &p0, &p1))
      return -1;
    uint32_t sc1 = find0(x, p0, p1, ";");
    uint32_t sc2 = sc1 < p1 ? find0(x, sc1 + 1, p1, ";") : p1;
    if (sc2 >= p1) {
      fail(x, t, "a for statement without two ';'");
      return -1;
    }
    if (sc1 > p0) {
      int in = new_stmt(x, starts_decl(x, p0) ? S_DECL : S_EXPR, p0);
      if (in < 0)
        return -1;
      x->st[in].te = sc1 + 1;
      x->st[i].init = in;
    }
    x->st[i].c0 = sc1 + 1;
    x->st[i].c1 = sc2;
    x->st[i].s0 = sc2 + 1;
    x->st[i].s1 = p1;
    int body = parse_body(x, i, depth);
    if (body < 0)
      return -1;
    x->st[i].a = body;
    x->st[i].barrier = x->st[body].barrier;
    x->st[i].te = x->pos;
    return i;
  }
  if (is(x, t, "while")) {
    if ((i = new_stmt(x, S_WHILE, t)) < 0)
      return -1;
    x->pos++;
    if (!paren(x, &x->st[i].c0, &x->st[i].c1))
      return -1;
    int body = parse_body(x, i, depth);
    if (body < 0)
      return -1;
    x->st[i].a = body;
    x->st[i].barrier = x->st[body].barrier;
    x->st[i].te = x->pos;
    return i;
  }
  if (is(x, t, "do")) {
    if ((i = new_stmt(x, S_DO, t)) < 0)
      return -1;
    x->pos++;
    int body = parse_body(x, i, depth);
    if (body < 0)
      return -1;
    if (!is(x, x->pos, "while")) {
      fail(x, x->pos, "a do statement without while");
      return -1;
    }
    x->pos++;
    if (!paren(x, &x->st[i].c0, &x->st[i].c1))
      return -1;
    if (!is(x, x->pos, ";")) {
      fail(x, x->pos, "expected ';' after do ... while (...)");
      return -1;
    }
    x->pos++;
    x->st[i].a = body;
    x->st[i].barrier = x->st[body].barrier;
    x->st[i].te = x->pos;
    return i;
  }
  if (is(x, t, "break") || is(x, t, "continue")) {
    if (!is(x, t + 1, ";")) {
      fail(x, t, "expected ';' after break or continue");
      return -1;
    }
    if (!jump(x, t))
      return -1;
    return parse_simple(x, t, t + 1, S_JUMP);
  }
  if (is(x, t, "switch")) {
    x->pos++;
    uint32_t c0 = 0, c1 = 0;
    if (!paren(x, &c0, &c1))
      return -1;
    if (!is(x, x->pos, "{")) {
      fail(x, x->pos, "a switch without braces");
      return -1;
    }
    uint32_t close = match(x, x->pos);
    if (close >= x->nt) {
      fail(x, x->pos, "unbalanced '{'");
      return -1;
    }
    for (uint32_t k = x->pos; k < close; k++) {
      if (is(x, k, "kiln_barrier")) {
        fail(x, k, "a barrier inside a switch");
        return -1;
      }
      if (is(x, k, "continue") && !jump(x, k))
        return -1;
    }
    return parse_simple(x, t, close, S_EXPR);
  }
  if (is(x, t, "goto") || is(x, t, "case") || is(x, t, "default") || is(x, t, "else") ||
      (is_id(x, t) && is(x, t + 1, ":"))) {
    fail(x, t, "goto, a label or a stray '%.*s'", (int)(x->tok[t].e - x->tok[t].b),
         x->src + x->tok[t].b);
    return -1;
  }
  if (is(x, t, "kiln_barrier")) {
    if (!is(x, t + 1, "(") || !is(x, t + 2, ")") || !is(x, t + 3, ";")) {
      fail(x, t, "kiln_barrier inside an expression");
      return -1;
    }
    if ((i = parse_simple(x, t, t + 3, S_BARRIER)) >= 0) {
      x->st[i].barrier = true;
      x->nbarriers++;
    }
    return i;
  }
  uint32_t end = find0(x, t, x->nt, ";");
  if (end >= x->nt) {
    fail(x, t, "a statement without ';'");
    return -1;
  }
  uint8_t kind = is(x, t, "return") ? S_RETURN : starts_decl(x, t) ? S_DECL : S_EXPR;
  return parse_simple(x, t, end, kind);
}

/* ------------------------------------------------------------ variables */
static bool has_word(const fx *x, uint32_t b, uint32_t e, const char *w) {
  for (uint32_t i = b; i < e; i++)
    if (is(x, i, w))
      return true;
  return false;
}

static bool var_in_scope(const fvar *v, uint32_t b, uint32_t e) {
  return v->decl_tb < b && e <= v->scope_end;
}

/* Whether the tokens [b, e) are an expression evaluated the same by every work-item
 * (remat: or recomputable by each, from its ids) with no effect and no memory read:
 * literals, parameters, uniform (remat: and recomputable) variables, the id functions,
 * operators; `extra` (a for statement's own variables) counts as uniform. */
static bool pure_expr(const fx *x, uint32_t b, uint32_t e, bool remat, uint32_t eb, uint32_t ee) {
  for (uint32_t i = b; i < e; i++) {
    const ftok *t = &x->tok[i];
    if (t->kind == T_STR)
      return false;
    if (t->kind == T_PUNCT) {
      if (is(x, i, "[") || is(x, i, "->") || is(x, i, ".") || is(x, i, "{") || is(x, i, "=") ||
          assign_op(x, i) || is(x, i, "++") || is(x, i, "--"))
        return false;
      if (is(x, i, "*") && !operand_before(x, i, b))
        return false; /* a dereference */
      continue;
    }
    if (t->kind != T_ID)
      continue;
    if (is(x, i, "kiln_group_id") || is(x, i, "kiln_local_size") || is(x, i, "kiln_num_groups") ||
        is(x, i, "kiln_global_size"))
      continue;
    if (is(x, i, "kiln_local_id") || is(x, i, "kiln_global_id")) {
      if (!remat)
        return false;
      continue;
    }
    if (type_word(x, i) || is(x, i, "sizeof"))
      continue;
    bool extra = false;
    for (uint32_t k = eb; k < ee && !extra; k++)
      extra = x->tok[k].kind == T_ID && same(x, k, i);
    if (extra)
      continue;
    if (param_of(x, i) >= 0)
      continue;
    int v = var_of(x, i);
    if (v >= 0) {
      if (x->var[v].cls == V_UNIFORM || (!remat && x->var[v].cls == V_UMUT) ||
          (remat && x->var[v].cls == V_REMAT))
        continue;
      return false;
    }
    if (is(x, i + 1, "(") || is_macro(x, i))
      return false; /* a call, or a macro that may read anything */
    /* a global constant or an enumerator */
  }
  return true;
}

static bool qualifier(const fx *x, uint32_t t) {
  return word_in(x, t, qualifiers, sizeof qualifiers / sizeof *qualifiers);
}

static bool is_demoted(const fx *x, uint32_t name) {
  for (int i = 0; i < x->ndemoted; i++)
    if (same(x, x->demoted[i], name))
      return true;
  return false;
}

/* The one variable the expression statement s writes (its name's token), x->nt when
 * it writes none, x->nt + 1 when more than one or through '&' or a member. */
static uint32_t written_by(const fx *x, const fstmt *s) {
  uint32_t w = x->nt;
  for (uint32_t t = s->tb; t < s->te; t++) {
    if (x->tok[t].kind != T_ID || member_at(x, t, s->tb) || !writes_at(x, t, s->tb, false))
      continue;
    bool plain = assign_op(x, t + 1) || is(x, t + 1, "++") || is(x, t + 1, "--") ||
                 (t > s->tb && (is(x, t - 1, "++") || is(x, t - 1, "--")));
    if (!plain || (w < x->nt && !same(x, w, t)))
      return x->nt + 1;
    w = t;
  }
  return w;
}

/* Whether every write of the variable named at `name` is a structured expression
 * statement that writes it alone (candidates for V_UMUT). */
static bool writes_structured(const fx *x, uint32_t name) {
  for (uint32_t t = 0; t < x->nt; t++) {
    if (t == name || x->tok[t].kind != T_ID || !same(x, t, name) || member_at(x, t, 0) ||
        !writes_at(x, t, 0, false))
      continue;
    bool ok = false;
    for (int i = 0; i < x->ns && !ok; i++) {
      const fstmt *s = &x->st[i];
      if (s->structured && s->kind == S_EXPR && s->tb <= t && t < s->te) {
        uint32_t w = written_by(x, s);
        ok = w < x->nt && same(x, w, name);
      }
    }
    if (!ok)
      return false;
  }
  return true;
}

/* Parse the declaration statement d (at the structured level, scope ending at
 * scope_end) into variables, classify them; hoist it when every one is uniform or
 * it is static. */
static bool collect(fx *x, int d, uint32_t scope_end) {
  fstmt *s = &x->st[d];
  uint32_t b = s->tb, e = s->te - 1; /* without ';' */
  uint32_t p = b;
  while (p < e && x->tok[p].kind == T_ID)
    p++;
  if (p < e && !(is(x, p, "*") || is(x, p, "=") || is(x, p, ",") || is(x, p, "[")))
    return fail(x, p, "a declaration kiln cannot take apart");
  uint32_t spec_end = is(x, p, "*") ? p : p - 1;
  if (spec_end == b)
    return fail(x, b, "a declaration without a type");
  bool is_static =
      has_word(x, b, spec_end, "static") || has_word(x, b, spec_end, "KILN_LOCAL_ARRAY");
  if (has_word(x, b, spec_end, "typedef") || has_word(x, b, spec_end, "extern"))
    return fail(x, b, "a typedef or extern declaration");
  bool all_uniform = true;
  uint32_t c = spec_end;
  while (c < e) {
    uint32_t next = find0(x, c, e, ",");
    uint32_t eq = find0(x, c, next, "=");
    uint32_t name = x->nt;
    bool array = false;
    for (uint32_t k = c; k < eq; k++) {
      if (is(x, k, "(") || is(x, k, "{"))
        return fail(x, k, "a declarator with parentheses");
      if (is(x, k, "[")) {
        array = true;
        for (uint32_t q = k; q < match(x, k); q++)
          if (x->tok[q].kind == T_ID && (param_of(x, q) >= 0 || var_of(x, q) >= 0))
            return fail(x, q, "an array whose size is a variable");
        k = match(x, k);
        continue;
      }
      if (x->tok[k].kind == T_ID && !qualifier(x, k) && name == x->nt)
        name = k;
    }
    if (name == x->nt)
      return fail(x, c, "a declarator without a name");
    if (var_of(x, name) >= 0)
      return fail(x, name, "'%.*s' is declared twice", (int)(x->tok[name].e - x->tok[name].b),
                  x->src + x->tok[name].b);
    if (param_of(x, name) >= 0)
      return fail(x, name, "a variable named as a parameter");
    if (x->nv == MAX_VARS)
      return fail(x, name, "more than %d variables", MAX_VARS);
    fvar *v = &x->var[x->nv];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->s0 = b;
    v->s1 = spec_end;
    v->d0 = c;
    v->d1 = eq;
    v->v0 = eq < next ? eq + 1 : next;
    v->v1 = next;
    v->decl_tb = s->tb;
    v->scope_end = scope_end;
    v->array = array;
    v->cls = V_LOCAL;
    if (is_static) {
      v->cls = V_STATIC;
    } else if (!array && v->v0 < v->v1 && !written(x, name, 0, x->nt, false)) {
      /* the variable must exist for pure_expr to see the earlier ones only */
      if (pure_expr(x, v->v0, v->v1, false, 0, 0))
        v->cls = V_UNIFORM;
      else if (pure_expr(x, v->v0, v->v1, true, 0, 0))
        v->cls = V_REMAT;
    } else if (!array && v->v0 < v->v1 && !is_demoted(x, name) &&
               pure_expr(x, v->v0, v->v1, false, 0, 0) && writes_structured(x, name)) {
      v->cls = V_UMUT; /* its updates are checked uniform where seq meets them */
    }
    all_uniform = all_uniform && (v->cls == V_UNIFORM || v->cls == V_UMUT || v->cls == V_STATIC);
    x->nv++;
    c = next < e ? next + 1 : e;
  }
  s->hoist = all_uniform;
  for (int i = 0; i < x->nv && !all_uniform; i++) { /* it stays in a region: per item */
    if (x->var[i].decl_tb == s->tb && x->var[i].cls == V_UNIFORM)
      x->var[i].cls = V_REMAT;
    else if (x->var[i].decl_tb == s->tb && x->var[i].cls == V_UMUT)
      x->var[i].cls = V_LOCAL;
  }
  return true;
}

/* ------------------------------------------------------------ emission */
static void put_line(fx *x, uint32_t t) {
  kiln__sink_put(x->s, "\n#line %u \"<source>\"\n", x->tok[t].line);
}

/* Source text of tokens [b, e); `ret` replaces each `return` with a jump to the end of
 * the work-item's region. */
static void put_tokens(fx *x, uint32_t b, uint32_t e, bool ret) {
  if (b >= e)
    return;
  uint32_t from = x->tok[b].b;
  for (uint32_t i = b; i < e && ret; i++)
    if (is(x, i, "return")) {
      put_span(x->s, x->src, from, x->tok[i].b);
      kiln__sink_put(x->s, "goto kiln__next");
      from = x->tok[i].e;
    }
  put_span(x->s, x->src, from, x->tok[e - 1].e);
}

/* The type of v's per-work-item copy: its specifiers and declarator without a storage
 * class and without the const that qualifies the variable itself (a pointee's stays). */
static void put_type(fx *x, const fvar *v, const char *name_prefix) {
  uint32_t last_star = v->d0;
  bool pointer = false;
  for (uint32_t i = v->d0; i < v->d1; i++)
    if (is(x, i, "*")) {
      last_star = i;
      pointer = true;
    }
  for (uint32_t i = v->s0; i < v->s1; i++)
    if (!(is(x, i, "const") && !pointer) && !is(x, i, "register") && !is(x, i, "auto"))
      kiln__sink_put(x->s, "%.*s ", (int)(x->tok[i].e - x->tok[i].b), x->src + x->tok[i].b);
  for (uint32_t i = v->d0; i < v->d1; i++) {
    if (i == v->name)
      kiln__sink_put(x->s, "%s%s_%.*s ", name_prefix, x->f->name, (int)(x->tok[i].e - x->tok[i].b),
                     x->src + x->tok[i].b);
    else if (!(is(x, i, "const") && i > last_star))
      kiln__sink_put(x->s, "%.*s ", (int)(x->tok[i].e - x->tok[i].b), x->src + x->tok[i].b);
  }
}

static void vname(fx *x, const fvar *v) {
  kiln__sink_put(x->s, "%.*s", (int)(x->tok[v->name].e - x->tok[v->name].b),
                 x->src + x->tok[v->name].b);
}

static void wi_open(fx *x) {
  kiln__sink_put(x->s,
                 " for (size_t kiln__z = 0; kiln__z < kiln__l2; kiln__z++)"
                 " for (size_t kiln__y = 0; kiln__y < kiln__l1; kiln__y++)"
                 " for (size_t kiln__x = 0, kiln__i = (kiln__z * kiln__l1 + kiln__y) * kiln__l0;"
                 " kiln__x < kiln__l0; kiln__x++, kiln__i++) {");
  if (x->helper_ids)
    kiln__sink_put(
        x->s, " kiln__w->lid[0] = kiln__x; kiln__w->lid[1] = kiln__y; kiln__w->lid[2] = kiln__z;");
}

/* One region: the statements first..last (siblings; hoisted ones skipped) or, with
 * first < 0, the tokens [pb, pe) as a condition (cond) or an expression statement. */
static void region(fx *x, int first, int last, uint32_t pb, uint32_t pe, bool cond, bool final) {
  uint32_t b = first >= 0 ? x->st[first].tb : pb;
  uint32_t e = first >= 0 ? x->st[last].te : pe;
  bool work = first < 0;
  for (int i = first; i >= 0 && !work; i = i == last ? -1 : x->st[i].next)
    work = !x->st[i].hoist && x->st[i].kind != S_EMPTY;
  if (!work)
    return; /* only declarations emitted once */
  if (x->pass == 0) {
    if (!final && has_word(x, b, e, "return"))
      fail(x, b, "a return before the last barrier");
    for (int i = 0; i < x->nv; i++) {
      fvar *v = &x->var[i];
      bool here = v->decl_tb >= b && v->decl_tb < e;
      if (here || (var_in_scope(v, b, e) && refers(x, v->name, b, e)))
        v->regions++;
    }
    return;
  }
  wi_open(x);
  for (int i = 0; i < x->nv; i++) {
    const fvar *v = &x->var[i];
    if (!var_in_scope(v, b, e))
      continue;
    if (v->cls == V_REMAT) {
      kiln__sink_put(x->s, " ");
      put_tokens(x, v->s0, v->s1, false);
      kiln__sink_put(x->s, " ");
      put_tokens(x, v->d0, v->d1, false);
      kiln__sink_put(x->s, " = ");
      put_tokens(x, v->v0, v->v1, false);
      kiln__sink_put(x->s, ";");
    } else if (v->cls == V_PROMOTED && refers(x, v->name, b, e)) {
      kiln__sink_put(x->s, " kiln__T_%s_", x->f->name);
      vname(x, v);
      kiln__sink_put(x->s, " ");
      vname(x, v);
      if (v->array) {
        kiln__sink_put(x->s, "; __builtin_memcpy(&");
        vname(x, v);
        kiln__sink_put(x->s, ", &kiln__P_");
        vname(x, v);
        kiln__sink_put(x->s, "[kiln__i], sizeof ");
        vname(x, v);
        kiln__sink_put(x->s, ");");
      } else {
        kiln__sink_put(x->s, " = kiln__P_");
        vname(x, v);
        kiln__sink_put(x->s, "[kiln__i];");
      }
    }
  }
  if (final)
    kiln__sink_put(x->s, " {");
  if (first >= 0) {
    for (int i = first;; i = x->st[i].next) {
      if (!x->st[i].hoist) {
        put_line(x, x->st[i].tb);
        put_tokens(x, x->st[i].tb, x->st[i].te, final);
      }
      if (i == last)
        break;
    }
  } else if (cond) {
    kiln__sink_put(x->s, " { const int kiln__c = !!(");
    put_line(x, pb);
    put_tokens(x, pb, pe, false);
    kiln__sink_put(x->s, "); kiln__any |= kiln__c; kiln__all &= kiln__c; }");
  } else {
    put_line(x, pb);
    put_tokens(x, pb, pe, false);
    kiln__sink_put(x->s, ";");
  }
  if (final)
    kiln__sink_put(x->s, " } kiln__next: ;");
  for (int i = 0; i < x->nv && !final; i++) {
    const fvar *v = &x->var[i];
    if (v->cls != V_PROMOTED)
      continue;
    bool here = v->decl_tb >= b && v->decl_tb < e;
    if (!here && !(var_in_scope(v, b, e) && refers(x, v->name, b, e) &&
                   (v->array || written(x, v->name, b, e, v->array))))
      continue;
    if (v->array) {
      kiln__sink_put(x->s, " __builtin_memcpy(&kiln__P_");
      vname(x, v);
      kiln__sink_put(x->s, "[kiln__i], &");
      vname(x, v);
      kiln__sink_put(x->s, ", sizeof ");
      vname(x, v);
      kiln__sink_put(x->s, ");");
    } else {
      kiln__sink_put(x->s, " kiln__P_");
      vname(x, v);
      kiln__sink_put(x->s, "[kiln__i] = ");
      vname(x, v);
      kiln__sink_put(x->s, ";");
    }
  }
  kiln__sink_put(x->s, " }");
}

/* A condition at the structured level: uniform ones are evaluated once; others per
 * work-item into kiln__cN, checked to agree. Returns N, or -1 for a uniform one. */
static int condition(fx *x, fstmt *s) {
  /* decided once: in pass 1 later declarations are known and could shadow a global */
  if (x->pass == 0)
    s->ucond = pure_expr(x, s->c0, s->c1, false, 0, 0);
  if (s->ucond)
    return -1;
  int n = x->ncond++;
  if (x->pass == 0) {
    region(x, -1, -1, s->c0, s->c1, true, false);
    return n;
  }
  kiln__sink_put(x->s, " int kiln__c%d; { int kiln__any = 0, kiln__all = 1;", n);
  region(x, -1, -1, s->c0, s->c1, true, false);
  kiln__sink_put(x->s, " if (kiln__any != kiln__all) return 1; kiln__c%d = kiln__any; }", n);
  return n;
}

static void put_cond(fx *x, int n, uint32_t c0, uint32_t c1) {
  if (n >= 0) {
    kiln__sink_put(x->s, "kiln__c%d", n);
    return;
  }
  put_line(x, c0);
  kiln__sink_put(x->s, "(");
  put_tokens(x, c0, c1, false);
  kiln__sink_put(x->s, ")");
}

static void seq(fx *x, int head, uint32_t scope_end, bool top);

static void child(fx *x, int c, uint32_t scope_end) {
  if (x->st[c].kind == S_BLOCK) {
    if (x->pass)
      kiln__sink_put(x->s, " {");
    if (x->st[c].a >= 0)
      seq(x, x->st[c].a, x->st[c].te - 1, false);
    if (x->pass)
      kiln__sink_put(x->s, " }");
  } else {
    seq(x, c, scope_end, false);
  }
}

/* Whether for statement i runs its header once: a declaration of its own uniform
 * variables, a uniform condition, a step that changes only them, and a body that
 * never writes them. */
static bool uniform_for(fx *x, int i) {
  const fstmt *s = &x->st[i];
  if (s->init < 0 || x->st[s->init].kind != S_DECL)
    return false;
  uint32_t ib = x->st[s->init].tb, ie = x->st[s->init].te - 1;
  uint32_t p = ib;
  while (p < ie && x->tok[p].kind == T_ID)
    p++;
  if (p == ie || p == ib || !is(x, p, "="))
    return false;
  uint32_t name = p - 1;
  if (find0(x, p, ie, ",") != ie || !pure_expr(x, p + 1, ie, false, 0, 0))
    return false;
  if (has_word(x, ib, name, "static") || var_of(x, name) >= 0 || param_of(x, name) >= 0)
    return false;
  if (!pure_expr(x, s->c0, s->c1, false, name, name + 1))
    return false;
  /* the step: operators on the variable, uniform operands */
  for (uint32_t k = s->s0; k < s->s1; k++) {
    if (x->tok[k].kind != T_ID)
      continue;
    if (same(x, k, name))
      continue;
    if (writes_at(x, k, s->s0, false) || !pure_expr(x, k, k + 1, false, name, name + 1))
      return false;
  }
  for (uint32_t k = s->s0; k < s->s1; k++)
    if (is(x, k, "[") || is(x, k, "->") || (is(x, k, "*") && !operand_before(x, k, s->s0)) ||
        (is(x, k, "(") && k > s->s0 && is_id(x, k - 1)))
      return false;
  const fstmt *body = &x->st[s->a];
  return !written(x, name, body->tb, body->te, false);
}

static void stmt_barrier(fx *x, int i, uint32_t scope_end) {
  fstmt *s = &x->st[i];
  switch (s->kind) {
  case S_BARRIER:
    return;
  case S_BLOCK:
    child(x, i, scope_end);
    return;
  case S_IF: {
    int n = condition(x, s);
    if (x->pass) {
      kiln__sink_put(x->s, " if (");
      put_cond(x, n, s->c0, s->c1);
      kiln__sink_put(x->s, ") {");
    }
    child(x, s->a, s->te);
    if (x->pass)
      kiln__sink_put(x->s, " } else {");
    if (s->b >= 0)
      child(x, s->b, s->te);
    if (x->pass)
      kiln__sink_put(x->s, " }");
    return;
  }
  case S_FOR:
    if (x->pass == 0)
      s->uniform = uniform_for(x, i);
    if (s->uniform) {
      if (x->pass) {
        put_line(x, s->tb);
        kiln__sink_put(x->s, " for (");
        put_tokens(x, x->st[s->init].tb, s->s1, false);
        kiln__sink_put(x->s, ") {");
      }
      child(x, s->a, s->te);
      if (x->pass)
        kiln__sink_put(x->s, " }");
      return;
    }
    if (x->pass)
      kiln__sink_put(x->s, " {");
    if (s->init >= 0)
      seq(x, s->init, s->te, false);
    if (x->pass)
      kiln__sink_put(x->s, " for (;;) {");
    if (s->c1 > s->c0) {
      int n = condition(x, s);
      if (x->pass) {
        kiln__sink_put(x->s, " if (!");
        put_cond(x, n, s->c0, s->c1);
        kiln__sink_put(x->s, ") break;");
      }
    }
    child(x, s->a, s->te);
    if (s->s1 > s->s0)
      region(x, -1, -1, s->s0, s->s1, false, false);
    if (x->pass)
      kiln__sink_put(x->s, " } }");
    return;
  case S_WHILE:
  case S_DO: {
    if (x->pass)
      kiln__sink_put(x->s, " for (;;) {");
    if (s->kind == S_DO)
      child(x, s->a, s->te);
    int n = condition(x, s);
    if (x->pass) {
      kiln__sink_put(x->s, " if (!");
      put_cond(x, n, s->c0, s->c1);
      kiln__sink_put(x->s, ") break;");
    }
    if (s->kind == S_WHILE)
      child(x, s->a, s->te);
    if (x->pass)
      kiln__sink_put(x->s, " }");
    return;
  }
  default:
    fail(x, s->tb, "a barrier kiln cannot place");
  }
}

/* Pass 0: whether the expression statement s is an update of a V_UMUT variable by
 * uniform values (then it runs once); an update by anything else demotes the variable
 * and asks for pass 0 again. */
static void uniform_update(fx *x, fstmt *s) {
  s->uupdate = false;
  uint32_t w = written_by(x, s);
  int v = w < x->nt ? var_of(x, w) : -1;
  if (v < 0 || x->var[v].cls != V_UMUT)
    return;
  bool pure = true;
  for (uint32_t t = s->tb; t + 1 < s->te && pure; t++) { /* the ';' aside */
    if ((x->tok[t].kind == T_ID && same(x, t, w)) || assign_op(x, t) || is(x, t, "++") ||
        is(x, t, "--"))
      continue;        /* written_by: w alone is written */
    if (is(x, t, "(")) /* a call, not a cast or grouping */
      pure = !(t > s->tb && is_id(x, t - 1) && !type_word(x, t - 1) && !is(x, t - 1, "sizeof"));
    else
      pure =
          pure_expr(x, t, t + 1, false, 0, 0) && !(is(x, t, "*") && !operand_before(x, t, s->tb));
  }
  if (pure) {
    s->uupdate = true;
  } else if (x->ndemoted < MAX_VARS) {
    x->demoted[x->ndemoted++] = x->var[v].name;
    x->redo = true;
  } else {
    fail(x, s->tb, "too many variables to tell uniform");
  }
}

/* Whether the if statement s is `if (uniform condition) return;` (its branch a return,
 * alone or in braces). */
static bool uniform_return(fx *x, const fstmt *s) {
  const fstmt *a = &x->st[s->a];
  if (a->kind == S_BLOCK && a->a >= 0 && x->st[a->a].next < 0)
    a = &x->st[a->a];
  return a->kind == S_RETURN && a->te == a->tb + 2 && pure_expr(x, s->c0, s->c1, false, 0, 0);
}

/* Mark the statements of the lists fission cuts (as seq walks them). */
static void mark(fx *x, int head) {
  for (int i = head; i >= 0; i = x->st[i].next) {
    fstmt *s = &x->st[i];
    s->structured = true;
    if (!s->barrier)
      continue;
    if (s->kind == S_BLOCK && s->a >= 0) {
      mark(x, s->a);
    } else if (s->kind == S_IF) {
      mark(x, s->a);
      if (s->b >= 0)
        mark(x, s->b);
    } else if (s->kind == S_FOR || s->kind == S_WHILE || s->kind == S_DO) {
      if (s->init >= 0)
        mark(x, s->init);
      mark(x, s->a);
    }
  }
}

/* The statement list from head (siblings) at the structured level: barrier-free runs
 * become regions; declarations are taken apart (pass 0); hoisted ones emitted once. */
static void seq(fx *x, int head, uint32_t scope_end, bool top) {
  int first = -1, last = -1;
  for (int i = head; i >= 0 && !x->failed; i = x->st[i].next) {
    fstmt *s = &x->st[i];
    if (s->kind == S_DECL && x->pass == 0 && !collect(x, i, scope_end))
      return;
    if (s->kind == S_EXPR && x->pass == 0)
      uniform_update(x, s);
    if (s->kind == S_IF && x->pass == 0)
      s->ureturn = !s->barrier && s->b < 0 && uniform_return(x, s);
    if (s->ureturn) { /* every work-item or none: the group ends here */
      if (first >= 0)
        region(x, first, last, 0, 0, false, false);
      first = -1;
      if (x->pass) {
        put_line(x, s->c0);
        kiln__sink_put(x->s, " if (");
        put_tokens(x, s->c0, s->c1, false);
        kiln__sink_put(x->s, ") return 0;");
      }
      continue;
    }
    if (s->uupdate) { /* between the regions before and after it, once */
      if (first >= 0)
        region(x, first, last, 0, 0, false, false);
      first = -1;
      if (x->pass) {
        put_line(x, s->tb);
        put_tokens(x, s->tb, s->te, false);
      }
      continue;
    }
    if (!s->barrier) {
      if (s->hoist && x->pass && is(x, s->tb, "KILN_LOCAL_ARRAY")) {
        /* the group's storage, laid out as in the kernel's body (rewrite_c.c) */
        kiln__ldecl d = {x->tok[s->tb].b, x->tok[s->te - 1].e, false, true, false, false};
        put_line(x, s->tb);
        kiln__local_decl_c(x->s, x->src, x->tok[s->te - 1].e, &d, x->f->name, "kiln__w",
                           KILN__LDECL_FISSION, &x->locals);
      } else if (s->hoist && x->pass) {
        put_line(x, s->tb);
        put_tokens(x, s->tb, s->te, false);
      }
      if (first < 0)
        first = i;
      last = i;
      continue;
    }
    if (first >= 0)
      region(x, first, last, 0, 0, false, false);
    first = -1;
    stmt_barrier(x, i, scope_end);
  }
  if (first >= 0 && !x->failed)
    region(x, first, last, 0, 0, false, top);
}

/* ------------------------------------------------------------ the entry */
static void scan_macros(fx *x, size_t len) {
  const char *s = x->src;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '#' || (i && s[i - 1] != '\n' && s[i - 1] != ' ' && s[i - 1] != '\t'))
      continue;
    size_t k = i + 1;
    while (k < len && (s[k] == ' ' || s[k] == '\t'))
      k++;
    if (k + 6 > len || memcmp(s + k, "define", 6))
      continue;
    k += 6;
    while (k < len && (s[k] == ' ' || s[k] == '\t'))
      k++;
    size_t n0 = k;
    while (k < len && id_char(s[k]))
      k++;
    if (k == n0)
      continue;
    if (x->nmacros == MAX_MACROS) {
      x->macros_overflow = true;
      return;
    }
    x->macros[x->nmacros][0] = (uint32_t)n0;
    x->macros[x->nmacros][1] = (uint32_t)k;
    x->nmacros++;
  }
}

static const char *const id_macros[] = {"kiln_local_id",   "kiln_global_id",  "kiln_group_id",
                                        "kiln_local_size", "kiln_num_groups", "kiln_global_size"};

static void prologue(fx *x) {
  const kiln__kfunc *f = x->f;
  kiln__sink *s = x->s;
  kiln__sink_put(s, "\n#ifndef KILN__NO_FISSION\n");
  for (size_t i = 0; i < 6; i++)
    kiln__sink_put(s, "#pragma push_macro(\"%s\")\n#undef %s\n", id_macros[i], id_macros[i]);
  kiln__sink_put(
      s, "#define kiln_local_id(d) ((d) == 0 ? kiln__x : (d) == 1 ? kiln__y : kiln__z)\n"
         "#define kiln_global_id(d) ((d) == 0 ? kiln__o0 + kiln__x : (d) == 1 ? kiln__o1 + "
         "kiln__y : kiln__o2 + kiln__z)\n"
         "#define kiln_group_id(d) ((d) == 0 ? kiln__g0 : (d) == 1 ? kiln__g1 : kiln__g2)\n"
         "#define kiln_local_size(d) ((d) == 0 ? kiln__l0 : (d) == 1 ? kiln__l1 : kiln__l2)\n"
         "#define kiln_num_groups(d) ((d) == 0 ? kiln__n0 : (d) == 1 ? kiln__n1 : kiln__n2)\n"
         "#define kiln_global_size(d) ((d) == 0 ? kiln__s0 : (d) == 1 ? kiln__s1 : kiln__s2)\n");
  for (int i = 0; i < x->nv; i++) {
    if (x->var[i].cls != V_PROMOTED)
      continue;
    kiln__sink_put(s, "typedef ");
    put_type(x, &x->var[i], "kiln__T_");
    kiln__sink_put(s, ";\n");
  }
  kiln__sink_put(s, "size_t kiln__fbytes_%s(size_t kiln__n) { size_t kiln__b = 0;", f->name);
  for (int i = 0; i < x->nv; i++) {
    if (x->var[i].cls != V_PROMOTED)
      continue;
    kiln__sink_put(s, " kiln__b += (kiln__n * sizeof(kiln__T_%s_", f->name);
    vname(x, &x->var[i]);
    kiln__sink_put(s, ") + 63) & ~(size_t)63;");
  }
  kiln__sink_put(s, " return kiln__b; }\n");
  kiln__sink_put(
      s, "int kiln__fission_%s(kiln__wi *kiln__w, void *const *kiln__a, unsigned char *kiln__s) {",
      f->name); /* the backend made kiln__w the current record, for helpers */
  for (uint32_t i = 0; i < f->param_count; i++) {
    const kiln__kparam *p = &f->params[i];
    kiln__sink_put(s, " ");
    put_span(s, x->src, p->begin, p->end);
    if (p->kind == KILN_PARAM_SCALAR)
      kiln__sink_put(s, " = *(const %s *)kiln__a[%u];", p->type, i);
    else
      kiln__sink_put(s, " = kiln__a[%u];", i);
  }
  kiln__sink_put(s,
                 " const size_t kiln__l0 = kiln__w->lsz[0], kiln__l1 = kiln__w->lsz[1], kiln__l2 = "
                 "kiln__w->lsz[2];");
  for (int d = 0; d < 3; d++)
    kiln__sink_put(s,
                   " const size_t kiln__g%d = kiln__w->grp[%d], kiln__o%d = kiln__g%d * kiln__l%d,"
                   " kiln__n%d = kiln__w->ngr[%d], kiln__s%d = kiln__w->gsz[%d];",
                   d, d, d, d, d, d, d, d, d);
  kiln__sink_put(s, " const size_t kiln__n = kiln__l0 * kiln__l1 * kiln__l2; (void)kiln__n;");
  for (int i = 0; i < x->nv; i++) {
    if (x->var[i].cls != V_PROMOTED)
      continue;
    kiln__sink_put(s, " kiln__T_%s_", f->name);
    vname(x, &x->var[i]);
    kiln__sink_put(s, " *const restrict kiln__P_");
    vname(x, &x->var[i]);
    kiln__sink_put(s, " = (kiln__T_%s_", f->name);
    vname(x, &x->var[i]);
    kiln__sink_put(s, " *)(void *)kiln__s; kiln__s += (kiln__n * sizeof(kiln__T_%s_", f->name);
    vname(x, &x->var[i]);
    kiln__sink_put(s, ") + 63) & ~(size_t)63;");
  }
}

size_t kiln__fission_c(const char *src, size_t len, const kiln__kfunc *funcs, size_t count,
                       size_t k, char *out, size_t out_cap, char *why, size_t why_bytes) {
  /* about 60 KiB: on the stack, as the rest of the rewrite (no allocation) */
  fx storage;
  fx *x = &storage;
  memset(x, 0, sizeof *x);
  x->src = src;
  x->f = &funcs[k];
  kiln__sink s = {out, out_cap, 0};
  x->s = &s;
  size_t body_end = kiln__kernel_body_end(src, len, x->f->body_open);
  /* helpers and macros outside the kernels that read the work-item's ids need the
   * record's lid kept current */
  static const char *const per_item[] = {"kiln_local_id", "kiln_global_id", "kiln__wi_"};
  for (size_t i = 0; i < 3 && !x->helper_ids; i++)
    x->helper_ids = kiln__outside_kernels_has(src, len, funcs, count, per_item[i]);
  scan_macros(x, len);
  if (body_end < x->f->body_open + 2 || body_end > len) {
    fail(x, 0, "a body kiln cannot delimit");
  } else if (tokenize(x, x->f->body_open + 1, body_end - 1)) {
    x->pos = 0;
    int last = -1, head = -1;
    while (x->pos < x->nt && !x->failed) {
      int c = parse_stmt(x, 0);
      if (c < 0)
        break;
      if (last < 0)
        head = c;
      else
        x->st[last].next = c;
      last = c;
    }
    uint32_t uses = 0;
    for (uint32_t i = 0; i < x->nt; i++)
      uses += is(x, i, "kiln_barrier");
    if (!x->failed && uses != (uint32_t)x->nbarriers)
      fail(x, 0, "kiln_barrier used other than as a statement");
    if (!x->failed && !x->nbarriers)
      fail(x, 0, "no barrier in the body");
    for (int j = 0; j < x->njumps && !x->failed; j++)
      if (x->st[x->jumps[j][1]].barrier)
        fail(x, (uint32_t)x->jumps[j][0], "a break or continue in a loop with a barrier");
    for (uint32_t i = 0; i < x->f->param_count && !x->failed; i++)
      for (uint32_t t = 0; t < x->nt; t++)
        if (x->tok[t].kind == T_ID && param_of(x, t) == (int)i && !member_at(x, t, 0) &&
            writes_at(x, t, 0, false)) {
          fail(x, t, "parameter '%s' is assigned", x->f->params[i].name);
          break;
        }
    if (!x->failed && head >= 0)
      mark(x, head);
    /* pass 0 again whenever a variable taken for uniform proved not to be */
    for (int round = 0; !x->failed && head >= 0; round++) {
      x->pass = 0;
      x->nv = x->ncond = 0;
      x->redo = false;
      seq(x, head, x->nt, true);
      if (!x->redo || round > MAX_VARS)
        break;
      x->failed = false;
      x->why[0] = '\0';
    }
    /* what is live across regions, and what cannot be kept per work-item */
    int promoted = 0;
    for (int i = 0; i < x->nv && !x->failed; i++) {
      fvar *v = &x->var[i];
      if (v->cls == V_LOCAL && v->regions > 1) {
        v->cls = V_PROMOTED;
        promoted++;
      }
    }
    for (uint32_t t = 0; t < x->nt && !x->failed; t++) {
      if (x->tok[t].kind != T_ID || member_at(x, t, 0))
        continue;
      int v = var_of(x, t);
      if (v < 0 || x->var[v].cls == V_STATIC || t == x->var[v].name)
        continue;
      if (t > 0 && is(x, t - 1, "&") && !operand_before(x, t - 1, 0))
        fail(x, t, "the address of private variable '%.*s'", (int)(x->tok[t].e - x->tok[t].b),
             x->src + x->tok[t].b);
      else if (x->var[v].array && !is(x, t + 1, "[") && !(t > 0 && is(x, t - 1, "sizeof")))
        fail(x, t, "private array '%.*s' used as a pointer", (int)(x->tok[t].e - x->tok[t].b),
             x->src + x->tok[t].b);
    }
    if (!x->failed) {
      unsigned line, col;
      kiln__kparse_position(src, body_end - 1, &line, &col);
      x->pass = 1;
      x->ncond = 0;
      prologue(x);
      seq(x, head, x->nt, true);
      kiln__sink_put(&s, " return 0; }\n");
      for (size_t i = 0; i < 6; i++)
        kiln__sink_put(&s, "#pragma pop_macro(\"%s\")\n", id_macros[i]);
      snprintf(x->why, sizeof x->why,
               "loop fission: %d barrier%s, %d private variable%s kept per work-item", x->nbarriers,
               x->nbarriers == 1 ? "" : "s", promoted, promoted == 1 ? "" : "s");
      kiln__sink_put(&s, "const char kiln__why_%s[] = \"%s\";\n#else\n", x->f->name, x->why);
      kiln__sink_put(
          &s,
          "const char kiln__why_%s[] = \"fibers: the C of its loop fission did not compile (a "
          "kiln bug: please report it with the kernel)\";\n#endif\n",
          x->f->name);
      kiln__sink_put(&s, "#line %u \"<source>\"\n", line);
    }
  }
  for (char *c = x->why; *c; c++)
    if (*c == '"' || *c == '\\' || *c == '\n')
      *c = '\'';
  kiln__strlcpy(why, x->why, why_bytes);
  if (x->failed)
    return 0;
  if (out && out_cap)
    out[s.len < out_cap ? s.len : out_cap - 1] = '\0';
  return s.len;
}
