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
  target_compile_definitions(test_cfa_header PRIVATE CFA_TEST_PROJECT_VERSION="${PROJECT_VERSION}")
  add_test(NAME unit.cfa_header COMMAND test_cfa_header)
  set_tests_properties(unit.core_math unit.cfa_header PROPERTIES LABELS unit)

  # needs the real backbone (tools/setup.sh makes it)
  add_executable(test_backbone_mismatch ${CMAKE_CURRENT_LIST_DIR}/test_backbone_mismatch.c)
  target_link_libraries(test_backbone_mismatch PRIVATE cfa_core)
  set_target_properties(test_backbone_mismatch PROPERTIES LINKER_LANGUAGE CXX)
  add_test(NAME unit.backbone_mismatch COMMAND test_backbone_mismatch ${CFA_BACKBONE_PATH})
  add_executable(test_score_multi ${CMAKE_CURRENT_LIST_DIR}/test_score_multi.c)
  target_link_libraries(test_score_multi PRIVATE cfa_core m)
  set_target_properties(test_score_multi PROPERTIES LINKER_LANGUAGE CXX)
  add_test(NAME unit.score_multi COMMAND test_score_multi ${CFA_BACKBONE_PATH})
  add_executable(test_backbone_precision ${CMAKE_CURRENT_LIST_DIR}/test_backbone_precision.c)
  target_link_libraries(test_backbone_precision PRIVATE cfa_core m)
  set_target_properties(test_backbone_precision PROPERTIES LINKER_LANGUAGE CXX)
  add_test(NAME unit.backbone_precision COMMAND test_backbone_precision ${CFA_BACKBONE_PATH})
  set_tests_properties(unit.backbone_mismatch unit.score_multi unit.backbone_precision
                       PROPERTIES LABELS "unit;backbone" TIMEOUT 300)

  # the BLAS kernels chosen at start-up (core/src/blas_cpu.c), through `cfa info`
  add_test(NAME unit.blas_core COMMAND ${CMAKE_CURRENT_LIST_DIR}/blas_core_check.sh $<TARGET_FILE:cfa>)
  set_tests_properties(unit.blas_core PROPERTIES LABELS unit TIMEOUT 60)
endif()

# core/ builds on its own (core/CMakeLists.txt as the top-level project):
# configure it alone into a scratch folder and build its torch-free
# libraries. cfa_core itself is left to the main build (minutes); label lint.
add_test(NAME lint.core_alone
         COMMAND sh -c "\"$0\" -E rm -rf \"$2\" && \"$0\" -S \"$1\" -B \"$2\" -DCFA_WITH_TORCH=$3 >\"$2.log\" && \"$0\" --build \"$2\" --target cfa_sha256 cfa_core_io cfa_blas_cpu >>\"$2.log\" || { cat \"$2.log\"; exit 1; }"
                 ${CMAKE_COMMAND} ${PROJECT_SOURCE_DIR}/core ${CMAKE_CURRENT_BINARY_DIR}/core-alone
                 ${CFA_WITH_TORCH})
set_tests_properties(lint.core_alone PROPERTIES LABELS lint TIMEOUT 300)
