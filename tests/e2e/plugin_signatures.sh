#!/bin/sh
# plugin_signatures.sh: pipitd with plugins.require_signature runs signed plugins, refuses to start with an unsigned one; pipit sign-plugin's errors.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/e2e/daemon.sh"
setup_e2e
plan 14

# Copies of the built-in plugins in a private directory (the build tree may
# be group-writable), signed with a fresh key.
mkdir -m 0755 "$T/plugins"
for p in in_cpu in_memory out_file; do
    cp "$PIPIT_PLUGIN_DIR/$p.so" "$T/plugins/" && chmod 0755 "$T/plugins/$p.so"
done
"$PIPIT" keygen --out "$T/plug" >"$T/id" 2>/dev/null
"$PIPIT" sign-plugin --key "$T/plug.key" "$T/plugins/"*.so >"$T/out" 2>"$T/err"
ok $? "pipit sign-plugin signs every file"
[ "$(cat "$T/out")" = "$(cat "$T/id")" ] && [ -f "$T/plugins/in_cpu.so.sig" ] &&
    [ "$(stat -c %a "$T/plugins/in_cpu.so.sig")" = 644 ]
ok $? "it writes PLUGIN.so.sig, mode 0644, and prints the key id"
grep -qx "pipit-plugin-signature v1 $(cat "$T/id") [A-Za-z0-9+/]\{86\}==" "$T/plugins/in_cpu.so.sig"
ok $? "the signature file is one line: format, key id, base64 signature" ||
    sed 's/^/#   /' "$T/plugins/in_cpu.so.sig"

cat >"$T/p.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
  interval: 100ms
batch:
  linger_ms: 50
plugins:
  require_signature: true
  trusted_keys: [$T/plug.pub]
inputs:
  - plugin: cpu
  - plugin: memory
outputs:
  - plugin: file
    path: $T/out.jsonl
YAML
PIPIT_PLUGIN_DIR="$T/plugins"
"$PIPIT" check -c "$T/p.yaml" --plugin-dir "$T/plugins" >"$T/out" 2>&1
ok $? "pipit check passes with every plugin signed" || sed 's/^/#   /' "$T/out"
start_pipitd "$T/p.yaml"
wait_for 20 sh -c "grep -q '\"name\":\"memory\.' '$T/out.jsonl' 2>/dev/null && grep -q '\"name\":\"cpu\.' '$T/out.jsonl'"
ok $? "pipitd starts and runs the signed plugins" || show_log
stop_pipitd
ok $PIPITD_STATUS "pipitd exited 0"

# One plugin unsigned: pipitd refuses to start and names it.
rm "$T/plugins/in_memory.so.sig"
timeout 20 "$PIPITD" -c "$T/p.yaml" --plugin-dir "$T/plugins" >/dev/null 2>"$T/pipitd.log"
st=$?
[ $st -ne 0 ] && [ $st -ne 124 ]
ok $? "with in_memory.so unsigned pipitd refuses to start (exit $st)"
grep -q "$T/plugins/in_memory.so: no signature file" "$T/pipitd.log"
ok $? "naming the plugin and the reason" || show_log

# Modified after signing: refused too.
"$PIPIT" sign-plugin --key "$T/plug.key" "$T/plugins/in_memory.so" >/dev/null 2>&1
printf 'x' >>"$T/plugins/in_memory.so"
"$PIPIT" check -c "$T/p.yaml" --plugin-dir "$T/plugins" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "in_memory.so: bad signature .*changed after it was signed" "$T/out"
ok $? "a plugin changed after signing is refused" || sed 's/^/#   /' "$T/out"

# pipit plugin-test checks the same when asked.
"$PIPIT" plugin-test --require-signature --trusted-key "$T/plug.pub" "$T/plugins/in_cpu.so" \
    >"$T/out" 2>"$T/err" && grep -q '"name":"cpu\.' "$T/out"
ok $? "pipit plugin-test --require-signature loads a signed plugin" || sed 's/^/#   /' "$T/err"

# sign-plugin's errors.
"$PIPIT" sign-plugin "$T/plugins/in_cpu.so" >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--key PRIVATE.key is required" "$T/err"
ok $? "sign-plugin without --key: exit 2, says so" || sed 's/^/#   /' "$T/err"
"$PIPIT" sign-plugin --key "$T/missing.key" "$T/plugins/in_cpu.so" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "$T/missing.key: No such file" "$T/err"
ok $? "a missing key file: exit 1, named" || sed 's/^/#   /' "$T/err"
"$PIPIT" sign-plugin --key "$T/plug.pub" "$T/plugins/in_cpu.so" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "$T/plug.pub: mode 0644 lets group or others read" "$T/err"
ok $? "a public key as --key: exit 1, refused" || sed 's/^/#   /' "$T/err"
"$PIPIT" sign-plugin --key "$T/plug.key" "$T/plugins/nosuch.so" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "$T/plugins/nosuch.so: cannot open: No such file" "$T/err" &&
    [ ! -e "$T/plugins/nosuch.so.sig" ]
ok $? "an unreadable plugin: exit 1, named, nothing written" || sed 's/^/#   /' "$T/err"
done_testing
