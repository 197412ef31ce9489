/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* The public behaviours of Foundation I that are the CPU backend's own: backends and
 * devices, native kernels (the ranges they are handed over 1-3-D, scalars copied at
 * launch, local scratch, registration), the rendezvous proving two streams run at the
 * same time. What every backend shares (contexts, streams, buffers, tokens, events,
 * callbacks) is in backend/test_backend_api.c, registered per backend. Every test
 * runs under the test allocator and fails on a leak. Waits on gates have generous
 * timeouts that only turn hangs into failures; nothing here asserts a duration. */
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
    if (info.kind == KILN_BACKEND_OPENCL)
      seen_opencl = 1;
    if (info.kind == KILN_BACKEND_CUDA)
      seen_cuda = 1;
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
    if (p.backend == KILN_BACKEND_CPU && p.index == 0)
      cpu_seen++;
    if (p.is_default)
      defaults++;
    if (p.kind == KILN_DEVICE_KIND_GPU)
      gpus++;
  }
  assert_int_equal(cpu_seen, 1);
  assert_int_equal(defaults, 1); /* exactly one device is the default */
  kiln_device_props cpu = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(kt_cpu_device(), &cpu));
  if (gpus == 0)
    assert_int_equal(cpu.is_default, 1);
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
  KT_EXPECT_MSG(kiln_device_parse("cpu:99999999999999999999", &d), KILN_ERROR_INVALID_ARGUMENT,
                "99999999999999999999");
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
      KT_EXPECT_MSG(kiln_device_find(info.kind, 0, &d), KILN_ERROR_BACKEND_UNAVAILABLE, info.name);
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
  if (st == KILN_SUCCESS)
    st = kiln_device_get_props(d, &p);
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
  while (environ[n_env])
    n_env++;
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
  if (!strstr(out, "status=KILN_SUCCESS backend=cpu index=0"))
    fail_msg("KILN_DEVICE=cpu:0: %s", out);

  run_default_child(NULL, "cpu", out, sizeof out);
  if (!strstr(out, "status=KILN_SUCCESS backend=cpu index=0"))
    fail_msg("KILN_BACKEND=cpu: %s", out);

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
    if (p.kind == KILN_DEVICE_KIND_GPU)
      gpus++;
  }
  if (gpus == 0 && !strstr(out, "backend=cpu index=0"))
    fail_msg("no GPU, so the default must be the CPU: %s", out);
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
  if (r->dims != hc->dims)
    atomic_fetch_add(&hc->bad_header, 1);
  size_t b[3] = {0, 0, 0}, e[3] = {1, 1, 1}, g[3] = {1, 1, 1};
  for (unsigned d = 0; d < hc->dims && d < 3; d++) {
    if (r->global[d] != hc->global[d])
      atomic_fetch_add(&hc->bad_header, 1);
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

static void check_cover(kt_env *env, unsigned dims, size_t gx, size_t gy, size_t gz, size_t lx,
                        size_t ly, size_t lz, int async) {
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
      fail_msg("%uD range %zux%zux%zu (local %zu,%zu,%zu): index %zu ran %u times", dims, gx, gy,
               gz, lx, ly, lz, i, hits[i]);
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
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    out[i] = v + (int32_t)dv;
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
  for (int i = 0; i < 64; i++)
    assert_int_equal(host[i], 1239);
  assert_true(atomic_load(&probe.calls) >= 1);
  KT_OK(kiln_buffer_destroy(out));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_kernel_destroy(gk));
}

static void vadd_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *a = args[0], *b = args[1];
  float *c = args[2];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    c[i] = a[i] + b[i];
}

static void kernel_reads_and_writes_buffers(void **state) {
  kt_env *env = *state;
  enum { N = 10007 };
  static const kiln_param params[] = {
      {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_WRITE, 0}};
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
  for (int i = 0; i < N; i++)
    assert_true(c[i] == (float)(3 * i + 1));
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
    for (size_t j = 0; j < 256; j++)
      sum += scratch[j];
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
  for (uint32_t i = 0; i < 300; i++)
    assert_int_equal(host[i], 256u * (i & 0xff));
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
    if (got != 1)
      fail_msg("stream %d: the kernels never met (%d): streams ran one after the other", i, got);
  }
  KT_OK(kiln_buffer_destroy(res[0]));
  KT_OK(kiln_buffer_destroy(res[1]));
  KT_OK(kiln_stream_destroy(s[1]));
  KT_OK(kiln_kernel_destroy(k));
}

/* ---- dialect source on the CPU backend ---- */

static void program_source_runs_beside_native_kernels(void **state) {
  kt_env *env = *state;
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = "KILN_KERNEL void v(KILN_GLOBAL float *o) { o[kiln_global_id(0)] = 1.5f; }\n";
  kiln_program p = NULL;
  KT_OK(kiln_program_create(env->ctx, &d, &p));
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create(p, "v", &k));
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = 16 * sizeof(float);
  kiln_buffer b = NULL;
  KT_OK(kiln_buffer_create(env->ctx, &bd, &b));
  kiln_arg a = kiln_arg_buffer(b);
  kiln_range r = kiln_range_1d(16);
  KT_OK(kiln_launch(env->stream, k, &r, &a, 1));
  float out[16];
  KT_OK(kiln_buffer_read(b, 0, sizeof out, out));
  for (int i = 0; i < 16; i++)
    assert_true(out[i] == 1.5f);
  /* native kernels keep working in the same context */
  kiln_kernel n = kt_add_kernel(env->ctx);
  KT_OK(kiln_kernel_destroy(n));
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_program_destroy(p));
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], CHILD_FLAG) == 0)
    return child_device_default();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_matches_headers),
      cmocka_unit_test(backend_info_lists_every_known_backend),
      cmocka_unit_test(backend_names),
      cmocka_unit_test(device_enumeration_is_consistent),
      cmocka_unit_test(device_cpu_props_sane),
      cmocka_unit_test(device_parse_specs),
      cmocka_unit_test(device_find_unknown_index_names_it),
      cmocka_unit_test(device_default_honours_environment),
      cmocka_unit_test_setup_teardown(kernel_1d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_2d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_3d_covers_every_index_once, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_scalars_are_copied_at_launch, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_reads_and_writes_buffers, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(program_source_runs_beside_native_kernels, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_local_memory_argument, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(kernel_name_and_params, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(rendezvous_two_streams_run_concurrently, kt_setup,
                                      kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU)) {
    fprintf(stderr, "SKIP: the cpu backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
