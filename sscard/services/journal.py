"""The validator journal: every purse debit is on disk before the card is asked to pay.

Why: a validator must never lose a charge and never charge twice, even when the
card is pulled away mid-debit or the power goes (§P5.7). So the
debit context (counter N, amount, terminal txn seq, date-time) is written as a
``pending`` row and committed *before* DEBIT (8054) is sent; after MAC2 is
verified the row becomes ``completed`` with the TAC and MAC2. A torn debit is
``unknown`` until GET TRANSACTION PROVE (805A with N + 1, profile row "Tearing
recovery counter") proves it was or was not taken: then ``completed`` or
``failed``. The validator finds that context again by ASN with
:meth:`Journal.pending_for_card`. A torn debit the validator cannot decide (the
card's proof is another terminal's, the debit rotated out of EF 0018, no key to
check the TAC) becomes ``uncertain`` (灰交易, a grey record, §K6): it keeps
the whole debit context, the reason and any unverified 805A answer, and clearing
settles it from the card's following transactions (:mod:`sscard.services.grey`;
docs/transit-recovery.md). Every row also keeps the card's newest EF 0018 entry as
read before the debit (``previous``): the evidence a *later* tap gives clearing
about the transaction before it.

Durability: SQLite in WAL mode with ``synchronous=FULL`` (the WAL is fsynced at
every commit), one transaction per state change, so a crash leaves either the
old row or the new one, never half of it; CHECK constraints make a
``completed`` row without TAC/MAC2 impossible. ``completed`` and ``uncertain``
(grey, flagged) rows are exported to clearing (:meth:`Journal.export_unsent`, an
atomic file write), and they are marked sent only by :meth:`Journal.ack`, after the
clearing host has confirmed the upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from sscard import clock
from sscard.errors import ExitStatus, SscardError
from sscard.files import open_private
from sscard.sqlite import Store, open_database

#: EP purchase and composite (CAPP) purchase, §P5.1.
TXN_TYPES = frozenset({0x06, 0x09})
#: PRAGMA application_id of an sscard journal ("SSJ1"), so a foreign SQLite file is refused.
APPLICATION_ID = 0x53534A31

ExportFormat = Literal["csv", "jsonl", "parquet"]

# --------------------------------------------------------------------------- errors


class JournalError(SscardError):
    """Base class of journal errors."""

    exit_status = ExitStatus.SYSTEM
    message_en = "validator journal error"
    message_zh = "验票机交易日志错误"


class JournalOpenError(JournalError):
    """The file is not an sscard journal, was written by a newer sscard, or cannot do WAL."""

    exit_status = ExitStatus.USAGE
    message_en = "cannot open the validator journal"
    message_zh = "无法打开验票机交易日志"


class JournalWriteError(JournalError):
    """A write or commit failed (disk full, I/O error): nothing was changed."""

    message_en = "journal write failed; nothing was recorded"
    message_zh = "交易日志写入失败，未记录任何内容"


class JournalStateError(JournalError):
    """The tap does not exist or is not in a state that allows this change."""

    message_en = "journal state does not allow this change"
    message_zh = "交易日志状态不允许此操作"


class JournalInputError(JournalError):
    """A field of a tap is malformed (wrong length, out of range)."""

    exit_status = ExitStatus.USAGE
    message_en = "malformed journal entry"
    message_zh = "交易日志条目格式错误"


class UnknownBatch(JournalError):
    """``ack`` was given a batch id that no export produced."""

    exit_status = ExitStatus.USAGE
    message_en = "unknown clearing batch"
    message_zh = "未知的清算批次"


# --------------------------------------------------------------------------- rows


class TapState(StrEnum):
    PENDING = "pending"  # written before DEBIT (8054) is sent
    COMPLETED = "completed"  # proven: the card's answer, MAC2 or TAC of this very debit
    FAILED = "failed"  # proven not debited (refusal SW, counter still N, counter N used by another)
    UNKNOWN = "unknown"  # torn: awaiting GET TRANSACTION PROVE
    UNCERTAIN = "uncertain"  # 灰交易: not provable either way here; clearing settles it


def _check_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise JournalInputError(f"{name} must be {size} bytes", f"{name}应为{size}字节")


def _check_range(value: object, lo: int, hi: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise JournalInputError(f"{name} out of range", f"{name}超出范围")


@dataclass(frozen=True)
class CardTxn:
    """One EF 0018 entry (§P5.2) as a journal keeps it: ``counter`` is
    the counter the transaction used (offline for purchases 06/09, online for loads)."""

    counter: int
    txn_type: int
    amount: int
    terminal_id: bytes  # 6 B
    time: datetime

    def __post_init__(self) -> None:
        _check_range(self.counter, 0, 0xFFFF, "EF 0018 counter")
        _check_range(self.txn_type, 0, 0xFF, "EF 0018 type")
        _check_range(self.amount, 0, 0xFFFFFFFF, "EF 0018 amount")
        _check_bytes(self.terminal_id, 6, "EF 0018 terminal id")
        if not isinstance(self.time, datetime):
            raise JournalInputError("EF 0018 time must be a datetime", "EF 0018时间应为datetime")


@dataclass(frozen=True, kw_only=True)
class PendingTap:
    """The debit context saved before 8054: what tearing recovery needs (§P5.7 step 1).

    ``card_counter`` is the offline counter N from the 8050 response; recovery
    sends 805A with N + 1. ``txn_datetime`` is the terminal's local date-time
    sent in 8054 and 8070: Beijing wall-clock time, as on the card (an aware datetime
    is converted, :mod:`sscard.clock`); the journal stores it as an unambiguous
    instant (ISO 8601 with ``+08:00``). Amounts are in fen.
    """

    terminal_id: str
    psam_terminal_id: bytes  # 6 B, PSAM EF 16
    terminal_seq: int  # PSAM terminal transaction sequence (8070 response), 4 B
    asn: bytes  # 10 B, EF 0015[10..19]
    issuer_id: bytes  # 8 B, EF 0015[0..7]
    txn_type: int  # 0x06 EP purchase, 0x09 composite purchase
    amount: int
    balance_before: int
    card_counter: int
    txn_datetime: datetime
    line: str = ""
    station: str = ""
    fare: dict[str, Any] = field(default_factory=dict)  # fare details, stored as JSON
    key_version: int | None = None  # 8050 answer: which card key made MAC2 and TAC
    algorithm_id: int | None = None  # 8050 answer: 00 3DES, 04 SM4 (profile)
    #: The card's newest EF 0018 entry before this debit (None: not read). For clearing:
    #: a tap at counter N + 1 tells what the card did at counter N (§K6).
    previous: CardTxn | None = None

    def __post_init__(self) -> None:
        _check_bytes(self.psam_terminal_id, 6, "PSAM terminal id")
        _check_bytes(self.asn, 10, "ASN")
        _check_bytes(self.issuer_id, 8, "issuer id")
        _check_range(self.terminal_seq, 0, 0xFFFFFFFF, "terminal txn seq")
        _check_range(self.amount, 0, 0xFFFFFFFF, "amount")
        _check_range(self.balance_before, -0x80000000, 0xFFFFFFFF, "balance")
        _check_range(self.card_counter, 0, 0xFFFF, "offline counter")
        if self.txn_type not in TXN_TYPES:
            raise JournalInputError("transaction type must be 06 or 09", "交易类型应为06或09")
        if not isinstance(self.txn_datetime, datetime):
            raise JournalInputError("txn_datetime must be a datetime", "交易时间应为datetime")
        for name in ("key_version", "algorithm_id"):
            value = getattr(self, name)
            if value is not None:
                _check_range(value, 0, 0xFF, name)
        if self.previous is not None and not isinstance(self.previous, CardTxn):
            raise JournalInputError("previous must be a CardTxn", "previous应为CardTxn")
        object.__setattr__(self, "txn_datetime", clock.wall(self.txn_datetime))

    @property
    def txn_instant(self) -> datetime:
        """``txn_datetime`` as an aware instant (UTC+8)."""
        return clock.instant(self.txn_datetime)


@dataclass(frozen=True, kw_only=True)
class TapRecord(PendingTap):
    """One journal row: the saved context plus its state."""

    id: int
    state: TapState
    created_at: datetime
    updated_at: datetime
    balance_after: int | None = None
    tac: bytes | None = None
    mac2: bytes | None = None
    fail_reason: str | None = None
    sent_batch: str | None = None
    grey_reason: str | None = None  # why the row is uncertain (no personal data)
    proof_tac: bytes | None = None  # an uncertain row: 805A answer kept, NOT verified
    proof_mac2: bytes | None = None


@dataclass(frozen=True)
class JournalStats:
    schema_version: int
    by_state: dict[str, int]
    unsent_completed: int
    unsent_amount: int  # fen
    batches: int
    unacked_batches: int


@dataclass(frozen=True)
class BatchInfo:
    """One clearing export: the file it wrote and whether the upload was confirmed."""

    batch_id: str
    created_at: datetime
    format: str
    path: str
    row_count: int
    total_amount: int  # fen
    sha256: str  # of the file as written, for the upload confirmation
    acked_at: datetime | None


@dataclass(frozen=True)
class AckResult:
    batch_id: str
    rows_marked: int  # 0 when the batch had already been acknowledged
    already_acked: bool


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime  # UTC: rows last changed before this instant were eligible
    sent: int  # completed or grey rows whose clearing upload was acknowledged
    failed: int  # debits the card never took
    kept_open: int  # pending, unknown or unsent rows older than the cutoff, kept

    @property
    def removed(self) -> int:
        return self.sent + self.failed


# --------------------------------------------------------------------------- schema

_SCHEMA_V1 = """
CREATE TABLE taps (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    terminal_id      TEXT NOT NULL,
    psam_terminal_id TEXT NOT NULL CHECK (length(psam_terminal_id) = 12),
    terminal_seq     INTEGER NOT NULL,
    asn              TEXT NOT NULL CHECK (length(asn) = 20),
    issuer_id        TEXT NOT NULL CHECK (length(issuer_id) = 16),
    txn_type         INTEGER NOT NULL CHECK (txn_type IN (6, 9)),
    amount           INTEGER NOT NULL CHECK (amount >= 0),
    balance_before   INTEGER NOT NULL,
    balance_after    INTEGER,
    card_counter     INTEGER NOT NULL,
    txn_datetime     TEXT NOT NULL,
    line             TEXT NOT NULL,
    station          TEXT NOT NULL,
    fare_json        TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'completed', 'failed', 'unknown')),
    tac              TEXT CHECK (tac IS NULL OR length(tac) = 8),
    mac2             TEXT CHECK (mac2 IS NULL OR length(mac2) = 8),
    fail_reason      TEXT,
    sent_batch       TEXT REFERENCES batches(batch_id),
    -- a completed row always has its proof, and no other row has one
    CHECK ((state = 'completed') =
           (tac IS NOT NULL AND mac2 IS NOT NULL AND balance_after IS NOT NULL)),
    CHECK ((state = 'failed') = (fail_reason IS NOT NULL)),
    CHECK (sent_batch IS NULL OR state = 'completed')
);
CREATE INDEX taps_by_card ON taps (asn, state);
CREATE INDEX taps_unsent ON taps (id) WHERE state = 'completed' AND sent_batch IS NULL;
CREATE TABLE batches (
    batch_id     TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    format       TEXT NOT NULL,
    path         TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    total_amount INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    acked_at     TEXT
);
CREATE TABLE batch_taps (
    batch_id TEXT NOT NULL REFERENCES batches(batch_id),
    tap_id   INTEGER NOT NULL REFERENCES taps(id),
    PRIMARY KEY (batch_id, tap_id)
) WITHOUT ROWID;
"""

_V1_COLUMNS = (
    "id, created_at, updated_at, terminal_id, psam_terminal_id, terminal_seq, asn, issuer_id,"
    " txn_type, amount, balance_before, balance_after, card_counter, txn_datetime, line,"
    " station, fare_json, state, tac, mac2, fail_reason, sent_batch"
)

# v2: the 'uncertain' state (灰交易) with its reason and the unverified 805A
# answer; the card's key version / algorithm; the card's newest EF 0018 entry before
# the debit (prev_*). SQLite cannot change a CHECK, so the table is rebuilt (the
# SQLite "12 steps"; foreign keys are off while it runs, see Journal._setup).
_SCHEMA_V2 = f"""
CREATE TABLE taps_v2 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    terminal_id      TEXT NOT NULL,
    psam_terminal_id TEXT NOT NULL CHECK (length(psam_terminal_id) = 12),
    terminal_seq     INTEGER NOT NULL,
    asn              TEXT NOT NULL CHECK (length(asn) = 20),
    issuer_id        TEXT NOT NULL CHECK (length(issuer_id) = 16),
    txn_type         INTEGER NOT NULL CHECK (txn_type IN (6, 9)),
    amount           INTEGER NOT NULL CHECK (amount >= 0),
    balance_before   INTEGER NOT NULL,
    balance_after    INTEGER,
    card_counter     INTEGER NOT NULL,
    txn_datetime     TEXT NOT NULL,
    line             TEXT NOT NULL,
    station          TEXT NOT NULL,
    fare_json        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN
                     ('pending', 'completed', 'failed', 'unknown', 'uncertain')),
    tac              TEXT CHECK (tac IS NULL OR length(tac) = 8),
    mac2             TEXT CHECK (mac2 IS NULL OR length(mac2) = 8),
    fail_reason      TEXT,
    sent_batch       TEXT REFERENCES batches(batch_id),
    key_version      INTEGER,
    algorithm_id     INTEGER,
    prev_counter     INTEGER,
    prev_type        INTEGER,
    prev_amount      INTEGER,
    prev_terminal    TEXT CHECK (prev_terminal IS NULL OR length(prev_terminal) = 12),
    prev_datetime    TEXT,
    grey_reason      TEXT,
    proof_tac        TEXT CHECK (proof_tac IS NULL OR length(proof_tac) = 8),
    proof_mac2       TEXT CHECK (proof_mac2 IS NULL OR length(proof_mac2) = 8),
    -- a completed row always has its proof, and no other row has one
    CHECK ((state = 'completed') =
           (tac IS NOT NULL AND mac2 IS NOT NULL AND balance_after IS NOT NULL)),
    CHECK ((state = 'failed') = (fail_reason IS NOT NULL)),
    CHECK ((state = 'uncertain') = (grey_reason IS NOT NULL)),
    CHECK ((proof_tac IS NULL AND proof_mac2 IS NULL) OR state = 'uncertain'),
    CHECK ((prev_counter IS NULL) = (prev_datetime IS NULL)),
    CHECK (sent_batch IS NULL OR state IN ('completed', 'uncertain'))
);
INSERT INTO taps_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM taps;
DROP TABLE taps;
ALTER TABLE taps_v2 RENAME TO taps;
CREATE INDEX taps_by_card ON taps (asn, state);
CREATE INDEX taps_unsent ON taps (id)
    WHERE state IN ('completed', 'uncertain') AND sent_batch IS NULL
"""

#: Migration i brings a database from user_version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2)
SCHEMA_VERSION = len(_MIGRATIONS)

_COLUMNS = (
    f"{_V1_COLUMNS}, key_version, algorithm_id, prev_counter, prev_type, prev_amount,"
    " prev_terminal, prev_datetime, grey_reason, proof_tac, proof_mac2"
)

#: Columns of the clearing file, in order (CSV header; JSON-lines keys).
CLEARING_FIELDS = (
    "batch_id",
    "id",
    "terminal_id",
    "psam_terminal_id",
    "terminal_seq",
    "asn",
    "issuer_id",
    "txn_type",
    "amount",
    "balance_before",
    "balance_after",
    "card_counter",
    "txn_datetime",
    "line",
    "station",
    "tac",
    "mac2",
    "fare",
    "created_at",
    # v2: grey rows and the evidence clearing settles them with
    "grey",
    "grey_reason",
    "proof_tac",
    "proof_mac2",
    "key_version",
    "algorithm_id",
    "prev_counter",
    "prev_type",
    "prev_amount",
    "prev_terminal",
    "prev_datetime",
)

_DT_FORMAT = "%Y%m%d%H%M%S"  # rows written before the ISO 8601 instant: Beijing digits


def _txn_datetime(text: str) -> datetime:
    """A stored ``txn_datetime``/``prev_datetime`` (ISO 8601 with offset) as Beijing
    wall-clock time, the card's digits."""
    if len(text) == 14 and text.isdigit():
        return datetime.strptime(text, _DT_FORMAT)
    return clock.wall(clock.parse_instant(text))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _asn_hex(asn: bytes | str) -> str:
    text = asn.hex() if isinstance(asn, bytes) else asn
    if len(text) != 20:
        raise JournalInputError("ASN must be 10 bytes", "ASN应为10字节")
    try:
        bytes.fromhex(text)
    except ValueError:
        raise JournalInputError("ASN must be hex", "ASN应为十六进制") from None
    return text.upper()


def _to_record(row: sqlite3.Row) -> TapRecord:
    def opt(name: str) -> bytes | None:
        value = row[name]
        return None if value is None else bytes.fromhex(value)

    previous = None
    if row["prev_counter"] is not None:
        previous = CardTxn(
            counter=row["prev_counter"],
            txn_type=row["prev_type"],
            amount=row["prev_amount"],
            terminal_id=bytes.fromhex(row["prev_terminal"]),
            time=_txn_datetime(row["prev_datetime"]),
        )
    return TapRecord(
        id=row["id"],
        state=TapState(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        terminal_id=row["terminal_id"],
        psam_terminal_id=bytes.fromhex(row["psam_terminal_id"]),
        terminal_seq=row["terminal_seq"],
        asn=bytes.fromhex(row["asn"]),
        issuer_id=bytes.fromhex(row["issuer_id"]),
        txn_type=row["txn_type"],
        amount=row["amount"],
        balance_before=row["balance_before"],
        balance_after=row["balance_after"],
        card_counter=row["card_counter"],
        txn_datetime=_txn_datetime(row["txn_datetime"]),
        line=row["line"],
        station=row["station"],
        fare=json.loads(row["fare_json"]),
        tac=opt("tac"),
        mac2=opt("mac2"),
        fail_reason=row["fail_reason"],
        sent_batch=row["sent_batch"],
        key_version=row["key_version"],
        algorithm_id=row["algorithm_id"],
        previous=previous,
        grey_reason=row["grey_reason"],
        proof_tac=opt("proof_tac"),
        proof_mac2=opt("proof_mac2"),
    )


def _clearing_row(batch_id: str, row: sqlite3.Row) -> dict[str, Any]:
    """One clearing line. Hex fields upper case; ``txn_type`` as its 2-digit code."""
    return {
        "batch_id": batch_id,
        "id": row["id"],
        "terminal_id": row["terminal_id"],
        "psam_terminal_id": row["psam_terminal_id"],
        "terminal_seq": row["terminal_seq"],
        "asn": row["asn"],
        "issuer_id": row["issuer_id"],
        "txn_type": f"{row['txn_type']:02X}",
        "amount": row["amount"],
        "balance_before": row["balance_before"],
        "balance_after": row["balance_after"],
        "card_counter": row["card_counter"],
        "txn_datetime": row["txn_datetime"],
        "line": row["line"],
        "station": row["station"],
        "tac": row["tac"],
        "mac2": row["mac2"],
        "fare": json.loads(row["fare_json"]),
        "created_at": row["created_at"],
        "grey": int(row["state"] == TapState.UNCERTAIN),
        "grey_reason": row["grey_reason"],
        "proof_tac": row["proof_tac"],
        "proof_mac2": row["proof_mac2"],
        "key_version": row["key_version"],
        "algorithm_id": row["algorithm_id"],
        "prev_counter": row["prev_counter"],
        "prev_type": None if row["prev_type"] is None else f"{row['prev_type']:02X}",
        "prev_amount": row["prev_amount"],
        "prev_terminal": row["prev_terminal"],
        "prev_datetime": row["prev_datetime"],
    }


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: fsync the directory entry (POSIX)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- journal


class Journal(Store):
    """A durable journal of purse debits for one validator (see the module docstring).

    One SQLite connection guarded by a re-entrant lock (the :class:`~sscard.sqlite.Store`
    base), so a validator loop and an upload thread may share the object. Every method that changes a row commits before
    it returns; on a failed commit it rolls back and raises
    :class:`JournalWriteError` with nothing changed.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            conn = open_database(self.path, synchronous="FULL", busy_timeout=10.0)
        except sqlite3.Error as exc:
            # OperationalError: cannot open, locked, read-only; another DatabaseError: not SQLite.
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.OperationalError
            ):
                raise self._not_sqlite() from exc
            raise JournalOpenError(
                f"cannot open {self.path.name}: {exc}", "无法打开交易日志文件"
            ) from exc
        super().__init__(conn, lock=threading.RLock())
        self._set_up(lambda: self._setup(conn))

    # ---------------------------------------------------------------- lifecycle

    def _not_sqlite(self) -> JournalOpenError:
        return JournalOpenError(
            f"{self.path.name} is not an SQLite database", f"{self.path.name}不是SQLite数据库"
        )

    def _setup(self, conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            conn.execute("PRAGMA foreign_keys=OFF")  # on after a migration (table rebuild)
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._not_sqlite() from exc
        if str(mode).lower() != "wal":
            raise JournalOpenError("the journal needs WAL mode", "交易日志需要WAL模式")
        if app_id not in (0, APPLICATION_ID) or (version == 0 and tables):
            raise JournalOpenError(
                f"{self.path.name} is not an sscard journal", f"{self.path.name}不是sscard交易日志"
            )
        if version > SCHEMA_VERSION:
            raise JournalOpenError(
                f"journal schema {version} is newer than this sscard ({SCHEMA_VERSION})",
                f"交易日志版本{version}高于本程序支持的版本{SCHEMA_VERSION}",
            )
        if version < SCHEMA_VERSION:
            self._migrate()
        try:
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._not_sqlite() from exc

    def _migrate(self) -> None:
        """Apply the missing migrations in one transaction (all or none).

        Runs with foreign keys off (a rebuilt ``taps`` is dropped and renamed while
        ``batch_taps`` points at it, the SQLite table-rebuild procedure) and checks
        them before the commit.
        """
        with self._write() as c:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            current = c.execute("PRAGMA user_version").fetchone()[0]
            for step in _MIGRATIONS[current:]:
                for statement in step.split(";"):  # no ';' inside the statements
                    if statement.strip():
                        c.execute(statement)
            if c.execute("PRAGMA foreign_key_check").fetchall():
                raise sqlite3.IntegrityError("foreign keys broken by the migration")
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            c.execute(f"PRAGMA application_id={APPLICATION_ID}")

    def _closed_error(self) -> JournalError:
        return JournalError("the journal is closed", "交易日志已关闭")

    # ---------------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is committed, or none of it."""
        with self._lock:  # re-entrant: held across the closed check and the transaction
            try:
                with self._tx() as conn:
                    yield conn
            except sqlite3.Error as exc:
                raise JournalWriteError(
                    f"journal write failed ({type(exc).__name__}); nothing was recorded",
                    "交易日志写入失败，未记录任何内容",
                ) from exc

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(
                    f"journal read failed ({type(exc).__name__})", "交易日志读取失败"
                ) from exc

    def _transition(
        self, tap_id: int, allowed: tuple[TapState, ...], sets: str, args: tuple[Any, ...]
    ) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT state FROM taps WHERE id = ?", (tap_id,)).fetchone()
            if row is None:
                raise JournalStateError(
                    f"no tap {tap_id} in the journal", f"交易日志中没有记录{tap_id}"
                )
            if row["state"] not in allowed:
                raise JournalStateError(
                    f"tap {tap_id} is {row['state']}", f"记录{tap_id}状态为{row['state']}"
                )
            conn.execute(
                f"UPDATE taps SET {sets}, updated_at = ? WHERE id = ?", (*args, _now(), tap_id)
            )

    # ---------------------------------------------------------------- tap lifecycle

    def begin(self, tap: PendingTap) -> int:
        """Record the debit context as ``pending``; durable when this returns.

        Call after PSAM 8070 (which gives the terminal txn seq and MAC1) and
        before DEBIT 8054 is sent. Returns the tap id.
        """
        try:
            fare_json = json.dumps(tap.fare, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            raise JournalInputError("fare details are not JSON", "票价明细不是JSON") from None
        now = _now()
        prev = tap.previous
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO taps (created_at, updated_at, terminal_id, psam_terminal_id,"
                " terminal_seq, asn, issuer_id, txn_type, amount, balance_before, card_counter,"
                " txn_datetime, line, station, fare_json, key_version, algorithm_id,"
                " prev_counter, prev_type, prev_amount, prev_terminal, prev_datetime, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " 'pending')",
                (
                    now,
                    now,
                    tap.terminal_id,
                    tap.psam_terminal_id.hex().upper(),
                    tap.terminal_seq,
                    tap.asn.hex().upper(),
                    tap.issuer_id.hex().upper(),
                    tap.txn_type,
                    tap.amount,
                    tap.balance_before,
                    tap.card_counter,
                    clock.isoformat(tap.txn_datetime),
                    tap.line,
                    tap.station,
                    fare_json,
                    tap.key_version,
                    tap.algorithm_id,
                    None if prev is None else prev.counter,
                    None if prev is None else prev.txn_type,
                    None if prev is None else prev.amount,
                    None if prev is None else prev.terminal_id.hex().upper(),
                    None if prev is None else clock.isoformat(prev.time),
                ),
            )
            tap_id = cur.lastrowid
        assert tap_id is not None
        return tap_id

    def complete(self, tap_id: int, tac: bytes, mac2: bytes, balance_after: int) -> None:
        """``pending``/``unknown`` -> ``completed``: call after MAC2 was verified (PSAM 8072)."""
        _check_bytes(tac, 4, "TAC")
        _check_bytes(mac2, 4, "MAC2")
        _check_range(balance_after, -0x80000000, 0xFFFFFFFF, "balance")
        self._transition(
            tap_id,
            (TapState.PENDING, TapState.UNKNOWN),
            "state = 'completed', tac = ?, mac2 = ?, balance_after = ?",
            (tac.hex().upper(), mac2.hex().upper(), balance_after),
        )

    def fail(self, tap_id: int, reason: str) -> None:
        """``pending``/``unknown`` -> ``failed``: the card was proven not debited.

        ``reason`` is short and free of personal data, e.g. ``"SW 9401"`` or
        ``"805A: not debited"``.
        """
        if not reason:
            raise JournalInputError("a failure needs a reason", "失败记录需要原因")
        self._transition(
            tap_id,
            (TapState.PENDING, TapState.UNKNOWN),
            "state = 'failed', fail_reason = ?",
            (reason,),
        )

    def mark_uncertain(
        self,
        tap_id: int,
        reason: str,
        *,
        proof_tac: bytes | None = None,
        proof_mac2: bytes | None = None,
    ) -> None:
        """``pending``/``unknown`` -> ``uncertain`` (灰交易): the validator cannot prove
        the debit either way; clearing settles it (:mod:`sscard.services.grey`).

        ``reason`` says what the validator saw (short, no personal data), e.g.
        ``"805A SW 9406; card counter 12 > N 1; EF 0018 no longer holds N"``.
        ``proof_tac``/``proof_mac2``: the card's 805A answer for N + 1 when it could
        not be verified here: kept for clearing to check, never as this row's proof.
        """
        if not reason:
            raise JournalInputError("an uncertain row needs a reason", "灰记录需要原因")
        if (proof_tac is None) != (proof_mac2 is None):
            raise JournalInputError("805A proof is TAC and MAC2", "805A证明应含TAC和MAC2")
        if proof_tac is not None and proof_mac2 is not None:
            _check_bytes(proof_tac, 4, "TAC")
            _check_bytes(proof_mac2, 4, "MAC2")
        self._transition(
            tap_id,
            (TapState.PENDING, TapState.UNKNOWN),
            "state = 'uncertain', grey_reason = ?, proof_tac = ?, proof_mac2 = ?",
            (
                reason,
                None if proof_tac is None else proof_tac.hex().upper(),
                None if proof_mac2 is None else proof_mac2.hex().upper(),
            ),
        )

    def mark_unknown(self, tap_id: int) -> None:
        """``pending`` -> ``unknown``: 8054 got no valid answer (torn); idempotent."""
        self._transition(tap_id, (TapState.PENDING, TapState.UNKNOWN), "state = 'unknown'", ())

    def mark_pending_unknown(self) -> int:
        """At start-up: every ``pending`` row was left by a crash mid-debit, so it is torn.

        Returns the number of rows changed.
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE taps SET state = 'unknown', updated_at = ? WHERE state = 'pending'",
                (_now(),),
            )
            return cur.rowcount

    # ---------------------------------------------------------------- queries

    def get(self, tap_id: int) -> TapRecord:
        rows = self._read(f"SELECT {_COLUMNS} FROM taps WHERE id = ?", (tap_id,))
        if not rows:
            raise JournalStateError(
                f"no tap {tap_id} in the journal", f"交易日志中没有记录{tap_id}"
            )
        return _to_record(rows[0])

    def pending_for_card(self, asn: bytes | str) -> TapRecord | None:
        """The newest unfinished (``pending`` or ``unknown``) debit of this card, for §P5.7.

        The record carries what recovery needs: ``card_counter`` (N; send 805A
        with N + 1), ``amount``, ``terminal_seq``, ``txn_datetime``, ``txn_type``.
        """
        rows = self._read(
            f"SELECT {_COLUMNS} FROM taps WHERE asn = ? AND state IN ('pending', 'unknown')"
            " ORDER BY id DESC LIMIT 1",
            (_asn_hex(asn),),
        )
        return _to_record(rows[0]) if rows else None

    def unfinished(self) -> list[TapRecord]:
        """All ``pending`` and ``unknown`` rows, oldest first."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM taps WHERE state IN ('pending', 'unknown') ORDER BY id"
        )
        return [_to_record(r) for r in rows]

    def rows(self, asn: bytes | str | None = None) -> list[TapRecord]:
        """Every row (of one card when ``asn`` is given), oldest first: the evidence
        clearing settles grey rows with (:func:`sscard.services.grey.settle_uncertain`)."""
        if asn is None:
            rows = self._read(f"SELECT {_COLUMNS} FROM taps ORDER BY id")
        else:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM taps WHERE asn = ? ORDER BY id", (_asn_hex(asn),)
            )
        return [_to_record(r) for r in rows]

    def last_trip(self, asn: bytes | str) -> TapRecord | None:
        """The newest ``completed`` debit of this card (transfer windows, duplicate taps)."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM taps WHERE asn = ? AND state = 'completed'"
            " ORDER BY id DESC LIMIT 1",
            (_asn_hex(asn),),
        )
        return _to_record(rows[0]) if rows else None

    def stats(self) -> JournalStats:
        by_state = {s.value: 0 for s in TapState}
        for row in self._read("SELECT state, count(*) AS n FROM taps GROUP BY state"):
            by_state[row["state"]] = row["n"]
        unsent = self._read(
            "SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM taps"
            " WHERE state = 'completed' AND sent_batch IS NULL"
        )[0]
        batches = self._read(
            "SELECT count(*) AS n, count(*) - count(acked_at) AS open FROM batches"
        )[0]
        return JournalStats(
            schema_version=SCHEMA_VERSION,
            by_state=by_state,
            unsent_completed=unsent["n"],
            unsent_amount=unsent["total"],
            batches=batches["n"],
            unacked_batches=batches["open"],
        )

    # ---------------------------------------------------------------- clearing

    def export_unsent(
        self,
        fmt: ExportFormat,
        out_path: str | os.PathLike[str],
        *,
        fields: Mapping[str, Any] | None = None,
    ) -> str:
        """Write every ``completed``, not yet acknowledged row to a clearing file.

        Returns the new batch id. ``uncertain`` rows go too, flagged ``grey`` = 1 with
        no TAC (clearing refuses them ``04`` until settled, §K6); the batch
        total counts ``completed`` amounts only. ``pending``, ``unknown`` and ``failed``
        rows are never exported. Rows stay unsent until :meth:`ack`, so exporting again
        without an ack writes the same rows under a new batch id. The file is
        written to a temporary name and fsynced; the batch is committed; only then
        is the file renamed into place. So a file under ``out_path`` always
        belongs to a committed batch, and a crash before the rename leaves at most
        a hidden ``.tmp`` file and an unacknowledged batch whose rows are exported
        again next time. Holds the write lock while writing (a validator's
        ``begin`` waits for it). ``fields``: values added to every line, e.g. the
        validator's ``acquirer_id`` and ``operator_id`` a Parquet upload carries;
        the encodings are in :mod:`sscard.services.clearing_export`.
        """
        if fmt not in ("csv", "jsonl", "parquet"):
            raise JournalInputError(
                "format must be csv, jsonl or parquet", "格式应为csv、jsonl或parquet"
            )
        out = Path(out_path)
        batch_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        tmp = out.with_name(f".{out.name}.{batch_id}.tmp")
        try:
            with self._write() as conn:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM taps WHERE state IN ('completed', 'uncertain')"
                    " AND sent_batch IS NULL ORDER BY id"
                ).fetchall()
                digest = self._write_clearing_file(
                    tmp, fmt, [{**_clearing_row(batch_id, r), **(fields or {})} for r in rows]
                )
                conn.execute(
                    "INSERT INTO batches (batch_id, created_at, format, path, row_count,"
                    " total_amount, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        batch_id,
                        _now(),
                        fmt,
                        str(out),
                        len(rows),
                        sum(r["amount"] for r in rows if r["state"] == TapState.COMPLETED),
                        digest,
                    ),
                )
                conn.executemany(
                    "INSERT INTO batch_taps (batch_id, tap_id) VALUES (?, ?)",
                    [(batch_id, r["id"]) for r in rows],
                )
            os.replace(tmp, out)
            _fsync_dir(out.parent)
        except OSError as exc:  # the batch is committed but has no file: never acked, harmless
            tmp.unlink(missing_ok=True)
            raise JournalWriteError(
                f"cannot place the clearing file ({exc.strerror})", "无法写入清算文件"
            ) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return batch_id

    @staticmethod
    def _write_clearing_file(tmp: Path, fmt: ExportFormat, lines: list[dict[str, Any]]) -> str:
        """Write ``tmp`` and fsync it; return the SHA-256 of its bytes."""
        from sscard.services import clearing_export

        data = clearing_export.encode(fmt, lines, CLEARING_FIELDS)
        try:
            with open_private(tmp, "wb", encoding=None) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise JournalWriteError(
                f"cannot write the clearing file ({exc.strerror})", "无法写入清算文件"
            ) from exc
        return hashlib.sha256(data).hexdigest()

    def batch(self, batch_id: str) -> BatchInfo:
        rows = self._read("SELECT * FROM batches WHERE batch_id = ?", (batch_id,))
        if not rows:
            raise UnknownBatch(
                f"unknown clearing batch {batch_id!r}", f"未知的清算批次{batch_id!r}"
            )
        r = rows[0]
        return BatchInfo(
            batch_id=r["batch_id"],
            created_at=datetime.fromisoformat(r["created_at"]),
            format=r["format"],
            path=r["path"],
            row_count=r["row_count"],
            total_amount=r["total_amount"],
            sha256=r["sha256"],
            acked_at=None if r["acked_at"] is None else datetime.fromisoformat(r["acked_at"]),
        )

    #: Shortest retention :meth:`purge` accepts: a metro exit, a repeat-tap check
    #: and a torn tap's recovery all look back at most a day.
    MIN_RETENTION = timedelta(days=1)

    def purge(self, older_than: timedelta, *, now: datetime | None = None) -> PurgeResult:
        """Delete what no one needs any more: the data-minimisation rule of the journal.

        Removed: rows clearing has (their batch acknowledged, :meth:`ack`) and
        ``failed`` rows (no money moved), last changed before ``now - older_than``.
        Never removed, whatever their age: ``pending`` and ``unknown`` rows (a torn
        debit's only record), and completed or grey rows not yet acknowledged
        (clearing does not have them). ``secure_delete`` and a WAL checkpoint keep
        the card numbers out of free pages and the WAL (PIPL Art. 19; Anhui
        regulation Art. 18; docs/privacy.md §3). Batches keep their totals.
        """
        if older_than < self.MIN_RETENTION:
            raise JournalInputError(
                f"retention shorter than {self.MIN_RETENTION.days} day refused",
                f"保留期不得短于{self.MIN_RETENTION.days}天",
            )
        cutoff = (now or datetime.now(UTC)) - older_than
        stamp = cutoff.astimezone(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._connection().execute("PRAGMA secure_delete=ON")
        with self._write() as conn:
            sent = "sent_batch IS NOT NULL AND updated_at < ?"
            failed = "state = 'failed' AND updated_at < ?"
            conn.execute(
                f"DELETE FROM batch_taps WHERE tap_id IN (SELECT id FROM taps WHERE {sent})",
                (stamp,),
            )
            removed_sent = conn.execute(f"DELETE FROM taps WHERE {sent}", (stamp,)).rowcount
            removed_failed = conn.execute(f"DELETE FROM taps WHERE {failed}", (stamp,)).rowcount
            kept = conn.execute(
                "SELECT count(*) FROM taps WHERE updated_at < ?", (stamp,)
            ).fetchone()[0]
        # the rows are gone either way; a failed checkpoint leaves it to the next one
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return PurgeResult(cutoff, removed_sent, removed_failed, int(kept))

    def ack(self, batch_id: str) -> AckResult:
        """Mark a batch's rows sent: call only after the clearing host confirmed the upload.

        Idempotent: acknowledging a batch again changes nothing. Rows that an
        earlier acknowledged batch already covered keep that batch id.
        """
        with self._write() as conn:
            batch = conn.execute(
                "SELECT acked_at FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
            if batch is None:
                raise UnknownBatch(
                    f"unknown clearing batch {batch_id!r}", f"未知的清算批次{batch_id!r}"
                )
            if batch["acked_at"] is not None:
                return AckResult(batch_id, 0, already_acked=True)
            cur = conn.execute(
                "UPDATE taps SET sent_batch = ?, updated_at = ? WHERE sent_batch IS NULL"
                " AND id IN (SELECT tap_id FROM batch_taps WHERE batch_id = ?)",
                (batch_id, _now(), batch_id),
            )
            conn.execute("UPDATE batches SET acked_at = ? WHERE batch_id = ?", (_now(), batch_id))
            return AckResult(batch_id, cur.rowcount, already_acked=False)
