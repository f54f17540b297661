# Shared settings for hookline's own targets: warnings as errors, sanitizers, fast linking, PCH.

# Prefer lld, then gold: linking LibTorch programs with bfd is slow.
include(CheckCXXSourceCompiles)
if(NOT DEFINED HOOKLINE_LINKER_FLAG)
  set(HOOKLINE_LINKER_FLAG "")
  foreach(candidate lld gold)
    set(CMAKE_REQUIRED_LINK_OPTIONS "-fuse-ld=${candidate}")
    check_cxx_source_compiles("int main() { return 0; }" HOOKLINE_HAS_LD_${candidate})
    unset(CMAKE_REQUIRED_LINK_OPTIONS)
    if(HOOKLINE_HAS_LD_${candidate})
      set(HOOKLINE_LINKER_FLAG "-fuse-ld=${candidate}")
      break()
    endif()
  endforeach()
  set(HOOKLINE_LINKER_FLAG "${HOOKLINE_LINKER_FLAG}" CACHE INTERNAL "")
endif()

# Applies hookline's compile/link policy to one of our own targets.
function(hookline_configure_target target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-error=deprecated-declarations)
  # GCC 12 reports false -Wrestrict and -Wstringop-overflow positives inside libstdc++'s
  # std::string concatenation at -O3 (GCC PR 105329, PR 105651); ASan covers the real thing.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict -Wno-stringop-overflow)
  endif()
  if(HOOKLINE_LINKER_FLAG)
    target_link_options(${target} PRIVATE ${HOOKLINE_LINKER_FLAG})
  endif()
  if(HOOKLINE_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=${HOOKLINE_SANITIZE} -fno-omit-frame-pointer
                                            -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${HOOKLINE_SANITIZE})
    if(HOOKLINE_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # Boost.Asio uses std::atomic_thread_fence, which GCC warns TSan cannot model.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()

# One precompiled LibTorch header, built once and shared by every heavy target.
function(hookline_precompile_torch target)
  if(NOT HOOKLINE_PCH)
    return()
  endif()
  get_property(first GLOBAL PROPERTY HOOKLINE_PCH_OWNER)
  if(NOT first)
    set_property(GLOBAL PROPERTY HOOKLINE_PCH_OWNER ${target})
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  else()
    target_precompile_headers(${target} REUSE_FROM ${first})
  endif()
endfunction()

# Splits a target's unity build into `count` batches of about equal size. Every LibTorch
# translation unit pays again for what its sources use of LibTorch's inline code, so few large
# batches compile the library in about 2/3 of the CPU time of batches of 8 (CMake's default);
# two keep both cores busy. Call it after every source of the target is added.
function(hookline_unity_batches target count)
  get_target_property(sources ${target} SOURCES)
  set(n 0)
  foreach(source IN LISTS sources)
    get_source_file_property(skip ${source} TARGET_DIRECTORY ${target} SKIP_UNITY_BUILD_INCLUSION)
    if(source MATCHES "\\.cpp$" AND NOT skip)
      math(EXPR n "${n} + 1")
    endif()
  endforeach()
  math(EXPR size "(${n} + ${count} - 1) / ${count}")
  if(size LESS 1)
    set(size 1)
  endif()
  set_target_properties(${target} PROPERTIES UNITY_BUILD_BATCH_SIZE ${size})
endfunction()
