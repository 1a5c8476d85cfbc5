# daemon.cmake - the cfa-server daemon: config, Prometheus metrics, the
# inference worker pool, the training job runner and main.c.

# Torch-free part (config, metrics): unit tests and fuzzers link only this.
add_library(cfa_daemon_base STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/metrics_prom.c)
target_include_directories(cfa_daemon_base PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(cfa_daemon_base PRIVATE CFA_VERSION_STRING="${PROJECT_VERSION}")
target_link_libraries(cfa_daemon_base PUBLIC cfa_core_io Threads::Threads)

if(CFA_WITH_TORCH)
  add_library(cfa_daemon STATIC
    ${CMAKE_CURRENT_LIST_DIR}/pool.c
    ${CMAKE_CURRENT_LIST_DIR}/jobs.c
    ${CMAKE_CURRENT_LIST_DIR}/render.c
    ${CMAKE_CURRENT_LIST_DIR}/fresh_thread.c)
  target_include_directories(cfa_daemon PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(cfa_daemon PUBLIC cfa_daemon_base cfa_core cfa_store cfa_media
                                          PkgConfig::JANSSON Threads::Threads m)

  add_executable(cfa-server ${CMAKE_CURRENT_LIST_DIR}/main.c)
  target_compile_definitions(cfa-server PRIVATE CFA_VERSION_STRING="${PROJECT_VERSION}")
  # cfa_api is defined in api/ (added after server/); names resolve at generate time
  target_link_libraries(cfa-server PRIVATE cfa_api cfa_daemon cfa_store cfa_media cfa_core
                                           Threads::Threads m)
  set_target_properties(cfa-server PROPERTIES LINKER_LANGUAGE CXX
                                              RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  install(TARGETS cfa-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
