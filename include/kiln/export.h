/* SPDX-License-Identifier: MIT */
/* Export and attribute macros shared by every public header. */
#ifndef KILN_EXPORT_H
#define KILN_EXPORT_H

#if defined(KILN_STATIC_DEFINE)
#define KILN_API
#elif defined(_WIN32)
#if defined(KILN_BUILDING)
#define KILN_API __declspec(dllexport)
#else
#define KILN_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* Calls whose status must not be ignored (every _async call, every wait). */
#if defined(__GNUC__)
#define KILN_NODISCARD __attribute__((warn_unused_result))
#else
#define KILN_NODISCARD
#endif

#ifdef __cplusplus
#define KILN_BEGIN_DECLS extern "C" {
#define KILN_END_DECLS }
#else
#define KILN_BEGIN_DECLS
#define KILN_END_DECLS
#endif

#endif
