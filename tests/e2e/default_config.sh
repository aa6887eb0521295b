#!/bin/sh
# default_config.sh: conf/pipit.yaml is valid and runs as shipped (state dir redirected).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 6

"$PIPIT" check -c "$top_srcdir/conf/pipit.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
ok $? "pipit check accepts conf/pipit.yaml" || sed 's/^/#   /' "$T/out"
"$PIPIT" check -c "$top_srcdir/conf/aggregator.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
ok $? "pipit check accepts conf/aggregator.yaml" || sed 's/^/#   /' "$T/out"

# Same file, with the state directory and interval made test-friendly.
sed -e "s|^  state_dir: .*|  state_dir: $T/state|" -e "s|^  interval: .*|  interval: 200ms|" \
    -e "s|^  jitter: .*|  jitter: 0s|" -e "s|^  linger_ms: .*|  linger_ms: 100|" \
    "$top_srcdir/conf/pipit.yaml" >"$T/p.yaml"
grep -q "state_dir: $T/state" "$T/p.yaml"
ok $? "the default config has agent.state_dir to redirect"
start_pipitd "$T/p.yaml"
for name in cpu.time_seconds memory.total_bytes load.1m system.uptime_seconds process.count net. disk.; do
    wait_for 20 grep -q "\"name\":\"$name" "$T/pipitd.out" || { diag "no $name"; break; }
done
ok $? "stdout shows records of every default collector"
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"
jq -e . "$T/pipitd.out" >/dev/null
ok $? "stdout is valid JSON lines"
done_testing
