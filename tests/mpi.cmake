# SPDX-License-Identifier: MIT
# libkiln_mpi's tests (tests/mpi/test_mpi.c, docs/mpi.md), included by
# tests/CMakeLists.txt: each test runs as `mpirun -np 2 test_mpi TEST BACKEND`, one
# ctest entry mpi.<backend>.<test>. Open MPI is kept local and quick: shared memory and
# self only (btl self,vader; no network probing), oversubscribed on 2 cores, allowed to
# run as root (the build machines' user), one thread per rank unbound. Skipped visibly
# (a configure message, no entries) when CMake found no MPI; not in the TSan tree (no
# stress tests here).
if(NOT KILN_HAVE_MPI OR KILN_TESTS_STRESS_ONLY)
  if(NOT KILN_HAVE_MPI)
    message(STATUS "kiln: MPI tests skipped (no MPI)")
  endif()
  return()
endif()

add_executable(kiln_test_mpi ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi.c)
set_target_properties(kiln_test_mpi PROPERTIES
  OUTPUT_NAME test_mpi RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/mpi)
target_compile_options(kiln_test_mpi PRIVATE ${KILN_TEST_C_WARNINGS})
target_link_libraries(kiln_test_mpi PRIVATE kiln_mpi kiln_testsupport)
add_dependencies(kiln-tests kiln_test_mpi)

# The C++ compile check of include/kiln/mpi.h (header.init_macros_covered counts it).
add_executable(kiln_mpi_header_test_cxx ${CMAKE_CURRENT_SOURCE_DIR}/cxx/mpi_header_test.cpp)
target_compile_features(kiln_mpi_header_test_cxx PRIVATE cxx_std_17)
set_target_properties(kiln_mpi_header_test_cxx PROPERTIES CXX_EXTENSIONS OFF)
target_compile_options(kiln_mpi_header_test_cxx PRIVATE -Wall -Wextra -Wpedantic -Werror)
# Open MPI's deprecated C++ bindings need libmpi_cxx: a C++ program using only the C API
# skips them, as this one does.
target_compile_definitions(kiln_mpi_header_test_cxx PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
target_link_libraries(kiln_mpi_header_test_cxx PRIVATE kiln_mpi)
add_dependencies(kiln-tests kiln_mpi_header_test_cxx)
add_test(NAME header.mpi_cxx17 COMMAND kiln_mpi_header_test_cxx)
kiln_test_properties(header.mpi_cxx17 LABELS unit)

set(KILN_MPI_RUN ${KILN_MPIEXEC} -np 2 --oversubscribe --bind-to none)
set(KILN_MPI_ENV
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_btl_vader_single_copy_mechanism=none
  OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm_rsh_agent=false
  OMPI_MCA_mpi_yield_when_idle=1)
if(KILN_SANITIZE STREQUAL "asan")
  # Open MPI leaks what MPI_Init allocates and dlcloses its components at MPI_Finalize:
  # the slow unwinder reaches the Open MPI library that made each block, and
  # mpi/lsan-openmpi.supp names only Open MPI's libraries (kiln's leaks stay reported).
  list(APPEND KILN_MPI_ENV
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:intercept_tls_get_addr=0:fast_unwind_on_malloc=0:suppressions=${CMAKE_CURRENT_SOURCE_DIR}/asan.supp"
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/mpi/lsan-openmpi.supp")
endif()

# kiln_mpi_test(<backend> <test>... [ENV var=value...])
function(kiln_mpi_test backend)
  cmake_parse_arguments(KMT "" "" "ENV" ${ARGN})
  foreach(t ${KMT_UNPARSED_ARGUMENTS})
    set(name mpi.${backend}.${t})
    add_test(NAME ${name} COMMAND ${KILN_MPI_RUN} $<TARGET_FILE:kiln_test_mpi> ${t} ${backend})
    kiln_test_properties(${name} LABELS ${backend} unit mpi TIMEOUT 90)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT ${KILN_MPI_ENV} ${KMT_ENV})
  endforeach()
endfunction()

if(KILN_SANITIZE STREQUAL "asan")
  # Each run costs ~3.5 s here (the slow unwinder above): the tests that exercise
  # libkiln_mpi's memory and error paths, not every variant (make check's budget).
  kiln_mpi_test(cpu sendrecv async_chain bad_args alloc_sweep)
  kiln_mpi_test(opencl sendrecv async_chain)
else()
  kiln_mpi_test(cpu init_info sendrecv sendrecv_staged async_chain async_many collectives bad_args
                funneled alloc_sweep)
  kiln_mpi_test(opencl sendrecv async_chain async_many collectives)
endif()
kiln_mpi_test(mock mock_device_loss ENV KILN_MOCK=1)
# The cuda backend on the fake libcuda (tests/cuda/fake_libcuda.c): staged transfers and
# the receive gates (host functions in stream order), label cuda-nogpu.
if(TARGET kiln_fake_cuda)
  set(KILN_MPI_FAKE_CUDA_ENV "KILN_CUDA_LIBRARY=$<TARGET_FILE:kiln_fake_cuda>"
                             KILN_FAKE_CUDA_LAUNCH=emulate)
  set(cuda_fake_tests sendrecv async_chain)
  if(KILN_SANITIZE STREQUAL "asan")
    set(cuda_fake_tests async_chain) # the gates' path; make check's budget
  endif()
  foreach(t ${cuda_fake_tests})
    add_test(NAME mpi.cuda-fake.${t}
             COMMAND ${KILN_MPI_RUN} $<TARGET_FILE:kiln_test_mpi> ${t} cuda)
    kiln_test_properties(mpi.cuda-fake.${t} LABELS cuda-nogpu unit mpi TIMEOUT 90)
    set_property(TEST mpi.cuda-fake.${t} APPEND PROPERTY ENVIRONMENT ${KILN_MPI_ENV}
                 ${KILN_MPI_FAKE_CUDA_ENV})
  endforeach()
  add_dependencies(kiln_test_mpi kiln_fake_cuda)
endif()

# The mpi benchmark's driver, quick, 8-byte cases: schema-valid JSON with both
# baselines (tests/bench/run_mpi_quick.sh); its raw baseline references no kiln symbol.
if(TARGET kiln-mpi-bench AND NOT KILN_SANITIZE) # Release tree: timing under ASan means little
  add_test(NAME bench.mpi_quick
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/run_mpi_quick.sh ${KILN_MPIEXEC}
            $<TARGET_FILE:kiln-mpi-bench> /usr/bin/python3
            ${PROJECT_SOURCE_DIR}/scripts/validate-json.py ${PROJECT_SOURCE_DIR}/schemas/bench.json
            ${CMAKE_CURRENT_BINARY_DIR}/bench-mpi-quick)
  kiln_test_properties(bench.mpi_quick LABELS cpu unit mpi TIMEOUT 120)
  set_property(TEST bench.mpi_quick APPEND PROPERTY ENVIRONMENT ${KILN_MPI_ENV})
  add_test(NAME bench.mpi_baseline_no_kiln_symbols
    COMMAND sh -c "syms=$(${CMAKE_NM} -A \"$0\") || exit 1; echo \"$syms\" | grep -q bench_baseline_mpi_pingpong || { echo 'no baseline symbol'; exit 1; }; if echo \"$syms\" | grep -E ' [A-Za-z] kiln_'; then echo 'the raw MPI baseline references kiln'; exit 1; fi; echo ok"
            $<TARGET_FILE:kiln_bench_baseline_mpi>)
  kiln_test_properties(bench.mpi_baseline_no_kiln_symbols LABELS unit)
endif()

# examples/mpi_allreduce.c on two ranks (cpu, then PoCL): prints PASS.
if(TARGET kiln_example_mpi_allreduce AND NOT KILN_SANITIZE) # the tests above cover ASan
  add_dependencies(kiln-tests kiln_example_mpi_allreduce)
  foreach(backend cpu opencl)
    add_test(NAME examples.mpi_allreduce_${backend}
      COMMAND ${KILN_MPI_RUN} $<TARGET_FILE:kiln_example_mpi_allreduce> --device ${backend}
              --count 300000)
    kiln_test_properties(examples.mpi_allreduce_${backend} LABELS ${backend} unit mpi TIMEOUT 90)
    set_property(TEST examples.mpi_allreduce_${backend} APPEND PROPERTY ENVIRONMENT
                 ${KILN_MPI_ENV})
    set_tests_properties(examples.mpi_allreduce_${backend} PROPERTIES
                         PASS_REGULAR_EXPRESSION "PASS: 0 wrong elements over 2 ranks")
  endforeach()
endif()
