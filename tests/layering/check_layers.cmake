# The one-way layering of src/ (docs/ARCHITECTURE.md), checked on every #include "…": a folder may
# include only itself and the folders below it. CMake's separate libraries stop upward calls at
# link time; this check also stops an upward include of a header-only piece. Run by ctest as
# `layering` (cmake -DSRC=<src dir> -P check_layers.cmake); fails listing every offending line.
cmake_minimum_required(VERSION 3.18)
if(NOT SRC)
  message(FATAL_ERROR "check_layers: pass -DSRC=<source folder>")
endif()

# Component → the components it may include (itself always). ops/cpu and ops/cuda are the
# implementations below the ops front end: they see only their own folder, util and the few
# front-end headers listed in ops_interfaces.
set(allow_util "")
set(allow_io util)
set(allow_config util)
set(allow_data util)
set(allow_ops util ops/cpu ops/cuda)
set(allow_ops/cpu util)
set(allow_ops/cuda util)
set(allow_model util io config ops)
set(allow_sdm util io config ops model)
set(allow_csp util io config ops model)
set(allow_peft util io config ops model eval)
set(allow_eval util)
set(allow_infer util io config ops model)
set(allow_train util io config data ops model sdm)
set(allow_finetune util io config data ops model eval peft train)
set(allow_pipeline util io config data ops model sdm csp peft eval infer train finetune)
set(allow_cli util io config data ops model sdm csp peft eval infer train finetune pipeline)
# Headers of the ops front end that the implementations below it may read: the input structs,
# the options (plain data), the autograd helpers and the SDM gate's forms and constants; they
# include nothing above ops.
set(ops_interfaces ops/selective_scan.h ops/mamba_inner.h ops/autograd_placeholders.h ops/options.h
                   ops/backend.h ops/channel_gate.h)

function(component_of path out)
  string(REGEX MATCH "^[a-z_]+" top "${path}")
  if(top STREQUAL "ops" AND path MATCHES "^ops/(cpu|cuda)/")
    set(top "ops/${CMAKE_MATCH_1}")
  endif()
  set(${out} "${top}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE files RELATIVE "${SRC}" "${SRC}/*.h" "${SRC}/*.cpp" "${SRC}/*.cu" "${SRC}/*.cuh")
set(errors "")
set(checked 0)
foreach(f IN LISTS files)
  component_of("${f}" from)
  if(NOT DEFINED allow_${from})
    string(APPEND errors "\n  ${f}: folder '${from}' has no entry in tests/layering/check_layers.cmake")
    continue()
  endif()
  file(STRINGS "${SRC}/${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" inc "${line}")
    if(NOT inc MATCHES "/")
      continue()  # a file beside this one
    endif()
    math(EXPR checked "${checked} + 1")
    component_of("${inc}" to)
    if(to STREQUAL from OR to IN_LIST allow_${from})
      continue()
    endif()
    if(from MATCHES "^ops/" AND inc IN_LIST ops_interfaces)
      continue()
    endif()
    string(APPEND errors "\n  ${f}: includes \"${inc}\" (${from} → ${to} is not a downward edge)")
  endforeach()
endforeach()
if(errors)
  message(FATAL_ERROR "layering: upward or unlisted includes:${errors}")
endif()
list(LENGTH files n)
message(STATUS "layering: ${n} files, ${checked} includes, all one-way")
