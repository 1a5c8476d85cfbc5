# inspect_run (server/inspect/inspect.c) below HTTP: the real pool and render
# thread, built from source, on the fake engine (fake_engine.c), with a real
# store in a temp directory (label: unit). No torch, so it also runs under
# CFA_SANITIZE_ADDRESS and CFA_SANITIZE_THREAD (tests/sanitize.sh).
add_executable(test_inspect ${CMAKE_CURRENT_LIST_DIR}/test_inspect.c
                            ${CMAKE_CURRENT_LIST_DIR}/fake_engine.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/inspect.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/decide.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/pool.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/render.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/roi_inspect.c
                            ${PROJECT_SOURCE_DIR}/server/inspect/contour.c)
target_include_directories(test_inspect PRIVATE ${PROJECT_SOURCE_DIR}/server/inspect/include
                                                ${PROJECT_SOURCE_DIR}/server/inspect)
target_link_libraries(test_inspect PRIVATE cfa_store cfa_media cfa_ops cfa_core_io
                                           PkgConfig::JANSSON PkgConfig::CMOCKA Threads::Threads m)
set_target_properties(test_inspect PROPERTIES LINKER_LANGUAGE CXX)
add_test(NAME unit.inspect COMMAND test_inspect)
set_tests_properties(unit.inspect PROPERTIES LABELS unit TIMEOUT 120)
