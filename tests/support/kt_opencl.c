/* SPDX-License-Identifier: MIT */
/* dlopen'd OpenCL entry points for tests (see kt_opencl.h). Function pointers are
 * assigned through `void **`: ISO C forbids converting dlsym's object pointer to a
 * function pointer, and -Wpedantic -Werror rejects the cast. */
#include "kt_opencl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

static kt_cl_api api;
static int loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
  void *lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *err = dlerror();
    fprintf(stderr, "kt_cl: libOpenCL.so.1 could not be loaded: %s\n", err ? err : "?");
    return;
  }
#define KT_CL_RESOLVE(fn)                                      \
  *(void **)&api.fn = dlsym(lib, #fn);                         \
  if (!api.fn) {                                               \
    fprintf(stderr, "kt_cl: libOpenCL.so.1 has no %s\n", #fn); \
    memset(&api, 0, sizeof api);                               \
    return;                                                    \
  }
  KT_CL_ENTRIES(KT_CL_RESOLVE)
#undef KT_CL_RESOLVE
  loaded = 1; /* the library stays loaded for the process */
}

const kt_cl_api *kt_cl(void) {
  pthread_once(&once, load);
  return loaded ? &api : NULL;
}

const kt_cl_api *kt_cl_required(void) {
  const kt_cl_api *cl = kt_cl();
  if (!cl)
    fail_msg("the OpenCL entry points could not be resolved from libOpenCL.so.1");
  return cl;
}
