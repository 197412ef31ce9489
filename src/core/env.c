/* SPDX-License-Identifier: MIT */
/* The report of malformed kiln environment variables: once per process, at the first
 * device enumeration (kiln__registry_init), each variable of the table below whose
 * value its reader would not take is named at error level (KILN_LOG's default, so it
 * reaches stderr or the log callback) with what it takes and what kiln does instead.
 * The readers (here and in the backends and platform) use the same parsers
 * (platform/env.c), so the report says exactly what is ignored. Variables validated
 * where they are read (KILN_LOG, KILN_DEVICE, KILN_BACKEND, KILN_TRACE, KILN_TRACE_RING,
 * KILN_CACHE, KILN_CACHE_DIR, KILN_CACHE_MAX_BYTES, KILN_CC, the library paths) are not
 * in it. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "platform/platform.h"

const char *const kiln__env_pool_words[] = {"on", "off", "debug", NULL};
const char *const kiln__env_autotune_words[] = {"0", "1", "off", "on", NULL};

typedef struct env_var {
  const char *name;
  const char *const *words; /* NULL: a number in [min, max] */
  uint64_t min, max;
  const char *takes, *instead; /* what it takes; what kiln uses instead of a bad value */
} env_var;

static const env_var vars[] = {
    {"KILN_CPU_THREADS", NULL, 1, KILN__ENV_THREADS_MAX, "a number of threads from 1 to 4096",
     "one thread per CPU (at most 16)"},
    {"KILN_COPY_THREADS", NULL, 0, KILN__ENV_THREADS_MAX, "a number of threads from 0 to 4096",
     "CPUs - 1 helper threads (at most 7)"},
    {"KILN_CPU_SHUFFLE", NULL, 0, UINT64_MAX, "a seed, a whole number (decimal or 0x hex)",
     "none (the stress mode stays off)"},
    {"KILN_CPU_FISSION", kiln__env_flag_words, 0, 0, "0 (fibers only) or 1",
     "1 (loop fission where it applies)"},
    {"KILN_POOL", kiln__env_pool_words, 0, 0, "on, off or debug", "on"},
    {"KILN_AUTOTUNE", kiln__env_autotune_words, 0, 0, "0, 1, off or on", "0 (no autotuning)"},
    {"KILN_AUTOTUNE_SAMPLES", NULL, 1, KILN__ENV_AUTOTUNE_SAMPLES_MAX,
     "a number of launches per size from 1 to 20", "3"},
    {"KILN_CALLBACK_WARN_MS", NULL, 1, KILN__ENV_CALLBACK_WARN_MS_MAX,
     "milliseconds from 1 to 86400000", "10000"},
    {"KILN_OPENCL_FLUSH_IDLE", kiln__env_flag_words, 0, 0, "0 or 1", "1"},
    {"KILN_OPENCL_EVENTS", kiln__env_ocl_events_words, 0, 0,
     "needed (a cl_event only where kiln waits on one) or all", "the platform's choice"},
    {"KILN_OPENCL_PROFILING", kiln__env_flag_words, 0, 0, "0 (never) or 1 (always)", "on demand"},
    {"KILN_MOCK", kiln__env_flag_words, 0, 0, "1 (enable the mock backend) or 0",
     "0 (the mock backend stays off)"},
    {"KILN_TRACE_NO_TSC", kiln__env_flag_words, 0, 0, "1 (stamp with clock_gettime) or 0",
     "0 (the TSC where the kernel uses it)"},
};

static void report_one(const env_var *v) {
  const char *text = getenv(v->name);
  if (!text || !*text)
    return;
  uint64_t n;
  bool ok = v->words ? kiln__parse_word(text, v->words) >= 0
                     : kiln__parse_uint(text, v->min, v->max, &n) == 0;
  if (ok)
    return;
  char q[KILN__QUOTE_BYTES];
  kiln__log(KILN_LOG_ERROR, "%s=%s: expected %s; ignored, using %s", v->name,
            kiln__quote(q, text, strlen(text)), v->takes, v->instead);
}

void kiln__env_report(void) {
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    report_one(&vars[i]);
}
