#!/bin/sh
# pg_start.sh: start a private PostgreSQL server in DIR for the tests (unix socket in DIR only).
# Usage: tests/pg/pg_start.sh DIR
# Makes DIR/data (initdb, trust authentication, UTF8, user "pipit"), starts the
# server listening only on a unix socket in DIR, and writes the libpq
# connection string to DIR/conninfo (also printed). As root the server runs as
# the "postgres" user and DIR is handed to it. Stop it with pg_stop.sh DIR.
# Exit status: 0 started, 2 PostgreSQL is not available here (reason on
# stderr: callers skip), 1 it failed to start (log on stderr).
set -eu

dir=${1:?usage: pg_start.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

unavailable() { echo "pg_start: $*" >&2; exit 2; }

# The newest server installed the Debian way, else initdb on the PATH.
bindir=
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir=$d
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
    bindir=$(dirname "$(command -v initdb)")
fi
[ -n "$bindir" ] && [ -x "$bindir/pg_ctl" ] ||
    unavailable "no PostgreSQL server found (install the postgresql package)"

# A unix socket path is limited to 107 bytes.
[ ${#dir} -le 80 ] || unavailable "$dir is too long a path for a unix socket"

as=
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || unavailable "running as root and there is no postgres user"
    command -v runuser >/dev/null 2>&1 || unavailable "running as root without runuser"
    chown postgres "$dir"
    runuser -u postgres -- test -w "$dir" ||
        unavailable "$dir is not reachable by the postgres user (check its parents' modes)"
    as="runuser -u postgres --"
fi

if ! $as "$bindir/initdb" -D "$dir/data" -U pipit -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    exit 1
fi
# fsync stays on: the tests and the benchmark see a durable server.
if ! $as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k '$dir' -p 5432" start >"$dir/pg_ctl.log" 2>&1; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
    exit 1
fi
echo "$bindir" >"$dir/bindir"
echo "host=$dir port=5432 user=pipit dbname=postgres" >"$dir/conninfo"
cat "$dir/conninfo"
