# tests/kafka/broker.sh: start, command and stop mock_broker from shell tests (source after tests/e2e/daemon.sh).

MOCK_BROKER="$top_builddir/tests/kafka/mock_broker"
MB_PID=
MB_EARLY=                               # 1 once mock_broker was found gone
BROKER_NETNS=                           # set: the broker and kcat run in this network namespace

# need_kcat: skip the whole test when kcat (the consumer of the tests) is missing.
need_kcat() {
    command -v kcat >/dev/null 2>&1 && return 0
    echo "1..0 # SKIP kcat is not installed (contrib/install-deps.sh --test)"
    exit 0
}

# start_broker [ARGS...]: run mock_broker with commands through fd 8;
# sets BOOTSTRAP and MB_PID. Returns 1 when no bootstrap line came.
start_broker() {
    mkfifo "$T/mb.in" || return 1
    ${BROKER_NETNS:+ip netns exec "$BROKER_NETNS"} "$MOCK_BROKER" "$@" <"$T/mb.in" >"$T/mb.out" 2>"$T/mb.err" &
    MB_PID=$!
    exec 8>"$T/mb.in"
    local i=0
    while [ ! -s "$T/mb.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    BOOTSTRAP=$(head -n 1 "$T/mb.out")
    [ -n "$BOOTSTRAP" ]
}

# broker_alive: 0 while mock_broker runs; otherwise reaps it, says how it
# ended (exit status, the end of its stderr) as TAP diagnostics, returns 1.
# (A child that ended is a zombie until waited for, so kill -0 cannot tell.)
broker_alive() {
    [ -n "$MB_PID" ] || return 1
    case $(sed 's/.*) \(.\).*/\1/' "/proc/$MB_PID/stat" 2>/dev/null) in
        "" | Z) ;;
        *) return 0 ;;
    esac
    wait "$MB_PID"
    echo "# mock_broker exited early, status $?; its stderr ends:"
    tail -n 5 "$T/mb.err" | sed 's/^/#   /'
    exec 8>&-
    MB_PID= MB_EARLY=1
    return 1
}

# broker_cmd COMMAND...: send one command and wait for its answer (5 s);
# returns 0 when it answered ok.
broker_cmd() {
    local before i=0
    broker_alive || return 1
    before=$(lines "$T/mb.out")
    (trap '' PIPE; echo "$*" >&8) 2>/dev/null   # a broker gone since: no SIGPIPE
    while [ "$(lines "$T/mb.out")" -le "$before" ] && [ $i -lt 50 ]; do
        sleep 0.1; i=$((i + 1))
    done
    [ "$(tail -n 1 "$T/mb.out")" = ok ]
}

# stop_broker: quit and wait for it; 1 when it had exited early.
stop_broker() {
    [ -n "$MB_PID" ] || return "${MB_EARLY:-0}"
    broker_alive || return 1
    (trap '' PIPE; echo quit >&8) 2>/dev/null
    exec 8>&-
    wait "$MB_PID"
    MB_PID=
}

# consume TOPIC FORMAT: every message of TOPIC from the beginning, through
# kcat's -f FORMAT, then exit.
consume() {
    ${BROKER_NETNS:+ip netns exec "$BROKER_NETNS"} kcat -C -q -b "$BOOTSTRAP" -t "$1" -o beginning -e -f "$2" 2>>"$T/kcat.err"
}

# count_messages TOPIC: number of messages in TOPIC.
count_messages() { consume "$1" '%o\n' | wc -l; }

# topic_seqs TOPIC: the batch sequence number of each message of TOPIC,
# one per line in topic order (the values decoded by pipit decode).
topic_seqs() {
    consume "$1" '%s' | "$PIPIT" decode --header-only 2>>"$T/decode.err" |
        sed -n 's/^{"batch":{.*"seq":\([0-9]*\),.*/\1/p'
}

# log_value KEY LINE-PATTERN: the number after KEY= on the log line matching
# LINE-PATTERN (e.g. log_value batches "output totals").
log_value() {
    sed -n "/$2/s/.*[ \"]$1=\([0-9]*\).*/\1/p" "$T/pipitd.log" | tail -n 1
}

# agent_id: the agent id pipitd logged at start.
agent_id() { sed -n 's/.*agent id \([0-9a-f-]\{36\}\).*/\1/p' "$T/pipitd.log" | head -n 1; }

cleanup_kafka() {
    [ -n "$MB_PID" ] && kill -TERM "$MB_PID" 2>/dev/null
    cleanup_pipitd
}

# setup_kafka: setup_e2e, kcat present, and a cleanup that stops the broker.
setup_kafka() {
    need_kcat
    setup_e2e
    trap cleanup_kafka EXIT
}
