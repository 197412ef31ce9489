/* SPDX-License-Identifier: MIT */
/* Device buffers. A buffer is Ready or InFlight: blocking calls return with it Ready;
 * _async calls return with the work pending and write a token. Host memory handed to
 * an _async read or write must not be touched until that token (or a stream, event
 * or context wait covering it) has been waited. Work on a buffer from different
 * streams is ordered automatically by its last writer and readers. */
#ifndef KILN_BUFFER_H
#define KILN_BUFFER_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/types.h"

typedef struct kiln_buffer_desc {
  size_t struct_size;
  size_t bytes;      /* required, > 0 and <= the device's max_alloc_bytes */
  unsigned flags;    /* reserved, 0 */
  const char *label; /* optional, for messages and traces; copied */
} kiln_buffer_desc;
#define KILN_BUFFER_DESC_INIT \
  { sizeof(kiln_buffer_desc), 0, 0, NULL }

KILN_BEGIN_DECLS

KILN_API kiln_status kiln_buffer_create(kiln_context context, const kiln_buffer_desc *desc,
                                        kiln_buffer *buffer);
/* Waits for the buffer's pending work first. NULL is a no-op. */
KILN_API kiln_status kiln_buffer_destroy(kiln_buffer buffer);
KILN_API kiln_status kiln_buffer_get_size(kiln_buffer buffer, size_t *bytes);
/* The context the buffer belongs to (as OpenCL's CL_MEM_CONTEXT), for layers that must
 * check it (libkiln_mpi). A destroyed buffer: INVALID_HANDLE. */
KILN_API kiln_status kiln_buffer_get_context(kiln_buffer buffer, kiln_context *context);

/* Blocking transfers: return when done, the buffer Ready. */
KILN_API kiln_status kiln_buffer_write(kiln_buffer dst, size_t offset, size_t bytes,
                                       const void *src);
KILN_API kiln_status kiln_buffer_read(kiln_buffer src, size_t offset, size_t bytes, void *dst);
KILN_API kiln_status kiln_buffer_copy(kiln_buffer dst, size_t dst_offset, kiln_buffer src,
                                      size_t src_offset, size_t bytes);
/* Repeat the pattern (1, 2, 4, 8, 16, 32, 64 or 128 bytes) over [offset, offset+bytes);
 * offset and bytes must be multiples of pattern_bytes. */
KILN_API kiln_status kiln_buffer_fill(kiln_buffer dst, size_t offset, size_t bytes,
                                      const void *pattern, size_t pattern_bytes);

/* Asynchronous forms: queued on `stream`, token written to *token (empty on failure). */
KILN_API KILN_NODISCARD kiln_status kiln_buffer_write_async_at(kiln_stream stream, kiln_buffer dst,
                                                               size_t offset, size_t bytes,
                                                               const void *src, kiln_pending *token,
                                                               const char *file, int line);
KILN_API KILN_NODISCARD kiln_status kiln_buffer_read_async_at(kiln_stream stream, kiln_buffer src,
                                                              size_t offset, size_t bytes,
                                                              void *dst, kiln_pending *token,
                                                              const char *file, int line);
KILN_API KILN_NODISCARD kiln_status kiln_buffer_copy_async_at(kiln_stream stream, kiln_buffer dst,
                                                              size_t dst_offset, kiln_buffer src,
                                                              size_t src_offset, size_t bytes,
                                                              kiln_pending *token, const char *file,
                                                              int line);
KILN_API KILN_NODISCARD kiln_status kiln_buffer_fill_async_at(
    kiln_stream stream, kiln_buffer dst, size_t offset, size_t bytes, const void *pattern,
    size_t pattern_bytes, kiln_pending *token, const char *file, int line);

KILN_END_DECLS

#define kiln_buffer_write_async(stream, dst, offset, bytes, src, token) \
  kiln_buffer_write_async_at((stream), (dst), (offset), (bytes), (src), (token), __FILE__, __LINE__)
#define kiln_buffer_read_async(stream, src, offset, bytes, dst, token) \
  kiln_buffer_read_async_at((stream), (src), (offset), (bytes), (dst), (token), __FILE__, __LINE__)
#define kiln_buffer_copy_async(stream, dst, dst_offset, src, src_offset, bytes, token)            \
  kiln_buffer_copy_async_at((stream), (dst), (dst_offset), (src), (src_offset), (bytes), (token), \
                            __FILE__, __LINE__)
#define kiln_buffer_fill_async(stream, dst, offset, bytes, pattern, pattern_bytes, token)   \
  kiln_buffer_fill_async_at((stream), (dst), (offset), (bytes), (pattern), (pattern_bytes), \
                            (token), __FILE__, __LINE__)

#endif
