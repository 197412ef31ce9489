/* SPDX-License-Identifier: MIT */
/* What the mock backend's files share: the backend-call counter (fault injection)
 * and the fake compiler's ops (mock_program.c). */
#ifndef KILN_MOCK_INTERNAL_H
#define KILN_MOCK_INTERNAL_H

#include "core/backend.h"

/* Count one backend call; returns the status it must fail with (SUCCESS: none), with
 * the error detail set. */
kiln_status kiln__mock_count_call(const char *what);

kiln_status kiln__mock_program_build(kiln__program *p, const char *src, size_t bytes,
                                     const char *options);
void kiln__mock_program_destroy(kiln__program *p);
kiln_status kiln__mock_kernel_create(kiln__kernel *k, kiln__program *p);
void kiln__mock_kernel_destroy(kiln__kernel *k);
kiln_status kiln__mock_program_cache_id(kiln__program *p, const char *options, char *out,
                                        size_t out_bytes);
kiln_status kiln__mock_program_export(kiln__program *p, void **binary, size_t *bytes);
kiln_status kiln__mock_program_import(kiln__program *p, const void *binary, size_t bytes,
                                      const char *options);
kiln_status kiln__mock_program_share(kiln__program *p, kiln__program *from);

#endif
