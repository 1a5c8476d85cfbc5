# openapi_check.cmake - lint.openapi: fails when the committed api/openapi.json
# is not what api/gen_openapi.py writes with the settings table's schemas
# (gen_settings_schema), i.e. when either was changed without regenerating it
# (cmake --build build --target openapi_json).
# tests/CMakeLists.txt includes every tests/unit/*.cmake: only run with -P.
if(NOT CMAKE_SCRIPT_MODE_FILE)
  return()
endif()
execute_process(COMMAND ${GEN} ${TMP} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "gen_settings_schema failed (${_rc})")
endif()
execute_process(COMMAND ${PYTHON} ${SRC}/api/gen_openapi.py --settings ${TMP}
                        --check ${SRC}/api/openapi.json
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "api/openapi.json has drifted from api/gen_openapi.py and the settings table")
endif()
