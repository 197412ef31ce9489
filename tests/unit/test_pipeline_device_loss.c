/* SPDX-License-Identifier: MIT */
/* kiln_pipeline_run when the device is lost between its check of the stream set (or
 * making its own set) and taking the set's streams: kiln_stream_set_get then answers
 * NULL, and the run used to dereference it. It must return DEVICE_LOST, destroy the
 * set it made (nothing left under the test allocator) and leave a caller's set to the
 * caller. The loss is placed exactly with the core's pipeline_set_checked test hook
 * (core.h): no backend call happens in that window, so the mock's call counter cannot
 * place it.
 * kiln-test-labels: mock unit
 * kiln-test-env: KILN_MOCK=1
 * kiln-test-link: static */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <string.h>

#include "core/core.h"
#include "kiln_test.h"

#define ELEMS 256

static atomic_int hook_calls;

static void lose_device_now(kiln_context context) {
  atomic_fetch_add(&hook_calls, 1);
  kiln__device_mark_lost(&context->device->view, "lost by the test between the set's check "
                                                 "and its streams");
}

static void count_only(kiln_context context) {
  (void)context;
  atomic_fetch_add(&hook_calls, 1);
}

static int computes;
static kiln_status copy_chunk(kiln_stream stream, kiln_buffer in, kiln_buffer out, size_t chunk,
                              size_t in_bytes, size_t out_bytes, void *user) {
  (void)chunk, (void)out_bytes, (void)user;
  computes++;
  return kiln_buffer_copy_async(stream, out, 0, in, 0, in_bytes, KILN_NO_TOKEN);
}

typedef struct scene {
  kiln_device dev;
  kiln_context ctx;
  uint32_t src[ELEMS], dst[ELEMS];
  kiln_pipeline_desc desc;
} scene;

static void scene_start(scene *s) {
  memset(s, 0, sizeof *s);
  KT_OK(kt_alloc_install());
  s->dev = kt_mock_device();
  KT_OK(kiln_context_create(s->dev, NULL, &s->ctx));
  for (uint32_t i = 0; i < ELEMS; i++)
    s->src[i] = i * 7u + 1u;
  kiln_pipeline_desc d = KILN_PIPELINE_DESC_INIT;
  d.src = s->src;
  d.src_bytes = sizeof s->src;
  d.dst = s->dst;
  d.dst_bytes = sizeof s->dst;
  d.chunk_bytes = sizeof s->src / 4;
  d.compute = copy_chunk;
  s->desc = d;
  computes = 0;
  atomic_store(&hook_calls, 0);
}

/* Run with the device lost inside the window: DEVICE_LOST naming the loss, nothing run. */
static void run_lost_in_window(scene *s) {
  atomic_store(&kiln__test_hooks_now.pipeline_set_checked, lose_device_now);
  kiln_status st = kiln_pipeline_run(s->ctx, &s->desc);
  atomic_store(&kiln__test_hooks_now.pipeline_set_checked, NULL);
  assert_int_equal(atomic_load(&hook_calls), 1); /* the window was reached */
  assert_int_equal(st, KILN_ERROR_DEVICE_LOST);
  assert_int_equal(kiln_last_error()->status, KILN_ERROR_DEVICE_LOST);
  assert_non_null(strstr(kiln_last_error()->message, "lost"));
  assert_int_equal(computes, 0);
}

static void scene_end(scene *s) {
  KT_OK(kiln_context_destroy(s->ctx)); /* a lost device's handles still destroy */
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("pipeline after device loss"));
  KT_OK(kiln_device_reset(s->dev));
}

/* Its own set (desc.streams NULL): made, then destroyed by the failed run — the test
 * allocator sees every block back once the context is gone. */
static void own_set_lost_after_check(void **state) {
  (void)state;
  scene s;
  scene_start(&s);
  run_lost_in_window(&s);
  scene_end(&s);
}

/* A caller's set: checked, then refused; it stays the caller's, whose destroy of it
 * still succeeds (destroying a lost generation's handle does). */
static void caller_set_lost_after_check(void **state) {
  (void)state;
  scene s;
  scene_start(&s);
  kiln_stream_set set = NULL;
  KT_OK(kiln_stream_set_create(s.ctx, 3, "mine", &set));
  s.desc.streams = set;
  run_lost_in_window(&s);
  KT_OK(kiln_stream_set_destroy(set));
  scene_end(&s);
}

/* The same window with a live device runs the pipeline (the hook alone changes
 * nothing), so the two tests above fail only for the loss. */
static void hook_without_loss_runs(void **state) {
  (void)state;
  scene s;
  scene_start(&s);
  atomic_store(&kiln__test_hooks_now.pipeline_set_checked, count_only);
  kiln_status st = kiln_pipeline_run(s.ctx, &s.desc);
  atomic_store(&kiln__test_hooks_now.pipeline_set_checked, NULL);
  KT_OK(st);
  assert_int_equal(atomic_load(&hook_calls), 1);
  assert_int_equal(computes, 4);
  assert_memory_equal(s.dst, s.src, sizeof s.src);
  KT_OK(kiln_context_destroy(s.ctx));
  KT_OK(kt_alloc_uninstall());
  assert_true(kt_alloc_check_clean("pipeline"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(own_set_lost_after_check),
    cmocka_unit_test(caller_set_lost_after_check),
    cmocka_unit_test(hook_without_loss_runs),
};
KT_MAIN_MOCK(tests)
