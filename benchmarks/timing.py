"""Small timing helpers shared by the benchmark suites."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def rate(fn: Callable[[], Any], seconds: float = 0.5, batch: int = 100) -> float:
    """Calls per second of ``fn``, measured for about ``seconds`` after a warm-up."""
    for _ in range(batch):
        fn()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def samples_us(fn: Callable[[], Any], count: int = 1000, warmup: int = 50) -> list[float]:
    """Per-call durations in microseconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(
    name: str,
    unit: str,
    value: float,
    baseline_name: str | None = None,
    baseline_value: float | None = None,
    target: str = "",
) -> dict[str, Any]:
    """One result row; ratio = value / baseline_value."""
    ratio = value / baseline_value if baseline_value else None
    return {
        "name": name,
        "unit": unit,
        "value": value,
        "baseline_name": baseline_name,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": target,
    }
