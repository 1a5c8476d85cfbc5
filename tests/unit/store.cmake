# Unit tests of the store and of SHA-256 (label: unit).
add_executable(test_sha256 ${CMAKE_CURRENT_LIST_DIR}/test_sha256.c)
target_link_libraries(test_sha256 PRIVATE cfa_sha256 PkgConfig::CMOCKA)
add_test(NAME unit.sha256 COMMAND test_sha256)
set_tests_properties(unit.sha256 PROPERTIES LABELS unit TIMEOUT 60)

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_store.c)
add_executable(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.c)
target_link_libraries(test_store PRIVATE cfa_store PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit.store COMMAND test_store)
set_tests_properties(unit.store PROPERTIES LABELS unit TIMEOUT 300)
endif()

# Each change the event log records commits with its event row or not at all
# (a bundle import's too: cfa_bundle).
add_executable(test_events ${CMAKE_CURRENT_LIST_DIR}/test_events.c)
target_link_libraries(test_events PRIVATE cfa_store cfa_bundle PkgConfig::CMOCKA)
add_test(NAME unit.store_events COMMAND test_events)
set_tests_properties(unit.store_events PROPERTIES LABELS unit TIMEOUT 120)
