/* SPDX-License-Identifier: MIT */
/* Dialect preludes (OpenCL C 1.2, CUDA C++) and the source rewrite that adds kiln's
 * hidden parameters (prelude.h). The rewrite keeps every newline of the user's text,
 * so after `#line 1` the device compiler's line numbers are the user's. Pure text
 * work on caller buffers: no allocation, any thread. */
#include "core/prelude.h"

#include <stdbool.h>
#include <string.h>

#include "core/core.h"

/* Names both preludes define (docs/kernels.md is the reference):
 *   KILN_KERNEL KILN_GLOBAL KILN_LOCAL KILN_LOCAL_ARRAY KILN_RESTRICT KILN_INLINE
 *   kiln_global_id kiln_local_id kiln_group_id kiln_local_size kiln_num_groups
 *   kiln_global_size kiln_barrier, kiln_i8 ... kiln_u64 kiln_f32 kiln_f64,
 *   uchar ushort uint ulong, KILN_OPENCL or KILN_CUDA. */
/* The preludes are longer than the 4095 characters ISO C requires a compiler to take in
 * one string literal; GCC and Clang (the only compilers kiln builds with) take any. */
#pragma GCC diagnostic ignored "-Woverlength-strings"

/* The scoped_atomics level's names, the same on OpenCL and CUDA: each maps to the
 * target's kiln__x_* helper defined just before it. */
#define EXPLICIT_NAMES                                                                   \
  "#define kiln_atomic_add_explicit(p, v, o, s) kiln__x_add(p, v, o, s)\n"               \
  "#define kiln_atomic_sub_explicit(p, v, o, s) kiln__x_sub(p, v, o, s)\n"               \
  "#define kiln_atomic_min_explicit(p, v, o, s) kiln__x_min(p, v, o, s)\n"               \
  "#define kiln_atomic_max_explicit(p, v, o, s) kiln__x_max(p, v, o, s)\n"               \
  "#define kiln_atomic_and_explicit(p, v, o, s) kiln__x_and(p, v, o, s)\n"               \
  "#define kiln_atomic_or_explicit(p, v, o, s) kiln__x_or(p, v, o, s)\n"                 \
  "#define kiln_atomic_xor_explicit(p, v, o, s) kiln__x_xor(p, v, o, s)\n"               \
  "#define kiln_atomic_xchg_explicit(p, v, o, s) kiln__x_xchg(p, v, o, s)\n"             \
  "#define kiln_atomic_cmpxchg_explicit(p, c, v, o, s) kiln__x_cmpxchg(p, c, v, o, s)\n" \
  "#define kiln_atomic_load_explicit(p, o, s) kiln__x_load(p, o, s)\n"                   \
  "#define kiln_atomic_store_explicit(p, v, o, s) kiln__x_store(p, v, o, s)\n"

const char kiln__prelude_opencl[] =
    "/* kiln dialect prelude: OpenCL C 1.2 */\n"
    "#ifdef cl_khr_fp64\n"
    "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "#endif\n"
    "#define KILN_OPENCL 1\n"
    "#define KILN_KERNEL __kernel\n"
    "#define KILN_GLOBAL __global\n"
    "#define KILN_LOCAL __local\n"
    "#define KILN_LOCAL_ARRAY __local\n"
    "#define KILN_RESTRICT restrict\n"
    "#define KILN_INLINE static inline\n"
    "typedef char kiln_i8;\n"
    "typedef uchar kiln_u8;\n"
    "typedef short kiln_i16;\n"
    "typedef ushort kiln_u16;\n"
    "typedef int kiln_i32;\n"
    "typedef uint kiln_u32;\n"
    "typedef long kiln_i64;\n"
    "typedef ulong kiln_u64;\n"
    "typedef float kiln_f32;\n"
    "#ifdef cl_khr_fp64\n"
    "typedef double kiln_f64;\n"
    "#endif\n"
    "#define kiln_global_id(d) get_global_id(d)\n"
    "#define kiln_local_id(d) get_local_id(d)\n"
    "#define kiln_group_id(d) get_group_id(d)\n"
    "#define kiln_local_size(d) get_local_size(d)\n"
    "#define kiln_num_groups(d) get_num_groups(d)\n"
    "#define kiln_global_size(d) \\\n"
    "  ((size_t)((d) == 0 ? kiln__gs0 : (d) == 1 ? kiln__gs1 : kiln__gs2))\n"
    "#define kiln_barrier() barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)\n"
    /* atomics: 32-bit int/uint on global and local memory (OpenCL C 1.2 built-ins) */
    "#define kiln_atomic_add(p, v) atomic_add(p, v)\n"
    "#define kiln_atomic_sub(p, v) atomic_sub(p, v)\n"
    "#define kiln_atomic_min(p, v) atomic_min(p, v)\n"
    "#define kiln_atomic_max(p, v) atomic_max(p, v)\n"
    "#define kiln_atomic_and(p, v) atomic_and(p, v)\n"
    "#define kiln_atomic_or(p, v) atomic_or(p, v)\n"
    "#define kiln_atomic_xor(p, v) atomic_xor(p, v)\n"
    "#define kiln_atomic_xchg(p, v) atomic_xchg(p, v)\n"
    "#define kiln_atomic_cmpxchg(p, c, v) atomic_cmpxchg(p, c, v)\n"
    "#define kiln_atomic_inc(p) atomic_inc(p)\n"
    "#define kiln_atomic_dec(p) atomic_dec(p)\n"
    /* 64-bit: where the device has the extensions; elsewhere a call names what it lacks */
    "#ifdef cl_khr_int64_base_atomics\n"
    "#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable\n"
    "#define kiln_atomic64_add(p, v) atom_add(p, v)\n"
    "#define kiln_atomic64_sub(p, v) atom_sub(p, v)\n"
    "#define kiln_atomic64_xchg(p, v) atom_xchg(p, v)\n"
    "#define kiln_atomic64_cmpxchg(p, c, v) atom_cmpxchg(p, c, v)\n"
    "#define kiln_atomic64_inc(p) atom_inc(p)\n"
    "#define kiln_atomic64_dec(p) atom_dec(p)\n"
    "#else\n"
    "#define kiln_atomic64_add(p, v) kiln__device_lacks_cl_khr_int64_base_atomics(p, v)\n"
    "#define kiln_atomic64_sub(p, v) kiln__device_lacks_cl_khr_int64_base_atomics(p, v)\n"
    "#define kiln_atomic64_xchg(p, v) kiln__device_lacks_cl_khr_int64_base_atomics(p, v)\n"
    "#define kiln_atomic64_cmpxchg(p, c, v) kiln__device_lacks_cl_khr_int64_base_atomics(p, v)\n"
    "#define kiln_atomic64_inc(p) kiln__device_lacks_cl_khr_int64_base_atomics(p)\n"
    "#define kiln_atomic64_dec(p) kiln__device_lacks_cl_khr_int64_base_atomics(p)\n"
    "#endif\n"
    "#ifdef cl_khr_int64_extended_atomics\n"
    "#pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable\n"
    "#define kiln_atomic64_min(p, v) atom_min(p, v)\n"
    "#define kiln_atomic64_max(p, v) atom_max(p, v)\n"
    "#define kiln_atomic64_and(p, v) atom_and(p, v)\n"
    "#define kiln_atomic64_or(p, v) atom_or(p, v)\n"
    "#define kiln_atomic64_xor(p, v) atom_xor(p, v)\n"
    "#else\n"
    "#define kiln_atomic64_min(p, v) kiln__device_lacks_cl_khr_int64_extended_atomics(p, v)\n"
    "#define kiln_atomic64_max(p, v) kiln__device_lacks_cl_khr_int64_extended_atomics(p, v)\n"
    "#define kiln_atomic64_and(p, v) kiln__device_lacks_cl_khr_int64_extended_atomics(p, v)\n"
    "#define kiln_atomic64_or(p, v) kiln__device_lacks_cl_khr_int64_extended_atomics(p, v)\n"
    "#define kiln_atomic64_xor(p, v) kiln__device_lacks_cl_khr_int64_extended_atomics(p, v)\n"
    "#endif\n"
    /* float add: a compare-exchange loop on the bits (global and local) */
    "__attribute__((overloadable)) static inline float kiln__fadd(volatile __global float *p,\n"
    "                                                             float v) {\n"
    "  uint o = as_uint(*p), e;\n"
    "  do { e = o; o = atomic_cmpxchg((volatile __global uint *)p, e, as_uint(as_float(e) + v)); }"
    " while (o != e);\n"
    "  return as_float(o);\n"
    "}\n"
    "__attribute__((overloadable)) static inline float kiln__fadd(volatile __local float *p,\n"
    "                                                             float v) {\n"
    "  uint o = as_uint(*p), e;\n"
    "  do { e = o; o = atomic_cmpxchg((volatile __local uint *)p, e, as_uint(as_float(e) + v)); }"
    " while (o != e);\n"
    "  return as_float(o);\n"
    "}\n"
    "#define kiln_atomic_add_f32(p, v) kiln__fadd(p, v)\n"
    "#define kiln_mem_fence() mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)\n"
    "#define kiln_read_mem_fence() read_mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)\n"
    "#define kiln_write_mem_fence() write_mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)\n"
    "#define kiln_min(a, b) min(a, b)\n"
    "#define kiln_max(a, b) max(a, b)\n"
    /* feature level scoped_atomics: OpenCL C 3.0, with which kiln compiles the programs
     * that declare it (-cl-std=CL3.0 -DKILN__LEVEL_SCOPED_ATOMICS: PoCL compiles every
     * program as 3.0, and the others need not pay for these functions); kiln refuses
     * its names in programs that do not declare it */
    "#define KILN_FEATURE_LEVEL(name) enum { kiln__level_##name = 1 }\n"
    "#if defined(KILN__LEVEL_SCOPED_ATOMICS) && __OPENCL_C_VERSION__ >= 300\n"
    "#define KILN_ORDER_RELAXED memory_order_relaxed\n"
    "#define KILN_ORDER_ACQUIRE memory_order_acquire\n"
    "#define KILN_ORDER_RELEASE memory_order_release\n"
    "#define KILN_ORDER_ACQ_REL memory_order_acq_rel\n"
    "#define KILN_ORDER_SEQ_CST memory_order_seq_cst\n"
    "#define KILN_SCOPE_WORK_GROUP memory_scope_work_group\n"
    "#define KILN_SCOPE_DEVICE memory_scope_device\n"
    "#define KILN__XO __attribute__((overloadable)) static inline\n"
    "#define KILN__XF(T, AT, AS, OP, FN)                                                   \\\n"
    "  KILN__XO T kiln__x_##OP(volatile AS T *p, T v, memory_order o, memory_scope s) {    \\\n"
    "    return FN((volatile AS AT *)p, v, o, s); }\n"
    /* a failed compare-exchange only loads: no release in its order */
    "#define KILN__XT(T, AT, AS)                                                           \\\n"
    "  KILN__XF(T, AT, AS, add, atomic_fetch_add_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, sub, atomic_fetch_sub_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, min, atomic_fetch_min_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, max, atomic_fetch_max_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, and, atomic_fetch_and_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, or, atomic_fetch_or_explicit)                                   \\\n"
    "  KILN__XF(T, AT, AS, xor, atomic_fetch_xor_explicit)                                 \\\n"
    "  KILN__XF(T, AT, AS, xchg, atomic_exchange_explicit)                                 \\\n"
    "  KILN__XO T kiln__x_load(const volatile AS T *p, memory_order o, memory_scope s) {   \\\n"
    "    return atomic_load_explicit((volatile AS AT *)p, o, s); }                         \\\n"
    "  KILN__XO void kiln__x_store(volatile AS T *p, T v, memory_order o, memory_scope s) { \\\n"
    "    atomic_store_explicit((volatile AS AT *)p, v, o, s); }                            \\\n"
    "  KILN__XO T kiln__x_cmpxchg(volatile AS T *p, T c, T v, memory_order o,              \\\n"
    "                             memory_scope s) {                                        \\\n"
    "    T e = c;                                                                          \\\n"
    "    atomic_compare_exchange_strong_explicit((volatile AS AT *)p, &e, v, o,            \\\n"
    "      o == memory_order_release ? memory_order_relaxed                                \\\n"
    "      : o == memory_order_acq_rel ? memory_order_acquire : o, s);                     \\\n"
    "    return e; }\n"
    "KILN__XT(int, atomic_int, __global)\n"
    "KILN__XT(uint, atomic_uint, __global)\n"
    "KILN__XT(int, atomic_int, __local)\n"
    "KILN__XT(uint, atomic_uint, __local)\n"
    "#if defined(cl_khr_int64_base_atomics) && defined(cl_khr_int64_extended_atomics)\n"
    "KILN__XT(long, atomic_long, __global)\n"
    "KILN__XT(ulong, atomic_ulong, __global)\n"
    "KILN__XT(long, atomic_long, __local)\n"
    "KILN__XT(ulong, atomic_ulong, __local)\n"
    "#endif\n" EXPLICIT_NAMES
    "#define kiln_fence(o, s) atomic_work_item_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE, "
    "o, s)\n"
    "#endif\n";

const char kiln__prelude_cuda[] =
    "/* kiln dialect prelude: CUDA C++ (NVRTC) */\n"
    "#define KILN_CUDA 1\n"
    "#define KILN_KERNEL extern \"C\" __global__\n"
    "#define KILN_GLOBAL\n"
    "#define KILN_LOCAL\n"
    "#define KILN_LOCAL_ARRAY __shared__\n"
    "#define KILN_RESTRICT __restrict__\n"
    "#define restrict __restrict__\n"
    "#define KILN_INLINE static __device__ inline\n"
    "typedef unsigned char uchar;\n"
    "typedef unsigned short ushort;\n"
    "typedef unsigned int uint;\n"
    /* as glibc's sys/types.h spells them, so host-compiled C++ may see both */
    "typedef unsigned long ulong;\n"
    "typedef signed char kiln_i8;\n"
    "typedef unsigned char kiln_u8;\n"
    "typedef short kiln_i16;\n"
    "typedef unsigned short kiln_u16;\n"
    "typedef int kiln_i32;\n"
    "typedef unsigned int kiln_u32;\n"
    "typedef long long kiln_i64;\n"
    "typedef unsigned long long kiln_u64;\n"
    "typedef float kiln_f32;\n"
    "typedef double kiln_f64;\n"
    "#define kiln__pick(v, d) ((d) == 0 ? (v).x : (d) == 1 ? (v).y : (v).z)\n"
    "#define kiln_local_id(d) ((size_t)kiln__pick(threadIdx, d))\n"
    "#define kiln_group_id(d) ((size_t)kiln__pick(blockIdx, d))\n"
    "#define kiln_local_size(d) ((size_t)kiln__pick(blockDim, d))\n"
    "#define kiln_num_groups(d) ((size_t)kiln__pick(gridDim, d))\n"
    "#define kiln_global_id(d) (kiln_group_id(d) * kiln_local_size(d) + kiln_local_id(d))\n"
    "#define kiln_global_size(d) \\\n"
    "  ((size_t)((d) == 0 ? kiln__gs0 : (d) == 1 ? kiln__gs1 : kiln__gs2))\n"
    "#define kiln_barrier() __syncthreads()\n"
    "#define kiln_atomic_add(p, v) atomicAdd(p, v)\n"
    "#define kiln_atomic_sub(p, v) atomicSub(p, v)\n"
    "#define kiln_atomic_min(p, v) atomicMin(p, v)\n"
    "#define kiln_atomic_max(p, v) atomicMax(p, v)\n"
    "#define kiln_atomic_and(p, v) atomicAnd(p, v)\n"
    "#define kiln_atomic_or(p, v) atomicOr(p, v)\n"
    "#define kiln_atomic_xor(p, v) atomicXor(p, v)\n"
    "#define kiln_atomic_xchg(p, v) atomicExch(p, v)\n"
    "#define kiln_atomic_cmpxchg(p, c, v) atomicCAS(p, c, v)\n"
    "#define kiln_atomic_inc(p) atomicAdd(p, 1)\n"
    "#define kiln_atomic_dec(p) atomicSub(p, 1)\n"
    "#define kiln_atomic_add_f32(p, v) atomicAdd(p, v)\n"
    /* 64-bit: CUDA's own are on unsigned long long (min/max also long long); every
     * 8-byte integer type goes through them */
    "#define KILN__U64 unsigned long long\n"
    "#define KILN__A64(T, MIN_T)                                                           \\\n"
    "  static __device__ inline T kiln__a64_add(T *p, T v) {                            \\\n"
    "    return (T)atomicAdd((KILN__U64 *)p, (KILN__U64)v); }                          \\\n"
    "  static __device__ inline T kiln__a64_sub(T *p, T v) {                            \\\n"
    "    return (T)atomicAdd((KILN__U64 *)p, (KILN__U64)0 - (KILN__U64)v); }            \\\n"
    "  static __device__ inline T kiln__a64_and(T *p, T v) {                            \\\n"
    "    return (T)atomicAnd((KILN__U64 *)p, (KILN__U64)v); }                          \\\n"
    "  static __device__ inline T kiln__a64_or(T *p, T v) {                             \\\n"
    "    return (T)atomicOr((KILN__U64 *)p, (KILN__U64)v); }                           \\\n"
    "  static __device__ inline T kiln__a64_xor(T *p, T v) {                            \\\n"
    "    return (T)atomicXor((KILN__U64 *)p, (KILN__U64)v); }                          \\\n"
    "  static __device__ inline T kiln__a64_xchg(T *p, T v) {                           \\\n"
    "    return (T)atomicExch((KILN__U64 *)p, (KILN__U64)v); }                         \\\n"
    "  static __device__ inline T kiln__a64_cmpxchg(T *p, T c, T v) {                   \\\n"
    "    return (T)atomicCAS((KILN__U64 *)p, (KILN__U64)c, (KILN__U64)v); }            \\\n"
    "  static __device__ inline T kiln__a64_min(T *p, T v) {                            \\\n"
    "    return (T)atomicMin((MIN_T *)p, (MIN_T)v); }                                  \\\n"
    "  static __device__ inline T kiln__a64_max(T *p, T v) {                            \\\n"
    "    return (T)atomicMax((MIN_T *)p, (MIN_T)v); }\n"
    "KILN__A64(long long, long long)\n"
    "KILN__A64(unsigned long long, unsigned long long)\n"
    "KILN__A64(long, long long)\n"
    "KILN__A64(unsigned long, unsigned long long)\n"
    "#define kiln_atomic64_add(p, v) kiln__a64_add(p, v)\n"
    "#define kiln_atomic64_sub(p, v) kiln__a64_sub(p, v)\n"
    "#define kiln_atomic64_min(p, v) kiln__a64_min(p, v)\n"
    "#define kiln_atomic64_max(p, v) kiln__a64_max(p, v)\n"
    "#define kiln_atomic64_and(p, v) kiln__a64_and(p, v)\n"
    "#define kiln_atomic64_or(p, v) kiln__a64_or(p, v)\n"
    "#define kiln_atomic64_xor(p, v) kiln__a64_xor(p, v)\n"
    "#define kiln_atomic64_xchg(p, v) kiln__a64_xchg(p, v)\n"
    "#define kiln_atomic64_cmpxchg(p, c, v) kiln__a64_cmpxchg(p, c, v)\n"
    "#define kiln_atomic64_inc(p) kiln__a64_add(p, 1)\n"
    "#define kiln_atomic64_dec(p) kiln__a64_sub(p, 1)\n"
    "#define kiln_mem_fence() __threadfence()\n"
    "#define kiln_read_mem_fence() __threadfence()\n"
    "#define kiln_write_mem_fence() __threadfence()\n"
    "#define kiln_min(a, b) min(a, b)\n"
    "#define kiln_max(a, b) max(a, b)\n"
    "extern __shared__ __align__(16) unsigned char kiln__shared[];\n"
    /* feature level scoped_atomics: the _block intrinsics for work-group scope (compute
     * capability 6.0), the plain ones for device scope; CUDA's atomics are relaxed, so
     * an order is fences around them (__threadfence_block / __threadfence) */
    "#define KILN_FEATURE_LEVEL(name) enum { kiln__level_##name = 1 }\n"
    "#define KILN_ORDER_RELAXED 0\n"
    "#define KILN_ORDER_ACQUIRE 2\n"
    "#define KILN_ORDER_RELEASE 3\n"
    "#define KILN_ORDER_ACQ_REL 4\n"
    "#define KILN_ORDER_SEQ_CST 5\n"
    "#define KILN_SCOPE_WORK_GROUP 1\n"
    "#define KILN_SCOPE_DEVICE 2\n"
    "static __device__ inline void kiln__fence(int o, int s) {\n"
    "  if (o == KILN_ORDER_RELAXED) return;\n"
    "  if (s == KILN_SCOPE_WORK_GROUP) __threadfence_block(); else __threadfence(); }\n"
    "static __device__ inline void kiln__pre(int o, int s) {\n"
    "  if (o == KILN_ORDER_RELEASE || o == KILN_ORDER_ACQ_REL || o == KILN_ORDER_SEQ_CST)\n"
    "    kiln__fence(o, s); }\n"
    "static __device__ inline void kiln__post(int o, int s) {\n"
    "  if (o == KILN_ORDER_ACQUIRE || o == KILN_ORDER_ACQ_REL || o == KILN_ORDER_SEQ_CST)\n"
    "    kiln__fence(o, s); }\n"
    "#define KILN__XC(T, U, OP, FN, NEG)                                                   \\\n"
    "  static __device__ inline T kiln__x_##OP(T *p, T v, int o, int s) {                 \\\n"
    "    kiln__pre(o, s);                                                                  \\\n"
    "    T r = s == KILN_SCOPE_WORK_GROUP ? (T)FN##_block((U *)p, NEG(U)v)                 \\\n"
    "                                     : (T)FN((U *)p, NEG(U)v);                        \\\n"
    "    kiln__post(o, s); return r; }\n"
    "#define KILN__XCT(T, U, MIN_U, SUB_FN, SUB_NEG)                                       \\\n"
    "  KILN__XC(T, U, add, atomicAdd, ) KILN__XC(T, U, sub, SUB_FN, SUB_NEG)               \\\n"
    "  KILN__XC(T, MIN_U, min, atomicMin, ) KILN__XC(T, MIN_U, max, atomicMax, )           \\\n"
    "  KILN__XC(T, U, and, atomicAnd, ) KILN__XC(T, U, or, atomicOr, )                     \\\n"
    "  KILN__XC(T, U, xor, atomicXor, ) KILN__XC(T, U, xchg, atomicExch, )                 \\\n"
    "  static __device__ inline T kiln__x_cmpxchg(T *p, T c, T v, int o, int s) {          \\\n"
    "    kiln__pre(o, s);                                                                  \\\n"
    "    T r = s == KILN_SCOPE_WORK_GROUP ? (T)atomicCAS_block((U *)p, (U)c, (U)v)         \\\n"
    "                                     : (T)atomicCAS((U *)p, (U)c, (U)v);              \\\n"
    "    kiln__post(o, s); return r; }                                                     \\\n"
    "  static __device__ inline T kiln__x_load(const T *p, int o, int s) {                 \\\n"
    "    if (o == KILN_ORDER_SEQ_CST) kiln__fence(o, s);                                   \\\n"
    "    T r = *(const volatile T *)p; kiln__post(o, s); return r; }                       \\\n"
    "  static __device__ inline void kiln__x_store(T *p, T v, int o, int s) {              \\\n"
    "    kiln__pre(o, s); *(volatile T *)p = v;                                            \\\n"
    "    if (o == KILN_ORDER_SEQ_CST) kiln__fence(o, s); }\n"
    "KILN__XCT(int, int, int, atomicSub, )\n"
    "KILN__XCT(unsigned int, unsigned int, unsigned int, atomicSub, )\n"
    /* no 64-bit atomicSub: add the two's complement */
    "KILN__XCT(long long, KILN__U64, long long, atomicAdd, (KILN__U64)0 -)\n"
    "KILN__XCT(unsigned long long, KILN__U64, KILN__U64, atomicAdd, (KILN__U64)0 -)\n"
    "KILN__XCT(long, KILN__U64, long long, atomicAdd, (KILN__U64)0 -)\n"
    "KILN__XCT(unsigned long, KILN__U64, KILN__U64, atomicAdd, (KILN__U64)0 -)\n" EXPLICIT_NAMES
    "#define kiln_fence(o, s) kiln__fence(o, s)\n";

static const char hidden_gs[] = "kiln_u64 kiln__gs0, kiln_u64 kiln__gs1, kiln_u64 kiln__gs2";
static const char hidden_wi[] = "const kiln__wi *const kiln__wi_";

const char *kiln__prelude_of(kiln__dialect_target target) {
  switch (target) {
  case KILN__TARGET_OPENCL:
    return kiln__prelude_opencl;
  case KILN__TARGET_CUDA:
    return kiln__prelude_cuda;
  case KILN__TARGET_C:
    return kiln__prelude_c;
  }
  return NULL;
}
static const char line_directive[] = "#line 1\n";

/* Output that counts everything and stores what fits (keeping room for the NUL). */
typedef struct emitter {
  char *out;
  size_t cap;
  size_t len;
} emitter;

static void emit(emitter *e, const char *s, size_t n) {
  if (e->out && e->len + 1 < e->cap) {
    size_t room = e->cap - 1 - e->len;
    memcpy(e->out + e->len, s, n < room ? n : room);
  }
  e->len += n;
}
static void emit_str(emitter *e, const char *s) {
  emit(e, s, strlen(s));
}

/* Newlines in src[begin, end): replaced text keeps them so lines stay in place. */
static void emit_newlines_of(emitter *e, const char *src, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i++)
    if (src[i] == '\n')
      emit(e, "\n", 1);
}

/* Offset of the `void` of a `(void)` list in src(open, close), or close when none. */
static size_t find_void(const char *src, size_t open, size_t close) {
  size_t i = open + 1;
  while (i < close) {
    if (src[i] == '/' && i + 1 < close && src[i + 1] == '*') {
      i += 2;
      while (i + 1 < close && !(src[i] == '*' && src[i + 1] == '/'))
        i++;
      i += 2;
    } else if (src[i] == '/' && i + 1 < close && src[i + 1] == '/') {
      while (i < close && src[i] != '\n')
        i++;
    } else if (i + 4 <= close && !memcmp(src + i, "void", 4)) {
      return i;
    } else {
      i++;
    }
  }
  return close;
}

/* The spans of one kernel are inside the source and in order. */
static bool spans_ok(const kiln__kfunc *f, size_t len, size_t after) {
  if (f->open_paren < after || f->open_paren >= f->close_paren || f->close_paren >= f->body_open ||
      f->body_open >= len)
    return false;
  size_t prev = f->open_paren;
  for (uint32_t i = 0; i < f->param_count; i++) {
    const kiln__kparam *p = &f->params[i];
    if (p->begin <= prev || p->end <= p->begin || p->end > f->close_paren)
      return false;
    prev = p->end - 1;
  }
  return f->param_count <= KILN_MAX_KERNEL_ARGS;
}

kiln_status kiln__dialect_rewrite(const char *src, size_t len, const kiln__kfunc *funcs,
                                  size_t count, kiln__dialect_target target, char *out,
                                  size_t out_cap, size_t *out_len) {
  *out_len = 0;
  const char *prelude = kiln__prelude_of(target);
  if (!prelude)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "dialect target %d is none of OpenCL (0), CUDA (1) and C (2)", (int)target);
  bool cuda = target == KILN__TARGET_CUDA;
  const char *hidden = target == KILN__TARGET_C ? hidden_wi : hidden_gs;
  emitter e = {out, out_cap, 0};
  emit_str(&e, prelude);
  /* C: the host compiler names the file in its messages; call it what the others do */
  emit_str(&e, target == KILN__TARGET_C ? "#line 1 \"<source>\"\n" : line_directive);

  size_t cursor = 0;
  for (size_t k = 0; k < count; k++) {
    const kiln__kfunc *f = &funcs[k];
    if (!spans_ok(f, len, cursor))
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "kernel '%s' (index %zu): its parameter spans do not fit a source "
                         "of %zu bytes; pass the kernels kiln__kparse found in this source",
                         f->name, k, len);
    if (target == KILN__TARGET_OPENCL && f->no_sizes) {
      /* it never reads kiln_global_size(): its text stays as written */
    } else if (f->param_count == 0) {
      /* `()` or `(void)`: the hidden parameters are the whole list */
      emit(&e, src + cursor, f->open_paren + 1 - cursor);
      emit_str(&e, hidden);
      size_t v = find_void(src, f->open_paren, f->close_paren);
      if (v < f->close_paren) {
        emit(&e, src + f->open_paren + 1, v - (f->open_paren + 1));
        emit(&e, "    ", 4);
        cursor = v + 4;
      } else {
        cursor = f->open_paren + 1;
      }
    } else {
      for (uint32_t i = 0; cuda && i < f->param_count; i++) {
        const kiln__kparam *p = &f->params[i];
        if (p->kind != KILN_PARAM_LOCAL)
          continue;
        emit(&e, src + cursor, p->begin - cursor);
        emit_str(&e, "kiln_u32 kiln__lo_");
        emit_str(&e, p->name);
        emit_newlines_of(&e, src, p->begin, p->end);
        cursor = p->end;
      }
      emit(&e, src + cursor, f->close_paren - cursor);
      emit_str(&e, ", ");
      emit_str(&e, hidden);
      cursor = f->close_paren;
    }
    emit(&e, src + cursor, f->body_open + 1 - cursor);
    cursor = f->body_open + 1;
    for (uint32_t i = 0; cuda && i < f->param_count; i++) {
      const kiln__kparam *p = &f->params[i];
      if (p->kind != KILN_PARAM_LOCAL)
        continue;
      /* " T *p = (T *)(kiln__shared + kiln__lo_p);" on the line of the '{' */
      emit_str(&e, " ");
      emit_str(&e, p->type);
      emit_str(&e, " *");
      emit_str(&e, p->name);
      emit_str(&e, " = (");
      emit_str(&e, p->type);
      emit_str(&e, " *)(kiln__shared + kiln__lo_");
      emit_str(&e, p->name);
      emit_str(&e, ");");
    }
    if (target == KILN__TARGET_C) {
      /* the kernel's entry points, on the line of its closing '}' */
      size_t end = kiln__kernel_body_end(src, len, f->body_open);
      if (k + 1 < count && end > funcs[k + 1].open_paren)
        end = cursor; /* braces the scan cannot follow: keep the next kernel intact */
      /* the body, its local arrays turned into the group's storage */
      size_t room = e.out && e.len + 1 < e.cap ? e.cap - e.len : 0;
      e.len += kiln__rewrite_c_body(src, len, f, cursor, end, room ? e.out + e.len : NULL, room);
      cursor = end;
      room = e.out && e.len + 1 < e.cap ? e.cap - e.len : 0;
      e.len +=
          kiln__rewrite_c_entries(src, len, funcs, count, k, room ? e.out + e.len : NULL, room);
    }
  }
  emit(&e, src + cursor, len - cursor);

  *out_len = e.len;
  if (out && out_cap)
    out[e.len < out_cap ? e.len : out_cap - 1] = '\0';
  if (out && e.len + 1 > out_cap)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "the rewritten kernel source needs %zu bytes (with its terminating "
                       "NUL), the buffer holds %zu",
                       e.len + 1, out_cap);
  return KILN_SUCCESS;
}
