/* SPDX-License-Identifier: MIT */
/* Kernel signature parser (kparse.h). A small lexer skips comments, string and
 * character literals and preprocessor lines; the parser reads only the signatures of
 * `KILN_KERNEL void name(...) {` and leaves bodies to the device compiler. Signatures
 * are read before preprocessing, so only the prelude's macros may appear in them.
 * Never allocates; errors go to the thread's error detail through kiln__error. */
#include "core/kparse.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

/* ---------------------------------------------------------------- lexer */
typedef enum tok_kind { TK_EOF, TK_IDENT, TK_PUNCT, TK_OTHER, TK_ERROR } tok_kind;

typedef struct tok {
  tok_kind kind;
  size_t begin, end; /* span; for TK_ERROR: where the faulty construct starts */
  const char *error; /* TK_ERROR: what is wrong */
} tok;

typedef struct lexer {
  const char *s;
  size_t len, pos;
  bool line_start; /* only whitespace and comments so far on this line */
} lexer;

static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}
static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

static bool at(const lexer *lx, size_t i, char c) {
  return i < lx->len && lx->s[i] == c;
}

/* Skip a block comment starting at pos ("/ *"); false when unterminated. */
static bool skip_block_comment(lexer *lx) {
  size_t i = lx->pos + 2;
  while (i + 1 < lx->len && !(lx->s[i] == '*' && lx->s[i + 1] == '/'))
    i++;
  if (i + 1 >= lx->len)
    return false;
  lx->pos = i + 2;
  return true;
}

/* Skip to the end of the line (not past the '\n'), honouring backslash-newline. */
static void skip_line(lexer *lx, bool in_directive) {
  size_t i = lx->pos;
  while (i < lx->len && lx->s[i] != '\n') {
    if (lx->s[i] == '\\' && at(lx, i + 1, '\n')) {
      i += 2;
    } else if (lx->s[i] == '\\' && at(lx, i + 1, '\r') && at(lx, i + 2, '\n')) {
      i += 3;
    } else if (in_directive && lx->s[i] == '/' && at(lx, i + 1, '*')) {
      lx->pos = i;
      if (!skip_block_comment(lx)) {
        lx->pos = lx->len;
        return;
      }
      i = lx->pos;
    } else {
      i++;
    }
  }
  lx->pos = i;
}

static tok make_tok(tok_kind kind, size_t begin, size_t end) {
  tok t = {kind, begin, end, NULL};
  return t;
}
static tok error_tok(size_t at_offset, const char *what) {
  tok t = {TK_ERROR, at_offset, at_offset, what};
  return t;
}

static tok next_token(lexer *lx) {
  const char *s = lx->s;
  for (;;) {
    if (lx->pos >= lx->len)
      return make_tok(TK_EOF, lx->len, lx->len);
    char c = s[lx->pos];
    if (c == '\n') {
      lx->line_start = true;
      lx->pos++;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      lx->pos++;
    } else if (c == '\\' && (at(lx, lx->pos + 1, '\n') ||
                             (at(lx, lx->pos + 1, '\r') && at(lx, lx->pos + 2, '\n')))) {
      lx->pos += at(lx, lx->pos + 1, '\n') ? 2 : 3; /* line splice */
    } else if (c == '/' && at(lx, lx->pos + 1, '/')) {
      skip_line(lx, false);
    } else if (c == '/' && at(lx, lx->pos + 1, '*')) {
      size_t start = lx->pos;
      if (!skip_block_comment(lx))
        return error_tok(start, "unterminated comment");
    } else if (c == '#' && lx->line_start) {
      skip_line(lx, true);
    } else {
      break;
    }
  }
  lx->line_start = false;
  size_t b = lx->pos;
  char c = s[b];
  if (is_ident_start(c)) {
    size_t i = b + 1;
    while (i < lx->len && is_ident_char(s[i]))
      i++;
    lx->pos = i;
    return make_tok(TK_IDENT, b, i);
  }
  if (is_digit(c) || (c == '.' && b + 1 < lx->len && is_digit(s[b + 1]))) {
    size_t i = b + 1; /* a preprocessing number */
    while (i < lx->len) {
      if ((s[i] == '+' || s[i] == '-') &&
          (s[i - 1] == 'e' || s[i - 1] == 'E' || s[i - 1] == 'p' || s[i - 1] == 'P'))
        i++;
      else if (is_ident_char(s[i]) || s[i] == '.')
        i++;
      else
        break;
    }
    lx->pos = i;
    return make_tok(TK_OTHER, b, i);
  }
  if (c == '"' || c == '\'') {
    size_t i = b + 1;
    while (i < lx->len && s[i] != c && s[i] != '\n')
      i += (s[i] == '\\' && i + 1 < lx->len) ? 2 : 1;
    if (i >= lx->len || s[i] != c)
      return error_tok(b,
                       c == '"' ? "unterminated string literal" : "unterminated character literal");
    lx->pos = i + 1;
    return make_tok(TK_OTHER, b, i + 1);
  }
  lx->pos = b + 1;
  return make_tok(TK_PUNCT, b, b + 1);
}

/* ---------------------------------------------------------------- helpers */
void kiln__kparse_position(const char *source, size_t offset, unsigned *line, unsigned *column) {
  unsigned l = 1;
  size_t line_begin = 0;
  for (size_t i = 0; i < offset; i++) {
    if (source[i] == '\n') {
      l++;
      line_begin = i + 1;
    }
  }
  *line = l;
  *column = (unsigned)(offset - line_begin + 1);
}

static bool tok_is(const lexer *lx, const tok *t, const char *word) {
  size_t n = strlen(word);
  return t->kind != TK_EOF && t->kind != TK_ERROR && t->end - t->begin == n &&
         memcmp(lx->s + t->begin, word, n) == 0;
}

static bool tok_punct(const lexer *lx, const tok *t, char c) {
  return t->kind == TK_PUNCT && lx->s[t->begin] == c;
}

/* Token text for messages: at most 40 characters, "end of input" at EOF. */
typedef struct tok_text {
  char s[48];
} tok_text;

static tok_text text_of(const lexer *lx, const tok *t) {
  tok_text r = {{0}};
  if (t->kind == TK_EOF) {
    kiln__strlcpy(r.s, "end of input", sizeof r.s);
    return r;
  }
  size_t n = t->end - t->begin;
  if (n > 40)
    n = 40;
  memcpy(r.s, lx->s + t->begin, n);
  r.s[n] = '\0';
  if (t->end - t->begin > 40)
    kiln__strlcpy(r.s + 40, "...", sizeof r.s - 40);
  return r;
}

/* Fill the error detail with "line L, column C: <what>" and a suggestion. */
static kiln_status parse_error(const lexer *lx, size_t offset, const char *suggestion,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static kiln_status parse_error(const lexer *lx, size_t offset, const char *suggestion,
                               const char *fmt, ...) {
  char what[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  unsigned line, column;
  kiln__kparse_position(lx->s, offset, &line, &column);
  kiln__error(KILN_ERROR_PARSE, "line %u, column %u: %s", line, column, what);
  kiln__error_suggest("%s", suggestion ? suggestion
                                       : "keep kernel signatures to the kiln dialect "
                                         "(docs/kernels.md)");
  return KILN_ERROR_PARSE;
}

static kiln_status lex_error(const lexer *lx, const tok *t) {
  return parse_error(lx, t->begin,
                     "close it; the kernel parser skips comments and "
                     "literals and needs their ends",
                     "%s", t->error);
}

/* ---------------------------------------------------------------- types */
typedef struct named_type {
  const char *name;
  size_t bytes;
} named_type;

/* Single-word scalar types: the OpenCL names (typedefs in the CUDA prelude) and kiln's
 * fixed-width names (both preludes). */
static const named_type single_types[] = {
    {"uchar", 1},    {"ushort", 2},   {"uint", 4},     {"ulong", 8},
    {"kiln_i8", 1},  {"kiln_u8", 1},  {"kiln_i16", 2}, {"kiln_u16", 2},
    {"kiln_i32", 4}, {"kiln_u32", 4}, {"kiln_i64", 8}, {"kiln_u64", 8},
    {"kiln_f32", 4}, {"kiln_f64", 8}, {"float", 4},    {"double", 8},
};

static bool is_base_word(const char *w) {
  return !strcmp(w, "char") || !strcmp(w, "short") || !strcmp(w, "int") || !strcmp(w, "long") ||
         !strcmp(w, "signed") || !strcmp(w, "unsigned");
}

static bool is_type_word(const char *w) {
  if (is_base_word(w) || !strcmp(w, "void") || !strcmp(w, "struct"))
    return true;
  for (size_t i = 0; i < sizeof single_types / sizeof single_types[0]; i++)
    if (!strcmp(w, single_types[i].name))
      return true;
  return false;
}

/* OpenCL C vector type names: char2 ... double16, uint3, half4, ... */
static bool is_vector_type(const char *w) {
  static const char *const bases[] = {"char", "uchar", "short", "ushort", "int",  "uint",
                                      "long", "ulong", "float", "double", "half", "bool"};
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    size_t n = strlen(bases[i]);
    if (strncmp(w, bases[i], n) != 0)
      continue;
    const char *d = w + n;
    if (!strcmp(d, "2") || !strcmp(d, "3") || !strcmp(d, "4") || !strcmp(d, "8") ||
        !strcmp(d, "16"))
      return true;
  }
  return false;
}

/* Size of a scalar type given as words ("unsigned", "long", "int"); 0 when the words
 * do not form one of the dialect's scalar types. */
#define MAX_TYPE_WORDS 4
typedef struct type_word {
  char s[24];
} type_word;

static size_t scalar_bytes(const type_word *words, size_t count) {
  if (count > MAX_TYPE_WORDS)
    return 0;
  if (count == 1) {
    for (size_t i = 0; i < sizeof single_types / sizeof single_types[0]; i++)
      if (!strcmp(words[0].s, single_types[i].name))
        return single_types[i].bytes;
  }
  size_t i = 0;
  bool sign = false;
  if (i < count && (!strcmp(words[i].s, "unsigned") || !strcmp(words[i].s, "signed"))) {
    sign = true;
    i++;
  }
  if (i == count)
    return sign ? 4 : 0; /* "unsigned" alone is unsigned int */
  size_t bytes = 0;
  if (!strcmp(words[i].s, "char"))
    bytes = 1;
  else if (!strcmp(words[i].s, "short"))
    bytes = 2;
  else if (!strcmp(words[i].s, "int"))
    bytes = 4;
  else if (!strcmp(words[i].s, "long"))
    bytes = 8;
  else
    return 0;
  i++;
  /* "short int", "long int" */
  if (i < count && i < MAX_TYPE_WORDS && bytes >= 2 && bytes != 4 && !strcmp(words[i].s, "int"))
    i++;
  return i == count ? bytes : 0;
}

/* ---------------------------------------------------------------- parameters */
typedef struct param_state {
  const lexer *lx;
  const char *kernel;
  unsigned index;     /* 1-based, for messages */
  size_t begin, end;  /* span so far */
  bool any;           /* a token was seen */
  bool const_pointee; /* const before '*' */
  int space;          /* 0 none, 1 KILN_GLOBAL, 2 KILN_LOCAL */
  size_t space_at;
  unsigned stars;
  bool restrict_seen;
  type_word words[MAX_TYPE_WORDS]; /* type words */
  size_t word_count;
  size_t type_at; /* offset of the first type word */
  tok name;
  bool has_name;
} param_state;

static const char *space_name(int space) {
  return space == 1 ? "KILN_GLOBAL" : "KILN_LOCAL";
}

/* A punctuator within a parameter declaration: the pointer star, or an error. */
static kiln_status param_punct(param_state *p, const tok *t, const char *w) {
  const lexer *lx = p->lx;
  if (w[0] == '*') {
    if (p->word_count == 0)
      return parse_error(lx, t->begin, NULL, "kernel '%s' parameter %u: '*' before any type",
                         p->kernel, p->index);
    if (p->stars == 1)
      return parse_error(lx, t->begin, "pass each array as its own KILN_GLOBAL buffer parameter",
                         "kernel '%s' parameter %u: pointer to pointer is not a valid "
                         "kernel parameter (a device cannot follow host pointers)",
                         p->kernel, p->index);
    p->stars = 1;
    return KILN_SUCCESS;
  }
  if (w[0] == '[')
    return parse_error(lx, t->begin, NULL,
                       "kernel '%s' parameter %u: array parameters are not part of the "
                       "dialect: write 'KILN_GLOBAL T *name'",
                       p->kernel, p->index);
  return parse_error(lx, t->begin, NULL,
                     "kernel '%s' parameter %u: unexpected '%s' in a parameter "
                     "declaration",
                     p->kernel, p->index, w);
}

/* A qualifier or address-space word (const, KILN_GLOBAL/KILN_LOCAL, restrict) or a
 * target language's spelling of one (an error). *handled is false when w is none. */
static kiln_status param_qualifier(param_state *p, const tok *t, const char *w, bool *handled) {
  const lexer *lx = p->lx;
  *handled = true;
  /* qualifiers */
  if (!strcmp(w, "const")) {
    if (p->stars)
      return KILN_SUCCESS; /* T *const p: the pointer itself is const */
    if (p->const_pointee)
      return parse_error(lx, t->begin, NULL, "kernel '%s' parameter %u: 'const' twice", p->kernel,
                         p->index);
    p->const_pointee = true;
    return KILN_SUCCESS;
  }
  if (!strcmp(w, "KILN_GLOBAL") || !strcmp(w, "KILN_LOCAL")) {
    int space = w[5] == 'G' ? 1 : 2;
    if (p->stars)
      return parse_error(lx, t->begin, NULL,
                         "kernel '%s' parameter %u: %s goes before '*' (it qualifies what "
                         "the pointer points to)",
                         p->kernel, p->index, w);
    if (p->space)
      return parse_error(lx, t->begin, NULL,
                         "kernel '%s' parameter %u: %s after %s: a parameter has one "
                         "address space",
                         p->kernel, p->index, w, space_name(p->space));
    p->space = space;
    p->space_at = t->begin;
    return KILN_SUCCESS;
  }
  if (!strcmp(w, "restrict") || !strcmp(w, "KILN_RESTRICT")) {
    if (!p->stars)
      return parse_error(lx, t->begin, NULL,
                         "kernel '%s' parameter %u: '%s' qualifies a pointer: write it "
                         "after '*'",
                         p->kernel, p->index, w);
    p->restrict_seen = true;
    return KILN_SUCCESS;
  }
  if (!strcmp(w, "__restrict") || !strcmp(w, "__restrict__"))
    return parse_error(lx, t->begin, "write 'restrict' or KILN_RESTRICT",
                       "kernel '%s' parameter %u: '%s' is not OpenCL C; the dialect spells "
                       "it 'restrict' or KILN_RESTRICT",
                       p->kernel, p->index, w);
  if (!strcmp(w, "__global") || !strcmp(w, "global") || !strcmp(w, "__local") ||
      !strcmp(w, "local") || !strcmp(w, "__constant") || !strcmp(w, "constant") ||
      !strcmp(w, "__private") || !strcmp(w, "private") || !strcmp(w, "__shared__") ||
      !strcmp(w, "__constant__") || !strcmp(w, "__device__"))
    return parse_error(lx, t->begin, "write KILN_GLOBAL or KILN_LOCAL",
                       "kernel '%s' parameter %u: '%s' belongs to one target language; the "
                       "dialect's address spaces are KILN_GLOBAL and KILN_LOCAL",
                       p->kernel, p->index, w);
  if (!strcmp(w, "volatile"))
    return parse_error(lx, t->begin, NULL,
                       "kernel '%s' parameter %u: 'volatile' parameters are not part of the "
                       "dialect",
                       p->kernel, p->index);
  *handled = false;
  return KILN_SUCCESS;
}

/* A type word, or the parameter's name once the type has begun. */
static kiln_status param_type_word(param_state *p, const tok *t, const char *w) {
  const lexer *lx = p->lx;
  /* type words */
  bool after_struct = p->word_count == 1 && !strcmp(p->words[0].s, "struct");
  if (!after_struct) {
    if (!strcmp(w, "size_t") || !strcmp(w, "ptrdiff_t") || !strcmp(w, "intptr_t") ||
        !strcmp(w, "uintptr_t") || !strcmp(w, "ssize_t"))
      return parse_error(lx, t->begin, "use unsigned long or kiln_u64 (8 bytes everywhere)",
                         "kernel '%s' parameter %u: unknown type '%s' (%s is not allowed as "
                         "a kernel parameter: its width on the device need not match the "
                         "host's)",
                         p->kernel, p->index, w, w);
    if (is_vector_type(w))
      return parse_error(lx, t->begin, "pass a buffer of the element type and index it N at a time",
                         "kernel '%s' parameter %u: unknown type '%s' (vector types are not "
                         "part of the kiln dialect)",
                         p->kernel, p->index, w);
    if (!strcmp(w, "bool") || !strcmp(w, "half") || !strcmp(w, "_Bool"))
      return parse_error(lx, t->begin, "use int (or kiln_u8) instead",
                         "kernel '%s' parameter %u: unknown type '%s' (%s is not a valid "
                         "kernel parameter type in the kiln dialect)",
                         p->kernel, p->index, w, w);
  }
  if (after_struct || is_type_word(w)) {
    if (p->word_count == MAX_TYPE_WORDS || strlen(w) >= sizeof p->words[0].s)
      return parse_error(lx, t->begin, NULL, "kernel '%s' parameter %u: type too long at '%s'",
                         p->kernel, p->index, w);
    if (p->word_count == 0)
      p->type_at = t->begin;
    kiln__strlcpy(p->words[p->word_count++].s, w, sizeof p->words[0].s);
    return KILN_SUCCESS;
  }
  if (p->word_count == 0)
    return parse_error(lx, t->begin,
                       "use char, short, int, long, float, double (optionally unsigned), "
                       "uchar/ushort/uint/ulong or kiln_i8..kiln_u64/kiln_f32/kiln_f64; "
                       "macros other than the prelude's are not expanded in signatures",
                       "kernel '%s' parameter %u: unknown type '%s'", p->kernel, p->index, w);
  p->name = *t;
  p->has_name = true;
  return KILN_SUCCESS;
}

/* One token of a parameter declaration (not ',' or ')'). */
static kiln_status param_token(param_state *p, const tok *t) {
  const lexer *lx = p->lx;
  tok_text tt = text_of(lx, t);
  const char *w = tt.s;
  if (!p->any)
    p->begin = t->begin;
  p->any = true;
  p->end = t->end;

  if (t->kind == TK_PUNCT && (w[0] == '{' || w[0] == ';'))
    return parse_error(lx, t->begin, "close the parameter list with ')'",
                       "kernel '%s': missing ')' closing the parameter list (found '%s')",
                       p->kernel, w);
  if (p->has_name)
    return parse_error(lx, t->begin, NULL,
                       "kernel '%s' parameter %u '%s': unexpected '%s' after the parameter "
                       "name (%s)",
                       p->kernel, p->index, text_of(lx, &p->name).s, w,
                       w[0] == '[' ? "array parameters are written 'KILN_GLOBAL T *name'"
                                   : "a parameter ends at ',' or ')'");
  if (t->kind == TK_PUNCT)
    return param_punct(p, t, w);
  if (t->kind != TK_IDENT)
    return parse_error(lx, t->begin, NULL,
                       "kernel '%s' parameter %u: unexpected '%s' in a parameter "
                       "declaration",
                       p->kernel, p->index, w);
  bool handled;
  kiln_status st = param_qualifier(p, t, w, &handled);
  if (handled)
    return st;
  if (p->stars) {
    /* after '*' only the name (or qualifiers, handled above) */
    p->name = *t;
    p->has_name = true;
    return KILN_SUCCESS;
  }
  return param_type_word(p, t, w);
}

#define KILN__KPARSE_TYPE_BYTES 48

/* The parameter's name: present, short enough for name_cap, not one of kiln's. */
static kiln_status param_name(param_state *p, const tok *at_tok, size_t name_cap, tok_text *name) {
  const lexer *lx = p->lx;
  if (!p->any)
    return parse_error(lx, at_tok->begin, NULL, "kernel '%s' parameter %u is empty", p->kernel,
                       p->index);
  if (!p->has_name)
    return parse_error(lx, at_tok->begin, "every kernel parameter needs a name",
                       "kernel '%s' parameter %u has no name", p->kernel, p->index);
  *name = text_of(lx, &p->name);
  if (p->name.end - p->name.begin >= name_cap)
    return parse_error(lx, p->name.begin, NULL,
                       "kernel '%s' parameter %u: name longer than %zu characters", p->kernel,
                       p->index, name_cap - 1);
  if (!strncmp(name->s, "kiln__", 6))
    return parse_error(lx, p->name.begin, "rename the parameter",
                       "kernel '%s' parameter %u '%s': names starting with 'kiln__' are "
                       "reserved for the parameters kiln adds",
                       p->kernel, p->index, name->s);
  if (p->word_count == 0)
    return parse_error(lx, p->begin, NULL, "kernel '%s' parameter %u '%s' has no type", p->kernel,
                       p->index, name->s);
  return KILN_SUCCESS;
}

/* The type words as one string ("unsigned int"), checked; *bytes its size when a scalar
 * type (0 for struct and void, which param_kind refuses by value). */
static kiln_status param_type(param_state *p, const char *name, char *type, size_t *bytes,
                              bool *is_struct, bool *is_void) {
  const lexer *lx = p->lx;
  type[0] = '\0';
  size_t tl = 0;
  for (size_t i = 0; i < p->word_count; i++) {
    int n = snprintf(type + tl, KILN__KPARSE_TYPE_BYTES - tl, "%s%s", i ? " " : "", p->words[i].s);
    if (n < 0 || (size_t)n >= KILN__KPARSE_TYPE_BYTES - tl)
      return parse_error(lx, p->type_at, NULL, "kernel '%s' parameter %u '%s': type name too long",
                         p->kernel, p->index, name);
    tl += (size_t)n;
  }
  *is_struct = !strcmp(p->words[0].s, "struct");
  *is_void = !strcmp(p->words[0].s, "void");
  *bytes = 0;
  if (*is_struct) {
    if (p->word_count != 2)
      return parse_error(lx, p->type_at, NULL,
                         "kernel '%s' parameter %u '%s': 'struct' needs a tag name", p->kernel,
                         p->index, name);
  } else if (*is_void) {
    if (p->word_count != 1)
      return parse_error(lx, p->type_at, NULL, "kernel '%s' parameter %u '%s': unknown type '%s'",
                         p->kernel, p->index, name, type);
  } else {
    *bytes = scalar_bytes(p->words, p->word_count);
    if (!*bytes) {
      bool long_long = false;
      for (size_t i = 0; i + 1 < p->word_count; i++)
        if (!strcmp(p->words[i].s, "long") && !strcmp(p->words[i + 1].s, "long"))
          long_long = true;
      return parse_error(lx, p->type_at,
                         long_long ? "use long or kiln_i64 (64 bits on every target)" : NULL,
                         "kernel '%s' parameter %u '%s': unknown type '%s'%s", p->kernel, p->index,
                         name, type, long_long ? " ('long long' is reserved in OpenCL C)" : "");
    }
  }
  return KILN_SUCCESS;
}

/* Pointer (a buffer or local memory, by address space and const) or scalar. */
static kiln_status param_kind(param_state *p, const char *name, const char *type, size_t bytes,
                              bool is_struct, bool is_void, kiln__kparam *out) {
  const lexer *lx = p->lx;
  if (p->stars) {
    if (!p->space)
      return parse_error(lx, p->begin,
                         "write 'KILN_GLOBAL T *' for a buffer, 'KILN_LOCAL T *' for local "
                         "memory",
                         "kernel '%s' parameter %u '%s': a pointer parameter needs KILN_GLOBAL "
                         "or KILN_LOCAL",
                         p->kernel, p->index, name);
    if (is_void)
      return parse_error(lx, p->type_at, "give the element type, e.g. 'KILN_GLOBAL float *'",
                         "kernel '%s' parameter %u '%s': 'void *' parameters are not part of "
                         "the dialect (CUDA C++ has no implicit void* conversions)",
                         p->kernel, p->index, name);
    if (p->space == 2 && p->const_pointee)
      return parse_error(lx, p->begin, "drop the 'const'",
                         "kernel '%s' parameter %u '%s': const local memory could never be "
                         "written",
                         p->kernel, p->index, name);
    out->kind = p->space == 2      ? KILN_PARAM_LOCAL
                : p->const_pointee ? KILN_PARAM_BUFFER_READ
                                   : KILN_PARAM_BUFFER_READ_WRITE;
    out->bytes = 0;
  } else {
    if (p->space)
      return parse_error(lx, p->space_at, NULL,
                         "kernel '%s' parameter %u '%s': %s applies to pointers, and '%s' is "
                         "a scalar",
                         p->kernel, p->index, name, space_name(p->space), name);
    if (is_struct || is_void)
      return parse_error(lx, p->type_at, "pass the fields as scalars, or the struct in a buffer",
                         "kernel '%s' parameter %u '%s': '%s' cannot be passed by value", p->kernel,
                         p->index, name, type);
    out->kind = KILN_PARAM_SCALAR;
    out->bytes = bytes;
  }
  return KILN_SUCCESS;
}

/* The parameter is complete (at ',' or ')'): check it and write it to *out. */
static kiln_status param_finish(param_state *p, const tok *at_tok, kiln__kparam *out) {
  tok_text name;
  kiln_status st = param_name(p, at_tok, sizeof out->name, &name);
  if (st != KILN_SUCCESS)
    return st;
  char type[KILN__KPARSE_TYPE_BYTES];
  size_t bytes = 0;
  bool is_struct = false, is_void = false;
  if ((st = param_type(p, name.s, type, &bytes, &is_struct, &is_void)) != KILN_SUCCESS ||
      (st = param_kind(p, name.s, type, bytes, is_struct, is_void, out)) != KILN_SUCCESS)
    return st;
  kiln__strlcpy(out->type, type, sizeof out->type);
  kiln__strlcpy(out->name, name.s, sizeof out->name);
  out->begin = p->begin;
  out->end = p->end;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- kernels */
/* Parse after the KILN_KERNEL token `kw` into *f. */
static kiln_status parse_kernel(lexer *lx, const tok *kw, kiln__kfunc *f) {
  unsigned line, column;
  kiln__kparse_position(lx->s, kw->begin, &line, &column);
  memset(f, 0, sizeof *f);
  f->line = line;

  tok t = next_token(lx);
  if (t.kind == TK_ERROR)
    return lex_error(lx, &t);
  if (!tok_is(lx, &t, "void"))
    return parse_error(lx, t.begin, "declare kernels as 'KILN_KERNEL void name(...)'",
                       "expected 'void' after KILN_KERNEL, found '%s' (kernels return "
                       "nothing)",
                       text_of(lx, &t).s);
  t = next_token(lx);
  if (t.kind == TK_ERROR)
    return lex_error(lx, &t);
  if (t.kind != TK_IDENT)
    return parse_error(lx, t.begin, NULL,
                       "expected the kernel's name after 'KILN_KERNEL void', found '%s'",
                       text_of(lx, &t).s);
  if (t.end - t.begin >= sizeof f->name)
    return parse_error(lx, t.begin, NULL, "kernel name longer than %zu characters",
                       sizeof f->name - 1);
  memcpy(f->name, lx->s + t.begin, t.end - t.begin);
  f->name[t.end - t.begin] = '\0';
  if (!strncmp(f->name, "kiln__", 6))
    return parse_error(lx, t.begin, "rename the kernel",
                       "kernel '%s': names starting with 'kiln__' are reserved", f->name);
  t = next_token(lx);
  if (t.kind == TK_ERROR)
    return lex_error(lx, &t);
  if (!tok_punct(lx, &t, '('))
    return parse_error(lx, t.begin, NULL, "kernel '%s': expected '(' after its name, found '%s'",
                       f->name, text_of(lx, &t).s);
  f->open_paren = t.begin;

  param_state p;
  memset(&p, 0, sizeof p);
  p.lx = lx;
  p.kernel = f->name;
  p.index = 1;
  bool seen_comma = false;
  for (;;) {
    t = next_token(lx);
    if (t.kind == TK_ERROR)
      return lex_error(lx, &t);
    if (t.kind == TK_EOF)
      return parse_error(lx, f->open_paren, "close the parameter list with ')'",
                         "kernel '%s': missing ')' closing the parameter list opened here",
                         f->name);
    bool close = tok_punct(lx, &t, ')');
    if (close || tok_punct(lx, &t, ',')) {
      /* `()` and `(void)` declare no parameters */
      if (close && !seen_comma &&
          (!p.any || (p.word_count == 1 && !strcmp(p.words[0].s, "void") && !p.stars &&
                      !p.has_name && !p.const_pointee && !p.space))) {
        f->close_paren = t.begin;
        break;
      }
      if (f->param_count == KILN_MAX_KERNEL_ARGS)
        return parse_error(lx, p.any ? p.begin : t.begin,
                           "pass fewer parameters: group scalars into a buffer",
                           "kernel '%s' has more than %d parameters (KILN_MAX_KERNEL_ARGS)",
                           f->name, KILN_MAX_KERNEL_ARGS);
      kiln_status st = param_finish(&p, &t, &f->params[f->param_count]);
      if (st != KILN_SUCCESS)
        return st;
      f->param_count++;
      if (close) {
        f->close_paren = t.begin;
        break;
      }
      seen_comma = true;
      unsigned next_index = p.index + 1;
      memset(&p, 0, sizeof p);
      p.lx = lx;
      p.kernel = f->name;
      p.index = next_index;
      continue;
    }
    if (tok_punct(lx, &t, '('))
      return parse_error(lx, t.begin, NULL,
                         "kernel '%s' parameter %u: unexpected '(' (function pointers and "
                         "parenthesised declarators are not part of the dialect)",
                         f->name, p.index);
    kiln_status st = param_token(&p, &t);
    if (st != KILN_SUCCESS)
      return st;
  }

  t = next_token(lx);
  if (t.kind == TK_ERROR)
    return lex_error(lx, &t);
  if (tok_punct(lx, &t, ';'))
    return parse_error(lx, kw->begin, "write the kernel's definition, with its body",
                       "kernel '%s' is declared without a body", f->name);
  if (!tok_punct(lx, &t, '{'))
    return parse_error(lx, t.begin, NULL,
                       "kernel '%s': expected '{' after the parameter list, found '%s'", f->name,
                       text_of(lx, &t).s);
  f->body_open = t.begin;
  return KILN_SUCCESS;
}

kiln_status kiln__kparse(const char *source, size_t len, kiln__kfunc *out, size_t max,
                         size_t *count) {
  *count = 0;
  lexer lx = {source, len, 0, true};
  size_t found = 0;
  kiln__kfunc spare; /* kernels past max, or all of them when only counting */
  for (;;) {
    tok t = next_token(&lx);
    if (t.kind == TK_EOF)
      break;
    if (t.kind == TK_ERROR)
      return lex_error(&lx, &t);
    if (!tok_is(&lx, &t, "KILN_KERNEL"))
      continue;
    kiln__kfunc *f = out && found < max ? &out[found] : &spare;
    kiln_status st = parse_kernel(&lx, &t, f);
    if (st != KILN_SUCCESS)
      return st;
    if (out) {
      size_t stored = found < max ? found : max;
      const kiln__kfunc *dup = kiln__kfind(out, stored, f->name);
      if (dup)
        return parse_error(&lx, t.begin, "give each kernel its own name",
                           "kernel '%s' is defined twice (first at line %u)", f->name, dup->line);
    }
    found++;
    *count = found;
  }
  if (out && found > max)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "the source defines %zu kernels, more than the %zu the caller's table "
                       "holds",
                       found, max);
  return KILN_SUCCESS;
}

const kiln__kfunc *kiln__kfind(const kiln__kfunc *funcs, size_t count, const char *name) {
  for (size_t i = 0; i < count; i++)
    if (!strcmp(funcs[i].name, name))
      return &funcs[i];
  return NULL;
}
