/* SPDX-License-Identifier: MIT */
/* Log lines: to stderr at the level of KILN_LOG, or to a callback. */
#ifndef KILN_LOG_H
#define KILN_LOG_H

#include "kiln/export.h"

typedef enum kiln_log_level {
  KILN_LOG_OFF = 0,
  KILN_LOG_ERROR = 1,
  KILN_LOG_WARN = 2,
  KILN_LOG_INFO = 3,
  KILN_LOG_DEBUG = 4
} kiln_log_level;

/* Called from any thread, possibly concurrently; `message` has no trailing newline
 * and is valid only during the call. */
typedef void (*kiln_log_fn)(kiln_log_level level, const char *message, void *user);

KILN_BEGIN_DECLS

/* Send log lines to `fn` instead of stderr (NULL restores stderr). Lines at or below
 * `max_level` are delivered. KILN_LOG=off|error|warn|info|debug (any case) sets the
 * level for stderr; it defaults to error, and an unknown value is reported once at
 * error level. */
KILN_API void kiln_set_log_callback(kiln_log_fn fn, kiln_log_level max_level, void *user);

/* For libraries layered on kiln's public API (kiln's hybrid dispatcher, src/graph, is
 * one): one line through kiln's log, as kiln's own lines go — to the callback, else
 * stderr at KILN_LOG's level; formatted (printf style, cut at 1023 bytes) only when
 * `level` is delivered. Any thread; never allocates. Levels outside ERROR..DEBUG are
 * ignored. */
KILN_API void kiln_log_write(kiln_log_level level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

KILN_END_DECLS
#endif
