/* SPDX-License-Identifier: MIT */
/* kiln_kernel_get_launch_config: the work-group size a launch runs with and why, asked
 * of the kernel's backend (launch_config op) after the same range checks a launch makes;
 * and the debug log line of the launches that leave the size to kiln. Thread-safe. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/launch.h"
#include "core/tune.h"

void kiln__launch_config(kiln__kernel_obj *k, const kiln_range *r, kiln_launch_config *c) {
  bool given = false;
  for (unsigned d = 0; d < r->dims; d++)
    given = given || r->local[d];
  c->chosen = !given;
  c->why[0] = '\0';
  c->origin = given ? KILN_LAUNCH_ORIGIN_CALLER : KILN_LAUNCH_ORIGIN_HEURISTIC;
  if (!given && kiln__tune_describe(k, r, c->local, &c->origin, c->why, sizeof c->why)) {
    /* remembered, stored or autotuned (tune.c) */
  } else if (k->h.ops->launch_config) {
    k->h.ops->launch_config(&k->view, r, c->local, c->why, sizeof c->why);
  } else {
    for (unsigned d = 0; d < 3; d++)
      c->local[d] = d < r->dims && r->local[d] ? r->local[d] : 1;
    snprintf(c->why, sizeof c->why, "%s",
             given ? "the caller's local size"
                   : "the backend makes no choice: one work-item per group");
  }
  for (unsigned d = 0; d < 3; d++) {
    size_t g = d < r->dims ? r->global[d] : 1;
    size_t l = c->local[d] ? c->local[d] : 1;
    c->groups[d] = g / l + (g % l != 0);
  }
}

void kiln__log_launch_config(kiln__kernel_obj *k, const kiln_range *r) {
  for (unsigned d = 0; d < r->dims; d++)
    if (r->local[d])
      return;
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln__launch_config(k, r, &c);
  static const char *const origin[] = {
      [KILN_LAUNCH_ORIGIN_CALLER] = "the caller's", [KILN_LAUNCH_ORIGIN_HEURISTIC] = "heuristic",
      [KILN_LAUNCH_ORIGIN_STORED] = "stored",       [KILN_LAUNCH_ORIGIN_AUTOTUNED] = "autotuned",
      [KILN_LAUNCH_ORIGIN_TUNING] = "autotuning",
  };
  kiln__log(KILN_LOG_DEBUG,
            "kernel '%s' on %s: local size %zux%zux%zu (%s), %zux%zux%zu groups for a %u-D "
            "range of %zux%zux%zu: %s",
            k->name, k->h.ops->name, c.local[0], c.local[1], c.local[2], origin[c.origin],
            c.groups[0], c.groups[1], c.groups[2], r->dims, r->global[0],
            r->dims > 1 ? r->global[1] : (size_t)1, r->dims > 2 ? r->global[2] : (size_t)1, c.why);
}

kiln_status kiln_kernel_get_launch_config(kiln_kernel kernel, const kiln_range *range,
                                          kiln_launch_config *config) {
  KILN__API_ENTER();
  if (!config)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "config (the out-parameter) is NULL");
  /* callers built before `origin` was appended pass the smaller size */
  size_t size = config->struct_size;
  if (size < offsetof(kiln_launch_config, origin))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "config->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_LAUNCH_CONFIG_INIT",
                       config->struct_size, offsetof(kiln_launch_config, origin));
  kiln_status st = kiln__check_handle(kernel, KILN__TAG_KERNEL, "kernel");
  if (st != KILN_SUCCESS)
    return st;
  if ((st = kiln__check_range_arg(kernel, range, &kernel->h.ctx->device->props)) != KILN_SUCCESS)
    return st;
  const kiln__backend_ops *ops = kernel->h.ops;
  if (ops->launch_check && (st = ops->launch_check(&kernel->view, range)) != KILN_SUCCESS)
    return st;
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln__launch_config(kernel, range, &c);
  memcpy((unsigned char *)config + sizeof size, (unsigned char *)&c + sizeof size,
         (size < sizeof c ? size : sizeof c) - sizeof size);
  return KILN_SUCCESS;
}
