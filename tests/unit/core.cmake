# Engine unit tests (label unit). The header test is compiled as C on purpose.
if(TARGET cfa_core)
  add_executable(test_core_math ${CMAKE_CURRENT_LIST_DIR}/test_core_math.cpp)
  target_include_directories(test_core_math PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../core/src)
  target_link_libraries(test_core_math PRIVATE cfa_core)
  target_precompile_headers(test_core_math REUSE_FROM cfa_core)
  add_test(NAME unit.core_math COMMAND test_core_math)

  add_executable(test_cfa_header ${CMAKE_CURRENT_LIST_DIR}/test_cfa_header.c)
  target_link_libraries(test_cfa_header PRIVATE cfa_core)
  set_target_properties(test_cfa_header PROPERTIES LINKER_LANGUAGE CXX)
  add_test(NAME unit.cfa_header COMMAND test_cfa_header)
  set_tests_properties(unit.core_math unit.cfa_header PROPERTIES LABELS unit)
endif()
