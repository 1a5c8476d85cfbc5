# torch.cmake - include()d where libtorch is wanted: by the top-level
# CMakeLists.txt, and by core/CMakeLists.txt when core is built on its own
# (core carries it so that build needs nothing outside core/).
#
# Finds torch and gives every C++ file of the including directory and below
# torch's libstdc++ ABI flag (-D_GLIBCXX_USE_CXX11_ABI=0 in PyTorch wheels
# before 2.7). torch puts it only on targets that link torch, but every C++
# file must use the same ABI, or cfa_core_io and cfa_core disagree on
# std::string and on struct layouts. C files are unaffected.
find_package(Torch REQUIRED)
if(TORCH_CXX_FLAGS)
  separate_arguments(_torch_cxx_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  foreach(_f IN LISTS _torch_cxx_flags)
    add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_f}>")
  endforeach()
endif()
