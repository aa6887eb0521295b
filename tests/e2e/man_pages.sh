#!/bin/sh
# man_pages.sh: the man pages render without a warning from groff.
. "$top_srcdir/tests/lib.sh"
tmpdir
plan 3
for page in "$top_srcdir/docs/man/pipitd.8" "$top_srcdir/docs/man/pipit.1" \
            "$top_builddir/docs/man/pipit.yaml.5"; do
    if ! command -v groff >/dev/null 2>&1; then
        skip "groff is not installed (contrib/install-deps.sh --test)"
        continue
    fi
    groff -man -Tutf8 -ww -z "$page" >"$T/err" 2>&1 && [ ! -s "$T/err" ]
    ok $? "$(basename "$page") renders cleanly"
    sed 's/^/#   /' "$T/err"
done
done_testing
