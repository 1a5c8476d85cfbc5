# line.cmake - wiring a line (issue 14): part identity, Idempotency-Key,
# X-Request-Id and the JSON log, unknown query parameters, the streamed audit
# export (labels: integration, line). One CTest per section, each with its
# own daemon and temp dir.
if(TARGET cfa-server)
  find_program(CFA_LINE_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_LINE_PYTHON3)
    find_program(CFA_LINE_PYTHON3 python3)
  endif()
  foreach(_s part idem reqid query export)
    add_test(NAME integration.line.${_s}
             COMMAND ${CFA_LINE_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_line.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_s})
    set_tests_properties(integration.line.${_s} PROPERTIES
                         LABELS "integration;line"
                         TIMEOUT 900
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
