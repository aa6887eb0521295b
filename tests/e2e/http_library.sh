#!/bin/sh
# http_library.sh: pipitd maps libmicrohttpd and GnuTLS only when its HTTP endpoints are on; a missing or wrong libmicrohttpd stops startup with an error naming the key.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
plan 16

# mapped PID: the libmicrohttpd and GnuTLS objects mapped in PID, one a line.
mapped() { grep -o '[^/ ]*\(libmicrohttpd\|libgnutls\)[^/ ]*$' "/proc/$1/maps" | sort -u; }
# conf FILE [YAML...]: a config with a test input and output, then the lines given.
conf() {
    local f=$1; shift
    printf 'agent:\n  state_dir: %s\ninputs:\n  - plugin: %s\n    interval: 1h\n' \
        "$T/state" "$TESTSRC" >"$f"
    printf 'outputs:\n  - plugin: %s\n    path: %s\n' "$PIPIT_TEST_LIB/out_testsink.so" \
        "$T/out.jsonl" >>"$f"
    for l in "$@"; do printf '%s\n' "$l" >>"$f"; done
}
# fails_clean CONFIG: pipitd refuses CONFIG with an exit status, not a signal.
fails_clean() {
    : >"$T/pipitd.log"
    "$PIPITD" -c "$1" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/pipitd.out" 2>"$T/pipitd.log" &
    PIPITD_PID=$!
    stop_after=$(( $(date +%s) + 20 ))
    while kill -0 "$PIPITD_PID" 2>/dev/null && [ "$(date +%s)" -lt "$stop_after" ]; do
        sleep 0.1
    done
    stop_pipitd
    [ "$PIPITD_STATUS" -ne 0 ] && [ "$PIPITD_STATUS" -lt 128 ]
}

# --- off: neither library is mapped ---------------------------------------
conf "$T/off.yaml"
start_pipitd "$T/off.yaml"
wait_for 20 log_has "running $T/off.yaml"
ok $? "pipitd runs with the HTTP endpoints off" || show_log
m=$(mapped "$PIPITD_PID")
[ -z "$m" ]
ok $? "and maps neither libmicrohttpd nor GnuTLS" || diag "mapped: $m"
stop_pipitd
[ "$PIPITD_STATUS" = 0 ]
ok $? "and stops cleanly"

# --- on: the library is opened and /healthz answers -------------------------
conf "$T/on.yaml" 'http:' '  enabled: true' '  listen: 127.0.0.1:0'
: >"$T/pipitd.log"
start_pipitd "$T/on.yaml"
wait_for 20 serving
ok $? "pipitd serves with http.enabled: true" || show_log
[ "$(get /healthz)" = 200 ] && grep -q '"status":"ok"' "$T/body"
ok $? "/healthz answers 200 ok"
mapped "$PIPITD_PID" | grep -q '^libmicrohttpd\.so'
ok $? "libmicrohttpd is mapped" || diag "mapped: $(mapped "$PIPITD_PID")"
stop_pipitd
[ "$PIPITD_STATUS" = 0 ]
ok $? "and pipitd stops cleanly"

# --- missing: startup fails naming the library and the key ------------------
# PIPIT_TEST_MHD_SONAME is the test hook of agent/http_mhd.h: the library to
# open instead of libmicrohttpd; here one that no host has.
export PIPIT_TEST_MHD_SONAME=libpipit-test-absent-microhttpd.so.0
fails_clean "$T/on.yaml"
ok $? "with libmicrohttpd missing pipitd exits with an error status" || show_log
grep -q "$T/on.yaml:[0-9]*: http.enabled: .*cannot load libmicrohttpd (libpipit-test-absent-microhttpd.so.0; install the Debian package " "$T/pipitd.log"
ok $? "the error names the file, line, key http.enabled and the library" || show_log
! grep -q "running $T/on.yaml" "$T/pipitd.log"
ok $? "and nothing ran"
"$PIPIT" check -c "$T/on.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
[ $? = 1 ] && grep -q "on.yaml:[0-9]*: http.enabled: .*cannot load libmicrohttpd" "$T/check.out"
ok $? "pipit check says so too and exits 1" || sed 's/^/#   /' "$T/check.out"

printf 'agent:\n  role: aggregator\n' >"$T/agg.yaml"
sed -n '/^  state_dir/,$p' "$T/off.yaml" >>"$T/agg.yaml"
fails_clean "$T/agg.yaml"
ok $? "an aggregator with libmicrohttpd missing exits with an error status" || show_log
grep -q "agg.yaml:2: agent.role: the aggregator role turns the HTTP endpoints on (set http.enabled: false" "$T/pipitd.log"
ok $? "naming agent.role when http.enabled is its default" || show_log
printf 'http:\n  enabled: false\n' >>"$T/agg.yaml"
start_pipitd "$T/agg.yaml"
wait_for 20 log_has "running $T/agg.yaml"
ok $? "http.enabled: false runs the aggregator without it" || show_log
stop_pipitd

# --- wrong: a library without the functions ---------------------------------
export PIPIT_TEST_MHD_SONAME="$PIPIT_TEST_LIB/mhd_partial.so"
fails_clean "$T/on.yaml"
ok $? "with a libmicrohttpd that lacks functions pipitd exits with an error status" || show_log
grep -q "http.enabled: .*mhd_partial.so (libmicrohttpd) has no function MHD_start_daemon" "$T/pipitd.log"
ok $? "naming the function that is missing" || show_log
unset PIPIT_TEST_MHD_SONAME
