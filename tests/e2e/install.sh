#!/bin/sh
# install.sh: make install into a stage puts pipitd(8), pipit(1) and pipit.yaml(5) in the man directories, the units and the completion; every installed program answers --version; the Dockerfile is a multi-stage build on Debian slim.
. "$top_srcdir/tests/lib.sh"
command -v make >/dev/null 2>&1 || { echo "1..0 # SKIP make not found"; exit 0; }
tmpdir
plan 8

# A make of its own, not a child of the jobserver of make check.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
version=$(sed -n 's/^PACKAGE_VERSION = //p' "$top_builddir/Makefile")
D=$T/stage
make -C "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1
st=$?
ok $st "make install DESTDIR=stage" || sed 's/^/#   /' "$T/install.log" | tail -20
P=$D$PIPIT_PREFIX

missing=
for page in man8/pipitd.8 man1/pipit.1 man5/pipit.yaml.5; do
    [ -s "$P/share/man/$page" ] && grep -q '^\.TH ' "$P/share/man/$page" || missing="$missing $page"
done
[ -z "$missing" ]
ok $? "pipitd(8), pipit(1) and pipit.yaml(5) are installed under share/man${missing:+ (missing:$missing)}"
grep -q '^\.SS input' "$P/share/man/man5/pipit.yaml.5" 2>/dev/null
ok $? "the installed pipit.yaml(5) holds the generated key reference"
[ -s "$P/lib/systemd/system/pipitd.service" ] && [ -s "$P/lib/systemd/system/pipit-aggregator.service" ] &&
    grep -q "^ExecStart=$PIPIT_PREFIX/sbin/pipitd " "$P/lib/systemd/system/pipitd.service"
ok $? "both systemd units are installed, naming the installed pipitd"
[ -s "$P/share/bash-completion/completions/pipit" ] && [ -e "$P/share/bash-completion/completions/pipitd" ]
ok $? "the bash completion is installed for pipit and pipitd"

# Every installed program: --version prints its name and the package version.
n=0 bad=
for prog in "$P"/bin/* "$P"/sbin/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    n=$((n + 1))
    out=$("$prog" --version 2>&1) && [ "$out" = "$(basename "$prog") $version" ] ||
        bad="$bad $(basename "$prog")=[$out]"
done
[ "$n" -ge 2 ] && [ -z "$bad" ]
ok $? "each of the $n installed programs answers --version with \"NAME $version\"${bad:+; wrong:$bad}"
out=$("$P/sbin/pipitd" -V 2>&1) && [ "$out" = "pipitd $version" ]
ok $? "pipitd -V too ($out)"

# The container image: a build stage and a runtime stage, both Debian slim,
# the runtime one only copying the staged install and running unprivileged.
df=$top_srcdir/contrib/docker/Dockerfile
[ "$(grep -c '^FROM debian:[a-z0-9.]*-slim' "$df")" = 2 ] &&
    grep -q '^FROM debian:[a-z0-9.]*-slim AS build$' "$df" &&
    grep -q '^COPY --from=build ' "$df" &&
    [ "$(sed -n '/^FROM .* AS build$/,$p' "$df" | sed -n '2,$p' | grep -c '^FROM ')" = 1 ] &&
    ! sed -n '/^COPY --from=build/,$p' "$df" | grep -q 'build-essential\|-dev\b' &&
    grep -q '^USER [a-z0-9]' "$df" && ! grep -q '^USER root' "$df"
ok $? "contrib/docker/Dockerfile: multi-stage on Debian slim, runtime stage without the toolchain, not root"
done_testing
