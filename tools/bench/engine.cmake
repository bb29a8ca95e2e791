# bench_engine: in-process throughput of scoring and roadmaps (maturity_core only, no server).
add_executable(bench_engine ${CMAKE_CURRENT_LIST_DIR}/bench_engine.c)
target_link_libraries(bench_engine PRIVATE maturity_core maturity_warnings)
