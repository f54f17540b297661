# CTest `trace_cli`: runs hookline-trace on the fixture traces of this directory and checks exit
# codes and output.
#   cmake -DTOOL=path/to/hookline-trace -DFIXTURES=test/tools/trace -DWORK=scratch-dir -P cli_test.cmake
# The fixtures are real traces written by test/recipe/trace_tests.cpp (HOOKLINE_TRACE_FIXTURES),
# plus hand-broken files (bad_json, empty, missing_field, number_overflow, wrong_type).
cmake_minimum_required(VERSION 3.22)
foreach(var TOOL FIXTURES WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "cli_test.cmake needs -D${var}=...")
  endif()
endforeach()
file(MAKE_DIRECTORY ${WORK})
set(failures 0)

# expect(CODE NEEDLE arg...): runs the tool with the args; its exit code must be CODE and its
# output (stdout + stderr) must contain NEEDLE (unless NEEDLE is "").
function(expect code needle)
  execute_process(COMMAND ${TOOL} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err TIMEOUT 60)
  set(all "${out}${err}")
  string(REPLACE ";" " " shown "${ARGN}")
  if(NOT rc STREQUAL "${code}")
    message(SEND_ERROR "hookline-trace ${shown}: exit ${rc}, expected ${code}\n${all}")
  elseif(NOT needle STREQUAL "")
    string(FIND "${all}" "${needle}" at)
    if(at EQUAL -1)
      message(SEND_ERROR "hookline-trace ${shown}: output lacks '${needle}':\n${all}")
    endif()
  endif()
  set(last_output "${all}" PARENT_SCOPE)
endfunction()

# require_fields(EVENT I field...): the Chrome trace event EVENT (number I) has every field.
function(require_fields event i)
  foreach(field ${ARGN})
    string(JSON value ERROR_VARIABLE missing GET "${event}" ${field})
    if(missing)
      message(SEND_ERROR "chrome: event ${i} has no '${field}': ${event}")
    endif()
  endforeach()
endfunction()

# Help and usage.
expect(0 "check" --help)
foreach(sub summary filter diff check chrome tail)
  expect(0 "Usage" ${sub} --help)
endforeach()
expect(2 "A subcommand is required")
expect(2 "" frobnicate)
expect(2 "" check)  # no file

# check: real traces of every loop variation pass; a hook out of order does not.
foreach(name fit validate test predict accumulate skip_rest_of_epoch skip_batch
             mid_epoch_validation exception manual two_val_loaders sigterm
             fit_save_then_resume_then_test good reordered)
  expect(0 ": ok:" check ${FIXTURES}/${name}.jsonl)
endforeach()
expect(0 "3 run(s) (fit, fit, test)" check ${FIXTURES}/fit_save_then_resume_then_test.jsonl)
expect(1 "out_of_order.jsonl:191: hook out of order: expected 'on_after_batch_transfer'"
       check ${FIXTURES}/out_of_order.jsonl)
expect(1 "preceding hooks:" check ${FIXTURES}/out_of_order.jsonl)

# diff: the planted reordering, at its position; identical traces; ignoring fields.
expect(1 "traces differ at record 186" diff ${FIXTURES}/good.jsonl ${FIXTURES}/reordered.jsonl)
expect(1 "reordered: " diff ${FIXTURES}/good.jsonl ${FIXTURES}/reordered.jsonl)
expect(0 "traces match" diff ${FIXTURES}/good.jsonl ${FIXTURES}/good.jsonl)
expect(0 "traces match" diff --kind emit --event on_train_epoch_start
       ${FIXTURES}/good.jsonl ${FIXTURES}/reordered.jsonl)
expect(1 "changed: " diff --compare bus ${FIXTURES}/good.jsonl ${FIXTURES}/fit.jsonl)

# Malformed input: file and line named, exit 2.
expect(2 "bad_json.jsonl:3: bad JSON at column" check ${FIXTURES}/bad_json.jsonl)
expect(2 "missing_field.jsonl:2: missing field 'event'" summary ${FIXTURES}/missing_field.jsonl)
# Valid JSON that cannot be represented (found by fuzz_trace_lines).
expect(2 "number_overflow.jsonl:2: bad JSON: number overflow parsing '6E6181071'" check
       ${FIXTURES}/number_overflow.jsonl)
expect(2 "wrong_type.jsonl:2: field 'seq' must be an integer" filter ${FIXTURES}/wrong_type.jsonl)
expect(2 "cannot open" check ${FIXTURES}/no-such-file.jsonl)
expect(2 "--epoch '3..1': the range is empty" filter --epoch 3..1 ${FIXTURES}/fit.jsonl)

# filter and summary.
expect(0 "" filter --kind emit --event on_train_epoch_start ${FIXTURES}/fit.jsonl)
string(REGEX MATCHALL "\n" lines "${last_output}")
list(LENGTH lines n)
if(NOT n EQUAL 2)
  message(SEND_ERROR "filter: expected 2 on_train_epoch_start emissions, got ${n}")
endif()
expect(0 "\"batch_idx\":2" filter --epoch 1 --batch 2..2 --event "on_train_batch_*"
       --subscriber lm ${FIXTURES}/fit.jsonl)
expect(0 "SkipRestOfEpoch by lm" filter --text --event on_train_batch_start --kind emit
       ${FIXTURES}/skip_rest_of_epoch.jsonl)
expect(0 "p99 us" summary ${FIXTURES}/fit.jsonl)
expect(0 "lm.optimizer_step" summary --by call ${FIXTURES}/fit.jsonl)
expect(2 "--by 'x'" summary --by x ${FIXTURES}/fit.jsonl)

# chrome: valid JSON with the trace-event fields.
expect(0 "" chrome ${FIXTURES}/fit.jsonl -o ${WORK}/fit.json)
file(READ ${WORK}/fit.json chrome)
string(JSON count LENGTH "${chrome}" traceEvents)
if(count LESS 100)
  message(SEND_ERROR "chrome: only ${count} trace events")
endif()
set(spans 0)
math(EXPR last "${count} - 1")
foreach(i RANGE 0 ${last} 7)
  string(JSON event GET "${chrome}" traceEvents ${i})
  require_fields("${event}" ${i} name ph pid)
  string(JSON ph GET "${event}" ph)
  if(ph STREQUAL "X")
    require_fields("${event}" ${i} ts dur tid cat args)
    string(JSON cat GET "${event}" cat)
    if(cat STREQUAL "span")
      math(EXPR spans "${spans} + 1")
    endif()
  endif()
endforeach()
string(FIND "${chrome}" "\"name\":\"train_epoch\",\"cat\":\"span\"" epoch_span)
if(epoch_span EQUAL -1)
  message(SEND_ERROR "chrome: no train_epoch span")
endif()

# tail: nothing listens on the port -> a clear error.
expect(2 "cannot connect" tail 127.0.0.1:1 --wait 0)

# Bad input is refused with exit 2, naming what is wrong (issue 29 item 9).
expect(2 "empty.jsonl: no trace records" check ${FIXTURES}/empty.jsonl)
expect(2 "--stage 'fitt': unknown; expected one of fit, validate, test, predict"
       filter --stage fitt ${FIXTURES}/fit.jsonl)
expect(2 "--kind 'emitt': unknown; expected one of emit, call" filter --kind emitt
       ${FIXTURES}/fit.jsonl)
expect(2 "--lane 'fast': unknown" summary --lane fast ${FIXTURES}/fit.jsonl)
expect(0 "" filter --kind "em*" --stage fit ${FIXTURES}/fit.jsonl)
expect(2 "the port '99999' is not a number from 1 to 65535" tail 127.0.0.1:99999 --wait 0)
expect(2 "the port 'x' is not a number" tail x --wait 0)
expect(0 "hookline-trace 0." --version)

# chrome merges the files of a DDP run's ranks into one trace, a process per rank (issue 29 item 3).
file(READ ${FIXTURES}/fit.jsonl rank0)
string(REPLACE "\"rank\":0" "\"rank\":1" rank1 "${rank0}")
file(WRITE ${WORK}/fit.rank1.jsonl "${rank1}")
expect(0 "" chrome ${FIXTURES}/fit.jsonl ${WORK}/fit.rank1.jsonl -o ${WORK}/ranks.json)
file(READ ${WORK}/ranks.json ranks)
foreach(rank 0 1)
  string(FIND "${ranks}" "\"args\":{\"name\":\"rank ${rank}\"}" at)
  if(at EQUAL -1)
    message(SEND_ERROR "chrome with two ranks' files: no process for rank ${rank}")
  endif()
endforeach()
expect(0 ": ok:" check ${WORK}/fit.rank1.jsonl)
# A DDP rank > 0 runs no prepare_data (Lightning: each node's local rank 0 does); its trace
# (ddp_rank1.jsonl: ddp_child ddp with HOOKLINE_TRACE, rank 1's file) passes check.
expect(0 ": ok: 1 run(s) (fit)" check ${FIXTURES}/ddp_rank1.jsonl)
