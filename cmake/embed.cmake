# embed.cmake - turns files into C byte arrays at build time (script mode), so
# what they hold is part of the binary and nothing is read at run time. One
# script for every embedded file, so the arrays are written one way:
#
#   cmake -DIN=file -DOUT=file.c -DNAME=sym -P embed.cmake
#     IN as a NUL-terminated `const unsigned char sym[]` and `sym_len` (its
#     length without the NUL) (api/openapi.json).
#   cmake -DCFA_MIGRATIONS_DIR=dir -DCFA_MIGRATIONS_OUT=file.c -P embed.cmake
#     dir/NNN_*.sql, in order, as the table store_migrations[] with
#     store_migrations_count (server/store).

# The bytes of file as an array initialiser, 16 a line, NUL-terminated.
function(_cfa_embed_bytes file out_var)
  file(READ "${file}" _hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _arr "${_hex}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n    " _arr "${_arr}")
  set(${out_var} "{\n    ${_arr}0x00}" PARENT_SCOPE)
endfunction()

# Only touch the output when it changes, to keep rebuilds minimal.
function(_cfa_embed_write out body)
  if(EXISTS "${out}")
    file(READ "${out}" _old)
  else()
    set(_old "")
  endif()
  if(NOT _old STREQUAL body)
    file(WRITE "${out}" "${body}")
  endif()
endfunction()

if(DEFINED CFA_MIGRATIONS_DIR)
  file(GLOB _mig "${CFA_MIGRATIONS_DIR}/[0-9]*.sql")
  list(SORT _mig)
  set(_body "/* Generated from migrations/NNN_name.sql by cmake/embed.cmake. Do not edit. */\n")
  string(APPEND _body "#include <stddef.h>\n\nstruct store_migration { int version; const char *name; const char *sql; };\n\n")
  set(_entries "")
  set(_i 0)
  foreach(_f ${_mig})
    get_filename_component(_name "${_f}" NAME)
    string(REGEX MATCH "^[0-9]+" _num "${_name}")
    math(EXPR _ver "${_num}")  # strips leading zeros
    _cfa_embed_bytes("${_f}" _arr)
    string(APPEND _body "static const char mig_${_i}[] = ${_arr};\n")
    string(APPEND _entries "    {${_ver}, \"${_name}\", mig_${_i}},\n")
    math(EXPR _i "${_i} + 1")
  endforeach()
  string(APPEND _body "\nconst struct store_migration store_migrations[] = {\n${_entries}    {0, NULL, NULL}};\n")
  string(APPEND _body "const int store_migrations_count = ${_i};\n")
  _cfa_embed_write("${CFA_MIGRATIONS_OUT}" "${_body}")
else()
  file(SIZE "${IN}" _n)
  _cfa_embed_bytes("${IN}" _arr)
  get_filename_component(_in_name "${IN}" NAME)
  set(_body "/* Generated from ${_in_name} by cmake/embed.cmake. Do not edit. */\n#include <stddef.h>\n")
  string(APPEND _body "const unsigned char ${NAME}[] = ${_arr};\n")
  string(APPEND _body "const size_t ${NAME}_len = ${_n};\n")
  _cfa_embed_write("${OUT}" "${_body}")
endif()
