/* SPDX-License-Identifier: MIT */
/* A counting layer over the ICD loader for tests/opencl/call_stream.c: a shared library
 * that exports every OpenCL entry kiln resolves (src/backends/opencl/cl_api.h), each a
 * two-instruction x86-64 trampoline that counts the call and jumps to the real entry of
 * libOpenCL.so.1 (arguments untouched, so no prototype is needed). kiln loads it through
 * KILN_OPENCL_LIBRARY; the test reads the counts with kt_cl_calls(). Built only on
 * x86-64 (tests/opencl.cmake). Not thread-safe to read while calls are being made. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/opencl/cl_entries.h"

/* kiln's entries (the list its loader resolves), plus the one the ICD loader asks for */
#define KT_CALLS_ENTRIES(X) \
  KILN__CL_ENTRIES(X)       \
  X(clGetExtensionFunctionAddressForPlatform)

/* Per entry: the real address and the count, hidden so the trampolines address them
 * PC-relative. */
#define KT_CALLS_STATE(name)                                                   \
  __attribute__((visibility("hidden"))) void *kt_real_##name;                  \
  __attribute__((visibility("hidden"))) unsigned long kt_n_##name;             \
  __asm__(".text\n.globl " #name "\n.type " #name ",@function\n" #name ":\n"   \
          "\tlock incq kt_n_" #name "(%rip)\n\tjmp *kt_real_" #name "(%rip)\n" \
          ".size " #name ",.-" #name "\n");
KT_CALLS_ENTRIES(KT_CALLS_STATE)

__attribute__((constructor)) static void kt_calls_load(void) {
  void *lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "cl_calls: libOpenCL.so.1: %s\n", dlerror());
    abort();
  }
#define KT_CALLS_RESOLVE(name)                                      \
  kt_real_##name = dlsym(lib, #name);                               \
  if (!kt_real_##name) {                                            \
    fprintf(stderr, "cl_calls: libOpenCL.so.1 has no %s\n", #name); \
    abort();                                                        \
  }
  KT_CALLS_ENTRIES(KT_CALLS_RESOLVE)
}

/* The count of calls to entry `name` so far (0 for a name it does not export). */
__attribute__((visibility("default"))) unsigned long kt_cl_calls(const char *name);
unsigned long kt_cl_calls(const char *name) {
#define KT_CALLS_GET(entry)  \
  if (!strcmp(name, #entry)) \
    return __atomic_load_n(&kt_n_##entry, __ATOMIC_RELAXED);
  KT_CALLS_ENTRIES(KT_CALLS_GET)
  return 0;
}
