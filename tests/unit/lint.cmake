# Lint (label: lint): the unsafe C calls banned by docs/STYLE.md (sprintf,
# strcpy, strcat, gets, atoi, strtok, ...) stay out of core/, server/, api/.
find_program(CFA_LINT_PYTHON3 NAMES python3)
if(CFA_LINT_PYTHON3)
  add_test(NAME lint.banned_calls
           COMMAND ${CFA_LINT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/banned_calls.py
                   --root ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint.banned_calls PROPERTIES LABELS "lint;unit" TIMEOUT 60
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
