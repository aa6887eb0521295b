#!/bin/sh
# grafana.sh: every metric and label the Grafana dashboard queries is one that pipitd's /metrics serves,
# and every SQL query of its Store panels runs against a real PostgreSQL store that pipitd filled.
# The store checks are skipped (TAP "# SKIP") when out_postgres was not built, PostgreSQL cannot be run
# here or python3 is missing.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
command -v jq >/dev/null 2>&1 || { echo "1..0 # SKIP jq is not installed"; exit 0; }
dash="$top_srcdir/contrib/grafana/pipit-dashboard.json"
# The SQL of the store: the queries of the store's variables and panels, one
# "title<TAB>sql" line each.
jq -r '(.templating.list[] | select(.datasource.uid? == "${store}") | ["variable " + .name, .query]),
       (.panels[] | select(.datasource.uid? == "${store}") | .title as $t | .targets[] | [$t, .rawSql])
       | @tsv' "$dash" >"$T/sql.tsv"
nsql=$(wc -l <"$T/sql.tsv")
plan $((6 + nsql))

jq -e '.panels | length > 0' "$dash" >/dev/null
ok $? "the dashboard is JSON with panels"

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
http:
  enabled: true
  listen: 127.0.0.1:0
batch:
  linger_ms: 50
inputs:
  - plugin: $TESTSRC
    interval: 100ms
outputs:
  - plugin: $PIPIT_TEST_LIB/out_testsink.so
    path: $T/out
YAML
start_pipitd "$T/p.yaml"
wait_for 20 serving && wait_for 20 value_above 'pipit_batches_total' 0
ok $? "pipitd serves /metrics" || show_log

# Every pipit_* name in the expressions, without the series suffixes of
# histograms, must be a family of the scrape.
jq -r '.panels[] | select(.datasource.type? == "prometheus") | .targets[].expr' "$dash" | grep -o 'pipit_[a-z_]*' |
    sed 's/_\(bucket\|sum\|count\)$//' | sort -u >"$T/used"
sed -n 's/^# TYPE \(pipit_[a-z_]*\) .*/\1/p' "$T/body" | sort -u >"$T/served"
missing=$(comm -23 "$T/used" "$T/served" | tr '\n' ' ')
[ -z "$missing" ]
ok $? "every metric it queries is served ($(wc -l <"$T/used") used)${missing:+; missing: $missing}"

# Every label it groups or filters by must be on the series of that name
# (or be Prometheus' own job/instance/le).
bad=
for pair in $(jq -r '.panels[] | select(.datasource.type? == "prometheus") | .targets[].expr' "$dash" |
        grep -o 'by ([a-z_, ]*) *(rate([a-z_]*\|by ([a-z_, ]*) *([a-z_]*{' |
        sed 's/by (\([a-z_, ]*\)) *(\(rate(\)\{0,1\}\([a-z_]*\).*/\1:\3/; s/ //g'); do
    metric=${pair#*:}; metric=$(echo "$metric" | sed 's/_\(bucket\|sum\|count\)$//')
    for label in $(echo "${pair%%:*}" | tr ',' ' '); do
        case $label in job|instance|le) continue ;; esac
        grep "^$metric[_a-z]*{" "$T/body" | grep -q "[{,]$label=\"" || bad="$bad $metric:$label"
    done
done
[ -z "$bad" ]
ok $? "every label it groups by is on its series${bad:+; not found:$bad}"
stop_pipitd

# The store panels: all on the "store" data source variable, a postgres one,
# and every panel but the row has SQL.
jq -e '(.templating.list | map(select(.type == "datasource") | {(.name): .query}) | add) ==
         {"datasource": "prometheus", "store": "postgres"} and
       ([.panels[] | select(.type != "row" and .datasource.type? != "prometheus") |
         select(.datasource != {"type": "postgres", "uid": "${store}"} or
                any(.targets[]; (.rawSql // "") == ""))] | length == 0)' "$dash" >/dev/null &&
    [ "$nsql" -gt 0 ]
ok $? "the store panels ($nsql queries) are on the postgres data source variable"

skip_store() { i=0; while [ $i -le "$nsql" ]; do skip "$1"; i=$((i + 1)); done; done_testing; }
[ -f "$PIPIT_PLUGIN_DIR/out_postgres.so" ] ||
    skip_store "out_postgres not built (configure found no libpq, or --without-postgresql)"
command -v python3 >/dev/null 2>&1 || skip_store "python3 is not installed"
chmod 711 "$T"                          # the server's user must reach $T/pg
"$top_srcdir/tests/pg/pg_start.sh" "$T/pg" >"$T/pg.out" 2>&1
case $? in
0) ;;
2) skip_store "$(tail -n 1 "$T/pg.out")" ;;
*) echo "Bail out! PostgreSQL did not start: $(tail -n 5 "$T/pg.out" | tr '\n' ' ')"; exit 1 ;;
esac
trap '"$top_srcdir/tests/pg/pg_stop.sh" "$T/pg" >/dev/null 2>&1; cleanup_pipitd' EXIT
CONNINFO=$(cat "$T/pg/conninfo")
psql_q() { psql "$CONNINFO" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

# Records of every kind into the store: metrics (testsrc), logs at two
# levels (tail, JSON lines), costs labelled team (cost) and events
# (http_check of a port nobody listens on).
mkdir -p "$T/logs"
printf '%s\n' '{"level":"info","message":"started"}' '{"level":"error","message":"disk full"}' \
    '{"level":"info","message":"retried"}' >"$T/logs/app.log"
cat >"$T/store.yaml" <<YAML
agent:
  state_dir: $T/state-store
  jitter: 0s
batch:
  linger_ms: 50
inputs:
  - plugin: $TESTSRC
    interval: 100ms
  - plugin: tail
    path: ["$T/logs/*.log"]
    read_from: beginning
    format: json
    stats_interval: 0s
  - plugin: cost
    interval: 200ms
    prices: {instance_hour: "36"}
    labels: {team: web}
  - plugin: http_check
    name: gone
    url: http://127.0.0.1:1/health
    check_interval: 200ms
    timeout: 150ms
outputs:
  - plugin: postgres
    conninfo: \${PG_CONNINFO}
YAML
export PG_CONNINFO="$CONNINFO"
start_pipitd "$T/store.yaml"
every_kind() {
    [ "$(psql_q "SELECT (SELECT count(*) > 0 FROM agents) AND (SELECT count(*) > 0 FROM samples)
                 AND (SELECT count(*) FROM logs) = 3 AND (SELECT count(*) > 0 FROM costs)
                 AND (SELECT count(*) > 0 FROM events)" 2>/dev/null)" = t ]
}
wait_for 30 every_kind
status=$?
stop_pipitd
[ $status -eq 0 ] && [ "$PIPITD_STATUS" -eq 0 ]
ok $? "pipitd stored metrics, logs, costs and events in PostgreSQL" || show_log
# A deployment's events come from the command channel (Kafka); one plan
# run's plan.finished event is added as out_postgres would store it.
psql_q "INSERT INTO events (agent_id, seq, idx, time, host, instance, name, status, message, labels)
        SELECT agent_id, last_seq + 1000, 0, last_seen, host, 'plan', 'plan.finished', 'ok', NULL,
               '{\"plan\":\"web-rollout\",\"run\":\"d-1\"}' FROM agents LIMIT 1" >/dev/null

# Grafana's macros and the dashboard's variables made concrete SQL, as the
# postgres data source expands them, for the range [an hour ago, a minute
# from now]:
#   $__timeFilter(c)                c BETWEEN 'FROM' AND 'TO' (timestamps)
#   $__timeFrom(), $__timeTo()      'FROM', 'TO'
#   $__timeGroupAlias(c,'1m')       floor(extract(epoch from c)/60)*60 AS "time"
#   $__unixEpochFilter(c)           c >= FROM_S AND c <= TO_S (Unix seconds)
#   $__unixEpochNanoFilter(c)       c >= FROM_NS AND c <= TO_NS (Unix nanoseconds)
#   $__unixEpochNanoFrom(), ...To() FROM_NS, TO_NS
#   $__unixEpochGroupAlias(c,'1m')  floor((c)/60)*60 AS "time"
#   $store_host                     every host (SELECT host FROM agents)
#   $cost_label                     team
# Anything else left that starts with $ is an error.
cat >"$T/expand.py" <<'PY'
import re, sys, time
now = int(time.time())
fs, ts = now - 3600, now + 60
iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
def secs(iv):
    m = re.fullmatch(r"(\d+)([smhd])", iv.strip().strip("'"))
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
def group(m, epoch):
    col, iv = m.group(1).rsplit(",", 1)
    c = "extract(epoch from %s)" % col if not epoch else "(%s)" % col
    return 'floor(%s/%d)*%d AS "time"' % (c, secs(iv), secs(iv))
subs = [
    (r"\$__timeFilter\(([^)]*)\)", lambda m: "%s BETWEEN '%s' AND '%s'" % (m.group(1), iso(fs), iso(ts))),
    (r"\$__timeFrom\(\)", lambda m: "'%s'" % iso(fs)),
    (r"\$__timeTo\(\)", lambda m: "'%s'" % iso(ts)),
    (r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m, False)),
    (r"\$__unixEpochFilter\(([^)]*)\)", lambda m: "%s >= %d AND %s <= %d" % (m.group(1), fs, m.group(1), ts)),
    (r"\$__unixEpochNanoFilter\(([^)]*)\)",
     lambda m: "%s >= %d AND %s <= %d" % (m.group(1), fs * 10**9, m.group(1), ts * 10**9)),
    (r"\$__unixEpochNanoFrom\(\)", lambda m: str(fs * 10**9)),
    (r"\$__unixEpochNanoTo\(\)", lambda m: str(ts * 10**9)),
    (r"\$__unixEpochGroupAlias\(([^)]*)\)", lambda m: group(m, True)),
    (r"\$store_host\b", lambda m: "SELECT host FROM agents"),
    (r"\$cost_label\b", lambda m: "team"),
]
for line in sys.stdin:
    title, sql = line.rstrip("\n").split("\t", 1)
    for pat, rep in subs:
        sql = re.sub(pat, rep, sql)
    left = re.findall(r"\$\w+", sql)
    print("%s\t%s" % (title, "UNKNOWN " + " ".join(left) if left else sql))
PY
python3 "$T/expand.py" <"$T/sql.tsv" >"$T/sql.expanded"
while IFS="$(printf '\t')" read -r title sql; do
    psql_q "$sql" >"$T/psql.out" 2>"$T/psql.err"
    status=$?
    rows=$(wc -l <"$T/psql.out")
    [ $status -eq 0 ] && [ ! -s "$T/psql.err" ] && [ "$rows" -ge 1 ]
    ok $? "store query of \"$title\" runs and returns rows ($rows)" ||
        { diag "$sql"; sed 's/^/#   /' "$T/psql.err"; }
done <"$T/sql.expanded"
done_testing
