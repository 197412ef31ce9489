/* SPDX-License-Identifier: MIT */
/* Shared test helpers (see kiln_test.h). Runs in the test process only; assertions
 * go through cmocka on the test's thread, kernels only touch atomics. */
#define _POSIX_C_SOURCE 200809L
#include "kiln_test.h"
#include "kt_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_last_error(void) {
  const kiln_error_info *e = kiln_last_error();
  print_error("  kiln_last_error: status %s (%d), backend %s, function '%s', at %s:%d\n"
              "    message:    %s\n    suggestion: %s\n    native:     %s (%lld)\n",
              kiln_status_name(e->status), (int)e->status, kiln_backend_name(e->backend),
              e->function, e->file, e->line, e->message, e->suggestion, e->native_name,
              (long long)e->native_code);
}

void kt_fail_status(const char *expr, kiln_status got, kiln_status expected, const char *file,
                    int line) {
  print_error("%s:%d: %s\n  returned %s (%d), expected %s (%d)\n", file, line, expr,
              kiln_status_name(got), (int)got, kiln_status_name(expected), (int)expected);
  print_last_error();
  _fail(file, line);
}

void kt_check_status(const char *expr, kiln_status got, kiln_status expected, const char *file,
                     int line) {
  if (got != expected)
    kt_fail_status(expr, got, expected, file, line);
  if ((int)expected >= 0)
    return;
  const kiln_error_info *e = kiln_last_error();
  const char *why = NULL;
  if (e->status != expected)
    why = "kiln_last_error()->status differs from the returned status";
  else if (e->message[0] == '\0')
    why = "kiln_last_error()->message is empty";
  else if (e->suggestion[0] == '\0')
    why = "kiln_last_error()->suggestion is empty";
  else if (strncmp(e->function, "kiln_", 5) != 0)
    why = "kiln_last_error()->function does not name a kiln function";
  if (why) {
    print_error("%s:%d: %s\n  returned %s as expected, but %s\n", file, line, expr,
                kiln_status_name(got), why);
    print_last_error();
    _fail(file, line);
  }
}

const char *kt_strcasestr(const char *hay, const char *needle) {
  if (!hay || !needle)
    return NULL;
  size_t n = strlen(needle);
  if (n == 0)
    return hay;
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return hay;
  }
  return NULL;
}

void kt_check_message_has(const char *needle, const char *file, int line) {
  const kiln_error_info *e = kiln_last_error();
  if (kt_strcasestr(e->message, needle))
    return;
  print_error("%s:%d: the error message does not name '%s'\n", file, line, needle);
  print_last_error();
  _fail(file, line);
}

int kt_backend_available(kiln_backend_kind kind) {
  unsigned n = kiln_backend_count();
  for (unsigned i = 0; i < n; i++) {
    kiln_backend_info info = KILN_BACKEND_INFO_INIT;
    if (kiln_backend_get_info(i, &info) != KILN_SUCCESS)
      continue;
    if (info.kind == kind)
      return info.available && info.device_count > 0;
  }
  return 0;
}

kiln_device kt_cpu_device(void) {
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_CPU, 0, &dev));
  assert_non_null(dev);
  return dev;
}

kiln_device kt_mock_device(void) {
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(KILN_BACKEND_MOCK, 0, &dev));
  assert_non_null(dev);
  return dev;
}

/* ---- log capture ---- */

static void capture_fn(kiln_log_level level, const char *message, void *user) {
  kt_log_capture *cap = user;
  pthread_mutex_lock(&cap->lock);
  cap->lines++;
  if (level <= KILN_LOG_WARN)
    cap->warn_lines++;
  size_t used = strlen(cap->text);
  if (used + 2 < sizeof cap->text)
    snprintf(cap->text + used, sizeof cap->text - used, "%s\n", message);
  pthread_mutex_unlock(&cap->lock);
}

void kt_log_capture_start(kt_log_capture *cap, kiln_log_level max_level) {
  memset(cap, 0, sizeof *cap);
  pthread_mutex_init(&cap->lock, NULL);
  kiln_set_log_callback(capture_fn, max_level, cap);
}

void kt_log_capture_stop(kt_log_capture *cap) {
  (void)cap;
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
}

int kt_log_capture_has(kt_log_capture *cap, const char *needle) {
  pthread_mutex_lock(&cap->lock);
  int found = strstr(cap->text, needle) != NULL;
  pthread_mutex_unlock(&cap->lock);
  return found;
}

int kt_log_capture_warnings(kt_log_capture *cap) {
  pthread_mutex_lock(&cap->lock);
  int n = cap->warn_lines;
  pthread_mutex_unlock(&cap->lock);
  return n;
}

/* ---- time ---- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void kt_sleep_us(unsigned us) {
  struct timespec ts;
  ts.tv_sec = (time_t)(us / 1000000u);
  ts.tv_nsec = (long)(us % 1000000u) * 1000L;
  nanosleep(&ts, NULL);
}

int kt_wait_atomic_at_least(atomic_int *v, int target, double timeout_s) {
  double deadline = now_s() + timeout_s;
  while (atomic_load(v) < target) {
    if (now_s() > deadline)
      return 0;
    kt_sleep_us(100);
  }
  return 1;
}

/* ---- gates ---- */

void kt_gate_init(kt_gate *gate) {
  gate->kernel = NULL;
  gate->scratch = NULL;
  atomic_init(&gate->cl_user_event, NULL);
  atomic_init(&gate->open, 0);
  atomic_init(&gate->entered, 0);
  atomic_init(&gate->timed_out, 0);
  atomic_init(&gate->left, 0);
}

void kt_gate_open(kt_gate *gate) {
  atomic_store(&gate->open, 1);
  void *ev = atomic_exchange(&gate->cl_user_event, NULL);
  if (ev) { /* kt_hold_async on OpenCL: "leaving" is the user event completing */
    atomic_fetch_add(&gate->left, 1);
    kt_hold_release_cl(ev);
  }
}

static void gate_fn(const kiln_native_range *range, void *const *args, void *user) {
  (void)range;
  (void)user;
  kt_gate *gate = NULL;
  memcpy(&gate, args[0], sizeof gate);
  atomic_fetch_add(&gate->entered, 1);
  double deadline = now_s() + KT_GATE_TIMEOUT_S;
  while (!atomic_load(&gate->open)) {
    if (now_s() > deadline) {
      atomic_store(&gate->timed_out, 1);
      break;
    }
    kt_sleep_us(50);
  }
  atomic_fetch_add(&gate->left, 1);
}

kiln_kernel kt_gate_kernel_noassert(kiln_context ctx, kiln_status *status) {
  static const kiln_param params[] = {{KILN_PARAM_SCALAR, sizeof(kt_gate *)}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_gate";
  d.fn = gate_fn;
  d.params = params;
  d.param_count = 1;
  kiln_kernel k = NULL;
  *status = kiln_kernel_create_native(ctx, &d, &k);
  return k;
}

kiln_kernel kt_gate_kernel(kiln_context ctx) {
  kiln_status st = KILN_SUCCESS;
  kiln_kernel k = kt_gate_kernel_noassert(ctx, &st);
  KT_OK(st);
  return k;
}

kiln_status kt_gate_launch_async(kiln_stream stream, kiln_kernel gate_kernel, kt_gate *gate,
                                 kiln_pending *token) {
  kiln_range r = kiln_range_1d(1);
  kiln_arg a = kiln_arg_scalar(&gate, sizeof gate);
  return kiln_launch_async(stream, gate_kernel, &r, &a, 1, token);
}

/* ---- kt_add_u32 ---- */

static void add_fn(const kiln_native_range *range, void *const *args, void *user) {
  (void)user;
  uint32_t *buf = (uint32_t *)args[0];
  uint64_t offset;
  uint32_t add;
  memcpy(&offset, args[1], sizeof offset);
  memcpy(&add, args[2], sizeof add);
  for (size_t i = range->begin[0]; i < range->end[0]; i++)
    buf[offset + i] += add;
}

kiln_kernel kt_add_kernel_noassert(kiln_context ctx, kiln_status *status) {
  if (!kt_backend_native()) { /* the dialect kernel of the same parameters */
    kiln_kernel k = NULL;
    *status = kt_kernel(ctx, "kt_add_u32", &k);
    return k;
  }
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0},
                                      {KILN_PARAM_SCALAR, sizeof(uint64_t)},
                                      {KILN_PARAM_SCALAR, sizeof(uint32_t)}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_add_u32";
  d.fn = add_fn;
  d.params = params;
  d.param_count = 3;
  kiln_kernel k = NULL;
  *status = kiln_kernel_create_native(ctx, &d, &k);
  return k;
}

kiln_kernel kt_add_kernel(kiln_context ctx) {
  kiln_status st = KILN_SUCCESS;
  kiln_kernel k = kt_add_kernel_noassert(ctx, &st);
  KT_OK(st);
  return k;
}

void kt_add_args(kiln_arg args[3], kiln_buffer buf, const uint64_t *offset, const uint32_t *add) {
  args[0] = kiln_arg_buffer(buf);
  args[1] = kiln_arg_scalar(offset, sizeof *offset);
  args[2] = kiln_arg_scalar(add, sizeof *add);
}

/* ---- environment ---- */

static int setup_common(void **state, int with_alloc) {
  kt_env *env = calloc(1, sizeof *env);
  if (!env)
    return -1;
  *state = env;
  env->device = kt_device();
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(env->device, &p));
  env->props = p;
  if (with_alloc) {
    KT_OK(kt_alloc_install());
    env->alloc_installed = 1;
  }
  KT_OK(kiln_context_create(env->device, NULL, &env->ctx));
  KT_OK(kiln_stream_create(env->ctx, NULL, &env->stream));
  return 0;
}

int kt_setup(void **state) {
  return setup_common(state, 1);
}
int kt_setup_plain(void **state) {
  return setup_common(state, 0);
}

kt_gate *kt_env_gate(kt_env *env) {
  assert_true(env->gate_count < KT_MAX_GATES);
  kt_gate *g = &env->gates[env->gate_count++];
  kt_gate_init(g);
  return g;
}

int kt_teardown(void **state) {
  kt_env *env = *state;
  int rc = 0;
  if (!env)
    return 0;
  if (env->alloc_installed)
    kt_alloc_fail_none();
  for (size_t i = 0; i < env->gate_count; i++)
    kt_gate_open(&env->gates[i]);
  if (env->ctx) {
    kiln_status st = kiln_context_destroy(env->ctx);
    if (st != KILN_SUCCESS) {
      print_error("teardown: kiln_context_destroy returned %s: %s\n", kiln_status_name(st),
                  kiln_last_error()->message);
      rc = -1;
    }
  }
  if (env->alloc_installed) {
    kiln_status st = kt_alloc_uninstall();
    if (st != KILN_SUCCESS) {
      print_error("teardown: kiln_set_allocator(NULL) returned %s: %s\n", kiln_status_name(st),
                  kiln_last_error()->message);
      rc = -1;
    }
    if (!kt_alloc_check_clean("teardown"))
      rc = -1;
  }
  free(env);
  *state = NULL;
  return rc;
}

kiln_buffer kt_buffer(kiln_context ctx, size_t bytes) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = bytes;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(ctx, &d, &b));
  assert_non_null(b);
  return b;
}

void kt_sweep_label(kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n, char *out,
                    size_t out_bytes) {
  snprintf(out, out_bytes, "%s %s N=%llu", kind == KT_SWEEP_BACKEND ? "backend" : "alloc",
           mode == KT_SWEEP_CLEAN ? "clean"
           : mode == KT_SWEEP_NTH ? "fail-nth"
                                  : "fail-from",
           (unsigned long long)n);
}

void kt_sweep_arm(kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n, kiln_status injected) {
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  if (kind == KT_SWEEP_BACKEND && mode == KT_SWEEP_NTH)
    mc.fail_call = n;
  if (kind == KT_SWEEP_BACKEND && mode == KT_SWEEP_FROM)
    mc.fail_from_call = n;
  mc.fail_status = injected;
  KT_OK(kiln_mock_configure(&mc));
  if (kind == KT_SWEEP_ALLOC && mode == KT_SWEEP_NTH)
    kt_alloc_fail_nth((size_t)n);
  if (kind == KT_SWEEP_ALLOC && mode == KT_SWEEP_FROM)
    kt_alloc_fail_from((size_t)n);
}
