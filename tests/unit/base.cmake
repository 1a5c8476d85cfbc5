# Unit tests of server/base: log, clocks, durable write, allocation (label:
# unit). Torch-free; tests/sanitize.sh runs it under ASan and TSan.
add_executable(test_base ${CMAKE_CURRENT_LIST_DIR}/test_base.c)
target_link_libraries(test_base PRIVATE cfa_base PkgConfig::CMOCKA Threads::Threads)
add_test(NAME unit.base COMMAND test_base)
set_tests_properties(unit.base PROPERTIES LABELS unit TIMEOUT 60)

# Lint (label lint): one log, one pair of clocks, one x-allocator set, one
# durable write, all in server/base (base_helpers.py says which calls count;
# its PENDING list names the files still being switched).
find_program(CFA_LINT_PYTHON3 NAMES python3)
if(CFA_LINT_PYTHON3)
  add_test(NAME lint.base_helpers
           COMMAND ${CFA_LINT_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/base_helpers.py
                   --root ${PROJECT_SOURCE_DIR})
  set_tests_properties(lint.base_helpers PROPERTIES LABELS "lint;unit" TIMEOUT 60
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
