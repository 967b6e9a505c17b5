"""Run all benchmarks, print a table, write JSON to benchmarks/results/.

``python -m benchmarks [SUITE ...]``: each suite runs in its own Python process, so what
one leaves behind (Spark's JVM gateway, DuckDB's and SQLite's threads, imports, a warm
heap) cannot slow the next. Hygiene, not a measured cure: the serve ratio was as noisy
alone as after the clearing suite.

Each suite runs with the CPUs held out of idle states (:func:`benchmarks.timing.cpus_awake`,
root only) and reports the share of CPU time the hypervisor stole from this VM while it
ran: the table says beside its numbers whether they were taken on a quiet host.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import benchmarks
from benchmarks.timing import Steal, cpus_awake

RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return "" if value is None else str(value)


def run_one(short: str, rows_path: Path) -> int:
    """In the child process: run suite ``short``, write its rows as JSON."""
    try:
        module = importlib.import_module(f"benchmarks.bench_{short}")
        with cpus_awake() as awake:
            steal = Steal()
            rows = [{"suite": short, **row} for row in module.run()]
            host = {"cpus_awake": awake, "steal": steal.share()}
    except Exception:
        traceback.print_exc()
        return 1
    rows_path.write_text(json.dumps({"rows": rows, "host": host}))
    return 0


def _suite(short: str) -> dict[str, Any] | None:
    """Suite ``short`` in a fresh process: its rows and what the host did meanwhile; None
    when it failed (its traceback is shown)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = Path(tmp) / "rows.json"
        child = [sys.executable, "-m", "benchmarks", "--one", short, str(rows_path)]
        if subprocess.run(child, check=False).returncode != 0 or not rows_path.exists():
            return None
        result: dict[str, Any] = json.loads(rows_path.read_text())
        return result


def _host_line(short: str, host: dict[str, Any]) -> str:
    steal = host.get("steal")
    stolen = "not counted" if steal is None else f"{steal:.0%}"
    awake = (
        "held awake" if host.get("cpus_awake") else "free to idle (/dev/cpu_dma_latency: no access)"
    )
    return f"{short}: CPU stolen by the hypervisor {stolen}, CPUs {awake}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"] and len(argv) == 3:
        return run_one(argv[1], Path(argv[2]))
    only = set(argv)
    rows: list[dict[str, Any]] = []
    hosts: dict[str, dict[str, Any]] = {}
    failures = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        short = info.name.removeprefix("bench_")
        if only and short not in only:
            continue
        print(f"# {short} ...", file=sys.stderr, flush=True)
        result = _suite(short)  # one broken suite must not hide the others
        if result is None:
            failures += 1
        else:
            rows.extend(result["rows"])
            hosts[short] = result["host"]
    header = ("suite", "name", "value", "unit", "baseline", "baseline value", "ratio", "target")
    table = [
        (
            r["suite"],
            r["name"],
            _fmt(r.get("value")),
            r.get("unit", ""),
            r.get("baseline_name") or "",
            _fmt(r.get("baseline_value")),
            _fmt(r.get("ratio")),
            r.get("target", ""),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=True)]
    for line in (header, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))
    print("\nhost while each suite ran:")
    for short, host in hosts.items():
        print("  " + _host_line(short, host))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "time": stamp,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": rows,
                "host": hosts,
            },
            indent=2,
        )
    )
    print(f"\nwritten: {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
