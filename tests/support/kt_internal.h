/* SPDX-License-Identifier: MIT */
/* Between the files of the test support library only. */
#ifndef KT_INTERNAL_H
#define KT_INTERNAL_H

/* Complete and release the OpenCL user event of a kt_hold_async gate. */
void kt_hold_release_cl(void *user_event);

#endif
