# SPDX-License-Identifier: MIT
# Tests of the `kiln` command-line tool (tools/kiln), included by tests/CMakeLists.txt.
# Each runs the built binary through tests/cli/check.sh, which checks the exact exit
# status, regexes over stdout/stderr and, for --json output, the schema in schemas/
# (validated with /usr/bin/python3 and python3-jsonschema: scripts/validate-json.py).
# Labels: cpu;unit;cli. Not registered in the TSan tree (stress tests only there).
if(KILN_TESTS_STRESS_ONLY OR NOT TARGET kiln_cli)
  return()
endif()

set(KILN_CLI_CHECK ${PROJECT_SOURCE_DIR}/tests/cli/check.sh)
set(KILN_CLI_VALIDATE --python /usr/bin/python3
    --validator ${PROJECT_SOURCE_DIR}/scripts/validate-json.py)

# kiln_cli_test(<name> [check.sh options...] -- [kiln arguments...])
# Registers ctest `cli.<name>`: check.sh <options> -- <build>/bin/kiln <arguments>.
function(kiln_cli_test name)
  list(FIND ARGN "--" sep)
  if(sep LESS 0)
    message(FATAL_ERROR "kiln_cli_test(${name}): no '--' before the kiln arguments")
  endif()
  list(SUBLIST ARGN 0 ${sep} opts)
  math(EXPR first "${sep} + 1")
  set(args)
  list(LENGTH ARGN n)
  if(first LESS n)
    list(SUBLIST ARGN ${first} -1 args)
  endif()
  add_test(NAME cli.${name}
           COMMAND /bin/sh ${KILN_CLI_CHECK} ${opts} -- $<TARGET_FILE:kiln_cli> ${args})
  kiln_test_properties(cli.${name} LABELS cpu unit cli TIMEOUT 120)
endfunction()

# ---- top level ----
kiln_cli_test(help --rc 0 --stdout "^Usage: kiln" --stdout "^  info "
              --stdout "^  demo " --stdout "^  bench " -- --help)
kiln_cli_test(help_command --rc 0 --stdout "^Usage: kiln demo" -- help demo)
kiln_cli_test(version --rc 0 --stdout "^kiln [0-9]+\\.[0-9]+\\.[0-9]+ \\(library [0-9]+\\."
              -- --version)
kiln_cli_test(usage_no_command --rc 2 --no-stdout --stderr "^Usage: kiln" --)
kiln_cli_test(usage_unknown_command --rc 2 --no-stdout
              --stderr "unknown command 'frobnicate'" --stderr "kiln --help" -- frobnicate)
kiln_cli_test(usage_unknown_global_option --rc 2 --no-stdout
              --stderr "unknown option '--frob'" -- --frob)
kiln_cli_test(version_short --rc 0 --stdout "^kiln [0-9]+\\.[0-9]+\\.[0-9]+ " -- -V)
kiln_cli_test(usage_help_extra --rc 2 --no-stdout --stderr "unexpected argument 'x'" -- --help x)
kiln_cli_test(usage_version_takes_no_value --rc 2 --no-stdout
              --stderr "option '--version' takes no value" -- --version=1)
# Long options are spelled in full: getopt_long's abbreviations are refused.
kiln_cli_test(usage_abbreviated_global_option --rc 2 --no-stdout
              --stderr "unknown option '--vers'" -- --vers)
kiln_cli_test(usage_help_unknown_command --rc 2 --no-stdout
              --stderr "unknown command 'nosuch'" -- help nosuch)
kiln_cli_test(usage_help_two_commands --rc 2 --no-stdout
              --stderr "help takes one command name" -- help demo info)

# ---- info ----
kiln_cli_test(info_help --rc 0 --stdout "^Usage: kiln info" --stdout "--json" -- info --help)
kiln_cli_test(info_table --rc 0 --stdout "^Backends" --stdout "^  cpu +available"
              --stdout "^  cpu:0 " -- info)
kiln_cli_test(info_json --rc 0 --schema ${PROJECT_SOURCE_DIR}/schemas/info.json
              ${KILN_CLI_VALIDATE} --stdout "\"name\": \"cpu\"" -- info --json)
kiln_cli_test(info_unknown_option --rc 2 --no-stdout
              --stderr "kiln info: unknown option '--bogus'" --stderr "kiln info --help"
              -- info --bogus)
kiln_cli_test(info_unexpected_argument --rc 2 --no-stdout
              --stderr "unexpected argument 'extra'" -- info extra)
kiln_cli_test(info_help_short --rc 0 --stdout "^Usage: kiln info" -- info -h)
kiln_cli_test(info_json_takes_no_value --rc 2 --no-stdout
              --stderr "option '--json' takes no value \\(got '--json=yes'\\)" -- info --json=yes)

# ---- demo ----
kiln_cli_test(demo_help --rc 0 --stdout "^Usage: kiln demo" --stdout "--size" -- demo --help)
kiln_cli_test(demo_pass --rc 0 --stdout "^PASS cpu:0 " --stdout "^  upload +[0-9.]+ ms"
              --stdout "^  verify +[0-9.]+ ms" -- demo)
kiln_cli_test(demo_device_cpu --rc 0 --stdout "^PASS cpu:0 " --stdout "1000 floats"
              -- demo --device cpu:0 --size 1000)
# PoCL's device too (issue 6): the dialect kernels compiled and run on opencl:0.
kiln_cli_test(demo_opencl_pass --rc 0 --stdout "^PASS opencl:0 " --stdout "^  verify +[0-9.]+ ms"
              -- demo --device opencl:0 --size 1000)
set_tests_properties(cli.demo_opencl_pass PROPERTIES LABELS "opencl;unit;cli")
kiln_cli_test(demo_json --rc 0 --schema ${PROJECT_SOURCE_DIR}/schemas/demo.json
              ${KILN_CLI_VALIDATE} --stdout "\"status\": \"PASS\"" --stdout "\"passed\": true"
              --stdout "\"size\": 4096" -- demo --json --size 4096)
kiln_cli_test(demo_bad_device_option --rc 1 --stderr "nosuch:0" --stderr "--device"
              -- demo --device nosuch:0)
kiln_cli_test(demo_bad_device_env --rc 1 --env KILN_DEVICE=nosuch:0
              --stderr "nosuch:0" --stderr "KILN_DEVICE" -- demo --size 64)
kiln_cli_test(demo_bad_device_json --rc 1 --schema ${PROJECT_SOURCE_DIR}/schemas/demo.json
              ${KILN_CLI_VALIDATE} --stdout "\"passed\": false" --stdout "nosuch:0"
              -- demo --json --device nosuch:0)
kiln_cli_test(demo_bad_size --rc 2 --no-stdout --stderr "--size '0'" -- demo --size 0)
kiln_cli_test(demo_bad_size_text --rc 2 --no-stdout --stderr "--size '12x'" -- demo --size 12x)
kiln_cli_test(demo_missing_value --rc 2 --no-stdout --stderr "needs a value" -- demo --size)
kiln_cli_test(demo_unknown_option --rc 2 --no-stdout --stderr "unknown option '--fast'"
              -- demo --fast)
kiln_cli_test(demo_short_options --rc 0 --stdout "^PASS cpu:0 " --stdout "1000 floats"
              -- demo -d cpu:0 -s 1000)
kiln_cli_test(demo_missing_device --rc 2 --no-stdout
              --stderr "option '--device' needs a value: --device B:I" -- demo -d)
kiln_cli_test(demo_empty_device --rc 2 --no-stdout --stderr "--device needs a value like cpu:0"
              -- demo --device=)
kiln_cli_test(demo_abbreviated_option --rc 2 --no-stdout --stderr "unknown option '--siz'"
              -- demo --siz 64)
kiln_cli_test(demo_unexpected_argument --rc 2 --no-stdout --stderr "unexpected argument 'extra'"
              -- demo extra)

if(TARGET kiln-tests)
  add_dependencies(kiln-tests kiln_cli)
endif()

# ---- a malformed kiln environment variable (src/core/env.c): named once per process at
# error level, however many devices and contexts the command uses ----
add_test(NAME cli.env_bad_value_reported_once
         COMMAND /bin/sh -c "n=$(KILN_CPU_THREADS=abc KILN_POOL=Off '$<TARGET_FILE:kiln_cli>' demo 2>&1 | grep -c -e \"KILN_CPU_THREADS='abc': expected a number of threads\" -e \"KILN_POOL='Off': expected on, off or debug\"); echo \"lines naming the variables: $n\"; test \"$n\" = 2")
kiln_test_properties(cli.env_bad_value_reported_once LABELS cpu unit cli TIMEOUT 120)
