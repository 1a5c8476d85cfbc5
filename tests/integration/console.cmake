# console.cmake - the operator console (web/, api/static.c; labels:
# integration, console): the static files' security in Python, and the
# console driven end to end in Debian's Chromium with playwright-core
# (tests/console/, installed by tools/setup.sh). The browser section is
# added only where node and chromium are installed.
if(TARGET cfa-server)
  find_program(CFA_CONSOLE_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CFA_CONSOLE_PYTHON3)
    find_program(CFA_CONSOLE_PYTHON3 python3)
  endif()
  set(_cfa_console_args ${CMAKE_CURRENT_LIST_DIR}/test_console.py
      --server $<TARGET_FILE:cfa-server> --backbone ${CFA_BACKBONE_PATH} --data ${CFA_TEST_DATA_DIR})
  add_test(NAME integration.console.static COMMAND ${CFA_CONSOLE_PYTHON3} ${_cfa_console_args} --only static)
  set_tests_properties(integration.console.static PROPERTIES LABELS "integration;console" TIMEOUT 300
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  find_program(CFA_CONSOLE_NODE node)
  find_program(CFA_CONSOLE_CHROMIUM chromium PATHS /usr/bin)
  if(CFA_CONSOLE_NODE AND CFA_CONSOLE_CHROMIUM)
    # screenshots go to the build dir (docs/console-*.png are three of them)
    add_test(NAME integration.console.browser
             COMMAND ${CFA_CONSOLE_PYTHON3} ${_cfa_console_args} --only browser
                     --node ${CFA_CONSOLE_NODE} --out ${CMAKE_BINARY_DIR}/console-screens)
    set_tests_properties(integration.console.browser PROPERTIES LABELS "integration;console" TIMEOUT 1200
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;CFA_CHROMIUM=${CFA_CONSOLE_CHROMIUM}")
  endif()
endif()
