/* SPDX-License-Identifier: MIT */
/* One fiber per work-item for kernels with barriers (docs/kernels.md, "Barriers on the
 * CPU"). The switch is hand-written (x86-64 and aarch64): it saves the callee-saved
 * registers on the old stack, swaps stack pointers and restores — no system call (as
 * swapcontext makes, to save the signal mask) and no floating-point environment. A
 * barrier hands the thread from work-item i straight to i + 1 (the last to the
 * first), so one barrier costs one switch per work-item. Fibers never leave the thread
 * that made them; at each switch to a work-item its record becomes the thread's current
 * one (kiln__cpu_set_current: what helper functions read).
 * ASan and TSan are told of every switch. */
#include <stdint.h>
#include <string.h>

#include "cpu_internal.h"

/* Each work-item's stack: FIBER_STACK_BYTES of address space (committed only as it is
 * touched), its top moved down by a different multiple of 64 bytes per work-item, up
 * to FIBER_STAGGER_BYTES, so that tops 2^k apart do not put every fiber's hot frames
 * into the same cache sets (a precaution: on the 2-core VM neither this, nor 16 KiB
 * stacks, nor huge pages changed the cost of a barrier measurably; docs/kernels.md).
 * At least FIBER_STACK_BYTES - FIBER_STAGGER_BYTES stay usable. */
#define FIBER_STAGGER_BYTES ((size_t)64 * 1024)
#if defined(KILN_ASAN)
#include <sanitizer/asan_interface.h>
#define FIBER_STACK_BYTES ((size_t)320 * 1024)
#elif defined(KILN_TSAN)
#include <sanitizer/tsan_interface.h>
#define FIBER_STACK_BYTES ((size_t)320 * 1024)
#else
#define FIBER_STACK_BYTES ((size_t)128 * 1024)
#endif
#define STAGGER(i) (((i)*448u) % FIBER_STAGGER_BYTES)
#define STACK_TOP(f, i) ((f)->stacks + ((i) + 1) * FIBER_STACK_BYTES - STAGGER(i))

/* kiln__fiber_switch(save, to): store the current stack pointer (after pushing the
 * callee-saved registers) into *save, continue on `to`. kiln__fiber_start is where a
 * new fiber's first switch "returns" to: it calls fn(arg) with fn and arg left in
 * callee-saved registers by fiber_init, and never returns. */
void kiln__fiber_switch(void **save, void *to);
void kiln__fiber_start(void);

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl kiln__fiber_switch\n"
        ".hidden kiln__fiber_switch\n"
        ".type kiln__fiber_switch,@function\n"
        "kiln__fiber_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size kiln__fiber_switch, .-kiln__fiber_switch\n"
        ".globl kiln__fiber_start\n"
        ".hidden kiln__fiber_start\n"
        ".type kiln__fiber_start,@function\n"
        "kiln__fiber_start:\n"
        "  movq %r12, %rdi\n"
        "  callq *%r13\n"
        "  ud2\n"
        ".size kiln__fiber_start, .-kiln__fiber_start\n");
/* Initial frame: r15 r14 r13(fn) r12(arg) rbx rbp, then the return address. After the
 * six pops and the ret, rsp must be 16-byte aligned for kiln__fiber_start's call. */
static void *fiber_init(unsigned char *top, void (*fn)(void *), void *arg) {
  uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
  void **sp = (void **)(t - 72);
  memset(sp, 0, 72);
  sp[2] = (void *)(uintptr_t)fn;
  sp[3] = arg;
  sp[6] = (void *)(uintptr_t)kiln__fiber_start;
  return sp;
}
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl kiln__fiber_switch\n"
        ".hidden kiln__fiber_switch\n"
        ".type kiln__fiber_switch,%function\n"
        "kiln__fiber_switch:\n"
        "  sub sp, sp, #176\n"
        "  stp x19, x20, [sp, #0]\n"
        "  stp x21, x22, [sp, #16]\n"
        "  stp x23, x24, [sp, #32]\n"
        "  stp x25, x26, [sp, #48]\n"
        "  stp x27, x28, [sp, #64]\n"
        "  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n"
        "  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mov x2, sp\n"
        "  str x2, [x0]\n"
        "  mov sp, x1\n"
        "  ldp x19, x20, [sp, #0]\n"
        "  ldp x21, x22, [sp, #16]\n"
        "  ldp x23, x24, [sp, #32]\n"
        "  ldp x25, x26, [sp, #48]\n"
        "  ldp x27, x28, [sp, #64]\n"
        "  ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n"
        "  ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #176\n"
        "  ret\n"
        ".size kiln__fiber_switch, .-kiln__fiber_switch\n"
        ".globl kiln__fiber_start\n"
        ".hidden kiln__fiber_start\n"
        ".type kiln__fiber_start,%function\n"
        "kiln__fiber_start:\n"
        "  mov x0, x19\n"
        "  blr x20\n"
        "  brk #0\n"
        ".size kiln__fiber_start, .-kiln__fiber_start\n");
/* Initial frame (176 bytes): x19 = arg, x20 = fn, x29 = 0, x30 = kiln__fiber_start. */
static void *fiber_init(unsigned char *top, void (*fn)(void *), void *arg) {
  uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
  void **sp = (void **)(t - 176);
  memset(sp, 0, 176);
  sp[0] = arg;
  sp[1] = (void *)(uintptr_t)fn;
  sp[11] = (void *)(uintptr_t)kiln__fiber_start;
  return sp;
}
#else
#error "the CPU backend's fibers need a context switch for this architecture (fiber.c)"
#endif

typedef struct fitem {
  void *sp;
  kiln__cpu_wi wi;
  struct kiln__cpu_fibers *g;
  unsigned index;
  unsigned barriers; /* barriers passed */
  bool done;
#if defined(KILN_ASAN)
  void *fake_stack;
#endif
#if defined(KILN_TSAN)
  void *tsan;
#endif
} fitem;

struct kiln__cpu_fibers {
  size_t cap;
  fitem *items;
  unsigned char *stacks;
  void *main_sp;
  unsigned n, done;
  kiln__cpu_item_fn fn;
  void *const *args;
#if defined(KILN_ASAN)
  void *main_fake_stack;
  const void *main_bottom;
  size_t main_size;
#endif
#if defined(KILN_TSAN)
  void *main_tsan;
#endif
};

/* Switch from `from` (NULL: the thread's own stack) to `to` (NULL: the thread's own);
 * `exiting`: `from` never runs again. */
static void switch_to(kiln__cpu_fibers *g, fitem *from, fitem *to, bool exiting) {
  void **save = from ? &from->sp : &g->main_sp;
  void *target = to ? to->sp : g->main_sp;
#if defined(KILN_ASAN)
  void **fake = exiting ? NULL : from ? &from->fake_stack : &g->main_fake_stack;
  if (to)
    __sanitizer_start_switch_fiber(fake, g->stacks + (size_t)to->index * FIBER_STACK_BYTES,
                                   FIBER_STACK_BYTES - STAGGER((size_t)to->index));
  else
    __sanitizer_start_switch_fiber(fake, g->main_bottom, g->main_size);
#endif
#if defined(KILN_TSAN)
  __tsan_switch_to_fiber(to ? to->tsan : g->main_tsan, 0);
#endif
  (void)exiting;
  kiln__fiber_switch(save, target);
  /* resumed */
#if defined(KILN_ASAN)
  __sanitizer_finish_switch_fiber(from ? from->fake_stack : g->main_fake_stack, NULL, NULL);
#endif
}

/* The next work-item that has not returned, after `it` (it itself when none). */
static fitem *next_live(kiln__cpu_fibers *g, fitem *it) {
  if (!g->done) /* all live: the next one */
    return &g->items[it->index + 1 == g->n ? 0 : it->index + 1];
  for (unsigned k = 1; k <= g->n; k++) {
    fitem *c = &g->items[(it->index + k) % g->n];
    if (!c->done)
      return c;
  }
  return it;
}

static void barrier(void *ctx) {
  fitem *it = ctx;
  kiln__cpu_fibers *g = it->g;
  it->barriers++;
  fitem *next = next_live(g, it);
  if (next != it) {
    switch_to(g, it, next, false);
    kiln__cpu_set_current(&it->wi); /* resumed: this work-item's helpers again */
  }
}

static void fiber_main(void *arg) {
  fitem *it = arg;
  kiln__cpu_fibers *g = it->g;
#if defined(KILN_ASAN)
  if (it->index == 0) /* first switch of this group: it came from the thread's stack */
    __sanitizer_finish_switch_fiber(NULL, &g->main_bottom, &g->main_size);
  else
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
  kiln__cpu_set_current(&it->wi);
  g->fn(&it->wi, g->args);
  it->done = true;
  g->done++;
  fitem *next = g->done == g->n ? NULL : next_live(g, it);
  switch_to(g, it, next, true);
  __builtin_trap(); /* never resumed */
}

kiln__cpu_fibers *kiln__cpu_fibers_create(size_t items) {
  kiln__cpu_fibers *f = kiln__calloc(1, sizeof *f);
  if (!f)
    return NULL;
  f->cap = items;
  f->items = kiln__calloc(items, sizeof *f->items);
  f->stacks = kiln__alloc_aligned(items * FIBER_STACK_BYTES, 64);
  if (!f->items || !f->stacks) {
    kiln__cpu_fibers_destroy(f);
    return NULL;
  }
#if defined(KILN_TSAN)
  for (size_t i = 0; i < items; i++)
    f->items[i].tsan = __tsan_create_fiber(0);
#endif
  return f;
}

void kiln__cpu_fibers_destroy(kiln__cpu_fibers *f) {
  if (!f)
    return;
#if defined(KILN_TSAN)
  for (size_t i = 0; f->items && i < f->cap; i++)
    if (f->items[i].tsan)
      __tsan_destroy_fiber(f->items[i].tsan);
#endif
  if (f->items)
    kiln__free(f->items, f->cap * sizeof *f->items);
  if (f->stacks)
    kiln__free_aligned(f->stacks, f->cap * FIBER_STACK_BYTES, 64);
  kiln__free(f, sizeof *f);
}

bool kiln__cpu_fibers_run(kiln__cpu_fibers *f, const kiln__cpu_wi *group, kiln__cpu_item_fn fn,
                          void *const *args) {
  size_t n = group->lsz[0] * group->lsz[1] * group->lsz[2];
  f->n = (unsigned)n;
  f->done = 0;
  f->fn = fn;
  f->args = args;
#if defined(KILN_TSAN)
  f->main_tsan = __tsan_get_current_fiber();
#endif
  size_t i = 0;
  for (size_t z = 0; z < group->lsz[2]; z++)
    for (size_t y = 0; y < group->lsz[1]; y++)
      for (size_t x = 0; x < group->lsz[0]; x++, i++) {
        fitem *it = &f->items[i];
        it->wi = *group;
        it->wi.lid[0] = x;
        it->wi.lid[1] = y;
        it->wi.lid[2] = z;
        it->wi.barrier = barrier;
        it->wi.barrier_ctx = it;
        it->g = f;
        it->index = (unsigned)i;
        it->barriers = 0;
        it->done = false;
#if defined(KILN_ASAN)
        /* the frames a fiber of the last group left behind (fiber_main's, its last
         * switch's) keep their redzones poisoned: clear the top of the stack */
        __asan_unpoison_memory_region(STACK_TOP(f, i) - 8192, 8192);
#endif
        it->sp = fiber_init(STACK_TOP(f, i), fiber_main, it);
      }
  switch_to(f, NULL, &f->items[0], false);
  for (i = 1; i < n; i++)
    if (f->items[i].barriers != f->items[0].barriers)
      return false;
  return true;
}
