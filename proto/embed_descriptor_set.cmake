# cmake -DINPUT=set.pb -DOUTPUT=set.c -P embed_descriptor_set.cmake
# Writes INPUT's bytes as the C array declared in maturity_descriptor_set.h.
# Pure CMake, so the build needs no xxd.
file(READ ${INPUT} _hex HEX)
# 16 bytes a line, each as 0xNN (CMake regexes have no {n}: spell the line out).
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
string(REPEAT "0x..," 16 _line)
string(REGEX REPLACE "(${_line})" "\\1\n  " _bytes "${_bytes}")
string(REGEX REPLACE "[ \n]+$" "" _bytes "${_bytes}")
file(WRITE ${OUTPUT} "/* Generated from ${INPUT} by proto/embed_descriptor_set.cmake. */
#include \"maturity_descriptor_set.h\"

const unsigned char maturity_descriptor_set[] = {
  ${_bytes}
};
const size_t maturity_descriptor_set_len = sizeof maturity_descriptor_set;
")
