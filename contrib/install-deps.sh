#!/bin/sh
# install-deps.sh: install the Debian packages pipit needs to build and test (only the missing ones).
# Usage: contrib/install-deps.sh [--test]   (--test adds what the test suite uses)
set -eu

BUILD="build-essential autoconf automake libtool pkg-config git
 libuv1-dev librdkafka-dev libcurl4-openssl-dev zlib1g-dev libssl-dev libyaml-dev
 libjansson-dev libsqlite3-dev libpq-dev libmicrohttpd-dev libzstd-dev libdeflate-dev libpcre2-dev
 jq sqlite3"
TEST="valgrind clang libclang-rt-14-dev postgresql kcat logrotate openssl groff-base
 prometheus-node-exporter systemd python3-yaml curl chromium"

want=$BUILD
[ "${1:-}" = "--test" ] && want="$BUILD $TEST"

missing=
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
echo "install-deps: installing$missing"
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing </dev/null
