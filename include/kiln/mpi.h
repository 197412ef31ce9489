/* SPDX-License-Identifier: MIT */
/* Scale-out over MPI (libkiln_mpi, docs/mpi.md): one device per rank chosen by the
 * node-local rank, and point-to-point transfers, allreduce and broadcast of kiln
 * buffers. Device data is staged through the context's pinned host pool in chunks,
 * the copy of chunk i+1 overlapping the network transfer of chunk i; CPU-backend
 * buffers go to MPI straight from their storage (blocking calls), and CUDA buffers do
 * so when the MPI library is CUDA-aware.
 *
 * This header needs <mpi.h>, so include/kiln.h does not include it: include it
 * yourself and link libkiln_mpi (CMake: kiln::kiln_mpi; pkg-config: kiln-mpi) and your
 * MPI. libkiln itself never links MPI. */
#ifndef KILN_MPI_H
#define KILN_MPI_H

#include <mpi.h>
#include <stddef.h>
#include "kiln.h"

typedef struct kiln_mpi_s *kiln_mpi;

/* kiln_mpi_desc.flags */
enum {
  /* Always stage through pinned host memory, even where a direct path exists (CPU
   * storage, CUDA-aware MPI). */
  KILN_MPI_STAGE_ALWAYS = 1u << 0
};

typedef struct kiln_mpi_desc {
  size_t struct_size;
  kiln_context context;      /* use this context (the caller keeps it, and destroys it after
                                kiln_mpi_finalize); NULL: kiln_mpi_init picks a device and
                                makes a context of its own */
  kiln_backend_kind backend; /* context NULL: the backend whose devices are dealt out to
                                the ranks of a node (node-local rank modulo its device
                                count); KILN_BACKEND_NONE: the default device's backend */
  size_t chunk_bytes;        /* staging chunk; 0: 1 MiB. From 4 KiB to 256 MiB, and the same on
                                every rank (kiln_mpi_init checks) */
  unsigned depth;            /* chunks in flight per transfer, 2..16; 0: 3 */
  unsigned flags;            /* KILN_MPI_* */
} kiln_mpi_desc;
#define KILN_MPI_DESC_INIT \
  { sizeof(kiln_mpi_desc), NULL, KILN_BACKEND_NONE, 0, 0, 0 }

typedef struct kiln_mpi_info {
  size_t struct_size;
  int rank, size;             /* in the communicator given to kiln_mpi_init */
  int local_rank, local_size; /* among the ranks of this node (MPI_COMM_TYPE_SHARED) */
  kiln_device device;
  kiln_context context;
  int owns_context; /* 1 when kiln_mpi_init made it (kiln_mpi_finalize destroys it) */
  int cuda_aware;   /* 1 when the MPI library said it is CUDA-aware at run time */
  int thread_level; /* MPI_Query_thread at init: async calls need MPI_THREAD_MULTIPLE */
  size_t chunk_bytes;
  unsigned depth;
} kiln_mpi_info;
#define KILN_MPI_INFO_INIT \
  { sizeof(kiln_mpi_info), 0, 0, 0, 0, NULL, NULL, 0, 0, 0, 0, 0 }

/* Element types and operations of kiln_mpi_allreduce. */
typedef enum kiln_mpi_type {
  KILN_MPI_FLOAT = 1,
  KILN_MPI_DOUBLE = 2,
  KILN_MPI_INT32 = 3,
  KILN_MPI_INT64 = 4
} kiln_mpi_type;
typedef enum kiln_mpi_op { KILN_MPI_SUM = 1, KILN_MPI_MIN = 2, KILN_MPI_MAX = 3 } kiln_mpi_op;

KILN_BEGIN_DECLS

/* Collective over `comm` (MPI must be initialised; kiln duplicates comm, so its
 * messages never match the program's). desc may be NULL (defaults). Errors name the
 * rank: INVALID_ARGUMENT for a bad desc or chunk sizes that differ between ranks,
 * DEVICE_NOT_FOUND when the backend has no device, BACKEND for an MPI failure (with
 * MPI_Error_string's text). */
KILN_API kiln_status kiln_mpi_init(MPI_Comm comm, const kiln_mpi_desc *desc, kiln_mpi *mpi);
/* Collective: waits for the asynchronous transfers still running (their futures
 * complete as usual), frees the staging memory and the duplicated communicator, and
 * destroys the context if kiln made it (a context of the caller's is left to it).
 * Call it before MPI_Finalize. NULL: no-op. */
KILN_API kiln_status kiln_mpi_finalize(kiln_mpi mpi);
KILN_API kiln_status kiln_mpi_get_info(kiln_mpi mpi, kiln_mpi_info *info);

/* Blocking point-to-point transfer of [offset, offset + bytes) of a buffer of the
 * kiln_mpi's context, ordered after the buffer's queued work (the send reads it after
 * its last write; the receive writes it after every queued use). The receive must
 * name the sender's rank and tag (no MPI_ANY_SOURCE / MPI_ANY_TAG) and the same byte
 * count: a shorter or longer message is reported (INVALID_ARGUMENT, both sizes
 * named). bytes may be 0 (an empty message is still sent and matched). */
KILN_API kiln_status kiln_mpi_send(kiln_mpi mpi, kiln_buffer buffer, size_t offset, size_t bytes,
                                   int dest, int tag);
KILN_API kiln_status kiln_mpi_recv(kiln_mpi mpi, kiln_buffer buffer, size_t offset, size_t bytes,
                                   int source, int tag);

/* Asynchronous forms: return at once with *future standing for the whole transfer
 * (include/kiln/future.h: wait, then, when_all...). The staging copies are queued on
 * `stream` (a stream of the context), in its order and after the buffer's queued
 * writes (send) or uses (receive) by the hazard rules; a progress thread of the
 * kiln_mpi drives MPI. The send has read everything once its staging copies are done,
 * so the buffer may be reused then (each chunk's copy keeps it in flight until then).
 * The receive queues a gate at the call: the buffer is in flight from the call, and
 * work queued on it afterwards waits for the data; the gate runs on an internal
 * stream after the work queued on `stream` so far, so it does not hold `stream`
 * itself (docs/mpi.md). Needs MPI_THREAD_MULTIPLE
 * (UNSUPPORTED otherwise). */
KILN_API KILN_NODISCARD kiln_status kiln_mpi_send_async_at(kiln_mpi mpi, kiln_stream stream,
                                                           kiln_buffer buffer, size_t offset,
                                                           size_t bytes, int dest, int tag,
                                                           kiln_future *future, const char *file,
                                                           int line);
KILN_API KILN_NODISCARD kiln_status kiln_mpi_recv_async_at(kiln_mpi mpi, kiln_stream stream,
                                                           kiln_buffer buffer, size_t offset,
                                                           size_t bytes, int source, int tag,
                                                           kiln_future *future, const char *file,
                                                           int line);

/* Collective, in place: count elements of `type` at `offset` of the buffer become the
 * element-wise sum / min / max over all ranks. Every rank passes the same count, type
 * and op (a mismatch is found by the chunks' sizes where MPI can see it). */
KILN_API kiln_status kiln_mpi_allreduce(kiln_mpi mpi, kiln_buffer buffer, size_t offset,
                                        size_t count, kiln_mpi_type type, kiln_mpi_op op);
/* Collective: [offset, offset + bytes) of root's buffer is copied into every rank's. */
KILN_API kiln_status kiln_mpi_bcast(kiln_mpi mpi, kiln_buffer buffer, size_t offset, size_t bytes,
                                    int root);

KILN_END_DECLS

#define kiln_mpi_send_async(mpi, stream, buffer, offset, bytes, dest, tag, future)              \
  kiln_mpi_send_async_at((mpi), (stream), (buffer), (offset), (bytes), (dest), (tag), (future), \
                         __FILE__, __LINE__)
#define kiln_mpi_recv_async(mpi, stream, buffer, offset, bytes, source, tag, future)              \
  kiln_mpi_recv_async_at((mpi), (stream), (buffer), (offset), (bytes), (source), (tag), (future), \
                         __FILE__, __LINE__)

#endif
