# The command-line tool `cfa` (train / eval / infer on MVTec-layout folders).
if(TARGET cfa_core)
  add_executable(cfa ${CMAKE_CURRENT_LIST_DIR}/cli.c)
  target_link_libraries(cfa PRIVATE cfa_core cfa_media PkgConfig::JANSSON m)
  set_target_properties(cfa PROPERTIES LINKER_LANGUAGE CXX RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  install(TARGETS cfa RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
