# The `install` CTest test (see CMakeLists.txt here), run as `cmake -D... -P run_install_test.cmake`:
#   1. cmake --install BUILD_DIR --prefix WORK_DIR/prefix   (component hookline_development)
#   2. check the installed package: config files present, no source/build-tree paths in them
#   3. configure CONSUMER_DIR with CMAKE_PREFIX_PATH=WORK_DIR/prefix (same generator, build type,
#      compiler), check it found *this* hookline, build it, run it.
# WORK_DIR is wiped first. Any failure ends the script with FATAL_ERROR naming the step.
cmake_minimum_required(VERSION 3.22)

foreach(var BUILD_DIR SOURCE_DIR WORK_DIR CONSUMER_DIR GENERATOR CXX_COMPILER WITH_TORCH)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()
set(config_args)  # BUILD_TYPE: optional (empty for a single-config build without a build type)
if(BUILD_TYPE)
  set(config_args --config "${BUILD_TYPE}")
endif()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs one step, streaming its output; stops the test with `what` and a hint if it fails.
function(step what hint)
  message("==== ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test FAILED at step '${what}' (exit status: ${rc}).\n${hint}")
  endif()
endfunction()

# ---- 1. install ----------------------------------------------------------------------------------
step("install ${BUILD_DIR} into ${prefix}"
     "Are the libraries built? Build them first (e.g. cmake --build --preset release)."
     "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
     ${config_args} --component hookline_development)

# ---- 2. the installed package --------------------------------------------------------------------
file(GLOB_RECURSE config_files "${prefix}/*/hooklineConfig.cmake")
list(LENGTH config_files n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "install test FAILED: expected one hooklineConfig.cmake under ${prefix}, "
                      "found ${n}: ${config_files}")
endif()
get_filename_component(package_dir "${config_files}" DIRECTORY)
message("==== package in ${package_dir}")
file(GLOB package_files "${package_dir}/*.cmake")
foreach(f IN LISTS package_files)
  file(READ "${f}" text)
  foreach(tree "${SOURCE_DIR}" "${BUILD_DIR}")
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      string(SUBSTRING "${text}" ${at} 160 excerpt)
      string(REGEX REPLACE "[\n\"].*" "" excerpt "${excerpt}")  # up to the end of the line/string
      message(FATAL_ERROR "install test FAILED: ${f} refers to the source/build tree ${tree} "
                          "(the package would not be relocatable): ${excerpt}")
    endif()
  endforeach()
endforeach()
foreach(header events/bus.hpp events/event.hpp)
  if(NOT EXISTS "${prefix}/include/hookline/${header}")
    message(FATAL_ERROR "install test FAILED: ${prefix}/include/hookline/${header} not installed")
  endif()
endforeach()

# ---- 3. a consumer project -----------------------------------------------------------------------
set(configure_args -S "${CONSUMER_DIR}" -B "${consumer_build}" -G "${GENERATOR}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(LINKER_FLAG)  # the faster linker hookline itself uses (linking LibTorch with bfd is slow)
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAG}")
endif()
step("configure the consumer (find_package(hookline))"
     "find_package(hookline) or one of its dependencies failed: see hooklineConfig.cmake."
     "${CMAKE_COMMAND}" ${configure_args})

# It must have used the package just installed, not some other hookline on the system.
file(STRINGS "${consumer_build}/CMakeCache.txt" found_dir REGEX "^hookline_DIR:")
string(REGEX REPLACE "^hookline_DIR:[A-Z]+=" "" found_dir "${found_dir}")
file(REAL_PATH "${found_dir}" found_dir)
file(REAL_PATH "${package_dir}" expected_dir)
if(NOT found_dir STREQUAL expected_dir)
  message(FATAL_ERROR "install test FAILED: the consumer found hookline in '${found_dir}', "
                      "expected '${expected_dir}'")
endif()

step("build the consumer" "The installed headers or the exported link interface are incomplete."
     "${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args})

file(GLOB_RECURSE consumer_exe "${consumer_build}/consumer" "${consumer_build}/consumer.exe")
if(NOT consumer_exe)
  message(FATAL_ERROR "install test FAILED: no consumer executable under ${consumer_build}")
endif()
list(GET consumer_exe 0 consumer_exe)
step("run the consumer" "The consumer's checks failed (see its output above)." "${consumer_exe}")

message("==== install test passed (WITH_TORCH=${WITH_TORCH})")
