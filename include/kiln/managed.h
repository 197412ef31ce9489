/* SPDX-License-Identifier: MIT */
/* Managed buffers (seed 002 §11.4; StarPU's acquire/release): a buffer with a host
 * shadow and dirty tracking. The program reads and writes the host copy between
 * kiln_managed_acquire and kiln_managed_release; launches and transfers that use the
 * buffer upload the host copy first when the program wrote it, and the next acquire
 * downloads after device writes. On the CPU backend the host copy is the buffer itself
 * (zero-copy): nothing moves, acquire only waits for the buffer's work. docs/memory.md
 * explains the contract. */
#ifndef KILN_MANAGED_H
#define KILN_MANAGED_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/kernel.h"
#include "kiln/status.h"
#include "kiln/types.h"

KILN_BEGIN_DECLS

/* A managed buffer of `bytes` (> 0, <= the device's max_alloc_bytes), contents
 * undefined. It is an ordinary kiln_buffer (launches, transfers, kiln_buffer_destroy),
 * never taken from the context's pool. */
KILN_API kiln_status kiln_managed_create(kiln_context context, size_t bytes, kiln_buffer *buffer);
/* Wait until the host copy is current — every queued use of the buffer completed, and
 * the device's writes downloaded — and give its address in *ptr. `access` is
 * KILN_PARAM_BUFFER_READ, _WRITE or _READ_WRITE (kernel.h). Several read acquires may
 * overlap; a write acquire is exclusive (refused with INVALID_STATE while the buffer is
 * acquired). While acquired for write, every launch or transfer using the buffer is
 * refused with INVALID_STATE; while acquired for read, those that write it are. */
KILN_API kiln_status kiln_managed_acquire(kiln_buffer buffer, kiln_param_kind access, void **ptr);
/* End one acquire (INVALID_STATE when there is none). After a write acquire the host
 * copy is marked written: the next device use uploads it first. */
KILN_API kiln_status kiln_managed_release(kiln_buffer buffer);

KILN_END_DECLS
#endif
