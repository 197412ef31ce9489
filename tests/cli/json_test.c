/* SPDX-License-Identifier: MIT */
/* Tests of the CLI's JSON writer (tools/kiln/json.c): escaping of quotes, backslashes
 * and control characters, invalid UTF-8 replaced by U+FFFD while valid UTF-8 passes
 * through, null for NULL strings and non-finite numbers, doubles that read back
 * exactly, and misuse (unbalanced nesting) reported by kiln_json_finish(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int failures;

/* Run `emit` on a writer over a temporary file; compare the text with `expected`. */
static void check(const char *what, void (*emit)(kiln_json *), int pretty, int want_finish,
                  const char *expected) {
  FILE *f = tmpfile();
  if (!f) {
    perror("tmpfile");
    exit(1);
  }
  kiln_json j;
  kiln_json_init(&j, f, pretty);
  emit(&j);
  int fin = kiln_json_finish(&j);
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

static void emit_escapes(kiln_json *j) {
  kiln_json_array_begin(j);
  kiln_json_string(j, "quote \" backslash \\ slash /");
  kiln_json_string(j, "nl\n cr\r tab\t bs\b ff\f");
  kiln_json_string(j, "\x01\x1f\x7f");
  kiln_json_string(j, NULL);
  kiln_json_string(j, "");
  kiln_json_array_end(j);
}

static void emit_utf8(kiln_json *j) {
  kiln_json_array_begin(j);
  kiln_json_string(j, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5"); /* valid: kept */
  kiln_json_string(j, "bad \xff end");                              /* invalid byte */
  kiln_json_string(j, "trunc \xe2\x82");                            /* cut sequence */
  kiln_json_string(j, "overlong \xc0\xaf surrogate \xed\xa0\x80");  /* forbidden */
  kiln_json_array_end(j);
}

static void emit_numbers(kiln_json *j) {
  kiln_json_object_begin(j);
  kiln_json_kv_int(j, "neg", -9223372036854775807LL - 1);
  kiln_json_kv_uint(j, "big", 18446744073709551615ULL);
  kiln_json_kv_double(j, "tenth", 0.1);
  kiln_json_kv_double(j, "third", 1.0 / 3.0);
  kiln_json_kv_double(j, "nan", NAN);
  kiln_json_kv_double(j, "inf", INFINITY);
  kiln_json_kv_bool(j, "t", 1);
  kiln_json_kv_bool(j, "f", 0);
  kiln_json_key(j, "n");
  kiln_json_null(j);
  kiln_json_object_end(j);
}

static void emit_nested_pretty(kiln_json *j) {
  kiln_json_object_begin(j);
  kiln_json_key(j, "a");
  kiln_json_array_begin(j);
  kiln_json_uint(j, 1);
  kiln_json_object_begin(j);
  kiln_json_object_end(j);
  kiln_json_array_begin(j);
  kiln_json_array_end(j);
  kiln_json_array_end(j);
  kiln_json_kv_string(j, "k\"ey", "v");
  kiln_json_object_end(j);
}

static void emit_unbalanced(kiln_json *j) {
  kiln_json_object_begin(j);
  kiln_json_key(j, "a");
}

static void emit_value_without_key(kiln_json *j) {
  kiln_json_object_begin(j);
  kiln_json_uint(j, 1);
  kiln_json_object_end(j);
}

static void emit_two_documents(kiln_json *j) {
  kiln_json_null(j);
  kiln_json_null(j);
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
        "\"third\":0.33333333333333331,\"nan\":null,\"inf\":null,\"t\":true,\"f\":false,"
        "\"n\":null}\n");
  check("pretty", emit_nested_pretty, 1, 0,
        "{\n  \"a\": [\n    1,\n    {},\n    []\n  ],\n  \"k\\\"ey\": \"v\"\n}\n");
  check("unbalanced", emit_unbalanced, 0, -1, NULL);
  check("value without key", emit_value_without_key, 0, -1, NULL);
  check("two documents", emit_two_documents, 0, -1, NULL);
  if (failures) {
    printf("%d check(s) failed\n", failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
