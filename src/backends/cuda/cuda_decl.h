/* SPDX-License-Identifier: MIT */
/* kiln's own declarations of the part of the CUDA driver API and NVRTC it uses: the
 * backend never includes the toolkit's cuda.h or nvrtc.h, so it builds without a
 * toolkit. Every name is the toolkit's with a `kiln_` prefix, so both sets can be
 * included in one file: tests/cuda/gen_decl_check.py reads this header and emits a
 * _Static_assert for every constant, type, struct member and function type below
 * against cuda.h/nvrtc.h (the build fails on any mismatch). Keep the forms the
 * generator reads: X(NAME, value) constants, `typedef ... kiln_NAME;` types on one
 * line, struct members one per line, F(name, toolkit_symbol, required, (params))
 * driver entries and N(name, required, (params)) NVRTC entries. */
#ifndef KILN_CUDA_DECL_H
#define KILN_CUDA_DECL_H

#include <stddef.h>
#include <stdint.h>

/* The CUDA version kiln is written against: every driver entry point is resolved
 * through cuGetProcAddress_v2 at this version (12.0: the first with _v2). */
#define KILN_CUDA_API_VERSION 12000

/* ---------------------------------------------------------------- types */
typedef int kiln_CUresult;
typedef int kiln_CUdevice;
typedef unsigned long long kiln_CUdeviceptr;
typedef struct CUctx_st *kiln_CUcontext;
typedef struct CUmod_st *kiln_CUmodule;
typedef struct CUfunc_st *kiln_CUfunction;
typedef struct CUstream_st *kiln_CUstream;
typedef struct CUevent_st *kiln_CUevent;
typedef int kiln_CUdevice_attribute;
typedef int kiln_CUfunction_attribute;
typedef int kiln_CUdriverProcAddressQueryResult;
typedef int kiln_CUjit_option;
typedef int kiln_CUpointer_attribute;
typedef void (*kiln_CUhostFn)(void *userData);
typedef size_t (*kiln_CUoccupancyB2DSize)(int blockSize);
typedef int kiln_nvrtcResult;
typedef struct _nvrtcProgram *kiln_nvrtcProgram;

typedef struct kiln_CUuuid {
  char bytes[16];
} kiln_CUuuid;

/* ---------------------------------------------------------------- constants */
/* CUresult values kiln names (errors it explains or acts on). */
#define KILN_CU_RESULTS(X)                          \
  X(CUDA_SUCCESS, 0)                                \
  X(CUDA_ERROR_INVALID_VALUE, 1)                    \
  X(CUDA_ERROR_OUT_OF_MEMORY, 2)                    \
  X(CUDA_ERROR_NOT_INITIALIZED, 3)                  \
  X(CUDA_ERROR_DEINITIALIZED, 4)                    \
  X(CUDA_ERROR_STUB_LIBRARY, 34)                    \
  X(CUDA_ERROR_DEVICE_UNAVAILABLE, 46)              \
  X(CUDA_ERROR_NO_DEVICE, 100)                      \
  X(CUDA_ERROR_INVALID_DEVICE, 101)                 \
  X(CUDA_ERROR_INVALID_IMAGE, 200)                  \
  X(CUDA_ERROR_INVALID_CONTEXT, 201)                \
  X(CUDA_ERROR_NO_BINARY_FOR_GPU, 209)              \
  X(CUDA_ERROR_ECC_UNCORRECTABLE, 214)              \
  X(CUDA_ERROR_INVALID_PTX, 218)                    \
  X(CUDA_ERROR_JIT_COMPILER_NOT_FOUND, 221)         \
  X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, 222)        \
  X(CUDA_ERROR_INVALID_SOURCE, 300)                 \
  X(CUDA_ERROR_FILE_NOT_FOUND, 301)                 \
  X(CUDA_ERROR_OPERATING_SYSTEM, 304)               \
  X(CUDA_ERROR_INVALID_HANDLE, 400)                 \
  X(CUDA_ERROR_NOT_FOUND, 500)                      \
  X(CUDA_ERROR_NOT_READY, 600)                      \
  X(CUDA_ERROR_ILLEGAL_ADDRESS, 700)                \
  X(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, 701)        \
  X(CUDA_ERROR_LAUNCH_TIMEOUT, 702)                 \
  X(CUDA_ERROR_CONTEXT_IS_DESTROYED, 709)           \
  X(CUDA_ERROR_ASSERT, 710)                         \
  X(CUDA_ERROR_HARDWARE_STACK_ERROR, 714)           \
  X(CUDA_ERROR_ILLEGAL_INSTRUCTION, 715)            \
  X(CUDA_ERROR_MISALIGNED_ADDRESS, 716)             \
  X(CUDA_ERROR_INVALID_ADDRESS_SPACE, 717)          \
  X(CUDA_ERROR_INVALID_PC, 718)                     \
  X(CUDA_ERROR_LAUNCH_FAILED, 719)                  \
  X(CUDA_ERROR_NOT_PERMITTED, 800)                  \
  X(CUDA_ERROR_NOT_SUPPORTED, 801)                  \
  X(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, 803)         \
  X(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, 804) \
  X(CUDA_ERROR_TIMEOUT, 909)                        \
  X(CUDA_ERROR_UNKNOWN, 999)

/* Other enum values kiln passes or reads. */
#define KILN_CU_CONSTANTS(X)                                   \
  X(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1)              \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 2)                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 3)                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 4)                    \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 5)                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 6)                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 7)                     \
  X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 8)        \
  X(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 10)                         \
  X(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 13)                        \
  X(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 14)                 \
  X(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 16)              \
  X(CU_DEVICE_ATTRIBUTE_INTEGRATED, 18)                        \
  X(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 33)                        \
  X(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, 34)                     \
  X(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 36)                 \
  X(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 37)           \
  X(CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 40)                \
  X(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 50)                     \
  X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 75)          \
  X(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 76)          \
  X(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 97) \
  X(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 0)                \
  X(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, 1)                    \
  X(CU_FUNC_ATTRIBUTE_NUM_REGS, 4)                             \
  X(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 8)        \
  X(CU_STREAM_NON_BLOCKING, 1)                                 \
  X(CU_MEMHOSTALLOC_PORTABLE, 1)                               \
  X(CU_MEMHOSTREGISTER_PORTABLE, 1)                            \
  X(CU_POINTER_ATTRIBUTE_MEMORY_TYPE, 2)                       \
  X(CU_MEMORYTYPE_HOST, 1)                                     \
  X(CU_MEMORYTYPE_DEVICE, 2)                                   \
  X(CU_EVENT_BLOCKING_SYNC, 1)                                 \
  X(CU_EVENT_DISABLE_TIMING, 2)                                \
  X(CU_GET_PROC_ADDRESS_DEFAULT, 0)                            \
  X(CU_GET_PROC_ADDRESS_SUCCESS, 0)                            \
  X(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND, 1)                   \
  X(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT, 2)             \
  X(CU_JIT_INFO_LOG_BUFFER, 3)                                 \
  X(CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, 4)                      \
  X(CU_JIT_ERROR_LOG_BUFFER, 5)                                \
  X(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, 6)                     \
  X(NVRTC_SUCCESS, 0)                                          \
  X(NVRTC_ERROR_OUT_OF_MEMORY, 1)                              \
  X(NVRTC_ERROR_INVALID_INPUT, 3)                              \
  X(NVRTC_ERROR_INVALID_OPTION, 5)                             \
  X(NVRTC_ERROR_COMPILATION, 6)

#define KILN_CU_ENUM_(name, value) kiln_##name = value,
enum { KILN_CU_RESULTS(KILN_CU_ENUM_) kiln_CU_RESULTS_END_ };
enum { KILN_CU_CONSTANTS(KILN_CU_ENUM_) kiln_CU_CONSTANTS_END_ };

/* ---------------------------------------------------------------- driver entries */
/* Bootstrap symbols, taken with dlsym (never through cuGetProcAddress). */
typedef kiln_CUresult (*kiln_PFN_cuGetProcAddress_v2)(
    const char *symbol, void **pfn, int cudaVersion, uint64_t flags,
    kiln_CUdriverProcAddressQueryResult *symbolStatus);
typedef kiln_CUresult (*kiln_PFN_cuDriverGetVersion)(int *driverVersion);

/* F(name given to cuGetProcAddress at KILN_CUDA_API_VERSION, the toolkit symbol that
 * name resolves to there, required (1) or optional (0), parameters). An optional entry
 * may be missing (recorded); a missing required one makes the backend unavailable. */
#define KILN_CU_ENTRIES(F)                                                                      \
  F(cuInit, cuInit, 1, (unsigned int Flags))                                                    \
  F(cuGetErrorName, cuGetErrorName, 1, (kiln_CUresult error, const char **pStr))                \
  F(cuGetErrorString, cuGetErrorString, 1, (kiln_CUresult error, const char **pStr))            \
  F(cuDeviceGetCount, cuDeviceGetCount, 1, (int *count))                                        \
  F(cuDeviceGet, cuDeviceGet, 1, (kiln_CUdevice * device, int ordinal))                         \
  F(cuDeviceGetName, cuDeviceGetName, 1, (char *name, int len, kiln_CUdevice dev))              \
  F(cuDeviceGetAttribute, cuDeviceGetAttribute, 1,                                              \
    (int *pi, kiln_CUdevice_attribute attrib, kiln_CUdevice dev))                               \
  F(cuDeviceTotalMem, cuDeviceTotalMem_v2, 1, (size_t * bytes, kiln_CUdevice dev))              \
  F(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId, 0, (char *pciBusId, int len, kiln_CUdevice dev))  \
  F(cuDeviceGetUuid, cuDeviceGetUuid_v2, 0, (kiln_CUuuid * uuid, kiln_CUdevice dev))            \
  F(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, 1,                                      \
    (kiln_CUcontext * pctx, kiln_CUdevice dev))                                                 \
  F(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, 1, (kiln_CUdevice dev))            \
  F(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2, 1, (kiln_CUdevice dev))                \
  F(cuCtxPushCurrent, cuCtxPushCurrent_v2, 1, (kiln_CUcontext ctx))                             \
  F(cuCtxPopCurrent, cuCtxPopCurrent_v2, 1, (kiln_CUcontext * pctx))                            \
  F(cuCtxSetCurrent, cuCtxSetCurrent, 1, (kiln_CUcontext ctx))                                  \
  F(cuCtxSynchronize, cuCtxSynchronize, 1, (void))                                              \
  F(cuMemGetInfo, cuMemGetInfo_v2, 1, (size_t * free, size_t * total))                          \
  F(cuMemAlloc, cuMemAlloc_v2, 1, (kiln_CUdeviceptr * dptr, size_t bytesize))                   \
  F(cuMemFree, cuMemFree_v2, 1, (kiln_CUdeviceptr dptr))                                        \
  F(cuMemHostAlloc, cuMemHostAlloc, 0, (void **pp, size_t bytesize, unsigned int Flags))        \
  F(cuMemFreeHost, cuMemFreeHost, 0, (void *p))                                                 \
  F(cuMemHostRegister, cuMemHostRegister_v2, 0, (void *p, size_t bytesize, unsigned int Flags)) \
  F(cuMemHostUnregister, cuMemHostUnregister, 0, (void *p))                                     \
  F(cuPointerGetAttribute, cuPointerGetAttribute, 0,                                            \
    (void *data, kiln_CUpointer_attribute attribute, kiln_CUdeviceptr ptr))                     \
  F(cuMemGetAddressRange, cuMemGetAddressRange_v2, 0,                                           \
    (kiln_CUdeviceptr * pbase, size_t * psize, kiln_CUdeviceptr dptr))                          \
  F(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync_v2, 1,                                                 \
    (kiln_CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, kiln_CUstream hStream)) \
  F(cuMemcpyDtoHAsync, cuMemcpyDtoHAsync_v2, 1,                                                 \
    (void *dstHost, kiln_CUdeviceptr srcDevice, size_t ByteCount, kiln_CUstream hStream))       \
  F(cuMemcpyDtoDAsync, cuMemcpyDtoDAsync_v2, 1,                                                 \
    (kiln_CUdeviceptr dstDevice, kiln_CUdeviceptr srcDevice, size_t ByteCount,                  \
     kiln_CUstream hStream))                                                                    \
  F(cuMemsetD8Async, cuMemsetD8Async, 1,                                                        \
    (kiln_CUdeviceptr dstDevice, unsigned char uc, size_t N, kiln_CUstream hStream))            \
  F(cuMemsetD16Async, cuMemsetD16Async, 1,                                                      \
    (kiln_CUdeviceptr dstDevice, unsigned short us, size_t N, kiln_CUstream hStream))           \
  F(cuMemsetD32Async, cuMemsetD32Async, 1,                                                      \
    (kiln_CUdeviceptr dstDevice, unsigned int ui, size_t N, kiln_CUstream hStream))             \
  F(cuStreamCreate, cuStreamCreate, 1, (kiln_CUstream * phStream, unsigned int Flags))          \
  F(cuStreamCreateWithPriority, cuStreamCreateWithPriority, 0,                                  \
    (kiln_CUstream * phStream, unsigned int flags, int priority))                               \
  F(cuCtxGetStreamPriorityRange, cuCtxGetStreamPriorityRange, 0,                                \
    (int *leastPriority, int *greatestPriority))                                                \
  F(cuStreamDestroy, cuStreamDestroy_v2, 1, (kiln_CUstream hStream))                            \
  F(cuStreamSynchronize, cuStreamSynchronize, 1, (kiln_CUstream hStream))                       \
  F(cuStreamWaitEvent, cuStreamWaitEvent, 1,                                                    \
    (kiln_CUstream hStream, kiln_CUevent hEvent, unsigned int Flags))                           \
  F(cuEventCreate, cuEventCreate, 1, (kiln_CUevent * phEvent, unsigned int Flags))              \
  F(cuEventDestroy, cuEventDestroy_v2, 1, (kiln_CUevent hEvent))                                \
  F(cuEventRecord, cuEventRecord, 1, (kiln_CUevent hEvent, kiln_CUstream hStream))              \
  F(cuEventQuery, cuEventQuery, 1, (kiln_CUevent hEvent))                                       \
  F(cuEventSynchronize, cuEventSynchronize, 1, (kiln_CUevent hEvent))                           \
  F(cuEventElapsedTime, cuEventElapsedTime, 1,                                                  \
    (float *pMilliseconds, kiln_CUevent hStart, kiln_CUevent hEnd))                             \
  F(cuModuleLoadDataEx, cuModuleLoadDataEx, 1,                                                  \
    (kiln_CUmodule * module, const void *image, unsigned int numOptions,                        \
     kiln_CUjit_option *options, void **optionValues))                                          \
  F(cuModuleUnload, cuModuleUnload, 1, (kiln_CUmodule hmod))                                    \
  F(cuModuleGetFunction, cuModuleGetFunction, 1,                                                \
    (kiln_CUfunction * hfunc, kiln_CUmodule hmod, const char *name))                            \
  F(cuFuncGetAttribute, cuFuncGetAttribute, 1,                                                  \
    (int *pi, kiln_CUfunction_attribute attrib, kiln_CUfunction hfunc))                         \
  F(cuFuncSetAttribute, cuFuncSetAttribute, 0,                                                  \
    (kiln_CUfunction hfunc, kiln_CUfunction_attribute attrib, int value))                       \
  F(cuOccupancyMaxPotentialBlockSize, cuOccupancyMaxPotentialBlockSize, 0,                      \
    (int *minGridSize, int *blockSize, kiln_CUfunction func,                                    \
     kiln_CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,                \
     int blockSizeLimit))                                                                       \
  F(cuLaunchKernel, cuLaunchKernel, 1,                                                          \
    (kiln_CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,    \
     unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,                    \
     unsigned int sharedMemBytes, kiln_CUstream hStream, void **kernelParams, void **extra))    \
  F(cuLaunchHostFunc, cuLaunchHostFunc, 0,                                                      \
    (kiln_CUstream hStream, kiln_CUhostFn fn, void *userData))

/* N(name, required, parameters): NVRTC entries returning nvrtcResult, taken with dlsym
 * (NVRTC has no versioned symbols); nvrtcGetErrorString returns a string, so it has
 * its own type. nvrtcGetCUBIN* exist from CUDA 11.1, nvrtcGetSupportedArchs from 11.2. */
typedef const char *(*kiln_PFN_nvrtcGetErrorString)(kiln_nvrtcResult result);
#define KILN_NVRTC_ENTRIES(N)                                                                     \
  N(nvrtcVersion, 1, (int *major, int *minor))                                                    \
  N(nvrtcGetNumSupportedArchs, 1, (int *numArchs))                                                \
  N(nvrtcGetSupportedArchs, 1, (int *supportedArchs))                                             \
  N(nvrtcCreateProgram, 1,                                                                        \
    (kiln_nvrtcProgram * prog, const char *src, const char *name, int numHeaders,                 \
     const char *const *headers, const char *const *includeNames))                                \
  N(nvrtcDestroyProgram, 1, (kiln_nvrtcProgram * prog))                                           \
  N(nvrtcCompileProgram, 1, (kiln_nvrtcProgram prog, int numOptions, const char *const *options)) \
  N(nvrtcGetPTXSize, 1, (kiln_nvrtcProgram prog, size_t * ptxSizeRet))                            \
  N(nvrtcGetPTX, 1, (kiln_nvrtcProgram prog, char *ptx))                                          \
  N(nvrtcGetCUBINSize, 1, (kiln_nvrtcProgram prog, size_t * cubinSizeRet))                        \
  N(nvrtcGetCUBIN, 1, (kiln_nvrtcProgram prog, char *cubin))                                      \
  N(nvrtcGetProgramLogSize, 1, (kiln_nvrtcProgram prog, size_t * logSizeRet))                     \
  N(nvrtcGetProgramLog, 1, (kiln_nvrtcProgram prog, char *log))

#endif
