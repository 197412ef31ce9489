/* SPDX-License-Identifier: MIT */
/* libkiln_mpi's internals: the kiln_mpi object and the chunked transfer engine
 * (xfer.c), shared by the public calls (mpi.c). Everything here uses kiln's public API
 * only (ctest packaging.layering). */
#ifndef KILN_MPI_INTERNAL_H
#define KILN_MPI_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "kiln/mpi.h"

#define KMPI_MAX_DEPTH 16

typedef enum kmpi_kind { KMPI_SEND = 1, KMPI_RECV, KMPI_ALLREDUCE, KMPI_BCAST } kmpi_kind;

typedef struct kmpi_xfer kmpi_xfer;
typedef struct kmpi_cl kmpi_cl; /* ocl_gate.c: the OpenCL entry points of the gates */
typedef struct kmpi_cu kmpi_cu; /* cuda_gate.c: cuLaunchHostFunc and the gates' lock */

/* The gate of an async receive on a backend that runs native kernels (cpu, mock): a
 * kernel queued at the call with the buffer as a read-write argument, so the hazard
 * rules keep the buffer in flight from the call; it copies each chunk from its staging
 * slot into the buffer once the progress thread says the chunk has arrived. */
typedef struct kmpi_gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t arrived; /* chunks in their slots, in order (under lock) */
  bool failed;    /* stop copying: the transfer failed (under lock) */
  kmpi_xfer *x;   /* its slots and sizes (read-only while the kernel runs) */
  kiln_pending tok;
} kmpi_gate;

struct kiln_mpi_s {
  MPI_Comm comm; /* kiln's duplicate, MPI_ERRORS_RETURN */
  int rank, size, local_rank, local_size;
  int thread_level;
  int cuda_aware;
  unsigned flags;
  kiln_device device;
  kiln_context ctx;
  bool owns_ctx;
  kiln_backend_kind backend;
  kiln_stream stream;      /* the staging copies of blocking calls */
  kiln_kernel gate_kernel; /* cpu and mock: the receive gate (kmpi_gate) */
  kmpi_cl *cl;             /* opencl: the receive gates' user events */
  kmpi_cu *cu;             /* cuda: the receive gates' host functions */
  kiln_stream gate_stream; /* the receive gates run here, after an event of the caller's
                              stream, so that they hold the buffer, not the stream */
  size_t chunk;
  unsigned depth;
  char *drain; /* chunk bytes (plain memory): chunks of a failed transfer land here */

  pthread_mutex_t lock; /* the slot cache and the async list */
  void **free_slots;    /* pinned staging blocks of `chunk` bytes, reused */
  size_t free_count, free_cap;
  size_t slots_live; /* taken from kiln_host_alloc and not freed */

  /* the progress thread of async transfers, started by the first one */
  pthread_cond_t cond;
  pthread_t thread;
  bool thread_started, stopping;
  kmpi_xfer *active; /* running async transfers, oldest first */
  kmpi_xfer **tail;
  size_t active_count;
};

typedef struct kmpi_slot {
  int state;
  size_t chunk;
  char *host;
  kiln_pending tok;
  MPI_Request req;
  void *gate;  /* receive gate the chunk's write waits for: a cl_event (opencl), a
                  host function's record (cuda); NULL once opened */
  void *queue; /* opencl: the gate's cl_command_queue */
} kmpi_slot;

struct kmpi_xfer {
  kiln_mpi m;
  kmpi_kind kind;
  const char *api;
  kiln_stream stream;
  kiln_buffer buf;
  size_t off, bytes;
  int peer, tag;   /* SEND/RECV: the other rank; BCAST: root */
  bool is_root;    /* BCAST */
  MPI_Datatype dt; /* ALLREDUCE */
  MPI_Op op;
  size_t elem;
  char *direct;     /* the data's own address for MPI (CPU storage, CUDA pointer), or NULL */
  size_t nchunks;   /* >= 1 (a 0-byte transfer is one empty chunk) */
  unsigned depth;   /* slots: m->depth, or every chunk for an async send */
  kmpi_slot *slots; /* slots_inline, or allocated (async sends of more chunks) */
  kmpi_slot slots_inline[KMPI_MAX_DEPTH];
  size_t started; /* chunks given a slot */
  /* the next chunk whose MPI call may be posted (in order); atomic, as is `done`:
   * a blocking call of another thread reads both (channel_busy_locked) while the
   * progress thread advances the transfer */
  _Atomic size_t net_next;
  size_t finished; /* chunks done */
  kiln_status status;
  char msg[400];
  const char *native_name;
  int native_code;
  _Atomic bool done;
  bool sender_failed, recv_mismatch; /* RECV failures, kept until the drain */
  kmpi_gate *gate;                   /* an async receive's gate, or NULL */
  bool wgate;           /* an async receive whose writes were queued at the call behind gates */
  kiln_promise promise; /* async */
  kmpi_xfer *next;
};

/* Set kiln_last_error() for libkiln_mpi's call `api` and return status. */
kiln_status kmpi__error(kiln_status status, const char *api, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map an MPI return code to a kiln status, writing "MPI_ERR_x: text" into msg. */
kiln_status kmpi__from_mpi(int rc, const char **class_name, int *class_code, char *msg,
                           size_t msg_bytes);

/* The engine (xfer.c). prepare validates nothing: mpi.c did. */
void kmpi__xfer_init(kmpi_xfer *x, kiln_mpi m, kmpi_kind kind, const char *api, kiln_stream stream,
                     kiln_buffer buf, size_t off, size_t bytes);
/* Give an async send one slot per chunk (all its reads are queued at the call).
 * OUT_OF_HOST_MEMORY when the slot array cannot be allocated. */
kiln_status kmpi__xfer_slots_all(kmpi_xfer *x);
/* Advance what can advance without blocking; true when something moved. MPI calls are
 * posted only when may_post (no earlier transfer of the same kind, peer and tag still
 * has chunks to post). */
bool kmpi__xfer_step(kmpi_xfer *x, bool may_post);
/* Run to the end on the calling thread, then release the slots. Returns x->status. */
kiln_status kmpi__xfer_run(kmpi_xfer *x);
/* Whether x still has MPI calls to post (later transfers of its kind, peer and tag
 * must wait). */
bool kmpi__xfer_posting(const kmpi_xfer *x);
/* Give back the staging slots (the transfer is done). */
void kmpi__xfer_release(kmpi_xfer *x);
/* Queue the receive gate of x on its stream (x has a slot per chunk). */
kiln_status kmpi__gate_start(kmpi_xfer *x);
/* The native kernel of the gates, made at init on cpu and mock. */
kiln_status kmpi__gate_kernel_create(kiln_mpi m);
/* OpenCL gates (ocl_gate.c): load the entry points at init (opencl contexts), unload. */
kiln_status kmpi__cl_open(kiln_mpi m);
void kmpi__cl_close(kiln_mpi m);
/* Queue chunk i's marker (waiting for a new user event) and its write on x's stream. */
kiln_status kmpi__cl_gate_chunk(kmpi_xfer *x, size_t i, size_t offset, size_t len);
/* Complete the slot's user event: its write may run. */
void kmpi__cl_gate_open(kmpi_xfer *x, kmpi_slot *s);
/* CUDA gates (cuda_gate.c), the same three. */
kiln_status kmpi__cu_open(kiln_mpi m);
void kmpi__cu_close(kiln_mpi m);
kiln_status kmpi__cu_gate_chunk(kmpi_xfer *x, size_t i, size_t offset, size_t len);
void kmpi__cu_gate_open(kmpi_xfer *x, kmpi_slot *s);
/* Queue every chunk's gated write of an async receive on OpenCL or CUDA (x has a slot
 * per chunk); on failure nothing is left queued. */
kiln_status kmpi__wgate_start(kmpi_xfer *x);
/* Free every cached staging block (finalize). */
void kmpi__slots_free_all(kiln_mpi m);

#endif
