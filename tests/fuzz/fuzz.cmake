# Fuzz harnesses (label: fuzz). One line adds a harness:
#
#   cfa_add_fuzzer(fuzz_thing SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_thing.c
#                  LIBS cfa_thing CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/thing)
#
# The harness defines LLVMFuzzerTestOneInput(). With clang it is linked with
# libFuzzer (-fsanitize=fuzzer,address,undefined) and the CTest test runs
# CFA_FUZZ_RUNS mutations, seeded by CORPUS; new inputs go to a scratch
# directory in the build tree, never into the committed corpus. With gcc it is
# linked with standalone_main.c, which replays the corpus and deterministic
# mutations of it (ASan when CFA_SANITIZE_ADDRESS is ON).
#
# CFA_FUZZ=ON (configure with CC=clang-14 CXX=clang++-14) also instruments
# the LIBS themselves for coverage and ASan/UBSan, which real fuzzing needs:
#
#   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCFA_FUZZ=ON -DCFA_WITH_TORCH=OFF
#   cmake --build build-fuzz --target fuzz_image
#   build-fuzz/tests/fuzz_image -max_total_time=120 /tmp/new tests/fuzz/corpus/image
set(CFA_FUZZ_RUNS 20000 CACHE STRING "Mutations each fuzz test runs under CTest")
set(_cfa_fuzz_dir ${CMAKE_CURRENT_LIST_DIR})

if(CFA_FUZZ AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CFA_FUZZ=ON needs clang (CC=clang-14 CXX=clang++-14)")
endif()

function(cfa_add_fuzzer NAME)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SOURCES OR NOT F_CORPUS)
    message(FATAL_ERROR "cfa_add_fuzzer(${NAME}): SOURCES and CORPUS are required")
  endif()
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    set(_san -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
    add_executable(${NAME} ${F_SOURCES})
    target_compile_options(${NAME} PRIVATE ${_san} -fno-omit-frame-pointer)
    target_link_options(${NAME} PRIVATE ${_san})
    if(CFA_FUZZ)
      foreach(_lib ${F_LIBS})
        if(NOT TARGET ${_lib})
          continue()
        endif()
        get_target_property(_imported ${_lib} IMPORTED)
        get_target_property(_done ${_lib} CFA_FUZZ_INSTRUMENTED)
        if(_imported OR _done)
          continue()
        endif()
        # Consumers link the sanitizer and coverage runtimes through INTERFACE.
        target_compile_options(${_lib} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                                               -fno-omit-frame-pointer)
        target_link_options(${_lib} INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
        set_target_properties(${_lib} PROPERTIES CFA_FUZZ_INSTRUMENTED ON)
      endforeach()
    endif()
    set(_scratch ${CMAKE_CURRENT_BINARY_DIR}/${NAME}_corpus)
    file(MAKE_DIRECTORY ${_scratch})
    add_test(NAME fuzz.${NAME}
             COMMAND ${NAME} -runs=${CFA_FUZZ_RUNS} -seed=1 -max_len=65536 -timeout=30
                     ${_scratch} ${F_CORPUS})
  else()
    add_executable(${NAME} ${F_SOURCES} ${_cfa_fuzz_dir}/standalone_main.c)
    add_test(NAME fuzz.${NAME} COMMAND ${NAME} -runs=${CFA_FUZZ_RUNS} ${F_CORPUS})
  endif()
  target_link_libraries(${NAME} PRIVATE ${F_LIBS})
  set_tests_properties(fuzz.${NAME} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()

cfa_add_fuzzer(fuzz_image SOURCES ${_cfa_fuzz_dir}/fuzz_image.c LIBS cfa_media
               CORPUS ${_cfa_fuzz_dir}/corpus/image)

# Regenerates the seed corpus (see make_corpus.c); not built by default.
add_executable(make_fuzz_corpus EXCLUDE_FROM_ALL ${_cfa_fuzz_dir}/make_corpus.c)
target_link_libraries(make_fuzz_corpus PRIVATE PkgConfig::SPNG PkgConfig::TURBOJPEG)

# The ROI mask parser of PUT /v1/products/{id}/mask (issue 13).
cfa_add_fuzzer(fuzz_mask SOURCES ${_cfa_fuzz_dir}/fuzz_mask.c LIBS cfa_media
               CORPUS ${_cfa_fuzz_dir}/corpus/mask)
