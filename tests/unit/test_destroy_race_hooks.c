/* SPDX-License-Identifier: MIT */
/* A stream pool or set destroyed (by another thread, in a real program) between a
 * call's handle check and its reads of the group's streams, placed exactly with the
 * core's group_checked test hook (core.h): the window is a few instructions wide, so
 * stress/test_destroy_races.c's stream_pool_/stream_set_destroyed_while_another_thread_
 * uses_it meet it only now and then. The group's stream array used to be freed by the
 * destroy (ASan: heap-use-after-free; a NULL dereference in release builds, the pointer
 * being cleared); it lives as long as the slot now, so the call answers as if it ran
 * just before the destroy, and the streams it returns are refused when used. Under the
 * test allocator: the arrays are freed with the context.
 * kiln-test-labels: cpu unit
 * kiln-test-link: static */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>

#include "core/core.h"
#include "kiln_test.h"

static void *_Atomic victim; /* the group the hook destroys, once */
static int victim_is_set;
static atomic_int hook_calls;

static void destroy_victim(void *group) {
  void *g = atomic_exchange(&victim, NULL);
  if (!g)
    return;
  assert_ptr_equal(g, group);
  atomic_fetch_add(&hook_calls, 1);
  KT_OK(victim_is_set ? kiln_stream_set_destroy(g) : kiln_stream_pool_destroy(g));
}

static void arm(void *group, int is_set) {
  victim_is_set = is_set;
  atomic_store(&hook_calls, 0);
  atomic_store(&victim, group);
  atomic_store(&kiln__test_hooks_now.group_checked, destroy_victim);
}

static void disarm(void) {
  atomic_store(&kiln__test_hooks_now.group_checked, NULL);
  assert_int_equal(atomic_load(&hook_calls), 1);
}

static void pool_calls_find_the_pool_destroyed_after_their_check(void **state) {
  kt_env *env = *state;
  for (int call = 0; call < 3; call++) {
    kiln_stream_pool pool = NULL;
    KT_OK(kiln_stream_pool_create(env->ctx, 3, NULL, &pool));
    kiln_stream s = NULL;
    KT_OK(kiln_stream_pool_get(pool, 2, &s)); /* a stream of the pool, alive */
    KT_OK(kiln_stream_query(s));
    arm(pool, 0);
    if (call == 0) {
      kiln_stream got = NULL;
      KT_OK(kiln_stream_pool_get(pool, 2, &got)); /* read the array after the destroy */
      assert_ptr_equal(got, s);
    } else if (call == 1) {
      kiln_stream_stats stats = KILN_STREAM_STATS_INIT;
      KT_OK(kiln_stream_pool_get_stats(pool, 1, &stats));
    } else {
      KT_OK(kiln_stream_pool_synchronize_all(pool));
    }
    disarm();
    /* the pool and its streams are gone: refused */
    assert_int_equal(kiln_stream_query(s), KILN_ERROR_INVALID_HANDLE);
    assert_int_equal(kiln_stream_pool_get(pool, 0, &s), KILN_ERROR_INVALID_HANDLE);
  }
}

static void set_calls_find_the_set_destroyed_after_their_check(void **state) {
  kt_env *env = *state;
  for (int call = 0; call < 2; call++) {
    kiln_stream_set set = NULL;
    KT_OK(kiln_stream_set_create(env->ctx, 2, NULL, &set));
    arm(set, 1);
    if (call == 0) {
      kiln_stream_stats stats = KILN_STREAM_STATS_INIT;
      KT_OK(kiln_stream_set_get_stats(set, 1, &stats));
    } else {
      KT_OK(kiln_stream_set_synchronize_all(set));
    }
    disarm();
    assert_int_equal(kiln_stream_set_synchronize_all(set), KILN_ERROR_INVALID_HANDLE);
  }
}

/* A later group in a reused slot needing more streams than the slot's array holds: the
 * array grows (and a smaller one is reused as it is). 70 groups: past the slab's
 * quarantine of 64, so slots are handed out again. */
static void a_reused_slot_grows_its_array(void **state) {
  kt_env *env = *state;
  for (size_t i = 0; i < 70; i++) {
    kiln_stream_pool pool = NULL;
    KT_OK(kiln_stream_pool_create(env->ctx, 1 + i % 5, NULL, &pool));
    size_t n = 0;
    KT_OK(kiln_stream_pool_size(pool, &n));
    assert_int_equal(n, 1 + i % 5);
    for (size_t k = 0; k < n; k++) {
      kiln_stream s = NULL;
      KT_OK(kiln_stream_pool_get(pool, k, &s));
      KT_OK(kiln_stream_synchronize(s));
    }
    KT_OK(kiln_stream_pool_destroy(pool));
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(pool_calls_find_the_pool_destroyed_after_their_check, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(set_calls_find_the_set_destroyed_after_their_check, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(a_reused_slot_grows_its_array, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
