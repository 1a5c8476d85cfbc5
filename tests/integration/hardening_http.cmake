# hardening_http.cmake - strict HTTP (docs/RELIABILITY.md, "Strict HTTP"):
# invalid UTF-8 and NUL in paths, queries and headers, request-smuggling
# shapes, oversized bodies refused from the headers, empty bodies. Raw
# sockets against the real daemon (label: hardening).
if(TARGET cfa-server)
  find_program(CFA_HARD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_HARD_PYTHON3)
    find_program(CFA_HARD_PYTHON3 python3)
  endif()
  add_test(NAME integration.hardening.http
           COMMAND ${CFA_HARD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_http.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  set_tests_properties(integration.hardening.http PROPERTIES
                       LABELS "integration;hardening"
                       TIMEOUT 240
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
