#!/bin/bash
# bench/logpath.sh: the log path: pipitd tails a generated access log into the mock Kafka cluster until every record is acknowledged; kcat producing the same lines as the floor, in the same run.
. "$top_srcdir/bench/lib.sh"
bench_tmp
LINES=${LOG_LINES:-2000000}
CODEC=${LOG_CODEC:-zlib}
port=$((20000 + RANDOM % 20000))

"$top_builddir/bench/loggen" "$LINES" >"$B/access.log"
bytes=$(stat -c %s "$B/access.log")
mib=$(calc "$bytes / 1048576")
echo "### log path: $LINES lines ($mib MiB) tailed into the mock cluster (3 brokers, 6 partitions), $CODEC level 1, until acknowledged"
echo
echo "| run | what | wall s | MiB/s | CPU s | CPU s per GiB | peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|"

# delivered: pipitd's count of records the kafka output had acknowledged.
delivered() {
    curl -s "http://127.0.0.1:$port/metrics" |
        awk '/^pipit_output_records_total/ { s += $2 } END { printf "%d", s }'
}

rates=() cpus=()
for run in $(seq "$RUNS"); do
    start_mock_broker --no-default-topics --topic pipit.logs:6 --topic raw.lines:6 ||
        { echo "mock broker did not start"; exit 1; }
    cat >"$B/p.yaml" <<YAML
agent:
  state_dir: $B/state
  jitter: 0s
wire:
  compression: $CODEC
  level: 1
http:
  enabled: true
  listen: 127.0.0.1:$port
inputs:
  - plugin: tail
    path: [$B/access.log]
    read_from: beginning
outputs:
  - plugin: kafka
    brokers: $BOOTSTRAP
YAML
    rm -rf "$B/state"
    t0=$(now_s)
    start_daemon "$B/p.yaml"
    done_all() { [ "$(delivered)" -ge "$LINES" ]; }
    wait_until 600 done_all || { echo "not every record was acknowledged: $(delivered)"; tail "$B/pipitd.log"; exit 1; }
    t1=$(now_s)
    cpu=$(cpu_seconds "$DPID")
    hwm=$(hwm_mib "$DPID")
    stop_daemon
    wall=$(calc "$t1 - $t0")
    rate=$(calc "$mib / $wall")
    per_gib=$(calc "$cpu / ($bytes / 1073741824)")
    rates+=("$rate"); cpus+=("$per_gib")
    printf '| %s | pipitd (tail, spool, kafka) | %s | %s | %s | %s | %s |\n' "$run" "$wall" \
        "$rate" "$cpu" "$per_gib" "$hwm"

    # the floor: kcat producing the raw lines, gzip, same cluster
    t0=$(now_s)
    /usr/bin/time -f '%U %S %M' -o "$B/kcat.time" \
        kcat -P -b "$BOOTSTRAP" -t raw.lines -z gzip -l "$B/access.log" 2>"$B/kcat.err"
    t1=$(now_s)
    read -r ku ks kmax <"$B/kcat.time"
    kcpu=$(calc "$ku + $ks")
    kwall=$(calc "$t1 - $t0")
    printf '| %s | kcat -P -z gzip (the floor) | %s | %s | %s | %s | %s |\n' "$run" "$kwall" \
        "$(calc "$mib / $kwall")" "$kcpu" "$(calc "$kcpu / ($bytes / 1073741824)")" \
        "$(calc "$kmax / 1024")"
    stop_mock_broker
done
printf '\npipitd: MiB/s min %s, median %s; CPU s per GiB min %s, median %s\n\n' \
    "$(minimum "${rates[@]}")" "$(median "${rates[@]}")" "$(minimum "${cpus[@]}")" \
    "$(median "${cpus[@]}")"
