# Unit tests of cfa_media (image decoding and PNG encoding, heatmaps and
# regions) and cfa_eval (evaluation metrics) (label: unit). test_image also reads the real
# PNGs of ${CFA_TEST_DATA_DIR}/magnetic_tile_mini, skipped when absent.
foreach(_cfa_media_t image heatmap eval roi)
  add_executable(test_${_cfa_media_t} ${CMAKE_CURRENT_LIST_DIR}/test_${_cfa_media_t}.c)
  target_link_libraries(test_${_cfa_media_t} PRIVATE cfa_media cfa_eval PkgConfig::CMOCKA m)
  add_test(NAME unit.${_cfa_media_t} COMMAND test_${_cfa_media_t})
  set_tests_properties(unit.${_cfa_media_t} PROPERTIES LABELS unit TIMEOUT 120
                       ENVIRONMENT "CFA_TEST_DATA_DIR=${CFA_TEST_DATA_DIR}")
endforeach()
# the decoded-pixel budget: threaded (also in tests/sanitize.sh tsan)
add_executable(test_budget ${CMAKE_CURRENT_LIST_DIR}/test_budget.c)
target_link_libraries(test_budget PRIVATE cfa_media cfa_base PkgConfig::CMOCKA Threads::Threads m)
add_test(NAME unit.budget COMMAND test_budget)
set_tests_properties(unit.budget PROPERTIES LABELS unit TIMEOUT 120)
# regression inputs found by the fuzzer
target_compile_definitions(test_image PRIVATE
  CFA_IMAGE_CORPUS="${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/image")
