#!/bin/sh
# check.sh: pipit check lists every error with file, line and key, and exits 0/1.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 16

cat >"$T/good.yaml" <<YAML
agent:
  state_dir: $T/state
inputs:
  - plugin: cpu
  - plugin: memory
    interval: 30s
outputs:
  - plugin: stdout
YAML
"$PIPIT" check -c "$T/good.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
ok $? "a valid file passes"
grep -q "valid (2 inputs, 1 output)" "$T/out"
ok $? "and says what it holds"

cat >"$T/bad.yaml" <<YAML
agent:
  state_dir: $T/state
  log_level: loud
batch:
  max_records: -5
inputs:
  - plugin: cpu
    per_cpu: maybe
  - plugin: nosuchplugin
  - plugin: memory
    interval: fast
outputs:
  - plugin: file
YAML
"$PIPIT" check -c "$T/bad.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
st=$?
[ $st -eq 1 ]
ok $? "an invalid file exits 1"
sed 's/^/#   /' "$T/out"
grep -q "bad.yaml:3: agent.log_level" "$T/out";        ok $? "bad log level: line 3"
grep -q "bad.yaml:5: batch.max_records" "$T/out";      ok $? "out of range: line 5"
grep -q "bad.yaml:8: inputs\[0\]\.per_cpu" "$T/out";   ok $? "wrong type: line 8"
grep -q "bad.yaml:9: inputs\[1\]\.plugin.*in_nosuchplugin.so" "$T/out"; ok $? "missing plugin named with its path: line 9"
grep -q "bad.yaml:11: inputs\[2\]\.interval" "$T/out"; ok $? "bad duration: line 11"
grep -q "bad.yaml:13: outputs\[0\].*path" "$T/out";    ok $? "missing required key: the entry's line"

# An input driven by its own events (no collect()) has no use for interval.
cat >"$T/evt.yaml" <<YAML
agent:
  state_dir: $T/state
inputs:
  - plugin: statsd
    listen: 127.0.0.1:0
    interval: 30s
outputs:
  - plugin: stdout
YAML
"$PIPIT" check -c "$T/evt.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
[ $? -eq 1 ]
ok $? "interval on an input without collect() is refused"
grep -q 'evt.yaml:6: inputs\[0\]\.interval: the statsd input is not run on an interval' "$T/out"
ok $? "with its line and key" || sed 's/^/#   /' "$T/out"

# plugins.require_signature needs trusted keys, and each must be a public key.
cat >"$T/sig.yaml" <<YAML
agent:
  state_dir: $T/state
plugins:
  require_signature: true
outputs:
  - plugin: stdout
YAML
"$PIPIT" check -c "$T/sig.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
[ $? -eq 1 ]
ok $? "require_signature without trusted keys is refused"
grep -q 'sig.yaml:4: plugins.trusted_keys: require_signature needs at least one' "$T/out"
ok $? "with its line and key" || sed 's/^/#   /' "$T/out"
echo "not a key" >"$T/bad.pub"
cat >"$T/sig.yaml" <<YAML
agent:
  state_dir: $T/state
plugins:
  require_signature: true
  trusted_keys: [$T/bad.pub, $T/missing.pub]
outputs:
  - plugin: stdout
YAML
"$PIPIT" check -c "$T/sig.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
[ $? -eq 1 ]
ok $? "a bad trusted key file is refused"
grep -q "sig.yaml:5: plugins.trusted_keys: $T/bad.pub: not a PEM public key" "$T/out" &&
    grep -q "sig.yaml:5: plugins.trusted_keys: $T/missing.pub: No such file" "$T/out"
ok $? "each named with the file, line and key" || sed 's/^/#   /' "$T/out"
# Keys fine, plugins unsigned: refused the way pipitd would refuse them.
"$PIPIT" keygen -o "$T/plug" >/dev/null 2>&1
sed -i "s|trusted_keys: .*|trusted_keys: [$T/plug.pub]|" "$T/sig.yaml"
"$PIPIT" check -c "$T/sig.yaml" --plugin-dir "$PIPIT_PLUGIN_DIR" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q 'outputs\[0\].*out_stdout.so: no signature file' "$T/out"
ok $? "an unsigned plugin is refused by pipit check" || sed 's/^/#   /' "$T/out"
done_testing
