"""Spark and DuckDB clear the same fleet day to byte-identical files.

One small day on ``local[1]`` (a JVM start costs most of this test); the 1M-row runs
are in ``make bench`` only. Java comes from Debian (scripts/debian-packages.tsv).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from setup_table import require_program

from sscard.clearing.keys import IssuerKeys
from sscard.clearing.run import clear
from sscard.simulators.fleet import FaultRates, FleetSpec, generate

pytest.importorskip("pyspark", reason="SPARK MISSING: pip install -e '.[dev]' (sscard[spark])")


def _files(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_spark_and_duckdb_agree_byte_for_byte(tmp_path: Path):
    require_program("java")
    fleet = tmp_path / "fleet"
    faults = FaultRates(duplicate_batches=0.05, lost_batches=0.05, corrupted_tacs=0.005,
                        forged_copies=0.005, conflicting_copies=0.005, grey=0.1)  # fmt: skip
    generate(FleetSpec(validators=60, cards=400, days=1, taps_per_day=1000, faults=faults), fleet)
    keys = IssuerKeys.load(fleet / "issuer-keys.json")
    clear(fleet / "uploads", keys, tmp_path / "duckdb", engine="duckdb")
    messages: list[str] = []
    clear(
        fleet / "uploads", keys, tmp_path / "spark", engine="spark", master="local[1]",
        progress=messages.append,
    )  # fmt: skip
    assert _files(tmp_path / "spark") == _files(tmp_path / "duckdb")
    truth = pq.read_table(fleet / "truth.parquet").to_pylist()
    rows = pq.read_table(tmp_path / "spark" / "rejected.parquet").to_pylist()
    assert {r["reason"] for r in rows} >= {"01", "03", "13"}  # not vacuous: faults were there
    assert sum(1 for t in truth if t["expected_reason"] not in ("10", "11")) == len(rows)
    assert any("verified" in m for m in messages)
