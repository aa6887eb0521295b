# tests/e2e/daemon.sh: start, watch and stop pipitd from shell tests (source after tests/lib.sh).

# start_pipitd CONFIG: run pipitd in the background, log in $T/pipitd.log.
start_pipitd() {
    "$PIPITD" -c "$1" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/pipitd.out" 2>"$T/pipitd.log" &
    PIPITD_PID=$!
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds
# or SECONDS of wall time have passed.
wait_for() {
    local deadline=$(( $(date +%s) + $1 )); shift
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if "$@"; then return 0; fi
        if [ -n "$PIPITD_PID" ] && ! kill -0 "$PIPITD_PID" 2>/dev/null; then
            diag "pipitd exited early"; return 1
        fi
        sleep 0.1
    done
    "$@"
}

# lines FILE: number of lines in FILE (0 if missing).
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
more_lines_than() { [ "$(lines "$1")" -gt "$2" ]; }
log_has() { grep -q -- "$1" "$T/pipitd.log"; }
# records_of INSTANCE: records of INSTANCE in $T/out.jsonl.
records_of() { n=$(grep -c "\"instance\":\"$1\"" "$T/out.jsonl" 2>/dev/null); echo "${n:-0}"; }
# accepted_of INSTANCE: the records the pipeline accepted from the input
# INSTANCE, from its totals line in the log at stop.
accepted_of() {
    sed -n "s/.*instance=$1 .*input totals: runs=[0-9]* records=\([0-9]*\) .*/\1/p" "$T/pipitd.log"
}

# stop_pipitd: SIGTERM and wait; sets PIPITD_STATUS.
stop_pipitd() {
    kill -TERM "$PIPITD_PID" 2>/dev/null
    wait "$PIPITD_PID"; PIPITD_STATUS=$?
    PIPITD_PID=
}

# show_log: the daemon's log as TAP diagnostics (on failure).
show_log() { sed 's/^/#   /' "$T/pipitd.log"; }

cleanup_pipitd() { [ -n "$PIPITD_PID" ] && kill -KILL "$PIPITD_PID" 2>/dev/null; rm -rf "$T"; }
setup_e2e() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/pipit-e2e.XXXXXX")
    trap cleanup_pipitd EXIT
    TESTSRC="$PIPIT_TEST_LIB/in_testsrc.so"
}
