#!/usr/bin/env bash
# Installs the Debian packages sscard needs, listed with the program each one
# provides in scripts/debian-packages.tsv (the one table; tests/test_setup_guard.py
# reads it too). Only as root and only what is missing, so a second `make test`
# costs one dpkg query. Without root it names the command to run and exits 0:
# the tests that need a missing program skip with the same advice.
set -u
table="$(dirname "$0")/debian-packages.tsv"
packages=$(grep -v '^#' "$table" | awk 'NF >= 2 { print $2 }' | sort -u)
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "sscard: missing Debian packages:$missing" >&2
    echo "sscard: run 'sudo make test' once, or: sudo apt-get install$missing" >&2
    echo "sscard: the tests that need them will be skipped until then" >&2
    exit 0
fi
echo "sscard: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; }; then
    echo "sscard: could not install:$missing (no network?); the tests that need them will skip" >&2
fi
exit 0
