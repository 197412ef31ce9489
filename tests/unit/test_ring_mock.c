/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Rings on the mock backend: fault injection over the backend calls of
 * kiln_ring_group_create (three rings of 2 MiB, each its own pinned allocation from the
 * backend's host_alloc) and of kiln_ring_destroy (kiln_host_free). A clean run counts C
 * backend calls; then for N = 1..C the Nth fails once, and in a second mode every call
 * from N on: each run ends in SUCCESS or the injected status, with no handle written,
 * nothing left live (test allocator), and the context still destroys. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"
#include "test_alloc.h"

/* One scenario on a fresh mock context; mode 0: no failure, 1: the Nth call, 2: from N.
 * Returns 1 when the group was made. *calls: the backend calls the scenario made. */
static int scenario(int mode, uint64_t n, uint64_t *calls) {
  kiln_context ctx;
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &ctx));
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.fail_status = KILN_ERROR_OUT_OF_HOST_MEMORY;
  if (mode == 1)
    mc.fail_call = n;
  if (mode == 2)
    mc.fail_from_call = n;
  KT_OK(kiln_mock_configure(&mc));
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.capacity = 32768; /* 2 MiB rings: each its own backend allocation */
  kiln_ring_group g = NULL;
  kiln_status s = kiln_ring_group_create(ctx, &d, 3, &g);
  int made = s == KILN_SUCCESS;
  if (made) {
    unsigned char msg[56] = {7}, back[56];
    KT_OK(kiln_ring_group_push(g, 1, msg));
    KT_OK(kiln_ring_group_pop(g, 0, back));
    assert_int_equal(back[0], 7);
    s = kiln_ring_group_destroy(g);
    if (s != KILN_SUCCESS)
      KT_EXPECT(s, KILN_ERROR_OUT_OF_HOST_MEMORY);
  } else {
    KT_EXPECT(s, KILN_ERROR_OUT_OF_HOST_MEMORY);
    assert_null(g);
  }
  if (calls)
    *calls = kiln_mock_calls();
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_context_destroy(ctx));
  if (!kt_alloc_check_clean("test_ring_mock"))
    fail_msg("mode %d, n %llu: host blocks left live", mode, (unsigned long long)n);
  return made;
}

static void group_create_backend_failures(void **state) {
  (void)state;
  KT_OK(kt_alloc_install());
  uint64_t calls = 0;
  assert_true(scenario(0, 0, &calls));
  if (calls < 3)
    fail_msg("a clean group create and destroy made %llu backend calls, expected at least 3 "
             "(one pinned allocation per ring)",
             (unsigned long long)calls);
  int failed = 0;
  for (uint64_t n = 1; n <= calls; n++) {
    failed += !scenario(1, n, NULL);
    failed += !scenario(2, n, NULL);
  }
  assert_true(failed >= 2); /* at least the first ring's allocation, in both modes */
  KT_OK(kt_alloc_uninstall());
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(group_create_backend_failures),
};
KT_MAIN_MOCK(tests)
