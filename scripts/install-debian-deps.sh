#!/usr/bin/env bash
# Installs the Debian packages sscard needs, only when run as root and only
# those that are missing, so a second `make test` costs one dpkg query.
#   pcscd, vsmartcard-vpcd  - the real PC/SC stack the end-to-end tests drive
#   libpcsclite-dev, gcc    - to build pyscard (no Linux wheel on PyPI)
#   pcsc-tools              - scriptor/pcsc_scan, a client no one here wrote
set -u
packages="pcscd libpcsclite-dev vsmartcard-vpcd gcc pcsc-tools"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "sscard: missing Debian packages:$missing" >&2
    echo "sscard: run 'sudo make test' once, or: sudo apt-get install$missing" >&2
    echo "sscard: the PC/SC end-to-end tests will be skipped until then" >&2
    exit 0
fi
echo "sscard: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing
