# `cmake --install` rules: libraries, headers and a CMake package, so another project can do
#
#   find_package(hookline 0.1 REQUIRED)              # or: COMPONENTS bus / COMPONENTS torch
#   target_link_libraries(app PRIVATE hookline::hookline)   # or hookline::bus (no LibTorch)
#
# Installed layout (under the prefix):
#   include/hookline/{events,core,callbacks,loggers,strategies}/**.hpp
#   lib/libhookline_bus.a, lib/libhookline.a
#   lib/cmake/hookline/hooklineConfig.cmake, hooklineConfigVersion.cmake, hooklineTargets*.cmake
# Everything is in the install component `hookline_development` (test/install installs only that).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(HOOKLINE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/hookline"
    CACHE STRING "Where to install hooklineConfig.cmake, relative to the install prefix")
mark_as_advanced(HOOKLINE_INSTALL_CMAKEDIR)

# ---- targets -------------------------------------------------------------------------------------
# Our headers use concepts: a consumer must compile as C++20 at least, whatever its own default.
# (The build sets CMAKE_CXX_STANDARD 20; this carries the requirement into the export.)
target_compile_features(hookline_bus INTERFACE cxx_std_20)

# Imported as hookline::bus and hookline::hookline, the same names as the build tree's aliases.
set_target_properties(hookline_bus PROPERTIES EXPORT_NAME bus)
set(_hookline_install_targets hookline_bus)
if(HOOKLINE_WITH_TORCH)
  set_target_properties(hookline PROPERTIES EXPORT_NAME hookline)
  list(APPEND _hookline_install_targets hookline)
endif()

install(TARGETS ${_hookline_install_targets}
        EXPORT hooklineTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hookline_development
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT hookline_development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT hookline_development)
unset(_hookline_install_targets)

# ---- headers -------------------------------------------------------------------------------------
# Sources include each other as "hookline/<part>/...", so each part's tree of headers goes to
# include/hookline/<part>/. Picked up at install time: new headers need no re-configure (except
# to be left out of a bus-only install, below).
set(_hookline_header_parts events)
set(_hookline_header_excludes)
if(HOOKLINE_WITH_TORCH)
  list(APPEND _hookline_header_parts core callbacks loggers strategies)
else()
  # A bus-only install leaves out the events/ headers that need LibTorch (batch.hpp, hooks.hpp,
  # ...): those that include ATen/c10/torch headers, directly or through one another.
  file(GLOB _hookline_event_headers RELATIVE ${PROJECT_SOURCE_DIR}/events
       ${PROJECT_SOURCE_DIR}/events/*.hpp)
  set(_hookline_torch_includes "ATen/|c10/|torch/")
  set(_hookline_changed TRUE)
  while(_hookline_changed)
    set(_hookline_changed FALSE)
    foreach(header IN LISTS _hookline_event_headers)
      if(NOT header IN_LIST _hookline_header_excludes)
        file(STRINGS ${PROJECT_SOURCE_DIR}/events/${header} _hookline_hits
             REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](${_hookline_torch_includes})")
        if(_hookline_hits)
          list(APPEND _hookline_header_excludes ${header})
          string(REPLACE "." "\\." _hookline_escaped ${header})
          string(APPEND _hookline_torch_includes "|hookline/events/${_hookline_escaped}[\">]")
          set(_hookline_changed TRUE)
        endif()
      endif()
    endforeach()
  endwhile()
  list(TRANSFORM _hookline_header_excludes REPLACE "(.+)" "PATTERN;\\1;EXCLUDE")
endif()
foreach(part IN LISTS _hookline_header_parts)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${part}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hookline/${part}
          COMPONENT hookline_development
          FILES_MATCHING PATTERN "*.hpp" ${_hookline_header_excludes})
endforeach()
unset(_hookline_header_parts)
unset(_hookline_header_excludes)
unset(_hookline_event_headers)
unset(_hookline_torch_includes)
unset(_hookline_changed)
unset(_hookline_hits)
unset(_hookline_escaped)

# ---- CMake package -------------------------------------------------------------------------------
install(EXPORT hooklineTargets
        NAMESPACE hookline::
        FILE hooklineTargets.cmake
        DESTINATION ${HOOKLINE_INSTALL_CMAKEDIR}
        COMPONENT hookline_development)

# Substituted into hooklineConfig.cmake.in.
if(HOOKLINE_WITH_TORCH)
  set(HOOKLINE_CONFIG_WITH_TORCH ON)
else()
  set(HOOKLINE_CONFIG_WITH_TORCH OFF)
endif()
set(HOOKLINE_CONFIG_SANITIZE "${HOOKLINE_SANITIZE}")

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/hooklineConfig.cmake.in
  ${PROJECT_BINARY_DIR}/hooklineConfig.cmake
  INSTALL_DESTINATION ${HOOKLINE_INSTALL_CMAKEDIR}
  NO_SET_AND_CHECK_MACRO)
# 0.x: SameMajorVersion treats every 0.y as compatible with every other; tighten if 0.y breaks API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/hooklineConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)

install(FILES ${PROJECT_BINARY_DIR}/hooklineConfig.cmake
              ${PROJECT_BINARY_DIR}/hooklineConfigVersion.cmake
        DESTINATION ${HOOKLINE_INSTALL_CMAKEDIR}
        COMPONENT hookline_development)
