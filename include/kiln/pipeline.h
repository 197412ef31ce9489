/* SPDX-License-Identifier: MIT */
/* The double-buffer pipeline: host input in chunks is uploaded, computed on by the
 * caller's kernel(s) and downloaded, with the upload of chunk i+1, the compute of chunk
 * i and the download of chunk i-1 on three streams at once; kiln rotates the device
 * buffers (depth slots of input and output) and orders everything by the buffer
 * hazard rules. docs/async.md. */
#ifndef KILN_PIPELINE_H
#define KILN_PIPELINE_H

#include <stddef.h>
#include "kiln/export.h"
#include "kiln/status.h"
#include "kiln/stream_pool.h"
#include "kiln/types.h"

/* Queue the compute of one chunk on `stream`: read `in` (in_bytes of it hold chunk
 * `chunk`), write `out` (out_bytes are downloaded). Queue only (_async calls, tokens
 * released): the pipeline orders the rest. A failure stops the pipeline. */
typedef kiln_status (*kiln_pipeline_fn)(kiln_stream stream, kiln_buffer in, kiln_buffer out,
                                        size_t chunk, size_t in_bytes, size_t out_bytes,
                                        void *user);

typedef struct kiln_pipeline_desc {
  size_t struct_size;
  const void *src; /* src_bytes of input (pinned memory overlaps best) */
  size_t src_bytes;
  void *dst; /* dst_bytes of output */
  size_t dst_bytes;
  size_t chunk_bytes;     /* input per chunk (the last may be shorter) */
  size_t out_chunk_bytes; /* output per chunk; 0: chunk_bytes. The chunks of dst must
                             number as many as those of src */
  kiln_pipeline_fn compute;
  void *user;
  unsigned depth;          /* buffer slots; 0: 2 (double buffering) */
  kiln_stream_set streams; /* NULL: a set of 3 made for the call; else its streams
                              get(0) upload, get(1) compute, get(2) download */
} kiln_pipeline_desc;
#define KILN_PIPELINE_DESC_INIT \
  { sizeof(kiln_pipeline_desc), NULL, 0, NULL, 0, 0, 0, NULL, NULL, 0, NULL }

KILN_BEGIN_DECLS

/* Run the whole pipeline and wait for it; the first failure (the compute callback's,
 * or a transfer's), with the chunk named. */
KILN_API kiln_status kiln_pipeline_run(kiln_context context, const kiln_pipeline_desc *desc);

KILN_END_DECLS
#endif
