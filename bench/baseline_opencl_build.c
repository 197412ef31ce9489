/* SPDX-License-Identifier: MIT */
/* The `cache` suite's raw OpenCL baseline: program builds from OpenCL C source, warm
 * (PoCL's own cache serves the same source built at set-up) and cold (a source no one
 * built before). libOpenCL is dlopen'ed like kiln does, entry points through void **.
 * The kernel is the suite's vecadd, written in OpenCL C. Includes no kiln header and
 * references no kiln_ symbol (checked with nm). Not thread-safe. */
#define _POSIX_C_SOURCE 200809L
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baseline_opencl_build.h"

#define ENTRIES(X)             \
  X(clCreateContext)           \
  X(clReleaseContext)          \
  X(clCreateProgramWithSource) \
  X(clBuildProgram)            \
  X(clReleaseProgram)

static struct {
#define MEMBER(name) __typeof__(&name) name;
  ENTRIES(MEMBER)
#undef MEMBER
} cl;
static int loaded;

static const char source[] =
    "__kernel void vecadd(__global const float *a, __global const float *b,\n"
    "                     __global float *c, int n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < (size_t)n) c[i] = a[i] + b[i];\n"
    "}\n";

typedef struct build_state {
  cl_context context;
  cl_device_id device;
  unsigned long long tag; /* cold builds: a prefix no earlier source had */
  unsigned long long count;
} build_state;

static int load(void) {
  if (loaded)
    return 0;
  const char *path = getenv("KILN_OPENCL_LIBRARY");
  const char *name = path != NULL && path[0] == '/' ? path : "libOpenCL.so.1";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "raw-opencl build baseline: cannot load %s\n", name);
    return ENOENT;
  }
#define RESOLVE(fn)                                                          \
  *(void **)&cl.fn = dlsym(lib, #fn);                                        \
  if (cl.fn == NULL) {                                                       \
    fprintf(stderr, "raw-opencl build baseline: %s has no %s\n", name, #fn); \
    dlclose(lib);                                                            \
    return ENOENT;                                                           \
  }
  ENTRIES(RESOLVE)
#undef RESOLVE
  loaded = 1;
  return 0;
}

static int build(build_state *s, const char *text) {
  cl_int err = CL_SUCCESS;
  size_t len = strlen(text);
  cl_program p = cl.clCreateProgramWithSource(s->context, 1, &text, &len, &err);
  if (p == NULL) {
    fprintf(stderr, "raw-opencl build baseline: clCreateProgramWithSource failed with %d\n", err);
    return err ? err : -1;
  }
  err = cl.clBuildProgram(p, 1, &s->device, "", NULL, NULL);
  cl.clReleaseProgram(p);
  if (err != CL_SUCCESS) {
    fprintf(stderr, "raw-opencl build baseline: clBuildProgram failed with %d\n", err);
    return err;
  }
  return 0;
}

int bench_baseline_ocl_build_setup(void *device, void **state) {
  *state = NULL;
  int rc = load();
  if (rc)
    return rc;
  build_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->device = device;
  cl_int err = CL_SUCCESS;
  s->context = cl.clCreateContext(NULL, 1, &s->device, NULL, NULL, &err);
  if (s->context == NULL) {
    free(s);
    fprintf(stderr, "raw-opencl build baseline: clCreateContext failed with %d\n", err);
    return err ? err : -1;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->tag = (unsigned long long)ts.tv_sec * 1000003ull ^ (unsigned long long)ts.tv_nsec ^
           ((unsigned long long)getpid() << 32);
  rc = build(s, source); /* PoCL's cache now holds it */
  if (rc) {
    bench_baseline_ocl_build_teardown(s);
    return rc;
  }
  *state = s;
  return 0;
}

void bench_baseline_ocl_build_teardown(void *state) {
  build_state *s = state;
  if (s == NULL)
    return;
  if (s->context != NULL)
    cl.clReleaseContext(s->context);
  free(s);
}

int bench_baseline_ocl_build_warm(void *state, uint64_t iters) {
  for (uint64_t i = 0; i < iters; i++) {
    int rc = build(state, source);
    if (rc)
      return rc;
  }
  return 0;
}

int bench_baseline_ocl_build_cold(void *state, uint64_t iters) {
  build_state *s = state;
  char text[sizeof source + 64];
  for (uint64_t i = 0; i < iters; i++) {
    snprintf(text, sizeof text, "/* raw cold build %llx-%llu */\n%s", s->tag, s->count++, source);
    int rc = build(s, text);
    if (rc)
      return rc;
  }
  return 0;
}
