"""Small timing helpers shared by the benchmark suites."""

from __future__ import annotations

import contextlib
import os
import statistics
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
    ratio: float | None = None,
) -> dict[str, Any]:
    """One result row; ratio = value / baseline_value unless given (a paired ratio:
    the median of per-iteration ratios, see ``bench_serve.Samples.over``)."""
    if ratio is None:
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


@contextlib.contextmanager
def cpus_awake() -> Iterator[bool]:
    """Hold the kernel's PM QoS request "no CPU idle state with an exit latency above
    0 µs" (``/dev/cpu_dma_latency``, what cyclictest and other latency benchmarks hold)
    for the block; yields whether it is held (root only; without it nothing changes).

    Why: on this project's VMs an idle vCPU takes ~1 ms to wake (one APDU through pcscd
    and vpcd: 1.11 ms median with the CPUs idle, 0.17 ms held, measured 2026-12-02), and
    every thread hop of a request may pay it, so a latency ratio would measure how deep
    the CPUs sleep between hops, not the code. Held, the card path is faster and a
    ratio of HTTP to in-process is the harder one to meet, not the easier."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError:
        yield False
        return
    try:
        os.write(fd, struct.pack("i", 0))
        yield True
    finally:
        os.close(fd)  # the kernel drops the request with the descriptor


class Steal:
    """The share of CPU time the hypervisor gave to other guests (``/proc/stat``'s steal
    column) between making this object and ``share()``: a benchmark taken while a neighbour
    had the host's cores says so next to its numbers. None where the kernel does not
    count it."""

    def __init__(self) -> None:
        self.start_ticks = self._ticks()

    @staticmethod
    def _ticks() -> tuple[int, int] | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        return (ticks[7], sum(ticks)) if len(ticks) == 8 else None

    def share(self) -> float | None:
        end = self._ticks()
        if end is None or self.start_ticks is None or end[1] == self.start_ticks[1]:
            return None
        return (end[0] - self.start_ticks[0]) / (end[1] - self.start_ticks[1])
