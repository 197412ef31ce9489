/* SPDX-License-Identifier: MIT */
/* Launch ranges and launch configurations (kernel.c, launch_config.c): the range check
 * every launch and kiln_kernel_get_launch_config share, and the debug log of the
 * configuration kiln chose. */
#ifndef KILN_LAUNCH_H
#define KILN_LAUNCH_H

#include "core/core.h"

/* A range for kernel k on a device with props p, as kiln_launch checks it (NULL, size,
 * dims, each dimension against the device's and the kernel's limits, the total). */
kiln_status kiln__check_range_arg(const kiln__kernel_obj *k, const kiln_range *r,
                                  const kiln_device_props *p);
/* The launch configuration of k over an already checked range (never fails; may make
 * k's remembered-size entry for the range's class, tune.c). */
void kiln__launch_config(kiln__kernel_obj *k, const kiln_range *r, kiln_launch_config *c);
/* KILN_LOG=debug: one line with the configuration, when kiln chooses the local size. */
void kiln__log_launch_config(kiln__kernel_obj *k, const kiln_range *r);

#endif
