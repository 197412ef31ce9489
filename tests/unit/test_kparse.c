/* SPDX-License-Identifier: MIT */
/* The kernel signature parser and the dialect rewrite (src/core/kparse.c, prelude.c):
 * every accepted parameter form, every rejection with its line and column, skipping of
 * comments, literals and preprocessor lines, exact spans, the rewrite for OpenCL and
 * CUDA with its size protocol, and the test kernels of tests/kernels/: parsed, built
 * by the OpenCL platform (PoCL here; libOpenCL loaded with dlopen, never linked), and
 * checked as C++ with `g++ -fsyntax-only` over a CUDA shim when g++ is present.
 * kiln-test-labels: unit opencl
 * kiln-test-link: static */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "core/kparse.h"
#include "core/prelude.h"
#include "kiln.h"

#define MAX_FUNCS 8
static kiln__kfunc funcs[MAX_FUNCS];

/* ---------------------------------------------------------------- helpers */
static size_t parse_ok(const char *src) {
  size_t count = 99;
  kiln_status st = kiln__kparse(src, strlen(src), funcs, MAX_FUNCS, &count);
  if (st != KILN_SUCCESS)
    fail_msg("kiln__kparse failed: %s", kiln_last_error()->message);
  return count;
}

/* Offset of the first `marker` in src (must be present). */
static size_t offset_of(const char *src, const char *marker) {
  const char *p = strstr(src, marker);
  if (!p)
    fail_msg("marker '%s' not in the test source", marker);
  return (size_t)(p - src);
}

/* Parsing fails with KILN_ERROR_PARSE at the position of `marker`, and the message
 * contains `what`. */
static void expect_parse_error(const char *src, const char *marker, const char *what) {
  size_t count = 99;
  kiln_status st = kiln__kparse(src, strlen(src), funcs, MAX_FUNCS, &count);
  if (st != KILN_ERROR_PARSE)
    fail_msg("expected KILN_ERROR_PARSE for:\n%s\ngot %s", src, kiln_status_name(st));
  unsigned line, column;
  kiln__kparse_position(src, offset_of(src, marker), &line, &column);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "line %u, column %u: ", line, column);
  const kiln_error_info *e = kiln_last_error();
  if (e->status != KILN_ERROR_PARSE || strncmp(e->message, prefix, strlen(prefix)) != 0 ||
      !strstr(e->message, what) || !e->suggestion[0])
    fail_msg("for:\n%s\nexpected a message starting '%s' containing '%s', got '%s' "
             "(suggestion '%s')",
             src, prefix, what, e->message, e->suggestion);
}

static const kiln__kparam *param(const kiln__kfunc *f, uint32_t i) {
  assert_true(i < f->param_count);
  return &f->params[i];
}

static void check_param(const kiln__kparam *p, kiln_param_kind kind, size_t bytes, const char *type,
                        const char *name) {
  if (p->kind != kind || p->bytes != bytes || strcmp(p->type, type) || strcmp(p->name, name))
    fail_msg("parameter '%s': got kind %d, %zu bytes, type '%s'; expected '%s': kind %d, "
             "%zu bytes, type '%s'",
             p->name, (int)p->kind, p->bytes, p->type, name, (int)kind, bytes, type);
}

/* Rewrite src (parsed into funcs) for target; returns a malloc'd text. */
static char *rewrite(const char *src, size_t count, kiln__dialect_target target) {
  size_t len = 0;
  kiln_status st = kiln__dialect_rewrite(src, strlen(src), funcs, count, target, NULL, 0, &len);
  if (st != KILN_SUCCESS)
    fail_msg("size query failed: %s", kiln_last_error()->message);
  char *out = malloc(len + 1);
  assert_non_null(out);
  size_t len2 = 0;
  st = kiln__dialect_rewrite(src, strlen(src), funcs, count, target, out, len + 1, &len2);
  if (st != KILN_SUCCESS)
    fail_msg("rewrite failed: %s", kiln_last_error()->message);
  assert_int_equal(len2, len);
  assert_int_equal(strlen(out), len);
  return out;
}

/* The user's part of a rewritten text: what follows the prelude and "#line 1\n". */
static const char *user_part(const char *out, kiln__dialect_target target) {
  const char *prelude = target == KILN__TARGET_CUDA ? kiln__prelude_cuda : kiln__prelude_opencl;
  size_t n = strlen(prelude);
  assert_memory_equal(out, prelude, n);
  assert_memory_equal(out + n, "#line 1\n", 8);
  return out + n + 8;
}

static size_t count_newlines(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* ---------------------------------------------------------------- accepted forms */
static void test_accepts_every_form(void **state) {
  (void)state;
  const char *src =
      "KILN_KERNEL void all(KILN_GLOBAL const float *a, const KILN_GLOBAL float *b,\n"
      "  KILN_GLOBAL float *restrict c, KILN_GLOBAL float *KILN_RESTRICT d,\n"
      "  KILN_GLOBAL const int *const KILN_RESTRICT e, KILN_GLOBAL float *const f,\n"
      "  KILN_LOCAL float *scratch, KILN_GLOBAL const struct particle *p,\n"
      "  int n, const int m, unsigned int u, unsigned u2, signed s, char c1,\n"
      "  signed char sc, unsigned char uc, short sh, short int shi, unsigned short us,\n"
      "  long l, long int li, unsigned long ul, unsigned long int uli, float fl,\n"
      "  double db, uchar uch, ushort ush, uint ui, ulong ulg, kiln_i8 i8, kiln_u8 u8,\n"
      "  kiln_i16 i16, kiln_u16 u16, kiln_i32 i32, kiln_u32 u32, kiln_i64 i64,\n"
      "  kiln_u64 u64, kiln_f32 f32, kiln_f64 f64, KILN_GLOBAL kiln_u8 *bytes) {\n"
      "}\n";
  assert_int_equal(parse_ok(src), 1);
  const kiln__kfunc *f = &funcs[0];
  assert_string_equal(f->name, "all");
  static const struct {
    kiln_param_kind kind;
    size_t bytes;
    const char *type, *name;
  } want[] = {
      {KILN_PARAM_BUFFER_READ, 0, "float", "a"},
      {KILN_PARAM_BUFFER_READ, 0, "float", "b"},
      {KILN_PARAM_BUFFER_READ_WRITE, 0, "float", "c"},
      {KILN_PARAM_BUFFER_READ_WRITE, 0, "float", "d"},
      {KILN_PARAM_BUFFER_READ, 0, "int", "e"},
      {KILN_PARAM_BUFFER_READ_WRITE, 0, "float", "f"},
      {KILN_PARAM_LOCAL, 0, "float", "scratch"},
      {KILN_PARAM_BUFFER_READ, 0, "struct particle", "p"},
      {KILN_PARAM_SCALAR, 4, "int", "n"},
      {KILN_PARAM_SCALAR, 4, "int", "m"},
      {KILN_PARAM_SCALAR, 4, "unsigned int", "u"},
      {KILN_PARAM_SCALAR, 4, "unsigned", "u2"},
      {KILN_PARAM_SCALAR, 4, "signed", "s"},
      {KILN_PARAM_SCALAR, 1, "char", "c1"},
      {KILN_PARAM_SCALAR, 1, "signed char", "sc"},
      {KILN_PARAM_SCALAR, 1, "unsigned char", "uc"},
      {KILN_PARAM_SCALAR, 2, "short", "sh"},
      {KILN_PARAM_SCALAR, 2, "short int", "shi"},
      {KILN_PARAM_SCALAR, 2, "unsigned short", "us"},
      {KILN_PARAM_SCALAR, 8, "long", "l"},
      {KILN_PARAM_SCALAR, 8, "long int", "li"},
      {KILN_PARAM_SCALAR, 8, "unsigned long", "ul"},
      {KILN_PARAM_SCALAR, 8, "unsigned long int", "uli"},
      {KILN_PARAM_SCALAR, 4, "float", "fl"},
      {KILN_PARAM_SCALAR, 8, "double", "db"},
      {KILN_PARAM_SCALAR, 1, "uchar", "uch"},
      {KILN_PARAM_SCALAR, 2, "ushort", "ush"},
      {KILN_PARAM_SCALAR, 4, "uint", "ui"},
      {KILN_PARAM_SCALAR, 8, "ulong", "ulg"},
      {KILN_PARAM_SCALAR, 1, "kiln_i8", "i8"},
      {KILN_PARAM_SCALAR, 1, "kiln_u8", "u8"},
      {KILN_PARAM_SCALAR, 2, "kiln_i16", "i16"},
      {KILN_PARAM_SCALAR, 2, "kiln_u16", "u16"},
      {KILN_PARAM_SCALAR, 4, "kiln_i32", "i32"},
      {KILN_PARAM_SCALAR, 4, "kiln_u32", "u32"},
      {KILN_PARAM_SCALAR, 8, "kiln_i64", "i64"},
      {KILN_PARAM_SCALAR, 8, "kiln_u64", "u64"},
      {KILN_PARAM_SCALAR, 4, "kiln_f32", "f32"},
      {KILN_PARAM_SCALAR, 8, "kiln_f64", "f64"},
      {KILN_PARAM_BUFFER_READ_WRITE, 0, "kiln_u8", "bytes"},
  };
  assert_int_equal(f->param_count, sizeof want / sizeof want[0]);
  for (uint32_t i = 0; i < f->param_count; i++)
    check_param(param(f, i), want[i].kind, want[i].bytes, want[i].type, want[i].name);
}

static void test_zero_parameters(void **state) {
  (void)state;
  const char *srcs[] = {"KILN_KERNEL void e() {}", "KILN_KERNEL void e(void) {}",
                        "KILN_KERNEL void e( /* none */ void // really\n) {}"};
  for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
    assert_int_equal(parse_ok(srcs[i]), 1);
    assert_string_equal(funcs[0].name, "e");
    assert_int_equal(funcs[0].param_count, 0);
    assert_int_equal(funcs[0].open_paren, offset_of(srcs[i], "("));
    assert_int_equal(funcs[0].close_paren, offset_of(srcs[i], ")"));
    assert_int_equal(funcs[0].body_open, offset_of(srcs[i], "{"));
  }
}

static void test_spans_and_offsets(void **state) {
  (void)state;
  const char *src = "// two lines before\n"
                    "\n"
                    "  KILN_KERNEL   void\n"
                    "vadd ( KILN_GLOBAL const float * a ,int n/*c*/,\n"
                    "      KILN_LOCAL /* x\n */ float *s )\n"
                    "\n"
                    "{ }\n";
  assert_int_equal(parse_ok(src), 1);
  const kiln__kfunc *f = &funcs[0];
  assert_string_equal(f->name, "vadd");
  assert_int_equal(f->line, 3);
  assert_int_equal(f->open_paren, offset_of(src, "( KILN"));
  assert_int_equal(f->close_paren, offset_of(src, ")\n"));
  assert_int_equal(f->body_open, offset_of(src, "{"));
  assert_int_equal(f->param_count, 3);
  const char *decl0 = "KILN_GLOBAL const float * a";
  assert_int_equal(f->params[0].begin, offset_of(src, decl0));
  assert_int_equal(f->params[0].end, offset_of(src, decl0) + strlen(decl0));
  assert_int_equal(f->params[1].begin, offset_of(src, "int n"));
  assert_int_equal(f->params[1].end, offset_of(src, "int n") + 5);
  assert_int_equal(f->params[2].begin, offset_of(src, "KILN_LOCAL"));
  assert_int_equal(f->params[2].end, offset_of(src, "*s") + 2);
  check_param(&f->params[2], KILN_PARAM_LOCAL, 0, "float", "s");

  unsigned line, column;
  kiln__kparse_position(src, offset_of(src, "vadd"), &line, &column);
  assert_int_equal(line, 4);
  assert_int_equal(column, 1);
  kiln__kparse_position(src, offset_of(src, "int n"), &line, &column);
  assert_int_equal(line, 4);
  assert_int_equal(column, 37);
}

static void test_skips_comments_literals_preprocessor(void **state) {
  (void)state;
  const char *src = "// KILN_KERNEL void line_comment(float4 v) {}\n"
                    "/* KILN_KERNEL void block_comment(float4 v) {}\n"
                    "   spanning lines */\n"
                    "#define KILN_KERNEL_TWICE KILN_KERNEL void in_define(float4 v) {}\n"
                    "#define LONG_MACRO(x) \\\n"
                    "  KILN_KERNEL void continued(float4 x) { }\n"
                    "  # if 0 /* a directive may start after blanks */\n"
                    "  #endif\n"
                    "#pragma unroll /* KILN_KERNEL void in_pragma(float4 v) {\n"
                    "   } */\n"
                    "KILN_INLINE int helper(int x) {\n"
                    "  const char *s = \"KILN_KERNEL void in_string(float4 v) { \\\" \";\n"
                    "  char q = '\\'', d = '\"';\n"
                    "  return x + s[0] + q + d; // KILN_KERNEL void trailing(float4 v) {}\n"
                    "}\n"
                    "KILN_KERNEL void real(KILN_GLOBAL int *out) { out[0] = helper(1) /* } */; }\n";
  assert_int_equal(parse_ok(src), 1);
  assert_string_equal(funcs[0].name, "real");
  assert_int_equal(funcs[0].line, 16);
  assert_int_equal(funcs[0].param_count, 1);
  check_param(&funcs[0].params[0], KILN_PARAM_BUFFER_READ_WRITE, 0, "int", "out");
}

static void test_multiple_kernels_and_find(void **state) {
  (void)state;
  const char *src =
      "KILN_KERNEL void first(KILN_GLOBAL float *x) { x[0] = 1.0f; }\n"
      "KILN_INLINE float twice(float v) { return 2.0f * v; }\n"
      "KILN_KERNEL void second(float a, KILN_GLOBAL const float *x, KILN_GLOBAL float *y)\n"
      "{ y[0] = twice(a) * x[0]; }\n"
      "\n"
      "KILN_KERNEL void third(void) {}\n";
  assert_int_equal(parse_ok(src), 3);
  assert_string_equal(funcs[0].name, "first");
  assert_string_equal(funcs[1].name, "second");
  assert_string_equal(funcs[2].name, "third");
  assert_int_equal(funcs[0].line, 1);
  assert_int_equal(funcs[1].line, 3);
  assert_int_equal(funcs[2].line, 6);
  assert_int_equal(funcs[1].param_count, 3);
  check_param(&funcs[1].params[0], KILN_PARAM_SCALAR, 4, "float", "a");
  check_param(&funcs[1].params[1], KILN_PARAM_BUFFER_READ, 0, "float", "x");
  check_param(&funcs[1].params[2], KILN_PARAM_BUFFER_READ_WRITE, 0, "float", "y");
  assert_ptr_equal(kiln__kfind(funcs, 3, "second"), &funcs[1]);
  assert_ptr_equal(kiln__kfind(funcs, 3, "third"), &funcs[2]);
  assert_null(kiln__kfind(funcs, 3, "twice"));
  assert_null(kiln__kfind(funcs, 3, "firs"));
  assert_null(kiln__kfind(funcs, 0, "first"));

  /* no kernel at all */
  assert_int_equal(parse_ok("KILN_INLINE int f(int x) { return x; }\n"), 0);
  assert_int_equal(parse_ok(""), 0);
}

static void test_more_kernels_than_the_table(void **state) {
  (void)state;
  const char *src = "KILN_KERNEL void k1(int a) {}\nKILN_KERNEL void k2(int a) {}\n"
                    "KILN_KERNEL void k3(int a) {}\n";
  size_t count = 0;
  assert_int_equal(kiln__kparse(src, strlen(src), funcs, 2, &count), KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(count, 3);
  assert_string_equal(funcs[0].name, "k1");
  assert_string_equal(funcs[1].name, "k2");
  assert_int_equal(kiln_last_error()->status, KILN_ERROR_LIMIT_EXCEEDED);
  assert_non_null(strstr(kiln_last_error()->message, "3 kernels"));
  assert_non_null(strstr(kiln_last_error()->message, "the 2 the caller"));

  /* out == NULL: count only */
  count = 0;
  assert_int_equal(kiln__kparse(src, strlen(src), NULL, 0, &count), KILN_SUCCESS);
  assert_int_equal(count, 3);
  /* only the first len bytes are looked at */
  assert_int_equal(kiln__kparse(src, offset_of(src, "KILN_KERNEL void k3"), funcs, 2, &count),
                   KILN_SUCCESS);
  assert_int_equal(count, 2);
}

/* ---------------------------------------------------------------- rejections */
static void test_rejections(void **state) {
  (void)state;
  static const struct {
    const char *src, *marker, *what;
  } cases[] = {
      {"KILN_KERNEL void v(KILN_GLOBAL float *a,\n                 float4 b) {}", "float4",
       "kernel 'v' parameter 2: unknown type 'float4' (vector types are not part of the "
       "kiln dialect)"},
      {"KILN_KERNEL void v(KILN_GLOBAL uint2 *a) {}", "uint2", "unknown type 'uint2'"},
      {"KILN_KERNEL void v(int n, float *a) {}", "float *a",
       "kernel 'v' parameter 2 'a': a pointer parameter needs KILN_GLOBAL or KILN_LOCAL"},
      {"KILN_KERNEL void v(int n {\n}", "{", "kernel 'v': missing ')'"},
      {"KILN_KERNEL void v(int n;", ";", "missing ')'"},
      {"\n\nKILN_KERNEL void v(int n, float m", "(", "missing ')' closing the parameter list"},
      {"KILN_KERNEL void v(KILN_GLOBAL float *a, size_t n) {}", "size_t",
       "unknown type 'size_t' (size_t is not allowed as a kernel parameter"},
      {"KILN_KERNEL void v(__global float *a) {}", "__global",
       "'__global' belongs to one target language"},
      {"KILN_KERNEL void v(KILN_GLOBAL float **a) {}", "*a", "pointer to pointer"},
      {"KILN_KERNEL int v(int n) {}", "int v", "expected 'void' after KILN_KERNEL, found 'int'"},
      {"KILN_KERNEL void (int n) {}", "(", "expected the kernel's name"},
      {"KILN_KERNEL void v int n) {}", "int", "expected '(' after its name, found 'int'"},
      {"KILN_KERNEL void v(int) {}", ")", "kernel 'v' parameter 1 has no name"},
      {"KILN_KERNEL void v(int a, ) {}", ")", "kernel 'v' parameter 2 is empty"},
      {"KILN_KERNEL void v(KILN_GLOBAL int n) {}", "KILN_GLOBAL",
       "KILN_GLOBAL applies to pointers, and 'n' is a scalar"},
      {"KILN_KERNEL void v(float *KILN_GLOBAL a) {}", "KILN_GLOBAL a",
       "KILN_GLOBAL goes before '*'"},
      {"KILN_KERNEL void v(KILN_GLOBAL KILN_LOCAL float *a) {}", "KILN_LOCAL",
       "KILN_LOCAL after KILN_GLOBAL"},
      {"KILN_KERNEL void v(KILN_LOCAL const float *s) {}", "KILN_LOCAL",
       "const local memory could never be written"},
      {"KILN_KERNEL void v(KILN_GLOBAL void *p) {}", "void *p", "'void *' parameters"},
      {"KILN_KERNEL void v(struct pair p) {}", "struct", "'struct pair' cannot be passed by value"},
      {"KILN_KERNEL void v(long long x) {}", "long long",
       "unknown type 'long long' ('long long' is reserved in OpenCL C)"},
      {"KILN_KERNEL void v(unsigned float x) {}", "unsigned", "unknown type 'unsigned float'"},
      {"KILN_KERNEL void v(bool b) {}", "bool", "unknown type 'bool'"},
      {"KILN_KERNEL void v(half h) {}", "half", "unknown type 'half'"},
      {"KILN_KERNEL void v(MYTYPE x) {}", "MYTYPE", "unknown type 'MYTYPE'"},
      {"KILN_KERNEL void v(KILN_GLOBAL float a[]) {}", "[",
       "unexpected '[' after the parameter name"},
      {"KILN_KERNEL void v(KILN_GLOBAL float *__restrict__ a) {}", "__restrict__",
       "'__restrict__' is not OpenCL C"},
      {"KILN_KERNEL void v(KILN_GLOBAL float restrict *a) {}", "restrict",
       "'restrict' qualifies a pointer"},
      {"KILN_KERNEL void v(const const int n) {}", "const int", "'const' twice"},
      {"KILN_KERNEL void v(volatile int n) {}", "volatile", "'volatile'"},
      {"KILN_KERNEL void v(int n = 3) {}", "=", "unexpected '=' after the parameter name"},
      {"KILN_KERNEL void v(int 3) {}", "3", "unexpected '3'"},
      {"KILN_KERNEL void v(void (*f)(int)) {}", "(*", "unexpected '('"},
      {"KILN_KERNEL void v(int *p) {}", "int", "needs KILN_GLOBAL or KILN_LOCAL"},
      {"KILN_KERNEL void v(KILN_GLOBAL * p) {}", "*", "'*' before any type"},
      {"KILN_KERNEL void v(int kiln__gs0) {}", "kiln__gs0",
       "reserved for the parameters kiln adds"},
      {"KILN_KERNEL void kiln__v(int n) {}", "kiln__v", "reserved"},
      {"KILN_KERNEL void v(int n);\n", "KILN_KERNEL", "kernel 'v' is declared without a body"},
      {"KILN_KERNEL void v(int n) int x;\n", "int x", "expected '{' after the parameter list"},
      {"KILN_KERNEL void v(int n) {}\n\nKILN_KERNEL void v(float x) {}\n",
       "KILN_KERNEL void v(float", "kernel 'v' is defined twice (first at line 1)"},
      {"KILN_KERNEL void ok(int n) {}\n/* never closed\n", "/* never", "unterminated comment"},
      {"KILN_KERNEL void v(int n) { const char *s = \"abc\n\"; }", "\"abc",
       "unterminated string literal"},
      {"KILN_KERNEL void v(int n) { char c = 'x; }", "'x", "unterminated character literal"},
      {"KILN_KERNEL void "
       "a_kernel_name_that_is_far_too_long_for_kiln_a_kernel_name_that_is_far_too_long(int n) "
       "{}",
       "a_kernel", "kernel name longer than 63 characters"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_parse_error(cases[i].src, cases[i].marker, cases[i].what);
}

static void test_exact_position_in_message(void **state) {
  (void)state;
  const char *src = "/* header */\nKILN_KERNEL void v(KILN_GLOBAL const float *a,\n"
                    "\tfloat4 b) {}\n";
  size_t count = 99;
  assert_int_equal(kiln__kparse(src, strlen(src), funcs, MAX_FUNCS, &count), KILN_ERROR_PARSE);
  assert_int_equal(count, 0);
  const char *msg = kiln_last_error()->message;
  assert_true(strncmp(msg,
                      "line 3, column 2: kernel 'v' parameter 2: unknown type 'float4' "
                      "(vector types are not part of the kiln dialect)",
                      strlen("line 3, column 2: kernel 'v' parameter 2: unknown type 'float4' "
                             "(vector types are not part of the kiln dialect)")) == 0);
  assert_non_null(strstr(kiln_last_error()->suggestion, "index it"));
  /* kernels before the faulty one are counted */
  const char *src2 = "KILN_KERNEL void good(int n) {}\nKILN_KERNEL void bad(int4 n) {}\n";
  assert_int_equal(kiln__kparse(src2, strlen(src2), funcs, MAX_FUNCS, &count), KILN_ERROR_PARSE);
  assert_int_equal(count, 1);
  assert_string_equal(funcs[0].name, "good");
}

static void test_too_many_parameters(void **state) {
  (void)state;
  char src[4096];
  size_t n = 0;
  n += (size_t)snprintf(src + n, sizeof src - n, "KILN_KERNEL void many(");
  for (int i = 0; i < KILN_MAX_KERNEL_ARGS; i++)
    n += (size_t)snprintf(src + n, sizeof src - n, "%sint p%d", i ? ", " : "", i);
  snprintf(src + n, sizeof src - n, ") {}");
  assert_int_equal(parse_ok(src), 1);
  assert_int_equal(funcs[0].param_count, KILN_MAX_KERNEL_ARGS);
  check_param(&funcs[0].params[KILN_MAX_KERNEL_ARGS - 1], KILN_PARAM_SCALAR, 4, "int", "p63");
  snprintf(src + n, sizeof src - n, ", int p64) {}");
  expect_parse_error(src, "int p64", "kernel 'many' has more than 64 parameters");
}

/* ---------------------------------------------------------------- rewrite */
static void test_rewrite_opencl(void **state) {
  (void)state;
  const char *src = "/* c = a + b */\n"
                    "KILN_KERNEL void vadd(KILN_GLOBAL const float *a,\n"
                    "  KILN_GLOBAL float *c, KILN_LOCAL float *s, int n) {\n"
                    "  c[0] = a[0];\n"
                    "}\n"
                    "KILN_KERNEL void e(void) {}\n"
                    "KILN_KERNEL void f() {}\n";
  size_t count = parse_ok(src);
  assert_int_equal(count, 3);
  char *out = rewrite(src, count, KILN__TARGET_OPENCL);
  const char *user = user_part(out, KILN__TARGET_OPENCL);
  assert_string_equal(
      user, "/* c = a + b */\n"
            "KILN_KERNEL void vadd(KILN_GLOBAL const float *a,\n"
            "  KILN_GLOBAL float *c, KILN_LOCAL float *s, int n, kiln_u64 kiln__gs0, kiln_u64 "
            "kiln__gs1, kiln_u64 kiln__gs2) {\n"
            "  c[0] = a[0];\n"
            "}\n"
            "KILN_KERNEL void e(kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 kiln__gs2    ) "
            "{}\n"
            "KILN_KERNEL void f(kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 kiln__gs2) {}\n");
  assert_int_equal(count_newlines(user), count_newlines(src));
  free(out);
}

static void test_rewrite_cuda_local_memory(void **state) {
  (void)state;
  const char *src = "KILN_KERNEL void red(KILN_GLOBAL const float *in,\n"
                    "    KILN_LOCAL float *scratch, unsigned int n,\n"
                    "    KILN_LOCAL /* two\n lines */ kiln_i32 *counts)\n"
                    "{\n"
                    "  scratch[0] = in[0]; counts[0] = (int)n;\n"
                    "}\n"
                    "KILN_KERNEL void e( void ) {}\n";
  size_t count = parse_ok(src);
  assert_int_equal(count, 2);
  char *out = rewrite(src, count, KILN__TARGET_CUDA);
  const char *user = user_part(out, KILN__TARGET_CUDA);
  assert_string_equal(
      user, "KILN_KERNEL void red(KILN_GLOBAL const float *in,\n"
            "    kiln_u32 kiln__lo_scratch, unsigned int n,\n"
            "    kiln_u32 kiln__lo_counts\n"
            ", kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 kiln__gs2)\n"
            "{ float *scratch = (float *)(kiln__shared + kiln__lo_scratch); kiln_i32 *counts = "
            "(kiln_i32 *)(kiln__shared + kiln__lo_counts);\n"
            "  scratch[0] = in[0]; counts[0] = (int)n;\n"
            "}\n"
            "KILN_KERNEL void e(kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 kiln__gs2      ) "
            "{}\n");
  assert_int_equal(count_newlines(user), count_newlines(src));
  free(out);

  /* OpenCL keeps local parameters as they are */
  out = rewrite(src, count, KILN__TARGET_OPENCL);
  assert_non_null(strstr(out, "KILN_LOCAL float *scratch, unsigned int n,"));
  assert_null(strstr(out, "kiln__lo_"));
  free(out);
}

static void test_rewrite_preludes(void **state) {
  (void)state;
  static const char *const names[] = {
      "KILN_KERNEL",      "KILN_GLOBAL",        "KILN_LOCAL",         "KILN_LOCAL_ARRAY",
      "KILN_RESTRICT",    "KILN_INLINE",        "kiln_global_id(d)",  "kiln_local_id(d)",
      "kiln_group_id(d)", "kiln_local_size(d)", "kiln_num_groups(d)", "kiln_global_size(d)",
      "kiln_barrier()",   "kiln_u64",           "kiln_f32",           "kiln_i8"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strstr(kiln__prelude_opencl, names[i]))
      fail_msg("OpenCL prelude lacks %s", names[i]);
    if (!strstr(kiln__prelude_cuda, names[i]))
      fail_msg("CUDA prelude lacks %s", names[i]);
  }
  assert_non_null(strstr(kiln__prelude_opencl, "#define KILN_KERNEL __kernel\n"));
  assert_non_null(
      strstr(kiln__prelude_opencl, "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)"));
  assert_non_null(strstr(kiln__prelude_cuda, "#define KILN_KERNEL extern \"C\" __global__\n"));
  assert_non_null(strstr(kiln__prelude_cuda, "__syncthreads()"));
  assert_non_null(strstr(kiln__prelude_cuda, "extern __shared__"));
  assert_non_null(strstr(kiln__prelude_cuda, "kiln__gs0 : (d) == 1 ? kiln__gs1 : kiln__gs2"));
}

static void test_rewrite_size_protocol(void **state) {
  (void)state;
  const char *src = "KILN_KERNEL void k(KILN_GLOBAL float *x) { x[0] = 0.0f; }\n";
  size_t count = parse_ok(src);
  size_t need = 0;
  assert_int_equal(
      kiln__dialect_rewrite(src, strlen(src), funcs, count, KILN__TARGET_OPENCL, NULL, 0, &need),
      KILN_SUCCESS);
  assert_int_equal(need, strlen(kiln__prelude_opencl) + strlen("#line 1\n") + strlen(src) +
                             strlen(", kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 "
                                    "kiln__gs2"));
  char *buf = malloc(need + 1);
  assert_non_null(buf);
  size_t got = 0;
  /* exactly the length is one byte short (the NUL) */
  memset(buf, 'X', need + 1);
  assert_int_equal(
      kiln__dialect_rewrite(src, strlen(src), funcs, count, KILN__TARGET_OPENCL, buf, need, &got),
      KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(got, need);
  assert_int_equal(buf[need - 1], '\0');
  assert_int_equal(buf[need], 'X');
  assert_int_equal(strlen(buf), need - 1);
  char want[64];
  snprintf(want, sizeof want, "needs %zu bytes", need + 1);
  assert_non_null(strstr(kiln_last_error()->message, want));
  snprintf(want, sizeof want, "holds %zu", need);
  assert_non_null(strstr(kiln_last_error()->message, want));
  /* a tiny buffer: terminated, not overrun */
  memset(buf, 'X', need + 1);
  assert_int_equal(
      kiln__dialect_rewrite(src, strlen(src), funcs, count, KILN__TARGET_CUDA, buf, 5, &got),
      KILN_ERROR_LIMIT_EXCEEDED);
  assert_int_equal(buf[4], '\0');
  assert_int_equal(buf[5], 'X');
  assert_memory_equal(buf, kiln__prelude_cuda, 4);
  /* the exact size works */
  assert_int_equal(kiln__dialect_rewrite(src, strlen(src), funcs, count, KILN__TARGET_OPENCL, buf,
                                         need + 1, &got),
                   KILN_SUCCESS);
  assert_int_equal(got, need);
  assert_int_equal(strlen(buf), need);
  free(buf);

  /* an unknown target, and spans from another source */
  assert_int_equal(
      kiln__dialect_rewrite(src, strlen(src), funcs, count, (kiln__dialect_target)7, NULL, 0, &got),
      KILN_ERROR_INVALID_ARGUMENT);
  assert_int_equal(kiln__dialect_rewrite(src, 10, funcs, count, KILN__TARGET_OPENCL, NULL, 0, &got),
                   KILN_ERROR_INVALID_ARGUMENT);
  assert_non_null(strstr(kiln_last_error()->message, "kernel 'k'"));
  /* no kernels: prelude + #line + the text as it is */
  assert_int_equal(
      kiln__dialect_rewrite("int x;\n", 7, funcs, 0, KILN__TARGET_OPENCL, NULL, 0, &got),
      KILN_SUCCESS);
  assert_int_equal(got, strlen(kiln__prelude_opencl) + 8 + 7);
}

/* OpenCL kernels that never read kiln_global_size() get no hidden size parameters
 * (every argument costs PoCL an allocation and a copy per launch); a mention in the
 * body, or anywhere outside the kernel bodies (a macro), or a `##` or `#include`
 * (text kiln cannot follow) keeps them. Comments and strings do not count. CUDA keeps
 * them on every kernel. */
static void test_rewrite_sizes_only_where_read(void **state) {
  (void)state;
  const char *src = "KILN_KERNEL void a(KILN_GLOBAL int *o) {\n"
                    "  if (kiln_global_id(0) < kiln_global_size(0)) o[0] = 1; }\n"
                    "KILN_KERNEL void b(KILN_GLOBAL int *o) {\n"
                    "  /* kiln_global_size(0) */ o[0] = 2; }\n"
                    "KILN_KERNEL void c(void) { }\n";
  size_t count = parse_ok(src);
  assert_int_equal(count, 3);
  assert_true(kiln__kernel_uses_global_size(src, strlen(src), funcs, count, 0));
  assert_false(kiln__kernel_uses_global_size(src, strlen(src), funcs, count, 1));
  assert_false(kiln__kernel_uses_global_size(src, strlen(src), funcs, count, 2));
  kiln__dialect_mark_sizes(src, strlen(src), funcs, count, KILN__TARGET_OPENCL);
  assert_false(funcs[0].no_sizes);
  assert_true(funcs[1].no_sizes);
  assert_true(funcs[2].no_sizes);
  char *out = rewrite(src, count, KILN__TARGET_OPENCL);
  const char *user = user_part(out, KILN__TARGET_OPENCL);
  assert_non_null(strstr(user, "void a(KILN_GLOBAL int *o, kiln_u64 kiln__gs0, kiln_u64 "
                               "kiln__gs1, kiln_u64 kiln__gs2) {"));
  assert_non_null(strstr(user, "KILN_KERNEL void b(KILN_GLOBAL int *o) {\n"));
  assert_non_null(strstr(user, "KILN_KERNEL void c(void) { }\n"));
  assert_int_equal(count_newlines(user), count_newlines(src));
  free(out);
  /* CUDA: every kernel keeps them */
  kiln__dialect_mark_sizes(src, strlen(src), funcs, count, KILN__TARGET_CUDA);
  for (size_t k = 0; k < count; k++)
    assert_false(funcs[k].no_sizes);
  out = rewrite(src, count, KILN__TARGET_CUDA);
  assert_non_null(strstr(out, "void c(kiln_u64 kiln__gs0"));
  free(out);
  /* text outside the bodies that may read them: every kernel keeps them */
  static const char *const keep[] = {
      "#define N kiln_global_size(0)\nKILN_KERNEL void k(KILN_GLOBAL int *o) { o[0] = N; }\n",
      "#define G(x) kiln_##x(0)\nKILN_KERNEL void k(KILN_GLOBAL int *o) { o[0] = G(global_id); }\n",
      "#include \"sizes.h\"\nKILN_KERNEL void k(KILN_GLOBAL int *o) { o[0] = 1; }\n",
      /* a macro defined inside another kernel's body, used in this one's */
      "KILN_KERNEL void z(KILN_GLOBAL int *o) {\n#define N \\\n kiln_global_size(0)\n o[0] = 0; }\n"
      "KILN_KERNEL void k(KILN_GLOBAL int *o) { o[0] = N; }\n",
  };
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    count = parse_ok(keep[i]);
    assert_true(count >= 1);
    kiln__dialect_mark_sizes(keep[i], strlen(keep[i]), funcs, count, KILN__TARGET_OPENCL);
    for (size_t k = 0; k < count; k++) {
      if (!kiln__kernel_uses_global_size(keep[i], strlen(keep[i]), funcs, count, k))
        fail_msg("source %zu: kernel '%s' was taken as never reading kiln_global_size()", i,
                 funcs[k].name);
      assert_false(funcs[k].no_sizes);
    }
  }
  /* a string literal mentioning it does not count either */
  const char *lit = "KILN_KERNEL void k(KILN_GLOBAL char *o) { o[0] = \"kiln_global_size\"[0]; }\n";
  count = parse_ok(lit);
  assert_false(kiln__kernel_uses_global_size(lit, strlen(lit), funcs, count, 0));
}

/* ---------------------------------------------------------------- test kernels */
/* tests/kernels/, found from this file's path (ctest runs in the build tree). */
static void kernel_path(const char *file, char *path, size_t bytes) {
  const char *here = __FILE__;
  const char *cut = strstr(here, "tests/unit/test_kparse.c");
  assert_non_null(cut);
  snprintf(path, bytes, "%.*stests/kernels/%s", (int)(cut - here), here, file);
}

static char *read_kernel(const char *file, size_t *len) {
  char path[1024];
  kernel_path(file, path, sizeof path);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char *text = malloc(65536);
  assert_non_null(text);
  size_t n = fread(text, 1, 65535, f);
  fclose(f);
  text[n] = '\0';
  *len = n;
  return text;
}

typedef struct want_param {
  kiln_param_kind kind;
  size_t bytes;
  const char *type, *name;
} want_param;

typedef struct want_kernel {
  const char *file, *name;
  unsigned line;
  uint32_t count;
  want_param params[4];
} want_kernel;

#define RD KILN_PARAM_BUFFER_READ
#define RW KILN_PARAM_BUFFER_READ_WRITE
#define SC KILN_PARAM_SCALAR
#define LO KILN_PARAM_LOCAL
static const want_kernel kernel_files[] = {
    {"vecadd.kiln",
     "vecadd",
     4,
     4,
     {{RD, 0, "float", "a"}, {RD, 0, "float", "b"}, {RW, 0, "float", "c"}, {SC, 4, "int", "n"}}},
    {"saxpy.kiln",
     "saxpy",
     4,
     4,
     {{SC, 4, "float", "alpha"},
      {RD, 0, "float", "x"},
      {RW, 0, "float", "y"},
      {SC, 4, "unsigned int", "n"}}},
    {"reduce.kiln",
     "reduce_sum",
     7,
     4,
     {{RD, 0, "float", "in"},
      {RW, 0, "float", "partial"},
      {LO, 0, "float", "scratch"},
      {SC, 4, "unsigned int", "n"}}},
    {"reduce.kiln",
     "reduce_sum_static",
     21,
     3,
     {{RD, 0, "float", "in"}, {RW, 0, "float", "partial"}, {SC, 4, "unsigned int", "n"}}},
    {"stencil2d.kiln",
     "stencil2d",
     9,
     4,
     {{RD, 0, "float", "in"}, {RW, 0, "float", "out"}, {SC, 4, "int", "w"}, {SC, 4, "int", "h"}}},
    {"guard.kiln", "guard", 6, 1, {{RW, 0, "unsigned int", "out"}}},
    {"guard.kiln", "guard2d", 12, 1, {{RW, 0, "int", "out"}}},
    {"broken.kiln", "broken", 4, 1, {{RW, 0, "float", "out"}}},
    {"empty.kiln", "empty", 3, 0, {{0, 0, NULL, NULL}}},
};
static const char *const kernel_file_names[] = {"vecadd.kiln",    "saxpy.kiln", "reduce.kiln",
                                                "stencil2d.kiln", "guard.kiln", "broken.kiln",
                                                "empty.kiln"};
#define KERNEL_FILES (sizeof kernel_file_names / sizeof kernel_file_names[0])

static size_t kernels_in(const char *file) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof kernel_files / sizeof kernel_files[0]; i++)
    n += !strcmp(kernel_files[i].file, file);
  return n;
}

static void test_kernel_files_parse(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof kernel_files / sizeof kernel_files[0]; k++) {
    const want_kernel *w = &kernel_files[k];
    size_t len, count = 0;
    char *text = read_kernel(w->file, &len);
    kiln_status st = kiln__kparse(text, len, funcs, MAX_FUNCS, &count);
    if (st != KILN_SUCCESS)
      fail_msg("%s: %s", w->file, kiln_last_error()->message);
    assert_int_equal(count, kernels_in(w->file));
    const kiln__kfunc *f = kiln__kfind(funcs, count, w->name);
    if (!f)
      fail_msg("%s: kernel '%s' not found", w->file, w->name);
    if (f->line != w->line)
      fail_msg("%s: '%s' at line %u, expected %u", w->file, w->name, f->line, w->line);
    assert_int_equal(f->param_count, w->count);
    for (uint32_t i = 0; i < w->count; i++)
      check_param(&f->params[i], w->params[i].kind, w->params[i].bytes, w->params[i].type,
                  w->params[i].name);
    /* both rewrites keep the user's lines */
    for (int t = 0; t < 2; t++) {
      char *out = rewrite(text, count, (kiln__dialect_target)t);
      assert_int_equal(count_newlines(user_part(out, (kiln__dialect_target)t)),
                       count_newlines(text));
      free(out);
    }
    free(text);
  }
}

/* ---------------------------------------------------------------- OpenCL (PoCL) */
typedef struct cl_fns {
  cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id *, cl_uint *);
  cl_int (*GetDeviceIDs)(cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *);
  cl_context (*CreateContext)(const cl_context_properties *, cl_uint, const cl_device_id *,
                              void(CL_CALLBACK *)(const char *, const void *, size_t, void *),
                              void *, cl_int *);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char **, const size_t *,
                                        cl_int *);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id *, const char *,
                         void(CL_CALLBACK *)(cl_program, void *), void *);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_program_build_info, size_t, void *,
                                size_t *);
  cl_kernel (*CreateKernel)(cl_program, const char *, cl_int *);
  cl_int (*GetKernelInfo)(cl_kernel, cl_kernel_info, size_t, void *, size_t *);
  cl_int (*ReleaseKernel)(cl_kernel);
  cl_int (*ReleaseProgram)(cl_program);
  cl_int (*ReleaseContext)(cl_context);
} cl_fns;

typedef struct cl_env {
  void *lib;
  cl_fns fn;
  cl_device_id device;
  cl_context context;
} cl_env;

/* Load libOpenCL.so.1 and take the first device of the first platform that has one.
 * Returns 0 when none (the test is skipped). */
static int cl_open(cl_env *env) {
  memset(env, 0, sizeof *env);
  env->lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!env->lib)
    return 0;
  struct {
    void **slot;
    const char *name;
  } syms[] = {
      {(void **)&env->fn.GetPlatformIDs, "clGetPlatformIDs"},
      {(void **)&env->fn.GetDeviceIDs, "clGetDeviceIDs"},
      {(void **)&env->fn.CreateContext, "clCreateContext"},
      {(void **)&env->fn.CreateProgramWithSource, "clCreateProgramWithSource"},
      {(void **)&env->fn.BuildProgram, "clBuildProgram"},
      {(void **)&env->fn.GetProgramBuildInfo, "clGetProgramBuildInfo"},
      {(void **)&env->fn.CreateKernel, "clCreateKernel"},
      {(void **)&env->fn.GetKernelInfo, "clGetKernelInfo"},
      {(void **)&env->fn.ReleaseKernel, "clReleaseKernel"},
      {(void **)&env->fn.ReleaseProgram, "clReleaseProgram"},
      {(void **)&env->fn.ReleaseContext, "clReleaseContext"},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    /* ISO C has no function-pointer <-> void * conversion: write the object bytes. */
    *syms[i].slot = dlsym(env->lib, syms[i].name);
    if (!*syms[i].slot)
      return 0;
  }
  cl_platform_id platforms[8];
  cl_uint np = 0;
  if (env->fn.GetPlatformIDs(8, platforms, &np) != CL_SUCCESS || np == 0)
    return 0;
  for (cl_uint p = 0; p < np && p < 8; p++) {
    cl_uint nd = 0;
    if (env->fn.GetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 1, &env->device, &nd) ==
            CL_SUCCESS &&
        nd > 0) {
      cl_int err = CL_SUCCESS;
      env->context = env->fn.CreateContext(NULL, 1, &env->device, NULL, NULL, &err);
      return env->context != NULL && err == CL_SUCCESS;
    }
  }
  return 0;
}

static void cl_close(cl_env *env) {
  if (env->context)
    env->fn.ReleaseContext(env->context);
  /* The ICD loader stays loaded: its platform list lives in its globals, and unmapping
   * them with dlclose would turn that list into a leak LeakSanitizer reports. */
}

/* Build text; returns the status and copies the log into log[0..bytes). */
static cl_int cl_build(cl_env *env, const char *text, size_t len, cl_program *program, char *log,
                       size_t bytes) {
  cl_int err = CL_SUCCESS;
  *program = env->fn.CreateProgramWithSource(env->context, 1, &text, &len, &err);
  if (!*program)
    return err;
  err = env->fn.BuildProgram(*program, 1, &env->device, "-cl-std=CL1.2", NULL, NULL);
  log[0] = '\0';
  env->fn.GetProgramBuildInfo(*program, env->device, CL_PROGRAM_BUILD_LOG, bytes, log, NULL);
  log[bytes - 1] = '\0';
  return err;
}

static int opencl_available(void) {
  cl_env env;
  int ok = cl_open(&env);
  cl_close(&env);
  return ok;
}

static void test_kernel_files_build_opencl(void **state) {
  (void)state;
  cl_env env;
  if (!cl_open(&env)) {
    cl_close(&env);
    skip();
  }
  static char log[65536];
  for (size_t k = 0; k < KERNEL_FILES; k++) {
    const char *file = kernel_file_names[k];
    size_t len, count = 0;
    char *text = read_kernel(file, &len);
    assert_int_equal(kiln__kparse(text, len, funcs, MAX_FUNCS, &count), KILN_SUCCESS);
    size_t out_len = 0;
    assert_int_equal(
        kiln__dialect_rewrite(text, len, funcs, count, KILN__TARGET_OPENCL, NULL, 0, &out_len),
        KILN_SUCCESS);
    char *out = malloc(out_len + 1);
    assert_non_null(out);
    assert_int_equal(kiln__dialect_rewrite(text, len, funcs, count, KILN__TARGET_OPENCL, out,
                                           out_len + 1, &out_len),
                     KILN_SUCCESS);
    cl_program program = NULL;
    cl_int err = cl_build(&env, out, out_len, &program, log, sizeof log);
    if (!strcmp(file, "broken.kiln")) {
      /* the error names the user's line 6, thanks to #line 1 after the prelude */
      if (err == CL_SUCCESS)
        fail_msg("broken.kiln built");
      if (!strstr(log, ":6:") || !strstr(log, "kiln_undeclared_value"))
        fail_msg("broken.kiln: the log does not point at line 6:\n%s", log);
    } else {
      if (err != CL_SUCCESS)
        fail_msg("%s failed to build (%d):\n%s", file, (int)err, log);
      for (size_t i = 0; i < count; i++) {
        cl_kernel kernel = env.fn.CreateKernel(program, funcs[i].name, &err);
        if (!kernel)
          fail_msg("%s: clCreateKernel(%s) = %d", file, funcs[i].name, (int)err);
        cl_uint args = 0;
        assert_int_equal(env.fn.GetKernelInfo(kernel, CL_KERNEL_NUM_ARGS, sizeof args, &args, NULL),
                         CL_SUCCESS);
        /* the user's parameters and the three hidden global sizes */
        assert_int_equal(args, funcs[i].param_count + KILN__HIDDEN_GS_PARAMS);
        env.fn.ReleaseKernel(kernel);
      }
    }
    if (program)
      env.fn.ReleaseProgram(program);
    free(out);
    free(text);
  }
  cl_close(&env);
}

/* ---------------------------------------------------------------- CUDA as C++ */
/* Just enough of CUDA for g++ to check the rewritten CUDA sources' syntax and types. */
static const char cuda_shim[] =
    "typedef __SIZE_TYPE__ size_t;\n"
    "#define __global__\n"
    "#define __device__\n"
    "#define __shared__\n"
    "#define __align__(n) __attribute__((aligned(n)))\n"
    "struct uint3 { unsigned x, y, z; };\n"
    "struct dim3 { unsigned x, y, z; };\n"
    "extern const uint3 threadIdx, blockIdx;\n"
    "extern const dim3 blockDim, gridDim;\n"
    "void __syncthreads();\n"
    "void __threadfence();\n"
    "#define KT_A(f) template <class T, class U> T f(T *, U);\n"
    "KT_A(atomicAdd) KT_A(atomicSub) KT_A(atomicMin) KT_A(atomicMax)\n"
    "KT_A(atomicAnd) KT_A(atomicOr) KT_A(atomicXor) KT_A(atomicExch)\n"
    "template <class T, class U, class V> T atomicCAS(T *, U, V);\n"
    /* the scoped_atomics level's (compute capability 6.0) */
    "void __threadfence_block();\n"
    "KT_A(atomicAdd_block) KT_A(atomicSub_block) KT_A(atomicMin_block)\n"
    "KT_A(atomicMax_block) KT_A(atomicAnd_block) KT_A(atomicOr_block)\n"
    "KT_A(atomicXor_block) KT_A(atomicExch_block)\n"
    "template <class T, class U, class V> T atomicCAS_block(T *, U, V);\n"
    "template <class T, class U> T min(T, U);\n"
    "template <class T, class U> T max(T, U);\n"
    "float sqrt(float); float exp(float); float log(float);\n"
    "float sin(float); float cos(float); float pow(float, float);\n"
    "float fabs(float); float floor(float); float ceil(float);\n"
    "float fmin(float, float); float fmax(float, float);\n"
    "float tanh(float); float atan2(float, float);\n"
    "float exp2(float); float log2(float);\n";

static int have_gxx(void) {
  return system("g++ --version >/dev/null 2>&1") == 0;
}

static void test_kernel_files_cuda_syntax(void **state) {
  (void)state;
  if (!have_gxx()) {
    print_message("g++ not found: the CUDA syntax check is skipped\n");
    skip();
  }
  for (size_t k = 0; k < KERNEL_FILES; k++) {
    const char *file = kernel_file_names[k];
    size_t len, count = 0;
    char *text = read_kernel(file, &len);
    assert_int_equal(kiln__kparse(text, len, funcs, MAX_FUNCS, &count), KILN_SUCCESS);
    char *out = rewrite(text, count, KILN__TARGET_CUDA);
    FILE *p = popen("g++ -std=c++17 -fsyntax-only -Wall -Werror -Wno-unused -x c++ - "
                    "2>&1",
                    "w");
    assert_non_null(p);
    fputs(cuda_shim, p);
    fputs(out, p);
    int rc = pclose(p);
    if (!strcmp(file, "broken.kiln")) {
      if (rc == 0)
        fail_msg("broken.kiln passed g++ -fsyntax-only");
    } else if (rc != 0) {
      fail_msg("%s: the CUDA rewrite fails g++ -fsyntax-only (output above)", file);
    }
    free(out);
    free(text);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts_every_form),
      cmocka_unit_test(test_zero_parameters),
      cmocka_unit_test(test_spans_and_offsets),
      cmocka_unit_test(test_skips_comments_literals_preprocessor),
      cmocka_unit_test(test_multiple_kernels_and_find),
      cmocka_unit_test(test_more_kernels_than_the_table),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_exact_position_in_message),
      cmocka_unit_test(test_too_many_parameters),
      cmocka_unit_test(test_rewrite_opencl),
      cmocka_unit_test(test_rewrite_cuda_local_memory),
      cmocka_unit_test(test_rewrite_preludes),
      cmocka_unit_test(test_rewrite_size_protocol),
      cmocka_unit_test(test_rewrite_sizes_only_where_read),
      cmocka_unit_test(test_kernel_files_parse),
      cmocka_unit_test(test_kernel_files_build_opencl),
      cmocka_unit_test(test_kernel_files_cuda_syntax),
  };
  if (argc > 1) {
    /* the OpenCL test is skipped, visibly (77), only where no platform exists */
    if (!strcmp(argv[1], "test_kernel_files_build_opencl") && !opencl_available()) {
      fprintf(stderr, "no OpenCL platform with a device: test skipped\n");
      return 77;
    }
    cmocka_set_test_filter(argv[1]);
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
