"""Run all benchmarks, print a table, write JSON to benchmarks/results/."""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import benchmarks

RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return "" if value is None else str(value)


def main(argv: list[str]) -> int:
    only = set(argv)
    rows: list[dict[str, Any]] = []
    failures = 0
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        short = info.name.removeprefix("bench_")
        if only and short not in only:
            continue
        print(f"# {short} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{info.name}")
            for row in module.run():
                rows.append({"suite": short, **row})
        except Exception:  # one broken suite must not hide the others
            failures += 1
            traceback.print_exc()
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
            },
            indent=2,
        )
    )
    print(f"\nwritten: {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
