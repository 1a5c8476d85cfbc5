# Unit tests of the model bundles (server/bundle; label: unit).
add_executable(test_bundle ${CMAKE_CURRENT_LIST_DIR}/test_bundle.c)
target_link_libraries(test_bundle PRIVATE cfa_bundle cfa_store PkgConfig::CMOCKA)
add_test(NAME unit.bundle COMMAND test_bundle)
set_tests_properties(unit.bundle PROPERTIES LABELS unit TIMEOUT 60)
