/* SPDX-License-Identifier: MIT */
/* The memory budget (include/kiln/budget.h): a planned batch against the memory the
 * context's device can give now (the backend's mem_info: CUDA cuMemGetInfo, cpu
 * MemAvailable minus kiln's live buffers, OpenCL the global size minus kiln's live
 * buffers — an estimate), less a safety margin; the cached bytes of the context's
 * device pools are what trimming would give back. Pure arithmetic on 64-bit sizes,
 * every product and sum checked. */
#include <stdio.h>

#include "core/core.h"
#include "kiln/budget.h"

static bool mul_over(uint64_t a, uint64_t b, uint64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}

static bool add_over(uint64_t a, uint64_t b, uint64_t *out) {
  return __builtin_add_overflow(a, b, out);
}

/* The largest batch whose bytes (fixed + per * n) fit in `usable` and whose every
 * buffer stays within max_alloc. */
static uint64_t max_elements(const kiln_budget_plan *plan, uint64_t fixed, uint64_t per,
                             uint64_t usable, uint64_t max_alloc) {
  if (fixed > usable)
    return 0;
  uint64_t m = per ? (usable - fixed) / per : UINT64_MAX;
  for (size_t i = 0; i < plan->buffer_count; i++) {
    const kiln_budget_buffer *b = &plan->buffers[i];
    if (!b->count)
      continue;
    if (b->fixed_bytes > max_alloc)
      return 0;
    if (b->bytes_per_element && (max_alloc - b->fixed_bytes) / b->bytes_per_element < m)
      m = (max_alloc - b->fixed_bytes) / b->bytes_per_element;
  }
  return m;
}

/* available - ceil(available * margin) */
static uint64_t usable_of(uint64_t available, double margin) {
  double k = (double)available * margin;
  uint64_t keep = (uint64_t)k;
  if ((double)keep < k)
    keep++;
  return keep < available ? available - keep : 0;
}

kiln_status kiln_budget_check(kiln_context context, const kiln_budget_plan *plan,
                              kiln_budget_verdict *verdict) {
  KILN__API_ENTER();
  if (!verdict)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "verdict (the out-parameter) is NULL");
  if (verdict->struct_size < sizeof(kiln_budget_verdict))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "verdict->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_BUDGET_VERDICT_INIT",
                       verdict->struct_size, sizeof(kiln_budget_verdict));
  kiln_budget_verdict v = KILN_BUDGET_VERDICT_INIT;
  *verdict = v;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!plan)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "plan is NULL");
  if (plan->struct_size < sizeof(kiln_budget_plan))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "plan->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_BUDGET_PLAN_INIT",
                       plan->struct_size, sizeof(kiln_budget_plan));
  if (plan->buffer_count && !plan->buffers)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "plan->buffers is NULL with buffer_count %zu",
                       plan->buffer_count);
  double margin = plan->safety_margin < 0 ? KILN_BUDGET_DEFAULT_MARGIN : plan->safety_margin;
  if (!(margin < 1.0)) /* NaN too */
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "plan->safety_margin is %g: give a fraction in [0, 1) (0.1 keeps 10%% of "
                       "the available memory free), or a negative value for the default",
                       plan->safety_margin);
  kiln__context_obj *ctx = context;
  const kiln_device_props *props = &ctx->device->props;
  uint64_t max_alloc = props->max_alloc_bytes;

  /* needed = scratch + sum(count * (fixed + per * elements)), per-element and fixed
   * totals for max_safe_elements; every step checked. */
  uint64_t needed = plan->scratch_bytes, fixed = plan->scratch_bytes, per = 0;
  size_t too_big = SIZE_MAX;
  uint64_t too_big_bytes = 0;
  for (size_t i = 0; i < plan->buffer_count; i++) {
    const kiln_budget_buffer *b = &plan->buffers[i];
    uint64_t scaled, one, all, fixed_all, per_all;
    if (mul_over(b->bytes_per_element, plan->elements, &scaled) ||
        add_over(scaled, b->fixed_bytes, &one) || mul_over(one, b->count, &all) ||
        add_over(needed, all, &needed) || mul_over(b->fixed_bytes, b->count, &fixed_all) ||
        add_over(fixed, fixed_all, &fixed) || mul_over(b->bytes_per_element, b->count, &per_all) ||
        add_over(per, per_all, &per)) {
      kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                  "plan->buffers[%zu] (%llu bytes per element x %llu elements + %llu, x %llu "
                  "buffers) overflows 64 bits with the rest of the plan",
                  i, (unsigned long long)b->bytes_per_element, (unsigned long long)plan->elements,
                  (unsigned long long)b->fixed_bytes, (unsigned long long)b->count);
      kiln__error_suggest("check the plan's sizes: no device has that much memory");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    if (b->count && one > max_alloc && too_big == SIZE_MAX) {
      too_big = i;
      too_big_bytes = one;
    }
  }

  uint64_t free_bytes = 0, total = 0;
  if ((st = ctx->h.ops->mem_info(&ctx->device->view, &free_bytes, &total)) != KILN_SUCCESS)
    return st;
  v.estimate = props->backend == KILN_BACKEND_OPENCL;
  v.needed_bytes = needed;
  v.available_bytes = free_bytes;
  v.total_bytes = total;
  v.safety_margin = margin;
  v.cached_bytes = kiln__pool_context_cached(ctx);
  v.usable_bytes = usable_of(free_bytes, margin);
  v.max_safe_elements = max_elements(plan, fixed, per, v.usable_bytes, max_alloc);
  uint64_t with_cached =
      free_bytes > UINT64_MAX - v.cached_bytes ? UINT64_MAX : free_bytes + v.cached_bytes;
  v.max_safe_elements_after_trim =
      max_elements(plan, fixed, per, usable_of(with_cached, margin), max_alloc);
  v.fits = needed <= v.usable_bytes && too_big == SIZE_MAX;
  *verdict = v;
  if (v.fits)
    return KILN_SUCCESS;
  if (too_big != SIZE_MAX)
    kiln__error(KILN_ERROR_OUT_OF_DEVICE_MEMORY,
                "plan->buffers[%zu] would be %llu bytes, more than %s's largest allocation "
                "(max_alloc_bytes %llu)",
                too_big, (unsigned long long)too_big_bytes, props->name,
                (unsigned long long)max_alloc);
  else
    kiln__error(KILN_ERROR_OUT_OF_DEVICE_MEMORY,
                "the batch of %llu elements needs %llu bytes; %s has %llu bytes available%s, "
                "%llu usable with a %g%% safety margin",
                (unsigned long long)plan->elements, (unsigned long long)needed, props->name,
                (unsigned long long)free_bytes,
                v.estimate ? " (an estimate: the global size minus kiln's live buffers)" : "",
                (unsigned long long)v.usable_bytes, margin * 100.0);
  if (v.cached_bytes)
    kiln__error_suggest("a batch of at most %llu elements fits; trimming kiln's pools "
                        "(kiln_pool_trim) would release %llu cached bytes, and then %llu "
                        "elements fit",
                        (unsigned long long)v.max_safe_elements, (unsigned long long)v.cached_bytes,
                        (unsigned long long)v.max_safe_elements_after_trim);
  else
    kiln__error_suggest("a batch of at most %llu elements fits (max_safe_elements); kiln's "
                        "pools hold no cached bytes to trim",
                        (unsigned long long)v.max_safe_elements);
  return KILN_ERROR_OUT_OF_DEVICE_MEMORY;
}
