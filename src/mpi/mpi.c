/* SPDX-License-Identifier: MIT */
/* libkiln_mpi's public calls (include/kiln/mpi.h, docs/mpi.md): kiln_mpi_init (device
 * per node-local rank, a duplicated communicator with MPI_ERRORS_RETURN, checks that
 * every rank agrees), argument validation with messages naming the rank, the
 * progress thread of asynchronous transfers (their futures are promises completed
 * there), and MPI error mapping. Layered on kiln's public API only; the transfers
 * themselves are xfer.c's. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpi/mpi_internal.h"

#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h>
#endif

#define DEFAULT_CHUNK ((size_t)1 << 20)
#define MIN_CHUNK ((size_t)4096)
#define MAX_CHUNK ((size_t)256 << 20)
#define DEFAULT_DEPTH 3u
/* Blocking transfers at least this large skip the staging copy where a direct path
 * exists (below it, the ordering probe would cost more than the copy saves). */
#define DIRECT_MIN_BYTES ((size_t)64 << 10)

kiln_status kmpi__error(kiln_status status, const char *api, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kiln_error_report_native(status, api, 0, NULL, NULL, "%s", msg);
}

/* MPI-3's error classes by name (MPI_Error_string gives the text). */
#define KMPI_CLASS(name) \
  { name, #name }
static const struct {
  int cls;
  const char *name;
} mpi_classes[] = {
    KMPI_CLASS(MPI_ERR_BUFFER),  KMPI_CLASS(MPI_ERR_COUNT),    KMPI_CLASS(MPI_ERR_TYPE),
    KMPI_CLASS(MPI_ERR_TAG),     KMPI_CLASS(MPI_ERR_COMM),     KMPI_CLASS(MPI_ERR_RANK),
    KMPI_CLASS(MPI_ERR_REQUEST), KMPI_CLASS(MPI_ERR_ROOT),     KMPI_CLASS(MPI_ERR_GROUP),
    KMPI_CLASS(MPI_ERR_OP),      KMPI_CLASS(MPI_ERR_TOPOLOGY), KMPI_CLASS(MPI_ERR_DIMS),
    KMPI_CLASS(MPI_ERR_ARG),     KMPI_CLASS(MPI_ERR_UNKNOWN),  KMPI_CLASS(MPI_ERR_TRUNCATE),
    KMPI_CLASS(MPI_ERR_OTHER),   KMPI_CLASS(MPI_ERR_INTERN),   KMPI_CLASS(MPI_ERR_IN_STATUS),
    KMPI_CLASS(MPI_ERR_PENDING), KMPI_CLASS(MPI_ERR_NO_MEM),
};
#undef KMPI_CLASS

static const char *class_name(int cls) {
  for (size_t i = 0; i < sizeof mpi_classes / sizeof mpi_classes[0]; i++)
    if (mpi_classes[i].cls == cls)
      return mpi_classes[i].name;
  return "MPI_ERR_UNKNOWN";
}

kiln_status kmpi__from_mpi(int rc, const char **name, int *code, char *msg, size_t msg_bytes) {
  int cls = rc;
  if (MPI_Error_class(rc, &cls) != MPI_SUCCESS)
    cls = MPI_ERR_UNKNOWN;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    snprintf(text, sizeof text, "MPI error %d", rc);
  *name = class_name(cls);
  *code = cls;
  snprintf(msg, msg_bytes, "%s: %s", *name, text);
  switch (cls) {
  case MPI_ERR_TRUNCATE:
  case MPI_ERR_COUNT:
  case MPI_ERR_TAG:
  case MPI_ERR_RANK:
  case MPI_ERR_ROOT:
  case MPI_ERR_ARG:
  case MPI_ERR_BUFFER:
    return KILN_ERROR_INVALID_ARGUMENT;
  case MPI_ERR_NO_MEM:
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  default:
    return KILN_ERROR_BACKEND;
  }
}

static kiln_status mpi_error(int rc, const char *api, int rank, const char *call) {
  const char *name = NULL;
  int code = 0;
  char text[400];
  kiln_status st = kmpi__from_mpi(rc, &name, &code, text, sizeof text);
  return kiln_error_report_native(st, api, code, name, NULL, "rank %d: %s failed: %s", rank, call,
                                  text);
}

/* ---------------------------------------------------------------- init */
static kiln_status pick_device(kiln_mpi m, kiln_backend_kind backend, const char *api) {
  if (backend == KILN_BACKEND_NONE) {
    kiln_device d = NULL;
    kiln_status st = kiln_device_default(&d);
    if (st != KILN_SUCCESS)
      return st;
    kiln_device_props p = KILN_DEVICE_PROPS_INIT;
    st = kiln_device_get_props(d, &p);
    if (st != KILN_SUCCESS)
      return st;
    backend = p.backend;
  }
  unsigned count = 0;
  kiln_backend_info info = KILN_BACKEND_INFO_INIT;
  for (unsigned i = 0; i < kiln_backend_count(); i++) {
    kiln_backend_info bi = KILN_BACKEND_INFO_INIT;
    if (kiln_backend_get_info(i, &bi) == KILN_SUCCESS && bi.kind == backend) {
      info = bi;
      count = bi.available ? bi.device_count : 0;
    }
  }
  if (count == 0)
    return kiln_error_report_native(
        KILN_ERROR_DEVICE_NOT_FOUND, api, 0, NULL,
        "run the rank on a node with such a device, or pick another backend "
        "in kiln_mpi_desc.backend",
        "rank %d (node-local rank %d): the %s backend has no device%s%s", m->rank, m->local_rank,
        kiln_backend_name(backend), info.reason[0] ? ": " : "", info.reason);
  m->backend = backend;
  return kiln_device_find(backend, (unsigned)m->local_rank % count, &m->device);
}

/* Whether MPI takes CUDA device pointers: KILN_MPI_CUDA_AWARE=0|1 decides when set (for
 * MPIs without a query); else Open MPI's run-time answer, where its CUDA extension
 * exists (OMPI_HAVE_MPI_EXT_CUDA: the function is there; it answers 0 when the library
 * was built without CUDA or runs without it); else 0. */
static int query_cuda_aware(void) {
  const char *env = getenv("KILN_MPI_CUDA_AWARE");
  if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0))
    return env[0] == '1';
#if defined(OMPI_HAVE_MPI_EXT_CUDA) && OMPI_HAVE_MPI_EXT_CUDA
  return MPIX_Query_cuda_support() ? 1 : 0;
#else
  return 0;
#endif
}

static void destroy(kiln_mpi m) {
  if (m->gate_kernel)
    (void)kiln_kernel_destroy(m->gate_kernel);
  if (m->gate_stream)
    (void)kiln_stream_destroy(m->gate_stream);
  kmpi__cl_close(m);
  kmpi__cu_close(m);
  if (m->stream)
    (void)kiln_stream_destroy(m->stream);
  kmpi__slots_free_all(m);
  if (m->owns_ctx && m->ctx)
    (void)kiln_context_destroy(m->ctx);
  free(m->drain);
  if (m->comm != MPI_COMM_NULL)
    MPI_Comm_free(&m->comm);
  pthread_cond_destroy(&m->cond);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* Every rank learns whether one failed, and that the chunk sizes agree: the status this
 * rank returns (its own failure, else DEPENDENCY_FAILED naming the failed rank). */
static kiln_status init_agree(MPI_Comm comm, int rank, kiln_status st, size_t chunk,
                              const char *api) {
  long long mine[3] = {st == KILN_SUCCESS ? 0 : rank + 1, (long long)chunk, -(long long)chunk};
  long long all[3] = {0, 0, 0};
  kiln_error_info saved = *kiln_last_error();
  int rc = MPI_Allreduce(mine, all, 3, MPI_LONG_LONG, MPI_MAX, comm);
  if (rc != MPI_SUCCESS)
    return mpi_error(rc, api, rank, "MPI_Allreduce (the ranks' agreement)");
  if (st != KILN_SUCCESS)
    return kiln_error_report_native(st, api, saved.native_code, saved.native_name, saved.suggestion,
                                    "%s", saved.message);
  if (all[0])
    return kiln_error_report_native(
        KILN_ERROR_DEPENDENCY_FAILED, api, 0, NULL, "see the error returned on that rank",
        "rank %d: kiln_mpi_init failed on rank %lld, so it fails everywhere", rank, all[0] - 1);
  if ((size_t)all[1] != chunk || (size_t)(-all[2]) != chunk)
    return kiln_error_report_native(
        KILN_ERROR_INVALID_ARGUMENT, api, 0, NULL,
        "pass the same kiln_mpi_desc.chunk_bytes on every rank",
        "rank %d: chunk_bytes is %zu here, but the ranks use values from %lld "
        "to %lld",
        rank, chunk, -all[2], all[1]);
  return KILN_SUCCESS;
}

kiln_status kiln_mpi_init(MPI_Comm comm, const kiln_mpi_desc *desc, kiln_mpi *out) {
  static const char api[] = "kiln_mpi_init";
  if (!out)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api, "mpi (the out-parameter) is NULL");
  *out = NULL;
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (!inited || finalized)
    return kiln_error_report_native(
        KILN_ERROR_INVALID_STATE, api, 0, NULL,
        "call MPI_Init_thread (MPI_THREAD_MULTIPLE for the async calls) first", "MPI is %s",
        finalized ? "finalized" : "not initialised");
  if (comm == MPI_COMM_NULL)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api, "comm is MPI_COMM_NULL");
  int rank = -1;
  int rc = MPI_Comm_rank(comm, &rank);
  if (rc != MPI_SUCCESS)
    return mpi_error(rc, api, -1, "MPI_Comm_rank");
  /* Local checks first, then one agreement, so that every rank returns together. */
  kiln_status st = KILN_SUCCESS;
  size_t chunk = DEFAULT_CHUNK;
  unsigned depth = DEFAULT_DEPTH;
  if (desc && desc->struct_size < sizeof(kiln_mpi_desc)) {
    st = kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                     "rank %d: desc->struct_size is %zu, expected at least %zu: initialise it "
                     "with KILN_MPI_DESC_INIT",
                     rank, desc->struct_size, sizeof(kiln_mpi_desc));
  } else if (desc) {
    if (desc->chunk_bytes)
      chunk = desc->chunk_bytes;
    if (desc->depth)
      depth = desc->depth;
    if (chunk < MIN_CHUNK || chunk > MAX_CHUNK || chunk % 64)
      st = kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: desc->chunk_bytes %zu is outside 4096..268435456 or not a "
                       "multiple of 64: use 0 for the default (1 MiB)",
                       rank, desc->chunk_bytes);
    else if (depth < 2 || depth > KMPI_MAX_DEPTH)
      st = kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: desc->depth %u is outside 2..%d: use 0 for the default (%u)", rank,
                       desc->depth, KMPI_MAX_DEPTH, DEFAULT_DEPTH);
    else if (desc->flags & ~(unsigned)KILN_MPI_STAGE_ALWAYS)
      st = kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: desc->flags 0x%x has unknown bits: only KILN_MPI_STAGE_ALWAYS "
                       "is defined",
                       rank, desc->flags);
    else if (desc->backend < KILN_BACKEND_NONE || desc->backend >= KILN_BACKEND_COUNT_)
      st = kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: desc->backend %d names no backend", rank, (int)desc->backend);
  }
  kiln_mpi m = NULL;
  if (st == KILN_SUCCESS) {
    m = calloc(1, sizeof *m);
    if (m) {
      m->comm = MPI_COMM_NULL;
      pthread_mutex_init(&m->lock, NULL);
      pthread_cond_init(&m->cond, NULL);
      m->drain = malloc(chunk);
    }
    if (!m || !m->drain)
      st = kmpi__error(KILN_ERROR_OUT_OF_HOST_MEMORY, api,
                       "rank %d: out of host memory for the kiln_mpi and its %zu-byte drain "
                       "block",
                       rank, chunk);
  }
  /* Every collective call below is made by every rank or by none. */
  st = init_agree(comm, rank, st, chunk, api);
  if (st != KILN_SUCCESS) {
    if (m)
      destroy(m);
    return st;
  }
  m->rank = rank;
  m->tail = &m->active;
  m->chunk = chunk;
  m->depth = depth;
  m->flags = desc ? desc->flags : 0;
  MPI_Query_thread(&m->thread_level);
  m->cuda_aware = query_cuda_aware();
  rc = MPI_Comm_dup(comm, &m->comm);
  if (rc != MPI_SUCCESS) {
    m->comm = MPI_COMM_NULL;
    destroy(m);
    return mpi_error(rc, api, rank, "MPI_Comm_dup");
  }
  MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  MPI_Comm_size(m->comm, &m->size);
  MPI_Comm node;
  rc = MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS) {
    destroy(m);
    return mpi_error(rc, api, rank, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)");
  }
  MPI_Comm_rank(node, &m->local_rank);
  MPI_Comm_size(node, &m->local_size);
  MPI_Comm_free(&node);
  if (desc && desc->context) {
    m->ctx = desc->context;
    st = kiln_context_get_device(m->ctx, &m->device);
    if (st == KILN_SUCCESS) {
      kiln_device_props p = KILN_DEVICE_PROPS_INIT;
      st = kiln_device_get_props(m->device, &p);
      m->backend = p.backend;
    }
    if (st != KILN_SUCCESS) {
      const kiln_error_info *e = kiln_last_error();
      st = kmpi__error(st, api, "rank %d: desc->context: %s", rank, e->message);
    }
  } else {
    st = pick_device(m, desc ? desc->backend : KILN_BACKEND_NONE, api);
    if (st == KILN_SUCCESS) {
      st = kiln_context_create(m->device, NULL, &m->ctx);
      m->owns_ctx = st == KILN_SUCCESS;
    }
  }
  if (st == KILN_SUCCESS) {
    kiln_stream_desc sd = KILN_STREAM_DESC_INIT;
    sd.label = "kiln_mpi staging";
    st = kiln_stream_create(m->ctx, &sd, &m->stream);
  }
  if (st == KILN_SUCCESS && (m->backend == KILN_BACKEND_CPU || m->backend == KILN_BACKEND_MOCK))
    st = kmpi__gate_kernel_create(m);
  if (st == KILN_SUCCESS && m->backend == KILN_BACKEND_OPENCL)
    st = kmpi__cl_open(m);
  if (st == KILN_SUCCESS && m->backend == KILN_BACKEND_CUDA)
    st = kmpi__cu_open(m);
  if (st == KILN_SUCCESS && (m->gate_kernel || m->cl || m->cu)) {
    kiln_stream_desc sd = KILN_STREAM_DESC_INIT;
    sd.label = "kiln_mpi receive gates";
    st = kiln_stream_create(m->ctx, &sd, &m->gate_stream);
  }
  st = init_agree(comm, rank, st, chunk, api);
  if (st != KILN_SUCCESS) {
    destroy(m);
    return st;
  }
  *out = m;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- progress thread */
static void finish_async(kmpi_xfer *x) {
  kmpi__xfer_release(x);
  kiln_status st = x->status;
  kiln_status done = kiln_promise_complete(&x->promise, st, st == KILN_SUCCESS ? NULL : x->msg);
  (void)done;
  free(x);
}

static bool same_channel(const kmpi_xfer *a, const kmpi_xfer *b) {
  return a->kind == b->kind && a->peer == b->peer && a->tag == b->tag;
}

/* Under m->lock: whether an async transfer before `upto` in the list (all of them when
 * upto is NULL) still has MPI calls to post on x's channel. */
static bool channel_busy_locked(kiln_mpi m, const kmpi_xfer *x, const kmpi_xfer *upto) {
  for (kmpi_xfer *y = m->active; y && y != upto; y = y->next)
    if (same_channel(x, y) && kmpi__xfer_posting(y))
      return true;
  return false;
}

static void *progress_main(void *arg) {
  kiln_mpi m = arg;
  unsigned idle = 0;
  pthread_mutex_lock(&m->lock);
  for (;;) {
    while (!m->active && !m->stopping)
      pthread_cond_wait(&m->cond, &m->lock);
    if (!m->active && m->stopping)
      break;
    /* Oldest first. Only this thread steps or removes listed transfers; submitters
     * append at the tail under the lock. */
    bool moved = false;
    for (kmpi_xfer *x = m->active; x; x = x->next) {
      bool may_post = !channel_busy_locked(m, x, x);
      pthread_mutex_unlock(&m->lock);
      moved |= kmpi__xfer_step(x, may_post);
      pthread_mutex_lock(&m->lock);
    }
    for (kmpi_xfer **pp = &m->active; *pp;) {
      kmpi_xfer *x = *pp;
      if (x->done) {
        *pp = x->next;
        if (!*pp)
          m->tail = pp;
        m->active_count--;
        pthread_mutex_unlock(&m->lock);
        finish_async(x);
        pthread_mutex_lock(&m->lock);
        pp = &m->active; /* the list may have grown while unlocked */
        moved = true;
      } else {
        pp = &x->next;
      }
    }
    pthread_cond_broadcast(&m->cond); /* blocking calls waiting for their channel */
    pthread_mutex_unlock(&m->lock);
    if (moved) {
      idle = 0;
    } else if (++idle > 64) {
      struct timespec ts = {0, 20000}; /* 20 us: MPI and the copies progress meanwhile */
      nanosleep(&ts, NULL);
    } else {
      sched_yield();
    }
    pthread_mutex_lock(&m->lock);
  }
  pthread_mutex_unlock(&m->lock);
  return NULL;
}

kiln_status kiln_mpi_finalize(kiln_mpi m) {
  if (!m)
    return KILN_SUCCESS;
  pthread_mutex_lock(&m->lock);
  bool started = m->thread_started;
  m->stopping = true;
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  if (started)
    pthread_join(m->thread, NULL); /* it leaves once every transfer has finished */
  destroy(m);
  return KILN_SUCCESS;
}

kiln_status kiln_mpi_get_info(kiln_mpi m, kiln_mpi_info *info) {
  static const char api[] = "kiln_mpi_get_info";
  if (!m)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api, "mpi is NULL");
  if (!info)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api, "info is NULL");
  if (info->struct_size < sizeof(kiln_mpi_info))
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "info->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_MPI_INFO_INIT",
                       info->struct_size, sizeof(kiln_mpi_info));
  info->rank = m->rank;
  info->size = m->size;
  info->local_rank = m->local_rank;
  info->local_size = m->local_size;
  info->device = m->device;
  info->context = m->ctx;
  info->owns_context = m->owns_ctx;
  info->cuda_aware = m->cuda_aware;
  info->thread_level = m->thread_level;
  info->chunk_bytes = m->chunk;
  info->depth = m->depth;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- validation */
static kiln_status check_range(kiln_mpi m, const char *api, kiln_buffer b, size_t off,
                               size_t bytes) {
  size_t size = 0;
  kiln_status st = kiln_buffer_get_size(b, &size);
  if (st != KILN_SUCCESS) {
    const kiln_error_info *e = kiln_last_error();
    return kmpi__error(st, api, "rank %d: buffer: %s", m->rank, e->message);
  }
  kiln_context bctx = NULL;
  (void)kiln_buffer_get_context(b, &bctx);
  if (bctx != m->ctx)
    return kmpi__error(KILN_ERROR_DEVICE_MISMATCH, api,
                       "rank %d: the buffer belongs to another context than the kiln_mpi's: "
                       "create it in kiln_mpi_get_info()'s context",
                       m->rank);
  if (off > size || bytes > size - off)
    return kmpi__error(KILN_ERROR_OUT_OF_RANGE, api,
                       "rank %d: offset %zu + bytes %zu reaches past the end of the %zu-byte "
                       "buffer",
                       m->rank, off, bytes, size);
  if (bytes > (size_t)INT_MAX * m->chunk)
    return kmpi__error(KILN_ERROR_LIMIT_EXCEEDED, api, "rank %d: %zu bytes is too large", m->rank,
                       bytes);
  return KILN_SUCCESS;
}

static kiln_status check_peer(kiln_mpi m, const char *api, const char *what, int peer, int tag,
                              bool p2p) {
  if (peer < 0 || peer >= m->size)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: %s %d is not a rank of the communicator (0..%d)%s", m->rank, what,
                       peer, m->size - 1,
                       peer == MPI_ANY_SOURCE ? ": MPI_ANY_SOURCE is not supported, name the "
                                                "sender"
                                              : "");
  if (!p2p)
    return KILN_SUCCESS;
  void *ub = NULL;
  int flag = 0;
  MPI_Comm_get_attr(m->comm, MPI_TAG_UB, &ub, &flag);
  int tag_ub = flag && ub ? *(int *)ub : 32767;
  if (tag < 0 || tag > tag_ub)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: tag %d is outside 0..%d (MPI_TAG_UB)%s", m->rank, tag, tag_ub,
                       tag == MPI_ANY_TAG ? ": MPI_ANY_TAG is not supported, name the tag" : "");
  return KILN_SUCCESS;
}

/* The data's own address for MPI when a direct path applies (blocking calls only). */
static kiln_status direct_ptr(kiln_mpi m, kiln_buffer b, size_t bytes, char **out) {
  *out = NULL;
  if ((m->flags & KILN_MPI_STAGE_ALWAYS) || bytes < DIRECT_MIN_BYTES)
    return KILN_SUCCESS;
  void *p = NULL;
  if (m->backend == KILN_BACKEND_CPU) {
    if (kiln_buffer_get_native(b, KILN_NATIVE_HOST_POINTER, &p) == KILN_SUCCESS)
      *out = p;
  } else if (m->backend == KILN_BACKEND_CUDA && m->cuda_aware) {
    unsigned long long dptr = 0; /* CUdeviceptr */
    if (kiln_buffer_get_native(b, KILN_NATIVE_CU_DEVICEPTR, &dptr) == KILN_SUCCESS)
      *out = (char *)(uintptr_t)dptr;
  }
  return KILN_SUCCESS;
}

/* Order a direct transfer after the buffer's queued work: a blocking one-byte read
 * waits for its last write; for a receive, writing that byte back waits for every
 * use since (the hazard rules), so MPI may then write the storage. */
static kiln_status order_direct(kiln_mpi m, const char *api, kiln_buffer b, size_t off,
                                bool will_write) {
  unsigned char byte = 0;
  kiln_status st = kiln_buffer_read(b, off, 1, &byte);
  if (st == KILN_SUCCESS && will_write)
    st = kiln_buffer_write(b, off, 1, &byte);
  if (st != KILN_SUCCESS) {
    const kiln_error_info *e = kiln_last_error();
    return kmpi__error(st, api, "rank %d: waiting for the buffer's queued work: %s", m->rank,
                       e->message);
  }
  return KILN_SUCCESS;
}

static kiln_status report(kmpi_xfer *x) {
  if (x->status == KILN_SUCCESS)
    return KILN_SUCCESS;
  return kiln_error_report_native(x->status, x->api, x->native_code, x->native_name, NULL, "%s",
                                  x->msg);
}

/* ---------------------------------------------------------------- point to point */
static kiln_status p2p_blocking(kiln_mpi m, kmpi_kind kind, const char *api, kiln_buffer b,
                                size_t off, size_t bytes, int peer, int tag) {
  if (!m)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api, "mpi is NULL");
  kiln_status st = check_range(m, api, b, off, bytes);
  if (st == KILN_SUCCESS)
    st = check_peer(m, api, kind == KMPI_SEND ? "dest" : "source", peer, tag, true);
  if (st != KILN_SUCCESS)
    return st;
  kmpi_xfer x;
  kmpi__xfer_init(&x, m, kind, api, m->stream, b, off, bytes);
  x.peer = peer;
  x.tag = tag;
  /* Messages of one channel match in posting order: let async transfers on it that
   * were started earlier post all their chunks first. */
  pthread_mutex_lock(&m->lock);
  while (channel_busy_locked(m, &x, NULL))
    pthread_cond_wait(&m->cond, &m->lock);
  pthread_mutex_unlock(&m->lock);
  direct_ptr(m, b, bytes, &x.direct);
  if (x.direct) {
    st = order_direct(m, api, b, off, kind == KMPI_RECV);
    if (st != KILN_SUCCESS)
      x.direct = NULL; /* stage instead: the staging copies report the failure in order */
  }
  kmpi__xfer_run(&x);
  return report(&x);
}

kiln_status kiln_mpi_send(kiln_mpi m, kiln_buffer b, size_t off, size_t bytes, int dest, int tag) {
  return p2p_blocking(m, KMPI_SEND, "kiln_mpi_send", b, off, bytes, dest, tag);
}

kiln_status kiln_mpi_recv(kiln_mpi m, kiln_buffer b, size_t off, size_t bytes, int source,
                          int tag) {
  return p2p_blocking(m, KMPI_RECV, "kiln_mpi_recv", b, off, bytes, source, tag);
}

static kiln_status start_thread(kiln_mpi m) {
  /* under m->lock */
  if (m->thread_started)
    return KILN_SUCCESS;
  if (pthread_create(&m->thread, NULL, progress_main, m) != 0)
    return KILN_ERROR_OUT_OF_HOST_MEMORY;
  m->thread_started = true;
  return KILN_SUCCESS;
}

static kiln_status p2p_async(kiln_mpi m, kmpi_kind kind, const char *api, kiln_stream stream,
                             kiln_buffer b, size_t off, size_t bytes, int peer, int tag,
                             kiln_future *future, const char *file, int line) {
  if (!future)
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api, "future (the out-parameter) is NULL");
  future->id = 0;
  if (!m)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api, "mpi is NULL");
  if (!stream)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api,
                       "rank %d: stream is NULL: pass a stream of the kiln_mpi's context", m->rank);
  if (m->thread_level < MPI_THREAD_MULTIPLE)
    return kiln_error_report_native(
        KILN_ERROR_UNSUPPORTED, api, 0, NULL,
        "initialise MPI with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...), or "
        "use the blocking kiln_mpi_send / kiln_mpi_recv",
        "rank %d: MPI runs at thread level %d, below MPI_THREAD_MULTIPLE (%d): "
        "the async transfers call MPI from kiln's progress thread",
        m->rank, m->thread_level, MPI_THREAD_MULTIPLE);
  kiln_status st = check_range(m, api, b, off, bytes);
  if (st == KILN_SUCCESS)
    st = check_peer(m, api, kind == KMPI_SEND ? "dest" : "source", peer, tag, true);
  if (st != KILN_SUCCESS)
    return st;
  kmpi_xfer *x = malloc(sizeof *x);
  if (!x)
    return kmpi__error(KILN_ERROR_OUT_OF_HOST_MEMORY, api, "rank %d: out of host memory", m->rank);
  kmpi__xfer_init(x, m, kind, api, stream, b, off, bytes);
  x->peer = peer;
  x->tag = tag;
  bool gated = kind == KMPI_RECV && (m->gate_kernel || m->cl || m->cu);
  if ((kind == KMPI_SEND || gated) && (st = kmpi__xfer_slots_all(x)) != KILN_SUCCESS) {
    size_t n = x->nchunks;
    free(x);
    return kmpi__error(st, api, "rank %d: out of host memory for %zu staging slots", m->rank, n);
  }
  kiln_future f = KILN_FUTURE_INIT;
  st = kiln_future_promise_at(m->ctx, &f, &x->promise, file, line);
  if (st != KILN_SUCCESS) {
    kmpi__xfer_release(x);
    free(x);
    const kiln_error_info *e = kiln_last_error();
    return kmpi__error(st, api, "rank %d: %s", m->rank, e->message);
  }
  /* A send queues the staging reads of every chunk now, in the stream's order and
   * after the buffer's queued writes (the hazard rules): later work on the buffer
   * cannot change what is sent. The MPI calls are the progress thread's. A failure
   * here (a stream of another context, no pinned memory) is the future's: the
   * progress thread still tells the peer (docs/mpi.md). */
  if (kind == KMPI_SEND)
    (void)kmpi__xfer_step(x, false);
  /* A receive on cpu, mock or OpenCL queues its gate now: the buffer is in flight from
   * here, and work queued after the call waits for the data (docs/mpi.md). */
  if (gated) {
    /* after the work queued on the caller's stream so far, without holding that stream
     * while the message travels (a send queued after it on the stream must not wait
     * for this receive: the peer may be waiting for that send first) */
    kiln_event ev = NULL;
    st = kiln_event_create(m->ctx, NULL, &ev);
    if (st == KILN_SUCCESS)
      st = kiln_event_record(ev, stream);
    if (st == KILN_SUCCESS)
      st = kiln_stream_wait_event(m->gate_stream, ev);
    (void)kiln_event_destroy(ev);
    x->stream = m->gate_stream;
  }
  if (gated && st == KILN_SUCCESS)
    st = m->gate_kernel ? kmpi__gate_start(x) : kmpi__wgate_start(x);
  if (gated && st != KILN_SUCCESS) {
    const kiln_error_info *e = kiln_last_error();
    kiln_error_report_native(st, api, e->native_code, e->native_name, NULL,
                             "rank %d: queueing the receive's gate on the stream: %s", m->rank,
                             e->status == st ? e->message : kiln_status_message(st));
    kiln_error_info saved = *kiln_last_error();
    (void)kiln_promise_complete(&x->promise, st, saved.message);
    (void)kiln_future_drop(&f);
    kmpi__xfer_release(x);
    free(x);
    return kiln_error_report_native(st, api, saved.native_code, saved.native_name, NULL, "%s",
                                    saved.message);
  }
  pthread_mutex_lock(&m->lock);
  st = start_thread(m);
  if (st != KILN_SUCCESS) {
    pthread_mutex_unlock(&m->lock);
    (void)kiln_future_drop(&f);
    kmpi__xfer_run(x); /* finish it here, so that the peer is not left waiting */
    (void)kiln_promise_complete(&x->promise, x->status, x->msg);
    free(x);
    return kmpi__error(KILN_ERROR_OUT_OF_HOST_MEMORY, api,
                       "rank %d: cannot start the progress thread (transfer run blocking "
                       "instead)",
                       m->rank);
  }
  x->next = NULL;
  *m->tail = x;
  m->tail = &x->next;
  m->active_count++;
  pthread_cond_broadcast(&m->cond);
  pthread_mutex_unlock(&m->lock);
  *future = f;
  return KILN_SUCCESS;
}

kiln_status kiln_mpi_send_async_at(kiln_mpi m, kiln_stream stream, kiln_buffer b, size_t off,
                                   size_t bytes, int dest, int tag, kiln_future *future,
                                   const char *file, int line) {
  return p2p_async(m, KMPI_SEND, "kiln_mpi_send_async", stream, b, off, bytes, dest, tag, future,
                   file, line);
}

kiln_status kiln_mpi_recv_async_at(kiln_mpi m, kiln_stream stream, kiln_buffer b, size_t off,
                                   size_t bytes, int source, int tag, kiln_future *future,
                                   const char *file, int line) {
  return p2p_async(m, KMPI_RECV, "kiln_mpi_recv_async", stream, b, off, bytes, source, tag, future,
                   file, line);
}

/* ---------------------------------------------------------------- collectives */
/* Every rank learns whether any rank failed, so none returns a result built on a
 * failed rank's data. */
static kiln_status agree(kmpi_xfer *x) {
  int mine = x->status == KILN_SUCCESS ? 0 : x->m->rank + 1, any = 0;
  int rc = MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, x->m->comm);
  if (rc != MPI_SUCCESS && x->status == KILN_SUCCESS)
    return mpi_error(rc, x->api, x->m->rank, "MPI_Allreduce (the ranks' agreement)");
  if (x->status != KILN_SUCCESS)
    return report(x);
  if (any)
    return kiln_error_report_native(
        KILN_ERROR_DEPENDENCY_FAILED, x->api, 0, NULL, "see the error returned on that rank",
        "rank %d: %s failed on rank %d, so the result here is not valid", x->m->rank, x->api,
        any - 1);
  return KILN_SUCCESS;
}

kiln_status kiln_mpi_allreduce(kiln_mpi m, kiln_buffer b, size_t off, size_t count,
                               kiln_mpi_type type, kiln_mpi_op op) {
  static const char api[] = "kiln_mpi_allreduce";
  if (!m)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api, "mpi is NULL");
  MPI_Datatype dt;
  size_t elem;
  switch (type) {
  case KILN_MPI_FLOAT:
    dt = MPI_FLOAT;
    elem = 4;
    break;
  case KILN_MPI_DOUBLE:
    dt = MPI_DOUBLE;
    elem = 8;
    break;
  case KILN_MPI_INT32:
    dt = MPI_INT32_T;
    elem = 4;
    break;
  case KILN_MPI_INT64:
    dt = MPI_INT64_T;
    elem = 8;
    break;
  default:
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: type %d is not a kiln_mpi_type (KILN_MPI_FLOAT, _DOUBLE, _INT32, "
                       "_INT64)",
                       m->rank, (int)type);
  }
  MPI_Op mop;
  switch (op) {
  case KILN_MPI_SUM:
    mop = MPI_SUM;
    break;
  case KILN_MPI_MIN:
    mop = MPI_MIN;
    break;
  case KILN_MPI_MAX:
    mop = MPI_MAX;
    break;
  default:
    return kmpi__error(KILN_ERROR_INVALID_ARGUMENT, api,
                       "rank %d: op %d is not a kiln_mpi_op (KILN_MPI_SUM, _MIN, _MAX)", m->rank,
                       (int)op);
  }
  if (count > SIZE_MAX / elem)
    return kmpi__error(KILN_ERROR_OUT_OF_RANGE, api, "rank %d: count %zu overflows", m->rank,
                       count);
  size_t bytes = count * elem;
  kiln_status st = check_range(m, api, b, off, bytes);
  if (st != KILN_SUCCESS)
    return st;
  kmpi_xfer x;
  kmpi__xfer_init(&x, m, KMPI_ALLREDUCE, api, m->stream, b, off, bytes);
  x.dt = dt;
  x.op = mop;
  x.elem = elem;
  direct_ptr(m, b, bytes, &x.direct);
  if (x.direct && order_direct(m, api, b, off, true) != KILN_SUCCESS)
    x.direct = NULL;
  kmpi__xfer_run(&x);
  return agree(&x);
}

kiln_status kiln_mpi_bcast(kiln_mpi m, kiln_buffer b, size_t off, size_t bytes, int root) {
  static const char api[] = "kiln_mpi_bcast";
  if (!m)
    return kmpi__error(KILN_ERROR_INVALID_HANDLE, api, "mpi is NULL");
  kiln_status st = check_range(m, api, b, off, bytes);
  if (st == KILN_SUCCESS)
    st = check_peer(m, api, "root", root, 0, false);
  if (st != KILN_SUCCESS)
    return st;
  kmpi_xfer x;
  kmpi__xfer_init(&x, m, KMPI_BCAST, api, m->stream, b, off, bytes);
  x.peer = root;
  x.is_root = root == m->rank;
  direct_ptr(m, b, bytes, &x.direct);
  if (x.direct && order_direct(m, api, b, off, !x.is_root) != KILN_SUCCESS)
    x.direct = NULL;
  kmpi__xfer_run(&x);
  return agree(&x);
}
