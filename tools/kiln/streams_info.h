/* SPDX-License-Identifier: MIT */
/* What `kiln info` says about each device's streams (tools/kiln/streams_info.c): the
 * stream priorities it honours, its copy engines and a stream pool's default size. */
#ifndef KILN_CLI_STREAMS_INFO_H
#define KILN_CLI_STREAMS_INFO_H

#include "json.h"
#include "kiln.h"

/* The device's "streams" object of `kiln info --json` (schemas/info.json). */
void kiln_cli_streams_json(kiln__json *j, const kiln_device_props *p);
/* The "Streams" section of the table: one line per device. */
void kiln_cli_streams_table(const kiln_device_props *devices, unsigned count);

#endif
