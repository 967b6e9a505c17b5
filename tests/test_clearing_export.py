"""The journal's clearing export and its way through clearing.

* Parquet: the typed upload schema (docs/clearing.md), one row per completed tap;
* CSV: flat cells (no JSON in ``fare``), every time ISO 8601 with ``+08:00``;
* validators tapped through a real pcscd (cards on vpcd slot 0, the PSAM on slot 1),
  torn and recovered taps included: their Parquet exports clear with zero rejects.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pcsc_harness import VirtualReader
from test_transit_support import TID, Rig, bus, metro

from sscard.applets.transit import Psam, Refusal, TapAccepted, TapRefused
from sscard.clearing.schema import input_schema
from sscard.services.journal import TapState
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection
from sscard.terminals.pcsc import PcscTransport, wait_for_card

BEIJING = timezone(timedelta(hours=8))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sscard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _test_keys(tmp_path: Path) -> Path:
    path = tmp_path / "test-keys.json"
    path.write_text(resources.files("sscard").joinpath("data/test-keys.json").read_text())
    return path


def _export_and_clear(db: Path, tmp_path: Path) -> tuple[dict, Path]:
    uploads = tmp_path / "uploads"
    uploads.mkdir(exist_ok=True)
    r = _cli("journal", "export", "--db", str(db), "--format", "parquet", "-o",
             str(uploads / "batch.parquet"), "--acquirer", "02022000FFFFFFFF",
             "--operator", "0002", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cleared"
    c = _cli("clearing", "run", "--input", str(uploads), "--keys", str(_test_keys(tmp_path)),
             "--out", str(out), "--json", "--quiet")  # fmt: skip
    assert c.returncode == 0, c.stderr
    return json.loads(c.stdout), out


def test_parquet_export_is_typed_and_csv_is_flat_with_one_time_convention(tmp_path: Path):
    rig = Rig(tmp_path)
    _card, conn = rig.card(rig.profile("zhejiang", seed=3, balance=5_000))
    validator = rig.validator(bus())
    assert isinstance(validator.tap(conn), TapAccepted)
    rig.advance(30)
    assert isinstance(validator.tap(conn), TapAccepted)
    rows = rig.rows(TapState.COMPLETED)

    out = tmp_path / "b.parquet"
    bad = _cli("journal", "export", "--db", str(rig.journal.path), "--format", "parquet",
               "-o", str(out))  # fmt: skip
    assert bad.returncode == 2 and "--acquirer" in bad.stderr and not out.exists()
    r = _cli("journal", "export", "--db", str(rig.journal.path), "--format", "parquet", "-o",
             str(out), "--acquirer", "01012000ffffffff", "--operator", "0001")  # fmt: skip
    assert r.returncode == 0, r.stderr
    table = pq.read_table(out)
    assert table.schema.equals(input_schema(), check_metadata=False)
    got = table.to_pylist()
    assert [g["tap_id"] for g in got] == [row.id for row in rows]
    first, tap = got[0], rows[0]
    assert first["line_no"] == 1 and first["acquirer_id"] == "01012000FFFFFFFF"
    assert (
        first["asn"] == tap.asn.hex().upper() and first["issuer_id"] == tap.issuer_id.hex().upper()
    )
    assert first["city_code"] == tap.issuer_id[2:4].hex().upper()
    assert (first["card_ctr"], first["amount"], first["tx_type"], first["term_seq"]) == (
        tap.card_counter, tap.amount, tap.txn_type, tap.terminal_seq,
    )  # fmt: skip
    assert first["term_id"] == TID.hex().upper() and first["tac"] == tap.tac.hex().upper()
    assert first["tx_time"] == tap.txn_datetime.strftime("%Y%m%d%H%M%S")  # Beijing digits
    assert first["grey"] is False and first["journal_state"] == "completed"

    csv_path = tmp_path / "b.csv"
    assert (
        _cli("journal", "export", "--db", str(rig.journal.path), "-o", str(csv_path)).returncode
        == 0
    )
    with open(csv_path, encoding="utf-8", newline="") as f:
        lines = list(csv.DictReader(f))
    assert "fare" not in lines[0] and lines[0]["fare_mode"] == "flat"
    assert not any(v.startswith(("{", "[")) for line in lines for v in line.values())
    for line in lines:
        txn = datetime.fromisoformat(line["txn_datetime"])
        created = datetime.fromisoformat(line["created_at"])
        assert txn.utcoffset() == created.utcoffset() == timedelta(hours=8)
    assert (
        datetime.fromisoformat(lines[0]["txn_datetime"]).replace(tzinfo=None)
        == rows[0].txn_datetime
    )

    summary, _cleared = _export_and_clear(rig.journal.path, tmp_path)
    assert summary["totals"]["paid"] == len(rows) and summary["totals"]["refused"] == 0


@pytest.mark.pcsc
def test_validators_tapped_through_pcscd_clear_with_zero_rejects(
    tmp_path: Path, vreader: VirtualReader, vreader2: VirtualReader
):
    rig = Rig(tmp_path)
    vreader2.insert(psam_card(new_psam(TID, keys=rig.keys)))
    psam_conn = Connection(PcscTransport(vreader2.name)).connect()
    rig.psam = Psam(psam_conn).open()
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 16, 17))
    for seed, province in ((1, "jiangsu"), (2, "anhui")):
        card = build_card(rig.profile(province, seed=seed, balance=4_000), rig.keys)
        vreader.insert(card)
        conn = Connection(PcscTransport(vreader.name)).connect()
        assert isinstance(entry.tap(conn), TapAccepted)
        rig.advance(30)
        card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)  # torn exit
        torn = exit_.tap(conn)
        assert isinstance(torn, TapRefused) and torn.reason is Refusal.DEBIT_UNCERTAIN
        assert wait_for_card(vreader.name, present=True, timeout=5)
        conn.reconnect()
        again = exit_.tap(conn)  # recovered by 805A
        assert isinstance(again, TapAccepted) and again.recovered
        conn.close()
        vreader.eject()
        rig.advance(10)
    psam_conn.close()
    completed = rig.rows(TapState.COMPLETED)
    assert len(completed) == 4

    summary, out = _export_and_clear(rig.journal.path, tmp_path)
    assert summary["totals"]["refused"] == 0 and summary["totals"]["duplicates"] == 0
    assert summary["totals"]["paid"] == 4
    assert summary["totals"]["paid_fen"] == sum(r.amount for r in completed)
    assert pq.read_table(out / "rejected.parquet").num_rows == 0
    with open(next(out.glob("settle_*.csv")), encoding="utf-8") as f:
        settle = list(csv.DictReader(f))
    assert sum(int(r["gross_fen"]) for r in settle) == sum(r.amount for r in completed)
    assert {r["issuer_city"] for r in settle} == {r.issuer_id[2:4].hex().upper() for r in completed}
