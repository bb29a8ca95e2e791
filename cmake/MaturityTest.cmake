# mat_add_test(NAME name SOURCES a.c [b.c] LIBS libs... LABEL unit|integration|fuzz [TIMEOUT s])
# One cmocka executable per source file (tests/unit/<lib>/test_<file>.c, docs/conventions.md);
# every ctest entry has LABELS and a TIMEOUT so `ctest -L unit` needs no database and nothing
# hangs CI.
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)

function(mat_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA maturity_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABEL}" TIMEOUT ${T_TIMEOUT})
endfunction()
