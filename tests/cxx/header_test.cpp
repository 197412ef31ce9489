// SPDX-License-Identifier: MIT
// The public headers compile as C++17 under -Wall -Wextra -Wpedantic -Werror: every
// KILN_*_INIT macro (C++17 has no designated initialisers, so the macros cannot use
// them) and every inline helper, linked against libkiln. check_init_macros.cmake
// fails when a header gains an init macro this file does not use.
#include <kiln.h>
#if __has_include(<kiln/bench.h>)
#include <kiln/bench.h>  // the benchmark library's header (not part of kiln.h)
#define HAVE_KILN_BENCH_H 1
#endif

#include <cstdio>
#include <cstring>

static int failures = 0;

#define EXPECT(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                             \
    }                                                                         \
  } while (0)

// Never called: checks that the call macros (which pass __FILE__/__LINE__) compile in
// C++ and that their results must be used.
kiln_status use_call_macros(kiln_stream stream, kiln_buffer buffer, kiln_kernel kernel);
kiln_status use_call_macros(kiln_stream stream, kiln_buffer buffer, kiln_kernel kernel) {
  kiln_pending tokens[2] = {KILN_PENDING_INIT, KILN_PENDING_INIT};
  char bytes[16] = {0};
  kiln_range range = kiln_range_1d(16);
  kiln_arg args[1] = {kiln_arg_buffer(buffer)};
  kiln_status s = kiln_buffer_write_async(stream, buffer, 0, sizeof bytes, bytes, &tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_buffer_read_async(stream, buffer, 0, sizeof bytes, bytes, &tokens[1]);
  if (s == KILN_SUCCESS)
    s = kiln_wait_all(tokens, 2);
  if (s == KILN_SUCCESS)
    s = kiln_buffer_copy_async(stream, buffer, 0, buffer, 8, 8, &tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_wait_timeout(&tokens[0], 1000000);
  if (s == KILN_SUCCESS)
    s = kiln_buffer_fill_async(stream, buffer, 0, 16, bytes, 4, &tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_pending_release(&tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_launch_async(stream, kernel, &range, args, 1, &tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_wait(&tokens[0]);
  // Async integration (include/kiln/async.h, include/kiln/future.h).
  if (s == KILN_SUCCESS)
    s = kiln_buffer_write_async(stream, buffer, 0, sizeof bytes, bytes, KILN_NO_TOKEN);
  kiln_future f = KILN_FUTURE_INIT, g = KILN_FUTURE_INIT;
  if (s == KILN_SUCCESS)
    s = kiln_launch_async(stream, kernel, &range, args, 1, &tokens[0]);
  if (s == KILN_SUCCESS)
    s = kiln_future_from_pending(&tokens[0], &f);
  if (s == KILN_SUCCESS)
    s = kiln_future_wait_timeout(&f, 1000);
  if (s == KILN_SUCCESS)
    s = kiln_future_when_any(&f, 1, &g);
  if (s == KILN_SUCCESS)
    s = kiln_future_wait(&g);
  return s;
}

int main() {
  // Every init macro of include/kiln/*.h.
  kiln_allocator allocator = KILN_ALLOCATOR_INIT;
  kiln_buffer_desc buffer_desc = KILN_BUFFER_DESC_INIT;
  kiln_context_desc context_desc = KILN_CONTEXT_DESC_INIT;
  kiln_backend_info backend_info = KILN_BACKEND_INFO_INIT;
  kiln_device_props device_props = KILN_DEVICE_PROPS_INIT;
  kiln_device_state_info device_state = KILN_DEVICE_STATE_INFO_INIT;
  kiln_event_desc event_desc = KILN_EVENT_DESC_INIT;
  kiln_range range = KILN_RANGE_INIT;
  kiln_launch_config launch_config = KILN_LAUNCH_CONFIG_INIT;
  EXPECT(launch_config.struct_size == sizeof(kiln_launch_config) && launch_config.why[0] == 0);
  kiln_native_kernel_desc native_desc = KILN_NATIVE_KERNEL_DESC_INIT;
  kiln_stream_desc stream_desc = KILN_STREAM_DESC_INIT;
  kiln_pending pending = KILN_PENDING_INIT;
  kiln_context_stats context_stats = KILN_CONTEXT_STATS_INIT;
  kiln_mock_config mock_config = KILN_MOCK_CONFIG_INIT;
  kiln_program_desc program_desc = KILN_PROGRAM_DESC_INIT;
  kiln_pool_desc pool_desc = KILN_POOL_DESC_INIT;
  kiln_pool_stats pool_stats = KILN_POOL_STATS_INIT;
  kiln_budget_plan budget_plan = KILN_BUDGET_PLAN_INIT;
  kiln_budget_verdict budget_verdict = KILN_BUDGET_VERDICT_INIT;
  EXPECT(pool_desc.struct_size == sizeof(kiln_pool_desc) && pool_desc.label == nullptr);
  EXPECT(pool_stats.struct_size == sizeof(kiln_pool_stats) && pool_stats.class_count == 0);
  EXPECT(pool_stats.classes[KILN_POOL_MAX_CLASSES - 1].block_bytes == 0);
  kiln_trace_desc trace_desc = KILN_TRACE_DESC_INIT;
  EXPECT(trace_desc.struct_size == sizeof(kiln_trace_desc) && trace_desc.path == nullptr &&
         trace_desc.ring_events == 0);
  {  // KILN_TRACE_SCOPE in C++: a destructor closes the range at the end of the block
    KILN_TRACE_SCOPE("c++ scope");
    KILN_TRACE_SCOPE_CAT("c++ kernel scope", KILN_TRACE_KERNEL);
  }
  EXPECT(kiln_trace_range_end() == KILN_ERROR_INVALID_STATE);  // both were closed
  kiln_ring_desc ring_desc = KILN_RING_DESC_INIT;
  EXPECT(ring_desc.struct_size == sizeof(kiln_ring_desc) && ring_desc.kind == 0 &&
         ring_desc.capacity == 0 && ring_desc.message_bytes == 0);
  kiln_ring_info ring_info = KILN_RING_INFO_INIT;
  EXPECT(ring_info.struct_size == sizeof(kiln_ring_info) && ring_info.memory == nullptr);
  kiln_future future = KILN_FUTURE_INIT;
  EXPECT(future.id == 0);
  kiln_promise promise = KILN_PROMISE_INIT;
  EXPECT(promise.id == 0);
  EXPECT(KILN_NO_TOKEN != nullptr);
  EXPECT(budget_plan.struct_size == sizeof(kiln_budget_plan) && budget_plan.safety_margin < 0);
  EXPECT(budget_verdict.struct_size == sizeof(kiln_budget_verdict) && budget_verdict.fits == 0);
  EXPECT(program_desc.struct_size == sizeof(kiln_program_desc) && program_desc.source == nullptr);
  EXPECT(context_stats.struct_size == sizeof(kiln_context_stats) &&
         context_stats.ops_submitted == 0);
  EXPECT(mock_config.struct_size == sizeof(kiln_mock_config) && mock_config.fail_call == 0);
  EXPECT(mock_config.fail_status == KILN_SUCCESS && mock_config.reset_probe_fails == 0);
  kiln_cache_info cache_info = KILN_CACHE_INFO_INIT;
  EXPECT(cache_info.struct_size == sizeof(kiln_cache_info) && cache_info.dir[0] == '\0');
  EXPECT(cache_info.enabled == 0 && cache_info.evicted == 0);
  // Hybrid dispatch: the dispatcher, task classes, per-target statistics.
  kiln_hybrid_desc hybrid_desc = KILN_HYBRID_DESC_INIT;
  kiln_hybrid_task_desc hybrid_task_desc = KILN_HYBRID_TASK_DESC_INIT;
  kiln_hybrid_target_stats hybrid_stats = KILN_HYBRID_TARGET_STATS_INIT;
  EXPECT(hybrid_desc.struct_size == sizeof(kiln_hybrid_desc) &&
         hybrid_desc.mode == KILN_HYBRID_ADAPTIVE && hybrid_desc.model_path == nullptr);
  EXPECT(hybrid_task_desc.struct_size == sizeof(kiln_hybrid_task_desc) &&
         hybrid_task_desc.fns == nullptr && hybrid_task_desc.source == nullptr);
  EXPECT(hybrid_stats.struct_size == sizeof(kiln_hybrid_target_stats) && hybrid_stats.runs == 0 &&
         hybrid_stats.label[0] == '\0');
  // Streams (#18): labels, pools, sets, the pipeline.
  kiln_stream_info stream_info = KILN_STREAM_INFO_INIT;
  kiln_stream_pool_desc spool_desc = KILN_STREAM_POOL_DESC_INIT;
  kiln_stream_stats stream_stats = KILN_STREAM_STATS_INIT;
  kiln_pipeline_desc pipeline_desc = KILN_PIPELINE_DESC_INIT;
  EXPECT(stream_info.struct_size == sizeof(kiln_stream_info) && stream_info.label[0] == '\0');
  EXPECT(spool_desc.struct_size == sizeof(kiln_stream_pool_desc) &&
         spool_desc.policy == KILN_STREAM_ROUND_ROBIN && spool_desc.label == nullptr);
  EXPECT(stream_stats.struct_size == sizeof(kiln_stream_stats) && stream_stats.ops == 0);
  EXPECT(pipeline_desc.struct_size == sizeof(kiln_pipeline_desc) &&
         pipeline_desc.compute == nullptr && pipeline_desc.streams == nullptr);
  EXPECT(stream_desc.label == nullptr);
  // Task graphs (include/kiln/graph.h).
  kiln_graph_desc graph_desc = KILN_GRAPH_DESC_INIT;
  kiln_graph_node graph_node = KILN_GRAPH_NODE_INIT;
  EXPECT(graph_desc.struct_size == sizeof(kiln_graph_desc) && graph_desc.flags == 0 &&
         graph_desc.name == nullptr && graph_desc.max_streams == 0);
  EXPECT(graph_node.id == 0);
#ifdef HAVE_KILN_BENCH_H
  kiln_bench_config bench_config = KILN_BENCH_CONFIG_INIT;
  EXPECT(bench_config.struct_size == sizeof(kiln_bench_config) && bench_config.quick == 0);
  EXPECT(bench_config.device == nullptr && bench_config.clock == nullptr);
#endif

  EXPECT(allocator.struct_size == sizeof(kiln_allocator));
  EXPECT(allocator.alloc == nullptr && allocator.free == nullptr && allocator.user == nullptr);
  EXPECT(buffer_desc.struct_size == sizeof(kiln_buffer_desc) && buffer_desc.bytes == 0);
  EXPECT(context_desc.struct_size == sizeof(kiln_context_desc) && context_desc.flags == 0);
  EXPECT(backend_info.struct_size == sizeof(kiln_backend_info));
  EXPECT(backend_info.kind == KILN_BACKEND_NONE && backend_info.name[0] == '\0');
  EXPECT(device_props.struct_size == sizeof(kiln_device_props));
  EXPECT(device_props.max_work_item_sizes[2] == 0 && device_props.generation == 0);
  EXPECT(device_props.arch[0] == '\0' && device_props.driver_version == 0);
  EXPECT(device_state.struct_size == sizeof(kiln_device_state_info));
  EXPECT(device_state.state == KILN_DEVICE_STATE_OK && device_state.generation == 0);
  EXPECT(device_state.reason[0] == '\0');
  EXPECT(event_desc.struct_size == sizeof(kiln_event_desc) && event_desc.flags == 0);
  EXPECT(range.struct_size == sizeof(kiln_range) && range.dims == 1);
  EXPECT(range.global[1] == 1 && range.global[2] == 1 && range.local[0] == 0);
  EXPECT(native_desc.struct_size == sizeof(kiln_native_kernel_desc));
  EXPECT(native_desc.name == nullptr && native_desc.param_count == 0);
  EXPECT(stream_desc.struct_size == sizeof(kiln_stream_desc) && stream_desc.priority == 0);
  EXPECT(pending.id == 0);

  // Inline helpers.
  kiln_range r1 = kiln_range_1d(1000);
  EXPECT(r1.dims == 1 && r1.global[0] == 1000 && r1.global[1] == 1 && r1.global[2] == 1);
  kiln_range r2 = kiln_range_2d(640, 480);
  EXPECT(r2.dims == 2 && r2.global[0] == 640 && r2.global[1] == 480 && r2.global[2] == 1);
  EXPECT(r2.struct_size == sizeof(kiln_range));
  kiln_arg a_buf = kiln_arg_buffer(nullptr);
  EXPECT(a_buf.kind == KILN_ARG_BUFFER && a_buf.buffer == nullptr);
  float scale = 2.0f;
  kiln_arg a_scalar = kiln_arg_scalar(&scale, sizeof scale);
  EXPECT(a_scalar.kind == KILN_ARG_SCALAR && a_scalar.value == &scale);
  EXPECT(a_scalar.bytes == sizeof scale);
  kiln_arg a_local = kiln_arg_local(256);
  EXPECT(a_local.kind == KILN_ARG_LOCAL && a_local.bytes == 256);

  // Version and status tables, through the library.
  EXPECT(KILN_VERSION_NUMBER ==
         KILN_VERSION_MAJOR * 10000 + KILN_VERSION_MINOR * 100 + KILN_VERSION_PATCH);
  EXPECT(kiln_version() == KILN_VERSION_NUMBER);
  EXPECT(std::strcmp(kiln_version_string(), KILN_VERSION_STRING) == 0);
  EXPECT(std::strcmp(kiln_status_name(KILN_ERROR_INVALID_ARGUMENT),
                     "KILN_ERROR_INVALID_ARGUMENT") == 0);
  EXPECT(std::strcmp(kiln_status_message(KILN_SUCCESS), "success") == 0);

  // Taking its address is enough for the linker to resolve every function the call
  // macros expand to; it is never called.
  kiln_status (*volatile fn)(kiln_stream, kiln_buffer, kiln_kernel) = use_call_macros;
  EXPECT(fn != nullptr);

  if (failures)
    std::fprintf(stderr, "%d check(s) failed\n", failures);
  else
    std::printf("kiln.h compiles as C++17; init macros and helpers OK\n");
  return failures ? 1 : 0;
}
