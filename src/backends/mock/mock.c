/* SPDX-License-Identifier: MIT */
/* The mock backend (tests only): the CPU backend's execution (its ops table is called
 * directly, a decorator like the ICD loader's trace layer) plus failures, delays,
 * shuffled completion and device loss, configured through include/kiln/mock.h.
 * Backend calls are counted under one lock, in the order the core makes them, so a
 * fault-injection sweep over "the Nth call" is deterministic for a single-threaded
 * scenario. Enabled only with KILN_MOCK=1. Its fake compiler (programs, binaries for
 * the compile cache) is mock_program.c. */
#include <stdlib.h>
#include <string.h>

#include "backends/mock/mock_internal.h"

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_mock_config config;                                 /* under config_lock */
static uint64_t calls, failures;                                /* under config_lock */
static uint64_t buffer_bytes, buffer_bytes_peak, unbacked_next; /* under config_lock */
static kiln__device *mock_device;                               /* set by probe */

kiln_status kiln_mock_configure(const kiln_mock_config *cfg) {
  KILN__API_ENTER();
  if (cfg && cfg->struct_size < sizeof(kiln_mock_config))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "config->struct_size is %zu, expected %zu: initialise it with "
                       "KILN_MOCK_CONFIG_INIT",
                       cfg->struct_size, sizeof(kiln_mock_config));
  if (cfg && cfg->fail_status >= 0 && cfg->fail_status != KILN_SUCCESS)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "config->fail_status is %s: injected failures need an error status",
                       kiln_status_name(cfg->fail_status));
  pthread_mutex_lock(&config_lock);
  if (cfg)
    config = *cfg;
  else
    memset(&config, 0, sizeof config);
  calls = failures = 0;
  pthread_mutex_unlock(&config_lock);
  return KILN_SUCCESS;
}

uint64_t kiln_mock_calls(void) {
  pthread_mutex_lock(&config_lock);
  uint64_t n = calls;
  pthread_mutex_unlock(&config_lock);
  return n;
}

uint64_t kiln_mock_failures(void) {
  pthread_mutex_lock(&config_lock);
  uint64_t n = failures;
  pthread_mutex_unlock(&config_lock);
  return n;
}

uint64_t kiln_mock_buffer_bytes(void) {
  pthread_mutex_lock(&config_lock);
  uint64_t n = buffer_bytes;
  pthread_mutex_unlock(&config_lock);
  return n;
}

uint64_t kiln_mock_buffer_bytes_peak(void) {
  pthread_mutex_lock(&config_lock);
  uint64_t n = buffer_bytes_peak;
  pthread_mutex_unlock(&config_lock);
  return n;
}

kiln_status kiln__mock_count_call(const char *what) {
  pthread_mutex_lock(&config_lock);
  uint64_t n = ++calls;
  kiln_status st = KILN_SUCCESS;
  bool lose = config.lose_device_call && n == config.lose_device_call;
  if (lose)
    st = KILN_ERROR_DEVICE_LOST;
  else if ((config.fail_call && n == config.fail_call) ||
           (config.fail_from_call && n >= config.fail_from_call))
    st = config.fail_status ? config.fail_status : KILN_ERROR_BACKEND;
  if (st != KILN_SUCCESS)
    failures++;
  pthread_mutex_unlock(&config_lock);
  if (lose)
    kiln__device_mark_lost(mock_device, "the mock backend lost its device on request");
  if (st != KILN_SUCCESS)
    kiln__error_native(st, KILN_BACKEND_MOCK, (int64_t)n, "MOCK_INJECTED",
                       "mock backend: injected failure of backend call %llu (%s)",
                       (unsigned long long)n, what);
  return st;
}

static kiln_status mock_probe(const kiln__backend_ops *self, char *reason, size_t reason_bytes) {
  if (kiln__env_flag("KILN_MOCK", 0) != 1) {
    kiln__strlcpy(reason, "the mock backend is for tests: set KILN_MOCK=1 to enable it",
                  reason_bytes);
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  p.kind = KILN_DEVICE_KIND_OTHER;
  kiln__strlcpy(p.name, "kiln mock device", sizeof p.name);
  kiln__strlcpy(p.vendor, "kiln", sizeof p.vendor);
  p.global_mem_bytes = 1ull << 30;
  p.max_alloc_bytes = 256ull << 20;
  p.compute_units = 2;
  p.max_work_group_size = 256;
  for (int d = 0; d < 3; d++) {
    p.max_work_item_sizes[d] = 256;
    p.max_global_size[d] = (size_t)1 << 30;
  }
  p.local_mem_bytes = 48u * 1024u;
  p.mem_align_bytes = 64;
  return kiln__registry_add_device(self, &p, NULL, &mock_device);
}

static kiln_status mock_mem_info(kiln__device *device, uint64_t *free_bytes,
                                 uint64_t *total_bytes) {
  *total_bytes = device->props.global_mem_bytes;
  pthread_mutex_lock(&config_lock);
  uint64_t used = buffer_bytes;
  pthread_mutex_unlock(&config_lock);
  *free_bytes = used < *total_bytes ? *total_bytes - used : 0;
  return KILN_SUCCESS;
}

static kiln_status mock_context_create(kiln__context *ctx) {
  kiln_status st = kiln__mock_count_call("context_create");
  return st != KILN_SUCCESS ? st : kiln__cpu_backend.context_create(ctx);
}

static void mock_context_destroy(kiln__context *ctx) {
  kiln__cpu_backend.context_destroy(ctx);
}

/* The mock's own state of a stream (in stream->decor), made only when the
 * configuration at its creation asks for delays or shuffling. */
typedef struct mock_stream {
  uint64_t rng;      /* shuffle: the stream's random state (its worker thread only) */
  uint64_t delay_ns; /* every op takes at least this */
} mock_stream;

static kiln_status mock_stream_create(kiln__stream *s) {
  kiln_status st = kiln__mock_count_call("stream_create");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&config_lock);
  uint64_t seed = config.shuffle_seed, delay = config.delay_ns;
  pthread_mutex_unlock(&config_lock);
  s->decor = NULL;
  if (seed || delay) {
    mock_stream *ms = kiln__calloc(1, sizeof *ms);
    if (!ms)
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a stream");
    ms->rng = seed ? (seed ^ ((uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15ull)) | 1u : 0;
    ms->delay_ns = delay;
    s->decor = ms;
  }
  /* The mock device has no priorities (its props say so): accepted, reported as 0. */
  int priority = s->priority;
  s->priority = 0;
  st = kiln__cpu_backend.stream_create(s);
  s->priority = priority;
  s->priority_applied = 0;
  if (st != KILN_SUCCESS && s->decor) {
    kiln__free(s->decor, sizeof(mock_stream));
    s->decor = NULL;
  }
  return st;
}

static void mock_stream_destroy(kiln__stream *s) {
  kiln__cpu_backend.stream_destroy(s);
  if (s->decor)
    kiln__free(s->decor, sizeof(mock_stream));
  s->decor = NULL;
}

/* Unbacked buffers (config.unbacked_buffers) get distinct page-aligned addresses in a
 * range no host memory uses, and are marked wrapped so the CPU backend frees nothing. */
static kiln_status mock_buffer_create(kiln__buffer *b) {
  kiln_status st = kiln__mock_count_call("buffer_create");
  if (st != KILN_SUCCESS)
    return st;
  pthread_mutex_lock(&config_lock);
  int unbacked = config.unbacked_buffers;
  uintptr_t fake = 0;
  if (unbacked) {
    fake = (uintptr_t)(0x7e0000000000ull + unbacked_next);
    unbacked_next += (b->bytes + 4095u) / 4096u * 4096u;
  }
  pthread_mutex_unlock(&config_lock);
  if (unbacked) {
    b->native = (void *)fake;
    b->wrapped = true;
  } else if ((st = kiln__cpu_backend.buffer_create(b)) != KILN_SUCCESS) {
    return st;
  }
  pthread_mutex_lock(&config_lock);
  buffer_bytes += b->bytes;
  if (buffer_bytes > buffer_bytes_peak)
    buffer_bytes_peak = buffer_bytes;
  pthread_mutex_unlock(&config_lock);
  return KILN_SUCCESS;
}

static void mock_buffer_destroy(kiln__buffer *b) {
  pthread_mutex_lock(&config_lock);
  buffer_bytes -= b->bytes;
  pthread_mutex_unlock(&config_lock);
  kiln__cpu_backend.buffer_destroy(b);
}

/* A pool's block: counted as a backend call (fault injection), carved as the CPU's; an
 * unbacked slab's blocks have no host address. */
static kiln_status mock_buffer_view_create(kiln__buffer *view, kiln__buffer *parent, size_t offset,
                                           void **host) {
  kiln_status st = kiln__mock_count_call("buffer_view_create");
  if (st != KILN_SUCCESS)
    return st;
  st = kiln__cpu_backend.buffer_view_create(view, parent, offset, host);
  if (parent->wrapped)
    *host = NULL;
  return st;
}

static void mock_buffer_view_destroy(kiln__buffer *view) {
  kiln__cpu_backend.buffer_view_destroy(view);
}

/* kiln_host_alloc: counted like a create (fault injection), memory as the cpu's. */
static kiln_status mock_host_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  (void)ctx, (void)native;
  kiln_status st = kiln__mock_count_call("host_alloc");
  return st != KILN_SUCCESS ? st : kiln__host_alloc_plain(bytes, ptr);
}

static void mock_host_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  (void)ctx, (void)native;
  kiln__host_free_plain(ptr, bytes);
}

static kiln_status mock_kernel_create_native(kiln__kernel *k) {
  kiln_status st = kiln__mock_count_call("kernel_create");
  return st != KILN_SUCCESS ? st : kiln__cpu_backend.kernel_create_native(k);
}

static void mock_submit(kiln__stream *s, kiln__op *op) {
  static const char *const names[] = {"",       "write",  "read", "copy",    "fill",
                                      "launch", "marker", "wait", "callback"};
  kiln_status st = kiln__mock_count_call(names[op->kind]);
  if (st != KILN_SUCCESS) { /* mock_op_begin completes it with this, in order */
    op->decor = (void *)(intptr_t)st;
    op->cause.backend = KILN_BACKEND_MOCK;
    op->cause.native_code = (int64_t)kiln_last_error()->native_code;
    op->cause.native_name = "MOCK_INJECTED";
  }
  kiln__cpu_backend.submit(s, op);
}

/* On the stream's worker, just before the op would run: the configured delays (random
 * ones shuffle completion across streams), then the injected failure, if any. */
static kiln_status mock_op_begin(kiln__op *op) {
  mock_stream *ms = op->stream->decor;
  if (ms && ms->rng) {
    uint64_t r = kiln__rand_next(&ms->rng);
    if ((r & 3u) == 0)
      kiln__sleep_ns((r >> 8) % 200000u);
    else if ((r & 3u) == 1)
      kiln__yield();
  }
  if (ms && ms->delay_ns)
    kiln__sleep_ns(ms->delay_ns);
  return (kiln_status)(intptr_t)op->decor;
}

static kiln_status mock_device_probe(kiln__device *device) {
  (void)device;
  pthread_mutex_lock(&config_lock);
  int fails = config.reset_probe_fails;
  pthread_mutex_unlock(&config_lock);
  if (fails)
    return kiln__error_native(KILN_ERROR_DEVICE_LOST, KILN_BACKEND_MOCK, 0, "MOCK_PROBE_FAILED",
                              "mock backend: the reset probe fails on request");
  return KILN_SUCCESS;
}

const kiln__backend_ops kiln__mock_backend = {
    .kind = KILN_BACKEND_MOCK,
    .name = "mock",
    .probe = mock_probe,
    .mem_info = mock_mem_info,
    .context_create = mock_context_create,
    .context_destroy = mock_context_destroy,
    .stream_create = mock_stream_create,
    .stream_destroy = mock_stream_destroy,
    .buffer_create = mock_buffer_create,
    .buffer_destroy = mock_buffer_destroy,
    .host_alloc = mock_host_alloc,
    .host_free = mock_host_free,
    .program_build = kiln__mock_program_build,
    .program_destroy = kiln__mock_program_destroy,
    .kernel_create = kiln__mock_kernel_create,
    .kernel_create_native = mock_kernel_create_native,
    .kernel_destroy = kiln__mock_kernel_destroy,
    .submit = mock_submit,
    .op_begin = mock_op_begin,
    .device_reset = NULL,
    .device_probe = mock_device_probe,
    .buffer_view_create = mock_buffer_view_create,
    .buffer_view_destroy = mock_buffer_view_destroy,
    .program_cache_id = kiln__mock_program_cache_id,
    .program_export = kiln__mock_program_export,
    .program_import = kiln__mock_program_import,
    .program_share = kiln__mock_program_share,
};
