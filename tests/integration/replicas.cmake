# replicas.cmake - model bundles (export, import, refused bundles) and a
# trainer with two replicas (--follow) behind Debian's nginx: new versions
# followed, a replica killed under load, the trainer down and back
# (labels: integration, replicas). Issue 16.
if(TARGET cfa-server AND TARGET cfa)
  find_program(CFA_REPLICAS_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_REPLICAS_PYTHON3)
    find_program(CFA_REPLICAS_PYTHON3 python3)
  endif()
  foreach(_sec bundle replicas)
    add_test(NAME integration.replicas.${_sec}
             COMMAND ${CFA_REPLICAS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_replicas.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec} --cli $<TARGET_FILE:cfa>)
    set_tests_properties(integration.replicas.${_sec} PROPERTIES
                         LABELS "integration;replicas"
                         TIMEOUT 900
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
