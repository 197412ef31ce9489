/* SPDX-License-Identifier: MIT */
/* The OpenCL entry points kiln uses, resolved at run time from the ICD loader (never
 * linked), and counters of every OpenCL object kiln creates, retains and releases.
 * Only src/backends/opencl includes this. Types come from the Khronos headers. */
#ifndef KILN_CL_API_H
#define KILN_CL_API_H

#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdatomic.h>

#include "core/backend.h"

#include "backends/opencl/cl_entries.h"

typedef struct kiln__cl_api {
#define KILN__CL_MEMBER(name) __typeof__(&name) name;
  KILN__CL_ENTRIES(KILN__CL_MEMBER)
  KILN__CL_MEMBER(clGetExtensionFunctionAddressForPlatform) /* OpenCL 1.2: priority hints */
#undef KILN__CL_MEMBER
} kiln__cl_api;

extern kiln__cl_api kiln__cl;

/* Kinds of counted objects. */
enum {
  KILN__CLO_CONTEXT,
  KILN__CLO_QUEUE,
  KILN__CLO_MEM,
  KILN__CLO_PROGRAM,
  KILN__CLO_KERNEL,
  KILN__CLO_EVENT,
  KILN__CLO_COUNT_
};
/* Live references kiln holds, per kind (creates + retains - releases). */
extern _Atomic long kiln__cl_live[KILN__CLO_COUNT_];
static inline void kiln__cl_count(int kind, long delta) {
  atomic_fetch_add_explicit(&kiln__cl_live[kind], delta, memory_order_relaxed); /* counter only */
}
/* Sum of live references over every kind (tests check it returns to 0). */
long kiln__cl_live_total(void);

/* Load the ICD loader and resolve every entry. On failure writes why into reason. */
kiln_status kiln__cl_load(char *reason, size_t reason_bytes);
/* "CL_INVALID_VALUE" for a cl_int error code. */
const char *kiln__cl_error_name(cl_int code);
/* Set error detail from an OpenCL error: status derived from the code. */
kiln_status kiln__cl_fail(cl_int code, const char *what);

#endif
