/* SPDX-License-Identifier: MIT */
/* Status table, thread-local error detail, logging and the version. Error detail lives
 * in fixed thread-local buffers and is formatted on the stack: never allocates. Any
 * thread may call anything here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "trace/trace.h"

unsigned kiln_version(void) {
  return KILN_VERSION_NUMBER;
}
const char *kiln_version_string(void) {
  return KILN_VERSION_STRING;
}

const char *kiln_status_name(kiln_status status) {
  switch (status) {
#define KILN_NAME_(name, value, msg, sugg) \
  case KILN_##name:                        \
    return "KILN_" #name;
    KILN_STATUS_MAP(KILN_NAME_)
#undef KILN_NAME_
  default:
    return "KILN_STATUS_UNKNOWN";
  }
}

const char *kiln_status_message(kiln_status status) {
  switch (status) {
#define KILN_MSG_(name, value, msg, sugg) \
  case KILN_##name:                       \
    return msg;
    KILN_STATUS_MAP(KILN_MSG_)
#undef KILN_MSG_
  default:
    return "unknown status";
  }
}

const char *kiln_status_suggestion(kiln_status status) {
  switch (status) {
#define KILN_SUGG_(name, value, msg, sugg) \
  case KILN_##name:                        \
    return sugg;
    KILN_STATUS_MAP(KILN_SUGG_)
#undef KILN_SUGG_
  default:
    return "";
  }
}

/* ------------------------------------------------------------- thread-local detail */
static _Thread_local kiln_error_info tls_error;
static _Thread_local const char *tls_function;
/* src/trace's switch and the calling thread's API entry time (trace/trace.h): here,
 * beside the API-entry hook that reads them on every call. */
_Atomic int kiln__trace_on;
_Atomic int kiln__trace_tsc;
_Thread_local uint64_t kiln__trace_api_begin_ns __attribute__((tls_model("initial-exec")));
static _Thread_local const char *tls_file;
static _Thread_local int tls_line;

const char *kiln__api_name(void) {
  return tls_function;
}

void kiln__api_enter(const char *function, const char *file, int line) {
  tls_function = function;
  tls_file = file;
  tls_line = line;
  if (KILN__TRACE_FULL_ON()) /* a ring records no API spans */
    kiln__trace_api_begin_ns = kiln__trace_clock();
}

void kiln__api_enter_quick(const char *function, const char *file, int line) {
  tls_function = function;
  tls_file = file;
  tls_line = line;
}

void kiln__strlcpy(char *dst, const char *src, size_t dst_bytes) {
  if (!dst_bytes)
    return;
  size_t n = src ? strlen(src) : 0;
  if (n >= dst_bytes)
    n = dst_bytes - 1;
  if (n)
    memcpy(dst, src, n);
  dst[n] = '\0';
}

static void fill_error(kiln_status status, kiln_backend_kind backend, int64_t code,
                       const char *code_name, const char *fmt, va_list ap) {
  kiln_error_info *e = &tls_error;
  e->status = status;
  e->backend = backend;
  e->native_code = code;
  kiln__strlcpy(e->native_name, code_name ? code_name : "", sizeof e->native_name);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  kiln__strlcpy(e->suggestion, kiln_status_suggestion(status), sizeof e->suggestion);
  kiln__strlcpy(e->function, tls_function ? tls_function : "", sizeof e->function);
  kiln__strlcpy(e->file, tls_file ? tls_file : "", sizeof e->file);
  e->line = tls_file ? tls_line : 0;
  if (kiln__log_enabled(KILN_LOG_DEBUG))
    kiln__log(KILN_LOG_DEBUG, "%s: %s: %s", e->function, kiln_status_name(status), e->message);
}

kiln_status kiln__error(kiln_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fill_error(status, KILN_BACKEND_NONE, 0, NULL, fmt, ap);
  va_end(ap);
  return status;
}

kiln_status kiln__error_native(kiln_status status, kiln_backend_kind backend, int64_t code,
                               const char *code_name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fill_error(status, backend, code, code_name, fmt, ap);
  va_end(ap);
  return status;
}

void kiln__error_suggest(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_error.suggestion, sizeof tls_error.suggestion, fmt, ap);
  va_end(ap);
}

static kiln_status report(kiln_status status, const char *function, int64_t native_code,
                          const char *native_name, const char *suggestion, const char *fmt,
                          va_list ap) {
  if (status >= KILN_SUCCESS) {
    kiln__api_enter_quick("kiln_error_report", NULL, 0);
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "status %d (%s) is not an error: report only negative statuses", (int)status,
                       kiln_status_name(status));
  }
  kiln__api_enter_quick(function ? function : "", NULL, 0);
  fill_error(status, KILN_BACKEND_NONE, native_code, native_name, fmt ? fmt : "", ap);
  if (suggestion)
    kiln__strlcpy(tls_error.suggestion, suggestion, sizeof tls_error.suggestion);
  return status;
}

kiln_status kiln_error_report(kiln_status status, const char *function, const char *suggestion,
                              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status st = report(status, function, 0, NULL, suggestion, fmt, ap);
  va_end(ap);
  return st;
}

kiln_status kiln_error_report_native(kiln_status status, const char *function, int64_t native_code,
                                     const char *native_name, const char *suggestion,
                                     const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  status = report(status, function, native_code, native_name, suggestion, fmt, ap);
  va_end(ap);
  return status;
}

const kiln_error_info *kiln_last_error(void) {
  return &tls_error;
}

void kiln_clear_error(void) {
  memset(&tls_error, 0, sizeof tls_error);
}

/* The build log: per thread, in a buffer grown with the C library's allocator (not
 * kiln_set_allocator's: it lives as long as the thread, freed by a key destructor). */
static _Thread_local char *tls_log;
static _Thread_local size_t tls_log_cap;
static pthread_key_t log_key;
static pthread_once_t log_key_once = PTHREAD_ONCE_INIT;

static void log_free(void *p) {
  free(p);
}
static void log_key_make(void) {
  pthread_key_create(&log_key, log_free);
}

void kiln__set_build_log(const char *log, size_t len) {
  static const char truncated[] = "\n[kiln: build log truncated: out of memory]\n";
  pthread_once(&log_key_once, log_key_make);
  if (len + 1 > tls_log_cap) {
    char *p = realloc(tls_log, len + 1);
    if (p) {
      tls_log = p;
      tls_log_cap = len + 1;
      pthread_setspecific(log_key, p);
    }
  }
  if (!tls_log_cap)
    return;
  if (len + 1 <= tls_log_cap) {
    memcpy(tls_log, log, len);
    tls_log[len] = '\0';
    return;
  }
  size_t keep = tls_log_cap - 1;
  memcpy(tls_log, log, keep);
  tls_log[keep] = '\0';
  if (keep >= sizeof truncated)
    memcpy(tls_log + keep - (sizeof truncated - 1), truncated, sizeof truncated);
}

const char *kiln_last_build_log(void) {
  return tls_log ? tls_log : "";
}

/* ------------------------------------------------------------- logging */
static kiln_log_fn log_fn;
static void *log_user;
static _Atomic int log_level = -1; /* -1: not read from KILN_LOG yet */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_bool log_env_reported; /* an unknown KILN_LOG was reported (once) */
static const char *const level_names[] = {"off", "error", "warn", "info", "debug"};

static bool same_word_any_case(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
    if (ca != *b)
      return false; /* b: a lower-case level name */
  }
  return *a == *b;
}

/* KILN_LOG's level, in any case; unset or empty: error. An unknown value also gives
 * error and sets *unknown (its text for the report), so the caller can report it once
 * kiln__log is safe to call. */
static int env_log_level(const char **unknown) {
  *unknown = NULL;
  const char *v = getenv("KILN_LOG");
  if (!v || !*v)
    return KILN_LOG_ERROR;
  for (int i = 0; i < 5; i++)
    if (same_word_any_case(v, level_names[i]))
      return i;
  *unknown = v;
  return KILN_LOG_ERROR;
}

const char *kiln__quote(char out[KILN__QUOTE_BYTES], const char *value, size_t len) {
  size_t take = len <= KILN__QUOTE_CHARS ? len : KILN__QUOTE_CHARS;
  if (take < len)
    while (take > 0 && ((unsigned char)value[take] & 0xc0) == 0x80)
      take--; /* whole UTF-8 */
  size_t o = 0;
  out[o++] = '\'';
  for (size_t i = 0; i < take; i++) {
    unsigned char c = (unsigned char)value[i];
    out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  out[o++] = '\'';
  out[o] = '\0';
  if (take < len)
    snprintf(out + o, KILN__QUOTE_BYTES - o, "... (%zu bytes)", len);
  return out;
}

/* Report an unknown KILN_LOG value once per process, at error level (the default, so
 * it reaches stderr or the callback), quoted to its first 64 bytes so the accepted
 * values always fit in the line. Call without log_lock held. */
static void report_unknown_env(const char *v) {
  if (!v || atomic_exchange(&log_env_reported, true))
    return;
  char q[KILN__QUOTE_BYTES];
  kiln__quote(q, v, strlen(v));
  kiln__log(KILN_LOG_ERROR,
            "KILN_LOG=%s is not a log level: it takes off, error, warn, info, debug (any case); "
            "logging at error, the default",
            q);
}

void kiln_set_log_callback(kiln_log_fn fn, kiln_log_level max_level, void *user) {
  const char *unknown;
  int env_level = env_log_level(&unknown);
  pthread_mutex_lock(&log_lock);
  log_fn = fn;
  log_user = user;
  atomic_store(&log_level, fn ? (int)max_level : env_level);
  pthread_mutex_unlock(&log_lock);
  report_unknown_env(unknown); /* through the callback just installed, if any */
}

bool kiln__log_enabled(kiln_log_level level) {
  int cur = atomic_load(&log_level);
  if (cur < 0) {
    const char *unknown;
    cur = env_log_level(&unknown);
    int expected = -1; /* a callback installed meanwhile keeps its level */
    if (!atomic_compare_exchange_strong(&log_level, &expected, cur))
      cur = expected;
    report_unknown_env(unknown);
  }
  return (int)level <= cur && level != KILN_LOG_OFF;
}

void kiln_log_write(kiln_log_level level, const char *fmt, ...) {
  if (level < KILN_LOG_ERROR || level > KILN_LOG_DEBUG || !fmt || !kiln__log_enabled(level))
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  kiln__log(level, "%s", line);
}

void kiln__log(kiln_log_level level, const char *fmt, ...) {
  if (!kiln__log_enabled(level))
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&log_lock);
  if (log_fn)
    log_fn(level, line, log_user);
  else
    fprintf(stderr, "kiln %s: %s\n", level_names[level], line);
  pthread_mutex_unlock(&log_lock);
}
