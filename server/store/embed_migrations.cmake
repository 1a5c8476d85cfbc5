# embed_migrations.cmake - run as `cmake -P embed_migrations.cmake` (script mode)
# at build time (server/store/CMakeLists.txt): turns migrations/NNN_*.sql into a
# C file of byte arrays, so the schema is part of the binary and nothing is read
# at run time.

file(GLOB _mig "${CFA_MIGRATIONS_DIR}/[0-9]*.sql")
list(SORT _mig)
set(_body "/* Generated from migrations/NNN_name.sql by server/store/embed_migrations.cmake. Do not edit. */\n")
string(APPEND _body "#include <stddef.h>\n\nstruct store_migration { int version; const char *name; const char *sql; };\n\n")
set(_entries "")
set(_i 0)
foreach(_f ${_mig})
  get_filename_component(_name "${_f}" NAME)
  string(REGEX MATCH "^[0-9]+" _num "${_name}")
  math(EXPR _ver "${_num}")  # strips leading zeros
  file(READ "${_f}" _hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _arr "${_hex}")
  string(REGEX REPLACE "((0x..,){16})" "\\1\n    " _arr "${_arr}")
  string(APPEND _body "static const char mig_${_i}[] = {\n    ${_arr}0x00};\n")
  string(APPEND _entries "    {${_ver}, \"${_name}\", mig_${_i}},\n")
  math(EXPR _i "${_i} + 1")
endforeach()
string(APPEND _body "\nconst struct store_migration store_migrations[] = {\n${_entries}    {0, NULL, NULL}};\n")
string(APPEND _body "const int store_migrations_count = ${_i};\n")
# Only touch the output when it changes, to keep rebuilds minimal.
if(EXISTS "${CFA_MIGRATIONS_OUT}")
  file(READ "${CFA_MIGRATIONS_OUT}" _old)
else()
  set(_old "")
endif()
if(NOT _old STREQUAL _body)
  file(WRITE "${CFA_MIGRATIONS_OUT}" "${_body}")
endif()
