# Fuzz harness of the console's path check (api/parse.c web_file_name, used
# by api/static.c; label: fuzz); cfa_add_fuzzer() is fuzz.cmake's.
if(COMMAND cfa_add_fuzzer)
  cfa_add_fuzzer(fuzz_web_path SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_web_path.c
                 LIBS cfa_api_parse CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/web_path)
  target_include_directories(fuzz_web_path PRIVATE ${PROJECT_SOURCE_DIR}/api)
endif()
