/* SPDX-License-Identifier: MIT */
/* Helpers of the compile cache's tests (unit/test_kcache.c, stress/test_kcache_race.c):
 * kernel sources numbered 0..N-1 that the mock's fake compiler turns into kernels
 * writing a code of their own, and one build: program, kernel, launch, read back. */
#ifndef KT_KCACHE_H
#define KT_KCACHE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <kiln.h>

/* Source number i: one kernel `k<i>` whose body differs with i (so its code does). */
static inline void kt_kc_source(unsigned i, char *out, size_t out_bytes) {
  snprintf(out, out_bytes,
           "/* kernel source %u of the cache tests */\n"
           "KILN_KERNEL void k%u(KILN_GLOBAL kiln_u32 *out) {\n"
           "  out[kiln_global_id(0)] = %uu;\n"
           "}\n",
           i, i, i * 7919u + 17u);
}

/* Build source i on ctx (through the cache), launch its kernel on `stream` over 4
 * items and read the code it wrote into *code (0 on failure; every item must agree,
 * else 1). Returns the first failing status. */
static inline kiln_status kt_kc_build_run(kiln_context ctx, kiln_stream stream, unsigned i,
                                          const char *options, uint32_t *code) {
  char src[512], name[16];
  kt_kc_source(i, src, sizeof src);
  snprintf(name, sizeof name, "k%u", i);
  *code = 0;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.options = options;
  d.name = "cache-test";
  kiln_program p = NULL;
  kiln_kernel k = NULL;
  kiln_buffer b = NULL;
  kiln_status st = kiln_program_create(ctx, &d, &p);
  if (st == KILN_SUCCESS)
    st = kiln_kernel_create(p, name, &k);
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 4 * sizeof(uint32_t);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_create(ctx, &bd, &b);
  uint32_t got[4] = {0, 0, 0, 0};
  if (st == KILN_SUCCESS) {
    kiln_arg a = kiln_arg_buffer(b);
    kiln_range r = kiln_range_1d(4);
    st = kiln_launch(stream, k, &r, &a, 1);
  }
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(b, 0, sizeof got, got);
  if (st == KILN_SUCCESS)
    *code = got[0] == got[1] && got[1] == got[2] && got[2] == got[3] ? got[0] : 1;
  kiln_buffer_destroy(b);
  kiln_kernel_destroy(k);
  kiln_program_destroy(p);
  return st;
}

#endif
