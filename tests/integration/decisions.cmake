# decisions.cmake - OK / UNSURE / NG, calibrated thresholds with their
# estimate and warnings, whole-image inspection and a border not inspected
# (issue 13; labels: integration).
if(TARGET cfa-server)
  find_program(CFA_DEC_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_DEC_PYTHON3)
    find_program(CFA_DEC_PYTHON3 python3)
  endif()
  add_test(NAME integration.decisions
           COMMAND ${CFA_DEC_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_decisions.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  set_tests_properties(integration.decisions PROPERTIES
                       LABELS "integration"
                       TIMEOUT 1200
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
