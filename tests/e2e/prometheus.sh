#!/bin/sh
# prometheus.sh: pipitd with the prometheus input scraping httpd_fixture (a good, a malformed and an unreachable target) into the file output.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/http/httpd.sh"
setup_e2e
plan 11

cleanup_all() { stop_httpd; cleanup_pipitd; }
trap cleanup_all EXIT

mkdir -p "$T/www"
cat >"$T/www/metrics" <<'PROM'
# HELP app_requests_total Requests served.
# TYPE app_requests_total counter
app_requests_total{code="200"} 41
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="0.5"} 3
app_latency_seconds_bucket{le="+Inf"} 4
app_latency_seconds_sum 1.5
app_latency_seconds_count 4
PROM
printf 'good_gauge 1\nbroken{ 2\n\000\377 junk\ngood_after 3\n' >"$T/www/bad"
start_httpd "$T/www"
ok $? "httpd_fixture listens" || exit 1

# write_config INPUTS: $T/p.yaml with INPUTS (YAML) as its inputs section.
write_config() {
    cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 20
inputs:
$1
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
}
write_config "  - plugin: prometheus
    name: scrape
    job: e2e
    scrape_interval: 200ms
    labels: {env: test}
    targets:
      - http://127.0.0.1:$HTTPD_PORT/metrics
      - http://127.0.0.1:$HTTPD_PORT/bad
      - http://127.0.0.1:1/metrics"
"$PIPIT" check -c "$T/p.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
ok $? "pipit check accepts the configuration" || sed 's/^/#   /' "$T/check.out"

start_pipitd "$T/p.yaml"
has() { grep -q -- "$1" "$T/out.jsonl" 2>/dev/null; }
count() { n=$(grep -c -- "$1" "$T/out.jsonl" 2>/dev/null); echo "${n:-0}"; }
wait_for 20 has '"name":"app_requests_total","type":"counter","value":41,"labels":{"job":"e2e","instance":"127.0.0.1:'"$HTTPD_PORT"'","env":"test","code":"200"}'
ok $? "a scraped counter arrives with its target labels" || show_log
has '"name":"app_latency_seconds","type":"histogram"'
ok $? "a scraped histogram arrives as one record"
has '"name":"up","type":"gauge","value":1,"labels":{"job":"e2e","instance":"127.0.0.1:'"$HTTPD_PORT"'"'
ok $? "up 1 for the good target"
has '"name":"up","type":"gauge","value":0,"labels":{"job":"e2e","instance":"127.0.0.1:1"'
ok $? "up 0 for the unreachable target"
has '"name":"good_after","type":"gauge","value":3,'
ok $? "the good lines of the malformed target arrive"
has '"name":"prometheus.malformed_lines","type":"counter","value":2,'
ok $? "its bad lines are counted"

# Several scrapes later the daemon is still there and still scraping.
first=$(count '"name":"up","type":"gauge","value":1,')
wait_for 20 eval '[ "$(count "\"name\":\"up\",\"type\":\"gauge\",\"value\":1,")" -ge $((first + 3)) ]'
ok $? "scrapes go on every interval beside the bad targets" || show_log
# Reloads while a scrape is in flight: the old instance stops mid-transfer
# and must leave nothing armed behind it on the loop.
write_config "  - plugin: prometheus
    name: slow
    scrape_interval: 10s
    targets: [\"http://127.0.0.1:$HTTPD_PORT/metrics?delay_ms=5000\"]"
reloads() { n=$(grep -c "configuration reloaded" "$T/pipitd.log"); echo "${n:-0}"; }
kill -HUP "$PIPITD_PID"
wait_for 20 eval '[ "$(reloads)" -ge 1 ]'
sleep 0.5
kill -HUP "$PIPITD_PID"
wait_for 20 eval '[ "$(reloads)" -ge 2 ]'
sleep 1
kill -0 "$PIPITD_PID" 2>/dev/null && [ "$(reloads)" -ge 2 ]
ok $? "two reloads with a scrape in flight: pipitd still runs" || show_log
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
done_testing
