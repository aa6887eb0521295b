#!/bin/sh
# grafana.sh: every metric and label the Grafana dashboard queries is one that pipitd's /metrics serves.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
setup_e2e
command -v jq >/dev/null 2>&1 || { echo "1..0 # SKIP jq is not installed"; exit 0; }
plan 4
dash="$top_srcdir/contrib/grafana/pipit-dashboard.json"

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
jq -r '.panels[].targets[].expr' "$dash" | grep -o 'pipit_[a-z_]*' |
    sed 's/_\(bucket\|sum\|count\)$//' | sort -u >"$T/used"
sed -n 's/^# TYPE \(pipit_[a-z_]*\) .*/\1/p' "$T/body" | sort -u >"$T/served"
missing=$(comm -23 "$T/used" "$T/served" | tr '\n' ' ')
[ -z "$missing" ]
ok $? "every metric it queries is served ($(wc -l <"$T/used") used)${missing:+; missing: $missing}"

# Every label it groups or filters by must be on the series of that name
# (or be Prometheus' own job/instance/le).
bad=
for pair in $(jq -r '.panels[].targets[].expr' "$dash" |
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
done_testing
