"""The validator journal: states, durability, clearing export/ack, faults.

Real SQLite files in tmp_path; pytest-mock only to inject disk failures.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscard.cli.journal import command as journal_cli
from sscard.services.journal import (
    APPLICATION_ID,
    CLEARING_FIELDS,
    SCHEMA_VERSION,
    Journal,
    JournalInputError,
    JournalOpenError,
    JournalStateError,
    JournalWriteError,
    PendingTap,
    TapState,
    UnknownBatch,
)

ASN = bytes.fromhex("03105170010170907984")  # transit-purse.md §1.2 sample
ISSUER = bytes.fromhex("01011000FFFFFFFF")
TAC = bytes.fromhex("8B2A4DD1")
MAC2 = bytes.fromhex("0F6C1C0B")


def tap(seq: int = 1, *, asn: bytes = ASN, amount: int = 300, counter: int = 5) -> PendingTap:
    return PendingTap(
        terminal_id="SH-L2-017",
        psam_terminal_id=bytes.fromhex("300089000340"),
        terminal_seq=seq,
        asn=asn,
        issuer_id=ISSUER,
        txn_type=0x09,
        amount=amount,
        balance_before=5000,
        card_counter=counter,
        txn_datetime=datetime(2025, 3, 1, 9, 0, seq % 60),
        line="02",
        station="0113",
        fare={"rule": "metro-exit", "base": 300, "discount": 0},
    )


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "journal.db") as j:
        yield j


def completed(j: Journal, seq: int, **kw: object) -> int:
    tap_id = j.begin(tap(seq, **kw))  # type: ignore[arg-type]
    j.complete(tap_id, TAC, MAC2, 4700)
    return tap_id


# --------------------------------------------------------------------------- opening


def test_pragmas_and_schema_version(tmp_path: Path):
    path = tmp_path / "j.db"
    Journal(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    raw.close()
    with Journal(path) as j:  # reopening does not migrate again
        assert j._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert j.stats().schema_version == SCHEMA_VERSION


def test_refuses_newer_schema_and_foreign_files(tmp_path: Path):
    newer = tmp_path / "newer.db"
    Journal(newer).close()
    raw = sqlite3.connect(newer)
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(JournalOpenError, match="newer"):
        Journal(newer)

    foreign = tmp_path / "other.db"
    raw = sqlite3.connect(foreign)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    with pytest.raises(JournalOpenError, match="not an sscard journal"):
        Journal(foreign)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(JournalOpenError) as err:
        Journal(garbage)
    assert "SQLite" in err.value.message_zh


# --------------------------------------------------------------------------- lifecycle


def test_durable_across_reopen(tmp_path: Path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        done = completed(j, 1)
        pending = j.begin(tap(2))
    with Journal(path) as j:
        rec = j.get(done)
        assert rec.state is TapState.COMPLETED
        assert (rec.tac, rec.mac2, rec.balance_after) == (TAC, MAC2, 4700)
        assert rec.txn_datetime == datetime(2025, 3, 1, 9, 0, 1)
        assert rec.fare == {"rule": "metro-exit", "base": 300, "discount": 0}
        assert j.get(pending).state is TapState.PENDING
        assert j.stats().by_state == {
            "pending": 1,
            "completed": 1,
            "failed": 0,
            "unknown": 0,
            "uncertain": 0,
        }


def test_tearing_context_by_card(journal: Journal):
    """§5.7: the unfinished debit of the card is found again by its ASN."""
    other = bytes.fromhex("03105170010170900001")
    assert journal.pending_for_card(ASN) is None
    completed(journal, 1)
    first = journal.begin(tap(2, counter=6))
    journal.mark_unknown(first)
    journal.mark_unknown(first)  # idempotent
    journal.begin(tap(3, asn=other))
    found = journal.pending_for_card(ASN.hex())  # str accepted too
    assert found is not None and found.id == first and found.state is TapState.UNKNOWN
    assert (found.card_counter, found.amount, found.terminal_seq, found.txn_type) == (6, 300, 2, 9)
    # Recovery proved the debit (805A with N + 1 answered MAC2 || TAC): complete it.
    journal.complete(first, TAC, MAC2, 4700)
    assert journal.pending_for_card(ASN) is None
    last = journal.last_trip(ASN)
    assert last is not None and last.id == first


def test_state_transitions(journal: Journal):
    a = completed(journal, 1)
    with pytest.raises(JournalStateError):
        journal.complete(a, TAC, MAC2, 4700)  # never completed twice
    with pytest.raises(JournalStateError):
        journal.fail(a, "SW 9401")
    with pytest.raises(JournalStateError):
        journal.mark_unknown(a)
    with pytest.raises(JournalStateError, match="no tap 999"):
        journal.complete(999, TAC, MAC2, 0)
    b = journal.begin(tap(2))
    journal.fail(b, "SW 9401")
    assert journal.get(b).fail_reason == "SW 9401"
    with pytest.raises(JournalStateError):
        journal.complete(b, TAC, MAC2, 4700)  # proven not debited: stays failed
    c = journal.begin(tap(3))
    assert journal.mark_pending_unknown() == 1
    assert [r.id for r in journal.unfinished()] == [c]
    assert journal.get(c).state is TapState.UNKNOWN


@pytest.mark.parametrize(
    "change",
    [
        {"asn": b"\x01" * 9},
        {"psam_terminal_id": b"\x00" * 5},
        {"txn_type": 0x02},
        {"amount": -1},
        {"card_counter": 0x10000},
    ],
)
def test_bad_input_is_typed(change: dict[str, object]):
    fields = {**tap().__dict__, **change}
    with pytest.raises(JournalInputError):
        PendingTap(**fields)  # type: ignore[arg-type]


def test_bad_complete_arguments(journal: Journal):
    tap_id = journal.begin(tap())
    with pytest.raises(JournalInputError):
        journal.complete(tap_id, b"\x00" * 3, MAC2, 0)
    with pytest.raises(JournalInputError):
        journal.fail(tap_id, "")
    with pytest.raises(JournalInputError):
        journal.pending_for_card("XYZ")
    assert journal.get(tap_id).state is TapState.PENDING


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.integers(0, 0xFFFFFFFF),
    amount=st.integers(0, 0xFFFFFFFF),
    counter=st.integers(0, 0xFFFF),
    asn=st.binary(min_size=10, max_size=10),
    station=st.text(max_size=12),
    fare=st.dictionaries(st.text(max_size=5), st.integers(-(2**40), 2**40), max_size=3),
)
def test_round_trip(journal: Journal, seq, amount, counter, asn, station, fare):
    sent = PendingTap(
        **{**tap().__dict__, "terminal_seq": seq, "amount": amount, "card_counter": counter},
    )
    sent = PendingTap(**{**sent.__dict__, "asn": asn, "station": station, "fare": fare})
    got = journal.get(journal.begin(sent))
    assert PendingTap(**{k: getattr(got, k) for k in sent.__dict__}) == sent


def test_threads_share_one_journal(journal: Journal):
    errors: list[BaseException] = []

    def worker(base: int) -> None:
        try:
            for i in range(25):
                completed(journal, base + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert journal.stats().by_state["completed"] == 100


# --------------------------------------------------------------------------- clearing


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_ack_round_trip(journal: Journal, tmp_path: Path):
    ids = [completed(journal, i) for i in range(1, 4)]
    torn = journal.begin(tap(10))
    journal.mark_unknown(torn)
    journal.begin(tap(11))  # pending
    failed = journal.begin(tap(12))
    journal.fail(failed, "SW 9401")

    first = journal.export_unsent("jsonl", tmp_path / "a.jsonl")
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert [r["id"] for r in rows] == ids  # only completed rows
    assert rows[0]["batch_id"] == first and rows[0]["tac"] == TAC.hex().upper()
    assert rows[0]["txn_type"] == "09" and rows[0]["asn"] == ASN.hex().upper()
    assert list(rows[0]) == list(CLEARING_FIELDS)

    # No ack (upload not confirmed): the next export carries the same rows again.
    second = journal.export_unsent("csv", tmp_path / "b.csv")
    assert second != first
    with open(tmp_path / "b.csv", newline="", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in csv_rows] == ids
    assert csv_rows[0]["fare_rule"] == "metro-exit"  # flat columns, no JSON in a cell
    assert journal.stats().unsent_completed == 3

    result = journal.ack(second)
    assert (result.rows_marked, result.already_acked) == (3, False)
    again = journal.ack(second)  # idempotent
    assert (again.rows_marked, again.already_acked) == (0, True)
    assert journal.ack(first).rows_marked == 0  # rows already sent by the second batch
    assert journal.get(ids[0]).sent_batch == second

    third = journal.export_unsent("jsonl", tmp_path / "c.jsonl")
    assert read_jsonl(tmp_path / "c.jsonl") == []
    assert journal.batch(third).row_count == 0
    new = completed(journal, 20)
    journal.export_unsent("jsonl", tmp_path / "d.jsonl")
    assert [r["id"] for r in read_jsonl(tmp_path / "d.jsonl")] == [new]
    stats = journal.stats()
    assert (stats.batches, stats.unacked_batches) == (4, 2)

    with pytest.raises(UnknownBatch):
        journal.ack("no-such-batch")
    with pytest.raises(JournalInputError):
        journal.export_unsent("xml", tmp_path / "e.xml")  # type: ignore[arg-type]


def test_batch_records_file_digest(journal: Journal, tmp_path: Path):
    import hashlib

    completed(journal, 1)
    out = tmp_path / "x.csv"
    info = journal.batch(journal.export_unsent("csv", out))
    assert info.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (info.row_count, info.total_amount, info.acked_at) == (1, 300, None)
    assert not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------- faults


def disk_error(mocker):
    """The commit fails as it would on a full or failing disk."""
    return mocker.patch.object(
        Journal, "_commit", side_effect=sqlite3.OperationalError("disk I/O error")
    )


def test_commit_failure_on_begin_records_nothing(journal: Journal, mocker):
    disk_error(mocker)
    with pytest.raises(JournalWriteError) as err:
        journal.begin(tap())
    assert "nothing" in err.value.message_en
    mocker.stopall()
    assert sum(journal.stats().by_state.values()) == 0
    assert journal.begin(tap()) >= 1  # the journal still works afterwards


def test_commit_failure_on_complete_leaves_pending(journal: Journal, mocker):
    tap_id = journal.begin(tap())
    disk_error(mocker)
    with pytest.raises(JournalWriteError):
        journal.complete(tap_id, TAC, MAC2, 4700)
    mocker.stopall()
    rec = journal.get(tap_id)
    assert (rec.state, rec.tac, rec.balance_after) == (TapState.PENDING, None, None)


def test_commit_failure_on_export_and_ack_marks_nothing(journal: Journal, tmp_path: Path, mocker):
    completed(journal, 1)
    disk_error(mocker)
    with pytest.raises(JournalWriteError):
        journal.export_unsent("jsonl", tmp_path / "a.jsonl")
    mocker.stopall()
    assert list(tmp_path.glob("*.jsonl")) == [] and list(tmp_path.glob(".*.tmp")) == []
    assert journal.stats().batches == 0

    batch = journal.export_unsent("jsonl", tmp_path / "a.jsonl")
    disk_error(mocker)
    with pytest.raises(JournalWriteError):
        journal.ack(batch)
    mocker.stopall()
    assert journal.stats().unsent_completed == 1 and journal.batch(batch).acked_at is None
    assert journal.ack(batch).rows_marked == 1


def test_clearing_file_write_failure(journal: Journal, tmp_path: Path, mocker):
    completed(journal, 1)
    mocker.patch("sscard.services.journal.os.fsync", side_effect=OSError(28, "No space left"))
    with pytest.raises(JournalWriteError, match="clearing file"):
        journal.export_unsent("csv", tmp_path / "a.csv")
    mocker.stopall()
    assert not (tmp_path / "a.csv").exists() and list(tmp_path.glob(".*.tmp")) == []
    assert journal.stats().batches == 0


# --------------------------------------------------------------------------- CLI


def test_cli_export_and_ack(tmp_path: Path):
    db = tmp_path / "j.db"
    with Journal(db) as j:
        completed(j, 1)
        completed(j, 2)
    runner = CliRunner()
    out = tmp_path / "clearing.jsonl"
    res = runner.invoke(
        journal_cli, ["export", "--db", str(db), "--format", "jsonl", "-o", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["rows"] == 2 and info["total_amount_fen"] == 600
    assert len(read_jsonl(out)) == 2
    res = runner.invoke(journal_cli, ["ack", "--db", str(db), info["batch_id"]])
    assert res.exit_code == 0 and "2 taps marked sent" in res.output
    res = runner.invoke(journal_cli, ["export", "--db", str(db), "-o", str(tmp_path / "e.csv")])
    assert res.exit_code == 0 and ": 0 taps" in res.output
    res = runner.invoke(journal_cli, ["ack", "--db", str(db), "nope"])
    assert res.exit_code == 2 and "unknown clearing batch" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(journal_cli, ["ack", "--db", str(tmp_path / "missing.db"), "x"])
    assert res.exit_code == 2 and "no journal" in res.output
    assert not (tmp_path / "missing.db").exists()


# --------------------------------------------------------------------------- v2: grey rows


def test_v1_journal_is_migrated_in_place(tmp_path: Path):
    """A journal written before grey rows existed (schema 1) opens with its rows, batches and
    foreign keys intact, and takes the new state and columns."""
    from sscard.services.journal import _SCHEMA_V1

    path = tmp_path / "v1.db"
    stamp = "2025-03-01T01:00:07.000+00:00"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    for statement in _SCHEMA_V1.split(";"):
        if statement.strip():
            raw.execute(statement)
    raw.execute(
        "INSERT INTO taps (created_at, updated_at, terminal_id, psam_terminal_id, terminal_seq,"
        " asn, issuer_id, txn_type, amount, balance_before, balance_after, card_counter,"
        " txn_datetime, line, station, fare_json, state, tac, mac2)"
        " VALUES (?, ?, 'BUS', '300089000340', 7, ?, ?, 9, 300, 5000, 4700, 5,"
        " '20250301090007', '71', '', '{}', 'completed', ?, ?)",
        (
            stamp,
            stamp,
            ASN.hex().upper(),
            ISSUER.hex().upper(),
            TAC.hex().upper(),
            MAC2.hex().upper(),
        ),
    )
    raw.execute("INSERT INTO batches VALUES ('b1', ?, 'csv', 'x.csv', 1, 300, 'h', NULL)", (stamp,))
    raw.execute("INSERT INTO batch_taps VALUES ('b1', 1)")
    raw.execute("PRAGMA user_version=1")
    raw.execute(f"PRAGMA application_id={APPLICATION_ID}")
    raw.close()
    with Journal(path) as j:
        old = j.get(1)
        assert (old.state, old.tac, old.terminal_seq) == (TapState.COMPLETED, TAC, 7)
        assert old.previous is None and old.key_version is None and old.grey_reason is None
        assert j.ack("b1").rows_marked == 1
        c = j._connection()
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            c.execute("INSERT INTO batch_taps VALUES ('b1', 99)")  # no tap 99
        grey = j.begin(tap(8))
        j.mark_uncertain(grey, "805A SW 9406; card counter 9 > N 5; EF 0018 lacks 5")
        assert j.get(grey).state is TapState.UNCERTAIN


def test_uncertain_rows_keep_their_evidence_and_go_to_clearing_flagged(
    journal: Journal, tmp_path: Path
):
    from sscard.services.journal import CardTxn

    prev = CardTxn(counter=4, txn_type=9, amount=200, terminal_id=bytes.fromhex("300089000399"),
                   time=datetime(2025, 3, 1, 8, 55))  # fmt: skip
    done = completed(journal, 1)
    grey = journal.begin(dataclasses.replace(tap(2), key_version=1, algorithm_id=0, previous=prev))
    with pytest.raises(JournalInputError):
        journal.mark_uncertain(grey, "")
    with pytest.raises(JournalInputError):
        journal.mark_uncertain(grey, "x", proof_tac=TAC)  # TAC without MAC2
    journal.mark_unknown(grey)
    journal.mark_uncertain(grey, "EF 0018 shows this debit; 805A proof unverified",
                           proof_tac=TAC, proof_mac2=MAC2)  # fmt: skip
    row = journal.get(grey)
    assert (row.state, row.tac, row.proof_tac, row.proof_mac2) == (
        TapState.UNCERTAIN, None, TAC, MAC2,
    )  # fmt: skip
    assert (row.previous, row.key_version, row.algorithm_id) == (prev, 1, 0)
    assert journal.pending_for_card(ASN) is None  # not retried at the next tap
    with pytest.raises(JournalStateError):
        journal.complete(grey, TAC, MAC2, 4700)  # decided by clearing, not here
    batch = journal.export_unsent("jsonl", tmp_path / "g.jsonl")
    lines = read_jsonl(tmp_path / "g.jsonl")
    assert [(r["id"], r["grey"], r["tac"]) for r in lines] == [(done, 0, TAC.hex().upper()),
                                                               (grey, 1, None)]  # fmt: skip
    assert lines[1]["proof_tac"] == TAC.hex().upper() and lines[1]["prev_counter"] == 4
    assert (lines[1]["prev_type"], lines[1]["prev_datetime"]) == (
        "09",
        "2025-03-01T08:55:00+08:00",
    )  # Beijing instant
    assert journal.batch(batch).total_amount == 300  # grey amounts are not claimed
    assert journal.ack(batch).rows_marked == 2
    assert [r.id for r in journal.rows(ASN)] == [done, grey]


# --------------------------------------------------------------------------- retention


def test_purge_removes_only_what_clearing_has_and_scrubs_the_file(tmp_path: Path):
    """Retention (docs/privacy.md §3): acknowledged and failed rows go after the
    period; pending, unknown and unacknowledged rows stay whatever their age, and
    the purged card numbers are gone from the database file and its WAL."""
    from datetime import UTC, timedelta

    old_asn = bytes.fromhex("03105170010170900001")
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        sent = [completed(j, i, asn=old_asn) for i in (1, 2)]
        j.ack(j.export_unsent("jsonl", tmp_path / "a.jsonl"))
        failed = j.begin(tap(3, asn=old_asn))
        j.fail(failed, "SW 9401")
        exported_unacked = completed(j, 4)
        j.export_unsent("jsonl", tmp_path / "b.jsonl")  # upload not confirmed
        torn = j.begin(tap(5))
        j.mark_unknown(torn)
        pending = j.begin(tap(6, asn=bytes.fromhex("03105170010170900002")))

        with pytest.raises(JournalInputError):
            j.purge(timedelta(hours=23))
        assert j.purge(timedelta(days=30)).removed == 0  # nothing is 30 days old yet

        later = datetime.now(UTC) + timedelta(days=40)
        result = j.purge(timedelta(days=30), now=later)
        assert (result.sent, result.failed, result.kept_open) == (2, 1, 3)
        assert sorted(r.id for r in j.rows()) == [exported_unacked, torn, pending]
        assert all(r.id not in (*sent, failed) for r in j.rows())
        # what clearing lacks is still exported
        j.export_unsent("jsonl", tmp_path / "c.jsonl")
        assert [r["id"] for r in read_jsonl(tmp_path / "c.jsonl")] == [exported_unacked]
        # while the validator still runs: neither the file nor its WAL holds them
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))
        assert old_asn.hex().upper().encode() not in raw
        assert ASN.hex().upper().encode() in raw  # (the search does find a kept card)


def test_cli_purge(tmp_path: Path):
    db = tmp_path / "j.db"
    with Journal(db) as j:
        completed(j, 1)
    runner = CliRunner()
    res = runner.invoke(journal_cli, ["purge", "--db", str(db), "--older-than-days", "0"])
    assert res.exit_code == 2
    res = runner.invoke(
        journal_cli, ["purge", "--db", str(db), "--older-than-days", "30", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["removed_sent"] == 0
    with Journal(db) as j:
        assert len(j.rows()) == 1
