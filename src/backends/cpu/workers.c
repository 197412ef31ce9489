/* SPDX-License-Identifier: MIT */
/* Helper threads that share the work-groups of a large launch with the stream's
 * worker (kiln__cpu_parallel). kiln__cpu_count() - 1 of them (at most 15; none on one
 * core), started at the first parallel launch and kept for the process, asleep on a
 * condition variable between jobs. A job is open while its caller runs its own share;
 * helpers join open jobs (several streams' launches at once are shared fairly: each
 * helper takes the open job with the fewest participants), and the caller closes the
 * job and waits for the helpers in it before returning. Any thread may call it. */
#include <stdlib.h>

#include "cpu_internal.h"

#define MAX_HELPERS 15u
#define MAX_OPEN 16u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER; /* a job was opened */
static pthread_cond_t left = PTHREAD_COND_INITIALIZER; /* a helper left a job */
static kiln__cpu_job *open_jobs[MAX_OPEN];
static unsigned open_count;
static unsigned helper_count;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static kiln__cpu_job *pick_locked(void) {
  kiln__cpu_job *best = NULL;
  for (unsigned i = 0; i < open_count; i++) {
    kiln__cpu_job *j = open_jobs[i];
    if (j->joined < j->max_participants && (!best || j->joined < best->joined))
      best = j;
  }
  return best;
}

static void *helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    kiln__cpu_job *j = pick_locked();
    if (!j) {
      pthread_cond_wait(&work, &lock);
      continue;
    }
    unsigned me = j->joined++;
    j->active++;
    pthread_mutex_unlock(&lock);
    j->run(j, me);
    pthread_mutex_lock(&lock);
    if (--j->active == 0)
      pthread_cond_broadcast(&left);
  }
  return NULL;
}

static void start_helpers(void) {
  unsigned want = kiln__cpu_count();
  want = want > 1 ? want - 1 : 0;
  if (want > MAX_HELPERS)
    want = MAX_HELPERS;
  /* KILN_CPU_THREADS: threads per launch in all, >= 1 (0: not set) */
  uint64_t all = kiln__env_uint("KILN_CPU_THREADS", 1, KILN__ENV_THREADS_MAX, 0);
  if (all >= 1 && all - 1 < want)
    want = (unsigned)(all - 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (unsigned i = 0; i < want; i++) {
    pthread_t t;
    if (pthread_create(&t, &attr, helper_main, NULL) != 0)
      break;
    helper_count++;
  }
  pthread_attr_destroy(&attr);
}

unsigned kiln__cpu_helpers(void) {
  pthread_once(&once, start_helpers);
  return helper_count;
}

void kiln__cpu_parallel(kiln__cpu_job *job) {
  kiln__cpu_helpers();
  job->joined = 1; /* the caller */
  job->active = 0;
  bool opened = false;
  if (job->max_participants > 1 && helper_count) {
    pthread_mutex_lock(&lock);
    if (open_count < MAX_OPEN) {
      open_jobs[open_count++] = job;
      opened = true;
      pthread_cond_broadcast(&work);
    }
    pthread_mutex_unlock(&lock);
  }
  job->run(job, 0);
  if (!opened)
    return;
  pthread_mutex_lock(&lock);
  for (unsigned i = 0; i < open_count; i++)
    if (open_jobs[i] == job) {
      open_jobs[i] = open_jobs[--open_count];
      break;
    }
  while (job->active)
    pthread_cond_wait(&left, &lock);
  pthread_mutex_unlock(&lock);
}
