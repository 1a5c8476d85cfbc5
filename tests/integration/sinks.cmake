# sinks.cmake - result sinks and the event log against real peers: an HTTP
# receiver and Debian's mosquitto broker on loopback ports, kill -9 while
# deliveries are queued, backoff, dead letters, redelivery, an outage and its
# catch-up, the event log's rows (labels: integration, sinks).
if(TARGET cfa-server)
  find_program(CFA_SINKS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_SINKS_PYTHON3)
    find_program(CFA_SINKS_PYTHON3 python3)
  endif()
  add_test(NAME integration.sinks
           COMMAND ${CFA_SINKS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_sinks.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  set_tests_properties(integration.sinks PROPERTIES
                       LABELS "integration;sinks"
                       TIMEOUT 900
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
