# Unit test of api/utf8.c, the UTF-8 check and repair behind every error
# message and the strict checks of paths, queries and headers (label: unit).
add_executable(test_api_utf8 ${CMAKE_CURRENT_LIST_DIR}/test_api_utf8.c)
target_include_directories(test_api_utf8 PRIVATE ${PROJECT_SOURCE_DIR}/api)
target_link_libraries(test_api_utf8 PRIVATE cfa_api_parse PkgConfig::CMOCKA)
add_test(NAME unit.api_utf8 COMMAND test_api_utf8)
set_tests_properties(unit.api_utf8 PROPERTIES LABELS unit TIMEOUT 60)
