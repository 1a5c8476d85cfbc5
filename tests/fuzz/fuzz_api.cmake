# Fuzz harnesses of api/'s parsers of outside input (label: fuzz); uses
# cfa_add_fuzzer() from fuzz.cmake (included before this file).
if(COMMAND cfa_add_fuzzer)
  cfa_add_fuzzer(fuzz_multipart SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_multipart.c
                 LIBS cfa_api_parse CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/multipart)
  cfa_add_fuzzer(fuzz_json_body SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_json_body.c
                 LIBS cfa_settings CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/json_body)
  # fuzz_path also covers the store's id check and time parser the API calls
  cfa_add_fuzzer(fuzz_path SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_path.c
                 LIBS cfa_api_parse cfa_store CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/path)
  # part identity, the multipart meta part, request ids, idempotency keys
  cfa_add_fuzzer(fuzz_line_meta SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_line_meta.c
                 LIBS cfa_api_parse CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/line_meta)
  foreach(_h fuzz_multipart fuzz_json_body fuzz_path fuzz_line_meta)
    target_include_directories(${_h} PRIVATE ${PROJECT_SOURCE_DIR}/api)
  endforeach()
endif()

# The whole request path (raw HTTP through libmicrohttpd, the router and the
# handlers against a real store): needs the API, which needs the engine, so it
# exists only in builds with torch. Its LIBS are what CFA_FUZZ=ON instruments:
# the request path, not the engine (an inspection answers 503 here).
if(COMMAND cfa_add_fuzzer AND TARGET cfa_api)
  cfa_add_fuzzer(fuzz_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_request.c
                 LIBS cfa_api cfa_api_parse cfa_store cfa_ops cfa_base PkgConfig::JANSSON
                      Threads::Threads
                 CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/request)
  set_target_properties(fuzz_request PROPERTIES LINKER_LANGUAGE CXX)
endif()
