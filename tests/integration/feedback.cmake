# feedback.cmake - operator labels (and add_to_training), region outlines,
# the safety rails of keys and model versions, and drift raised by
# brightened and blurred good images (tests/integration/test_feedback.py;
# labels: integration). One CTest per section.
if(TARGET cfa-server)
  find_program(CFA_FEEDBACK_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_FEEDBACK_PYTHON3)
    find_program(CFA_FEEDBACK_PYTHON3 python3)
  endif()
  foreach(_sec labels regions rails drift)
    add_test(NAME integration.feedback.${_sec}
             COMMAND ${CFA_FEEDBACK_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_feedback.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.feedback.${_sec} PROPERTIES
                         LABELS "integration"
                         TIMEOUT 900
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
