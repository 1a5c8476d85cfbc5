# hardening.cmake - production-hardening tests (docs/RELIABILITY.md): limits,
# roles x routes, SIGKILL crash safety, graceful shutdown, TLS, overload.
# Each section is its own CTest test (label: hardening) with its own daemon.
# Overload duration: CFA_HARD_LOAD_S (default 20 s).
if(TARGET cfa-server)
  find_program(CFA_HARD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_HARD_PYTHON3)
    find_program(CFA_HARD_PYTHON3 python3)
  endif()
  foreach(_sec_to limits:240 roles:240 crash:1200 shutdown:900 tls:240 overload:900)
    string(REPLACE ":" ";" _p ${_sec_to})
    list(GET _p 0 _sec)
    list(GET _p 1 _to)
    add_test(NAME integration.hardening.${_sec}
             COMMAND ${CFA_HARD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.hardening.${_sec} PROPERTIES
                         LABELS "integration;hardening"
                         TIMEOUT ${_to}
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
