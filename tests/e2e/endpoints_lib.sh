# tests/e2e/endpoints_lib.sh: read pipitd's HTTP endpoints with curl in shell tests (source after daemon.sh).

PROMCHECK="$top_builddir/tests/e2e/promcheck"
TOKEN=                                  # set it when http.token_file is

# port: the port pipitd logged it serves on (empty until then).
port() { sed -n 's|.*serving /metrics.* on https*://[^ ]*:\([0-9]*\) .*|\1|p' "$T/pipitd.log"; }
serving() { [ -n "$(port)" ]; }
# get PATH [CURL-ARGS...]: the status code; body in $T/body, headers in $T/head.
get() {
    local path=$1; shift
    curl -s --max-time 10 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" \
        "${SCHEME:-http}://127.0.0.1:$(port)$path"
}
# auth PATH [CURL-ARGS...]: get with the bearer token $TOKEN.
auth() { get "$@" -H "Authorization: Bearer $TOKEN"; }
# scrape: /metrics through promcheck into $T/samples; fails on a malformed exposition.
scrape() {
    [ "$(auth /metrics)" = 200 ] && "$PROMCHECK" <"$T/body" >"$T/samples" 2>"$T/promcheck.err"
}
# value SERIES: the value of one sample of the last scrape (exact series text).
# (through the environment: awk -v would read backslashes as escapes)
value() { SERIES=$1 awk '$1 == ENVIRON["SERIES"] { print $2 }' "$T/samples"; }
value_is() { scrape && [ "$(value "$1")" = "$2" ]; }
value_above() { scrape && [ -n "$(value "$1")" ] && [ "$(value "$1")" -gt "$2" ]; }
ready_is() { [ "$(auth /readyz)" = "$1" ]; }
# testsrc_value FAMILY INPUT [LABELS]: the sample of an in_testsrc input in the
# last scrape (LABELS: more labels, from their leading comma).
testsrc_value() { value "$1{input=\"$2\",plugin=\"testsrc\"$3}"; }
# testsrc_state INPUT STATE: 1 when the in_testsrc input INPUT is in STATE.
testsrc_state() {
    value "pipit_plugin_state{name=\"$1\",plugin=\"testsrc\",role=\"input\",state=\"$2\"}"
}
