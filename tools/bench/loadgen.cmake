# maturity-loadgen: gRPC load generator (closed/open loop over mutual TLS) and a bare
# grpc-core baseline server that measures the transport's limit on this machine, and a client
# that holds many server streams from one thread.
add_executable(maturity-loadgen
  ${CMAKE_CURRENT_LIST_DIR}/loadgen.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_scenario.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_baseline.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_stats.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_streams.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_events.c
  ${CMAKE_CURRENT_LIST_DIR}/loadgen_util.c)
target_link_libraries(maturity-loadgen PRIVATE
  maturity_proto PkgConfig::GRPC Threads::Threads maturity_warnings m)
