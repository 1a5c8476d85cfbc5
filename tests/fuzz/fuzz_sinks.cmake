# Fuzz harness of server/sinks' parser of outside input: POST/PATCH /v1/sinks
# bodies and MQTT topic templates (label: fuzz); uses cfa_add_fuzzer() from
# fuzz.cmake (included before this file).
if(COMMAND cfa_add_fuzzer AND TARGET cfa_sinks)
  cfa_add_fuzzer(fuzz_sink_spec SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_sink_spec.c
                 LIBS cfa_sinks cfa_store CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/sink_spec)
endif()
