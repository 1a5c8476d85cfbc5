# hardening_memory.cmake - the decoded-pixel budget under 256 clients sending
# a PNG of 6000 x 6000 zeros as uploads and inspections: only 201/200/503,
# peak RSS (VmHWM) under the documented bound (docs/RELIABILITY.md, Memory).
if(TARGET cfa-server)
  find_program(CFA_HARD_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_HARD_PYTHON3)
    find_program(CFA_HARD_PYTHON3 python3)
  endif()
  add_test(NAME integration.hardening.memory
           COMMAND ${CFA_HARD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_memory.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR})
  # RUN_SERIAL: 256 threads decoding at once starve the timing-sensitive
  # sections run beside it (limits' 2 s idle timeout failed next to it)
  set_tests_properties(integration.hardening.memory PROPERTIES
                       LABELS "integration;hardening"
                       TIMEOUT 600
                       RUN_SERIAL TRUE
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
