# hardening_bounds.cmake - bounded fields, paged lists and private files
# (docs/RELIABILITY.md, "Bounded input, paged lists, private files"): one
# CTest test per section of test_hardening_bounds.py, each with its own daemon.
if(TARGET cfa-server)
  find_program(CFA_HARD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_HARD_PYTHON3)
    find_program(CFA_HARD_PYTHON3 python3)
  endif()
  foreach(_sec fields paging threshold perms)
    add_test(NAME integration.hardening.bounds.${_sec}
             COMMAND ${CFA_HARD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_bounds.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.hardening.bounds.${_sec} PROPERTIES
                         LABELS "integration;hardening"
                         TIMEOUT 300
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
