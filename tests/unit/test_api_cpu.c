/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* The public behaviours of Foundation I on the CPU backend: backends and devices,
 * contexts, streams, events, buffers (blocking and _async with tokens), native kernels
 * over 1-3-D ranges, completion callbacks, the rendezvous proving two streams run at
 * the same time. Every test runs under the test allocator and fails on a leak. Waits
 * on gates have generous timeouts that only turn hangs into failures; nothing here
 * asserts a duration. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln_test.h"

extern char **environ;

#define HANG_TIMEOUT_S 20.0

/* ---- version, backends, devices ---- */

static void version_matches_headers(void **state) {
  (void)state;
  assert_int_equal(kiln_version(), KILN_VERSION_NUMBER);
  assert_string_equal(kiln_version_string(), KILN_VERSION_STRING);
}

static void backend_info_lists_every_known_backend(void **state) {
  (void)state;
  unsigned n = kiln_backend_count();
  assert_true(n >= 3);
  int seen_cpu = 0, seen_opencl = 0, seen_cuda = 0;
  unsigned total_devices = 0;
  for (unsigned i = 0; i < n; i++) {
    kiln_backend_info info = KILN_BACKEND_INFO_INIT;
    KT_OK(kiln_backend_get_info(i, &info));
    assert_true(info.name[0] != '\0');
    assert_int_equal(kiln_backend_from_name(info.name), info.kind);
    assert_string_equal(kiln_backend_name(info.kind), info.name);
    for (unsigned j = 0; j < i; j++) {
      kiln_backend_info other = KILN_BACKEND_INFO_INIT;
      KT_OK(kiln_backend_get_info(j, &other));
      assert_string_not_equal(other.name, info.name);
    }
    if (info.available) {
      assert_string_equal(info.reason, "");
      assert_true(info.device_count >= 1);
      total_devices += info.device_count;
    } else {
      /* an unavailable backend says why */
      assert_true(info.reason[0] != '\0');
      assert_int_equal(info.device_count, 0);
    }
    if (info.kind == KILN_BACKEND_CPU) {
      seen_cpu = 1;
      assert_string_equal(info.name, "cpu");
      assert_true(info.available);
    }
    if (info.kind == KILN_BACKEND_OPENCL) seen_opencl = 1;
    if (info.kind == KILN_BACKEND_CUDA) seen_cuda = 1;
  }
  assert_true(seen_cpu && seen_opencl && seen_cuda);
  unsigned count = 0;
  KT_OK(kiln_device_count(&count));
  assert_int_equal(count, total_devices);
}

static void backend_names(void **state) {
  (void)state;
  assert_int_equal(kiln_backend_from_name("cpu"), KILN_BACKEND_CPU);
  assert_int_equal(kiln_backend_from_name("opencl"), KILN_BACKEND_OPENCL);
  assert_int_equal(kiln_backend_from_name("cuda"), KILN_BACKEND_CUDA);
  assert_int_equal(kiln_backend_from_name("nosuch"), KILN_BACKEND_NONE);
  assert_int_equal(kiln_backend_from_name(""), KILN_BACKEND_NONE);
  assert_int_equal(kiln_backend_from_name(NULL), KILN_BACKEND_NONE);
  assert_string_equal(kiln_backend_name(KILN_BACKEND_CPU), "cpu");
  assert_non_null(kiln_backend_name((kiln_backend_kind)99));
}

static void device_enumeration_is_consistent(void **state) {
  (void)state;
  unsigned n = 0;
  KT_OK(kiln_device_count(&n));
  assert_true(n >= 1);
  int cpu_seen = 0, defaults = 0, gpus = 0;
  for (unsigned i = 0; i < n; i++) {
    kiln_device d = NULL;
    KT_OK(kiln_device_get(i, &d));
    assert_non_null(d);
    kiln_device_props p = KILN_DEVICE_PROPS_INIT;
    KT_OK(kiln_device_get_props(d, &p));
    kiln_device same = NULL;
    KT_OK(kiln_device_find(p.backend, p.index, &same));
    assert_ptr_equal(same, d);
    if (p.backend == KILN_BACKEND_CPU && p.index == 0) cpu_seen++;
    if (p.is_default) defaults++;
    if (p.kind == KILN_DEVICE_KIND_GPU) gpus++;
  }
  assert_int_equal(cpu_seen, 1);
  assert_int_equal(defaults, 1); /* exactly one device is the default */
  kiln_device_props cpu = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(kt_cpu_device(), &cpu));
  if (gpus == 0) assert_int_equal(cpu.is_default, 1);
  kiln_device d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_get(n, &d), KILN_ERROR_DEVICE_NOT_FOUND, "");
  assert_null(d);
}

static void device_cpu_props_sane(void **state) {
  (void)state;
  kiln_device dev = kt_cpu_device();
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(dev, &p));
  assert_int_equal(p.backend, KILN_BACKEND_CPU);
  assert_int_equal(p.index, 0);
  assert_int_equal(p.kind, KILN_DEVICE_KIND_CPU);
  assert_true(p.name[0] != '\0');
  assert_true(p.global_mem_bytes > 0);
  assert_true(p.max_alloc_bytes > 0);
  assert_true(p.max_alloc_bytes <= p.global_mem_bytes);
  assert_true(p.compute_units >= 1);
  assert_true(p.max_work_group_size >= 1);
  for (int i = 0; i < 3; i++) {
    assert_true(p.max_work_item_sizes[i] >= 1);
    assert_true(p.max_global_size[i] >= 1);
  }
  assert_true(p.mem_align_bytes >= 1);
  assert_int_equal(p.mem_align_bytes & (p.mem_align_bytes - 1), 0);
  uint64_t free_b = 0, total_b = 0;
  KT_OK(kiln_device_mem_info(dev, &free_b, &total_b));
  assert_true(total_b > 0);
  assert_true(free_b <= total_b);
}

static void device_parse_specs(void **state) {
  (void)state;
  kiln_device cpu = kt_cpu_device();
  kiln_device d = NULL;
  KT_OK(kiln_device_parse("cpu", &d));
  assert_ptr_equal(d, cpu);
  d = NULL;
  KT_OK(kiln_device_parse("cpu:0", &d));
  assert_ptr_equal(d, cpu);

  d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_parse("cpu:99", &d), KILN_ERROR_DEVICE_NOT_FOUND, "99");
  assert_null(d);
  d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_parse("nosuch:0", &d), KILN_ERROR_INVALID_ARGUMENT, "nosuch");
  assert_null(d);
  d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT(kiln_device_parse("", &d), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(d);
  d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_parse("cpu:x", &d), KILN_ERROR_INVALID_ARGUMENT, "cpu:x");
  assert_null(d);
  KT_EXPECT_MSG(kiln_device_parse("cpu:-1", &d), KILN_ERROR_INVALID_ARGUMENT, "-1");
  KT_EXPECT_MSG(kiln_device_parse("cpu:0x", &d), KILN_ERROR_INVALID_ARGUMENT, "0x");
  KT_EXPECT_MSG(kiln_device_parse("cpu:", &d), KILN_ERROR_INVALID_ARGUMENT, "cpu:");
  KT_EXPECT_MSG(kiln_device_parse("cpu:99999999999999999999", &d),
                KILN_ERROR_INVALID_ARGUMENT, "99999999999999999999");
}

static void device_find_unknown_index_names_it(void **state) {
  (void)state;
  kiln_device d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT_MSG(kiln_device_find(KILN_BACKEND_CPU, 99, &d), KILN_ERROR_DEVICE_NOT_FOUND, "99");
  assert_null(d);
  d = (kiln_device)(uintptr_t)0x1;
  KT_EXPECT(kiln_device_find(KILN_BACKEND_NONE, 0, &d), KILN_ERROR_INVALID_ARGUMENT);
  assert_null(d);
  KT_EXPECT(kiln_device_find((kiln_backend_kind)42, 0, &d), KILN_ERROR_INVALID_ARGUMENT);
  /* a known but unavailable backend says so */
  for (unsigned i = 0; i < kiln_backend_count(); i++) {
    kiln_backend_info info = KILN_BACKEND_INFO_INIT;
    KT_OK(kiln_backend_get_info(i, &info));
    if (!info.available) {
      d = (kiln_device)(uintptr_t)0x1;
      KT_EXPECT_MSG(kiln_device_find(info.kind, 0, &d), KILN_ERROR_BACKEND_UNAVAILABLE,
                    info.name);
      assert_null(d);
    }
  }
}

/* kiln_device_default reads KILN_DEVICE / KILN_BACKEND; the result may be cached for
 * the process, so each case runs this executable again as a child. */
#define CHILD_FLAG "--child-device-default"

static int child_device_default(void) {
  kiln_device d = NULL;
  kiln_status st = kiln_device_default(&d);
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  if (st == KILN_SUCCESS) st = kiln_device_get_props(d, &p);
  printf("status=%s backend=%s index=%u is_default=%d\nmessage=%s\n", kiln_status_name(st),
         st == KILN_SUCCESS ? kiln_backend_name(p.backend) : "-", p.index, p.is_default,
         st == KILN_SUCCESS ? "" : kiln_last_error()->message);
  fflush(stdout);
  return 0;
}

/* Run the child with KILN_DEVICE / KILN_BACKEND set as given (NULL = unset); its
 * output lands in out. */
static void run_default_child(const char *env_device, const char *env_backend, char *out,
                              size_t out_size) {
  size_t n_env = 0;
  while (environ[n_env]) n_env++;
  char **envp = calloc(n_env + 3, sizeof *envp);
  assert_non_null(envp);
  size_t k = 0;
  for (size_t i = 0; i < n_env; i++)
    if (strncmp(environ[i], "KILN_DEVICE=", 12) != 0 &&
        strncmp(environ[i], "KILN_BACKEND=", 13) != 0)
      envp[k++] = environ[i];
  char dev_var[128], be_var[128];
  if (env_device) {
    snprintf(dev_var, sizeof dev_var, "KILN_DEVICE=%s", env_device);
    envp[k++] = dev_var;
  }
  if (env_backend) {
    snprintf(be_var, sizeof be_var, "KILN_BACKEND=%s", env_backend);
    envp[k++] = be_var;
  }
  envp[k] = NULL;

  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char exe[] = "/proc/self/exe";
  char flag[] = CHILD_FLAG;
  char *argv[] = {exe, flag, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  free(envp);
  assert_int_equal(rc, 0);
  size_t used = 0;
  ssize_t got;
  while (used + 1 < out_size && (got = read(fds[0], out + used, out_size - 1 - used)) > 0)
    used += (size_t)got;
  out[used] = '\0';
  close(fds[0]);
  int wstatus = 0;
  assert_int_equal(waitpid(pid, &wstatus, 0), pid);
  assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

static void device_default_honours_environment(void **state) {
  (void)state;
  char out[1024];

  run_default_child("cpu:0", NULL, out, sizeof out);
  if (!strstr(out, "status=KILN_SUCCESS backend=cpu index=0")) fail_msg("KILN_DEVICE=cpu:0: %s", out);

  run_default_child(NULL, "cpu", out, sizeof out);
  if (!strstr(out, "status=KILN_SUCCESS backend=cpu index=0")) fail_msg("KILN_BACKEND=cpu: %s", out);

  /* KILN_DEVICE wins over KILN_BACKEND */
  run_default_child("cpu:0", "nosuch", out, sizeof out);
  if (!strstr(out, "status=KILN_SUCCESS backend=cpu index=0"))
    fail_msg("KILN_DEVICE=cpu:0 KILN_BACKEND=nosuch: %s", out);

  /* a device that does not exist is an error naming the variable, not a silent fallback */
  run_default_child("cpu:99", NULL, out, sizeof out);
  if (!strstr(out, "status=KILN_ERROR_DEVICE_NOT_FOUND") || !strstr(out, "KILN_DEVICE"))
    fail_msg("KILN_DEVICE=cpu:99: %s", out);

  run_default_child(NULL, "nosuch", out, sizeof out);
  if (!strstr(out, "status=KILN_ERROR_INVALID_ARGUMENT") || !strstr(out, "KILN_BACKEND"))
    fail_msg("KILN_BACKEND=nosuch: %s", out);

  /* neither set: the device marked is_default */
  run_default_child(NULL, NULL, out, sizeof out);
  if (!strstr(out, "status=KILN_SUCCESS") || !strstr(out, "is_default=1"))
    fail_msg("no KILN_DEVICE/KILN_BACKEND: %s", out);
  unsigned n = 0;
  KT_OK(kiln_device_count(&n));
  int gpus = 0;
  for (unsigned i = 0; i < n; i++) {
    kiln_device d = NULL;
    kiln_device_props p = KILN_DEVICE_PROPS_INIT;
    KT_OK(kiln_device_get(i, &d));
    KT_OK(kiln_device_get_props(d, &p));
    if (p.kind == KILN_DEVICE_KIND_GPU) gpus++;
  }
  if (gpus == 0 && !strstr(out, "backend=cpu index=0"))
    fail_msg("no GPU, so the default must be the CPU: %s", out);
}

/* ---- contexts and streams ---- */

static void context_create_destroy(void **state) {
  kt_env *env = *state;
  kiln_device d = NULL;
  KT_OK(kiln_context_get_device(env->ctx, &d));
  assert_ptr_equal(d, env->device);
  KT_OK(kiln_context_synchronize(env->ctx));

  kiln_context_desc desc = KILN_CONTEXT_DESC_INIT;
  kiln_context c2 = NULL;
  KT_OK(kiln_context_create(env->device, &desc, &c2));
  assert_non_null(c2);
  assert_ptr_not_equal(c2, env->ctx);
  KT_OK(kiln_context_destroy(c2));
  KT_OK(kiln_context_destroy(NULL));
}

static void context_destroy_releases_children(void **state) {
  kt_env *env = *state;
  kiln_context c = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &c));
  kiln_stream s = NULL;
  kiln_event e = NULL;
  KT_OK(kiln_stream_create(c, NULL, &s));
  KT_OK(kiln_event_create(c, NULL, &e));
  kiln_buffer b = kt_buffer(c, 1 << 16);
  kiln_kernel k = kt_add_kernel(c);
  (void)k;
  uint32_t data[64] = {0};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof data, data, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_event_record(e, s));
  /* no destroy of the children: the context takes them along (teardown checks leaks) */
  KT_OK(kiln_context_destroy(c));
}

static void stream_create_query_destroy(void **state) {
  kt_env *env = *state;
  KT_OK(kiln_stream_query(env->stream));
  KT_OK(kiln_stream_synchronize(env->stream));
  kiln_stream_desc desc = KILN_STREAM_DESC_INIT;
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, &desc, &s));
  assert_non_null(s);
  assert_ptr_not_equal(s, env->stream);
  KT_OK(kiln_stream_query(s));
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_stream_destroy(NULL));
}

static void stream_query_not_ready_while_gated(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_pending t;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  KT_EXPECT(kiln_stream_query(env->stream), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_stream_query(env->stream));
  assert_int_equal(atomic_load(&g->timed_out), 0);
  KT_OK(kiln_kernel_destroy(gk));
}

static void context_synchronize_covers_all_streams(void **state) {
  kt_env *env = *state;
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kiln_buffer a = kt_buffer(env->ctx, 4096), b = kt_buffer(env->ctx, 4096);
  static uint8_t src_a[4096], src_b[4096];
  memset(src_a, 0x11, sizeof src_a);
  memset(src_b, 0x22, sizeof src_b);
  kiln_pending ta, tb;
  KT_OK(kiln_buffer_write_async(env->stream, a, 0, sizeof src_a, src_a, &ta));
  KT_OK(kiln_buffer_write_async(s2, b, 0, sizeof src_b, src_b, &tb));
  KT_OK(kiln_pending_release(&ta));
  KT_OK(kiln_pending_release(&tb));
  assert_int_equal(ta.id, 0);
  assert_int_equal(tb.id, 0);
  KT_OK(kiln_context_synchronize(env->ctx));
  KT_OK(kiln_stream_query(env->stream));
  KT_OK(kiln_stream_query(s2));
  uint8_t out[4096];
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  assert_memory_equal(out, src_b, sizeof out);
  KT_OK(kiln_buffer_read(a, 0, sizeof out, out));
  assert_memory_equal(out, src_a, sizeof out);
  KT_OK(kiln_stream_destroy(s2));
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- buffers: blocking ---- */

static void pattern_bytes(uint8_t *p, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    p[i] = (uint8_t)(x >> 16);
  }
}

static void buffer_create_size(void **state) {
  kt_env *env = *state;
  const size_t sizes[] = {1, 3, 4096, (1u << 20) + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    kiln_buffer b = kt_buffer(env->ctx, sizes[i]);
    size_t got = 0;
    KT_OK(kiln_buffer_get_size(b, &got));
    assert_int_equal(got, sizes[i]);
    KT_OK(kiln_buffer_destroy(b));
  }
  KT_OK(kiln_buffer_destroy(NULL));
}

static void buffer_label_is_copied_and_named(void **state) {
  kt_env *env = *state;
  char label[32];
  snprintf(label, sizeof label, "%s", "weights-7");
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 64;
  d.label = label;
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(env->ctx, &d, &b));
  memset(label, 'X', sizeof label - 1); /* kiln copied it */
  uint8_t data[16] = {0};
  KT_EXPECT_MSG(kiln_buffer_write(b, 56, 16, data), KILN_ERROR_OUT_OF_RANGE, "weights-7");
  KT_OK(kiln_buffer_destroy(b));
}

static void buffer_write_read_roundtrip(void **state) {
  kt_env *env = *state;
  const size_t sizes[] = {1, 7, 4096, (1u << 20) + 13};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    uint8_t *src = malloc(n), *dst = malloc(n);
    assert_non_null(src);
    assert_non_null(dst);
    pattern_bytes(src, n, (unsigned)i);
    kiln_buffer b = kt_buffer(env->ctx, n);
    KT_OK(kiln_buffer_write(b, 0, n, src));
    memset(dst, 0, n);
    KT_OK(kiln_buffer_read(b, 0, n, dst));
    assert_memory_equal(src, dst, n);
    if (n > 2) { /* partial ranges at an offset, to the very end */
      size_t off = n / 3, len = n - off;
      uint8_t *part = malloc(len);
      assert_non_null(part);
      pattern_bytes(part, len, 99u + (unsigned)i);
      KT_OK(kiln_buffer_write(b, off, len, part));
      memcpy(src + off, part, len);
      KT_OK(kiln_buffer_read(b, 0, n, dst));
      assert_memory_equal(src, dst, n);
      uint8_t last = 0;
      KT_OK(kiln_buffer_read(b, n - 1, 1, &last));
      assert_int_equal(last, src[n - 1]);
      free(part);
    }
    KT_OK(kiln_buffer_destroy(b));
    free(src);
    free(dst);
  }
}

static void buffer_copy_roundtrip(void **state) {
  kt_env *env = *state;
  enum { N = 10000 };
  uint8_t src[N], out[N], expect[N];
  pattern_bytes(src, N, 5);
  kiln_buffer a = kt_buffer(env->ctx, N), b = kt_buffer(env->ctx, N);
  KT_OK(kiln_buffer_write(a, 0, N, src));
  memset(expect, 0, N);
  KT_OK(kiln_buffer_fill(b, 0, N, expect, 1));
  KT_OK(kiln_buffer_copy(b, 100, a, 2000, 5000));
  memcpy(expect + 100, src + 2000, 5000);
  KT_OK(kiln_buffer_read(b, 0, N, out));
  assert_memory_equal(out, expect, N);
  /* within one buffer, ranges that do not overlap */
  KT_OK(kiln_buffer_copy(a, 0, a, 6000, 4000));
  memcpy(src, src + 6000, 4000);
  KT_OK(kiln_buffer_read(a, 0, N, out));
  assert_memory_equal(out, src, N);
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
}

static void buffer_fill_patterns(void **state) {
  kt_env *env = *state;
  enum { N = 4096 };
  const size_t psizes[] = {1, 2, 4, 8, 16, 32, 64, 128};
  kiln_buffer b = kt_buffer(env->ctx, N);
  uint8_t base[N], out[N], pat[128];
  for (size_t i = 0; i < sizeof psizes / sizeof psizes[0]; i++) {
    size_t ps = psizes[i];
    memset(base, 0xEE, N);
    KT_OK(kiln_buffer_write(b, 0, N, base));
    for (size_t j = 0; j < ps; j++) pat[j] = (uint8_t)(0x10 + 7 * j + i);
    size_t off = ps * 3, bytes = ps * 17;
    KT_OK(kiln_buffer_fill(b, off, bytes, pat, ps));
    KT_OK(kiln_buffer_read(b, 0, N, out));
    for (size_t k = 0; k < N; k++) {
      uint8_t want = (k >= off && k < off + bytes) ? pat[(k - off) % ps] : 0xEE;
      if (out[k] != want)
        fail_msg("pattern %zu bytes: byte %zu is 0x%02x, expected 0x%02x", ps, k, out[k], want);
    }
    /* the whole buffer */
    KT_OK(kiln_buffer_fill(b, 0, N, pat, ps));
    KT_OK(kiln_buffer_read(b, 0, N, out));
    for (size_t k = 0; k < N; k++) assert_int_equal(out[k], pat[k % ps]);
  }
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- buffers: asynchronous, tokens ---- */

static void buffer_async_roundtrip(void **state) {
  kt_env *env = *state;
  enum { N = 8192 };
  static uint8_t src[N], out[N], expect[N];
  pattern_bytes(src, N, 11);
  kiln_buffer a = kt_buffer(env->ctx, N), b = kt_buffer(env->ctx, N);
  kiln_pending t = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, a, 0, N, src, &t));
  assert_int_not_equal(t.id, 0);
  KT_OK(kiln_wait(&t));
  assert_int_equal(t.id, 0); /* consumed */
  uint32_t word = 0xA5A5F00Du;
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, N, &word, sizeof word, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_buffer_copy_async(env->stream, b, 1024, a, 0, 4096, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, N, out, &t));
  KT_OK(kiln_wait(&t));
  for (size_t k = 0; k < N; k += 4) memcpy(expect + k, &word, 4);
  memcpy(expect + 1024, src, 4096);
  assert_memory_equal(out, expect, N);
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
}

static void async_same_stream_runs_in_order(void **state) {
  kt_env *env = *state;
  enum { N = 4096, ROUNDS = 16 };
  static uint8_t src[ROUNDS][N], out[N];
  kiln_buffer b = kt_buffer(env->ctx, N);
  kiln_pending t[ROUNDS + 1];
  for (unsigned r = 0; r < ROUNDS; r++) {
    memset(src[r], (int)(r + 1), N);
    KT_OK(kiln_buffer_write_async(env->stream, b, 0, N, src[r], &t[r]));
  }
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, N, out, &t[ROUNDS]));
  KT_OK(kiln_wait(&t[ROUNDS])); /* the read waited: the writes before it are done */
  for (size_t k = 0; k < N; k++) assert_int_equal(out[k], ROUNDS);
  for (unsigned r = 0; r < ROUNDS; r++) KT_OK(kiln_pending_query(&t[r]));
  KT_OK(kiln_wait_all(t, ROUNDS));
  for (unsigned r = 0; r < ROUNDS; r++) assert_int_equal(t[r].id, 0);
  KT_OK(kiln_buffer_destroy(b));
}

static void wait_all_consumes_every_token(void **state) {
  kt_env *env = *state;
  enum { K = 8, N = 1024 };
  static uint32_t src[K][N / 4], out[K][N / 4];
  kiln_buffer b = kt_buffer(env->ctx, K * N);
  kiln_pending t[2 * K];
  for (unsigned i = 0; i < K; i++) {
    for (unsigned j = 0; j < N / 4; j++) src[i][j] = i * 1000u + j;
    KT_OK(kiln_buffer_write_async(env->stream, b, i * (size_t)N, N, src[i], &t[i]));
  }
  for (unsigned i = 0; i < K; i++)
    KT_OK(kiln_buffer_read_async(env->stream, b, i * (size_t)N, N, out[i], &t[K + i]));
  KT_OK(kiln_wait_all(t, 2 * K));
  for (unsigned i = 0; i < 2 * K; i++) assert_int_equal(t[i].id, 0);
  assert_memory_equal(src, out, sizeof src);
  KT_OK(kiln_wait_all(t, 0));
  KT_OK(kiln_buffer_destroy(b));
}

static void wait_all_refuses_empty_token_up_front(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint8_t src[64];
  kiln_pending t[3];
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 32, src, &t[0]));
  t[1].id = 0;
  KT_OK(kiln_buffer_write_async(env->stream, b, 32, 32, src + 32, &t[2]));
  KT_EXPECT(kiln_wait_all(t, 3), KILN_ERROR_INVALID_HANDLE);
  /* refused up front: the valid tokens were not consumed */
  assert_int_not_equal(t[0].id, 0);
  assert_int_not_equal(t[2].id, 0);
  KT_OK(kiln_wait(&t[0]));
  KT_OK(kiln_wait(&t[2]));
  KT_OK(kiln_buffer_destroy(b));
}

static void async_call_returns_while_gated_kernel_blocked(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_pending t = KILN_PENDING_INIT;
  /* the _async call returns although the kernel cannot finish until we open the gate */
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  assert_int_not_equal(t.id, 0);
  assert_true(kt_wait_atomic_at_least(&g->entered, 1, HANG_TIMEOUT_S));
  KT_EXPECT(kiln_pending_query(&t), KILN_NOT_READY);
  assert_int_equal(atomic_load(&g->left), 0);
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  assert_int_equal(t.id, 0);
  assert_int_equal(atomic_load(&g->left), 1);
  assert_int_equal(atomic_load(&g->timed_out), 0);
  KT_OK(kiln_kernel_destroy(gk));
}

static void pending_query_not_ready_then_success(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_buffer b = kt_buffer(env->ctx, 256);
  static uint8_t src[256];
  memset(src, 0x5c, sizeof src);
  kiln_pending tg, tw;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &tw));
  KT_EXPECT(kiln_pending_query(&tg), KILN_NOT_READY);
  KT_EXPECT(kiln_pending_query(&tw), KILN_NOT_READY); /* behind the gate, in order */
  kiln_pending keep = tw;
  kt_gate_open(g);
  kiln_status st;
  int spins = 0;
  while ((st = kiln_pending_query(&tw)) == KILN_NOT_READY && spins++ < 200000) kt_sleep_us(100);
  KT_OK(st);
  assert_int_equal(tw.id, keep.id); /* query keeps the token */
  KT_OK(kiln_pending_query(&tg));
  KT_OK(kiln_wait(&tg));
  KT_OK(kiln_wait(&tw));
  uint8_t out[256];
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  assert_memory_equal(out, src, sizeof out);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(gk));
}

static void wait_timeout_keeps_token_on_gated_op(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_pending t;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  kiln_pending keep = t;
  KT_EXPECT(kiln_wait_timeout(&t, 20 * 1000 * 1000), KILN_TIMEOUT);
  assert_int_equal(t.id, keep.id); /* the token is kept */
  KT_EXPECT(kiln_wait_timeout(&t, 0), KILN_TIMEOUT); /* zero: a poll */
  assert_int_equal(t.id, keep.id);
  KT_EXPECT(kiln_pending_query(&t), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_wait_timeout(&t, (uint64_t)(HANG_TIMEOUT_S * 1e9)));
  assert_int_equal(t.id, 0);
  /* consumed: waiting the old value again is refused */
  KT_EXPECT(kiln_wait(&keep), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_kernel_destroy(gk));
}

static void pending_release_then_stream_synchronize(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_buffer b = kt_buffer(env->ctx, 1024);
  static uint8_t src[1024];
  pattern_bytes(src, sizeof src, 3);
  kiln_pending tg, tw;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &tw));
  kiln_pending old = tw;
  KT_OK(kiln_pending_release(&tg));
  KT_OK(kiln_pending_release(&tw));
  assert_int_equal(tg.id, 0);
  assert_int_equal(tw.id, 0);
  KT_EXPECT(kiln_pending_query(&old), KILN_ERROR_INVALID_HANDLE); /* given up */
  kt_gate_open(g);
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_stream_query(env->stream));
  uint8_t out[1024];
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  assert_memory_equal(out, src, sizeof out);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(gk));
}

typedef struct opener {
  kt_gate *gate;
  unsigned delay_us;
} opener;

static void *open_later(void *arg) {
  opener *o = arg;
  kt_sleep_us(o->delay_us);
  kt_gate_open(o->gate);
  return NULL;
}

static void buffer_destroy_waits_for_pending_work(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_buffer b = kt_buffer(env->ctx, 512);
  static uint8_t src[512];
  kiln_pending tg, tw;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &tw));
  KT_OK(kiln_pending_release(&tw));
  opener o = {g, 20000};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
  KT_OK(kiln_buffer_destroy(b)); /* waits for the write, hence for the gate before it */
  assert_int_equal(atomic_load(&g->left), 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  KT_OK(kiln_wait(&tg));
  KT_OK(kiln_kernel_destroy(gk));
}

/* ---- events ---- */

static void event_never_recorded_is_complete(void **state) {
  kt_env *env = *state;
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &e));
  assert_non_null(e);
  KT_OK(kiln_event_query(e));
  KT_OK(kiln_event_synchronize(e));
  KT_OK(kiln_stream_wait_event(env->stream, e)); /* does not block the stream */
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_event_destroy(NULL));
}

static void event_record_query_synchronize(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, &d, &e));
  KT_OK(kiln_event_record(e, env->stream)); /* idle stream */
  KT_OK(kiln_event_synchronize(e));
  KT_OK(kiln_event_query(e));
  kiln_pending t;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  KT_OK(kiln_event_record(e, env->stream)); /* re-recording moves it behind the gate */
  KT_EXPECT(kiln_event_query(e), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_event_synchronize(e));
  KT_OK(kiln_event_query(e));
  assert_int_equal(atomic_load(&g->left), 1);
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_kernel_destroy(gk));
}

static void event_elapsed_timing(void **state) {
  kt_env *env = *state;
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  d.flags = KILN_EVENT_TIMING;
  kiln_event start = NULL, mid = NULL, end = NULL;
  KT_OK(kiln_event_create(env->ctx, &d, &start));
  KT_OK(kiln_event_create(env->ctx, &d, &mid));
  KT_OK(kiln_event_create(env->ctx, &d, &end));
  kiln_buffer b = kt_buffer(env->ctx, 1 << 22);
  uint8_t one = 1;
  KT_OK(kiln_event_record(start, env->stream));
  KT_OK(kiln_buffer_fill(b, 0, 1 << 22, &one, 1));
  KT_OK(kiln_event_record(mid, env->stream));
  KT_OK(kiln_buffer_fill(b, 0, 1 << 22, &one, 1));
  KT_OK(kiln_event_record(end, env->stream));
  KT_OK(kiln_event_synchronize(end));
  uint64_t to_mid = UINT64_MAX, to_end = UINT64_MAX, zero = UINT64_MAX;
  KT_OK(kiln_event_elapsed_ns(start, mid, &to_mid));
  KT_OK(kiln_event_elapsed_ns(start, end, &to_end));
  KT_OK(kiln_event_elapsed_ns(start, start, &zero));
  assert_true(to_mid != UINT64_MAX && to_end != UINT64_MAX);
  assert_true(to_mid <= to_end); /* ordering only, no duration */
  assert_int_equal(zero, 0);
  KT_OK(kiln_event_destroy(start));
  KT_OK(kiln_event_destroy(mid));
  KT_OK(kiln_event_destroy(end));
  KT_OK(kiln_buffer_destroy(b));
}

static void event_elapsed_untimed_is_error_with_suggestion(void **state) {
  kt_env *env = *state;
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  d.flags = KILN_EVENT_TIMING;
  kiln_event timed = NULL, plain = NULL;
  KT_OK(kiln_event_create(env->ctx, &d, &timed));
  KT_OK(kiln_event_create(env->ctx, NULL, &plain));
  KT_OK(kiln_event_record(timed, env->stream));
  KT_OK(kiln_event_record(plain, env->stream));
  KT_OK(kiln_stream_synchronize(env->stream));
  uint64_t ns = 0;
  KT_EXPECT(kiln_event_elapsed_ns(timed, plain, &ns), KILN_ERROR_INVALID_STATE);
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "KILN_EVENT_TIMING"));
  KT_EXPECT(kiln_event_elapsed_ns(plain, timed, &ns), KILN_ERROR_INVALID_STATE);
  assert_non_null(kt_strcasestr(kiln_last_error()->suggestion, "KILN_EVENT_TIMING"));
  KT_OK(kiln_event_destroy(timed));
  KT_OK(kiln_event_destroy(plain));
}

static void event_elapsed_not_ready_while_gated(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_event_desc d = KILN_EVENT_DESC_INIT;
  d.flags = KILN_EVENT_TIMING;
  kiln_event start = NULL, end = NULL;
  KT_OK(kiln_event_create(env->ctx, &d, &start));
  KT_OK(kiln_event_create(env->ctx, &d, &end));
  kiln_pending t;
  KT_OK(kiln_event_record(start, env->stream));
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  KT_OK(kiln_event_record(end, env->stream));
  uint64_t ns = 0;
  KT_EXPECT(kiln_event_elapsed_ns(start, end, &ns), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_event_synchronize(end));
  KT_OK(kiln_event_elapsed_ns(start, end, &ns));
  KT_OK(kiln_event_destroy(start));
  KT_OK(kiln_event_destroy(end));
  KT_OK(kiln_kernel_destroy(gk));
}

static void stream_waits_for_event_of_other_stream(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_stream a = env->stream, b = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &b));
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &e));
  kiln_buffer buf = kt_buffer(env->ctx, 4096);
  static uint8_t zeros[4096], src[4096], out[4096];
  memset(zeros, 0, sizeof zeros);
  KT_OK(kiln_buffer_write(buf, 0, sizeof zeros, zeros));
  pattern_bytes(src, sizeof src, 77);

  kiln_pending tg, tw, tr;
  KT_OK(kt_gate_launch_async(a, gk, g, &tg));
  KT_OK(kiln_buffer_write_async(a, buf, 0, sizeof src, src, &tw));
  KT_OK(kiln_event_record(e, a));
  KT_OK(kiln_stream_wait_event(b, e));
  memset(out, 0xAA, sizeof out);
  KT_OK(kiln_buffer_read_async(b, buf, 0, sizeof out, out, &tr));
  /* stream b is held by the event while a is gated */
  assert_true(kt_wait_atomic_at_least(&g->entered, 1, HANG_TIMEOUT_S));
  kt_sleep_us(2000);
  KT_EXPECT(kiln_pending_query(&tr), KILN_NOT_READY);
  KT_EXPECT(kiln_stream_query(b), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_wait(&tr));
  assert_memory_equal(out, src, sizeof out); /* b saw a's write */
  KT_OK(kiln_wait(&tw));
  KT_OK(kiln_wait(&tg));
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_buffer_destroy(buf));
  KT_OK(kiln_stream_destroy(b));
  KT_OK(kiln_kernel_destroy(gk));
}

static void event_destroy_does_not_release_waiting_stream(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_stream b = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &b));
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &e));
  kiln_buffer buf = kt_buffer(env->ctx, 64);
  static uint8_t src[64], out[64];
  memset(src, 0x3c, sizeof src);
  kiln_pending tg, tw, tr;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  KT_OK(kiln_buffer_write_async(env->stream, buf, 0, sizeof src, src, &tw));
  KT_OK(kiln_event_record(e, env->stream));
  KT_OK(kiln_stream_wait_event(b, e));
  KT_OK(kiln_event_destroy(e)); /* does not wait; b still sees it complete later */
  KT_OK(kiln_buffer_read_async(b, buf, 0, sizeof out, out, &tr));
  KT_EXPECT(kiln_pending_query(&tr), KILN_NOT_READY);
  kt_gate_open(g);
  KT_OK(kiln_wait(&tr));
  assert_memory_equal(out, src, sizeof out);
  KT_OK(kiln_wait(&tw));
  KT_OK(kiln_wait(&tg));
  KT_OK(kiln_stream_destroy(b));
  KT_OK(kiln_buffer_destroy(buf));
  KT_OK(kiln_kernel_destroy(gk));
}

/* ---- kernels ---- */

typedef struct hit_check {
  atomic_int out_of_range; /* an index outside [0, global) was handed out */
  atomic_int bad_header;   /* dims or global differ from the launch */
  unsigned dims;
  size_t global[3];
} hit_check;

static void hits_fn(const kiln_native_range *r, void *const *args, void *user) {
  hit_check *hc = user;
  uint32_t *hits = args[0];
  if (r->dims != hc->dims) atomic_fetch_add(&hc->bad_header, 1);
  size_t b[3] = {0, 0, 0}, e[3] = {1, 1, 1}, g[3] = {1, 1, 1};
  for (unsigned d = 0; d < hc->dims && d < 3; d++) {
    if (r->global[d] != hc->global[d]) atomic_fetch_add(&hc->bad_header, 1);
    b[d] = r->begin[d];
    e[d] = r->end[d];
    g[d] = hc->global[d];
  }
  for (size_t z = b[2]; z < e[2]; z++)
    for (size_t y = b[1]; y < e[1]; y++)
      for (size_t x = b[0]; x < e[0]; x++) {
        if (x >= g[0] || y >= g[1] || z >= g[2]) {
          atomic_fetch_add(&hc->out_of_range, 1);
          continue;
        }
        __atomic_fetch_add(&hits[x + g[0] * (y + g[1] * z)], 1u, __ATOMIC_RELAXED);
      }
}

static kiln_kernel hits_kernel(kiln_context ctx, hit_check *hc) {
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_hits";
  d.fn = hits_fn;
  d.user = hc;
  d.params = params;
  d.param_count = 1;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

static void check_cover(kt_env *env, unsigned dims, size_t gx, size_t gy, size_t gz,
                        size_t lx, size_t ly, size_t lz, int async) {
  hit_check hc;
  memset(&hc, 0, sizeof hc);
  hc.dims = dims;
  hc.global[0] = gx;
  hc.global[1] = gy;
  hc.global[2] = gz;
  kiln_kernel k = hits_kernel(env->ctx, &hc);
  size_t n = gx * gy * gz;
  kiln_buffer b = kt_buffer(env->ctx, n * 4);
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(b, 0, n * 4, &zero, 4));
  kiln_range r = KILN_RANGE_INIT;
  r.dims = dims;
  r.global[0] = gx;
  r.global[1] = dims >= 2 ? gy : 1;
  r.global[2] = dims >= 3 ? gz : 1;
  r.local[0] = lx;
  r.local[1] = ly;
  r.local[2] = lz;
  kiln_arg a = kiln_arg_buffer(b);
  if (async) {
    kiln_pending t;
    KT_OK(kiln_launch_async(env->stream, k, &r, &a, 1, &t));
    KT_OK(kiln_wait(&t));
  } else {
    KT_OK(kiln_launch(env->stream, k, &r, &a, 1));
  }
  uint32_t *hits = malloc(n * 4);
  assert_non_null(hits);
  KT_OK(kiln_buffer_read(b, 0, n * 4, hits));
  for (size_t i = 0; i < n; i++)
    if (hits[i] != 1)
      fail_msg("%uD range %zux%zux%zu (local %zu,%zu,%zu): index %zu ran %u times", dims, gx,
               gy, gz, lx, ly, lz, i, hits[i]);
  assert_int_equal(atomic_load(&hc.out_of_range), 0);
  assert_int_equal(atomic_load(&hc.bad_header), 0);
  free(hits);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
}

static void kernel_1d_covers_every_index_once(void **state) {
  kt_env *env = *state;
  check_cover(env, 1, 1, 1, 1, 0, 0, 0, 0);
  check_cover(env, 1, 7, 1, 1, 0, 0, 0, 1);
  check_cover(env, 1, 1000, 1, 1, 0, 0, 0, 0);
  check_cover(env, 1, 100003, 1, 1, 0, 0, 0, 1);
  check_cover(env, 1, 1000, 1, 1, 64, 0, 0, 0); /* not a multiple of the local size */
}

static void kernel_2d_covers_every_index_once(void **state) {
  kt_env *env = *state;
  check_cover(env, 2, 1, 1, 1, 0, 0, 0, 0);
  check_cover(env, 2, 33, 31, 1, 0, 0, 0, 1);
  check_cover(env, 2, 517, 3, 1, 0, 0, 0, 0);
  check_cover(env, 2, 3, 517, 1, 0, 0, 0, 1);
  check_cover(env, 2, 100, 30, 1, 16, 4, 0, 0);
}

static void kernel_3d_covers_every_index_once(void **state) {
  kt_env *env = *state;
  check_cover(env, 3, 1, 1, 1, 0, 0, 0, 0);
  check_cover(env, 3, 17, 9, 5, 0, 0, 0, 1);
  check_cover(env, 3, 2, 3, 211, 0, 0, 0, 0);
  check_cover(env, 3, 30, 20, 10, 4, 4, 2, 1);
}

typedef struct user_probe {
  atomic_int calls;
} user_probe;

static void scalar_store_fn(const kiln_native_range *r, void *const *args, void *user) {
  user_probe *p = user;
  int32_t *out = args[0];
  int32_t v;
  double dv;
  memcpy(&v, args[1], sizeof v);
  memcpy(&dv, args[2], sizeof dv);
  for (size_t i = r->begin[0]; i < r->end[0]; i++) out[i] = v + (int32_t)dv;
  atomic_fetch_add(&p->calls, 1);
}

static void kernel_scalars_are_copied_at_launch(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_WRITE, 0},
                                      {KILN_PARAM_SCALAR, sizeof(int32_t)},
                                      {KILN_PARAM_SCALAR, sizeof(double)}};
  user_probe probe;
  atomic_init(&probe.calls, 0);
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_scalar_store";
  d.fn = scalar_store_fn;
  d.user = &probe;
  d.params = params;
  d.param_count = 3;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  kiln_buffer out = kt_buffer(env->ctx, 64 * sizeof(int32_t));

  kiln_pending tg, tk;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  int32_t value = 1234;
  double dvalue = 5.0;
  kiln_arg args[3] = {kiln_arg_buffer(out), kiln_arg_scalar(&value, sizeof value),
                      kiln_arg_scalar(&dvalue, sizeof dvalue)};
  kiln_range r = kiln_range_1d(64);
  KT_OK(kiln_launch_async(env->stream, k, &r, args, 3, &tk));
  /* the kernel has not run yet (gated); change the host values and the arg array */
  value = -1;
  dvalue = 1000.0;
  memset(args, 0, sizeof args);
  KT_EXPECT(kiln_pending_query(&tk), KILN_NOT_READY);
  assert_int_equal(atomic_load(&probe.calls), 0);
  kt_gate_open(g);
  KT_OK(kiln_wait(&tk));
  KT_OK(kiln_wait(&tg));
  int32_t host[64];
  KT_OK(kiln_buffer_read(out, 0, sizeof host, host));
  for (int i = 0; i < 64; i++) assert_int_equal(host[i], 1239);
  assert_true(atomic_load(&probe.calls) >= 1);
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_kernel_destroy(gk));
}

static void vadd_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *a = args[0], *b = args[1];
  float *c = args[2];
  for (size_t i = r->begin[0]; i < r->end[0]; i++) c[i] = a[i] + b[i];
}

static void kernel_reads_and_writes_buffers(void **state) {
  kt_env *env = *state;
  enum { N = 10007 };
  static const kiln_param params[] = {{KILN_PARAM_BUFFER_READ, 0},
                                      {KILN_PARAM_BUFFER_READ, 0},
                                      {KILN_PARAM_BUFFER_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_vadd";
  d.fn = vadd_fn;
  d.params = params;
  d.param_count = 3;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  static float a[N], b[N], c[N];
  for (int i = 0; i < N; i++) {
    a[i] = (float)i;
    b[i] = (float)(2 * i + 1);
  }
  kiln_buffer ba = kt_buffer(env->ctx, sizeof a), bb = kt_buffer(env->ctx, sizeof b),
              bc = kt_buffer(env->ctx, sizeof c);
  KT_OK(kiln_buffer_write(ba, 0, sizeof a, a));
  KT_OK(kiln_buffer_write(bb, 0, sizeof b, b));
  kiln_arg args[3] = {kiln_arg_buffer(ba), kiln_arg_buffer(bb), kiln_arg_buffer(bc)};
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_launch(env->stream, k, &r, args, 3));
  KT_OK(kiln_buffer_read(bc, 0, sizeof c, c));
  for (int i = 0; i < N; i++) assert_true(c[i] == (float)(3 * i + 1));
  KT_OK(kiln_buffer_destroy(ba));
  KT_OK(kiln_buffer_destroy(bb));
  KT_OK(kiln_buffer_destroy(bc));
  KT_OK(kiln_kernel_destroy(k));
}

static void local_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint8_t *scratch = args[0];
  uint32_t *out = args[1];
  for (size_t i = r->begin[0]; i < r->end[0]; i++) {
    memset(scratch, (int)(i & 0xff), 256); /* the whole requested size is usable */
    uint32_t sum = 0;
    for (size_t j = 0; j < 256; j++) sum += scratch[j];
    out[i] = sum;
  }
}

static void kernel_local_memory_argument(void **state) {
  kt_env *env = *state;
  static const kiln_param params[] = {{KILN_PARAM_LOCAL, 0}, {KILN_PARAM_BUFFER_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_local";
  d.fn = local_fn;
  d.params = params;
  d.param_count = 2;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  kiln_buffer out = kt_buffer(env->ctx, 300 * 4);
  kiln_arg args[2] = {kiln_arg_local(256), kiln_arg_buffer(out)};
  kiln_range r = kiln_range_1d(300);
  KT_OK(kiln_launch(env->stream, k, &r, args, 2));
  uint32_t host[300];
  KT_OK(kiln_buffer_read(out, 0, sizeof host, host));
  for (uint32_t i = 0; i < 300; i++) assert_int_equal(host[i], 256u * (i & 0xff));
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(k));
}

static void kernel_name_and_params(void **state) {
  kt_env *env = *state;
  char name[32];
  snprintf(name, sizeof name, "%s", "kt_named");
  kiln_param params[2] = {{KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_SCALAR, 8}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = name;
  d.fn = vadd_fn;
  d.params = params;
  d.param_count = 2;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  memset(name, 'Z', sizeof name - 1); /* both copied */
  params[0].kind = KILN_PARAM_LOCAL;
  const char *got = NULL;
  KT_OK(kiln_kernel_get_name(k, &got));
  assert_string_equal(got, "kt_named");
  const kiln_param *gp = NULL;
  size_t count = 0;
  KT_OK(kiln_kernel_get_params(k, &gp, &count));
  assert_int_equal(count, 2);
  assert_int_equal(gp[0].kind, KILN_PARAM_BUFFER_READ);
  assert_int_equal(gp[1].kind, KILN_PARAM_SCALAR);
  assert_int_equal(gp[1].bytes, 8);
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_kernel_destroy(NULL));
}

static void kernel_destroy_keeps_queued_launches(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  kiln_kernel k = kt_add_kernel(env->ctx);
  kiln_buffer b = kt_buffer(env->ctx, 16 * 4);
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(b, 0, 16 * 4, &zero, 4));
  kiln_pending tg, tk;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &tg));
  uint64_t off = 0;
  uint32_t add = 9;
  kiln_arg args[3];
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(16);
  KT_OK(kiln_launch_async(env->stream, k, &r, args, 3, &tk));
  KT_OK(kiln_kernel_destroy(k)); /* the queued launch keeps working */
  kt_gate_open(g);
  KT_OK(kiln_wait(&tk));
  KT_OK(kiln_wait(&tg));
  uint32_t host[16];
  KT_OK(kiln_buffer_read(b, 0, sizeof host, host));
  for (int i = 0; i < 16; i++) assert_int_equal(host[i], 9);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(gk));
}

/* ---- rendezvous: proves two streams run at the same time ---- */

typedef struct rendezvous {
  atomic_int arrived[2];
} rendezvous;

static void meet_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  rendezvous *rv;
  int32_t side;
  memcpy(&rv, args[0], sizeof rv);
  memcpy(&side, args[1], sizeof side);
  int32_t *result = args[2];
  atomic_store(&rv->arrived[side], 1);
  int met = kt_wait_atomic_at_least(&rv->arrived[1 - side], 1, 10.0);
  result[0] = met ? 1 : -1;
}

static void rendezvous_two_streams_run_concurrently(void **state) {
  kt_env *env = *state;
  static const kiln_param params[] = {{KILN_PARAM_SCALAR, sizeof(rendezvous *)},
                                      {KILN_PARAM_SCALAR, sizeof(int32_t)},
                                      {KILN_PARAM_BUFFER_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "kt_meet";
  d.fn = meet_fn;
  d.params = params;
  d.param_count = 3;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(env->ctx, &d, &k));
  kiln_stream s[2] = {env->stream, NULL};
  KT_OK(kiln_stream_create(env->ctx, NULL, &s[1]));
  kiln_buffer res[2] = {kt_buffer(env->ctx, 4), kt_buffer(env->ctx, 4)};
  rendezvous rv;
  atomic_init(&rv.arrived[0], 0);
  atomic_init(&rv.arrived[1], 0);
  rendezvous *rvp = &rv;
  int32_t sides[2] = {0, 1};
  kiln_pending t[2];
  kiln_range r = kiln_range_1d(1);
  for (int i = 0; i < 2; i++) {
    kiln_arg args[3] = {kiln_arg_scalar(&rvp, sizeof rvp),
                        kiln_arg_scalar(&sides[i], sizeof sides[i]), kiln_arg_buffer(res[i])};
    KT_OK(kiln_launch_async(s[i], k, &r, args, 3, &t[i]));
  }
  KT_OK(kiln_wait_all(t, 2));
  for (int i = 0; i < 2; i++) {
    int32_t got = 0;
    KT_OK(kiln_buffer_read(res[i], 0, sizeof got, &got));
    if (got != 1) fail_msg("stream %d: the kernels never met (%d): streams ran one after the other", i, got);
  }
  KT_OK(kiln_buffer_destroy(res[0]));
  KT_OK(kiln_buffer_destroy(res[1]));
  KT_OK(kiln_stream_destroy(s[1]));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- completion callbacks ---- */

typedef struct cb_log {
  pthread_t main_thread;
  atomic_int count;
  atomic_int order_ok;
  atomic_int on_main_thread;
  atomic_int bad_status;
  int seq[16];
} cb_log;

typedef struct cb_arg {
  cb_log *log;
  int index;
} cb_arg;

static void record_cb(kiln_status status, void *user) {
  cb_arg *a = user;
  if (status != KILN_SUCCESS) atomic_fetch_add(&a->log->bad_status, 1);
  if (pthread_equal(pthread_self(), a->log->main_thread))
    atomic_fetch_add(&a->log->on_main_thread, 1);
  int n = atomic_load(&a->log->count);
  if (n != a->index) atomic_store(&a->log->order_ok, 0);
  if (n < 16) a->log->seq[n] = a->index;
  atomic_fetch_add(&a->log->count, 1); /* after seq[n]: the test reads seq once count is N */
}

static void callbacks_run_on_kiln_thread_in_order(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_kernel gk = kt_gate_kernel(env->ctx);
  cb_log log;
  memset(&log, 0, sizeof log);
  log.main_thread = pthread_self();
  atomic_init(&log.count, 0);
  atomic_init(&log.order_ok, 1);
  atomic_init(&log.on_main_thread, 0);
  atomic_init(&log.bad_status, 0);
  cb_arg args[8];
  kiln_pending t;
  KT_OK(kt_gate_launch_async(env->stream, gk, g, &t));
  for (int i = 0; i < 8; i++) {
    args[i].log = &log;
    args[i].index = i;
    KT_OK(kiln_stream_add_callback(env->stream, record_cb, &args[i]));
  }
  kt_sleep_us(2000);
  assert_int_equal(atomic_load(&log.count), 0); /* the work before them is gated */
  kt_gate_open(g);
  KT_OK(kiln_wait(&t));
  if (!kt_wait_atomic_at_least(&log.count, 8, HANG_TIMEOUT_S))
    fail_msg("only %d of 8 callbacks ran", atomic_load(&log.count));
  assert_int_equal(atomic_load(&log.order_ok), 1);
  for (int i = 0; i < 8; i++) assert_int_equal(log.seq[i], i);
  assert_int_equal(atomic_load(&log.on_main_thread), 0);
  assert_int_equal(atomic_load(&log.bad_status), 0);
  KT_OK(kiln_kernel_destroy(gk));
}

typedef struct reentrant {
  kiln_context ctx;
  kiln_stream stream;
  kiln_buffer buf;
  kiln_kernel add;
  atomic_int done;
  atomic_int failures;
  kiln_status first_failure;
  int step;
  uint32_t data[64];
} reentrant;

static void note_failure(reentrant *re, kiln_status st, int step) {
  if (st != KILN_SUCCESS && atomic_fetch_add(&re->failures, 1) == 0) {
    re->first_failure = st;
    re->step = step;
  }
}

static void reentrant_cb(kiln_status status, void *user) {
  reentrant *re = user;
  note_failure(re, status, 0);
  /* enqueue work on the stream that invoked us, and wait for it */
  kiln_pending t = KILN_PENDING_INIT;
  note_failure(re, kiln_buffer_write_async(re->stream, re->buf, 0, sizeof re->data, re->data, &t), 1);
  if (t.id) note_failure(re, kiln_wait(&t), 2);
  uint64_t off = 0;
  uint32_t add = 5;
  kiln_arg args[3];
  args[0] = kiln_arg_buffer(re->buf);
  args[1] = kiln_arg_scalar(&off, sizeof off);
  args[2] = kiln_arg_scalar(&add, sizeof add);
  kiln_range r = kiln_range_1d(64);
  note_failure(re, kiln_launch(re->stream, re->add, &r, args, 3), 3);
  /* create and destroy a buffer */
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 128;
  kiln_buffer tmp = NULL;
  note_failure(re, kiln_buffer_create(re->ctx, &d, &tmp), 4);
  note_failure(re, kiln_buffer_destroy(tmp), 5);
  /* and synchronize the very stream this callback follows */
  note_failure(re, kiln_stream_synchronize(re->stream), 6);
  uint32_t out[64];
  note_failure(re, kiln_buffer_read(re->buf, 0, sizeof out, out), 7);
  for (int i = 0; i < 64; i++)
    if (out[i] != re->data[i] + 5) note_failure(re, KILN_ERROR_INTERNAL, 8);
  atomic_store(&re->done, 1);
}

static void callbacks_call_back_into_kiln(void **state) {
  kt_env *env = *state;
  reentrant re;
  memset(&re, 0, sizeof re);
  re.ctx = env->ctx;
  re.stream = env->stream;
  re.buf = kt_buffer(env->ctx, sizeof re.data);
  re.add = kt_add_kernel(env->ctx);
  atomic_init(&re.done, 0);
  atomic_init(&re.failures, 0);
  for (uint32_t i = 0; i < 64; i++) re.data[i] = i * 3u;
  uint32_t zero = 0;
  KT_OK(kiln_buffer_fill(re.buf, 0, sizeof re.data, &zero, 4));
  KT_OK(kiln_stream_add_callback(env->stream, reentrant_cb, &re));
  if (!kt_wait_atomic_at_least(&re.done, 1, HANG_TIMEOUT_S)) {
    print_error("the re-entrant callback did not finish: deadlock calling kiln from a callback\n");
    fflush(NULL);
    _exit(1); /* the context cannot be destroyed while the callback hangs */
  }
  if (atomic_load(&re.failures))
    fail_msg("a kiln call in the callback failed at step %d with %s", re.step,
             kiln_status_name(re.first_failure));
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_buffer_destroy(re.buf));
  KT_OK(kiln_kernel_destroy(re.add));
}

/* ---- forgotten tokens are reported ---- */

typedef struct log_capture {
  pthread_mutex_t lock;
  int warn_lines;
  char text[4096];
} log_capture;

static void capture_log(kiln_log_level level, const char *message, void *user) {
  log_capture *c = user;
  pthread_mutex_lock(&c->lock);
  if (level == KILN_LOG_WARN) c->warn_lines++;
  size_t used = strlen(c->text);
  snprintf(c->text + used, sizeof c->text - used, "%s\n", message);
  pthread_mutex_unlock(&c->lock);
}

static void forgotten_token_reported_with_call_site(void **state) {
  kt_env *env = *state;
  log_capture cap;
  memset(&cap, 0, sizeof cap);
  pthread_mutex_init(&cap.lock, NULL);
  kiln_set_log_callback(capture_log, KILN_LOG_WARN, &cap);
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint8_t src[64];
  kiln_pending waited, forgotten;
  KT_OK(kiln_buffer_write_async(s, b, 0, 32, src, &waited));
  KT_OK(kiln_wait(&waited));
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(s, b, 32, 32, src + 32, &forgotten));
  KT_OK(kiln_stream_destroy(s)); /* waits, then reports the token nobody waited */
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  char where[64];
  snprintf(where, sizeof where, "test_api_cpu.c:%d", line);
  if (cap.warn_lines < 1 || !strstr(cap.text, where))
    fail_msg("expected a warning naming %s, got %d warning(s):\n%s", where, cap.warn_lines,
             cap.text);
  KT_OK(kiln_buffer_destroy(b));
  pthread_mutex_destroy(&cap.lock);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0) return child_device_default();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_matches_headers),
      cmocka_unit_test(backend_info_lists_every_known_backend),
      cmocka_unit_test(backend_names),
      cmocka_unit_test(device_enumeration_is_consistent),
      cmocka_unit_test(device_cpu_props_sane),
      cmocka_unit_test(device_parse_specs),
      cmocka_unit_test(device_find_unknown_index_names_it),
      cmocka_unit_test(device_default_honours_environment),
      cmocka_unit_test_setup_teardown(context_create_destroy, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(context_destroy_releases_children, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stream_create_query_destroy, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stream_query_not_ready_while_gated, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(context_synchronize_covers_all_streams, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_create_size, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_label_is_copied_and_named, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_write_read_roundtrip, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_copy_roundtrip, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_fill_patterns, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_async_roundtrip, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(async_same_stream_runs_in_order, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(wait_all_consumes_every_token, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(wait_all_refuses_empty_token_up_front, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(async_call_returns_while_gated_kernel_blocked, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(pending_query_not_ready_then_success, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(wait_timeout_keeps_token_on_gated_op, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(pending_release_then_stream_synchronize, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(buffer_destroy_waits_for_pending_work, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_never_recorded_is_complete, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_record_query_synchronize, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_elapsed_timing, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_elapsed_untimed_is_error_with_suggestion, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_elapsed_not_ready_while_gated, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(stream_waits_for_event_of_other_stream, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(event_destroy_does_not_release_waiting_stream, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_1d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_2d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_3d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_scalars_are_copied_at_launch, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_reads_and_writes_buffers, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_local_memory_argument, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_name_and_params, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_destroy_keeps_queued_launches, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(rendezvous_two_streams_run_concurrently, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(callbacks_run_on_kiln_thread_in_order, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(callbacks_call_back_into_kiln, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(forgotten_token_reported_with_call_site, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
