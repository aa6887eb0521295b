#!/bin/sh
# sdk_template.sh: build sdk/template against a staged install of the SDK only, check its exports, run it with plugin-test.
. "$top_srcdir/tests/lib.sh"

for tool in make pkg-config nm cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "1..0 # SKIP $tool not found"; exit 0; }
done
tmpdir
plan 13

# A make of its own, not a child of the jobserver of make check.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
# Nothing may reach the source tree's headers behind pkg-config's back.
unset CPATH C_INCLUDE_PATH CPPFLAGS

D=$T/stage
make -C "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1
st=$?
ok $st "make install DESTDIR=stage"
[ $st -eq 0 ] || sed 's/^/# /' "$T/install.log" | tail -20

pc=$(find "$D" -name pipit-sdk.pc | head -n 1)
hdr=$(find "$D" -path '*/include/pipit/plugin.h' | head -n 1)
pipit=$(find "$D" -path '*/bin/pipit' -type f | head -n 1)
[ -n "$pc" ] && [ -n "$hdr" ] && [ -n "$pipit" ]
ok $? "the stage holds pipit-sdk.pc, pipit/plugin.h and bin/pipit"

# The template as installed with the docs (the source copy if docs are off).
tpl=$(find "$D" -path '*/template/in_loadavg.c' | head -n 1)
[ -n "$tpl" ] || tpl=$top_srcdir/sdk/template/in_loadavg.c
mkdir "$T/build" && cp "$(dirname "$tpl")"/* "$T/build/"

# Only the staged SDK: the sysroot maps the configured prefix into the stage.
pcdir=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR="$D" PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_LIBDIR="$pcdir"
cflags=$(pkg-config --cflags pipit-sdk)
case $cflags in
    *"-I$D/"*) ok 0 "pkg-config pipit-sdk points into the stage ($cflags)" ;;
    *) ok 1 "pkg-config pipit-sdk points into the stage ($cflags)" ;;
esac

make -C "$T/build" CFLAGS="-O2 -Wall -Wextra -Werror" >"$T/build.log" 2>&1
st=$?
ok $st "the template builds warning-free against the staged SDK"
[ $st -eq 0 ] || sed 's/^/# /' "$T/build.log"
! grep -Fq -e "$top_srcdir" -e "$top_builddir" "$T/build.log"
ok $? "the build used no path into the source or build tree"

syms=$(nm -D --defined-only "$T/build/in_loadavg.so" 2>/dev/null | awk '{ print $NF }' | sort -u)
[ "$syms" = pipit_plugin_entry ]
ok $? "in_loadavg.so exports only pipit_plugin_entry"
[ "$syms" = pipit_plugin_entry ] || diag "exports: $(echo $syms)"

(cd "$T/build" && "$pipit" plugin-test ./in_loadavg.so relative=true -n 1) \
    >"$T/out.json" 2>"$T/err.log"
st=$?
ok $st "the staged pipit plugin-test runs the plugin"
[ $st -eq 0 ] || sed 's/^/# /' "$T/err.log"
grep -Eq '"name": *"load\.1m"' "$T/out.json"
ok $? "plugin-test prints a load.1m record"
[ -s "$T/out.json" ] && sed 's/^/# /' "$T/out.json"

# The loader's checks hold through the CLI: a group-writable copy is refused.
cp "$T/build/in_loadavg.so" "$T/build/in_gw.so" && chmod 0664 "$T/build/in_gw.so"
(cd "$T/build" && "$pipit" plugin-test ./in_gw.so) >/dev/null 2>"$T/gw.log"
st=$?
[ $st -ne 0 ] && grep -q 'in_gw.so: writable by group (mode 0664)' "$T/gw.log"
ok $? "a group-writable plugin is refused with the reason"
[ -s "$T/gw.log" ] && sed 's/^/# /' "$T/gw.log"

# make install puts it into the (staged) plugin directory, mode 0755.
make -C "$T/build" install >"$T/tinstall.log" 2>&1
plugdir=$(pkg-config --variable=plugindir pipit-sdk)
[ -f "$plugdir/in_loadavg.so" ] &&
    [ "$(stat -c %a "$plugdir/in_loadavg.so")" = 755 ]
ok $? "make install puts in_loadavg.so into $plugdir, mode 0755"
"$pipit" plugin-test "$plugdir/in_loadavg.so" >"$T/inst.json" 2>"$T/inst.log" &&
    grep -Eq '"name": *"load\.1m"' "$T/inst.json"
st=$?
ok $st "the installed copy loads from the plugin directory and emits load.1m"
[ $st -eq 0 ] || sed 's/^/# /' "$T/inst.log"

# The staged daemon runs it from its plugin directory beside the built-ins.
pipitd=$(find "$D" -path '*/sbin/pipitd' -type f | head -n 1)
cat >"$T/agent.yaml" <<YAML
agent:
  state_dir: $T/state
  jitter: 0s
batch:
  linger_ms: 50
inputs:
  - plugin: loadavg
    interval: 100ms
outputs:
  - plugin: file
    path: $T/records.jsonl
YAML
"$pipitd" -c "$T/agent.yaml" --plugin-dir "$plugdir" 2>"$T/pipitd.log" &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q '"name":"load.1m"' "$T/records.jsonl" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
done
grep -q '"instance":"loadavg","name":"load.1m"' "$T/records.jsonl"
ok $? "the staged pipitd loads the third-party plugin and delivers its records"
kill -TERM $pid; wait $pid
ok $? "the staged pipitd stops cleanly" || sed 's/^/# /' "$T/pipitd.log"

done_testing
