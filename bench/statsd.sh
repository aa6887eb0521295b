#!/bin/bash
# bench/statsd.sh: a StatsD flood into pipitd's statsd input: lines aggregated per CPU second of pipitd.
. "$top_srcdir/bench/lib.sh"
bench_tmp
LINES=${STATSD_LINES:-4000000}
RATE=${STATSD_RATE:-1000000}            # offered lines a second
port=$((20000 + RANDOM % 20000))

echo "### statsd flood: $LINES lines over UDP on loopback at $RATE lines/s, 1000 series x 4 types, 20 lines a datagram"
echo
echo "| run | sent | received | dropped by the kernel | pipitd CPU s | lines per CPU second | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
rates=()
for run in $(seq "$RUNS"); do
    cat >"$B/p.yaml" <<YAML
agent:
  state_dir: $B/state
  jitter: 0s
spool:
  enabled: false
inputs:
  - plugin: statsd
    listen: 127.0.0.1:$port
    flush_interval: 1s
    rcvbuf: 16MiB
    max_series: 100000
outputs:
  - plugin: file
    path: $B/out.jsonl
YAML
    rm -rf "$B/state" "$B/out.jsonl"
    start_daemon "$B/p.yaml"
    wait_until 10 grep -q "running $B/p.yaml" "$B/pipitd.log" || { cat "$B/pipitd.log"; exit 1; }
    cpu0=$(cpu_seconds "$DPID")
    sent=$("$top_builddir/bench/udpflood" "$port" "$LINES" 1000 20 "$RATE" | sed 's/.*sent=\([0-9]*\).*/\1/')
    # statsd.lines counts the lines of each flush interval: wait for an
    # interval with none, then add them up.
    while :; do
        sleep 1.1
        tail_n=$(grep '"name":"statsd.lines"' "$B/out.jsonl" | tail -n 1 |
                 sed 's/.*"value":\([0-9.e+]*\).*/\1/')
        [ "$tail_n" = 0 ] && break
    done
    got=$(grep '"name":"statsd.lines"' "$B/out.jsonl" | sed 's/.*"value":\([0-9.e+]*\).*/\1/' |
          awk '{ s += $1 } END { printf "%d", s }')
    cpu=$(calc "$(cpu_seconds "$DPID") - $cpu0")
    hwm=$(hwm_mib "$DPID")
    stop_daemon
    rate=$(calc "$got / $cpu")
    rates+=("$rate")
    printf '| %s | %s | %s | %s | %s | %.0f | %s |\n' "$run" "$sent" "$got" "$((sent - got))" \
        "$cpu" "$rate" "$hwm"
done
printf '\nlines per CPU second: min %.0f, median %.0f\n\n' "$(minimum "${rates[@]}")" \
    "$(median "${rates[@]}")"
