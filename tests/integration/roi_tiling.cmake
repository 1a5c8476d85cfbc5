# roi_tiling.cmake - ROI masks and tiling (issue 13): mask upload and its
# validation, a defect outside the mask OK / inside NG, the heatmap blank
# outside; a thin scratch on a large image missed squeezed and found tiled
# (label: integration).
if(TARGET cfa-server)
  find_program(CFA_ROI_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_ROI_PYTHON3)
    find_program(CFA_ROI_PYTHON3 python3)
  endif()
  foreach(_sec mask tiling)
    add_test(NAME integration.roi_tiling.${_sec}
             COMMAND ${CFA_ROI_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_roi_tiling.py
                     --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH}
                     --data ${CFA_TEST_DATA_DIR} --only ${_sec})
    set_tests_properties(integration.roi_tiling.${_sec} PROPERTIES
                         LABELS "integration" TIMEOUT 600
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
