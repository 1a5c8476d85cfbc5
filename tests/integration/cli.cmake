# End-to-end test of the CLI with the real backbone on magnetic_tile_mini.
if(TARGET cfa)
  add_test(NAME integration.cli
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_cli.py
                   $<TARGET_FILE:cfa> ${CFA_TEST_DATA_DIR} ${CFA_BACKBONE_PATH})
  set_tests_properties(integration.cli PROPERTIES LABELS "integration;e2e" TIMEOUT 2400)
endif()
