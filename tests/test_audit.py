"""Privacy audit log (regulation Art. 18): masks only, retention, query."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sscard.services.audit import AuditError, AuditLog, mask_card_id
from sscard.simulators.profile import new_card

T0 = 1_800_000_000.0
DAY = 86400.0
NAME = "张小三"
SSN = "340104199001011234"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def log(tmp_path: Path, clock: Clock) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.sqlite3", retention_days=30, clock=clock) as audit:
        yield audit


def test_record_is_masked(log: AuditLog) -> None:
    rec = log.record(
        terminal_id="hotel-desk-1",
        scenario="hotel",
        result="accepted",
        reasons=["internal_auth_ok", "not_lost"],
        name=NAME,
        ssn=SSN,
        card_id_code=bytes.fromhex("340100D156000005011BA293AA4B9E55"),
    )
    assert rec.subject_name == "张*三"
    assert rec.subject_ssn == "3401**********1234"
    assert rec.subject_card == "340100**********************9E55"
    assert rec.id > 0 and rec.at == T0
    (stored,) = log.query()
    assert stored == rec
    d = stored.to_dict()
    assert d["time"] == "2027-01-15T08:00:00+00:00" and d["reasons"] == [
        "internal_auth_ok",
        "not_lost",
    ]


def test_query_filters(log: AuditLog, clock: Clock) -> None:
    for i, (terminal, scenario) in enumerate([("t1", "hotel"), ("t2", "gate"), ("t1", "gate")]):
        clock.now = T0 + i * 60
        log.record(terminal_id=terminal, scenario=scenario, result="accepted")
    assert [r.at for r in log.query()] == [T0, T0 + 60, T0 + 120]
    assert len(log.query(since=T0 + 60)) == 2
    assert len(log.query(since=datetime.fromtimestamp(T0 + 60, UTC))) == 2
    assert len(log.query(since=datetime.fromtimestamp(T0 + 61, UTC).replace(tzinfo=None))) == 1
    assert len(log.query(until=T0 + 60)) == 1
    assert [r.scenario for r in log.query(terminal_id="t1")] == ["hotel", "gate"]
    assert [r.terminal_id for r in log.query(scenario="gate")] == ["t2", "t1"]
    assert len(log.query(limit=1)) == 1


def test_retention_on_write_and_purge(tmp_path: Path, clock: Clock) -> None:
    with AuditLog(tmp_path / "a.sqlite3", retention_days=30, clock=clock) as audit:
        audit.record(terminal_id="t", scenario="gate", result="accepted")
        clock.now = T0 + 10 * DAY
        audit.record(terminal_id="t", scenario="gate", result="accepted")
        clock.now = T0 + 30 * DAY + 1  # the first row is now older than 30 days
        audit.record(terminal_id="t", scenario="gate", result="rejected")
        assert [r.result for r in audit.query()] == ["accepted", "rejected"]
        assert audit.purge(now=T0 + 41 * DAY) == 1
        assert [r.result for r in audit.query()] == ["rejected"]
        clock.now = T0 + 100 * DAY
        assert audit.purge() == 1 and audit.query() == []
    with AuditLog(tmp_path / "b.sqlite3", retention_days=None, clock=clock) as keep_all:
        keep_all.record(terminal_id="t", scenario="gate", result="accepted")
        assert keep_all.purge(now=T0 + 10_000 * DAY) == 0 and len(keep_all.query()) == 1
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "c.sqlite3", retention_days=0)


def test_retention_delete_runs_at_most_once_a_minute_and_at_start_up(
    tmp_path: Path, clock: Clock
) -> None:
    """A busy writer (``sscard serve``) runs the retention DELETE once per interval, not
    per row: a row outlives its retention by at most ``purge_interval_s``; reopening
    the log trims it at once."""
    deletes: list[str] = []
    with AuditLog(tmp_path / "a.sqlite3", retention_days=1, clock=clock) as audit:
        audit._db.set_trace_callback(
            lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None
        )
        audit.record(terminal_id="t", scenario="gate", result="old")  # at T0
        clock.now = T0 + DAY - 30
        for _ in range(100):  # one DELETE for all of these (the last ran at T0)
            audit.record(terminal_id="t", scenario="gate", result="fresh")
        assert len(deletes) == 1
        clock.now = T0 + DAY + 1  # "old" has expired, but the last DELETE was 31 s ago
        audit.record(terminal_id="t", scenario="gate", result="fresh")
        assert len(deletes) == 1 and audit.query()[0].result == "old"
        clock.now = T0 + DAY + 30  # 60 s after the last DELETE: it runs, "old" goes
        audit.record(terminal_id="t", scenario="gate", result="fresh")
        assert len(deletes) == 2 and {r.result for r in audit.query()} == {"fresh"}
        clock.now = T0  # the clock went back: the next write purges again
        audit.record(terminal_id="t", scenario="gate", result="fresh")
        assert len(deletes) == 3
    clock.now = T0 + 3 * DAY
    with AuditLog(tmp_path / "a.sqlite3", retention_days=1, clock=clock) as reopened:
        assert reopened.query() == []  # purged on opening, before any write
    with AuditLog(tmp_path / "b.sqlite3", clock=clock, purge_interval_s=0) as every:
        every._db.set_trace_callback(
            lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None
        )
        for _ in range(3):
            every.record(terminal_id="t", scenario="gate", result="ok")
        assert len(deletes) == 6  # interval 0: the old behaviour, a DELETE per row
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "c.sqlite3", purge_interval_s=-1)


@pytest.mark.parametrize(
    "field",
    [
        {"terminal_id": "前台"},
        {"terminal_id": ""},
        {"scenario": "hotel check"},
        {"result": "x" * 65},
        {"reasons": ["ok", "张三"]},
        {"terminal_id": SSN},  # an ID number is never a terminal ID
        {"reasons": ["ssn:" + SSN]},
    ],
)
def test_codes_reject_free_text(log: AuditLog, field: dict[str, object]) -> None:
    args: dict[str, object] = {"terminal_id": "t1", "scenario": "hotel", "result": "accepted"}
    args.update(field)
    with pytest.raises(AuditError) as info:
        log.record(**args)  # type: ignore[arg-type]
    assert SSN not in info.value.bilingual() and "张三" not in info.value.bilingual()
    assert log.query() == []


def test_no_full_personal_data_in_db_files_or_logs(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "audit.sqlite3"
    people = [(NAME, SSN)]
    for i, province in enumerate(["shanghai", "jiangsu", "zhejiang", "anhui"]):
        ef06 = new_card(province, seed=100 + i).ssse.ef06
        people.append((ef06.full_name, ef06.ssn))
    audit = AuditLog(path, clock=clock)
    for name, ssn in people:
        audit.record(terminal_id="gate-7", scenario="gate", result="accepted", name=name, ssn=ssn)
    rows = audit.query()
    assert len(rows) == len(people)
    files = sorted(tmp_path.iterdir())
    assert any(p.name.endswith("-wal") for p in files)  # scanned while the WAL is live, too
    blobs = [p.read_bytes() for p in files]
    audit.close()
    blobs += [p.read_bytes() for p in tmp_path.iterdir()]
    blobs.append(caplog.text.encode())
    blobs.append(repr(rows).encode() + str([r.to_dict() for r in rows]).encode())
    assert "gate" in caplog.text  # the logger did run
    for name, ssn in people:
        needles = [ssn.encode(), name.encode("utf-8"), name.encode("utf-16-le")]
        needles.append(name.encode("gbk"))
        for blob in blobs:
            for needle in needles:
                assert needle not in blob


def test_mask_card_id_accepts_hex() -> None:
    assert mask_card_id("330100D156000005011BA293AA4B9E55") == mask_card_id(
        bytes.fromhex("330100D156000005011BA293AA4B9E55")
    )


def test_unopenable_log_is_typed_error(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "dir")
