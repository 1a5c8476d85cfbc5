# Unit tests of api/ parsers, server/ops, server/inspect (label: unit). Torch-free.
add_executable(test_api_parse ${CMAKE_CURRENT_LIST_DIR}/test_api_parse.c)
target_include_directories(test_api_parse PRIVATE ${PROJECT_SOURCE_DIR}/api)
# cfa_store: the API's product-id check is the store's (store_valid_product_id)
target_link_libraries(test_api_parse PRIVATE cfa_api_parse cfa_store PkgConfig::CMOCKA)
add_test(NAME unit.api_parse COMMAND test_api_parse)
set_tests_properties(unit.api_parse PROPERTIES LABELS unit TIMEOUT 60)

add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE cfa_ops PkgConfig::CMOCKA)
add_test(NAME unit.config COMMAND test_config)
set_tests_properties(unit.config PROPERTIES LABELS unit TIMEOUT 60)

# The inference pool against the fake engine (fake_engine.c: engine.cpp's
# functions; the rest of the engine is the real cfa_core_io): no torch, so
# it also runs under CFA_SANITIZE_THREAD.
add_executable(test_pool ${CMAKE_CURRENT_LIST_DIR}/test_pool.c
                         ${CMAKE_CURRENT_LIST_DIR}/fake_engine.c
                         ${PROJECT_SOURCE_DIR}/server/inspect/pool.c)
target_include_directories(test_pool PRIVATE ${PROJECT_SOURCE_DIR}/server/inspect/include
                                             ${PROJECT_SOURCE_DIR}/server/inspect)
target_link_libraries(test_pool PRIVATE cfa_ops cfa_core_io PkgConfig::CMOCKA Threads::Threads)
set_target_properties(test_pool PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME unit.pool COMMAND test_pool)
set_tests_properties(unit.pool PROPERTIES LABELS unit TIMEOUT 120)

# api/conn.c under a real libmicrohttpd daemon: torch-free, so it also runs
# under CFA_SANITIZE_THREAD (tests/sanitize.sh tsan).
add_executable(test_conn ${CMAKE_CURRENT_LIST_DIR}/test_conn.c ${PROJECT_SOURCE_DIR}/api/conn.c)
target_include_directories(test_conn PRIVATE ${PROJECT_SOURCE_DIR}/api)
target_link_libraries(test_conn PRIVATE cfa_ops cfa_base PkgConfig::MHD PkgConfig::CMOCKA
                                        Threads::Threads)
add_test(NAME unit.conn COMMAND test_conn)
set_tests_properties(unit.conn PROPERTIES LABELS unit TIMEOUT 120)

add_executable(test_metrics_prom ${CMAKE_CURRENT_LIST_DIR}/test_metrics_prom.c)
target_link_libraries(test_metrics_prom PRIVATE cfa_ops PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit.metrics_prom COMMAND test_metrics_prom)
set_tests_properties(unit.metrics_prom PROPERTIES LABELS unit TIMEOUT 60)

# The heatmap/map render thread against a real store in a temp directory.
add_executable(test_render ${CMAKE_CURRENT_LIST_DIR}/test_render.c
                           ${PROJECT_SOURCE_DIR}/server/inspect/render.c)
target_include_directories(test_render PRIVATE ${PROJECT_SOURCE_DIR}/server/inspect/include
                                               ${PROJECT_SOURCE_DIR}/server/inspect)
target_link_libraries(test_render PRIVATE cfa_store cfa_media cfa_core_io PkgConfig::CMOCKA Threads::Threads m)
set_target_properties(test_render PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME unit.render COMMAND test_render)
set_tests_properties(unit.render PROPERTIES LABELS unit TIMEOUT 120)
