#!/bin/sh
# quickstart.sh: install what is missing, build pipit, run the agent on the default
# configuration for a while and show what it collected.
# Usage: contrib/quickstart.sh [SECONDS]   (default 15)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-15}

contrib/install-deps.sh
if [ ! -x build/agent/pipitd ] || [ configure.ac -nt build/Makefile ]; then
    autoreconf -fi
    mkdir -p build
    (cd build && ../configure -q)
fi
make -C build -j"$(nproc)" >/dev/null

run=$top/build/quickstart
rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
# The shipped config, with state kept under build/ and a short interval.
sed -e "s|^  state_dir: .*|  state_dir: $run/state|" -e "s|^  interval: .*|  interval: 5s|" \
    -e "s|^  jitter: .*|  jitter: 0s|" conf/pipit.yaml >"$run/pipit.yaml"
build/agent/pipit check -c "$run/pipit.yaml" --plugin-dir build/plugins/lib

echo "quickstart: running pipitd for ${secs}s (log: $run/pipitd.log)"
build/agent/pipitd -c "$run/pipit.yaml" --plugin-dir build/plugins/lib \
    >"$run/records.jsonl" 2>"$run/pipitd.log" &
pid=$!
sleep "$secs"
kill -TERM "$pid"
wait "$pid"

echo
echo "== pipitd log (last lines) =="
tail -n 12 "$run/pipitd.log"
echo
echo "== collected: $(wc -l <"$run/records.jsonl") records in $run/records.jsonl =="
echo "   latest value of each series without labels, and series counts per metric:"
jq -s -r '
  map(select(.kind == "metric")) | group_by(.name)[] |
  ( map(select(.labels == {})) | last ) as $plain |
  [ .[0].instance, .[0].name, .[0].type,
    (if $plain then ($plain.value | tostring) else "-" end),
    (map(.labels | tostring) | unique | length | tostring) + " series" ] | @tsv' \
  "$run/records.jsonl" | column -t -s "$(printf '\t')"
