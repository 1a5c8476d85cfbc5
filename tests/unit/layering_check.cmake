# layering_check.cmake - run by the lint.layering test (tests/unit/layering.cmake):
#   cmake -DBUILD_DIR=... -DCASES="target:header:ok|fail;..." -P layering_check.cmake
# Builds each probe target. "ok" must compile; "fail" must fail, and fail
# because the header is not found (a probe broken in another way proves nothing).
set(_bad 0)
foreach(_case IN LISTS CASES)
  string(REPLACE ":" ";" _p "${_case}")
  list(GET _p 0 _target)
  list(GET _p 1 _header)
  list(GET _p 2 _expect)
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${_target}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  string(FIND "${_out}" "${_header}: No such file" _missing)      # gcc
  if(_missing EQUAL -1)
    string(FIND "${_out}" "'${_header}' file not found" _missing) # clang
  endif()
  if(_expect STREQUAL "ok" AND NOT _rc EQUAL 0)
    message(SEND_ERROR "${_target}: #include \"${_header}\" should compile:\n${_out}")
    set(_bad 1)
  elseif(_expect STREQUAL "fail" AND (_rc EQUAL 0 OR _missing EQUAL -1))
    message(SEND_ERROR "${_target}: #include \"${_header}\" should fail as not found (rc ${_rc}):\n${_out}")
    set(_bad 1)
  else()
    message(STATUS "${_target}: #include \"${_header}\" -> ${_expect} as expected")
  endif()
endforeach()
if(_bad)
  message(FATAL_ERROR "layering violated")
endif()
