/* SPDX-License-Identifier: MIT */
/* Launch configurations remembered and tuned (tune.c; docs/kernels.md "Launch
 * configuration"): per (source kernel, device, range class) the local size kiln chose —
 * its heuristic's, one an earlier process stored in the compile cache's blob store
 * (namespace "launch-config"), or the fastest of a few candidates that autotuning
 * (KILN_AUTOTUNE=1) timed on real launches, one candidate per launch. The caller's
 * local size always wins. Thread-safe: each kernel's table has its own lock. */
#ifndef KILN_TUNE_H
#define KILN_TUNE_H

#include "core/core.h"

struct kiln__tune_entry;

/* For a launch of k over r (checked; r->local all zero): *eff becomes r with the local
 * size kiln remembers or is trying, and true is returned; false: the backend's own
 * choice applies (eff untouched). *timed and *cand: the entry and candidate the launch
 * measures (NULL when it measures nothing). Reads the store at a class's first launch
 * and writes it when a choice is new. Launching thread only. */
bool kiln__tune_pick(kiln__kernel_obj *k, const kiln_range *r, kiln_range *eff,
                     struct kiln__tune_entry **timed, uint32_t *cand);
/* A measured launch completed: `ns` from its start to its completion (status: failed
 * launches count as no sample). Any thread; no I/O. */
void kiln__tune_record(struct kiln__tune_entry *e, uint32_t cand, uint64_t ns, kiln_status status);
/* The configuration kiln remembers for k over r (r->local all zero), for
 * kiln_kernel_get_launch_config and the debug log: local, origin and why; false when
 * none (the backend's choice applies). */
bool kiln__tune_describe(kiln__kernel_obj *k, const kiln_range *r, size_t local[3],
                         kiln_launch_origin *origin, char *why, size_t why_bytes);
/* Free k's table (storing a tuned choice not yet stored). */
void kiln__tune_free(kiln__kernel_obj *k);

#endif
