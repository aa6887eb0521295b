#!/bin/sh
# quickstart.sh: install what is missing, build pipit, and run the whole pipeline on this
# machine: a Kafka-protocol broker (librdkafka's mock cluster on loopback), an agent with the
# default collectors, and an aggregator storing into SQLite; then show what was stored.
# Usage: contrib/quickstart.sh [SECONDS]   (default 20)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-20}

contrib/install-deps.sh
if [ ! -x build/agent/pipitd ] || [ configure.ac -nt build/Makefile ]; then
    mkdir -p build
    echo "quickstart: building (log: build/build.log)"
    { autoreconf -fi && (cd build && ../configure -q); } >build/build.log 2>&1 ||
        { tail -n 30 build/build.log; exit 1; }
fi
make -C build -j"$(nproc)" >>build/build.log 2>&1 || { tail -n 30 build/build.log; exit 1; }

run=$top/build/quickstart
rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

# 1. The broker. Production points `brokers` at a real Kafka cluster instead.
build/tests/kafka/mock_broker --no-stdin >"$run/broker.out" 2>"$run/broker.log" &
pids="$pids $!"
i=0
while [ ! -s "$run/broker.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
brokers=$(head -n 1 "$run/broker.out")
echo "quickstart: Kafka-protocol test broker on $brokers"

# 2. The aggregator: the shipped aggregator.yaml, pointed at the broker and build/.
sed -e "s|^  state_dir: .*|  state_dir: $run/aggregator|" \
    -e "s|^    brokers: .*|    brokers: $brokers|" \
    -e "s|^    path: .*pipit.db|    path: $run/pipit.db|" \
    conf/aggregator.yaml >"$run/aggregator.yaml"
# 3. The agent: the shipped pipit.yaml, its output sent to the broker.
sed -e "s|^  state_dir: .*|  state_dir: $run/agent|" \
    -e "s|^  interval: .*|  interval: 5s|" -e "s|^  jitter: .*|  jitter: 0s|" \
    -e "s|^  - plugin: stdout .*|  - plugin: kafka\n    brokers: $brokers|" \
    conf/pipit.yaml >"$run/agent.yaml"
for c in aggregator agent; do
    build/agent/pipit check -q -c "$run/$c.yaml" --plugin-dir build/plugins/lib
done

build/agent/pipitd -c "$run/aggregator.yaml" --plugin-dir build/plugins/lib 2>"$run/aggregator.log" &
agg=$!
pids="$pids $agg"
build/agent/pipitd -c "$run/agent.yaml" --plugin-dir build/plugins/lib 2>"$run/agent.log" &
agent=$!
pids="$pids $agent"
echo "quickstart: agent and aggregator running for ${secs}s (logs in $run)"
echo "quickstart: the aggregator's status page is http://127.0.0.1:9790/ meanwhile"
sleep "$secs"
kill -TERM "$agent"; wait "$agent" || true
sleep 2                                 # the aggregator's last batch reaches the store
if command -v curl >/dev/null 2>&1; then
    echo
    echo "== the aggregator's query API: GET /v1/agents (docs/query-api.md)"
    curl -s --max-time 5 http://127.0.0.1:9790/v1/agents |
        jq -r '.agents[] | select(.records > 0) |
               "\(.host)  health=\(.health)  records=\(.records)  gaps=\(.sequence_gaps)"' ||
        echo "(the aggregator's HTTP endpoint did not answer)"
fi
kill -TERM "$agg"; wait "$agg" || true

db=$run/pipit.db
q() { sqlite3 -batch -column -header "$db" "$1"; }
echo
echo "== agent: $(sed -n 's/.*output totals: \(batches=[0-9]* records=[0-9]*\).*/\1/p' "$run/agent.log") sent to Kafka"
echo "== aggregator store: $db"
q "SELECT host, substr(agent_id, 1, 8) AS agent, batches, records, gaps FROM agents
   WHERE records > 0"
echo
q "SELECT count(*) AS series, (SELECT count(*) FROM samples) AS samples FROM series"
echo
echo "== latest values"
q "SELECT r.name, CASE WHEN r.labels = '{}' THEN '' ELSE r.labels END AS labels,
          printf('%.4g', s.value) AS value
   FROM series r JOIN samples s ON s.series_id = r.id
   WHERE s.time = (SELECT max(time) FROM samples WHERE series_id = r.id)
     AND r.name IN ('load.1m', 'memory.used_bytes', 'memory.utilization',
                    'system.uptime_seconds', 'process.count', 'cpu.count')
     AND (r.labels = '{}' OR r.labels LIKE '%\"state\":\"running\"%'
          OR r.labels LIKE '%\"state\":\"sleeping\"%')
   GROUP BY r.id ORDER BY r.name, r.labels"
echo
echo "== CPU utilization (total), newest first"
q "SELECT json_extract(r.labels, '$.state') AS state, printf('%.3f', s.value) AS ratio
   FROM series r JOIN samples s ON s.series_id = r.id
   WHERE r.name = 'cpu.utilization' AND json_extract(r.labels, '$.cpu') = 'total'
     AND s.time = (SELECT max(time) FROM samples WHERE series_id = r.id)
     AND s.value > 0 ORDER BY s.value DESC"
