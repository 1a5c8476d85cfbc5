# events.cmake - the event log's rows commit with their change: the API's
# changes against the real daemon with the log closed by a trigger, then open
# (labels: integration, events).
if(TARGET cfa-server)
  find_program(CFA_EVENTS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_EVENTS_PYTHON3)
    find_program(CFA_EVENTS_PYTHON3 python3)
  endif()
  add_test(NAME integration.events.atomic
           COMMAND ${CFA_EVENTS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_events_atomic.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  set_tests_properties(integration.events.atomic PROPERTIES
                       LABELS "integration;events"
                       TIMEOUT 600
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
