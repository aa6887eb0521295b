# tests/e2e/query_api_lib.sh: a pipitd serving the query API over a store with known rows (source after daemon.sh and endpoints_lib.sh).

# start_query_daemon: pipitd with out_sqlite ($T/store.db), testsrc records and the
# query API on a free port; then the fixture rows of fill_fixtures. Sets B (the
# fixtures' base time, Unix seconds, on a minute) and AGENT (pipitd's own agent id).
start_query_daemon() {
    cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  max_records: 10
  linger_ms: 100
http:
  enabled: true
  listen: 127.0.0.1:0
  query_store: store
  query_timeout: 5s
${QUERY_HTTP_EXTRA:-}
inputs:
  - plugin: $TESTSRC
    count: 3
    interval: 200ms
outputs:
  - plugin: sqlite
    name: store
    path: $T/store.db
YAML
    start_pipitd "$T/p.yaml"
    wait_for 20 serving && wait_for 20 store_has_samples && fill_fixtures
}

sql() { sqlite3 -cmd ".timeout 5000" "$T/store.db" "$@"; }
store_has_samples() { [ -s "$T/store.db" ] && [ "$(sql "SELECT count(*) FROM samples" 2>/dev/null)" -gt 0 ] 2>/dev/null; }

# fill_fixtures: agents, series and samples, logs, costs and plan-run events whose
# answers the tests know exactly.
fill_fixtures() {
    B=$(( ($(date +%s) - 1800) / 60 * 60 ))
    NOWNS=$(( $(date +%s) * 1000000000 ))
    AGENT=$(cat "$T/state/agent_id")
    local b=$((B * 1000000000)) s=1000000000
    local a1=11111111-1111-4111-8111-111111111111 a2=22222222-2222-4222-8222-222222222222
    sql <<SQL
BEGIN;
INSERT INTO agents VALUES ('$a1', 'web-01', $b, $NOWNS, 9, 8, 100, 0, 1);
INSERT INTO agents VALUES ('$a2', 'web-02', $b, $((NOWNS - 3600 * s)), 4, 4, 40, 0, 0);
INSERT INTO series (name, host, instance, labels) VALUES
  ('cpu.usage', 'web-01', 'cpu', '{"cpu":"0"}'),
  ('cpu.usage', 'web-02', 'cpu', '{"cpu":"1"}'),
  ('pipit_build_info', 'web-01', 'self', '{"version":"0.1.0"}'),
  ('pipit_spool_entries', 'web-01', 'self', '{}'),
  ('pipit_spool_bytes', 'web-01', 'self', '{}');
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 11)
INSERT INTO samples SELECT '$a1', 1, n, (SELECT id FROM series WHERE host = 'web-01'
  AND name = 'cpu.usage'), $b + n * 10 * $s, 'gauge', n, NULL, NULL, NULL FROM k;
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 11)
INSERT INTO samples SELECT '$a2', 1, n, (SELECT id FROM series WHERE host = 'web-02'
  AND name = 'cpu.usage'), $b + n * 10 * $s, 'gauge', 2 * n, NULL, NULL, NULL FROM k;
INSERT INTO samples VALUES ('$a1', 2, 0, (SELECT id FROM series WHERE name = 'pipit_build_info'),
  $b, 'gauge', 1, NULL, NULL, NULL);
INSERT INTO samples VALUES ('$a1', 2, 1, (SELECT id FROM series WHERE name = 'pipit_spool_entries'),
  $b, 'gauge', 7, NULL, NULL, NULL);
INSERT INTO samples VALUES ('$a1', 2, 2, (SELECT id FROM series WHERE name = 'pipit_spool_bytes'),
  $b, 'gauge', 4096, NULL, NULL, NULL);
INSERT INTO logs VALUES
  ('$a1', 3, 0, $b + 1 * $s, 'web-01', 'tail', 'error', 'disk full on /var', '/var/log/app', 10, '{}'),
  ('$a1', 3, 1, $b + 2 * $s, 'web-01', 'tail', 'warn', 'slow request', NULL, NULL, '{}'),
  ('$a1', 3, 2, $b + 3 * $s, 'web-01', 'tail', 'info', 'started', NULL, NULL, '{}'),
  ('$a2', 3, 0, $b + 4 * $s, 'web-02', 'tail', 'error', 'disk full on /data', NULL, NULL, '{}'),
  ('$a2', 3, 1, $b + 5 * $s, 'web-02', 'tail', 'debug', 'tick', NULL, NULL, '{}');
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 9)
INSERT INTO costs SELECT '$a1', 4, n, $b + n * $s, 'web-01', 'cost', 0.1, 'USD', 'instance',
  $b, $b + $s, '{"team":"web"}', 100000 FROM k;
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < 2)
INSERT INTO costs SELECT '$a2', 4, n, $b + 600 * $s + n * $s, 'db-01', 'cost', 1.234567, 'USD',
  'disk', $b, $b + $s, '{"team":"db"}', 1234567 FROM k;
INSERT INTO costs VALUES ('$a2', 4, 3, $b, 'db-01', 'cost', 0.000005, 'USD', 'egress', $b, $b,
  '{}', 5);
INSERT INTO costs VALUES ('$a2', 4, 4, $b, 'db-01', 'cost', 0.000042, 'EUR', 'egress', $b, $b,
  '{"team":"web"}', 42);
INSERT INTO events VALUES
  ('$a1', 5, 0, $b + 10 * $s, 'web-01', 'plan', 'plan.started', 'started', NULL, '{"plan":"web-rollout","run":"r1"}'),
  ('$a1', 5, 1, $b + 11 * $s, 'web-01', 'plan', 'step.finished', 'ok', NULL, '{"plan":"web-rollout","run":"r1","step":"fetch"}'),
  ('$a1', 5, 2, $b + 12 * $s, 'web-01', 'plan', 'step.finished', 'ok', 'symlink flipped', '{"plan":"web-rollout","run":"r1","step":"switch"}'),
  ('$a1', 5, 3, $b + 13 * $s, 'web-01', 'plan', 'plan.finished', 'ok', NULL, '{"plan":"web-rollout","run":"r1"}'),
  ('$a2', 5, 0, $b + 20 * $s, 'db-01', 'plan', 'plan.started', 'started', NULL, '{"plan":"db-migrate","run":"r2"}'),
  ('$a2', 5, 1, $b + 21 * $s, 'db-01', 'plan', 'step.finished', 'failed', 'exit 3', '{"plan":"db-migrate","run":"r2","step":"migrate"}'),
  ('$a2', 5, 2, $b + 22 * $s, 'db-01', 'agent', 'agent.started', 'ok', NULL, '{}');
COMMIT;
SQL
}
