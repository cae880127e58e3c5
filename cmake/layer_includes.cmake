# Build-time check of one module's #include lines (run by cfl_module in CMakeLists.txt):
# a module may include the public headers of its own floor and the floors below it, its own
# internal headers, and util's; anything else is a reach upward or into another module's
# internals, and fails the build with the file and line.
# In: MOD, ALLOWED (public header names, ;-list), SOURCES (;-list), STAMP.
set(bad "")
foreach(src ${SOURCES})
  file(STRINGS "${src}" lines REGEX "^#include \"")
  foreach(line ${lines})
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" inc "${line}")
    if(inc MATCHES "^cfl/(.+)\\.h$")
      list(FIND ALLOWED "${CMAKE_MATCH_1}" i)
      if(i EQUAL -1)
        string(APPEND bad "${src}: '${inc}' belongs to a module that '${MOD}' does not build on\n")
      endif()
    elseif(inc MATCHES "^([a-z_]+)/" AND NOT CMAKE_MATCH_1 STREQUAL "${MOD}" AND NOT CMAKE_MATCH_1 STREQUAL "util")
      string(APPEND bad "${src}: '${inc}' is internal to module '${CMAKE_MATCH_1}'\n")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "layer check failed for module '${MOD}':\n${bad}")
endif()
file(WRITE "${STAMP}" "ok\n")
