#!/bin/bash
# bench/idle.sh: the metric path at rest: the host collectors of conf/pipit.yaml into Kafka at 1 s and 10 s; CPU share and memory of pipitd.
# Cases: "1s" and "10s" run every collector, process included, at that interval;
# "1s+p30s" is conf/pipit.yaml's input list at agent.interval 1s (process keeps its interval: 30s).
. "$top_srcdir/bench/lib.sh"
bench_tmp
SECS=${IDLE_SECONDS:-60}

start_mock_broker || { echo "mock broker did not start"; exit 1; }
echo "### idle metric path: cpu, memory, load, disk, net, uptime, process into Kafka (mock cluster), ${SECS} s measured after 5 s"
echo
echo "| interval | run | pipitd CPU s | share of one core | CPU ms (schedstat) | share (schedstat) | RSS MiB | PSS MiB | anonymous MiB | peak RSS MiB | records |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
threads=()
for case in 1s 1s+p30s 10s; do
    interval=${case%%+*}
    pinterval=$interval
    [ "$case" = 1s+p30s ] && pinterval=30s
    shares=() sshares=()
    for run in $(seq "$RUNS"); do
        rm -rf "$B/state"
        cat >"$B/p.yaml" <<YAML
agent:
  state_dir: $B/state
  interval: $interval
  jitter: 0s
inputs:
  - plugin: cpu
    per_cpu: true
  - plugin: memory
  - plugin: load
  - plugin: disk
  - plugin: net
  - plugin: uptime
  - plugin: process
    interval: $pinterval
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
        start_daemon "$B/p.yaml"
        sleep 5
        cpu0=$(cpu_seconds "$DPID") ms0=$(run_ms "$DPID")
        thread_snap "$DPID" >"$B/threads0"
        sleep "$SECS"
        thread_snap "$DPID" >"$B/threads1"
        cpu=$(calc "$(cpu_seconds "$DPID") - $cpu0")
        ms=$(calc "$(run_ms "$DPID") - $ms0")
        rss=$(rss_mib "$DPID")
        hwm=$(hwm_mib "$DPID")
        pss=$(awk '/^Pss:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$DPID/smaps_rollup")
        anon=$(awk '/^Anonymous:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$DPID/smaps_rollup")
        stop_daemon
        recs=$(sed -n 's/.*output totals: batches=[0-9]* records=\([0-9]*\).*/\1/p' "$B/pipitd.log" | head -n 1)
        share=$(calc "$cpu / $SECS * 100")
        sshare=$(calc "$ms / $SECS / 10")
        threads+=("$case run $run: $(thread_delta "$DPID" "$B/threads0" "$B/threads1")")
        shares+=("$share") sshares+=("$sshare")
        printf '| %s | %s | %s | %s %% | %s | %s %% | %s | %s | %s | %s | %s |\n' "$case" "$run" \
            "$cpu" "$share" "$ms" "$sshare" "$rss" "$pss" "$anon" "$hwm" "$recs"
    done
    printf '| %s | median | | %s %% | | %s %% | | | | | |\n' "$case" "$(median "${shares[@]}")" \
        "$(median "${sshares[@]}")"
done
stop_mock_broker
echo
echo "Per thread (ms on CPU / time slices, from /proc/PID/task/*/schedstat):"
echo
printf -- '- %s\n' "${threads[@]}"
echo
