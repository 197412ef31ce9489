/* SPDX-License-Identifier: MIT */
/* The ring dialect header through NVRTC without a GPU: kiln_ring_dialect_source() and
 * the ring server kernel (ring_server_src.h) parsed, rewritten for CUDA (prelude.c) and
 * compiled to CUBIN for sm_80 and sm_90 — the CUDA branch of include/kiln/dialect/ring.h
 * (system-scope atomicCAS_system / atomicAdd_system, __threadfence_system) compiles, and
 * the kernel is an unmangled symbol. What a GPU run must check besides is in
 * docs/ring.md. Skips (exit 77, visibly) where NVRTC cannot be loaded.
 * kiln-test-labels: cuda-nogpu unit
 * kiln-test-link: static */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/cuda/cuda_api.h"
#include "core/kparse.h"
#include "core/prelude.h"
#include "kiln.h"
#include "ring_server_src.h"

static void compile_for(const char *arch) {
  const char *dialect = kiln_ring_dialect_source();
  size_t a = strlen(dialect), b = strlen(server_src), len = a + b;
  char *text = malloc(len + 1);
  assert_non_null(text);
  memcpy(text, dialect, a);
  memcpy(text + a, server_src, b + 1);
  kiln__kfunc funcs[4];
  size_t count = 0;
  if (kiln__kparse(text, len, funcs, 4, &count) != KILN_SUCCESS)
    fail_msg("parse: %s", kiln_last_error()->message);
  assert_int_equal(count, 1);
  assert_string_equal(funcs[0].name, "ring_server");
  size_t need = 0, out_len = 0;
  assert_int_equal(
      kiln__dialect_rewrite(text, len, funcs, count, KILN__TARGET_CUDA, NULL, 0, &need),
      KILN_SUCCESS);
  char *src = malloc(need + 1);
  assert_non_null(src);
  assert_int_equal(
      kiln__dialect_rewrite(text, len, funcs, count, KILN__TARGET_CUDA, src, need + 1, &out_len),
      KILN_SUCCESS);
  void *image = NULL;
  size_t bytes = 0;
  kiln_status st = kiln__cuda_compile(src, out_len, "ring_server", arch, 0, NULL, &image, &bytes);
  if (st != KILN_SUCCESS)
    fail_msg("ring dialect for %s: %s\n%s", arch, kiln_last_error()->message,
             kiln_last_build_log());
  assert_true(bytes > 4);
  assert_memory_equal(image, "\177ELF", 4);
  /* the kernel's name is in the CUBIN unmangled (KILN_KERNEL's extern "C") */
  const char *p = image;
  int found = 0;
  for (size_t i = 0; i + 12 <= bytes && !found; i++)
    found = !memcmp(p + i, "ring_server", 12);
  assert_true(found);
  kiln__cuda_image_free(image, bytes);
  free(src);
  free(text);
}

static void ring_dialect_cubin_sm_80(void **state) {
  (void)state;
  compile_for("sm_80");
}

static void ring_dialect_cubin_sm_90(void **state) {
  (void)state;
  compile_for("sm_90");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ring_dialect_cubin_sm_80),
      cmocka_unit_test(ring_dialect_cubin_sm_90),
  };
  if (kiln__nvrtc_load() != KILN_SUCCESS) {
    fprintf(stderr, "SKIP: NVRTC cannot be loaded: %s\n", kiln_last_error()->message);
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
