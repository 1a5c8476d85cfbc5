# Unit tests of the event log, sinks and outbox of the store, and of
# server/sinks' pure parts (label: unit).
add_executable(test_outbox ${CMAKE_CURRENT_LIST_DIR}/test_outbox.c)
target_link_libraries(test_outbox PRIVATE cfa_sinks cfa_store PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit.outbox COMMAND test_outbox)
set_tests_properties(unit.outbox PROPERTIES LABELS unit TIMEOUT 120)
