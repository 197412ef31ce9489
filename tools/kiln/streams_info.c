/* SPDX-License-Identifier: MIT */
/* `kiln info`'s stream part: per device, how kiln_stream_desc.priority is applied (the
 * range from the device's props and the mechanism per backend), the copy engines
 * (CUDA) and kiln_stream_pool_default_count. Public API only. */
#include <stdio.h>

#include "streams_info.h"

/* How the backend applies a priority, in words. */
static const char *priority_how(const kiln_device_props *p) {
  switch (p->backend) {
  case KILN_BACKEND_CPU:
    return p->priority_max > 0 ? "worker-thread niceness (lower and raise)"
                               : "worker-thread niceness (lower only: raising needs root or "
                                 "RLIMIT_NICE)";
  case KILN_BACKEND_OPENCL:
    return p->priority_max > 0 ? "cl_khr_priority_hints (high / low queues)"
                               : "none: no cl_khr_priority_hints, accepted and reported as 0";
  case KILN_BACKEND_CUDA:
    return "CUDA stream priorities (clamped to the context's range)";
  default:
    return "none: accepted and reported as 0";
  }
}

static size_t pool_default(const kiln_device_props *p) {
  kiln_device d = NULL;
  size_t n = 0;
  if (kiln_device_find(p->backend, p->index, &d) != KILN_SUCCESS ||
      kiln_stream_pool_default_count(d, &n) != KILN_SUCCESS)
    return 0;
  return n;
}

void kiln_cli_streams_json(kiln__json *j, const kiln_device_props *p) {
  kiln__json_begin_object(j, "streams");
  kiln__json_int(j, "priority_max", p->priority_max);
  kiln__json_int(j, "priority_min", p->priority_min);
  kiln__json_string(j, "priority_how", priority_how(p));
  kiln__json_uint(j, "copy_engines", p->copy_engines);
  kiln__json_uint(j, "pool_default_count", pool_default(p));
  kiln__json_end_object(j);
}

void kiln_cli_streams_table(const kiln_device_props *devices, unsigned count) {
  if (count == 0)
    return;
  printf("\nStreams (priority: kiln_stream_desc.priority applied within MIN..MAX)\n");
  for (unsigned i = 0; i < count; ++i) {
    const kiln_device_props *p = &devices[i];
    printf("  %s:%u  priority %d..%d, %s; pool default %zu streams", kiln_backend_name(p->backend),
           p->index, p->priority_min, p->priority_max, priority_how(p), pool_default(p));
    if (p->copy_engines)
      printf(" (%u copy engines + 1)", p->copy_engines);
    printf("\n");
  }
}
