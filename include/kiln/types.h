/* SPDX-License-Identifier: MIT */
/* The opaque handle types. A handle is a pointer into memory kiln keeps until the
 * object's context is destroyed, so a destroyed handle is refused with
 * KILN_ERROR_INVALID_HANDLE rather than read as freed memory (best effort once its
 * slot is reused, after a quarantine). */
#ifndef KILN_TYPES_H
#define KILN_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef struct kiln_device_s *kiln_device;
typedef struct kiln_context_s *kiln_context;
typedef struct kiln_stream_s *kiln_stream;
typedef struct kiln_event_s *kiln_event;
typedef struct kiln_buffer_s *kiln_buffer;
typedef struct kiln_kernel_s *kiln_kernel;
typedef struct kiln_program_s *kiln_program;
typedef struct kiln_pool_s *kiln_pool;

/* Token of one asynchronous operation: a value (slot + generation), zero = empty. */
typedef struct kiln_pending {
  uint64_t id;
} kiln_pending;
#define KILN_PENDING_INIT \
  { 0 }

/* Pass KILN_NO_TOKEN instead of a token's address to an _async call to say "a later
 * stream, event or context wait covers this operation" (seed 003's style: several
 * async copies, then one kiln_stream_synchronize). No token is written and none is
 * reported as forgotten; the host memory of such a read or write stays the
 * program's-not-to-touch (poisoned in sanitizer builds) until that covering wait
 * (docs/async.md). It is a fixed non-NULL address that is never a kiln_pending, so an
 * accidental NULL is still refused; passing it to a wait is refused too
 * (KILN_ERROR_INVALID_ARGUMENT). */
#define KILN_NO_TOKEN ((kiln_pending *)(uintptr_t)8u)

#endif
