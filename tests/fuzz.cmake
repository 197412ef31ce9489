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
               ${CMAKE_SOURCE_DIR}/src/core/fission.c
               ${CMAKE_SOURCE_DIR}/src/core/error.c ${CMAKE_SOURCE_DIR}/src/platform/platform_posix.c)
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

# The compile cache's entry reader (src/kcache/entry.c): tests/fuzz/fuzz_kcache_entry.c.
if(KILN_CLANG AND NOT KILN_SANITIZE AND NOT KILN_TESTS_STRESS_ONLY)
  set(fuzz_kc_out ${CMAKE_BINARY_DIR}/bin/fuzz_kcache_entry)
  set(fuzz_kc_src ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_kcache_entry.c
                  ${CMAKE_SOURCE_DIR}/src/kcache/entry.c)
  add_custom_command(
    OUTPUT ${fuzz_kc_out}
    COMMAND ${KILN_CLANG} -std=c11 -g -O1 -D_GNU_SOURCE -DKILN_BUILDING
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/src ${fuzz_kc_src} -o ${fuzz_kc_out}
            -lcrypto
    DEPENDS ${fuzz_kc_src} ${CMAKE_SOURCE_DIR}/src/kcache/kcache.h
    COMMENT "Building the cache-entry fuzzer with clang")
  add_custom_target(fuzz_kcache_entry ALL DEPENDS ${fuzz_kc_out})
  add_dependencies(kiln-tests fuzz_kcache_entry)
  add_test(NAME fuzz.kcache_entry
           COMMAND ${CMAKE_COMMAND} -E env bash -c
                   "rm -rf fuzz-kc-corpus && mkdir fuzz-kc-corpus && cp ${CMAKE_SOURCE_DIR}/tests/kernels/*.kiln fuzz-kc-corpus/ && exec ${fuzz_kc_out} -runs=100000 -max_total_time=5 -max_len=4096 -timeout=10 fuzz-kc-corpus")
  set_tests_properties(fuzz.kcache_entry PROPERTIES LABELS "fuzz;unit" TIMEOUT 300
                       WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
endif()
