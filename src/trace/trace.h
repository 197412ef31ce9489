/* SPDX-License-Identifier: MIT */
/* The trace service's interface to the core (src/core calls these; src/trace knows no
 * backend). Every hook on a hot path sits behind KILN__TRACE_ON(), one relaxed load
 * of a global and a branch predicted not taken while no trace records. Instant events
 * of kiln's decisions (kiln__trace_instant) may come from any core service (pool,
 * cache, hazards, device loss); their category and name are static strings. */
#ifndef KILN_TRACE_INTERNAL_H
#define KILN_TRACE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/core.h"

/* Non-zero while a trace records (started and not paused): KILN__TRACE_FULL, or
 * KILN__TRACE_RING for a ring, which records less per op (no API spans, no op start
 * events: docs/observability.md, "What it costs"). Relaxed loads only: a hook that
 * misses the switch by a few ops is harmless. Defined in core/error.c. */
enum { KILN__TRACE_FULL = 1, KILN__TRACE_RING = 2 };
extern _Atomic int kiln__trace_on;
#define KILN__TRACE_ON() \
  __builtin_expect(atomic_load_explicit(&kiln__trace_on, memory_order_relaxed), 0)
#define KILN__TRACE_FULL_ON() \
  __builtin_expect(           \
      atomic_load_explicit(&kiln__trace_on, memory_order_relaxed) == KILN__TRACE_FULL, 0)

/* Start a trace from KILN_TRACE / KILN_TRACE_RING, once per process (at the first
 * context create). A bad value is logged (KILN_LOG=error) and nothing records. */
void kiln__trace_env_init(void);
/* The trace's clock: the TSC where the kernel itself uses it as its clocksource (so it
 * is invariant and synchronised across cores: kiln__trace_tsc set at the first trace
 * start), else CLOCK_MONOTONIC in ns. Ticks become monotonic ns when the trace is
 * written (write.c: anchored to clock_gettime at the write, scaled by the TSC rate
 * measured since the process's first trace). A TSC read costs ~16 ns here against
 * ~36 ns for clock_gettime, and a traced op reads the clock four or five times.
 * Defined in error.c (with kiln__trace_on). */
extern _Atomic int kiln__trace_tsc;
static inline uint64_t kiln__trace_clock(void) {
#if defined(__x86_64__)
  if (atomic_load_explicit(&kiln__trace_tsc, memory_order_relaxed))
    return __builtin_ia32_rdtsc();
#endif
  return kiln__now_ns();
}

/* When the calling thread entered the public function it is in (set by
 * kiln__api_enter while tracing; 0 once an API span took it). Defined in error.c. */
extern _Thread_local uint64_t kiln__trace_api_begin_ns /* kiln__trace_clock ticks */
    __attribute__((tls_model("initial-exec")));
/* A public call that waited (blocking transfer, token or stream wait) returns: its API
 * span on the calling thread's track. */
void kiln__trace_api_end(void);
/* kiln__submit handed the op to the backend (under the stream's submit lock, seq and
 * deps set): its submit time, the API span, the flows of its dependencies. Called
 * when kiln__trace_submit_records(op). */
void kiln__trace_op_submitted(kiln__op_obj *op);
/* Whether kiln__trace_op_submitted has anything to record (a trace records): always
 * for a full trace; for a ring, only a device backend's op (its observed start needs
 * the submit time) or one with dependencies (flows): a host backend's op is then its
 * end event alone. Inline, so a ring's burst of such ops makes no call here. */
static inline bool kiln__trace_submit_records(const kiln__op_obj *op) {
  if (atomic_load_explicit(&kiln__trace_on, memory_order_relaxed) == KILN__TRACE_FULL)
    return true;
  kiln_backend_kind k = op->h.ops->kind;
  return (k != KILN_BACKEND_CPU && k != KILN_BACKEND_MOCK) || op->dep_count ||
         op->kind == KILN__OP_WAIT;
}
/* A host backend is about to run the op (kiln__op_begin). */
void kiln__trace_op_begin(kiln__op_obj *op);
/* The op completes (kiln__op_complete, before it is published): its span. */
void kiln__trace_op_complete(kiln__op_obj *op, kiln_status status);
/* A context is being destroyed: write the trace if it has a path. */
void kiln__trace_context_destroyed(void);
/* Name the track of the stream with this uid (kiln_trace_name_stream; stream creation
 * passes the stream's label while a trace records). */
kiln_status kiln__trace_name_track(uint64_t uid, const char *name);

/* An instant event of kiln's own on the calling thread's track: category ("pool",
 * "cache", "hazard", "device"), name ("hit", "miss", ...), then `nargs` (0-3) pairs of
 * (const char *key, int64_t value); keys and names are static strings. */
void kiln__trace_instant(const char *category, const char *name, int nargs, ...);
/* As kiln__trace_instant, with one string argument (copied, cut at 47 bytes), e.g. a
 * cache key or a device's reason. */
void kiln__trace_instant_str(const char *category, const char *name, const char *key,
                             const char *value);

#endif
