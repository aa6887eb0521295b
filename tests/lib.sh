# tests/lib.sh: TAP helpers for shell tests (source it).
tap_n=0
tap_failed=0
plan() { echo "1..$1"; }
ok() { # ok COND-STATUS DESCRIPTION
    tap_n=$((tap_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $tap_n - $2"; return 0; fi
    echo "not ok $tap_n - $2"; tap_failed=$((tap_failed + 1))
    return 1
}
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $1"; }
diag() { echo "# $*"; }
done_testing() { [ "$tap_failed" -eq 0 ]; exit $?; }
# A private temporary directory removed on exit (mode 0700 under /tmp).
tmpdir() { T=$(mktemp -d "${TMPDIR:-/tmp}/pipit-test.XXXXXX"); trap 'rm -rf "$T"' EXIT; }
