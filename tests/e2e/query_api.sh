#!/bin/sh
# query_api.sh: pipitd's /v1 JSON query API over an out_sqlite store with known rows, read with curl and jq.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
. "$top_srcdir/tests/e2e/query_api_lib.sh"
setup_e2e
for tool in curl jq sqlite3; do
    command -v $tool >/dev/null 2>&1 || { echo "1..0 # SKIP $tool is not installed"; exit 0; }
done
plan 48

start_query_daemon
ok $? "pipitd serves the query API over its store, fixtures written" || show_log

# q PATH JQ: the status of GET PATH must be 200 and JQ (-e) true of its body.
q() {
    local st; st=$(get "$1")
    [ "$st" = 200 ] && jq -e "$2" "$T/body" >/dev/null && return 0
    diag "GET $1: $st $(head -c 600 "$T/body")"; return 1
}
# bad PATH PARAM: 400 with an error that names PARAM.
bad() {
    local st; st=$(get "$1")
    [ "$st" = 400 ] && jq -e --arg p "$2" '.error | test($p)' "$T/body" >/dev/null && return 0
    diag "GET $1: $st $(cat "$T/body")"; return 1
}
R="from=$B&to=$((B + 120))"
C="from=$B&to=$((B + 1200))"

# /v1/agents
q /v1/agents '.total == 3 and (.agents | length) == 3 and .next_offset == null'
ok $? "agents: the two fixture agents and pipitd's own"
q /v1/agents '.agents[] | select(.host == "web-01") | .version == "0.1.0" and .spool_entries == 7
    and .spool_bytes == 4096 and .sequence_gaps == 1 and .health == "gaps" and .last_seq == 9'
ok $? "agents: version and spool depth from the agent's own figures, gaps counted"
q /v1/agents '.agents[] | select(.host == "web-02") | .health == "silent" and .version == null
    and .last_seen_age_seconds > 3500'
ok $? "agents: an agent silent for an hour is marked silent"
q /v1/agents "[.agents[] | select(.agent_id == \"$AGENT\")] | length == 1 and .[0].records > 0"
ok $? "agents: pipitd's own agent with the records it stored"
q "/v1/agents?limit=1" '(.agents | length) == 1 and .next_offset == 1 and .total == 3'
ok $? "agents: limit=1 gives one and the next offset"
q "/v1/agents?limit=2&offset=2" '(.agents | length) == 1 and .next_offset == null'
ok $? "agents: the last page ends with next_offset null"

# /v1/query
q "/v1/query?metric=cpu.usage&$R&step=60s" '(.series | length) == 2 and .step_ms == 60000
    and .agg == "avg"'
ok $? "query: both series of cpu.usage"
q "/v1/query?metric=cpu.usage&$R&step=1m&host=web-01" \
  "(.series | length) == 1 and .series[0].points == [[$((B * 1000)), 2.5], [$(((B + 60) * 1000)), 8.5]]"
ok $? "query: 12 samples downsampled to two 1-minute buckets of their average"
q "/v1/query?metric=cpu.usage&$R&step=1m&labels=cpu=1&agg=sum" \
  '(.series | length) == 1 and .series[0].host == "web-02" and .series[0].labels.cpu == "1"
   and (.series[0].points | map(.[1])) == [30, 102]'
ok $? "query: a label matcher and agg=sum"
q "/v1/query?metric=cpu.usage&$R&step=1m&host=web-01&agg=max" '(.series[0].points | map(.[1])) == [5, 11]'
ok $? "query: agg=max"
q "/v1/query?metric=cpu.usage&$R&step=1m&host=web-01&agg=last" '(.series[0].points | map(.[1])) == [5, 11]'
ok $? "query: agg=last takes each bucket's latest sample"
q "/v1/query?metric=cpu.usage&$R&step=30s&host=web-01&agg=count" '(.series[0].points | map(.[1])) == [3, 3, 3, 3]'
ok $? "query: step=30s gives four buckets of three samples"
q "/v1/query?metric=cpu.usage&$R&step=1m&limit=1" '(.series | length) == 1 and .next_offset == 1'
ok $? "query: series are paginated"
q "/v1/query?metric=cpu.usage&$R&step=1m&labels=cpu=9" '.series == []'
ok $? "query: no series for a label value nobody has"
q "/v1/query?metric=testsrc.records&from=now-10m&step=1m" '(.series | length) > 0'
ok $? "query: the records pipitd stored itself, by relative times"

# /v1/logs
q "/v1/logs?$R" '(.logs | length) == 5 and .logs[0].message == "tick" and .next_offset == null'
ok $? "logs: all five, newest first"
q "/v1/logs?$R&host=web-01" '(.logs | length) == 3 and all(.logs[]; .host == "web-01")'
ok $? "logs: by host"
q "/v1/logs?$R&level=warn" '(.logs | map(.level)) == ["error", "warn", "error"]'
ok $? "logs: level=warn is warn and error"
q "/v1/logs?$R&text=disk%20full" '(.logs | map(.host)) == ["web-02", "web-01"]'
ok $? "logs: by text"
q "/v1/logs?$R&host=web-01&level=error" '(.logs | length) == 1 and .logs[0].source == "/var/log/app"
    and .logs[0].offset == 10'
ok $? "logs: filters combine; source and offset kept"
q "/v1/logs?$R&limit=2" '(.logs | length) == 2 and .next_offset == 2'
ok $? "logs: limit=2 of five"
q "/v1/logs?$R&limit=2&offset=4" '(.logs | length) == 1 and .logs[0].message == "disk full on /var"
    and .next_offset == null'
ok $? "logs: the last page"

# /v1/costs
q "/v1/costs?group_by=team&$C" '[.groups[] | [.value, .currency, .total_micros, .total, .records]] ==
    [["db", "USD", 3703701, "3.703701", 3], ["web", "USD", 1000000, "1", 10],
     ["web", "EUR", 42, "0.000042", 1], [null, "USD", 5, "0.000005", 1]]'
ok $? "costs: group_by=team sums amount_micros exactly (ten of 0.1 are 1), largest first"
q "/v1/costs?group_by=team&$C" '.totals == [{"currency": "EUR", "total_micros": 42, "total": "0.000042",
    "records": 1}, {"currency": "USD", "total_micros": 4703706, "total": "4.703706", "records": 14}]'
ok $? "costs: totals per currency"
q "/v1/costs?group_by=team&$C&step=10m" "(.groups[0].buckets == [[$(((B + 600) * 1000)), 3703701]])
    and (.groups[1].buckets == [[$((B * 1000)), 1000000]]) and .step_ms == 600000"
ok $? "costs: step buckets of each group over time"
q "/v1/costs?group_by=team&$C&limit=1" '(.groups | length) == 1 and .groups[0].value == "db"
    and .next_offset == 1'
ok $? "costs: groups are paginated"
q "/v1/costs?group_by=team&$C&limit=2&offset=2" '(.groups | map(.total_micros)) == [42, 5]
    and .next_offset == null'
ok $? "costs: the last page of groups"
q "/v1/costs?group_by=team&from=$B&to=$((B + 5))" '.groups == [{"value": "web", "currency": "USD",
    "total_micros": 500000, "total": "0.5", "records": 5}, {"value": "web", "currency": "EUR",
    "total_micros": 42, "total": "0.000042", "records": 1}, {"value": null, "currency": "USD",
    "total_micros": 5, "total": "0.000005", "records": 1}]'
ok $? "costs: from/to select by record time"

# /v1/deployments
q "/v1/deployments?$C" '(.deployments | map(.run)) == ["r2", "r1"]'
ok $? "deployments: two plan runs, latest first; events without a run are not one"
q "/v1/deployments?$C" '.deployments[1] | .plan == "web-rollout" and .status == "ok"
    and (.steps | map(.step)) == [null, "fetch", "switch", null] and .hosts == ["web-01"]
    and .steps[2].message == "symlink flipped"'
ok $? "deployments: a run's steps in order, its status from plan.finished"
q "/v1/deployments?$C" '.deployments[0] | .status == "failed" and .steps[1].message == "exit 3"'
ok $? "deployments: a run with a failed step and no end is failed"
q "/v1/deployments?$C&plan=web-rollout" '(.deployments | length) == 1 and .deployments[0].run == "r1"'
ok $? "deployments: by plan"
q "/v1/deployments?$C&limit=1" '(.deployments | length) == 1 and .next_offset == 1'
ok $? "deployments: paginated"

# /v1/throughput: what the store received, against the ledger
ledger_window() {
    TO=$(date +%s)
    want=$(sql "SELECT coalesce(sum(count), 0) FROM batches WHERE received_at >= $(((TO - 600) * 1000000000))
                AND received_at < $((TO * 1000000000))")
    [ "${want:-0}" -gt 0 ]
}
wait_for 10 ledger_window
q "/v1/throughput?from=$((TO - 600))&to=$TO&step=1m" "([.buckets[].records] | add) == $want and $want > 0"
ok $? "throughput: records per minute add up to the ledger's $want"

# 400s name the parameter
bad "/v1/query?from=now-1h" metric
ok $? "400: /v1/query without metric"
bad "/v1/query?metric=x&step=abc" step
ok $? "400: a step that is no duration"
bad "/v1/query?metric=x&from=now-30d&step=1s" step
ok $? "400: too many buckets"
bad "/v1/logs?limit=0" limit
ok $? "400: limit=0"
bad "/v1/logs?limit=5000" limit
ok $? "400: limit above the maximum"
bad "/v1/logs?level=loud" level
ok $? "400: an unknown level"
bad "/v1/logs?from=now&to=now-1h" from
ok $? "400: from after to"
bad "/v1/agents?bogus=1" bogus
ok $? "400: an unknown parameter"
bad "/v1/costs" group_by
ok $? "400: /v1/costs without group_by"
bad '/v1/costs?group_by=a%22b' group_by
ok $? "400: a group_by that is no label name"
bad "/v1/query?metric=x&labels=nokey" labels
ok $? "400: a labels matcher without ="
bad "/v1/logs?limit=1&limit=2" limit
ok $? "400: a parameter given twice"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM" || show_log
done_testing
