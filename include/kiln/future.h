/* SPDX-License-Identifier: MIT */
/* Futures: values (like tokens) standing for work that completes later, made from a
 * token or an event and combined with continuations (then), when_all and when_any.
 * Every future is consumed exactly once: by a wait, by kiln_future_drop, or by being
 * passed to then / when_all / when_any. A failure propagates with the first failing
 * operation's detail. Continuations run on the context's callback thread. Host ranges
 * of _async work are released when the future's own operation is observed complete
 * (docs/async.md). */
#ifndef KILN_FUTURE_H
#define KILN_FUTURE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* A value (context slot + future slot + generation); zero = empty. */
typedef struct kiln_future {
  uint64_t id;
} kiln_future;
#define KILN_FUTURE_INIT \
  { 0 }

/* The completing side of a future made by kiln_future_promise: a value (the future's
 * slot and generation); zero = empty. Completed exactly once. */
typedef struct kiln_promise {
  uint64_t id;
} kiln_promise;
#define KILN_PROMISE_INIT \
  { 0 }

/* A continuation: runs on the context's callback thread once its predecessor has
 * completed, with the predecessor's status. When that is KILN_SUCCESS, what fn returns
 * is the new future's status; when it is a failure, the new future fails with it (and
 * its detail) whatever fn returns: fn is called anyway, to release what `user` holds.
 * fn may call kiln; a wait in it for a future that needs the callback thread is
 * refused (KILN_ERROR_INVALID_STATE). */
typedef kiln_status (*kiln_future_fn)(kiln_status status, void *user);

KILN_BEGIN_DECLS

/* A future of the token's operation; consumes the token (left as it was on failure). */
KILN_API kiln_status kiln_future_from_pending_at(kiln_pending *token, kiln_future *future,
                                                 const char *file, int line);
/* A future of the event's current marker (a later record does not move it); an event
 * never recorded gives a future already complete. */
KILN_API kiln_status kiln_future_from_event_at(kiln_event event, kiln_future *future,
                                               const char *file, int line);
/* A future that the program completes itself, for work kiln does not run (a message
 * of a network library, a file read, another runtime's completion): *future behaves
 * as any other (wait, then, when_all, ...) and completes when kiln_promise_complete is
 * called on *promise, from any thread. A promise never completed leaves its future
 * pending: waits on it block (use kiln_future_wait_timeout), and context destroy
 * reports it (KILN_LOG=warn) and frees it. */
KILN_API kiln_status kiln_future_promise_at(kiln_context context, kiln_future *future,
                                            kiln_promise *promise, const char *file, int line);
/* Complete the promise's future with `status` (KILN_SUCCESS or a failure status) and,
 * for a failure, `message` (copied, at most 255 bytes kept; NULL: none), which the
 * future's wait puts in kiln_last_error()'s message. Consumes the promise (zeroed).
 * An empty or already completed promise, or one whose context was destroyed:
 * KILN_ERROR_INVALID_HANDLE; a status that is no kiln_status: INVALID_ARGUMENT. */
KILN_API kiln_status kiln_promise_complete(kiln_promise *promise, kiln_status status,
                                           const char *message);
/* Wait, consume the future (zeroed) and return its status, with the first failing
 * operation's detail in kiln_last_error(). An empty, consumed or stale future, or one
 * whose context was destroyed: KILN_ERROR_INVALID_HANDLE. On the callback thread, for
 * a future that needs that thread (a continuation not yet run): INVALID_STATE. */
KILN_API KILN_NODISCARD kiln_status kiln_future_wait_at(kiln_future *future, const char *file,
                                                        int line);
/* As kiln_future_wait, giving up after timeout_ns with KILN_TIMEOUT (future kept). */
KILN_API KILN_NODISCARD kiln_status kiln_future_wait_timeout_at(kiln_future *future,
                                                                uint64_t timeout_ns,
                                                                const char *file, int line);
/* KILN_SUCCESS when complete, KILN_NOT_READY if not; the future is kept. */
KILN_API kiln_status kiln_future_query(const kiln_future *future);
/* Consume `future`; *next completes after fn(status, user) has run (see kiln_future_fn).
 * next may be future itself (chaining in place). */
KILN_API kiln_status kiln_future_then_at(kiln_future *future, kiln_future_fn fn, void *user,
                                         kiln_future *next, const char *file, int line);
/* Consume futures[0..count) (count >= 1, one context, no future twice); *all completes
 * once every one has, with the first failure in array order, else KILN_SUCCESS. `all`
 * may point into the array. */
KILN_API kiln_status kiln_future_when_all_at(kiln_future *futures, size_t count, kiln_future *all,
                                             const char *file, int line);
/* As when_all, but *any completes with KILN_SUCCESS as soon as one of them succeeds,
 * or with the first failure (in completion order) once all have failed. */
KILN_API kiln_status kiln_future_when_any_at(kiln_future *futures, size_t count, kiln_future *any,
                                             const char *file, int line);
/* Give the future up without waiting: a later stream, event or context wait covers
 * its operations. */
KILN_API kiln_status kiln_future_drop_at(kiln_future *future, const char *file, int line);

KILN_END_DECLS

#define kiln_future_from_pending(token, future) \
  kiln_future_from_pending_at((token), (future), __FILE__, __LINE__)
#define kiln_future_from_event(event, future) \
  kiln_future_from_event_at((event), (future), __FILE__, __LINE__)
#define kiln_future_promise(context, future, promise) \
  kiln_future_promise_at((context), (future), (promise), __FILE__, __LINE__)
#define kiln_future_wait(future) kiln_future_wait_at((future), __FILE__, __LINE__)
#define kiln_future_wait_timeout(future, timeout_ns) \
  kiln_future_wait_timeout_at((future), (timeout_ns), __FILE__, __LINE__)
#define kiln_future_then(future, fn, user, next) \
  kiln_future_then_at((future), (fn), (user), (next), __FILE__, __LINE__)
#define kiln_future_when_all(futures, count, all) \
  kiln_future_when_all_at((futures), (count), (all), __FILE__, __LINE__)
#define kiln_future_when_any(futures, count, any) \
  kiln_future_when_any_at((futures), (count), (any), __FILE__, __LINE__)
#define kiln_future_drop(future) kiln_future_drop_at((future), __FILE__, __LINE__)

#endif
