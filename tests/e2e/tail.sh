#!/bin/sh
# tail.sh: pipitd with the tail input: glob pickup, logrotate (create and copytruncate) while lines are written, SIGKILL and resume from the checkpoint.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
command -v logrotate >/dev/null 2>&1 || { echo "1..0 # SKIP logrotate is not installed"; exit 0; }
plan 7
mkdir -p "$T/logs"
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
  - plugin: tail
    path: ["$T/logs/*.log"]
    read_from: beginning
    rotate_wait: 1s
    stats_interval: 0s
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
# writer FROM TO: append numbered lines, a little apart, as an application does: through a
# descriptor it keeps, reopened by name once logrotate's postrotate asks for it ($T/reopen).
# (Opening by name for each line would race logrotate's create: a line could land in a file
# made between its rename and its create, which it then moves aside as *.backup.)
writer() {
    i=$1
    exec 3>>"$T/logs/app.log"
    while [ "$i" -le "$2" ]; do
        if [ -e "$T/reopen" ]; then rm -f "$T/reopen"; exec 3>>"$T/logs/app.log"; fi
        echo "line $i" >&3
        i=$((i + 1))
        sleep 0.002
    done
    exec 3>&-
}
got() { grep -c "\"message\":\"line " "$T/out.jsonl" 2>/dev/null || echo 0; }
distinct() { grep -o '"message":"line [0-9]*"' "$T/out.jsonl" | sort -u | wc -l; }

start_pipitd "$T/p.yaml"
sleep 0.5
echo "other 1" >"$T/logs/other.log"
wait_for 10 grep -q '"message":"other 1"' "$T/out.jsonl"
ok $? "a file created after start is picked up by the glob" || show_log

for mode in create copytruncate; do
    cat >"$T/lr.conf" <<LR
$T/logs/app.log {
    $mode
    rotate 5
    missingok
    postrotate
        touch "$T/reopen"
    endscript
}
LR
    base=$(( $(distinct) ))
    [ "$mode" = create ] && base=0
    from=$((base + 1)); to=$((base + 600))
    if [ "$mode" = create ]; then
        writer $from $to &
        W=$!
        for k in 1 2 3; do sleep 0.3; logrotate -f -s "$T/lr.state" "$T/lr.conf"; done
        wait $W
        what="while writing"
    else
        # copytruncate loses, by its design, whatever is written between its
        # copy and its truncate and not yet read: each rotation follows a
        # burst of lines at once, so the lines not yet read at the truncate
        # must come from the copy.
        i=$from
        for k in 1 2 3; do
            writer $i $((i + 199)); i=$((i + 200))
            logrotate -f -s "$T/lr.state" "$T/lr.conf"
        done
        what="right after each burst of lines"
    fi
    wait_for 15 eval '[ "$(distinct)" -ge '$to' ]'
    ok $? "logrotate $mode $what: every line delivered ($(distinct) of $to)" || show_log
    [ "$(got)" -eq "$(distinct)" ]; ok $? "logrotate $mode: no line repeated ($(got) records)"
done

# SIGKILL, lines written meanwhile, restart: nothing lost.
rm -f "$T/reopen"
kill -KILL "$PIPITD_PID"; wait "$PIPITD_PID" 2>/dev/null; PIPITD_PID=
writer 1201 1300
start_pipitd "$T/p.yaml"
wait_for 15 eval '[ "$(distinct)" -ge 1300 ]'
ok $? "after SIGKILL and restart every line is delivered ($(distinct) of 1300)" || show_log
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
done_testing
