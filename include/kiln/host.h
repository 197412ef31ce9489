/* SPDX-License-Identifier: MIT */
/* Page-locked ("pinned") host memory of a context. Transfers between a buffer and
 * pinned memory run asynchronously at the full speed of the bus; transfers from or to
 * ordinary (pageable) memory are staged by the backend (CUDA: through pinned staging
 * slots of the stream, docs/cuda.md). CUDA: cuMemHostAlloc. OpenCL: a mapped
 * CL_MEM_ALLOC_HOST_PTR buffer (page-locked on NVIDIA, ordinary memory on PoCL).
 * cpu and mock: page-aligned ordinary memory, so code written for pinned memory runs
 * everywhere. */
#ifndef KILN_HOST_H
#define KILN_HOST_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/pool.h"
#include "kiln/types.h"

KILN_BEGIN_DECLS

/* Allocate `bytes` (> 0) of page-locked host memory, page-aligned (4096), contents
 * undefined, into *ptr. Served from the context's pinned host pool (docs/memory.md):
 * size classes from 4 KiB to 1 MiB carved from page-locked slabs of 2 MiB or more, so
 * only a miss pays the driver (CUDA: hundreds of microseconds); larger requests get an
 * allocation of their own. KILN_POOL=off: every block its own allocation;
 * KILN_POOL=debug: a freed block is never reused. Freed by kiln_host_free,
 * kiln_host_free_on or, at the latest, by kiln_context_destroy. Errors: OUT_OF_HOST_MEMORY when the
 * system cannot pin that much, INVALID_ARGUMENT for bytes 0 or ptr NULL. */
KILN_API kiln_status kiln_host_alloc(kiln_context context, size_t bytes, void **ptr);
/* After a device loss and kiln_device_reset, the blocks of the lost generation's
 * contexts may be gone with the device's old state (CUDA's primary-context reset
 * releases its pinned memory): do not touch them; kiln_host_free and context destroy
 * still accept them. */

/* Free memory from kiln_host_alloc of the same context (NULL is a no-op). Waits first
 * until the context's queued work has completed (as cuMemFreeHost does), so no
 * transfer still reads or writes it; keep it out of hot loops. A pointer that did
 * not come from kiln_host_alloc of this context (or points inside such a block) is
 * refused with INVALID_ARGUMENT, and nothing is freed. */
KILN_API kiln_status kiln_host_free(kiln_context context, void *ptr);
/* Free a block of kiln_host_alloc without waiting: returns at once, and the block goes
 * back to the pool once the work queued so far on `stream` and on every other stream
 * of the context has completed (host memory is not tracked by the hazard rules, so
 * another stream's transfer may still use it). The pointer is dead at once: a second
 * free is refused while the block is not reissued. Refused: NULL or destroyed stream
 * (INVALID_HANDLE), a stream of another context (DEVICE_MISMATCH), a pointer as for
 * kiln_host_free; OUT_OF_HOST_MEMORY if the streams cannot be recorded (the block then
 * stays allocated). NULL ptr is a no-op. */
KILN_API kiln_status kiln_host_free_on(kiln_context context, void *ptr, kiln_stream stream);
/* The pinned host pool's counters, in the device pool's kiln_pool_stats (size classes
 * 4 KiB .. 1 MiB; huge_live: blocks above 1 MiB with an allocation of their own;
 * pending_frees: kiln_host_free_on blocks waiting for their streams). */
KILN_API kiln_status kiln_host_pool_get_stats(kiln_context context, kiln_pool_stats *stats);
/* Wait for the pending frees, then return whole free slabs to the backend until at
 * most `bytes_to_keep` cached bytes stay. */
KILN_API kiln_status kiln_host_pool_trim(kiln_context context, size_t bytes_to_keep);

/* Page-lock the program's own memory [ptr, ptr + bytes) for this context's
 * transfers (CUDA: cuMemHostRegister; other backends record it only), so they go to
 * the device without staging. The memory stays the program's: it must outlive the
 * registration, and kiln_host_unregister (or context destroy) ends it. Refused with
 * INVALID_ARGUMENT when the range overlaps a block the context already has (from
 * kiln_host_alloc or registered); OUT_OF_HOST_MEMORY when the system cannot lock it.
 * Slow, like kiln_host_alloc. */
KILN_API kiln_status kiln_host_register(kiln_context context, void *ptr, size_t bytes);

/* End a registration (ptr as given to kiln_host_register), after the context's queued
 * work has completed. Blocks from kiln_host_alloc are refused (use kiln_host_free). */
KILN_API kiln_status kiln_host_unregister(kiln_context context, void *ptr);

/* Whether [ptr, ptr + bytes) lies inside one block of the context (kiln_host_alloc's
 * or registered): *pinned 1 or 0. Transfers check this themselves; it is for callers
 * choosing a path. */
KILN_API kiln_status kiln_host_is_pinned(kiln_context context, const void *ptr, size_t bytes,
                                         int *pinned);

KILN_END_DECLS
#endif
