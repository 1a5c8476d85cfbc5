# Benchmark harness (tests/bench/README.md). Never part of the default ctest
# run's assertions on speed: the programs print figures and ratios.
#
#   cmake --build build --target bench            # run_bench.sh: everything
#   ctest --test-dir build -L bench               # a ~1 minute smoke run
#
# Targets: bench_http (loopback HTTP load generator, no engine), bench_jpeg
# (makes the 900x900 JPEG), bench_model and bench_train (engine in-process).
set(_cfa_bench_dir ${CMAKE_CURRENT_LIST_DIR})

add_library(cfa_bench_common STATIC ${_cfa_bench_dir}/bench_common.c)
target_include_directories(cfa_bench_common PUBLIC ${_cfa_bench_dir})
target_link_libraries(cfa_bench_common PUBLIC cfa_blas_cpu)
set_target_properties(cfa_bench_common PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)

if(TARGET cfa_core)
  # training images from files, for bench_model and bench_train
  add_library(cfa_bench_source STATIC ${_cfa_bench_dir}/bench_source.c)
  target_link_libraries(cfa_bench_source PUBLIC cfa_core cfa_media)
endif()

add_executable(bench_http ${_cfa_bench_dir}/bench_http.c)
target_link_libraries(bench_http PRIVATE cfa_bench_common Threads::Threads m)

add_executable(bench_jpeg ${_cfa_bench_dir}/bench_jpeg.c)
target_link_libraries(bench_jpeg PRIVATE cfa_bench_common cfa_media PkgConfig::TURBOJPEG m)

set(_cfa_bench_deps bench_http bench_jpeg)
if(TARGET cfa_core)
  foreach(_b bench_model bench_train)
    add_executable(${_b} ${_cfa_bench_dir}/${_b}.c)
    target_link_libraries(${_b} PRIVATE cfa_bench_common cfa_bench_source cfa_core cfa_media m)
    target_compile_definitions(${_b} PRIVATE CFA_BENCH_BACKBONE="${CFA_BACKBONE_PATH}")
    set_target_properties(${_b} PROPERTIES LINKER_LANGUAGE CXX)
    list(APPEND _cfa_bench_deps ${_b})
  endforeach()

  # Smoke test: proves bench_model runs end to end with tiny counts (label
  # bench, excluded from nothing by default but cheap: ~30-60 s on 2 cores).
  # Speed is never asserted. Exit 77 = skipped (no backbone or data).
  add_test(NAME bench.model_smoke
           COMMAND bench_model --data ${CFA_TEST_DATA_DIR}/magnetic_tile_mini --train 2
                   --epochs 1 --iters 1 --min-time 0 --batches 1,2 --size 320x320
                   --setting compressed=4/4 --no-minimal)
  set_tests_properties(bench.model_smoke PROPERTIES LABELS bench TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endif()

if(TARGET cfa-server)
  list(APPEND _cfa_bench_deps cfa-server)
endif()

# `bench`: the whole harness (in-process, HTTP, ratios). Extra flags through
# the cache variable CFA_BENCH_ARGS, e.g. -DCFA_BENCH_ARGS="--train-full".
set(CFA_BENCH_ARGS "" CACHE STRING "Extra arguments of tests/bench/run_bench.sh for the bench target")
separate_arguments(_cfa_bench_args UNIX_COMMAND "${CFA_BENCH_ARGS}")
add_custom_target(bench
  COMMAND ${CMAKE_COMMAND} -E env
          CFA_BACKBONE=${CFA_BACKBONE_PATH}
          /bin/bash ${_cfa_bench_dir}/run_bench.sh --build-dir ${CMAKE_BINARY_DIR}
          --data ${CFA_TEST_DATA_DIR} ${_cfa_bench_args}
  DEPENDS ${_cfa_bench_deps}
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  USES_TERMINAL
  COMMENT "Running the CFA benchmark harness (tests/bench/run_bench.sh)")
