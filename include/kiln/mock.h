/* SPDX-License-Identifier: MIT */
/* The mock backend: a test double built on the CPU backend's execution, with failures,
 * delays, shuffled completion and device loss on demand. It is available only when the
 * environment has KILN_MOCK=1 when kiln first probes its backends; its device is
 * "mock:0" and is never the default. Configuration is process-wide. */
#ifndef KILN_MOCK_H
#define KILN_MOCK_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"

/* "Backend calls" are counted in a fixed order: every context, stream, buffer and
 * kernel the mock creates, every kiln_host_alloc block, and every operation queued on
 * a mock stream (counted when queued, failing when it runs). */
typedef struct kiln_mock_config {
  size_t struct_size;
  uint64_t fail_call;        /* the Nth backend call (1-based) fails, once; 0: none */
  uint64_t fail_from_call;   /* every backend call from the Nth on fails; 0: none */
  kiln_status fail_status;   /* status of injected failures; 0: KILN_ERROR_BACKEND */
  uint64_t lose_device_call; /* the Nth backend call loses the device; 0: never */
  uint64_t delay_ns;         /* every queued operation takes at least this long */
  uint64_t shuffle_seed;     /* nonzero: operations start after random delays, so work on
                                different streams completes in a shuffled order */
  int reset_probe_fails;     /* kiln_device_reset's probe fails: the device stays lost */
  int unbacked_buffers;      /* buffers made from now on get an address but no memory (for
                                allocator benchmarks: never transfer to or launch on them) */
} kiln_mock_config;
#define KILN_MOCK_CONFIG_INIT \
  { sizeof(kiln_mock_config), 0, 0, KILN_SUCCESS, 0, 0, 0, 0, 0 }

KILN_BEGIN_DECLS

/* Replace the configuration (NULL: all off) and zero the call counter. Streams take
 * delay and shuffle settings when they are created. */
KILN_API kiln_status kiln_mock_configure(const kiln_mock_config *config);
/* Backend calls counted since the last kiln_mock_configure. */
KILN_API uint64_t kiln_mock_calls(void);
/* Injected failures so far (since the last kiln_mock_configure). */
KILN_API uint64_t kiln_mock_failures(void);
/* Bytes of device memory the mock's buffers hold now (every buffer_create not yet
 * destroyed, backed or not), and the most they ever held (process-wide). */
KILN_API uint64_t kiln_mock_buffer_bytes(void);
KILN_API uint64_t kiln_mock_buffer_bytes_peak(void);

/* The mock compiles kiln-dialect source with a fake, deterministic compiler (for the
 * compile cache's tests): each kernel gets a 32-bit code from the source, the options
 * and its name, and when launched fills its first parameter (a buffer of 32-bit words
 * it writes) with that code over the global range. Programs export and import
 * binaries. A source containing KILN_MOCK_COMPILE_ERROR fails to compile. Program
 * builds and imports and kernel creations are backend calls (counted above). This is
 * the number of fake compiles in this process (loads from a binary do not count). */
KILN_API uint64_t kiln_mock_compiles(void);

KILN_END_DECLS
#endif
