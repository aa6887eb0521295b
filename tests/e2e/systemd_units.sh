#!/bin/sh
# systemd_units.sh: the shipped units score 2.0 or better in systemd-analyze security (lower is safer) and carry the hardening the docs name.
. "$top_srcdir/tests/lib.sh"
tmpdir
units="pipitd.service pipit-aggregator.service"
if ! command -v systemd-analyze >/dev/null 2>&1 ||
   ! systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    echo "1..0 # SKIP systemd-analyze with --offline is not installed (Debian package systemd)"
    exit 0
fi
plan 6
for u in $units; do
    # --offline reads the unit file alone; --threshold=20 fails above 2.0.
    cp "$top_builddir/contrib/systemd/$u" "$T/$u"
    systemd-analyze security --offline=true --threshold=20 "$T/$u" >"$T/out" 2>&1
    st=$?
    score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/out")
    ok $st "$u: exposure $score, at most 2.0" || sed 's/^/#   /' "$T/out" | grep -v '✓'
    grep -q '^User=pipit$' "$T/$u" && grep -q '^NoNewPrivileges=yes$' "$T/$u"
    ok $? "$u: a dedicated user, no new privileges"
    grep -q '^ProtectSystem=strict$' "$T/$u" && grep -q '^StateDirectory=pipit' "$T/$u" &&
        grep -q '^CapabilityBoundingSet=' "$T/$u" &&
        [ "$(sed -n 's/^CapabilityBoundingSet=//p' "$T/$u")" = "$(sed -n 's/^AmbientCapabilities=//p' "$T/$u")" ]
    ok $? "$u: ProtectSystem=strict, a StateDirectory, capabilities bounded to the ambient ones ($(sed -n 's/^CapabilityBoundingSet=//p' "$T/$u"))"
done
done_testing
