#!/bin/sh
# pg_stop.sh: stop the server pg_start.sh started in DIR (quietly if there is none).
# Usage: tests/pg/pg_stop.sh DIR
set -eu

dir=${1:?usage: pg_stop.sh DIR}
[ -f "$dir/bindir" ] && [ -d "$dir/data" ] || exit 0
bindir=$(cat "$dir/bindir")
as=
[ "$(id -u)" -eq 0 ] && as="runuser -u postgres --"
$as "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
