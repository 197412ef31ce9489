/* SPDX-License-Identifier: MIT */
/* The appender of src/graph's dumps (text.h). */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>

void kg_text_put(kg_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = t->len < t->bytes ? t->bytes - t->len : 0;
  int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    t->len += (size_t)n;
}
