/* SPDX-License-Identifier: MIT */
/* The ring server kernel of test_ring_kernel (run on the CPU backend) and
 * test_ring_nvrtc (compiled by NVRTC): a persistent kernel that pops requests from an
 * inbox ring and pushes answers to an outbox ring until it pops a stop request. It
 * needs kiln_ring_dialect_source() in front of it. */
#ifndef RING_SERVER_SRC_H
#define RING_SERVER_SRC_H

static const char server_src[] =
    "KILN_KERNEL void ring_server(KILN_GLOBAL kiln_u32 *inbox, KILN_GLOBAL kiln_u32 *outbox,\n"
    "                             int mpmc) {\n"
    "  kiln_u32 req[4], resp[4];\n"
    "  for (;;) {\n"
    "    int r = mpmc ? kiln_ring_pop_mpmc(inbox, req) : kiln_ring_pop_spsc(inbox, req);\n"
    "    if (r < 0)\n"
    "      return; /* not a ring of that kind */\n"
    "    if (r == 0)\n"
    "      continue; /* empty: poll again */\n"
    "    if (req[0] == 0xFFFFFFFFu)\n"
    "      return; /* stop (one per work-item) */\n"
    "    resp[0] = req[0];\n"
    "    resp[1] = req[1] * req[1] + 1u;\n"
    "    resp[2] = (kiln_u32)kiln_global_id(0);\n"
    "    resp[3] = req[3] ^ 0xA5A5A5A5u;\n"
    "    while ((mpmc ? kiln_ring_push_mpmc(outbox, resp) : kiln_ring_push_spsc(outbox, resp)) "
    "== 0) {\n"
    "    }\n"
    "  }\n"
    "}\n";

#endif
