/* SPDX-License-Identifier: MIT */
/* kiln: one C API over CPU, OpenCL and CUDA. Include this header. */
#ifndef KILN_H
#define KILN_H

#include "kiln/export.h"
#include "kiln/version.h"
#include "kiln/status.h"
#include "kiln/types.h"
#include "kiln/alloc.h"
#include "kiln/log.h"
#include "kiln/device.h"
#include "kiln/context.h"
#include "kiln/stream.h"
#include "kiln/stream_pool.h"
#include "kiln/pipeline.h"
#include "kiln/event.h"
#include "kiln/pending.h"
#include "kiln/async.h"
#include "kiln/future.h"
#include "kiln/buffer.h"
#include "kiln/pool.h"
#include "kiln/host.h"
#include "kiln/budget.h"
#include "kiln/managed.h"
#include "kiln/kernel.h"
#include "kiln/program.h"
#include "kiln/native.h"
#include "kiln/mock.h"
#include "kiln/cache.h"
#include "kiln/trace.h"
#include "kiln/graph.h"
#include "kiln/ring.h"
#include "kiln/hybrid.h"

#endif
