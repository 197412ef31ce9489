/* SPDX-License-Identifier: MIT */
/* The backend under test (KILN_TEST_BACKEND), kernels with the same parameters on
 * every backend (native C on cpu/mock, the kiln dialect on opencl/cuda) and the
 * portable gate kt_hold_async. Used from the test's own thread only. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "kt_internal.h"
#include "kt_opencl.h"

#include <dlfcn.h>

#ifndef KT_KERNELS_DIR
#error "KT_KERNELS_DIR (tests/kernels) is set by tests/CMakeLists.txt"
#endif

kiln_backend_kind kt_backend(void) {
  const char *v = getenv("KILN_TEST_BACKEND");
  if (!v || !*v)
    return KILN_BACKEND_CPU;
  kiln_backend_kind k = kiln_backend_from_name(v);
  if (k == KILN_BACKEND_NONE)
    fail_msg("KILN_TEST_BACKEND='%s' names no backend", v);
  return k;
}

kiln_device kt_device(void) {
  kiln_device dev = NULL;
  KT_OK(kiln_device_find(kt_backend(), 0, &dev));
  assert_non_null(dev);
  return dev;
}

int kt_backend_native(void) {
  kiln_backend_kind k = kt_backend();
  return k == KILN_BACKEND_CPU || k == KILN_BACKEND_MOCK;
}

/* ---- native versions (cpu, mock) ---- */

static uint32_t u32_arg(void *const *args, int i) {
  uint32_t v;
  memcpy(&v, args[i], sizeof v);
  return v;
}

static void vecadd_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const float *a = args[0], *b = args[1];
  float *c = args[2];
  int32_t n;
  memcpy(&n, args[3], sizeof n);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    if (i < (size_t)n)
      c[i] = a[i] + b[i];
}

static void add_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *buf = args[0];
  uint64_t offset;
  memcpy(&offset, args[1], sizeof offset);
  uint32_t add = u32_arg(args, 2);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    buf[offset + i] += add;
}

static void hits_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *hits = args[0];
  size_t b[3] = {0, 0, 0}, e[3] = {1, 1, 1}, g[3] = {1, 1, 1};
  for (unsigned d = 0; d < r->dims && d < 3; d++) {
    b[d] = r->begin[d];
    e[d] = r->end[d];
    g[d] = r->global[d];
  }
  for (size_t z = b[2]; z < e[2]; z++)
    for (size_t y = b[1]; y < e[1]; y++)
      for (size_t x = b[0]; x < e[0]; x++)
        if (x < g[0] && y < g[1] && z < g[2])
          __atomic_fetch_add(&hits[x + g[0] * (y + g[1] * z)], 1u, __ATOMIC_RELAXED);
}

static void set_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *buf = args[0];
  uint32_t value = u32_arg(args, 1);
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    buf[i] = value + (uint32_t)i;
}

typedef struct native_def {
  const char *name;
  kiln_native_fn fn;
  kiln_param params[4];
  size_t count;
} native_def;

static const native_def natives[] = {
    {"vecadd",
     vecadd_fn,
     {{KILN_PARAM_BUFFER_READ, 0},
      {KILN_PARAM_BUFFER_READ, 0},
      {KILN_PARAM_BUFFER_READ_WRITE, 0},
      {KILN_PARAM_SCALAR, 4}},
     4},
    {"kt_add_u32",
     add_fn,
     {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 8}, {KILN_PARAM_SCALAR, 4}},
     3},
    {"kt_hits", hits_fn, {{KILN_PARAM_BUFFER_READ_WRITE, 0}}, 1},
    {"kt_set_u32", set_fn, {{KILN_PARAM_BUFFER_READ_WRITE, 0}, {KILN_PARAM_SCALAR, 4}}, 2},
};

/* ---- dialect versions (opencl, cuda): one source, so PoCL compiles it once per tree
 * (POCL_CACHE_DIR); vecadd comes from tests/kernels/vecadd.kiln ---- */

static const char kt_source[] =
    "KILN_KERNEL void kt_add_u32(KILN_GLOBAL kiln_u32 *buf, kiln_u64 offset, kiln_u32 add) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) buf[offset + i] += add;\n"
    "}\n"
    "KILN_KERNEL void kt_hits(KILN_GLOBAL kiln_u32 *hits) {\n"
    "  size_t x = kiln_global_id(0), y = kiln_global_id(1), z = kiln_global_id(2);\n"
    "  size_t gx = kiln_global_size(0), gy = kiln_global_size(1), gz = kiln_global_size(2);\n"
    "  if (x < gx && y < gy && z < gz) hits[x + gx * (y + gy * z)] += 1u;\n"
    "}\n"
    "KILN_KERNEL void kt_set_u32(KILN_GLOBAL kiln_u32 *buf, kiln_u32 value) {\n"
    "  size_t i = kiln_global_id(0);\n"
    "  if (i < kiln_global_size(0)) buf[i] = value + (kiln_u32)i;\n"
    "}\n";

static char *read_kernel_file(const char *file, size_t *bytes) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", KT_KERNELS_DIR, file);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 16);
  size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  if (buf)
    buf[n] = '\0';
  *bytes = n;
  return buf;
}

kiln_status kt_kernel(kiln_context ctx, const char *name, kiln_kernel *kernel) {
  *kernel = NULL;
  if (kt_backend_native()) {
    for (size_t i = 0; i < sizeof natives / sizeof natives[0]; i++) {
      if (strcmp(natives[i].name, name) != 0)
        continue;
      kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
      d.name = natives[i].name;
      d.fn = natives[i].fn;
      d.params = natives[i].params;
      d.param_count = natives[i].count;
      return kiln_kernel_create_native(ctx, &d, kernel);
    }
    fail_msg("kt_kernel: no test kernel '%s'", name);
  }
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  char *file_text = NULL;
  if (strcmp(name, "vecadd") == 0) {
    size_t bytes = 0;
    file_text = read_kernel_file("vecadd.kiln", &bytes);
    if (!file_text)
      fail_msg("kt_kernel: cannot read %s/vecadd.kiln", KT_KERNELS_DIR);
    pd.source = file_text;
    pd.name = "vecadd.kiln";
  } else {
    pd.source = kt_source;
    pd.name = "kt_kernels";
  }
  kiln_program p = NULL;
  kiln_status st = kiln_program_create(ctx, &pd, &p);
  free(file_text);
  if (st != KILN_SUCCESS)
    return st;
  st = kiln_kernel_create(p, name, kernel);
  kiln_status dst = kiln_program_destroy(p); /* the kernel stays valid */
  if (st == KILN_SUCCESS && dst != KILN_SUCCESS) {
    kiln_kernel_destroy(*kernel);
    *kernel = NULL;
    st = dst;
  }
  return st;
}

/* ---- portable gate ---- */

void kt_hold_release_cl(void *user_event) {
  const kt_cl_api *cl = kt_cl();
  if (!cl)
    return;
  cl->clSetUserEventStatus((cl_event)user_event, CL_COMPLETE);
  cl->clReleaseEvent((cl_event)user_event);
}

/* CUDA: a host function in stream order (cuLaunchHostFunc) that blocks until the gate
 * opens holds every later command of the stream; it runs on a driver thread and calls
 * no CUDA function. libcuda is loaded with dlopen, as everywhere in kiln. */
typedef int (*kt_cu_launch_host_func)(void *stream, void (*fn)(void *), void *user);

static void cuda_gate_fn(void *user) {
  kt_gate *gate = user;
  atomic_fetch_add(&gate->entered, 1);
  for (int i = 0; !atomic_load(&gate->open); i++) {
    if (i > (int)(KT_GATE_TIMEOUT_S * 1000 * 20)) {
      atomic_store(&gate->timed_out, 1);
      break;
    }
    kt_sleep_us(50);
  }
  atomic_fetch_add(&gate->left, 1);
}

static kiln_status hold_cuda(kiln_context ctx, kiln_stream stream, kt_gate *gate,
                             kiln_pending *token) {
  static kt_cu_launch_host_func launch_host_func;
  if (!launch_host_func) {
    const char *path = getenv("KILN_CUDA_LIBRARY");
    void *lib = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib)
      *(void **)&launch_host_func = dlsym(lib, "cuLaunchHostFunc");
    if (!launch_host_func)
      fail_msg("kt_hold_async: cuLaunchHostFunc not found in libcuda");
  }
  void *cus = NULL;
  KT_OK(kiln_stream_get_native(stream, KILN_NATIVE_CU_STREAM, &cus));
  if (!gate->scratch) {
    kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
    d.bytes = 8;
    d.label = "kt_gate scratch";
    KT_OK(kiln_buffer_create(ctx, &d, &gate->scratch));
  }
  int r = launch_host_func(cus, cuda_gate_fn, gate);
  if (r != 0)
    fail_msg("cuLaunchHostFunc failed (%d)", r);
  uint32_t pattern = 0x6a7e;
  return kiln_buffer_fill_async(stream, gate->scratch, 0, 4, &pattern, 4, token);
}

kiln_status kt_hold_async(kiln_context ctx, kiln_stream stream, kt_gate *gate,
                          kiln_pending *token) {
  if (kt_backend_native()) {
    if (!gate->kernel) {
      kiln_status st = KILN_SUCCESS;
      gate->kernel = kt_gate_kernel_noassert(ctx, &st);
      if (st != KILN_SUCCESS)
        return st;
    }
    return kt_gate_launch_async(stream, gate->kernel, gate, token);
  }
  if (kt_backend() == KILN_BACKEND_CUDA)
    return hold_cuda(ctx, stream, gate, token);
  if (kt_backend() != KILN_BACKEND_OPENCL)
    fail_msg("kt_hold_async: no host-side gate for this backend");
  assert_null(atomic_load(&gate->cl_user_event)); /* one hold per gate */
  const kt_cl_api *cl = kt_cl_required();
  cl_context clctx = NULL;
  cl_command_queue q = NULL;
  KT_OK(kiln_context_get_native(ctx, KILN_NATIVE_CL_CONTEXT, &clctx));
  KT_OK(kiln_stream_get_native(stream, KILN_NATIVE_CL_COMMAND_QUEUE, &q));
  if (!gate->scratch) {
    kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
    d.bytes = 8;
    d.label = "kt_gate scratch";
    KT_OK(kiln_buffer_create(ctx, &d, &gate->scratch));
  }
  cl_int err = CL_SUCCESS;
  cl_event ue = cl->clCreateUserEvent(clctx, &err);
  if (!ue)
    fail_msg("clCreateUserEvent failed (%d)", (int)err);
  /* In-order queue: every command kiln enqueues after this marker waits for it. */
  err = cl->clEnqueueMarkerWithWaitList(q, 1, &ue, NULL);
  if (err != CL_SUCCESS)
    fail_msg("clEnqueueMarkerWithWaitList failed (%d)", (int)err);
  atomic_store(&gate->cl_user_event, (void *)ue);
  if (atomic_load(&gate->open))
    kt_gate_open(gate); /* opened meanwhile (another thread) */
  atomic_fetch_add(&gate->entered, 1);
  uint32_t pattern = 0x6a7e;
  return kiln_buffer_fill_async(stream, gate->scratch, 0, 4, &pattern, 4, token);
}
