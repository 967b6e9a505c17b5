#!/usr/bin/env bash
# Fallback when pyscard cannot be built (no gcc or no PC/SC headers): install
# everything else, so the codec, crypto and simulator still work; the PC/SC
# path then raises a typed error that says how to install pyscard.
set -eu
py=$1
echo "sscard: pyscard could not be built; installing without it (PC/SC tests will skip)" >&2
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
# One requirement per line (markers contain spaces), pyscard left out.
"$py" - > "$reqs" <<'PY'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = p["optional-dependencies"]
for d in p["dependencies"] + extras["dev"] + extras["serve"]:
    if not d.startswith(("pyscard", "sscard")):  # "sscard[serve]" = the serve extra, listed
        print(d)
PY
"$py" -m pip install -q -r "$reqs"
"$py" -m pip install -q --no-deps -e .
