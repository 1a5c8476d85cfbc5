# metrics.cmake - /metrics read by Prometheus' text parser and a strict
# reader: per-product inspection counts and score histogram, active
# versions, training durations, drift, build and process figures
# (tests/integration/test_metrics.py; labels: integration).
if(TARGET cfa-server)
  find_program(CFA_METRICS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_METRICS_PYTHON3)
    find_program(CFA_METRICS_PYTHON3 python3)
  endif()
  add_test(NAME integration.metrics
           COMMAND ${CFA_METRICS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_metrics.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  set_tests_properties(integration.metrics PROPERTIES
                       LABELS "integration"
                       TIMEOUT 600
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
