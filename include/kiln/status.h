/* SPDX-License-Identifier: MIT */
/* Status codes and error detail. One X-macro table generates the enum, the names,
 * the messages, the default suggestions and docs/errors.md (cmake/gen_errors.c). */
#ifndef KILN_STATUS_H
#define KILN_STATUS_H

#include <stdint.h>
#include "kiln/export.h"

/* X(NAME, value, message, default suggestion). Values are part of the ABI: never
 * renumber, only append. Non-negative values other than 0 are not errors. */
#define KILN_STATUS_MAP(X)                                                                   \
  X(SUCCESS, 0, "success", "")                                                               \
  X(NOT_READY, 1, "the operation has not completed yet", "query again later, or wait on it") \
  X(TIMEOUT, 2, "the wait timed out before the operation completed",                         \
    "the token is still valid: wait again, with a longer timeout if needed")                 \
  X(ERROR_INVALID_ARGUMENT, -1, "an argument is invalid",                                    \
    "check the argument named in the message against the function's documentation")          \
  X(ERROR_INVALID_HANDLE, -2, "the handle is NULL, destroyed, stale or of the wrong type",   \
    "use a handle returned by a successful create call that has not been destroyed")         \
  X(ERROR_OUT_OF_HOST_MEMORY, -3, "a host allocation failed",                                \
    "free host memory, or lower the sizes requested")                                        \
  X(ERROR_OUT_OF_DEVICE_MEMORY, -4, "a device allocation failed",                            \
    "free device buffers, or use smaller ones; kiln info shows the device's memory")         \
  X(ERROR_OUT_OF_RANGE, -5, "an offset or size reaches past the end of a buffer",            \
    "keep offset + size within the buffer's size")                                           \
  X(ERROR_LIMIT_EXCEEDED, -6, "a value exceeds a limit of the device",                       \
    "stay within the device's limits shown by kiln info, or split the work")                 \
  X(ERROR_DEVICE_MISMATCH, -7, "the handles belong to different contexts or devices",        \
    "copy through host memory, or create the objects in the same context")                   \
  X(ERROR_BACKEND_UNAVAILABLE, -8, "the backend is not available on this machine",           \
    "run 'kiln info' to see why, or choose another backend")                                 \
  X(ERROR_DEVICE_NOT_FOUND, -9, "no device matches the request",                             \
    "run 'kiln info' to list the devices and their indices")                                 \
  X(ERROR_UNSUPPORTED, -10, "the operation is not supported by this backend or device",      \
    "use another backend, or the alternative named in the message")                          \
  X(ERROR_INVALID_STATE, -11, "the object is not in a state that allows the operation",      \
    "complete or wait for the pending work first")                                           \
  X(ERROR_KERNEL_ARGS, -12, "the kernel arguments do not match the kernel's signature",      \
    "pass one argument per parameter, of the kind and size the signature declares")          \
  X(ERROR_COMPILE_FAILED, -13, "a kernel failed to compile",                                 \
    "read the build log from kiln_last_build_log()")                                         \
  X(ERROR_DEVICE_LOST, -14, "the device was lost; handles of its old generation are dead",   \
    "destroy the old handles, call kiln_device_reset() and create new ones")                 \
  X(ERROR_DEPENDENCY_FAILED, -15, "an operation this one depends on failed",                 \
    "handle the first failure named in the message; rewrite the buffer to clear it")         \
  X(ERROR_BACKEND, -16, "the backend's runtime reported an error",                           \
    "see the native code in kiln_last_error()")                                              \
  X(ERROR_IO, -17, "a file operation failed", "check the path and its permissions")          \
  X(ERROR_PARSE, -18, "the input could not be parsed",                                       \
    "fix the input at the position named in the message")                                    \
  X(ERROR_INTERNAL, -19, "kiln hit an internal error",                                       \
    "please report it with KILN_LOG=debug output")

typedef enum kiln_status {
#define KILN_STATUS_ENUM_(name, value, msg, sugg) KILN_##name = value,
  KILN_STATUS_MAP(KILN_STATUS_ENUM_)
#undef KILN_STATUS_ENUM_
      KILN_STATUS_END_ = 3 /* not a status */
} kiln_status;

/* Which backend an error came from. */
typedef enum kiln_backend_kind {
  KILN_BACKEND_NONE = 0,
  KILN_BACKEND_CPU = 1,
  KILN_BACKEND_OPENCL = 2,
  KILN_BACKEND_CUDA = 3,
  KILN_BACKEND_MOCK = 4,
  KILN_BACKEND_COUNT_ = 5 /* not a backend */
} kiln_backend_kind;

/* Detail of the last failure on the calling thread. Fixed buffers, never allocated;
 * valid until the next failing kiln call on this thread. Successful calls leave it. */
typedef struct kiln_error_info {
  kiln_status status;
  kiln_backend_kind backend; /* KILN_BACKEND_NONE when the core refused the call */
  int64_t native_code;       /* backend's own code (cl_int, CUresult), 0 if none */
  char native_name[64];      /* e.g. "CL_BUILD_PROGRAM_FAILURE", "" if none */
  char message[512];         /* what happened, with the values */
  char suggestion[256];      /* what to do */
  char function[64];         /* the public API function that failed */
  char file[256];            /* the caller's file where the call went through a macro */
  int line;                  /* and line; 0 otherwise */
} kiln_error_info;

KILN_BEGIN_DECLS

/* "KILN_ERROR_INVALID_ARGUMENT"; "KILN_STATUS_UNKNOWN" for values not in the table. */
KILN_API const char *kiln_status_name(kiln_status status);
/* One-line description of the status. */
KILN_API const char *kiln_status_message(kiln_status status);
/* Default suggestion for the status ("" when none). */
KILN_API const char *kiln_status_suggestion(kiln_status status);

/* Thread-local detail of the last failure. Never NULL. */
KILN_API const kiln_error_info *kiln_last_error(void);
/* Full compiler log of the last failed compile on this thread ("" if none). */
KILN_API const char *kiln_last_build_log(void);
/* Forget the last failure on this thread. */
KILN_API void kiln_clear_error(void);
/* For libraries layered on kiln's public API (kiln's own task graphs, src/graph, are
 * one): fill the calling thread's kiln_last_error() as kiln's own calls do — `status`,
 * `function` (the failing public call's name; NULL: ""), the message from `fmt` (printf style,
 * cut at 511 bytes) and `suggestion` (NULL: the status's default) — and return
 * `status`. Backend and native code are cleared. Never allocates. KILN_SUCCESS and
 * the other non-error statuses are refused: nothing is filled and
 * KILN_ERROR_INVALID_ARGUMENT is returned (and reported). */
KILN_API kiln_status kiln_error_report(kiln_status status, const char *function,
                                       const char *suggestion, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* kiln_error_report with the native error behind the failure (libkiln_mpi: an MPI
 * error class and its name, e.g. "MPI_ERR_TRUNCATE"; 0 and NULL when none), as kiln's
 * own calls fill native_code and native_name from a backend. The same refusal of
 * non-error statuses. */
KILN_API kiln_status kiln_error_report_native(kiln_status status, const char *function,
                                              int64_t native_code, const char *native_name,
                                              const char *suggestion, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

KILN_END_DECLS
#endif
