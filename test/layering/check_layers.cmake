# The folders of the library are layers; a file includes only its own layer and those below:
#
#   events/      the event bus (no LibTorch)
#   tracing/     trace records, sinks and specs (no LibTorch)
#   hooks/       the payload of every Lightning hook (LibTorch)
#   core/        Trainer, loops, Module, DataModule, data, checkpoints, and the interfaces the
#                loops drive (Callback, CallbackPack, Logger, Strategy)
#   callbacks/ loggers/ strategies/   what plugs into core (siblings: none includes another)
#   recipe/      recipe files, the registry, the Trainer's defaults, tracing a Trainer
#
# Run as: cmake -DSOURCE_DIR=<repo> -P check_layers.cmake. Prints every include that points up
# (or sideways between siblings) with file and line, and fails if there is one.
set(layers events tracing hooks core "callbacks|loggers|strategies" recipe)

set(rank 0)
foreach(layer IN LISTS layers)
  string(REPLACE "|" ";" folders "${layer}")
  foreach(folder IN LISTS folders)
    set(rank_${folder} ${rank})
  endforeach()
  math(EXPR rank "${rank} + 1")
endforeach()

set(violations 0)
set(checked 0)
foreach(layer IN LISTS layers)
  string(REPLACE "|" ";" folders "${layer}")
  foreach(folder IN LISTS folders)
    file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/${folder}/*.hpp
         ${SOURCE_DIR}/${folder}/*.cpp ${SOURCE_DIR}/${folder}/*.hpp.in)
    foreach(source IN LISTS sources)
      math(EXPR checked "${checked} + 1")
      file(STRINGS ${SOURCE_DIR}/${source} lines)
      set(line_number 0)
      foreach(line IN LISTS lines)
        math(EXPR line_number "${line_number} + 1")
        if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]hookline/([a-z_]+)/")
          set(target ${CMAKE_MATCH_1})
          if(NOT DEFINED rank_${target})
            message("${source}:${line_number}: includes hookline/${target}/, which is no layer")
            math(EXPR violations "${violations} + 1")
          elseif(NOT target STREQUAL folder AND rank_${target} GREATER_EQUAL rank_${folder})
            message("${source}:${line_number}: ${folder}/ includes hookline/${target}/, a layer "
                    "that is not below it (${line})")
            math(EXPR violations "${violations} + 1")
          endif()
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()

if(violations GREATER 0)
  message(FATAL_ERROR "layering: ${violations} include(s) point up a layer; see the list above "
                      "and test/layering/check_layers.cmake for the layers")
endif()
message("layering: ${checked} files, every include points down")
