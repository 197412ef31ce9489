/* SPDX-License-Identifier: MIT */
/* The backend registry and the device list. Backends are probed once, in table order,
 * on the first call that needs them; devices then live for the process (a static
 * table), so kiln_device handles never dangle. Thread-safe after the once-guard. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "trace/trace.h"

/* Every backend built in, in the order of `kiln info` and kiln_backend_get_info: its
 * kind (KILN_BACKEND_<K>, include/kiln/types.h) and name (its ops table is
 * kiln__<name>_backend, defined in src/backends/<name>/). Adding a backend adds one
 * line here and nothing else outside its folder but its public kind. */
#define KILN__BACKENDS(X) \
  X(CPU, cpu)             \
  X(OPENCL, opencl)       \
  X(CUDA, cuda)           \
  X(MOCK, mock)

#define DECLARE(K, n) extern const kiln__backend_ops kiln__##n##_backend;
KILN__BACKENDS(DECLARE)
#undef DECLARE

/* Keyed by kind; NULL: a kind with no backend built in. */
static const kiln__backend_ops *const backend_table[KILN_BACKEND_COUNT_] = {
#define ENTRY(K, n) [KILN_BACKEND_##K] = &kiln__##n##_backend,
    KILN__BACKENDS(ENTRY)
#undef ENTRY
};

/* Names of every kind. */
static const char *const backend_names[KILN_BACKEND_COUNT_] = {
#define NAME(K, n) [KILN_BACKEND_##K] = #n,
    KILN__BACKENDS(NAME)
#undef NAME
        [KILN_BACKEND_NONE] = "none",
};

static const kiln_backend_kind listed_order[] = {
#define LISTED(K, n) KILN_BACKEND_##K,
    KILN__BACKENDS(LISTED)
#undef LISTED
};
#define LISTED_COUNT (sizeof listed_order / sizeof listed_order[0])

#define MAX_DEVICES 64u

static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static kiln__device_obj devices[MAX_DEVICES];
static pthread_mutex_t reset_locks[MAX_DEVICES]; /* one kiln_device_reset per device at a time */
static unsigned device_count;
static struct {
  int probed, available;
  char reason[256];
  unsigned device_count;
} backend_state[KILN_BACKEND_COUNT_];
static int default_device = -1;

kiln_status kiln__registry_add_device(const kiln__backend_ops *ops, const kiln_device_props *props,
                                      void *native, kiln__device **out) {
  if (device_count >= MAX_DEVICES)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "more than %u devices", MAX_DEVICES);
  kiln__device_obj *d = &devices[device_count++];
  d->ops = ops;
  d->props = *props;
  d->props.struct_size = sizeof(kiln_device_props);
  d->props.backend = ops->kind;
  d->props.index = backend_state[ops->kind].device_count++;
  d->native = native;
  atomic_store(&d->generation, 0);
  if (out)
    *out = &d->view;
  return KILN_SUCCESS;
}

static void pick_default(void) {
  int best = -1;
  for (unsigned i = 0; i < device_count; i++)
    if (devices[i].props.backend == KILN_BACKEND_CUDA) {
      best = (int)i;
      break;
    }
  if (best < 0) {
    uint64_t most = 0;
    for (unsigned i = 0; i < device_count; i++) {
      const kiln_device_props *p = &devices[i].props;
      if (p->backend == KILN_BACKEND_OPENCL && p->kind == KILN_DEVICE_KIND_GPU &&
          p->global_mem_bytes > most) {
        most = p->global_mem_bytes;
        best = (int)i;
      }
    }
  }
  if (best < 0)
    for (unsigned i = 0; i < device_count; i++)
      if (devices[i].props.backend == KILN_BACKEND_CPU) {
        best = (int)i;
        break;
      }
  default_device = best;
  if (best >= 0)
    devices[best].props.is_default = 1;
}

static void registry_probe(void) {
  for (unsigned i = 0; i < MAX_DEVICES; i++)
    pthread_mutex_init(&reset_locks[i], NULL);
  for (size_t i = 0; i < LISTED_COUNT; i++) {
    kiln_backend_kind kind = listed_order[i];
    const kiln__backend_ops *ops = backend_table[kind];
    backend_state[kind].probed = 1;
    if (!ops) {
      kiln__strlcpy(backend_state[kind].reason, "not built into this library",
                    sizeof backend_state[kind].reason);
      continue;
    }
    unsigned before = device_count;
    kiln_status st = ops->probe(ops, backend_state[kind].reason, sizeof backend_state[kind].reason);
    if (st != KILN_SUCCESS || device_count == before) {
      device_count = before; /* drop partially added devices */
      backend_state[kind].device_count = 0;
      if (!backend_state[kind].reason[0])
        snprintf(backend_state[kind].reason, sizeof backend_state[kind].reason,
                 "no device found (%s)", kiln_status_name(st));
      continue;
    }
    backend_state[kind].available = 1;
    backend_state[kind].reason[0] = '\0';
  }
  pick_default();
}

static void registry_start(void) {
  kiln__env_report();
  registry_probe();
}

kiln_status kiln__registry_init(void) {
  pthread_once(&registry_once, registry_start);
  return KILN_SUCCESS;
}

unsigned kiln_backend_count(void) {
  return (unsigned)LISTED_COUNT;
}

const char *kiln_backend_name(kiln_backend_kind kind) {
  if ((int)kind < 0 || kind >= KILN_BACKEND_COUNT_)
    return "unknown";
  return backend_names[kind];
}

kiln_backend_kind kiln_backend_from_name(const char *name) {
  if (!name)
    return KILN_BACKEND_NONE;
  for (int k = 1; k < KILN_BACKEND_COUNT_; k++)
    if (strcmp(name, backend_names[k]) == 0)
      return (kiln_backend_kind)k;
  return KILN_BACKEND_NONE;
}

kiln_status kiln_backend_get_info(unsigned i, kiln_backend_info *info) {
  KILN__API_ENTER();
  if (!info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  if (info->struct_size < sizeof(kiln_backend_info))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "info->struct_size is %zu, expected %zu: initialise it with "
                       "KILN_BACKEND_INFO_INIT",
                       info->struct_size, sizeof(kiln_backend_info));
  if (i >= LISTED_COUNT)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "backend index %u out of range: kiln knows %u",
                       i, (unsigned)LISTED_COUNT);
  kiln__registry_init();
  kiln_backend_kind kind = listed_order[i];
  info->kind = kind;
  kiln__strlcpy(info->name, backend_names[kind], sizeof info->name);
  info->available = backend_state[kind].available;
  kiln__strlcpy(info->reason, backend_state[kind].reason, sizeof info->reason);
  info->device_count = backend_state[kind].device_count;
  return KILN_SUCCESS;
}

kiln_status kiln_device_count(unsigned *count) {
  KILN__API_ENTER();
  if (!count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "count is NULL");
  kiln__registry_init();
  *count = device_count;
  return KILN_SUCCESS;
}

kiln_status kiln_device_get(unsigned i, kiln_device *device) {
  KILN__API_ENTER();
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device is NULL");
  *device = NULL;
  kiln__registry_init();
  if (i >= device_count)
    return kiln__error(KILN_ERROR_DEVICE_NOT_FOUND, "device %u does not exist: there are %u", i,
                       device_count);
  *device = &devices[i];
  return KILN_SUCCESS;
}

/* " (from 'spec')" for a device found through a spec or a variable, else "". */
static const char *from_spec(char out[KILN__QUOTE_BYTES + 16], const char *spec) {
  char q[KILN__QUOTE_BYTES];
  if (!spec)
    return "";
  snprintf(out, KILN__QUOTE_BYTES + 16, " (from %s)", kiln__quote(q, spec, strlen(spec)));
  return out;
}

static kiln_status find(kiln_backend_kind backend, unsigned index, kiln_device *device,
                        const char *spec) {
  kiln__registry_init();
  if ((int)backend <= 0 || backend >= KILN_BACKEND_COUNT_)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "backend %d is not a kiln backend",
                       (int)backend);
  char from[KILN__QUOTE_BYTES + 16];
  if (!backend_state[backend].available) {
    kiln__error(KILN_ERROR_BACKEND_UNAVAILABLE, "backend '%s'%s is unavailable: %s",
                backend_names[backend], from_spec(from, spec),
                backend_state[backend].reason[0] ? backend_state[backend].reason : "not probed");
    return KILN_ERROR_BACKEND_UNAVAILABLE;
  }
  for (unsigned i = 0; i < device_count; i++)
    if (devices[i].props.backend == backend && devices[i].props.index == index) {
      *device = &devices[i];
      return KILN_SUCCESS;
    }
  return kiln__error(KILN_ERROR_DEVICE_NOT_FOUND,
                     "device %s:%u%s does not exist: backend '%s' has %u", backend_names[backend],
                     index, from_spec(from, spec), backend_names[backend],
                     backend_state[backend].device_count);
}

kiln_status kiln_device_find(kiln_backend_kind backend, unsigned index, kiln_device *device) {
  KILN__API_ENTER();
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device is NULL");
  *device = NULL;
  return find(backend, index, device, NULL);
}

#define SPEC_FORM "<backend>[:<index>], e.g. cpu:0 or opencl:1"

/* "<backend>[:<index>]", the index decimal and below 65536; nothing after it. */
static kiln_status parse(const char *spec, kiln_device *device) {
  char qspec[KILN__QUOTE_BYTES], qpart[KILN__QUOTE_BYTES];
  kiln__quote(qspec, spec, strlen(spec));
  char name[32];
  const char *colon = strchr(spec, ':');
  size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
  if (n == 0 || n >= sizeof name) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s is not of the form " SPEC_FORM, qspec);
    kiln__error_suggest("name a device as " SPEC_FORM " (kiln info lists them)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  memcpy(name, spec, n);
  name[n] = '\0';
  kiln_backend_kind kind = kiln_backend_from_name(name);
  if (kind == KILN_BACKEND_NONE) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s: unknown backend %s", qspec,
                kiln__quote(qpart, name, n));
    kiln__error_suggest("use one of cpu, opencl, cuda (kiln info lists them)");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  unsigned long index = 0;
  if (colon) {
    const char *digits = colon + 1;
    size_t ndigits = strspn(digits, "0123456789");
    const char *rest = digits + ndigits;
    if (ndigits == 0) {
      if (*digits)
        kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s: index %s is not a non-negative number",
                    qspec, kiln__quote(qpart, digits, strlen(digits)));
      else
        kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s: no index after ':'", qspec);
      kiln__error_suggest("name a device as " SPEC_FORM);
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    bool too_big = false;
    for (size_t i = 0; i < ndigits && !too_big; i++) {
      index = index * 10 + (unsigned long)(digits[i] - '0');
      too_big = index > 0xffffu;
    }
    if (*rest) {
      char qindex[KILN__QUOTE_BYTES];
      if (too_big)
        kiln__quote(qindex, digits, ndigits);
      else
        snprintf(qindex, sizeof qindex, "%lu", index);
      kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s: extra text %s after the index %s", qspec,
                  kiln__quote(qpart, rest, strlen(rest)), qindex);
      kiln__error_suggest("a device is " SPEC_FORM ", with nothing after the index");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    if (too_big) {
      kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device %s: index %s is not below 65536", qspec,
                  kiln__quote(qpart, digits, ndigits));
      kiln__error_suggest("kiln info lists the devices and their indices");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
  }
  return find(kind, (unsigned)index, device, spec);
}

kiln_status kiln_device_parse(const char *spec, kiln_device *device) {
  KILN__API_ENTER();
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device is NULL");
  *device = NULL;
  if (!spec)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "spec is NULL");
  return parse(spec, device);
}

kiln_status kiln_device_default(kiln_device *device) {
  KILN__API_ENTER();
  if (!device)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "device is NULL");
  *device = NULL;
  kiln__registry_init();
  const char *spec = getenv("KILN_DEVICE");
  if (spec && *spec) {
    kiln_status st = parse(spec, device);
    if (st != KILN_SUCCESS) {
      /* Say where the spec came from; the message and the suggestion stay. */
      char msg[sizeof kiln_last_error()->message];
      char suggestion[sizeof kiln_last_error()->suggestion];
      kiln__strlcpy(msg, kiln_last_error()->message, sizeof msg);
      kiln__strlcpy(suggestion, kiln_last_error()->suggestion, sizeof suggestion);
      kiln__error(st, "KILN_DEVICE: %s", msg);
      kiln__error_suggest("%s; or unset KILN_DEVICE", suggestion);
    }
    return st;
  }
  const char *backend = getenv("KILN_BACKEND");
  if (backend && *backend) {
    kiln_backend_kind kind = kiln_backend_from_name(backend);
    if (kind == KILN_BACKEND_NONE) {
      char q[KILN__QUOTE_BYTES];
      kiln__error(KILN_ERROR_INVALID_ARGUMENT, "KILN_BACKEND=%s is not a kiln backend",
                  kiln__quote(q, backend, strlen(backend)));
      kiln__error_suggest("set KILN_BACKEND to cpu, opencl or cuda, or unset it");
      return KILN_ERROR_INVALID_ARGUMENT;
    }
    return find(kind, 0, device, backend);
  }
  if (default_device < 0)
    return kiln__error(KILN_ERROR_DEVICE_NOT_FOUND, "no device is available");
  *device = &devices[default_device];
  return KILN_SUCCESS;
}

static kiln_status check_device(kiln_device device) {
  kiln__device_obj *d = (kiln__device_obj *)device;
  if (!d)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "device is NULL");
  if (d < devices || d >= devices + device_count)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "device %p is not a kiln device", (void *)d);
  return KILN_SUCCESS;
}

kiln_status kiln_device_get_props(kiln_device device, kiln_device_props *props) {
  KILN__API_ENTER();
  kiln_status st = check_device(device);
  if (st != KILN_SUCCESS)
    return st;
  if (!props)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "props is NULL");
  if (props->struct_size < sizeof(kiln_device_props))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "props->struct_size is %zu, expected %zu: initialise it with "
                       "KILN_DEVICE_PROPS_INIT",
                       props->struct_size, sizeof(kiln_device_props));
  *props = device->props;
  props->generation = atomic_load(&device->generation);
  return KILN_SUCCESS;
}

kiln_status kiln_device_mem_info(kiln_device device, uint64_t *free_bytes, uint64_t *total_bytes) {
  KILN__API_ENTER();
  kiln_status st = check_device(device);
  if (st != KILN_SUCCESS)
    return st;
  if (!free_bytes || !total_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "%s is NULL",
                       free_bytes ? "total_bytes" : "free_bytes");
  return device->ops->mem_info(&device->view, free_bytes, total_bytes);
}

/* ------------------------------------------------------------- loss and reset */
/* A device's `lost` field holds its kiln_device_state: OK, LOST (a sticky error) or
 * UNRECOVERABLE (a kiln_device_reset failed); the hot paths read only that atomic (any
 * nonzero value refuses). Its reason, lost_why, changes with the state: state and
 * reason are written together under state_lock, and read out under it (the refusals
 * format a copy), so a reset rewriting the reason never tears a message. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
_Static_assert(sizeof(((kiln_device_state_info *)0)->reason) ==
                   sizeof(((kiln__device_obj *)0)->lost_why),
               "kiln_device_get_state reports the whole reason");

/* Under state_lock. */
static void set_state_locked(kiln__device_obj *d, kiln_device_state state, const char *why) {
  kiln__strlcpy(d->lost_why, why ? why : "", sizeof d->lost_why);
  atomic_store(&d->lost, (int)state);
}

void kiln__device_mark_lost(kiln__device *view, const char *why) {
  kiln__device_obj *device = KILN__OBJ(kiln__device_obj, view);
  if (atomic_load(&device->lost))
    return; /* the first reason stays; an unrecoverable device stays so */
  pthread_mutex_lock(&state_lock);
  bool first = !atomic_load(&device->lost);
  if (first)
    set_state_locked(device, KILN_DEVICE_STATE_LOST, why);
  pthread_mutex_unlock(&state_lock);
  if (first) {
    kiln__log(KILN_LOG_WARN, "device %s:%u lost: %s", kiln_backend_name(device->props.backend),
              device->props.index, why ? why : "");
    kiln__trace_instant_str("device", "device lost", "why", why ? why : "");
  }
}

/* The calling thread's copy of the reason: valid until its next call. */
const char *kiln__device_lost_why(const kiln__device_obj *device) {
  static _Thread_local char copy[sizeof(((kiln__device_obj *)0)->lost_why)];
  pthread_mutex_lock(&state_lock);
  kiln__strlcpy(copy, device->lost_why, sizeof copy);
  pthread_mutex_unlock(&state_lock);
  return copy;
}

kiln_status kiln_device_get_state(kiln_device device, kiln_device_state_info *info) {
  KILN__API_ENTER();
  kiln_status st = check_device(device);
  if (st != KILN_SUCCESS)
    return st;
  if (!info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  if (info->struct_size < sizeof(kiln_device_state_info))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "info->struct_size is %zu, expected %zu: initialise it with "
                       "KILN_DEVICE_STATE_INFO_INIT",
                       info->struct_size, sizeof(kiln_device_state_info));
  pthread_mutex_lock(&state_lock);
  info->state = (kiln_device_state)atomic_load(&device->lost);
  info->generation = atomic_load(&device->generation);
  kiln__strlcpy(info->reason, device->lost_why, sizeof info->reason);
  pthread_mutex_unlock(&state_lock);
  return KILN_SUCCESS;
}

/* Generic probe: a context, a buffer, a write and a read back through the public API. */
static kiln_status generic_probe(kiln__device_obj *device) {
  kiln_context ctx = NULL;
  kiln_buffer buf = NULL;
  kiln_status st = kiln_context_create(device, NULL, &ctx);
  if (st == KILN_SUCCESS) {
    kiln_buffer_desc desc = KILN_BUFFER_DESC_INIT;
    desc.bytes = 256;
    st = kiln_buffer_create(ctx, &desc, &buf);
  }
  unsigned char out[256], in[256];
  for (unsigned i = 0; i < sizeof out; i++)
    out[i] = (unsigned char)(i * 7u + 3u);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_write(buf, 0, sizeof out, out);
  if (st == KILN_SUCCESS)
    st = kiln_buffer_read(buf, 0, sizeof in, in);
  if (st == KILN_SUCCESS && memcmp(in, out, sizeof in) != 0)
    st = kiln__error(KILN_ERROR_DEVICE_LOST, "the probe read back other bytes than it wrote");
  kiln_buffer_destroy(buf);
  kiln_context_destroy(ctx);
  return st;
}

kiln_status kiln_device_reset(kiln_device device) {
  KILN__API_ENTER();
  kiln_status st = check_device(device);
  if (st != KILN_SUCCESS)
    return st;
  kiln__device_obj *d = (kiln__device_obj *)device;
  pthread_mutex_t *serial = &reset_locks[d - devices];
  pthread_mutex_lock(serial);
  unsigned gen = atomic_fetch_add(&d->generation, 1) + 1;
  const char *stage = "the backend's reset";
  if (d->ops->device_reset)
    st = d->ops->device_reset(&d->view);
  if (st == KILN_SUCCESS) {
    pthread_mutex_lock(&state_lock);
    set_state_locked(d, KILN_DEVICE_STATE_OK, ""); /* let the probe's calls through */
    pthread_mutex_unlock(&state_lock);
    stage = "the reset's probe";
    if (d->ops->device_probe)
      st = d->ops->device_probe(&d->view);
    if (st == KILN_SUCCESS)
      st = generic_probe(d);
  }
  KILN__API_ENTER();
  if (st != KILN_SUCCESS) {
    /* Unrecoverable, whatever the probe may have marked: the reason is the reset's
     * failure, and the native code of what failed stays in kiln_last_error(). */
    kiln_error_info failed = *kiln_last_error();
    char why[sizeof d->lost_why];
    snprintf(why, sizeof why, "%s failed: %.160s", stage, failed.message);
    pthread_mutex_lock(&state_lock);
    set_state_locked(d, KILN_DEVICE_STATE_UNRECOVERABLE, why);
    pthread_mutex_unlock(&state_lock);
    pthread_mutex_unlock(serial);
    kiln__log(KILN_LOG_WARN, "device %s:%u could not be recovered at generation %u: %s",
              kiln_backend_name(d->props.backend), d->props.index, gen, why);
    kiln__error_native(KILN_ERROR_DEVICE_LOST, failed.backend, failed.native_code,
                       failed.native_name,
                       "device %s:%u could not be recovered at generation %u (%s): restart the "
                       "process",
                       kiln_backend_name(d->props.backend), d->props.index, gen, why);
    kiln__error_suggest("restart the process: the device's runtime may be inconsistent after "
                        "a sticky error");
    kiln__trace_instant("device", "device reset failed", 2, "device", (int64_t)d->props.index,
                        "generation", (int64_t)gen);
    return KILN_ERROR_DEVICE_LOST;
  }
  pthread_mutex_unlock(serial);
  kiln__log(KILN_LOG_INFO, "device %s:%u reset: generation %u", kiln_backend_name(d->props.backend),
            d->props.index, gen);
  kiln__trace_instant("device", "device reset", 2, "device", (int64_t)d->props.index, "generation",
                      (int64_t)gen);
  return KILN_SUCCESS;
}
