/* SPDX-License-Identifier: MIT */
/* Feature levels of the kiln dialect (docs/kernels.md "Feature levels"): the base level
 * (OpenCL C 1.2 semantics) and the optional ones a program declares in its source with
 * `KILN_FEATURE_LEVEL(name);` at file scope. kiln reads the declaration, and every use
 * of a level's names, before any compiler sees the source, so a program that uses
 * scoped atomics without declaring them is refused on every backend alike, and one that
 * declares them is refused where the device lacks them (the level_check op). Pure text
 * work, no allocation, any thread. */
#ifndef KILN_LEVELS_H
#define KILN_LEVELS_H

#include <stddef.h>

#include "core/backend.h" /* kiln__level */
#include "kiln/status.h"

/* The name a program declares a level by ("scoped_atomics"; "base" for the base). */
const char *kiln__level_name(kiln__level level);

/* The level source[0..len) declares (KILN__LEVEL_BASE when none) into *level.
 * Comments and string and character literals are skipped; everything else is read,
 * preprocessor lines too. KILN_ERROR_PARSE ("line L, column C: ...") for
 * KILN_FEATURE_LEVEL with an unknown name or without `(name)`, and for a name of a
 * level the source does not declare (kiln_fence, kiln_atomic_*_explicit, KILN_ORDER_*,
 * KILN_SCOPE_*), naming the level and the declaration to add. */
kiln_status kiln__dialect_level(const char *source, size_t len, kiln__level *level);

#endif
