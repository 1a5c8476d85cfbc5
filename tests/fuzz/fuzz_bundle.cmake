# The model bundle parser (server/bundle: bundle_parse), which POST
# /v1/products/{id}/models and a replica's follower run on bytes from outside.
if(COMMAND cfa_add_fuzzer)
  cfa_add_fuzzer(fuzz_bundle SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_bundle.c
                 LIBS cfa_bundle cfa_store cfa_base cfa_sha256 PkgConfig::JANSSON
                 CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/bundle)
endif()

# The trainer's product list as a replica reads it (server/follow:
# follow_parse_products), a peer's JSON.
if(COMMAND cfa_add_fuzzer)
  cfa_add_fuzzer(fuzz_follow SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_follow.c
                 LIBS cfa_follow_parse cfa_store PkgConfig::JANSSON
                 CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/follow)
endif()
