"""Clearing (issue 19): taps cleared per second at 1M taps, DuckDB and Spark local[2],
against the plain-Python loop baseline in the same run; the cost curve 100k..1M.

- Fleet: ``sscard.simulators.fleet`` with its default fault shares, ~3.3 taps per card,
  one day; the generator's own time at 1M is a row too (issue: "well under a minute").
- DuckDB: ``sscard.clearing.clear(engine="duckdb")`` end to end (validate, load, TAC
  checks, SQL, files), at 100k, 250k, 500k and 1M; per-tap cost at each size, and the
  1M/100k cost ratio (1.0 = linear).
- Spark: the same run on ``local[2]`` at 1M, JVM start included.
- Baseline: ``engine="python"`` (a dict per rule, one purchase_tac per row) at 100k;
  its rate is per tap, so it compares with the 1M rates as long as it is linear.
The machine's load average is reported: the machine is shared, and rates scale with it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.timing import row
from sscard.clearing.keys import IssuerKeys
from sscard.clearing.run import clear
from sscard.simulators.fleet import FleetSpec, generate

SIZES = (100_000, 250_000, 500_000, 1_000_000)
TARGET = 50_000  # taps/s, DuckDB at 1M (issue 19)


def _fleet(base: Path, taps: int) -> tuple[Path, float]:
    out = base / f"fleet-{taps}"
    t = time.perf_counter()
    generate(FleetSpec(validators=max(60, taps // 500), cards=taps * 10 // 33, days=1,
                       taps_per_day=taps), out)  # fmt: skip
    return out, time.perf_counter() - t


def _clear(fleet: Path, out: Path, engine: str, **kw: Any) -> tuple[int, float]:
    t = time.perf_counter()
    result = clear(fleet / "uploads", IssuerKeys.load(fleet / "issuer-keys.json"), out,
                   engine=engine, **kw)  # type: ignore[arg-type]  # fmt: skip
    return result.summary["totals"]["rows"], time.perf_counter() - t


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = Path(tempfile.mkdtemp(prefix="sscard-bench-clearing-"))
    try:
        fleets: dict[int, Path] = {}
        for taps in SIZES:
            fleets[taps], seconds = _fleet(base, taps)
            print(f"#   fleet {taps:,}: {seconds:.1f} s", file=sys.stderr, flush=True)
            if taps == SIZES[-1]:
                rows.append(row("fleet generator, 1M taps (s)", "s", seconds, target="< 60 s"))
        n, seconds = _clear(fleets[SIZES[0]], base / "out-python", "python")
        python_rate = n / seconds
        print(f"#   python {n:,}: {seconds:.1f} s", file=sys.stderr, flush=True)
        cost: dict[int, float] = {}
        for taps in SIZES:
            n, seconds = _clear(fleets[taps], base / f"out-duckdb-{taps}", "duckdb")
            cost[taps] = seconds / n * 1e6
            print(f"#   duckdb {n:,}: {seconds:.1f} s", file=sys.stderr, flush=True)
            rows.append(row(f"duckdb cost at {taps // 1000}k taps", "µs/tap", cost[taps]))
            if taps == SIZES[-1]:
                rows.append(
                    row("clearing duckdb, 1M taps", "taps/s", n / seconds,
                        "python loop (100k)", python_rate, target=f">= {TARGET:,}")
                )  # fmt: skip
        rows.append(
            row("cost ratio 1M/100k (linear = 1)", "x", cost[SIZES[-1]] / cost[SIZES[0]],
                target="~1")
        )  # fmt: skip
        try:
            n, seconds = _clear(fleets[SIZES[-1]], base / "out-spark", "spark", master="local[2]")
            print(f"#   spark {n:,}: {seconds:.1f} s", file=sys.stderr, flush=True)
            rows.append(row("clearing spark local[2], 1M taps", "taps/s", n / seconds,
                            "python loop (100k)", python_rate))  # fmt: skip
        except Exception as exc:  # no Java: say so, keep the other rows
            rows.append({"name": f"clearing spark local[2]: not run ({type(exc).__name__})",
                         "unit": "", "value": None})  # fmt: skip
        rows.append(row("machine load average (1 min, 2 cores)", "", os.getloadavg()[0]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows
