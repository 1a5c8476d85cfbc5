# The model artefact parser (torch-free part of core/).
cfa_add_fuzzer(fuzz_model SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_model.cpp LIBS cfa_core_io
               CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/model)
target_include_directories(fuzz_model PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../../core/src)
