# bench/lib.sh: helpers of the benchmark scripts (source it; needs top_srcdir, top_builddir).

PIPITD="$top_builddir/agent/pipitd"
PIPIT="$top_builddir/agent/pipit"
PLUGINS="$top_builddir/plugins/lib"
MOCK_BROKER="$top_builddir/tests/kafka/mock_broker"
HZ=$(getconf CLK_TCK)

# bench_tmp: a private directory in $B, removed on exit with what runs in it.
bench_tmp() {
    B=$(mktemp -d "${TMPDIR:-/tmp}/pipit-bench.XXXXXX")
    BENCH_PIDS=
    trap 'for p in $BENCH_PIDS; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$B"' EXIT
}

# cpu_seconds PID: user + system CPU seconds the process has used so far.
cpu_seconds() {
    awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# run_ms PID: milliseconds on CPU of the threads the process has now
# (/proc/PID/task/*/schedstat, nanoseconds; threads that ended are not in it).
run_ms() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.1f\n", s / 1e6 }'
}

# thread_snap PID: one line per thread: tid, name, ns on CPU, time slices.
thread_snap() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s\n' "${t##*/}" "$(cat "$t/comm")" "$(cat "$t/schedstat" 2>/dev/null)"
    done | sort
}

# thread_delta PID BEFORE AFTER: ms on CPU and slices between two thread_snap,
# summed per role ("loop" is the main thread, "workers" the other pipitd ones).
thread_delta() {
    join "$2" "$3" | awk -v pid="$1" '{ n = $2; if (n == "pipitd") n = $1 == pid ? "loop" : "workers";
        else if (n ~ /^rdk:broker/) n = "rdk:brokers";
        ms[n] += ($7 - $3) / 1e6; sl[n] += $9 - $5 }
        END { for (n in ms) printf "%s %.1f ms / %d; ", n, ms[n], sl[n]; print "" }'
}

# hwm_mib PID / rss_mib PID: peak and current resident set, MiB.
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

# now_s: wall clock, seconds with nanoseconds.
now_s() { date +%s.%N; }

# calc EXPR: a number from awk.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# wait_until SECONDS COMMAND...: poll until COMMAND succeeds; 1 on timeout.
wait_until() {
    local deadline=$(( $(date +%s) + $1 )); shift
    while [ "$(date +%s)" -lt "$deadline" ]; do
        "$@" && return 0
        sleep 0.05
    done
    "$@"
}

# start_daemon CONFIG: pipitd in the background (PID in DPID), log in $B/pipitd.log.
start_daemon() {
    "$PIPITD" -c "$1" --plugin-dir "$PLUGINS" >"$B/pipitd.out" 2>"$B/pipitd.log" &
    DPID=$!
    BENCH_PIDS="$BENCH_PIDS $DPID"
}

stop_daemon() { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; }

# start_mock_broker [ARGS...]: the librdkafka mock cluster; BOOTSTRAP, MB_PID.
start_mock_broker() {
    "$MOCK_BROKER" --no-stdin "$@" >"$B/mb.out" 2>"$B/mb.err" &
    MB_PID=$!
    BENCH_PIDS="$BENCH_PIDS $MB_PID"
    wait_until 10 test -s "$B/mb.out" || return 1
    BOOTSTRAP=$(head -n 1 "$B/mb.out")
}

stop_mock_broker() { kill -TERM "$MB_PID" 2>/dev/null; wait "$MB_PID" 2>/dev/null; }

# median V1 V2 V3...: the median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }

RUNS=${BENCH_RUNS:-3}
