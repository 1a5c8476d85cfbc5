# hardening_slow.cmake - slow clients must not take every connection
# (docs/RELIABILITY.md, "Slow clients"): whole-header and whole-body deadlines,
# the per-address connection limit, the slots kept for health probes.
# Each section is its own CTest test with its own daemon.
if(TARGET cfa-server)
  find_program(CFA_HARD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_HARD_PYTHON3)
    find_program(CFA_HARD_PYTHON3 python3)
  endif()
  foreach(_sec header body per_ip probes)
    add_test(NAME integration.hardening.slow.${_sec}
             COMMAND ${CFA_HARD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_slow.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.hardening.slow.${_sec} PROPERTIES
                         LABELS "integration;hardening"
                         TIMEOUT 240
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
