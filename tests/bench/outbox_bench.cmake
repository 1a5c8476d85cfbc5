# bench_outbox: what the result sinks' outbox adds to an audit commit
# (docs/BENCHMARKS.md, "Result sinks"); a figure, not a test.
add_executable(bench_outbox ${CMAKE_CURRENT_LIST_DIR}/bench_outbox.c)
target_link_libraries(bench_outbox PRIVATE cfa_store)
