# SPDX-License-Identifier: MIT
# libFuzzer targets (label `fuzz`), built with clang from the sources they exercise so
# the fuzzed code itself carries ASan+UBSan, in the Release tree only (the sanitizer
# trees use gcc's runtimes, which clang's cannot join). `make check` runs each for a
# bounded number of inputs from the seed corpus; `build/bin/fuzz_kparse -max_total_time=600
# tests/kernels` fuzzes longer by hand.
find_program(KILN_CLANG clang)
if(KILN_CLANG AND NOT KILN_SANITIZE AND NOT KILN_TESTS_STRESS_ONLY)
  set(fuzz_out ${CMAKE_BINARY_DIR}/bin/fuzz_kparse)
  set(fuzz_src ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_kparse.c ${CMAKE_SOURCE_DIR}/src/core/kparse.c
               ${CMAKE_SOURCE_DIR}/src/core/prelude.c ${CMAKE_SOURCE_DIR}/src/core/rewrite_c.c
               ${CMAKE_SOURCE_DIR}/src/core/error.c)
  add_custom_command(
    OUTPUT ${fuzz_out}
    COMMAND ${KILN_CLANG} -std=c11 -g -O1 -D_GNU_SOURCE -DKILN_BUILDING
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/src ${fuzz_src} -o ${fuzz_out} -lpthread
    DEPENDS ${fuzz_src}
    COMMENT "Building the kernel-signature fuzzer with clang")
  add_custom_target(fuzz_kparse ALL DEPENDS ${fuzz_out})
  add_dependencies(kiln-tests fuzz_kparse)
  # A private copy of the seeds: libFuzzer adds what it finds to its first corpus folder.
  add_test(NAME fuzz.kparse
           COMMAND ${CMAKE_COMMAND} -E env bash -c
                   "rm -rf fuzz-corpus && mkdir fuzz-corpus && cp ${CMAKE_SOURCE_DIR}/tests/kernels/*.kiln fuzz-corpus/ && exec ${fuzz_out} -runs=300000 -max_total_time=20 -max_len=4096 -timeout=10 fuzz-corpus")
  set_tests_properties(fuzz.kparse PROPERTIES LABELS "fuzz;unit" TIMEOUT 300
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
endif()
