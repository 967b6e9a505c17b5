"""Clearing: taps cleared per second at 1M taps, DuckDB and Spark local[2],
against the plain-Python loop baseline in the same run; the cost curve 100k..1M.

- Fleet: ``sscard.simulators.fleet`` with its default fault shares, ~3.3 taps per card,
  one day; the generator's own time at 1M is a row too (target: well under a minute).
- DuckDB: ``sscard.clearing.clear(engine="duckdb")`` end to end (validate, load, TAC
  checks, SQL, files), at 100k, 250k, 500k and 1M; per-tap cost at each size (wall and
  CPU), and the 1M/100k cost ratio (1.0 = linear).
- Spark: the same run on ``local[2]`` at 1M, JVM start included; CPU is the driver's
  plus the JVM's and its Python workers' (read from /proc before the session stops).
- Baseline: ``engine="python"`` (a dict per rule, one purchase_tac per row) at 100k;
  its rate is per tap, so it compares with the 1M rates as long as it is linear.

The machine is shared: wall rates scale with its load (reported), CPU seconds much less.
CPU is this process's user + system time (every thread: DuckDB's, the check's).
"""

from __future__ import annotations

import os
import resource
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
TARGET = 50_000  # taps/s, DuckDB at 1M on this 2-core machine


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _descendants_cpu() -> float:
    """CPU seconds of this process's live descendants (the JVM, Spark's Python workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return sum(cpu for pid, (_, cpu) in stats.items() if pid in mine and pid != os.getpid())


def _fleet(base: Path, taps: int) -> tuple[Path, float]:
    out = base / f"fleet-{taps}"
    t = time.perf_counter()
    generate(FleetSpec(validators=max(60, taps // 500), cards=taps * 10 // 33, days=1,
                       taps_per_day=taps), out)  # fmt: skip
    return out, time.perf_counter() - t


def _clear(fleet: Path, out: Path, engine: str, **kw: Any) -> tuple[int, float, float]:
    """(rows, wall seconds, CPU seconds)."""
    t, c = time.perf_counter(), _cpu()
    result = clear(fleet / "uploads", IssuerKeys.load(fleet / "issuer-keys.json"), out,
                   engine=engine, **kw)  # type: ignore[arg-type]  # fmt: skip
    return result.summary["totals"]["rows"], time.perf_counter() - t, _cpu() - c


def _say(text: str) -> None:
    print(f"#   {text} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


def _spark(fleet: Path, out: Path) -> tuple[int, float, float]:
    from sscard.clearing.engines import spark_session

    t, c = time.perf_counter(), _cpu()
    session = spark_session("local[2]")
    try:
        n, _, _ = _clear(fleet, out, "spark", spark_session=session)
        seconds = time.perf_counter() - t
        cpu = _cpu() - c + _descendants_cpu()
    finally:
        session.stop()
    return n, seconds, cpu


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = Path(tempfile.mkdtemp(prefix="sscard-bench-clearing-"))
    try:
        fleets: dict[int, Path] = {}
        for taps in SIZES:
            fleets[taps], seconds = _fleet(base, taps)
            _say(f"fleet {taps:,}: {seconds:.1f} s")
            if taps == SIZES[-1]:
                rows.append(row("fleet generator, 1M taps (s)", "s", seconds, target="< 60 s"))
        n, seconds, cpu = _clear(fleets[SIZES[0]], base / "out-python", "python")
        python_rate = n / seconds
        _say(f"python {n:,}: {seconds:.1f} s, CPU {cpu:.1f} s")
        rows.append(row("clearing python loop, 100k taps", "taps/s", python_rate))
        rows.append(row("clearing python loop, 100k taps, CPU", "µs/tap", cpu / n * 1e6))
        cost: dict[int, float] = {}
        for taps in SIZES:
            n, seconds, cpu = _clear(fleets[taps], base / f"out-duckdb-{taps}", "duckdb")
            cost[taps] = seconds / n * 1e6
            _say(f"duckdb {n:,}: {seconds:.1f} s, CPU {cpu:.1f} s")
            rows.append(row(f"duckdb cost at {taps // 1000}k taps", "µs/tap", cost[taps]))
            rows.append(row(f"duckdb CPU at {taps // 1000}k taps", "µs/tap", cpu / n * 1e6))
            if taps == SIZES[-1]:
                rows.append(
                    row("clearing duckdb, 1M taps", "taps/s", n / seconds,
                        "python loop (100k)", python_rate, target=f">= {TARGET:,}")
                )  # fmt: skip
                rows.append(row("clearing duckdb, 1M taps, per CPU second", "taps/s", n / cpu))
        rows.append(
            row("cost ratio 1M/100k (linear = 1)", "x", cost[SIZES[-1]] / cost[SIZES[0]],
                target="~1")
        )  # fmt: skip
        try:
            n, seconds, cpu = _spark(fleets[SIZES[-1]], base / "out-spark")
            _say(f"spark {n:,}: {seconds:.1f} s, CPU {cpu:.1f} s")
            rows.append(row("clearing spark local[2], 1M taps", "taps/s", n / seconds,
                            "python loop (100k)", python_rate))  # fmt: skip
            rows.append(row("clearing spark local[2], 1M taps, CPU (JVM + workers)", "µs/tap",
                            cpu / n * 1e6))  # fmt: skip
        except Exception as exc:  # no Java: say so, keep the other rows
            rows.append({"name": f"clearing spark local[2]: not run ({type(exc).__name__})",
                         "unit": "", "value": None})  # fmt: skip
        rows.append(row("machine load average (1 min, 2 cores)", "", os.getloadavg()[0]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows
