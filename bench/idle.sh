#!/bin/bash
# bench/idle.sh: the metric path at rest: the default host collectors at 1 s and 10 s into Kafka; CPU share and memory of pipitd.
. "$top_srcdir/bench/lib.sh"
bench_tmp
SECS=${IDLE_SECONDS:-60}

start_mock_broker || { echo "mock broker did not start"; exit 1; }
echo "### idle metric path: cpu, memory, load, disk, net, uptime, process into Kafka (mock cluster), ${SECS} s measured after 5 s"
echo
echo "| interval | run | pipitd CPU s | share of one core | RSS MiB | peak RSS MiB | records |"
echo "|---|---|---:|---:|---:|---:|---:|"
for interval in 1s 10s; do
    shares=()
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
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
        start_daemon "$B/p.yaml"
        sleep 5
        cpu0=$(cpu_seconds "$DPID")
        sleep "$SECS"
        cpu=$(calc "$(cpu_seconds "$DPID") - $cpu0")
        rss=$(rss_mib "$DPID")
        hwm=$(hwm_mib "$DPID")
        stop_daemon
        recs=$(sed -n 's/.*output totals: batches=[0-9]* records=\([0-9]*\).*/\1/p' "$B/pipitd.log" | head -n 1)
        share=$(calc "$cpu / $SECS * 100")
        shares+=("$share")
        printf '| %s | %s | %s | %s %% | %s | %s | %s |\n' "$interval" "$run" "$cpu" "$share" \
            "$rss" "$hwm" "$recs"
    done
    printf '| %s | median | | %s %% | | | |\n' "$interval" "$(median "${shares[@]}")"
done
stop_mock_broker
echo
