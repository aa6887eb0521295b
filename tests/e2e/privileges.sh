#!/bin/sh
# privileges.sh: started as root with agent.user, pipitd runs as that user once started, with its state and spool handed over.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root to switch users"
    exit 0
fi
user=nobody
uid=$(id -u "$user" 2>/dev/null) || { echo "1..0 # SKIP no user $user"; exit 0; }
plan 10

# A port below 1024 for the endpoints: only root may bind it, and pipitd
# binds it before it switches users.
low=
for p in $(seq 700 999); do
    hex=$(printf '%04X' "$p")
    awk -v h=":$hex" '$2 ~ h "$" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null ||
        { low=$p; break; }
done
chmod 0711 "$T"
mkdir "$T/out" && chown "$user" "$T/out"
cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  user: $user
http:
  enabled: true
  listen: 127.0.0.1:$low
batch:
  max_records: 5
  linger_ms: 100
inputs:
  - plugin: $TESTSRC
    count: 5
    interval: 100ms
outputs:
  - plugin: file
    path: $T/out/out.jsonl
YAML
start_pipitd "$T/p.yaml"
wait_for 20 log_has "running as $user"
ok $? "pipitd says it runs as $user" || show_log
ids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$PIPITD_PID/status")
[ "$ids" = "$uid $uid $uid $uid" ]
ok $? "real, effective, saved and file uid are $uid ($ids)"
n=$(lines "$T/out/out.jsonl")
wait_for 20 more_lines_than "$T/out/out.jsonl" $((n + 20))
ok $? "records keep arriving after the switch"
code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$low/healthz")
[ "$code" = 200 ] && log_has "serving /metrics.* on http://127.0.0.1:$low "
ok $? "the privileged port $low, bound as root, still answers as $user ($code)" || show_log
[ "$(stat -c %U "$T/state")" = "$user" ] &&
    [ -z "$(find "$T/state" ! -user "$user")" ]
ok $? "the state directory and all in it belong to $user"
! grep -q 'level=error' "$T/pipitd.log"
ok $? "no error: the spool and the output write as $user" || show_log
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0 on SIGTERM"

sed "s/user: $user/user: no-such-user-pipit/" "$T/p.yaml" >"$T/bad.yaml"
"$PIPIT" check -c "$T/bad.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/check.out" 2>&1
[ $? -eq 1 ]
ok $? "pipit check refuses an unknown user"
grep -q 'bad.yaml:4: agent.user: no such user "no-such-user-pipit"' "$T/check.out"
ok $? "naming the file, line and key" || sed 's/^/#   /' "$T/check.out"
"$PIPITD" -c "$T/bad.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >/dev/null 2>&1
[ $? -eq 1 ]
ok $? "and pipitd does not start with it"
done_testing
