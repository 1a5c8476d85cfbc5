# hardening_dct.cmake - JPEGs decoded at the model's DCT scale
# (docs/RELIABILITY.md, Memory): answers in the image's own coordinates, the
# score close to the same image as PNG, the budget charged the reduced size,
# --jpeg-dct-scale 0 decodes whole, `cfa infer` scores as the daemon
# (labels: integration, hardening).
if(TARGET cfa-server AND TARGET cfa)
  find_program(CFA_DCT_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_DCT_PYTHON3)
    find_program(CFA_DCT_PYTHON3 python3)
  endif()
  add_test(NAME integration.hardening.dct
           COMMAND ${CFA_DCT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_hardening_dct.py
                   --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                   --data ${CFA_TEST_DATA_DIR} --cli $<TARGET_FILE:cfa>)
  set_tests_properties(integration.hardening.dct PROPERTIES
                       LABELS "integration;hardening"
                       TIMEOUT 600
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
