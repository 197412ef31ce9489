/* SPDX-License-Identifier: MIT */
/* Helpers shared by kiln's cmocka tests: status assertions that print
 * kiln_last_error(), the CPU device, a per-test environment (context + stream under
 * the test allocator, checked for leaks at teardown), gate kernels that block until
 * the test opens them, and a few native kernels. Assertions (cmocka) only from the
 * test's own thread: kernels and callbacks record into atomics the test checks. */
#ifndef KILN_TEST_H
#define KILN_TEST_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "kiln.h"
#include "test_alloc.h"

/* ---- status assertions ---- */

/* Fail the current test: the expression, the status got and expected, and the
 * thread's kiln_last_error() in full. */
void kt_fail_status(const char *expr, kiln_status got, kiln_status expected, const char *file,
                    int line);
/* got == expected; for an error also that kiln_last_error() is filled consistently:
 * same status, non-empty message, suggestion and function name. */
void kt_check_status(const char *expr, kiln_status got, kiln_status expected, const char *file,
                     int line);
/* The message of kiln_last_error() contains `needle` (case-insensitive). */
void kt_check_message_has(const char *needle, const char *file, int line);

#define KT_OK(call)                                                    \
  do {                                                                 \
    kiln_status kt_st_ = (call);                                       \
    if (kt_st_ != KILN_SUCCESS)                                        \
      kt_fail_status(#call, kt_st_, KILN_SUCCESS, __FILE__, __LINE__); \
  } while (0)
#define KT_EXPECT(call, expected)                                   \
  do {                                                              \
    kiln_status kt_st_ = (call);                                    \
    kt_check_status(#call, kt_st_, (expected), __FILE__, __LINE__); \
  } while (0)
/* KT_EXPECT and the message names `needle`. */
#define KT_EXPECT_MSG(call, expected, needle)                       \
  do {                                                              \
    kiln_status kt_st_ = (call);                                    \
    kt_check_status(#call, kt_st_, (expected), __FILE__, __LINE__); \
    kt_check_message_has((needle), __FILE__, __LINE__);             \
  } while (0)
#define KT_MSG_HAS(needle) kt_check_message_has((needle), __FILE__, __LINE__)

/* Case-insensitive strstr. */
const char *kt_strcasestr(const char *hay, const char *needle);

/* ---- devices ---- */

/* 1 when the backend is available with at least one device. */
int kt_backend_available(kiln_backend_kind kind);
/* CPU device 0 (asserts). */
kiln_device kt_cpu_device(void);

/* The backend under test: KILN_TEST_BACKEND (set per registration by
 * tests/CMakeLists.txt for files with a `kiln-test-backends:` line), default cpu. */
kiln_backend_kind kt_backend(void);
/* Its device 0 (asserts). kt_setup uses it. */
kiln_device kt_device(void);
/* 1 when the backend under test runs native C kernels (cpu, mock), 0 when it
 * compiles dialect source (opencl, cuda). */
int kt_backend_native(void);
/* A test kernel with the same parameters on every backend: a native C kernel on
 * cpu/mock, the dialect kernel on opencl/cuda. Names:
 *   "vecadd"     (const float *a, const float *b, float *c RW, int n): c = a + b, i < n
 *                (tests/kernels/vecadd.kiln)
 *   "kt_add_u32" (uint32 *buf RW, uint64 offset, uint32 add): buf[offset + i] += add
 *   "kt_hits"    (uint32 *hits RW): hits[x + gx * (y + gy * z)] += 1 over a 1-3-D range
 *                of global size gx x gy x gz (every index once)
 *   "kt_set_u32" (uint32 *buf RW, uint32 value): buf[i] = value + i
 * Buffers declared by non-const pointers are READ_WRITE on every backend. */
kiln_status kt_kernel(kiln_context ctx, const char *name, kiln_kernel *kernel);

/* The mock backend's device "mock:0" (asserts; needs KILN_MOCK=1 in the environment,
 * e.g. through the test file's `kiln-test-env: KILN_MOCK=1` line). */
kiln_device kt_mock_device(void);

/* ---- log capture (kiln_set_log_callback) ---- */

/* Lines at or below `max_level` are appended to `text` (one per line, truncated when
 * full) and counted; thread-safe (kiln logs from its own threads). */
typedef struct kt_log_capture {
  pthread_mutex_t lock;
  int lines;      /* every line delivered */
  int warn_lines; /* of which at level error or warn */
  char text[16384];
} kt_log_capture;

/* Install the capture as kiln's log callback at `max_level`. */
void kt_log_capture_start(kt_log_capture *cap, kiln_log_level max_level);
/* Restore logging to stderr (KILN_LOG); the capture keeps what it got. */
void kt_log_capture_stop(kt_log_capture *cap);
/* 1 when some captured line contains `needle` (case-sensitive). */
int kt_log_capture_has(kt_log_capture *cap, const char *needle);
int kt_log_capture_warnings(kt_log_capture *cap);

/* ---- gates: kernels that block until the test opens them ---- */

typedef struct kt_gate {
  atomic_int open;      /* set by the test */
  atomic_int entered;   /* set by the kernel when it starts waiting */
  atomic_int timed_out; /* set by the kernel when it gave up (KT_GATE_TIMEOUT_S) */
  atomic_int left;      /* set by the kernel when it returns */
  /* kt_hold_async only: what it made (freed with the context) and, on OpenCL, the
   * user event the held queue waits for (completed and released by kt_gate_open). */
  kiln_kernel kernel;
  kiln_buffer scratch;
  _Atomic(void *) cl_user_event;
} kt_gate;
#define KT_GATE_TIMEOUT_S 30.0

void kt_gate_init(kt_gate *gate);
void kt_gate_open(kt_gate *gate);
/* Kernel "kt_gate": one SCALAR parameter, a kt_gate pointer; spins (sleeping 50 us
 * between looks) until the gate opens. Launch over range 1. */
kiln_kernel kt_gate_kernel(kiln_context ctx);
/* Same without asserting (for fault injection): NULL and *status set on failure. */
kiln_kernel kt_gate_kernel_noassert(kiln_context ctx, kiln_status *status);
KILN_NODISCARD kiln_status kt_gate_launch_async(kiln_stream stream, kiln_kernel gate_kernel,
                                                kt_gate *gate, kiln_pending *token);

/* Hold `stream` on any backend: work submitted to it after this call waits until
 * kt_gate_open(gate); *token completes when the gate opens. cpu/mock: the gate kernel
 * (kt_gate_kernel). opencl: a host-side gate, a marker on the stream's cl_command_queue
 * waiting for a user event (raw OpenCL, kt_opencl.h), then a 4-byte fill of a scratch
 * buffer carrying the token; `entered` is set at once. One hold per gate. */
KILN_NODISCARD kiln_status kt_hold_async(kiln_context ctx, kiln_stream stream, kt_gate *gate,
                                         kiln_pending *token);

/* Poll until *v >= target or timeout_s passed; 1 when reached. Never asserts timing:
 * the timeout only turns a hang into a failure. */
int kt_wait_atomic_at_least(atomic_int *v, int target, double timeout_s);
void kt_sleep_us(unsigned us);

/* ---- native kernels ---- */

/* "kt_add_u32"(uint32 *buf RW, uint64 offset_elems, uint32 add):
 * buf[offset + i] += add for i in the 1-D range. Native on cpu/mock, the dialect
 * kernel on other backends under test (kt_kernel). */
kiln_kernel kt_add_kernel(kiln_context ctx);
/* Same without asserting (for fault injection): NULL and *status set on failure. */
kiln_kernel kt_add_kernel_noassert(kiln_context ctx, kiln_status *status);
/* Arguments for kt_add_kernel; `offset` and `add` must outlive the launch call only. */
void kt_add_args(kiln_arg args[3], kiln_buffer buf, const uint64_t *offset, const uint32_t *add);

/* ---- the per-test environment ---- */

#define KT_MAX_GATES 8
typedef struct kt_env {
  kiln_device device;
  kiln_device_props props;
  kiln_context ctx;
  kiln_stream stream;
  int alloc_installed;
  kt_gate gates[KT_MAX_GATES];
  size_t gate_count;
} kt_env;

/* Test allocator installed, a context on kt_device() (the CPU unless the file is
 * registered per backend) and one stream. */
int kt_setup(void **state);
/* Same without the test allocator. */
int kt_setup_plain(void **state);
/* Opens every gate, destroys the context, uninstalls the allocator and fails when
 * kiln left a block live or freed one wrongly. */
int kt_teardown(void **state);
/* A fresh gate of this environment; teardown opens it so nothing hangs. */
kt_gate *kt_env_gate(kt_env *env);

kiln_buffer kt_buffer(kiln_context ctx, size_t bytes);

/* main() of every test file: filter by argv[1] (one ctest entry per test), exit 77
 * when the CPU backend is missing. */
#define KT_MAIN_CPU(tests)                                         \
  int main(int argc, char **argv) {                                \
    if (!kt_backend_available(KILN_BACKEND_CPU)) {                 \
      fprintf(stderr, "SKIP: the cpu backend is not available\n"); \
      return 77;                                                   \
    }                                                              \
    if (argc > 1)                                                  \
      cmocka_set_test_filter(argv[1]);                             \
    return cmocka_run_group_tests(tests, NULL, NULL);              \
  }

/* main() of a file of the shared backend suite (`kiln-test-backends:`): exit 77 when
 * the backend under test (KILN_TEST_BACKEND) is absent. */
#define KT_MAIN(tests)                                                                             \
  int main(int argc, char **argv) {                                                                \
    if (!kt_backend_available(kt_backend())) {                                                     \
      fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend())); \
      return 77;                                                                                   \
    }                                                                                              \
    if (argc > 1)                                                                                  \
      cmocka_set_test_filter(argv[1]);                                                             \
    return cmocka_run_group_tests(tests, NULL, NULL);                                              \
  }

/* Fault sweeps over every N (the mock backend's calls, or host allocations through the
 * test allocator): what one run injects. */
typedef enum kt_sweep_kind { KT_SWEEP_BACKEND, KT_SWEEP_ALLOC } kt_sweep_kind;
typedef enum kt_sweep_mode {
  KT_SWEEP_CLEAN, /* nothing: counts the calls a clean run makes */
  KT_SWEEP_NTH,   /* the Nth call fails, once */
  KT_SWEEP_FROM   /* the Nth call and every later one fail */
} kt_sweep_mode;
/* "backend fail-nth N=7" and the like, for failure messages. */
void kt_sweep_label(kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n, char *out,
                    size_t out_bytes);
/* Arm one run: the mock configured to fail with `injected` (backend sweeps) or the test
 * allocator (installed by the caller) set to fail (allocation sweeps). */
void kt_sweep_arm(kt_sweep_kind kind, kt_sweep_mode mode, uint64_t n, kiln_status injected);

/* main() of a mock-backend test file: exit 77 when the mock backend is missing (it
 * needs KILN_MOCK=1 at first probe). */
#define KT_MAIN_MOCK(tests)                                                   \
  int main(int argc, char **argv) {                                           \
    if (!kt_backend_available(KILN_BACKEND_MOCK)) {                           \
      fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1 " \
                      "must be in the environment)\n");                       \
      return 77;                                                              \
    }                                                                         \
    if (argc > 1)                                                             \
      cmocka_set_test_filter(argv[1]);                                        \
    return cmocka_run_group_tests(tests, NULL, NULL);                         \
  }

#endif
