/* SPDX-License-Identifier: MIT */
/* Tracing: one Chrome trace-event file (Perfetto, chrome://tracing) of everything kiln
 * does — each operation as a span on its stream's track, the API time of the calling
 * threads, cross-stream dependencies as flow arrows, kiln's own decisions as instant
 * events — and the program's own ranges and marks. `KILN_TRACE=/abs/path.json` in the
 * environment starts a trace at the first kiln_context_create; KILN_TRACE_RING=N keeps
 * only the last N events (per thread) and writes them when an operation fails. The
 * same ranges and marks go to NVTX (Nsight Systems) when kiln was built with the
 * CUDA toolkit's nvtx3 headers (kiln_trace_has_nvtx). docs/observability.md. */
#ifndef KILN_TRACE_H
#define KILN_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

/* Categories of ranges and marks: each has its colour in the trace ("cname") and in
 * NVTX (ARGB). */
typedef enum kiln_trace_category {
  KILN_TRACE_USER = 0, /* grey */
  KILN_TRACE_KERNEL,   /* green */
  KILN_TRACE_MEMORY,   /* blue */
  KILN_TRACE_TRANSFER, /* orange */
  KILN_TRACE_SYNC,     /* red */
  KILN_TRACE_IO,       /* yellow */
  KILN_TRACE_ALGORITHM /* purple */
} kiln_trace_category;
#define KILN_TRACE_CATEGORY_COUNT 7

typedef struct kiln_trace_desc {
  size_t struct_size;
  /* Where kiln_trace_flush and kiln_trace_stop write the trace (any path the program
   * may open; written to a temporary file beside it, then renamed). NULL: kept in
   * memory until kiln_trace_write. */
  const char *path;
  /* 0: keep every event. N > 0: each thread keeps its last N events (a ring), and the
   * trace (the last N events in all) is written whenever an operation fails. */
  uint64_t ring_events;
} kiln_trace_desc;
#define KILN_TRACE_DESC_INIT \
  { sizeof(kiln_trace_desc), NULL, 0 }

KILN_BEGIN_DECLS

/* Start recording (ending any trace in progress, which is written first when it has a
 * path). The path is checked by opening it for writing: KILN_ERROR_IO names it and
 * why, and nothing is recorded. desc NULL: the defaults (in memory, every event). */
KILN_API kiln_status kiln_trace_start(const kiln_trace_desc *desc);
/* Write the trace recorded so far to its path (KILN_ERROR_INVALID_STATE when none is
 * recording or it has no path). Recording goes on. Also done at kiln_context_destroy
 * and at exit. */
KILN_API kiln_status kiln_trace_flush(void);
/* Write the trace recorded so far to `path` (the desc's path is unchanged). */
KILN_API kiln_status kiln_trace_write(const char *path);
/* Write the trace to its path (if any) and stop recording. No trace: a no-op. */
KILN_API kiln_status kiln_trace_stop(void);
/* Whether events are being recorded now. */
KILN_API bool kiln_trace_enabled(void);
/* Suspend and resume recording within a trace (e.g. around a region of interest). */
KILN_API void kiln_trace_pause(void);
KILN_API void kiln_trace_resume(void);
/* Events lost to a failed allocation since the trace started (0 normally). */
KILN_API uint64_t kiln_trace_dropped(void);
/* Whether ranges and marks also go to NVTX (kiln built with the nvtx3 headers). */
KILN_API bool kiln_trace_has_nvtx(void);

/* Name the stream's track in traces ("upload", "compute"; copied, up to 47 bytes):
 * written as "NAME (stream N, context C)". Kept for traces written after the stream
 * is destroyed; naming it again replaces the name. A stream created while a trace
 * records is named by its label (kiln_stream_desc.label, else "stream-N"). */
KILN_API kiln_status kiln_trace_name_stream(kiln_stream stream, const char *name);

/* A range of the calling thread: begin pushes, end pops the innermost. Names longer
 * than 47 bytes are cut in the trace. A range still open when the trace is written is
 * closed there, with a warning naming it. end without an open range:
 * KILN_ERROR_INVALID_STATE. Both work (for NVTX) while no trace records. */
KILN_API kiln_status kiln_trace_range_begin(const char *name, kiln_trace_category category);
KILN_API kiln_status kiln_trace_range_end(void);
/* An instant mark on the calling thread's track. */
KILN_API kiln_status kiln_trace_mark(const char *name, kiln_trace_category category);

/* For KILN_TRACE_SCOPE: open returns a token the scope's cleanup passes to close. */
KILN_API int kiln_trace_scope_open(const char *name, kiln_trace_category category);
KILN_API void kiln_trace_scope_close(int *scope);

KILN_END_DECLS

/* KILN_TRACE_SCOPE("name"): a range from here to the end of the enclosing block (GCC
 * and Clang: the cleanup attribute; C++: a destructor). KILN_TRACE_SCOPE_CAT(name,
 * category) chooses the category. */
#define KILN_TRACE__CAT2(a, b) a##b
#define KILN_TRACE__CAT(a, b) KILN_TRACE__CAT2(a, b)
#if defined(__cplusplus)
namespace kiln_trace_detail {
struct scope {
  int token;
  scope(const char *name, kiln_trace_category category)
      : token(kiln_trace_scope_open(name, category)) {
  }
  ~scope() {
    kiln_trace_scope_close(&token);
  }
  scope(const scope &) = delete;
  scope &operator=(const scope &) = delete;
};
}  // namespace kiln_trace_detail
#define KILN_TRACE_SCOPE_CAT(name, category) \
  kiln_trace_detail::scope KILN_TRACE__CAT(kiln_trace_scope_, __LINE__)((name), (category))
#elif defined(__GNUC__) || defined(__clang__)
#define KILN_TRACE_SCOPE_CAT(name, category)                                    \
  __attribute__((cleanup(kiln_trace_scope_close), unused)) int KILN_TRACE__CAT( \
      kiln_trace_scope_, __LINE__) = kiln_trace_scope_open((name), (category))
#endif
#if defined(KILN_TRACE_SCOPE_CAT)
#define KILN_TRACE_SCOPE(name) KILN_TRACE_SCOPE_CAT((name), KILN_TRACE_USER)
#endif

#endif
