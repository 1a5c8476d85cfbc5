# Region outlines (server/inspect/contour.c) and the drift statistic's KS test
# (server/inspect/drift.c), built from source: no torch (label: unit).
add_executable(test_contour ${CMAKE_CURRENT_LIST_DIR}/test_contour.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/contour.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/drift.c)
target_include_directories(test_contour PRIVATE ${PROJECT_SOURCE_DIR}/server/inspect/include)
target_link_libraries(test_contour PRIVATE cfa_store cfa_media PkgConfig::JANSSON
                                           PkgConfig::CMOCKA m)
add_test(NAME unit.contour COMMAND test_contour)
set_tests_properties(unit.contour PROPERTIES LABELS unit TIMEOUT 60)
