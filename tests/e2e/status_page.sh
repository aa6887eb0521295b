#!/bin/sh
# status_page.sh: the status page at / rendered by headless Chromium from the query API: agents, costs, deployments in the DOM.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
. "$top_srcdir/tests/e2e/endpoints_lib.sh"
. "$top_srcdir/tests/e2e/query_api_lib.sh"
setup_e2e
CHROMIUM=$(command -v chromium || command -v chromium-browser)
[ -n "$CHROMIUM" ] || { echo "1..0 # SKIP chromium is not installed (apt-get install chromium)"; exit 0; }
for tool in curl sqlite3; do
    command -v $tool >/dev/null 2>&1 || { echo "1..0 # SKIP $tool is not installed"; exit 0; }
done
plan 9

start_query_daemon
ok $? "pipitd serves the status page over its store, fixtures written" || show_log
[ "$(get /)" = 200 ] && grep -qi '^content-type: text/html' "$T/head" &&
    ! grep -Eq '(src|href)="https?:' "$T/body"
ok $? "/ is HTML from the binary, loading nothing from elsewhere"

# chromium ARGS...: headless, its profile in $T, no network but loopback.
chromium() {
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --user-data-dir="$T/chromium" --proxy-server='direct://' \
        --proxy-bypass-list='*' --virtual-time-budget=10000 "$@" \
        "http://127.0.0.1:$(port)/" 2>>"$T/chromium.log"
}
chromium --dump-dom >"$T/dom.html"
grep -q 'data-loaded="1"' "$T/dom.html"
ok $? "the page loaded every panel from the API" || sed 's/^/#   /' "$T/chromium.log" | tail -5
grep -q '<td>web-01</td>' "$T/dom.html" && grep -q '<td class="silent">silent</td>' "$T/dom.html"
ok $? "agents: a host name and its health in the DOM"
grep -q '<td>0.1.0</td>' "$T/dom.html" && grep -q '<td>7 batches</td>' "$T/dom.html"
ok $? "agents: version and spool depth"
grep -q '<td>db</td><td>USD</td><td>3.703701</td>' "$T/dom.html" &&
    grep -q '<td>web</td><td>USD</td><td>1</td>' "$T/dom.html"
ok $? "costs: exact totals by team" || grep -o '<tbody id="costs">.\{0,300\}' "$T/dom.html" | sed 's/^/#   /'
grep -q '<polyline[^>]*stroke="#3366cc"[^>]*points="[0-9]' "$T/dom.html"
ok $? "costs and throughput: charts drawn"
grep -q '<b>db-migrate </b><span class="failed">failed</span>' "$T/dom.html" &&
    grep -q 'switch step.finished' "$T/dom.html"
ok $? "deployments: runs with their status and steps"
chromium --screenshot="$T/page.png" --window-size=1280,1100 >/dev/null
[ "$(head -c 8 "$T/page.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
    [ "$(wc -c <"$T/page.png")" -gt 10000 ]
ok $? "a screenshot of the page ($(wc -c <"$T/page.png" 2>/dev/null) bytes of PNG)"
[ -n "${STATUS_PAGE_SCREENSHOT:-}" ] && cp "$T/page.png" "$STATUS_PAGE_SCREENSHOT"
stop_pipitd
done_testing
