# hardening_durability.cmake - no answered inspection lost (docs/RELIABILITY.md):
# SIGKILL right after the answers, a full disk (tmpfs; needs root, else skipped).
# Each section is its own CTest test (labels: integration, hardening).
if(TARGET cfa-server)
  find_program(CFA_DUR_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_DUR_PYTHON3)
    find_program(CFA_DUR_PYTHON3 python3)
  endif()
  foreach(_sec_to kill:600 disk:600)
    string(REPLACE ":" ";" _p ${_sec_to})
    list(GET _p 0 _sec)
    list(GET _p 1 _to)
    add_test(NAME integration.hardening.durability.${_sec}
             COMMAND ${CFA_DUR_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_durability.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.hardening.durability.${_sec} PROPERTIES
                         LABELS "integration;hardening"
                         TIMEOUT ${_to}
                         SKIP_RETURN_CODE 77
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
