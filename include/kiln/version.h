/* SPDX-License-Identifier: MIT */
/* Library version: compile-time macros and the run-time value of the loaded library. */
#ifndef KILN_VERSION_H
#define KILN_VERSION_H

#include "kiln/export.h"

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0
#define KILN_VERSION_STRING "0.1.0"
/* Packed as major * 10000 + minor * 100 + patch. */
#define KILN_VERSION_NUMBER \
  (KILN_VERSION_MAJOR * 10000 + KILN_VERSION_MINOR * 100 + KILN_VERSION_PATCH)

KILN_BEGIN_DECLS

/* The version of the library actually loaded, packed as KILN_VERSION_NUMBER. */
KILN_API unsigned kiln_version(void);
/* "major.minor.patch" of the loaded library; static storage. */
KILN_API const char *kiln_version_string(void);

KILN_END_DECLS
#endif
