"""The one way sscard opens its SQLite state files and runs a transaction in them.

Why one module: the audit log, the e-SSC replay cache, the validator journal, the
insurance outbox and the simulated platform's ledger all keep state that several
threads and processes may write at once. Each opens the file the same way (WAL so
readers never block the writer, a busy timeout so a second process waits instead
of failing, autocommit so every transaction is an explicit ``BEGIN IMMEDIATE``) and
differs only in how much durability it buys (``synchronous``; see each module's
docstring). It lives at the top level because services and simulators both use it
and simulators must not import services.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Literal, Self, TypeVar

from sscard.files import create_private

T = TypeVar("T")

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def open_database(
    path: str | os.PathLike[str],
    *,
    synchronous: Synchronous | None = "FULL",
    busy_timeout: float = 5.0,
) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, autocommit, shareable across threads (callers hold a lock).

    ``synchronous=None`` keeps SQLite's compiled-in default. The caller checks the
    journal mode if it depends on WAL (``:memory:`` answers ``memory``). SQLite
    errors propagate: the caller wraps them in its own bilingual error.

    Every sscard database holds personal data or money (regulation.md Art. 18): the
    file is created 0600 before SQLite opens it, so its ``-wal`` and ``-shm`` files,
    which SQLite creates with the database file's mode, are 0600 too.
    """
    state = state_dir()
    if Path(path).parent == state:  # a default location: make it (0700), once
        with suppress(OSError):
            state.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(OSError):  # a missing directory: sqlite3 says so in its own words
        create_private(path)
    db = sqlite3.connect(
        str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _commit(db: sqlite3.Connection) -> None:
    db.execute("COMMIT")


@contextmanager
def transaction(
    db: sqlite3.Connection,
    lock: AbstractContextManager[object],
    *,
    commit: Callable[[sqlite3.Connection], None] = _commit,
) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction under ``lock``: all of it is committed, or none.

    IMMEDIATE takes the write lock before the first read, so a read-then-write
    cannot race another process. On any exception (in the body or in ``commit``,
    a seam for fault-injection tests) the transaction is rolled back, if SQLite
    has not already done so, and the original exception propagates.
    """
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            commit(db)
        except BaseException:
            if db.in_transaction:
                with suppress(sqlite3.Error):  # a failed COMMIT may have rolled back
                    db.execute("ROLLBACK")
            raise


def state_dir() -> Path:
    """Where sscard keeps what it writes between runs when no path is given.

    ``$SSCARD_STATE_DIR``, else ``$XDG_STATE_HOME/sscard``, else ~/.local/state/sscard
    (XDG Base Directory): never the current directory or a configuration's folder.
    """
    explicit = os.environ.get("SSCARD_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "sscard"


def state_path(env_var: str, filename: str) -> Path:
    """``$env_var`` if set, else ``filename`` in :func:`state_dir`."""
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit)
    return state_dir() / filename


class Store:
    """Base of a durable SQLite-backed object: one connection, one lock, one close.

    ``Store(db, lock=...)`` keeps the connection from :func:`open_database` and the
    lock that serialises its users (a re-entrant one by default, so a method may hold
    it across a closed check and a transaction). It gives subclasses the transaction
    helper, an idempotent ``close()``, :meth:`_connection` (which refuses a closed
    store with :meth:`_closed_error`) and the context-manager protocol, written once.

    (Subclasses that set ``self._db`` and ``self._lock`` themselves, without calling
    this ``__init__``, keep working: the closed flag defaults to False.)
    """

    _db: sqlite3.Connection
    _lock: AbstractContextManager[object]
    _closed: bool = False

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        lock: AbstractContextManager[object] | None = None,
        named_rows: bool = True,
    ) -> None:
        if named_rows:  # rows read by column name, never by position (``r["state"]``)
            db.row_factory = sqlite3.Row
        self._db = db
        self._lock = lock if lock is not None else threading.RLock()
        self._closed = False

    def _set_up(self, step: Callable[[], T]) -> T:
        """Run a subclass's opening step (schema, migration); close the store if it fails,
        so a refused file never leaves an open connection behind."""
        try:
            return step()
        except BaseException:
            self.close()
            raise

    def _closed_error(self) -> Exception:
        """What using a closed store raises (subclasses name themselves)."""
        return sqlite3.ProgrammingError("the store is closed")

    def _connection(self) -> sqlite3.Connection:
        """The open connection; :meth:`_closed_error` after :meth:`close`."""
        if self._closed:
            raise self._closed_error()
        return self._db

    def _commit(self, db: sqlite3.Connection) -> None:
        """The durability point of :meth:`_tx` (a seam for fault-injection tests)."""
        db.execute("COMMIT")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._connection(), self._lock, commit=self._commit)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the connection; a second call does nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
