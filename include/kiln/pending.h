/* SPDX-License-Identifier: MIT */
/* Tokens of asynchronous operations. Every _async call writes one; the only way for
 * its buffers back to Ready is a wait. Each wait is a macro that passes the caller's
 * file and line, so reports (a token waited twice, a token forgotten) name them. */
#ifndef KILN_PENDING_H
#define KILN_PENDING_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

KILN_BEGIN_DECLS

/* Wait for the operation, consume the token (zeroed) and return the operation's
 * status. An empty, stale or already-waited token: KILN_ERROR_INVALID_HANDLE. */
KILN_API KILN_NODISCARD kiln_status kiln_wait_at(kiln_pending *token, const char *file, int line);
/* As kiln_wait, giving up after timeout_ns with KILN_TIMEOUT (token kept). */
KILN_API KILN_NODISCARD kiln_status kiln_wait_timeout_at(kiln_pending *token, uint64_t timeout_ns,
                                                         const char *file, int line);
/* Wait for all `count` tokens and consume them; returns the first failure (in array
 * order), else KILN_SUCCESS. Empty tokens in the array are refused up front. */
KILN_API KILN_NODISCARD kiln_status kiln_wait_all_at(kiln_pending *tokens, size_t count,
                                                     const char *file, int line);
/* KILN_SUCCESS if complete, KILN_NOT_READY if not; the token is kept. */
KILN_API kiln_status kiln_pending_query(const kiln_pending *token);
/* Give the token up: a later stream, event or context wait covers the operation.
 * The token is zeroed. (KILN_NO_TOKEN, include/kiln/types.h, says the same at the
 * _async call; passed to any function here it is KILN_ERROR_INVALID_ARGUMENT.) */
KILN_API kiln_status kiln_pending_release_at(kiln_pending *token, const char *file, int line);

KILN_END_DECLS

#define kiln_wait(token) kiln_wait_at((token), __FILE__, __LINE__)
#define kiln_wait_timeout(token, timeout_ns) \
  kiln_wait_timeout_at((token), (timeout_ns), __FILE__, __LINE__)
#define kiln_wait_all(tokens, count) kiln_wait_all_at((tokens), (count), __FILE__, __LINE__)
#define kiln_pending_release(token) kiln_pending_release_at((token), __FILE__, __LINE__)

#endif
