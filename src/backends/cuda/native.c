/* SPDX-License-Identifier: MIT */
/* Interop: the CUDA objects behind kiln's handles (CUdevice, CUcontext — the device's
 * primary context —, CUstream, CUdeviceptr, CUfunction, CUmodule) for
 * kiln_*_get_native. The op only reads the handle's native record; it makes no driver
 * call and may run on any thread. Wrapping native objects is the buffer's and the
 * stream's own op (memory.c, stream.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

kiln_status kiln__cu_get_native(uint32_t tag, void *handle, kiln_native_kind kind, void *out) {
  switch (tag) {
  case KILN__TAG_DEVICE:
    if (kind == KILN_NATIVE_CU_DEVICE) {
      *(kiln_CUdevice *)out = kiln__cu_dev(handle)->dev;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_CONTEXT:
    if (kind == KILN_NATIVE_CU_CONTEXT) {
      *(kiln_CUcontext *)out = ((kiln__context *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_STREAM:
    if (kind == KILN_NATIVE_CU_STREAM) {
      *(kiln_CUstream *)out = ((cu_stream *)((kiln__stream *)handle)->native)->stream;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_BUFFER:
    if (kind == KILN_NATIVE_CU_DEVICEPTR) {
      *(kiln_CUdeviceptr *)out = (kiln_CUdeviceptr)(uintptr_t)((kiln__buffer *)handle)->native;
      return KILN_SUCCESS;
    }
    break;
  case KILN__TAG_KERNEL:
    if (kind == KILN_NATIVE_CU_FUNCTION && ((kiln__kernel *)handle)->native) {
      *(kiln_CUfunction *)out = ((cu_kernel *)((kiln__kernel *)handle)->native)->fn;
      return KILN_SUCCESS;
    }
    if (kind == KILN_NATIVE_CU_MODULE && ((kiln__kernel *)handle)->native) {
      *(kiln_CUmodule *)out = ((cu_kernel *)((kiln__kernel *)handle)->native)->module->mod;
      return KILN_SUCCESS;
    }
    break;
  default:
    break;
  }
  kiln__error(KILN_ERROR_UNSUPPORTED, "native kind %d does not apply to this CUDA-backend object",
              (int)kind);
  kiln__error_suggest("devices give CU_DEVICE, contexts CU_CONTEXT, streams CU_STREAM, buffers "
                      "CU_DEVICEPTR, kernels CU_FUNCTION or CU_MODULE");
  return KILN_ERROR_UNSUPPORTED;
}
