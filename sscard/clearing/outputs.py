"""The clearing run's files, written by one set of Python writers whatever the engine.

Why shared writers: engines hand over Arrow tables (:class:`EngineOutput`); the
bytes on disk come from here only, so DuckDB and Spark runs of the same input give
byte-identical files (a test compares them). Every file is written into a staging
directory inside ``--out`` and renamed into place at the end (``os.replace``), so a
failed run leaves the previous outputs or none, never half a file; files of an
earlier run that this run does not produce (another clearing day) are removed.

Files (docs/clearing.md):

* ``accepted.parquet``, ``rejected.parquet``: the input rows plus ``reason``,
  ``settle_date``, ``grey_rule``;
* ``settle_<date>.csv``: netting per clearing day, issuing city and acquirer
  (profile "Netting output"), ``fee_fen = (gross_fen*fee_bp + 5000)//10000``,
  ``net_fen = gross_fen - fee_fen``;
* ``positions_<date>.csv``: each party's receivable, payable and net (issuing cities
  pay the gross, acquirers receive the net, the clearing house the fee; nets sum to 0);
* ``gaps.csv``; ``report.html`` (one page for people); ``summary.json``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sscard.clearing.schema import PAID
from sscard.files import open_private

SETTLE_FIELDS = (
    "clear_date",
    "issuer_city",
    "acquirer_id",
    "n_paid",
    "gross_fen",
    "n_refused",
    "refused_fen",
    "fee_bp",
    "fee_fen",
    "net_fen",
)
POSITION_FIELDS = ("party", "receivable_fen", "payable_fen", "net_fen")
GAP_FIELDS = ("kind", "gap_key", "first_missing", "last_missing", "count")
#: Names this module writes; others in --out are left alone.
OWNED = ("accepted.parquet", "rejected.parquet", "gaps.csv", "report.html", "summary.json")
OWNED_PREFIXES = ("settle_", "positions_")


def _csv(rows: Iterable[Iterable[Any]], header: Iterable[str]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def fee(gross_fen: int, fee_bp: int) -> int:
    """Fee in fen, half up: the profile's ``(gross_fen*fee_bp + 5000)//10000``."""
    return (gross_fen * fee_bp + 5000) // 10000


def settlement_rows(settlement: pa.Table, fee_bp: int) -> dict[str, list[dict[str, Any]]]:
    """Netting rows per clearing day (ISO date), with fee and net."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in settlement.to_pylist():
        f = fee(r["gross_fen"], fee_bp)
        by_day[r["clear_date"].isoformat()].append(
            {**r, "clear_date": r["clear_date"].isoformat(), "fee_bp": fee_bp, "fee_fen": f,
             "net_fen": r["gross_fen"] - f}
        )  # fmt: skip
    return dict(sorted(by_day.items()))


def positions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each party's position for one day; the nets sum to zero."""
    rec: dict[str, int] = defaultdict(int)
    pay: dict[str, int] = defaultdict(int)
    for r in rows:
        pay[f"issuer:{r['issuer_city']}"] += r["gross_fen"]
        rec[f"acquirer:{r['acquirer_id']}"] += r["net_fen"]
        rec["clearing"] += r["fee_fen"]
    parties = sorted(set(rec) | set(pay))
    out: list[dict[str, Any]] = [
        {"party": p, "receivable_fen": rec[p], "payable_fen": pay[p], "net_fen": rec[p] - pay[p]}
        for p in parties
    ]
    assert sum(p["net_fen"] for p in out) == 0  # gross = net + fee, row by row
    return out


def _parquet(table: pa.Table) -> bytes:
    """Parquet bytes that depend on the rows only: the writer splits pages where its
    input's chunks end, and engines hand over differently chunked tables."""
    sink = io.BytesIO()
    pq.write_table(table.combine_chunks(), sink, compression="zstd")
    return sink.getvalue()


def render(
    rows: pa.Table, settlement: pa.Table, gaps: pa.Table, fee_bp: int, summary: dict[str, Any]
) -> dict[str, bytes]:
    """Every output file's name and bytes (pure: same tables, same bytes)."""
    from sscard.clearing.report import render_html

    paid = pc.is_in(rows.column("reason"), pa.array(sorted(PAID)))
    files: dict[str, bytes] = {
        "accepted.parquet": _parquet(rows.filter(paid)),
        "rejected.parquet": _parquet(rows.filter(pc.invert(paid))),
    }
    days = settlement_rows(settlement, fee_bp)
    all_positions: dict[str, list[dict[str, Any]]] = {}
    for day, day_rows in days.items():
        files[f"settle_{day}.csv"] = _csv(
            ([r[f] for f in SETTLE_FIELDS] for r in day_rows), SETTLE_FIELDS
        )
        all_positions[day] = positions(day_rows)
        files[f"positions_{day}.csv"] = _csv(
            ([p[f] for f in POSITION_FIELDS] for p in all_positions[day]), POSITION_FIELDS
        )
    gap_rows = [
        [g["kind"], g["gap_key"], g["first_missing"], g["last_missing"],
         g["last_missing"] - g["first_missing"] + 1]
        for g in gaps.to_pylist()
    ]  # fmt: skip
    files["gaps.csv"] = _csv(gap_rows, GAP_FIELDS)
    files["report.html"] = render_html(summary, days, all_positions, gap_rows).encode("utf-8")
    summary = {
        **summary,
        "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
    }
    files["summary.json"] = (json.dumps(summary, ensure_ascii=False, indent=2) + "\n").encode()
    return files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(files: dict[str, bytes], out: Path) -> None:
    """Write every file to a staging directory in ``out``, fsync, rename each into place."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".clearing-", dir=out))
    try:
        for name, data in files.items():
            # card numbers and amounts: private, like every file sscard creates
            with open_private(staging / name, "wb", encoding=None) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        # summary.json last: a reader that sees it sees a complete run
        for name in sorted(files, key=lambda n: n == "summary.json"):
            os.replace(staging / name, out / name)
        for old in out.iterdir():
            stale = old.name in OWNED or old.name.startswith(OWNED_PREFIXES)
            if stale and old.name not in files and old.is_file():
                old.unlink()
        _fsync_dir(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
