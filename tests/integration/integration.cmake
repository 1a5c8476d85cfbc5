# integration.cmake - the real daemon on a loopback port, real SQLite, real
# images and the real backbone (a missing backbone or data set fails the test).
# Driver: Python 3 standard library only.
if(TARGET cfa-server)
  find_program(CFA_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_PYTHON3)
    find_program(CFA_PYTHON3 python3)
  endif()
  set(_cfa_it_cli "")
  if(TARGET cfa)
    set(_cfa_it_cli --cli $<TARGET_FILE:cfa>)  # score parity with the CLI
  endif()
  add_test(NAME integration.api
           COMMAND ${CFA_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_api.py
                   --server $<TARGET_FILE:cfa-server>
                   --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR} ${_cfa_it_cli})
  set_tests_properties(integration.api PROPERTIES
                       LABELS integration
                       TIMEOUT 1800
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
