/* SPDX-License-Identifier: MIT */
/* The program's own ranges and marks: into the trace (names copied inline, so any
 * string will do) and, when kiln was built with the CUDA toolkit's nvtx3 headers
 * (KILN_HAVE_NVTX, header-only: NVTX finds its injection library at run time, e.g.
 * Nsight Systems'), to NVTX with the category's name and colour. Any thread; a
 * range's depth is counted per thread whether or not a trace records. */
#include <string.h>

#include "trace/buf.h"
#include "trace/trace.h"

#if defined(KILN_HAVE_NVTX)
#include <nvtx3/nvToolsExt.h>
#endif

static _Thread_local uint32_t tl_depth; /* open ranges of this thread */

/* NVTX's colours (ARGB), by kiln_trace_category. */
static const uint32_t argb[KILN_TRACE_CATEGORY_COUNT] = {
    [KILN_TRACE_USER] = 0xff9e9e9eu,     [KILN_TRACE_KERNEL] = 0xff4caf50u,
    [KILN_TRACE_MEMORY] = 0xff2196f3u,   [KILN_TRACE_TRANSFER] = 0xffff9800u,
    [KILN_TRACE_SYNC] = 0xfff44336u,     [KILN_TRACE_IO] = 0xffffeb3bu,
    [KILN_TRACE_ALGORITHM] = 0xff9c27b0u};

#if defined(KILN_HAVE_NVTX)
static void nvtx_attr(nvtxEventAttributes_t *a, const char *name, int category) {
  memset(a, 0, sizeof *a);
  a->version = NVTX_VERSION;
  a->size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a->category = (uint32_t)category + 1u;
  a->colorType = NVTX_COLOR_ARGB;
  a->color = argb[category];
  a->messageType = NVTX_MESSAGE_TYPE_ASCII;
  a->message.ascii = name;
}

static void nvtx_name_categories(void) {
  static const char *const names[KILN_TRACE_CATEGORY_COUNT] = {
      "user", "kernel", "memory", "transfer", "sync", "io", "algorithm"};
  for (int i = 0; i < KILN_TRACE_CATEGORY_COUNT; i++)
    nvtxNameCategoryA((uint32_t)i + 1u, names[i]);
}
static pthread_once_t nvtx_once = PTHREAD_ONCE_INIT;
#endif

void kiln__trace_nvtx_push(const char *name, int category) {
#if defined(KILN_HAVE_NVTX)
  pthread_once(&nvtx_once, nvtx_name_categories);
  nvtxEventAttributes_t a;
  nvtx_attr(&a, name, category);
  nvtxRangePushEx(&a);
#else
  (void)name;
  (void)category;
  (void)argb;
#endif
}

void kiln__trace_nvtx_pop(void) {
#if defined(KILN_HAVE_NVTX)
  nvtxRangePop();
#endif
}

void kiln__trace_nvtx_mark(const char *name, int category) {
#if defined(KILN_HAVE_NVTX)
  pthread_once(&nvtx_once, nvtx_name_categories);
  nvtxEventAttributes_t a;
  nvtx_attr(&a, name, category);
  nvtxMarkEx(&a);
#else
  (void)name;
  (void)category;
#endif
}

bool kiln_trace_has_nvtx(void) {
#if defined(KILN_HAVE_NVTX)
  return true;
#else
  return false;
#endif
}

static kiln_status check(const char *name, kiln_trace_category category) {
  if (!name)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "name is NULL");
  if ((unsigned)category >= KILN_TRACE_CATEGORY_COUNT)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "category %d is not a kiln_trace_category (0 to %d)", (int)category,
                       KILN_TRACE_CATEGORY_COUNT - 1);
  return KILN_SUCCESS;
}

static void user_event(unsigned type, const char *name, kiln_trace_category category) {
  uint64_t w[KILN__EV_WORDS - 1] = {KILN__EV_HDR(type, (unsigned)category, 0, 0),
                                    kiln__trace_clock()};
  if (name)
    kiln__trace_pack_name(&w[2], name);
  kiln__trace_emit(w);
}

kiln_status kiln_trace_range_begin(const char *name, kiln_trace_category category) {
  KILN__API_ENTER();
  kiln_status st = check(name, category);
  if (st != KILN_SUCCESS)
    return st;
  tl_depth++;
  kiln__trace_nvtx_push(name, (int)category);
  if (KILN__TRACE_ON())
    user_event(KILN__EV_RANGE_BEGIN, name, category);
  return KILN_SUCCESS;
}

kiln_status kiln_trace_range_end(void) {
  KILN__API_ENTER();
  if (!tl_depth)
    return kiln__error(KILN_ERROR_INVALID_STATE,
                       "kiln_trace_range_end: no range is open on this thread");
  tl_depth--;
  kiln__trace_nvtx_pop();
  if (KILN__TRACE_ON())
    user_event(KILN__EV_RANGE_END, NULL, KILN_TRACE_USER);
  return KILN_SUCCESS;
}

kiln_status kiln_trace_mark(const char *name, kiln_trace_category category) {
  KILN__API_ENTER();
  kiln_status st = check(name, category);
  if (st != KILN_SUCCESS)
    return st;
  kiln__trace_nvtx_mark(name, (int)category);
  if (KILN__TRACE_ON())
    user_event(KILN__EV_MARK, name, category);
  return KILN_SUCCESS;
}

int kiln_trace_scope_open(const char *name, kiln_trace_category category) {
  return kiln_trace_range_begin(name, category) == KILN_SUCCESS;
}

void kiln_trace_scope_close(int *scope) {
  if (scope && *scope) {
    *scope = 0;
    kiln_trace_range_end();
  }
}
