"""The Store base (sscard.sqlite) as the journal uses it: one connection, one lock, one close."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from sscard.services.journal import Journal, JournalError, JournalWriteError
from sscard.sqlite import Store, open_database


def test_journal_is_a_store_and_refuses_use_after_close(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    assert isinstance(j, Store) and not j.closed
    assert j.stats().schema_version >= 1
    j.close()
    j.close()  # idempotent
    assert j.closed
    with pytest.raises(JournalError, match="closed"):
        j.stats()
    with pytest.raises(JournalError, match="closed"):
        j._connection()


def test_store_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    class Failing(Exception):
        pass

    with Store(open_database(tmp_path / "s.db")) as store:
        assert isinstance(store._lock, type(threading.RLock()))
        with store._tx() as db:
            db.execute("CREATE TABLE t (x)")
            db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(Failing), store._tx() as db:
            db.execute("INSERT INTO t VALUES (2)")
            raise Failing
        rows = store._connection().execute("SELECT x FROM t").fetchall()
        assert [r["x"] for r in rows] == [1]  # named rows, the one dialect of every store
    assert store.closed
    with pytest.raises(sqlite3.ProgrammingError):
        store._tx()


def test_journal_commit_seam_failure_records_nothing(tmp_path: Path, mocker) -> None:  # type: ignore[no-untyped-def]
    with Journal(tmp_path / "j.db") as j:
        before = j.stats()
        mocker.patch.object(j, "_commit", side_effect=sqlite3.OperationalError("disk I/O error"))
        with pytest.raises(JournalWriteError), j._write() as c:
            c.execute("PRAGMA user_version=99")
        mocker.stopall()
        assert j.stats() == before
        assert j._connection().execute("PRAGMA user_version").fetchone()[0] != 99


def test_a_store_whose_opening_step_fails_is_closed(tmp_path: Path) -> None:
    """``_set_up``: a refused file (bad schema, foreign database) leaves no connection open."""

    class Refused(Exception):
        pass

    store = Store(open_database(tmp_path / "s.db"))

    def step() -> None:
        raise Refused

    with pytest.raises(Refused):
        store._set_up(step)
    assert store.closed
    with pytest.raises(sqlite3.ProgrammingError):
        store._connection()
    with Store(open_database(tmp_path / "t.db")) as ok:
        assert ok._set_up(lambda: 7) == 7 and not ok.closed
