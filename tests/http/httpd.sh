# tests/http/httpd.sh: start and stop tests/http/httpd_fixture from shell tests (source after tests/e2e/daemon.sh, which sets T).

HTTPD_FIXTURE="$top_builddir/tests/http/httpd_fixture"
HTTPD_PID=

# start_httpd ROOT [ARGS...]: serve ROOT on 127.0.0.1; sets HTTPD_PORT and
# HTTPD_PID, logs requests to $T/httpd.log. Returns 1 when it did not listen.
start_httpd() {
    local root=$1 i=0
    shift
    rm -f "$T/httpd.port"
    "$HTTPD_FIXTURE" --root "$root" --port-file "$T/httpd.port" --log "$T/httpd.log" "$@" \
        2>"$T/httpd.err" &
    HTTPD_PID=$!
    while [ ! -s "$T/httpd.port" ] && [ $i -lt 100 ]; do
        kill -0 "$HTTPD_PID" 2>/dev/null || return 1
        sleep 0.1; i=$((i + 1))
    done
    HTTPD_PORT=$(cat "$T/httpd.port" 2>/dev/null)
    [ -n "$HTTPD_PORT" ]
}

# stop_httpd: end the server and wait for it.
stop_httpd() {
    [ -n "$HTTPD_PID" ] || return 0
    kill "$HTTPD_PID" 2>/dev/null
    wait "$HTTPD_PID" 2>/dev/null
    HTTPD_PID=
}
