# cfa_media: image decoding (JPEG, PNG), PNG encoding, heatmaps, regions and
# evaluation metrics. Plain C, no dependency on the engine.
add_library(cfa_media STATIC
  ${CMAKE_CURRENT_LIST_DIR}/image.c
  ${CMAKE_CURRENT_LIST_DIR}/png_encode.c
  ${CMAKE_CURRENT_LIST_DIR}/heatmap.c
  ${CMAKE_CURRENT_LIST_DIR}/metrics.c)
target_include_directories(cfa_media PUBLIC ${CMAKE_CURRENT_LIST_DIR})
set_target_properties(cfa_media PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON
                                           C_EXTENSIONS OFF POSITION_INDEPENDENT_CODE ON)
target_compile_definitions(cfa_media PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(cfa_media PUBLIC PkgConfig::TURBOJPEG PkgConfig::SPNG m)
