/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* What the API fuzzer (tests/fuzz/fuzz_api.c) found, one test per finding, each the
 * smallest program that showed it; the inputs themselves are replayed from
 * tests/fuzz/api-regressions by fuzz.api_regressions. Runs under the test allocator:
 * nothing may leak. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/mock.h"
#include "kiln_test.h"

/* kiln_host_free / kiln_host_free_on of a pointer that is not a block of the context
 * is INVALID_ARGUMENT (host.h), even when host memory is short: the free used to make
 * the context's pinned pool first (or, for _on, the list of streams to wait for) and
 * answered OUT_OF_HOST_MEMORY when that allocation failed. */
static void host_free_of_foreign_pointer_allocates_nothing(void **state) {
  kt_env *env = *state;
  uint64_t mine[4] = {0};
  kt_alloc_fail_from(1); /* no host memory at all from here */
  KT_EXPECT_MSG(kiln_host_free(env->ctx, mine), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, mine, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  kt_alloc_fail_none();
  /* With the pool made (a block allocated), a foreign pointer given to free_on is refused
   * before the stream list is allocated. */
  void *block = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 4096, &block));
  kt_alloc_fail_from(1);
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, mine, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, (char *)block + 8, env->stream),
                KILN_ERROR_INVALID_ARGUMENT, "points 8 bytes into the block");
  assert_int_equal(kt_alloc_failures(), 0); /* nothing was even tried */
  kt_alloc_fail_none();
  KT_OK(kiln_host_free_on(env->ctx, block, env->stream));
  KT_EXPECT_MSG(kiln_host_free(env->ctx, block), KILN_ERROR_INVALID_ARGUMENT, "freed already");
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(host_free_of_foreign_pointer_allocates_nothing, kt_setup,
                                      kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU) || !kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the cpu or mock backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
