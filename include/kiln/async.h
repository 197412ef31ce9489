/* SPDX-License-Identifier: MIT */
/* Device completions in any program's own event loop: completion callbacks on events
 * and tokens (streams have kiln_stream_add_callback), and pollable descriptors of
 * events and streams that epoll, poll, libuv or asyncio can wait on without a thread
 * per wait. docs/async.md says when host ranges are released. */
#ifndef KILN_ASYNC_H
#define KILN_ASYNC_H

#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/stream.h"
#include "kiln/types.h"

KILN_BEGIN_DECLS

/* Call fn(status, user) on the context's callback thread once the event's current
 * marker (its last record) has completed; status is the first failure before it on
 * its stream since the previous event, else KILN_SUCCESS. A later record does not
 * move it. An event never recorded is complete: fn runs soon. Just before fn runs,
 * the host ranges of _async work up to the marker on its stream are released (as by
 * kiln_event_synchronize). fn may call kiln. */
KILN_API kiln_status kiln_event_add_callback(kiln_event event, kiln_callback_fn fn, void *user);

/* Consume the token: fn(status, user) runs on the context's callback thread once its
 * operation has completed, with the operation's status; the callback is the token's
 * wait (the operation's host range is released just before fn runs, and its failure
 * counts as reported). On failure the token is left as it was. */
KILN_API kiln_status kiln_pending_add_callback_at(kiln_pending *token, kiln_callback_fn fn,
                                                  void *user, const char *file, int line);
#define kiln_pending_add_callback(token, fn, user) \
  kiln_pending_add_callback_at((token), (fn), (user), __FILE__, __LINE__)

/* A descriptor that is readable (poll's POLLIN, epoll's EPOLLIN) while the event is
 * complete: from its marker's completion until the event is recorded again (never
 * recorded: readable). Level-triggered: reading it is not needed and changes nothing
 * kiln relies on (do not read it; kiln keeps its state). Made on the first call (an
 * eventfd, EFD_NONBLOCK | EFD_CLOEXEC), the same one after, closed by
 * kiln_event_destroy: do not close it yourself. */
KILN_API kiln_status kiln_event_fd(kiln_event event, int *fd);

/* The same for a stream: readable while the stream is idle (every operation submitted
 * so far has completed), not readable from the submission of new work until it
 * completes. Closed by kiln_stream_destroy. Readability says completion only: the
 * host ranges of _async work stay guarded until a wait (kiln_stream_synchronize is
 * immediate then). */
KILN_API kiln_status kiln_stream_fd(kiln_stream stream, int *fd);

KILN_END_DECLS
#endif
