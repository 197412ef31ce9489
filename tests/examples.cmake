# SPDX-License-Identifier: MIT
# The examples run as tests (included by tests/CMakeLists.txt): examples/pipeline.c on
# the cpu backend and on OpenCL device 0 (PoCL here), small sizes; exit 0 = every
# element came back right.
if(KILN_TESTS_STRESS_ONLY OR NOT TARGET kiln_example_pipeline)
  return()
endif()
add_dependencies(kiln-tests kiln_example_pipeline)
add_test(NAME examples.pipeline_cpu COMMAND kiln_example_pipeline --device cpu:0 --chunks 9 --chunk-mib 1)
kiln_test_properties(examples.pipeline_cpu LABELS cpu unit)
add_test(NAME examples.pipeline_opencl COMMAND kiln_example_pipeline --device opencl:0 --chunks 9 --chunk-mib 1)
kiln_test_properties(examples.pipeline_opencl LABELS opencl unit)
# Seed 003's stream examples (examples/seed_streams.c) on cpu and PoCL, and their length
# against the Rust originals (at most 1.5x the non-blank lines).
add_dependencies(kiln-tests kiln_example_seed_streams)
add_test(NAME examples.seed_streams_cpu
  COMMAND /bin/sh -c "'$<TARGET_FILE:kiln_example_seed_streams>' --device cpu:0 --stats-json '${CMAKE_CURRENT_BINARY_DIR}/seed-streams-stats.json' && /usr/bin/python3 '${PROJECT_SOURCE_DIR}/scripts/validate-json.py' '${PROJECT_SOURCE_DIR}/schemas/stream_stats.json' '${CMAKE_CURRENT_BINARY_DIR}/seed-streams-stats.json'")
kiln_test_properties(examples.seed_streams_cpu LABELS cpu unit)
add_test(NAME examples.seed_streams_opencl COMMAND kiln_example_seed_streams --device opencl:0)
kiln_test_properties(examples.seed_streams_opencl LABELS opencl unit)
add_test(NAME examples.seed_streams_lines
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/examples/check_seed_lines.py ${CMAKE_SOURCE_DIR})
kiln_test_properties(examples.seed_streams_lines LABELS cpu unit)
# Task graphs (examples/graph.c) on cpu and PoCL: exit 0 = every launch's check passed.
add_dependencies(kiln-tests kiln_example_graph)
add_test(NAME examples.graph_cpu COMMAND kiln_example_graph --device cpu:0 --launches 50)
kiln_test_properties(examples.graph_cpu LABELS cpu unit)
add_test(NAME examples.graph_opencl COMMAND kiln_example_graph --device opencl:0 --launches 20)
kiln_test_properties(examples.graph_opencl LABELS opencl unit)
# On a real CUDA device only (label cuda: scripts/gpu-check.sh); 77 (skipped) without.
if(TARGET kiln_cli)
  add_test(NAME examples.pipeline_cuda
    COMMAND /bin/sh -c "'$<TARGET_FILE:kiln_cli>' info --json | grep -q '\"backend\": \"cuda\"' || { echo 'no CUDA device: skipped'; exit 77; }; exec '$<TARGET_FILE:kiln_example_pipeline>' --device cuda:0 --chunks 16 --chunk-mib 16")
  kiln_test_properties(examples.pipeline_cuda LABELS cuda unit)
  set_tests_properties(examples.pipeline_cuda PROPERTIES SKIP_RETURN_CODE 77)
endif()

# examples/epoll_wait.c and examples/libuv_loop.c (issue #19): device completions seen
# by epoll and by a libuv loop, on cpu and on OpenCL device 0 (PoCL).
if(TARGET kiln_example_epoll_wait)
  add_dependencies(kiln-tests kiln_example_epoll_wait)
  add_test(NAME examples.epoll_wait_cpu COMMAND kiln_example_epoll_wait --device cpu:0 --streams 4 --kib 64)
  kiln_test_properties(examples.epoll_wait_cpu LABELS cpu unit)
  add_test(NAME examples.epoll_wait_opencl COMMAND kiln_example_epoll_wait --device opencl:0 --streams 4 --kib 64)
  kiln_test_properties(examples.epoll_wait_opencl LABELS opencl unit)
endif()
if(TARGET kiln_example_libuv_loop)
  add_dependencies(kiln-tests kiln_example_libuv_loop)
  add_test(NAME examples.libuv_loop_cpu COMMAND kiln_example_libuv_loop --device cpu:0 --n 4096)
  kiln_test_properties(examples.libuv_loop_cpu LABELS cpu unit)
  add_test(NAME examples.libuv_loop_opencl COMMAND kiln_example_libuv_loop --device opencl:0 --n 4096)
  kiln_test_properties(examples.libuv_loop_opencl LABELS opencl unit)
else()
  message(FATAL_ERROR "libuv (libuv1-dev) is missing: scripts/deps.sh installs it; make check runs examples/libuv_loop.c")
endif()
# One kernel file on cpu, PoCL and (gpu-check.sh) CUDA: examples/one_source.c.
if(TARGET kiln_example_one_source)
  add_dependencies(kiln-tests kiln_example_one_source)
  add_test(NAME examples.one_source_cpu COMMAND kiln_example_one_source cpu:0)
  kiln_test_properties(examples.one_source_cpu LABELS cpu unit)
  if(NOT KILN_SANITIZE) # PoCL under ASan: ~10 s for what the release tree shows
    add_test(NAME examples.one_source_opencl COMMAND kiln_example_one_source opencl:0)
    kiln_test_properties(examples.one_source_opencl LABELS opencl unit)
  endif()
  if(TARGET kiln_cli)
    add_test(NAME examples.one_source_cuda
      COMMAND /bin/sh -c "'$<TARGET_FILE:kiln_cli>' info --json | grep -q '\"backend\": \"cuda\"' || { echo 'no CUDA device: skipped'; exit 77; }; exec '$<TARGET_FILE:kiln_example_one_source>' cuda:0")
    kiln_test_properties(examples.one_source_cuda LABELS cuda unit)
    set_tests_properties(examples.one_source_cuda PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endif()
# examples/hybrid.c over cpu:0 and PoCL: results checked by the example, the model file
# written, read back by a second run, and the statistics valid against their schema.
if(TARGET kiln_example_hybrid)
  add_dependencies(kiln-tests kiln_example_hybrid)
  set(_hy ${CMAKE_CURRENT_BINARY_DIR}/example-hybrid)
  add_test(NAME examples.hybrid_opencl
    COMMAND /bin/sh -c "rm -rf '${_hy}' && mkdir -p '${_hy}' && for i in 1 2; do '$<TARGET_FILE:kiln_example_hybrid>' --device opencl:0 --max 262144 --rounds 3 --model '${_hy}/models.bin' --stats-json '${_hy}/stats.json' || exit 1; done && test -s '${_hy}/models.bin' && /usr/bin/python3 '${PROJECT_SOURCE_DIR}/scripts/validate-json.py' '${PROJECT_SOURCE_DIR}/schemas/hybrid_stats.json' '${_hy}/stats.json'")
  kiln_test_properties(examples.hybrid_opencl LABELS opencl unit)
endif()
