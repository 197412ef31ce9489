/* SPDX-License-Identifier: MIT */
/* Routing of kiln's host allocations (the test allocator uses it). */
#ifndef KILN_ALLOC_H
#define KILN_ALLOC_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"

/* alloc returns memory aligned to at least `align` (a power of two) or NULL;
 * free receives the size and alignment the block was allocated with. */
typedef struct kiln_allocator {
  size_t struct_size;
  void *(*alloc)(size_t size, size_t align, void *user);
  void (*free)(void *ptr, size_t size, size_t align, void *user);
  void *user;
} kiln_allocator;
#define KILN_ALLOCATOR_INIT \
  { sizeof(kiln_allocator), NULL, NULL, NULL }

KILN_BEGIN_DECLS

/* Route every host allocation kiln makes from now on through `allocator`
 * (NULL restores the C library's). Refused with KILN_ERROR_INVALID_STATE while
 * any context exists, since blocks must be freed by the allocator that made them.
 * Process-lifetime tables (the context table, the device registry) are static. */
KILN_API kiln_status kiln_set_allocator(const kiln_allocator *allocator);

/* Host memory from the allocator kiln's own allocations go through (the one given to
 * kiln_set_allocator, else the C library's), for libraries layered on kiln (its task
 * graphs) whose blocks must be counted and fail-injected with kiln's. `align`: a
 * power of two, 0 for the default (16); bytes 0 counts as 1. NULL when it fails.
 * Free with kiln_allocator_free and the same size and alignment, before the
 * allocator is changed (i.e. while a context still exists, or before the next
 * kiln_set_allocator). */
KILN_API void *kiln_allocator_alloc(size_t bytes, size_t align);
KILN_API void kiln_allocator_free(void *ptr, size_t bytes, size_t align);

KILN_END_DECLS
#endif
