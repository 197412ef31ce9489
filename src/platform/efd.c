/* SPDX-License-Identifier: MIT */
/* Pollable descriptors (Linux eventfd): a counter that is readable while nonzero.
 * kiln uses each as a level-triggered flag: set writes 1 once, clear reads it back to
 * zero; the caller (core/notify.c) tracks the state under its lock so that neither
 * call blocks. Any thread. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "platform/platform.h"

int kiln__efd_open(void) {
  return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void kiln__efd_set(int fd) {
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void kiln__efd_clear(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

void kiln__efd_close(int fd) {
  close(fd);
}
