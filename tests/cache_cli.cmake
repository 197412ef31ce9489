# SPDX-License-Identifier: MIT
# `kiln cache` (tools/kiln/cache_cmd.c): each test has a cache directory of its own
# under the tree (cli-cache/<name>), so a clear cannot race another test's list.
# Labels: cpu;unit;cli, and opencl for the ones that fill the cache through PoCL.
if(KILN_TESTS_STRESS_ONLY OR NOT TARGET kiln_cli)
  return()
endif()

set(kc_check /bin/sh ${PROJECT_SOURCE_DIR}/tests/cli/check.sh)
set(kc_schema --schema ${PROJECT_SOURCE_DIR}/schemas/cache.json --python /usr/bin/python3
    --validator ${PROJECT_SOURCE_DIR}/scripts/validate-json.py)
set(kc_dir ${CMAKE_BINARY_DIR}/cli-cache)

# kiln_cache_cli_test(<name> <labels> [check.sh options...] -- <command...>)
function(kiln_cache_cli_test name labels)
  add_test(NAME cli.${name} COMMAND ${kc_check} --env KILN_CACHE_DIR=${kc_dir}/${name} ${ARGN})
  kiln_test_properties(cli.${name} LABELS ${labels} TIMEOUT 120)
endfunction()

set(kiln $<TARGET_FILE:kiln_cli>)
kiln_cache_cli_test(cache_help "cpu;unit;cli" --rc 0 --stdout "^Usage: kiln cache"
                    --stdout "verify" -- ${kiln} cache --help)
kiln_cache_cli_test(cache_usage_no_action "cpu;unit;cli" --rc 2 --no-stdout
                    --stderr "which action" -- ${kiln} cache)
kiln_cache_cli_test(cache_usage_unknown_action "cpu;unit;cli" --rc 2 --no-stdout
                    --stderr "unknown action 'purge'" -- ${kiln} cache purge)
kiln_cache_cli_test(cache_stats_json "cpu;unit;cli" --rc 0 ${kc_schema}
                    --stdout "\"enabled\": true" -- ${kiln} cache stats --json)
kiln_cache_cli_test(cache_stats_text "cpu;unit;cli" --rc 0 --stdout "^Compile cache: /"
                    --stdout "state +on" -- ${kiln} cache stats)
kiln_cache_cli_test(cache_stats_off "cpu;unit;cli" --rc 0 ${kc_schema} --env KILN_CACHE=off
                    --stdout "\"reason\": \"KILN_CACHE=off\"" -- ${kiln} cache stats --json)
kiln_cache_cli_test(cache_clear_json "cpu;unit;cli" --rc 0 ${kc_schema}
                    --stdout "\"removed\": 0" -- ${kiln} cache clear --json)
kiln_cache_cli_test(cache_list_refused "cpu;unit;cli" --rc 1 --no-stdout
                    --env KILN_CACHE_DIR=relative/dir --stderr "relative path"
                    -- ${kiln} cache list)
kiln_cache_cli_test(cache_stats_refused "cpu;unit;cli" --rc 0 ${kc_schema}
                    --env KILN_CACHE_DIR=relative/dir --stdout "\"enabled\": false"
                    --stdout "relative path" -- ${kiln} cache stats --json)
# Through PoCL: a demo fills the cache, a second demo loads from it; then list, verify
# (with one entry spoiled: found, deleted) and clear. Each starts from an empty
# directory: the folders live in the build tree, and an earlier run's entries (of an
# older demo source, say) must not count.
set(kc_fill "${kiln} cache clear >/dev/null && ${kiln} demo --device opencl:0 >/dev/null && ${kiln} demo --device opencl:0 >/dev/null")
kiln_cache_cli_test(cache_list_json "opencl;unit;cli" --rc 0 ${kc_schema}
                    --stdout "\"ns\": \"program\"" --stdout "\"key\": \"[0-9a-f]{64}\""
                    -- /bin/sh -c "${kc_fill} && ${kiln} cache list --json")
kiln_cache_cli_test(cache_verify_json "opencl;unit;cli" --rc 0 ${kc_schema}
                    --stdout "\"bad\": 1" --stdout "checksum"
                    -- /bin/sh -c "${kc_fill} && ls -d $KILN_CACHE_DIR/program/* | xargs -n1 sh -c 'printf x | dd of=$0 bs=1 seek=200 conv=notrunc 2>/dev/null' && ${kiln} cache verify --json")
kiln_cache_cli_test(cache_verify_text "opencl;unit;cli" --rc 0
                    --stdout "^1 entry checked, 0 bad"
                    -- /bin/sh -c "${kc_fill} && ${kiln} cache verify")
kiln_cache_cli_test(cache_clear_text "opencl;unit;cli" --rc 0 --stdout "^removed 1 entry from /"
                    --stdout "^0 entries in"
                    -- /bin/sh -c "${kc_fill} && ${kiln} cache clear && ${kiln} cache list")
kiln_cache_cli_test(cache_list_json_refused "cpu;unit;cli" --rc 1 --no-stdout
                    --env KILN_CACHE_DIR=relative/dir --stderr "relative path"
                    -- ${kiln} cache list --json)
