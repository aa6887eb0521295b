#!/bin/sh
# store_sqlite.sh: pipitd with out_sqlite stores every record once, with a ledger of its real batches.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 8

q() { "$top_builddir/tests/plugins/test_out_sqlite" --query "$T/store.db" "$1"; }

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  max_records: 7
  linger_ms: 100
inputs:
  - plugin: $TESTSRC
    count: 5
    interval: 50ms
outputs:
  - plugin: file
    path: $T/out.jsonl
  - plugin: sqlite
    path: $T/store.db
YAML
start_pipitd "$T/p.yaml"
wait_for 20 log_has "running $T/p.yaml"
ok $? "pipitd started with out_sqlite" || show_log
sleep 1.5
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM" || show_log

emitted=$(lines "$T/out.jsonl")
stored=$(q "SELECT count(*) FROM samples")
diag "out_file has $emitted records, out_sqlite $stored"
[ "$emitted" -gt 0 ] && [ "$stored" = "$emitted" ]
ok $? "every record the file output got is stored once"
[ "$(q "SELECT count(DISTINCT agent_id || '/' || seq || '/' || idx) FROM samples")" = "$stored" ]
ok $? "each under its own key"
agent=$(cat "$T/state/agent_id" 2>/dev/null)
[ -n "$agent" ] && [ "$(q "SELECT agent_id FROM agents")" = "$agent" ]
ok $? "the ledger names the agent by its id"
[ "$(q "SELECT batches || '|' || records FROM agents")" = \
  "$(q "SELECT count(*) FROM batches")|$stored" ]
ok $? "agent counters match the ledger"
[ "$(q "SELECT max(count) FROM batches")" -le 7 ]
ok $? "batches hold at most batch.max_records"
[ "$(q "SELECT gaps FROM agents")" = 0 ]
ok $? "no gap: the store saw every batch of the run" || q "SELECT group_concat(seq) FROM batches"
done_testing
