/* SPDX-License-Identifier: MIT */
/* Tests of the JSON writer (src/bench/json.c) that the bench report and the CLI's
 * --json output share: escaping of quotes, backslashes and control characters, invalid
 * UTF-8 replaced by U+FFFD while valid UTF-8 passes through, null for NULL strings and
 * non-finite numbers, doubles in the shortest form that reads back exactly, the pretty
 * layout, and misuse (unbalanced nesting, keys where none belong) reported by
 * kiln__json_finish(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int failures;

/* Run `emit` on a writer over a temporary file; compare the text with `expected`. */
static void check(const char *what, void (*emit)(kiln__json *), int pretty, int want_finish,
                  const char *expected) {
  FILE *f = tmpfile();
  if (!f) {
    perror("tmpfile");
    exit(1);
  }
  kiln__json j;
  kiln__json_init(&j, f, pretty);
  emit(&j);
  int fin = kiln__json_finish(&j);
  char got[4096];
  rewind(f);
  size_t n = fread(got, 1, sizeof got - 1, f);
  got[n] = '\0';
  fclose(f);
  if (fin != want_finish || (expected && strcmp(got, expected) != 0)) {
    printf("FAIL %s: finish %d (want %d)\n  got:      %s\n  expected: %s\n", what, fin, want_finish,
           got, expected ? expected : "(any)");
    failures++;
  } else {
    printf("ok   %s\n", what);
  }
}

static void emit_escapes(kiln__json *j) {
  kiln__json_begin_array(j, NULL);
  kiln__json_string(j, NULL, "quote \" backslash \\ slash /");
  kiln__json_string(j, NULL, "nl\n cr\r tab\t bs\b ff\f");
  kiln__json_string(j, NULL, "\x01\x1f\x7f");
  kiln__json_string(j, NULL, NULL);
  kiln__json_string(j, NULL, "");
  kiln__json_end_array(j);
}

static void emit_utf8(kiln__json *j) {
  kiln__json_begin_array(j, NULL);
  kiln__json_string(j, NULL, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5"); /* valid: kept */
  kiln__json_string(j, NULL, "bad \xff end");                              /* invalid byte */
  kiln__json_string(j, NULL, "trunc \xe2\x82");                            /* cut sequence */
  kiln__json_string(j, NULL, "overlong \xc0\xaf surrogate \xed\xa0\x80");  /* forbidden */
  kiln__json_end_array(j);
}

static void emit_numbers(kiln__json *j) {
  kiln__json_begin_object(j, NULL);
  kiln__json_int(j, "neg", -9223372036854775807LL - 1);
  kiln__json_uint(j, "big", 18446744073709551615ULL);
  kiln__json_number(j, "tenth", 0.1);
  kiln__json_number(j, "third", 1.0 / 3.0);
  kiln__json_number(j, "million", 1e6);
  kiln__json_number(j, "bytes", 67108864.0);
  kiln__json_number(j, "nan", NAN);
  kiln__json_number(j, "inf", INFINITY);
  kiln__json_bool(j, "t", 1);
  kiln__json_bool(j, "f", 0);
  kiln__json_null(j, "n");
  kiln__json_end_object(j);
}

static void emit_nested_pretty(kiln__json *j) {
  kiln__json_begin_object(j, NULL);
  kiln__json_begin_array(j, "a");
  kiln__json_uint(j, NULL, 1);
  kiln__json_begin_object(j, NULL);
  kiln__json_end_object(j);
  kiln__json_begin_array(j, NULL);
  kiln__json_end_array(j);
  kiln__json_end_array(j);
  kiln__json_string(j, "k\"ey", "v");
  kiln__json_end_object(j);
}

static void emit_unbalanced(kiln__json *j) {
  kiln__json_begin_object(j, NULL);
  kiln__json_begin_array(j, "a");
}

static void emit_value_without_key(kiln__json *j) {
  kiln__json_begin_object(j, NULL);
  kiln__json_uint(j, NULL, 1);
  kiln__json_end_object(j);
}

static void emit_key_in_array(kiln__json *j) {
  kiln__json_begin_array(j, NULL);
  kiln__json_uint(j, "k", 1);
  kiln__json_end_array(j);
}

static void emit_key_at_top(kiln__json *j) {
  kiln__json_null(j, "k");
}

static void emit_two_documents(kiln__json *j) {
  kiln__json_null(j, NULL);
  kiln__json_null(j, NULL);
}

static void emit_wrong_close(kiln__json *j) {
  kiln__json_begin_object(j, NULL);
  kiln__json_end_array(j);
}

int main(void) {
  check("escapes", emit_escapes, 0, 0,
        "[\"quote \\\" backslash \\\\ slash /\",\"nl\\n cr\\r tab\\t bs\\b ff\\f\","
        "\"\\u0001\\u001f\\u007f\",null,\"\"]\n");
  check("utf8", emit_utf8, 0, 0,
        "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5\",\"bad \\ufffd end\","
        "\"trunc \\ufffd\\ufffd\",\"overlong \\ufffd\\ufffd surrogate "
        "\\ufffd\\ufffd\\ufffd\"]\n");
  check("numbers", emit_numbers, 0, 0,
        "{\"neg\":-9223372036854775808,\"big\":18446744073709551615,\"tenth\":0.1,"
        "\"third\":0.3333333333333333,\"million\":1e+06,\"bytes\":67108864,\"nan\":null,"
        "\"inf\":null,\"t\":true,\"f\":false,\"n\":null}\n");
  check("pretty", emit_nested_pretty, 1, 0,
        "{\n  \"a\": [\n    1,\n    {},\n    []\n  ],\n  \"k\\\"ey\": \"v\"\n}\n");
  check("unbalanced", emit_unbalanced, 0, -1, NULL);
  check("value without key", emit_value_without_key, 0, -1, NULL);
  check("key in an array", emit_key_in_array, 0, -1, NULL);
  check("key at the top", emit_key_at_top, 0, -1, NULL);
  check("two documents", emit_two_documents, 0, -1, NULL);
  check("object closed as an array", emit_wrong_close, 0, -1, NULL);
  if (failures) {
    printf("%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
