/* SPDX-License-Identifier: MIT */
/* A kiln-dialect kernel that writes one element past its buffer, run on the CPU
 * backend in the ASan tree (tests/dialect.cmake): the kernel is compiled with ASan
 * too, so the write is reported as a heap-buffer-overflow in the kernel at its dialect
 * line (`<source>:3`), where PoCL would silently corrupt the neighbouring memory.
 * `clean` launches only the work-items that stay inside: no report, exit 0. */
#include <stdio.h>
#include <string.h>

#include "kiln.h"

static const char source[] = "KILN_KERNEL void oob(KILN_GLOBAL int *out) {\n"
                             "  size_t i = kiln_global_id(0);\n"
                             "  out[i + 1] = (int)i; /* past the end at the last work-item */\n"
                             "}\n";

#define CHECK(call)                                                          \
  do {                                                                       \
    kiln_status st_ = (call);                                                \
    if (st_ != KILN_SUCCESS) {                                               \
      fprintf(stderr, "%s failed: %s\n", #call, kiln_last_error()->message); \
      return 1;                                                              \
    }                                                                        \
  } while (0)

int main(int argc, char **argv) {
  int clean = argc > 1 && !strcmp(argv[1], "clean");
  kiln_device d;
  kiln_context c;
  kiln_stream s;
  CHECK(kiln_device_parse("cpu:0", &d));
  CHECK(kiln_context_create(d, NULL, &c));
  CHECK(kiln_stream_create(c, NULL, &s));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = source;
  pd.name = "oob.kiln";
  kiln_program p;
  kiln_kernel k;
  CHECK(kiln_program_create(c, &pd, &p));
  CHECK(kiln_kernel_create(p, "oob", &k));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 16 * sizeof(int);
  kiln_buffer b;
  CHECK(kiln_buffer_create(c, &bd, &b));
  kiln_arg a = kiln_arg_buffer(b);
  kiln_range r = kiln_range_1d(clean ? 15 : 16);
  CHECK(kiln_launch(s, k, &r, &a, 1));
  CHECK(kiln_buffer_destroy(b));
  CHECK(kiln_kernel_destroy(k));
  CHECK(kiln_program_destroy(p));
  CHECK(kiln_stream_destroy(s));
  CHECK(kiln_context_destroy(c));
  puts("no report");
  return 0;
}
