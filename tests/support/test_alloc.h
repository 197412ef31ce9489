/* SPDX-License-Identifier: MIT */
/* The test allocator: installed with kiln_set_allocator(), it counts kiln's live host
 * blocks and bytes and every alloc call, checks each free against the size and
 * alignment of its block, and fails on demand (the Nth call once, or every call from
 * N on) for fault-injection sweeps. Thread-safe (kiln allocates on its own threads).
 * Install and uninstall only while no kiln context exists. */
#ifndef KILN_TEST_ALLOC_H
#define KILN_TEST_ALLOC_H

#include <stddef.h>
#include "kiln.h"

typedef enum kt_alloc_mode {
  KT_ALLOC_NEVER_FAIL = 0,
  KT_ALLOC_FAIL_NTH = 1, /* the Nth call after the mode was set fails, once */
  KT_ALLOC_FAIL_FROM = 2 /* the Nth call and every later one fail */
} kt_alloc_mode;

typedef struct kt_alloc_stats {
  size_t live_count; /* blocks allocated and not yet freed */
  size_t live_bytes;
  size_t peak_bytes;
  size_t calls;            /* alloc calls since the last reset or mode change */
  size_t failures;         /* alloc calls that were failed on purpose */
  size_t bad_frees;        /* frees of unknown blocks, double frees */
  size_t mismatched_frees; /* frees with a size or alignment other than the block's */
  size_t bad_allocs;       /* alloc calls with an alignment that is not a power of two */
} kt_alloc_stats;

/* Reset the counters (live ones must be 0), then kiln_set_allocator(test allocator). */
kiln_status kt_alloc_install(void);
/* kiln_set_allocator(NULL): back to the C library. */
kiln_status kt_alloc_uninstall(void);

/* Failure modes; n counts alloc calls from 1, starting with the next one. Setting a
 * mode resets `calls` and `failures`. */
void kt_alloc_set_mode(kt_alloc_mode mode, size_t n);
void kt_alloc_fail_nth(size_t n);
void kt_alloc_fail_from(size_t n);
void kt_alloc_fail_none(void);

kt_alloc_stats kt_alloc_get_stats(void);
size_t kt_alloc_live_count(void);
size_t kt_alloc_calls(void);
size_t kt_alloc_failures(void);

/* 1 when nothing is live and no free was bad or mismatched; else prints a report to
 * stderr (with `what` naming the test) and returns 0. */
int kt_alloc_check_clean(const char *what);

#endif
