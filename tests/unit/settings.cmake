# The training settings (server/settings/) and the training job's pure steps
# (server/train/calib.c): label unit, torch-free, so the sanitizer builds
# run them too. lint.openapi: the committed api/openapi.json is what
# api/gen_openapi.py and the settings table write.
add_executable(test_settings ${CMAKE_CURRENT_LIST_DIR}/test_settings.c)
target_link_libraries(test_settings PRIVATE cfa_settings PkgConfig::CMOCKA)
set_target_properties(test_settings PROPERTIES LINKER_LANGUAGE CXX) # cfa_core_io
add_test(NAME unit.settings COMMAND test_settings)
set_tests_properties(unit.settings PROPERTIES LABELS unit TIMEOUT 60)

add_executable(test_train_steps ${CMAKE_CURRENT_LIST_DIR}/test_train_steps.c)
target_link_libraries(test_train_steps PRIVATE cfa_train_calib PkgConfig::CMOCKA m)
add_test(NAME unit.train_steps COMMAND test_train_steps)
set_tests_properties(unit.train_steps PROPERTIES LABELS unit TIMEOUT 60)

find_program(CFA_SETTINGS_PYTHON3 NAMES python3)
if(CFA_SETTINGS_PYTHON3 AND TARGET gen_settings_schema)
  add_test(NAME lint.openapi
           COMMAND ${CMAKE_COMMAND} -DGEN=$<TARGET_FILE:gen_settings_schema>
                   -DPYTHON=${CFA_SETTINGS_PYTHON3} -DSRC=${PROJECT_SOURCE_DIR}
                   -DTMP=${CMAKE_CURRENT_BINARY_DIR}/lint_openapi_settings.json
                   -P ${CMAKE_CURRENT_LIST_DIR}/openapi_check.cmake)
  set_tests_properties(lint.openapi PROPERTIES LABELS "lint;unit" TIMEOUT 60
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
