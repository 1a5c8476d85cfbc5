# Unit tests of api/ parsers and server/config (label: unit). Torch-free.
add_executable(test_api_parse ${CMAKE_CURRENT_LIST_DIR}/test_api_parse.c)
target_link_libraries(test_api_parse PRIVATE cfa_api_parse PkgConfig::CMOCKA)
add_test(NAME unit.api_parse COMMAND test_api_parse)
set_tests_properties(unit.api_parse PROPERTIES LABELS unit TIMEOUT 60)

add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE cfa_daemon_base PkgConfig::CMOCKA)
add_test(NAME unit.config COMMAND test_config)
set_tests_properties(unit.config PROPERTIES LABELS unit TIMEOUT 60)
