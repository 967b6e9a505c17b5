"""Validator back ends: journal durable writes, blacklist lookups with 1 M entries.

- Journal: begin + complete pairs (two fsynced commits, synchronous=FULL) per
  second, against the same calls on the same code with synchronous=OFF, i.e.
  what durability costs.
- Blacklist: lookups per second in a 1,000,000-entry list (sorted buffer +
  binary search, sscard.services.lists) against a linear scan of a 10,000-entry
  Python list (the naive approach, already 100 times smaller); plus load time
  and memory against a frozenset of bytes, the alternative that was rejected.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.timing import rate, row
from sscard.services.journal import Journal, PendingTap
from sscard.services.lists import Blacklist

N_ENTRIES = 1_000_000
TAC, MAC2 = bytes.fromhex("8B2A4DD1"), bytes.fromhex("0F6C1C0B")


def _tap(seq: int) -> PendingTap:
    return PendingTap(
        terminal_id="BENCH",
        psam_terminal_id=bytes.fromhex("300089000340"),
        terminal_seq=seq,
        asn=bytes.fromhex("03105170010170907984"),
        issuer_id=bytes.fromhex("01011000FFFFFFFF"),
        txn_type=0x09,
        amount=300,
        balance_before=5000,
        card_counter=seq % 0x10000,
        txn_datetime=datetime(2025, 3, 1, 9, 0, 0),
        fare={"rule": "flat"},
    )


def _journal_pairs_per_second(directory: Path, synchronous: str) -> float:
    with Journal(directory / f"bench-{synchronous}.db") as journal:
        # Same code path; only the fsync policy differs (the baseline is not durable).
        journal._connection().execute(f"PRAGMA synchronous={synchronous}")
        seq = iter(range(1 << 30))

        def pair() -> None:
            tap_id = journal.begin(_tap(next(seq)))
            journal.complete(tap_id, TAC, MAC2, 4700)

        return rate(pair, seconds=1.0, batch=10)


def _journal_rows() -> list[dict[str, Any]]:
    # Next to the repository (a real disk), not a tmpfs where fsync would be free.
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        durable = _journal_pairs_per_second(Path(tmp), "FULL")
        volatile = _journal_pairs_per_second(Path(tmp), "OFF")
    return [
        row(
            "journal durable tap writes (begin+complete, synchronous=FULL)",
            "taps/s",
            durable,
            "same with synchronous=OFF",
            volatile,
            target="informative; >= 10 taps/s leaves a 400 ms tap unaffected",
        )
    ]


def _blacklist_rows() -> list[dict[str, Any]]:
    rnd = random.Random(6)
    keys = [rnd.randbytes(10) for _ in range(N_ENTRIES)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blacklist.txt"
        with open(path, "w", encoding="ascii") as f:
            f.write("# sscard-blacklist/1 version=1 issued=2025-03-01\n")
            f.writelines(k.hex().upper() + "\n" for k in keys)
        t0 = time.perf_counter()
        blacklist = Blacklist.load(path)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(path, encoding="ascii") as f:
            next(f)
            as_set = frozenset(bytes.fromhex(line.split()[0]) for line in f)
        set_load_s = time.perf_counter() - t0

    probes = keys[:500] + [rnd.randbytes(10) for _ in range(500)]  # half hits, half misses
    cycle = iter(range(1 << 62))

    def sscard_lookup() -> None:
        blacklist.check_asn(probes[next(cycle) % 1000])

    small = keys[:10_000]

    def linear_scan() -> None:
        _ = probes[next(cycle) % 1000] in small

    ours_mem = sum(sys.getsizeof(t._buf) for t in blacklist._tables.values())
    set_mem = sys.getsizeof(as_set) + sum(sys.getsizeof(k) for k in as_set)
    return [
        row(
            "blacklist lookups, 1,000,000 entries",
            "lookups/s",
            rate(sscard_lookup, seconds=0.5),
            "list linear scan, 10,000 entries",
            rate(linear_scan, seconds=0.5, batch=10),
            target="informative; 1 lookup per tap",
        ),
        row(
            "blacklist load, 1,000,000 entries (parse + sort)",
            "s",
            load_s,
            "frozenset[bytes] build",
            set_load_s,
        ),
        row(
            "blacklist memory, 1,000,000 entries",
            "MB",
            ours_mem / 1e6,
            "frozenset[bytes]",
            set_mem / 1e6,
        ),
    ]


def run() -> list[dict[str, Any]]:
    return _journal_rows() + _blacklist_rows()
