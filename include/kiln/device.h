/* SPDX-License-Identifier: MIT */
/* Backends and devices. Devices live for the process; their index is the position
 * within one backend, across all its platforms, in `kiln info` order. */
#ifndef KILN_DEVICE_H
#define KILN_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_backend_info {
  size_t struct_size;
  kiln_backend_kind kind;
  char name[16];    /* "cpu", "opencl", "cuda", "mock" */
  int available;    /* 1 when it has at least one usable device */
  char reason[256]; /* why it is unavailable; "" when available */
  unsigned device_count;
} kiln_backend_info;
#define KILN_BACKEND_INFO_INIT \
  { sizeof(kiln_backend_info), KILN_BACKEND_NONE, {0}, 0, {0}, 0 }

typedef enum kiln_device_kind {
  KILN_DEVICE_KIND_CPU = 1,
  KILN_DEVICE_KIND_GPU = 2,
  KILN_DEVICE_KIND_ACCELERATOR = 3,
  KILN_DEVICE_KIND_OTHER = 4
} kiln_device_kind;

/* What the core validates against, and what `kiln info` shows. */
typedef struct kiln_device_props {
  size_t struct_size;
  kiln_backend_kind backend;
  unsigned index; /* within the backend */
  kiln_device_kind kind;
  char name[256];
  char vendor[128];
  char pci_bus_id[32]; /* "0000:65:00.0", "" when unknown */
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes; /* largest single buffer */
  unsigned compute_units;
  size_t max_work_group_size;    /* work-items (threads) per group (block) */
  size_t max_work_item_sizes[3]; /* per dimension */
  size_t max_global_size[3];     /* largest global range per dimension */
  uint64_t local_mem_bytes;      /* local (shared) memory per group */
  size_t mem_align_bytes;        /* alignment of buffer storage */
  int is_default;                /* 1 for the device kiln_device_default() picks */
  unsigned generation;           /* bumped by each kiln_device_reset() */
  /* appended */
  char arch[32];           /* CUDA "sm_90"; OpenCL the device's OpenCL version;
                              "" when the backend has none */
  unsigned driver_version; /* CUDA 13000 for 13.0; 0 when not known */
  /* appended; 0 when the backend does not say */
  unsigned clock_mhz;             /* compute clock (CUDA: typical; OpenCL: maximum) */
  unsigned memory_clock_mhz;      /* CUDA: peak memory clock */
  unsigned memory_bus_width_bits; /* CUDA: global memory bus width */
  /* appended: streams (docs/async.md) */
  unsigned copy_engines; /* CUDA: asynchronous copy engines; 0 when not known */
  int priority_max;      /* the most urgent kiln_stream_desc.priority that is applied (0:
                            none above normal is honoured), and */
  int priority_min;      /* the least urgent (0: none below normal) */
} kiln_device_props;
#define KILN_DEVICE_PROPS_INIT                                                                    \
  {                                                                                               \
    sizeof(kiln_device_props), KILN_BACKEND_NONE, 0, KILN_DEVICE_KIND_OTHER, {0}, {0}, {0}, 0, 0, \
        0, 0, {0, 0, 0}, {0, 0, 0}, 0, 0, 0, 0, {0}, 0, 0, 0, 0, 0, 0, 0                          \
  }

/* What a device can do now (kiln_device_get_state). Every refused call says
 * KILN_ERROR_DEVICE_LOST; the state tells what would help:
 * - OK while the call was refused: the handle is of an older generation (made before a
 *   kiln_device_reset): destroy it and make a new one;
 * - LOST: a sticky error; kiln_device_reset() may bring the device back;
 * - UNRECOVERABLE: a kiln_device_reset() failed (the backend's reset or the probe after
 *   it): restart the process. Another reset may be tried, but is unlikely to help. */
typedef enum kiln_device_state {
  KILN_DEVICE_STATE_OK = 0,
  KILN_DEVICE_STATE_LOST = 1,
  KILN_DEVICE_STATE_UNRECOVERABLE = 2
} kiln_device_state;

typedef struct kiln_device_state_info {
  size_t struct_size;
  kiln_device_state state;
  unsigned generation; /* the device's current one: bumped by each kiln_device_reset() */
  char reason[192];    /* LOST: the first sticky error and the call that saw it ("work on
                          a CUDA stream: CUDA_ERROR_ILLEGAL_ADDRESS (700)");
                          UNRECOVERABLE: why the reset failed ("the reset's probe failed:
                          ..."); "" when OK */
} kiln_device_state_info;
#define KILN_DEVICE_STATE_INFO_INIT                            \
  {                                                            \
    sizeof(kiln_device_state_info), KILN_DEVICE_STATE_OK, 0, { \
      0                                                        \
    }                                                          \
  }

KILN_BEGIN_DECLS

/* Number of backends kiln knows (available or not), in a fixed order. */
KILN_API unsigned kiln_backend_count(void);
/* Information on backend number `i` (0 <= i < kiln_backend_count()). Probes the
 * backend on first use (loading its runtime with dlopen). */
KILN_API kiln_status kiln_backend_get_info(unsigned i, kiln_backend_info *info);
/* "cpu" -> KILN_BACKEND_CPU; KILN_BACKEND_NONE when unknown. */
KILN_API kiln_backend_kind kiln_backend_from_name(const char *name);
KILN_API const char *kiln_backend_name(kiln_backend_kind kind);

/* All devices of all available backends, in `kiln info` order. */
KILN_API kiln_status kiln_device_count(unsigned *count);
KILN_API kiln_status kiln_device_get(unsigned i, kiln_device *device);
/* Device `index` of `backend`. */
KILN_API kiln_status kiln_device_find(kiln_backend_kind backend, unsigned index,
                                      kiln_device *device);
/* "cpu", "cpu:0", "opencl:1", "cuda" (index 0 when omitted). */
KILN_API kiln_status kiln_device_parse(const char *spec, kiln_device *device);
/* KILN_DEVICE=<backend>:<index> if set, else the first device of KILN_BACKEND if set,
 * else CUDA device 0, else the OpenCL GPU with the most memory, else the CPU. */
KILN_API kiln_status kiln_device_default(kiln_device *device);
KILN_API kiln_status kiln_device_get_props(kiln_device device, kiln_device_props *props);
/* Recover a device after a loss (a sticky error): open generation + 1, let the
 * backend release what the old generation held (CUDA: reset the primary context —
 * which also frees memory other code allocated in it), then prove the device works
 * with a small write/read probe. Every handle of older generations is refused with
 * KILN_ERROR_DEVICE_LOST from then on (destroying them still succeeds). If the
 * backend's reset or the probe fails, the device is KILN_DEVICE_STATE_UNRECOVERABLE
 * and every refusal says to restart the process. Best effort; one reset of a device
 * at a time (a second call waits for the first); also allowed on a device that is not
 * lost (its existing handles then die the same way). */
KILN_API kiln_status kiln_device_reset(kiln_device device);
/* The device's state, generation and reason (kiln_device_state above), as one
 * consistent snapshot. Allowed in every state (it is how a program finds out); while
 * a kiln_device_reset runs on another thread the answer may be from either side of it. */
KILN_API kiln_status kiln_device_get_state(kiln_device device, kiln_device_state_info *info);
/* Free and total device memory in bytes. */
KILN_API kiln_status kiln_device_mem_info(kiln_device device, uint64_t *free_bytes,
                                          uint64_t *total_bytes);

KILN_END_DECLS
#endif
