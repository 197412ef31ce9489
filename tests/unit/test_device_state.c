/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* kiln_device_get_state: a device's state as its own answer, driven by the mock backend
 * (include/kiln/device.h, include/kiln/mock.h; docs/async.md "Device loss and
 * generations"). Every refusal stays KILN_ERROR_DEVICE_LOST; the state and the
 * refusal's message tell apart
 * - a stale handle (the device is OK, the handle was made before a kiln_device_reset:
 *   "made in generation G ... make a new one"),
 * - a device lost now (LOST, the first sticky error: a reset may help),
 * - a reset that failed (UNRECOVERABLE, why it failed: restart the process).
 * Each test runs in its own process (one ctest entry each), so a test may end with the
 * device unrecoverable. Every test runs under the test allocator. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define MOCK_LOST_WHY "the mock backend lost its device on request"
#define MOCK_PROBE_WHY "mock backend: the reset probe fails on request"

static int setup(void **state) {
  (void)state;
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kt_alloc_install());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  int rc = 0;
  KT_OK(kiln_mock_configure(NULL));
  if (kt_alloc_uninstall() != KILN_SUCCESS)
    rc = -1;
  if (!kt_alloc_check_clean("device state teardown"))
    rc = -1;
  return rc;
}

static kiln_device_state_info get_state(kiln_device dev) {
  kiln_device_state_info info = KILN_DEVICE_STATE_INFO_INIT;
  KT_OK(kiln_device_get_state(dev, &info));
  return info;
}

static void expect_state(kiln_device dev, kiln_device_state state, unsigned generation,
                         const char *reason_prefix) {
  kiln_device_state_info info = get_state(dev);
  if (info.state != state || info.generation != generation)
    fail_msg("device state %d at generation %u, expected %d at generation %u (reason '%s')",
             (int)info.state, info.generation, (int)state, generation, info.reason);
  if (reason_prefix[0] == '\0' ? info.reason[0] != '\0'
                               : strncmp(info.reason, reason_prefix, strlen(reason_prefix)) != 0)
    fail_msg("device reason is '%s', expected it to start with '%s'", info.reason, reason_prefix);
}

/* The last error's message or suggestion contains (case-insensitive) / lacks needle. */
static void expect_in(const char *what, const char *text, const char *needle, int want) {
  if ((kt_strcasestr(text, needle) != NULL) != want)
    fail_msg("the last error's %s '%s' %s '%s'", what, text, want ? "lacks" : "has", needle);
}

/* Lose the device: the next backend call (a write queued on `s`) loses it. */
static void lose_device(kiln_stream s, kiln_buffer b) {
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1;
  KT_OK(kiln_mock_configure(&c));
  uint32_t h[16] = {0};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_mock_configure(NULL));
}

typedef struct handles {
  kiln_context ctx;
  kiln_stream s;
  kiln_buffer b;
} handles;

static handles make_handles(kiln_device dev) {
  handles h = {NULL, NULL, NULL};
  KT_OK(kiln_context_create(dev, NULL, &h.ctx));
  KT_OK(kiln_stream_create(h.ctx, NULL, &h.s));
  h.b = kt_buffer(h.ctx, 64);
  return h;
}

static void destroy_handles(handles *h) {
  KT_OK(kiln_buffer_destroy(h->b));
  KT_OK(kiln_stream_destroy(h->s));
  KT_OK(kiln_context_destroy(h->ctx));
}

/* ok -> lost -> reset ok -> lost again -> reset with a failing probe: each state, its
 * generation and reason, and what each refusal says. */
static void state_follows_loss_reset_and_failed_reset(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  unsigned g0 = get_state(dev).generation;
  char text[160];
  uint32_t word = 7;

  /* OK */
  expect_state(dev, KILN_DEVICE_STATE_OK, g0, "");
  handles old = make_handles(dev);
  KT_OK(kiln_buffer_write(old.b, 0, sizeof word, &word));

  /* LOST: the reason is the first sticky error; refusals say "is lost" */
  lose_device(old.s, old.b);
  expect_state(dev, KILN_DEVICE_STATE_LOST, g0, MOCK_LOST_WHY);
  KT_EXPECT_MSG(kiln_buffer_write(old.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST,
                "is lost: " MOCK_LOST_WHY);
  expect_in("message", kiln_last_error()->message, "mock:0", 1);
  expect_in("suggestion", kiln_last_error()->suggestion, "kiln_device_reset", 1);
  expect_in("message", kiln_last_error()->message, "generation", 0);
  kiln_context refused = NULL;
  KT_EXPECT_MSG(kiln_context_create(dev, NULL, &refused), KILN_ERROR_DEVICE_LOST,
                "is lost: " MOCK_LOST_WHY);
  assert_null(refused);

  /* reset: OK at generation + 1, "" reason; old handles are stale, and say so */
  KT_OK(kiln_device_reset(dev));
  expect_state(dev, KILN_DEVICE_STATE_OK, g0 + 1, "");
  snprintf(text, sizeof text, "was made in generation %u of device mock:0", g0);
  KT_EXPECT_MSG(kiln_buffer_write(old.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST, text);
  snprintf(text, sizeof text, "the device was reset (generation %u): make a new one", g0 + 1);
  KT_MSG_HAS(text);
  expect_in("message", kiln_last_error()->message, "dst 0x", 1); /* the argument, by name */
  expect_in("message", kiln_last_error()->message, "is lost", 0);
  expect_in("message", kiln_last_error()->message, "restart", 0);
  KT_EXPECT_MSG(kiln_stream_synchronize(old.s), KILN_ERROR_DEVICE_LOST, "stream 0x");
  KT_MSG_HAS(text);
  /* a new handle works */
  handles cur = make_handles(dev);
  KT_OK(kiln_buffer_write(cur.b, 0, sizeof word, &word));

  /* LOST again, in generation g0 + 1 */
  lose_device(cur.s, cur.b);
  expect_state(dev, KILN_DEVICE_STATE_LOST, g0 + 1, MOCK_LOST_WHY);
  KT_EXPECT_MSG(kiln_buffer_write(cur.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST,
                "is lost: " MOCK_LOST_WHY);
  /* a stale handle says both: its generation, and that the device is lost again */
  snprintf(text, sizeof text, "was made in generation %u", g0);
  KT_EXPECT_MSG(kiln_buffer_write(old.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST, text);
  KT_MSG_HAS("is lost again: " MOCK_LOST_WHY);

  /* a reset whose probe fails: UNRECOVERABLE at generation g0 + 2, the reason says why */
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.reset_probe_fails = 1;
  KT_OK(kiln_mock_configure(&c));
  KT_EXPECT(kiln_device_reset(dev), KILN_ERROR_DEVICE_LOST);
  snprintf(text, sizeof text, "device mock:0 could not be recovered at generation %u", g0 + 2);
  KT_MSG_HAS(text);
  KT_MSG_HAS("the reset's probe failed: " MOCK_PROBE_WHY);
  KT_MSG_HAS("restart the process");
  expect_in("suggestion", kiln_last_error()->suggestion, "restart the process", 1);
  assert_string_equal(kiln_last_error()->native_name, "MOCK_PROBE_FAILED");
  assert_int_equal(kiln_last_error()->backend, KILN_BACKEND_MOCK);
  expect_state(dev, KILN_DEVICE_STATE_UNRECOVERABLE, g0 + 2,
               "the reset's probe failed: " MOCK_PROBE_WHY);

  /* every refusal now says to restart the process, with the reset's failure */
  KT_EXPECT_MSG(kiln_context_create(dev, NULL, &refused), KILN_ERROR_DEVICE_LOST,
                "device mock:0 could not be recovered (the reset's probe failed: ");
  assert_null(refused);
  KT_MSG_HAS("restart the process");
  expect_in("suggestion", kiln_last_error()->suggestion, "restart the process", 1);
  expect_in("suggestion", kiln_last_error()->suggestion, "kiln_device_reset", 0);
  snprintf(text, sizeof text, "was made in generation %u", g0 + 1);
  KT_EXPECT_MSG(kiln_buffer_write(cur.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST, text);
  snprintf(text, sizeof text, "could not be recovered at generation %u", g0 + 2);
  KT_MSG_HAS(text);
  KT_MSG_HAS("restart the process");
  expect_in("suggestion", kiln_last_error()->suggestion, "restart the process", 1);
  KT_EXPECT_MSG(kiln_buffer_write(old.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST,
                "restart the process");
  expect_state(dev, KILN_DEVICE_STATE_UNRECOVERABLE, g0 + 2, "the reset's probe failed: ");

  /* destroying handles of any generation still succeeds */
  destroy_handles(&cur);
  destroy_handles(&old);
}

/* A reset of a device that works makes its handles stale; the device stays OK. */
static void reset_of_a_working_device_makes_stale_handles(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  unsigned g0 = get_state(dev).generation;
  handles h = make_handles(dev);
  KT_OK(kiln_device_reset(dev));
  expect_state(dev, KILN_DEVICE_STATE_OK, g0 + 1, "");
  uint32_t word = 1;
  KT_EXPECT_MSG(kiln_buffer_write(h.b, 0, sizeof word, &word), KILN_ERROR_DEVICE_LOST,
                "make a new one");
  kiln_stream s = NULL;
  KT_EXPECT_MSG(kiln_stream_create(h.ctx, NULL, &s), KILN_ERROR_DEVICE_LOST, "context");
  assert_null(s);
  destroy_handles(&h);
  /* the generation is the one kiln_device_get_props reports */
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(dev, &p));
  assert_int_equal(p.generation, g0 + 1);
}

/* An unrecoverable device may be reset again: a reset whose probe passes brings it
 * back to OK with an empty reason. */
static void unrecoverable_device_comes_back_with_a_passing_reset(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  unsigned g0 = get_state(dev).generation;
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.reset_probe_fails = 1;
  KT_OK(kiln_mock_configure(&c));
  KT_EXPECT(kiln_device_reset(dev), KILN_ERROR_DEVICE_LOST); /* fails on a working device */
  expect_state(dev, KILN_DEVICE_STATE_UNRECOVERABLE, g0 + 1, "the reset's probe failed: ");
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_device_reset(dev));
  expect_state(dev, KILN_DEVICE_STATE_OK, g0 + 2, "");
  handles h = make_handles(dev);
  uint32_t word = 3, back = 0;
  KT_OK(kiln_buffer_write(h.b, 0, sizeof word, &word));
  KT_OK(kiln_buffer_read(h.b, 0, sizeof back, &back));
  assert_int_equal(back, 3);
  destroy_handles(&h);
}

static void get_state_refuses_bad_arguments(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  kiln_device_state_info info = KILN_DEVICE_STATE_INFO_INIT;
  KT_EXPECT_MSG(kiln_device_get_state(NULL, &info), KILN_ERROR_INVALID_HANDLE, "device is NULL");
  int not_a_device = 0;
  KT_EXPECT_MSG(kiln_device_get_state((kiln_device)(void *)&not_a_device, &info),
                KILN_ERROR_INVALID_HANDLE, "is not a kiln device");
  KT_EXPECT_MSG(kiln_device_get_state(dev, NULL), KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  char text[128];
  kiln_device_state_info zero;
  memset(&zero, 0, sizeof zero);
  KT_EXPECT_MSG(kiln_device_get_state(dev, &zero), KILN_ERROR_INVALID_ARGUMENT,
                "info->struct_size is 0");
  KT_MSG_HAS("KILN_DEVICE_STATE_INFO_INIT");
  info.struct_size = sizeof info - 1;
  snprintf(text, sizeof text, "info->struct_size is %zu, expected %zu", sizeof info - 1,
           sizeof info);
  KT_EXPECT_MSG(kiln_device_get_state(dev, &info), KILN_ERROR_INVALID_ARGUMENT, text);
  /* a larger struct (a newer caller's) is fine */
  struct {
    kiln_device_state_info info;
    char appended[32];
  } newer;
  memset(&newer, 0xA5, sizeof newer);
  newer.info.struct_size = sizeof newer;
  KT_OK(kiln_device_get_state(dev, &newer.info));
  assert_int_equal(newer.info.state, KILN_DEVICE_STATE_OK);
  assert_int_equal(newer.info.reason[0], '\0');
  assert_int_equal((unsigned char)newer.appended[0], 0xA5); /* not written */
}

/* Two threads reset the device at once: the resets run one after the other, so both
 * succeed (a probe never meets the other reset's generation) and the generation grows
 * by two. */
typedef struct reset_arg {
  kiln_device dev;
  kiln_status st;
  char message[512];
} reset_arg;

static void *reset_thread(void *p) {
  reset_arg *a = p;
  a->st = kiln_device_reset(a->dev);
  if (a->st != KILN_SUCCESS)
    snprintf(a->message, sizeof a->message, "%s", kiln_last_error()->message);
  return NULL;
}

static void concurrent_resets_are_serialised(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  for (int round = 0; round < 20; round++) {
    unsigned g = get_state(dev).generation;
    reset_arg a[2] = {{dev, KILN_SUCCESS, ""}, {dev, KILN_SUCCESS, ""}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
      assert_int_equal(pthread_create(&t[i], NULL, reset_thread, &a[i]), 0);
    for (int i = 0; i < 2; i++)
      assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++)
      if (a[i].st != KILN_SUCCESS)
        fail_msg("round %d: reset %d: %s: %s", round, i, kiln_status_name(a[i].st), a[i].message);
    expect_state(dev, KILN_DEVICE_STATE_OK, g + 2, "");
  }
}

/* A thread reading the state while another loses and resets the device sees only
 * consistent snapshots: OK with "", LOST with the loss's reason, UNRECOVERABLE with the
 * reset's failure; the generation never goes back. */
typedef struct watch_arg {
  kiln_device dev;
  atomic_int stop;
  int bad;
  char what[256];
  atomic_ulong reads;
} watch_arg;

static void *watch_thread(void *p) {
  watch_arg *w = p;
  unsigned last_gen = 0;
  while (!atomic_load(&w->stop) && !w->bad) {
    kiln_device_state_info info = KILN_DEVICE_STATE_INFO_INIT;
    kiln_status st = kiln_device_get_state(w->dev, &info);
    const char *want = info.state == KILN_DEVICE_STATE_OK     ? ""
                       : info.state == KILN_DEVICE_STATE_LOST ? MOCK_LOST_WHY
                                                              : "the reset's probe failed: ";
    if (st != KILN_SUCCESS || info.generation < last_gen ||
        (want[0] ? strncmp(info.reason, want, strlen(want)) != 0 : info.reason[0] != '\0')) {
      w->bad = 1;
      snprintf(w->what, sizeof w->what, "%s: state %d, generation %u after %u, reason '%.150s'",
               kiln_status_name(st), (int)info.state, info.generation, last_gen, info.reason);
    }
    last_gen = info.generation;
    atomic_fetch_add(&w->reads, 1);
  }
  return NULL;
}

static void state_snapshots_are_consistent(void **state) {
  (void)state;
  kiln_device dev = kt_mock_device();
  watch_arg w;
  memset(&w, 0, sizeof w);
  w.dev = dev;
  atomic_store(&w.stop, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, watch_thread, &w), 0);
  /* The watcher is running before the rounds start: on a loaded machine it might
   * otherwise first run after they are over (and read nothing). */
  while (atomic_load(&w.reads) == 0)
    sched_yield();
  kiln_mock_config fails = KILN_MOCK_CONFIG_INIT;
  fails.reset_probe_fails = 1;
  for (int round = 0; round < 30 && !w.bad; round++) {
    handles h = make_handles(dev);
    lose_device(h.s, h.b);
    destroy_handles(&h);
    if (round % 3 == 2) {
      KT_OK(kiln_mock_configure(&fails));
      KT_EXPECT(kiln_device_reset(dev), KILN_ERROR_DEVICE_LOST);
      KT_OK(kiln_mock_configure(NULL));
    }
    KT_OK(kiln_device_reset(dev));
  }
  atomic_store(&w.stop, 1);
  assert_int_equal(pthread_join(t, NULL), 0);
  if (w.bad)
    fail_msg("an inconsistent snapshot: %s", w.what);
  assert_true(atomic_load(&w.reads) > 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(state_follows_loss_reset_and_failed_reset, setup, teardown),
    cmocka_unit_test_setup_teardown(reset_of_a_working_device_makes_stale_handles, setup, teardown),
    cmocka_unit_test_setup_teardown(unrecoverable_device_comes_back_with_a_passing_reset, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(get_state_refuses_bad_arguments, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_resets_are_serialised, setup, teardown),
    cmocka_unit_test_setup_teardown(state_snapshots_are_consistent, setup, teardown),
};
KT_MAIN_MOCK(tests)
