# tests/e2e/damage.sh: helpers of the generated-damage tests (source after tests/e2e/daemon.sh).

# soon COMMAND...: poll COMMAND every 20 ms for up to 10 s, or until pipitd
# ($PIPITD_PID) exits (a run takes tens of milliseconds; the limit only
# catches a hang).
soon() {
    local i
    for ((i = 0; i < 500; i++)); do
        "$@" && return 0
        kill -0 "$PIPITD_PID" 2>/dev/null || { "$@"; return; }
        sleep 0.02
    done
    return 1
}

# flip FILE OFFSET BIT: invert one bit of FILE in place.
flip() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $(( b ^ (1 << $3) )))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# restore_copy TEMPLATE DIR: DIR becomes a fresh copy of TEMPLATE.
restore_copy() { rm -rf "$2"; cp -a "$1" "$2"; }

# spool_walk DIR: "file offset size id seq" of each entry of the spool
# segments in DIR, header by header (docs/spool.md: the data length at
# offset 16, the batch seq at 24, the entry id at 32). A segment's bytes
# past its last whole header are not listed.
spool_walk() {
    local f size pos len seq id
    for f in "$1"/*.seg; do
        [ -f "$f" ] || continue
        size=$(stat -c %s "$f") pos=0
        while [ $((pos + 40)) -le "$size" ]; do
            len=$(od -An -tu4 -j $((pos + 16)) -N4 "$f" | tr -d ' ')
            seq=$(od -An -tu8 -j $((pos + 24)) -N8 "$f" | tr -d ' ')
            id=$(od -An -tu8 -j $((pos + 32)) -N8 "$f" | tr -d ' ')
            echo "${f##*/} $pos $((40 + len)) $id $seq"
            pos=$((pos + 40 + len))
        done
    done
}
