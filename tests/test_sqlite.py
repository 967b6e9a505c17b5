"""sscard.sqlite: how every state file is opened, written in one transaction, and found."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sscard.sqlite import Store, open_database, state_path, transaction

Opener = Callable[..., sqlite3.Connection]


@pytest.fixture
def open_db(tmp_path: Path) -> Iterator[Opener]:
    """Open ``s.db`` (table ``t``) with open_database(**kw); everything opened is closed after."""
    opened: list[sqlite3.Connection] = []

    def make(**kw: object) -> sqlite3.Connection:
        db = open_database(tmp_path / "s.db", **kw)  # type: ignore[arg-type]
        opened.append(db)
        db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
        return db

    yield make
    for db in opened:
        db.close()


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_open_database_is_wal_autocommit_with_the_asked_durability(
    open_db: Opener, synchronous: str, level: int
) -> None:
    db = open_db(synchronous=synchronous, busy_timeout=0.25)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == level
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    assert db.isolation_level is None and not db.in_transaction


def test_synchronous_none_keeps_the_sqlite_default(tmp_path: Path, open_db: Opener) -> None:
    plain = sqlite3.connect(tmp_path / "plain.db")
    plain.execute("PRAGMA journal_mode=WAL")
    expected = plain.execute("PRAGMA synchronous").fetchone()[0]
    plain.close()
    assert open_db(synchronous=None).execute("PRAGMA synchronous").fetchone()[0] == expected


def test_open_database_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_database(garbage)


def test_transaction_commits_under_the_lock(tmp_path: Path, open_db: Opener) -> None:
    db, lock = open_db(), threading.Lock()
    with transaction(db, lock) as c:
        assert lock.locked() and c.in_transaction
        c.execute("INSERT INTO t VALUES (1)")
    assert not lock.locked() and not db.in_transaction
    assert open_db().execute("SELECT x FROM t").fetchall() == [(1,)]  # a second connection


def test_transaction_rolls_back_on_an_error_in_the_body(open_db: Opener) -> None:
    db, lock = open_db(), threading.Lock()
    with pytest.raises(sqlite3.IntegrityError), transaction(db, lock) as c:
        c.execute("INSERT INTO t VALUES (1)")
        c.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction and not lock.locked()
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_a_failed_commit_rolls_back_and_keeps_the_original_error(open_db: Opener) -> None:
    db, lock = open_db(), threading.Lock()

    def disk_full(_: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with (
        pytest.raises(sqlite3.OperationalError, match="disk I/O"),
        transaction(db, lock, commit=disk_full) as c,
    ):
        c.execute("INSERT INTO t VALUES (1)")
    assert not db.in_transaction  # the connection is usable again
    with transaction(db, lock) as c:
        c.execute("INSERT INTO t VALUES (2)")
    assert db.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_state_path_prefers_its_own_variable_then_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSCARD_TEST_DB", raising=False)
    monkeypatch.delenv("SSCARD_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_path("SSCARD_TEST_DB", "x.sqlite3") == tmp_path / ".local/state/sscard/x.sqlite3"
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    assert state_path("SSCARD_TEST_DB", "x.sqlite3") == tmp_path / "state" / "x.sqlite3"
    monkeypatch.setenv("SSCARD_TEST_DB", str(tmp_path / "own.db"))
    assert state_path("SSCARD_TEST_DB", "x.sqlite3") == tmp_path / "own.db"


def test_store_base_gives_close_and_context_manager(tmp_path: Path) -> None:

    class Counter(Store):
        def __init__(self, path: Path) -> None:
            self._lock = threading.Lock()
            self._db = open_database(path)
            with self._tx() as db:
                db.execute("CREATE TABLE IF NOT EXISTS n (v INTEGER)")

        def add(self) -> None:
            with self._tx() as db:
                db.execute("INSERT INTO n VALUES (1)")

    with Counter(tmp_path / "c.db") as counter:
        counter.add()
    with pytest.raises(sqlite3.ProgrammingError):  # closed on leaving the block
        counter.add()
    with Counter(tmp_path / "c.db") as again:
        assert again._db.execute("SELECT count(*) FROM n").fetchone()[0] == 1
