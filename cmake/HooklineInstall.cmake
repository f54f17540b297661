# `cmake --install` rules: libraries, headers and a CMake package, so another project can do
#
#   find_package(hookline 0.1 REQUIRED)              # or: COMPONENTS bus / COMPONENTS torch
#   target_link_libraries(app PRIVATE hookline::hookline)   # or hookline::bus (no LibTorch)
#
# Installed layout (under the prefix):
#   include/hookline/{events,tracing,hooks,core,callbacks,loggers,strategies,recipe}/**.hpp
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
# include/hookline/<part>/. Picked up at install time: new headers need no re-configure. A bus-only
# install has the parts without LibTorch (events/, tracing/).
set(_hookline_header_parts events tracing)
if(HOOKLINE_WITH_TORCH)
  list(APPEND _hookline_header_parts hooks core callbacks loggers strategies recipe)
endif()
foreach(part IN LISTS _hookline_header_parts)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${part}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hookline/${part}
          COMPONENT hookline_development
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
unset(_hookline_header_parts)

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
