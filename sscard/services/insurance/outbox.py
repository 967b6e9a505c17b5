"""The durable outbox: every request is written before it is sent.

Why: 2601 needs the original msgid (§M1.5), and after a
timeout or a crash only a journal written *before* sending tells the hospital
what may have happened. The file is SQLite in WAL mode. A new request is
committed with ``synchronous=FULL`` (it survives a power cut before one byte
leaves); an outcome is committed without a sync of its own: a power cut can
lose it, never the request, and a lost outcome is a ``pending`` row that the
recovery resolves by asking the platform, exactly as after a crash (the next
full-sync commit makes it durable anyway). It also holds the msgid counter,
which keeps msgids unique and monotonic across restarts (sscard profile,
"msgid and idempotency").

Row states (:class:`OutboxState`): ``pending`` (written, no answer yet),
``done`` (infcode 0), ``failed`` (refused, provably never sent, or found not
applied), ``unknown`` (no usable reply), ``reversed`` (undone or barred by a
2601). A settlement
cancelled by 2208 stays ``done`` with ``cancelled_by`` set. ``manual`` flags
rows a person must reconcile; ``unseen`` flags settlements made on the platform
whose receipt nobody has seen: found by a recovery after the sending process
died, or recorded by a desk that died before it handed the receipt out.

Sessions: every process that opens the outbox holds an exclusive ``flock`` on
its own lock file next to it (``<outbox>.session-<id>``) and stamps its rows
with the session id. A row
whose session's lock can be taken belongs to a process that has ended, so a
``pending`` row of it was orphaned by a crash and may be resolved; a row of a
live session is left alone (it may be on the wire right now).

Personal data at rest (regulation Art. 18): every request and every reply is
stored through one function, :func:`at_rest`, which masks names, ID and card
numbers, card identification codes and birth dates. The requests a recovery
resends byte-exact (2202-2205, 2208, 2601) carry none of these fields, so
masking leaves them intact; :func:`has_personal` guards that.

Rows are read by column name (``sqlite3.Row``), like every :class:`~sscard.sqlite.Store`,
so a column added later (see ``_ADDED_COLUMNS``) cannot shift what a reader sees.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sscard.cards.privacy import mask_card_number, mask_middle, mask_name, mask_ssn
from sscard.clock import beijing_now
from sscard.services.insurance.errors import InvalidRequest, OutboxError
from sscard.services.insurance.models import SetlInfo, Totals
from sscard.services.insurance.money import dumps, from_cents, loads, to_cents
from sscard.sqlite import Store, open_database, transaction

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: every other session counts as live
    fcntl = None  # type: ignore[assignment]


class OutboxState(StrEnum):
    """State of an outbox row (see the module docstring)."""

    PENDING = "pending"  # written; maybe on the wire
    DONE = "done"  # infcode 0
    FAILED = "failed"  # refused, provably never sent, or found not applied
    UNKNOWN = "unknown"  # no usable reply: the reconciliation decides
    REVERSED = "reversed"  # undone or barred by a 2601


#: States whose outcome is not known yet (what a recovery looks at).
OPEN_STATES = (OutboxState.PENDING, OutboxState.UNKNOWN)
_STATE_CHECK = ",".join(f"'{s}'" for s in OutboxState)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS msgid_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), ts TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    msgid TEXT PRIMARY KEY,
    infno TEXT NOT NULL,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({_STATE_CHECK})),
    psn_no TEXT NOT NULL DEFAULT '',
    insuplc_admdvs TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL,
    response TEXT,
    infcode INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    ref_msgid TEXT,
    setl_id TEXT,
    mdtrt_id TEXT,
    medfee_cents INTEGER,
    fund_cents INTEGER,
    acct_cents INTEGER,
    cash_cents INTEGER,
    balanced INTEGER,
    cancelled_by TEXT,
    reversed_by TEXT,
    manual INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    session TEXT NOT NULL DEFAULT '',
    unseen INTEGER NOT NULL DEFAULT 0,
    insutype TEXT NOT NULL DEFAULT '',
    clr_type TEXT NOT NULL DEFAULT '',
    clr_optins TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS reconciliations (
    day TEXT PRIMARY KEY, msgid TEXT NOT NULL, at TEXT NOT NULL, balanced INTEGER NOT NULL);
"""

#: Columns added after the first release (old outbox files get them on open).
_ADDED_COLUMNS = (
    ("session", "TEXT NOT NULL DEFAULT ''"),
    ("unseen", "INTEGER NOT NULL DEFAULT 0"),
    ("insutype", "TEXT NOT NULL DEFAULT ''"),
    ("clr_type", "TEXT NOT NULL DEFAULT ''"),
    ("clr_optins", "TEXT NOT NULL DEFAULT ''"),
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_day ON outbox (day, infno, state);
CREATE INDEX IF NOT EXISTS outbox_setl ON outbox (setl_id);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state);
CREATE INDEX IF NOT EXISTS outbox_visit ON outbox (mdtrt_id);
CREATE INDEX IF NOT EXISTS outbox_person ON outbox (psn_no, infno);
CREATE INDEX IF NOT EXISTS outbox_manual ON outbox (manual) WHERE manual = 1;
"""

#: How far back :meth:`Outbox.open_visits` looks (a desk's outbox keeps years of rows).
OPEN_VISIT_DAYS = 31

#: Personal fields of the national interface, masked at rest (regulation Art. 18).
_PERSONAL: dict[str, Callable[[str], str]] = {
    "certno": mask_ssn,
    "psn_cert_no": mask_ssn,
    "psn_name": mask_name,
    "mdtrt_cert_no": mask_card_number,
    "card_sn": lambda v: mask_middle(v, 6, 4),
    "brdy": lambda v: v[:4] + "-**-**" if len(v) >= 4 else "**",
    "hcard_basinfo": lambda v: "*" * min(len(v), 8),
    "hcard_chkinfo": lambda v: "*" * min(len(v), 8),
}


def minimise(value: Any) -> Any:
    """A copy of a request or reply with the personal fields masked (see _PERSONAL)."""
    if isinstance(value, dict):
        return {
            k: _PERSONAL[k](v) if k in _PERSONAL and isinstance(v, str) and v else minimise(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [minimise(v) for v in value]
    return value


def has_personal(value: Any) -> bool:
    """Does a request carry a personal field (so its stored copy is masked, not exact)?"""
    if isinstance(value, dict):
        return any(
            (k in _PERSONAL and isinstance(v, str) and v) or has_personal(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(has_personal(v) for v in value)
    return False


def at_rest(value: dict[str, Any]) -> str:
    """The one way a request or reply is written to the outbox: masked JSON."""
    return dumps(minimise(value))


def _visit_of(infno: str, envelope: dict[str, Any]) -> str | None:
    """The ``mdtrt_id`` a request belongs to, if any (for the visit recovery)."""
    body = envelope.get("input")
    if not isinstance(body, dict):
        return None
    for key in ("data", "mdtrtinfo"):
        node = body.get(key)
        if isinstance(node, dict) and node.get("mdtrt_id"):
            return str(node["mdtrt_id"])
    rows = body.get("feedetail")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return str(rows[0].get("mdtrt_id") or "") or None
    return None


@dataclass(frozen=True)
class OutboxRow:
    """One journal row; the stored request/response (masked) stay out of repr."""

    msgid: str
    infno: str
    day: str
    state: OutboxState
    psn_no: str
    insuplc_admdvs: str
    attempts: int
    infcode: int | None
    error: str | None
    ref_msgid: str | None
    setl_id: str | None
    cancelled_by: str | None
    reversed_by: str | None
    manual: bool
    note: str | None
    request: dict[str, Any] = field(repr=False)
    response: dict[str, Any] | None = field(repr=False)
    mdtrt_id: str | None = None
    session: str = ""
    unseen: bool = False

    @property
    def request_input(self) -> dict[str, Any]:
        value = self.request.get("input") or {}
        return value if isinstance(value, dict) else {}


def _now_text(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S")


class _Session:
    """This process's claim on the outbox: an exclusive flock on its own lock file,
    ``<outbox>.session-<id>`` next to the database (0600, removed on close)."""

    def __init__(self, outbox: Path) -> None:
        self.id = uuid.uuid4().hex[:16]
        self._prefix = outbox.name + ".session-"
        self._directory = outbox.parent
        self._fd: int | None = None
        if fcntl is None:  # pragma: no cover
            return
        self._fd = os.open(self._path(self.id), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _path(self, session: str) -> Path:
        return self._directory / f"{self._prefix}{session}"

    def close(self) -> None:
        if self._fd is not None:
            with suppress(OSError):
                self._path(self.id).unlink()
            os.close(self._fd)  # releases the lock
            self._fd = None

    def is_live(self, session: str) -> bool:
        """Does the process of ``session`` still run? (Its lock cannot be taken.)"""
        if session == self.id:
            return True
        if fcntl is None:  # pragma: no cover
            return True
        if not session:
            return False  # rows written before sessions existed
        try:
            fd = os.open(self._path(session), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def forget(self, session: str) -> None:
        """Remove the lock file of a session found dead (after its rows were settled)."""
        if session and session != self.id and not self.is_live(session):
            with suppress(OSError):
                self._path(session).unlink()


class Outbox(Store):
    """SQLite journal of one institution (``fixmedins_code``, 12 characters).

    Thread-safe: one connection guarded by a lock; ``BEGIN IMMEDIATE`` and a
    busy timeout make a second process (or a restarted client) on the same
    file safe too. ``clock``: Beijing wall-clock time by default.
    """

    def __init__(
        self,
        path: str | Path,
        fixmedins_code: str,
        *,
        clock: Callable[[], datetime] = beijing_now,
    ) -> None:
        if len(fixmedins_code) != 12:
            raise InvalidRequest("fixmedins_code must be 12 characters", "定点医药机构编号须为12位")
        self.path = Path(path)
        self.fixmedins_code = fixmedins_code
        self._clock = clock
        try:
            db = open_database(self.path, synchronous="FULL", busy_timeout=10.0)
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from None
        super().__init__(db, lock=threading.RLock())
        self._set_up(lambda: self._setup(fixmedins_code))
        self._session = _Session(self.path)

    def _open_error(self, exc: sqlite3.DatabaseError) -> OutboxError:
        return OutboxError(
            f"cannot open outbox {self.path.name}: {exc}", f"无法打开交易日志 {self.path.name}"
        )

    def _setup(self, fixmedins_code: str) -> None:
        """Create or upgrade the tables (columns added in place), then claim the file."""
        try:
            with self._lock:
                db = self._connection()
                db.executescript(_SCHEMA)
                have = {r["name"] for r in db.execute("PRAGMA table_info(outbox)")}
                for column, decl in _ADDED_COLUMNS:
                    if column not in have:
                        db.execute(f"ALTER TABLE outbox ADD COLUMN {column} {decl}")
                db.executescript(_INDEXES)
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from None
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='fixmedins_code'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('fixmedins_code', ?)", (fixmedins_code,))
            elif row["value"] != fixmedins_code:
                raise OutboxError(
                    "outbox belongs to another institution", "交易日志属于另一家定点机构"
                )

    def _closed_error(self) -> OutboxError:
        return OutboxError("the outbox is closed", "交易日志已关闭")

    @property
    def session(self) -> str:
        return self._session.id

    def is_live(self, session: str) -> bool:
        return self._session.is_live(session)

    def forget_session(self, session: str) -> None:
        self._session.forget(session)

    def close(self) -> None:
        super().close()
        session = getattr(self, "_session", None)  # absent if opening failed
        if session is not None:
            session.close()

    @contextmanager
    def _unsynced(self) -> Iterator[None]:
        """The lock, with this one commit not synced (an outcome, see module docstring)."""
        with self._lock:
            db = self._connection()
            db.execute("PRAGMA synchronous=NORMAL")
            try:
                yield
            finally:
                db.execute("PRAGMA synchronous=FULL")

    def _tx_outcome(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._connection(), self._unsynced(), commit=self._commit)

    # -- writing -----------------------------------------------------------

    def _next_msgid(self, db: sqlite3.Connection, now: datetime) -> str:
        """fixmedins_code(12) + yyyyMMddHHmmss(14) + sequence(4), strictly increasing.

        If the clock goes back, the last timestamp is kept; after 9999 messages
        in one second the timestamp borrows the next second.
        """
        stamp = now.strftime("%Y%m%d%H%M%S")
        row = db.execute("SELECT ts, seq FROM msgid_state WHERE id = 1").fetchone()
        if row is None or stamp > row["ts"]:
            ts, seq = stamp, 1
        elif row["seq"] < 9999:
            ts, seq = row["ts"], row["seq"] + 1
        else:
            later = datetime.strptime(row["ts"], "%Y%m%d%H%M%S") + timedelta(seconds=1)
            ts, seq = later.strftime("%Y%m%d%H%M%S"), 1
        db.execute("INSERT OR REPLACE INTO msgid_state (id, ts, seq) VALUES (1, ?, ?)", (ts, seq))
        return f"{self.fixmedins_code}{ts}{seq:04d}"

    def create(
        self,
        infno: str,
        build: Callable[[str, datetime], dict[str, Any]],
        *,
        psn_no: str = "",
        insuplc_admdvs: str = "",
        ref_msgid: str | None = None,
        sending: bool = True,
    ) -> tuple[str, dict[str, Any]]:
        """Allocate a msgid, build the envelope with it and commit it as ``pending``.

        ``sending``: the caller sends it at once, so the first attempt is counted
        in the same commit (one sync per request instead of two).
        """
        now = self._clock()
        with self._tx() as db:
            msgid = self._next_msgid(db, now)
            envelope = build(msgid, now)
            db.execute(
                "INSERT INTO outbox (msgid, infno, day, created_at, updated_at, state, psn_no,"
                " insuplc_admdvs, request, ref_msgid, mdtrt_id, session, attempts)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    msgid,
                    infno,
                    now.date().isoformat(),
                    _now_text(now),
                    _now_text(now),
                    OutboxState.PENDING,
                    psn_no,
                    insuplc_admdvs,
                    at_rest(envelope),
                    ref_msgid,
                    _visit_of(infno, envelope),
                    self.session,
                    int(sending),
                ),
            )
        return msgid, envelope

    def _update(self, msgid: str, **values: Any) -> None:
        values["updated_at"] = _now_text(self._clock())
        names = ", ".join(f"{k} = ?" for k in values)
        with self._tx_outcome() as db:
            cur = db.execute(
                f"UPDATE outbox SET {names} WHERE msgid = ?", (*values.values(), msgid)
            )
            if cur.rowcount != 1:
                raise OutboxError(f"no outbox row {msgid}", f"交易日志中无报文 {msgid}")

    def attempt(self, msgid: str) -> None:
        """Count one more send attempt (the row is pending while it is on the wire)."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, state = ?, updated_at = ?,"
                " session = ? WHERE msgid = ?",
                (OutboxState.PENDING, _now_text(self._clock()), self.session, msgid),
            )

    def finish(
        self,
        msgid: str,
        state: OutboxState,
        *,
        response: dict[str, Any] | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> None:
        """Record the outcome of a request (its reply, masked, if there is one)."""
        state = OutboxState(state)  # ValueError for a state that does not exist
        infcode = response.get("infcode") if response else None
        values: dict[str, Any] = {
            "state": state,
            "response": at_rest(response) if response is not None else None,
            "infcode": int(infcode) if infcode is not None else None,
            "error": error,
        }
        output = (response or {}).get("output")
        data = output.get("data") if isinstance(output, dict) else None
        if isinstance(data, dict) and data.get("mdtrt_id"):
            values["mdtrt_id"] = str(data["mdtrt_id"])  # 2201: the visit it opened
        if note is not None:
            values["note"] = note
        self._update(msgid, **values)

    def record_settlement(
        self,
        msgid: str,
        info: SetlInfo,
        *,
        response: dict[str, Any] | None = None,
        fund_total_includes_acct: bool = False,
        note: str = "",
        unseen: bool = False,
    ) -> None:
        """Mark a 2207 done with its amounts (as returned, never recomputed), in one commit.

        ``unseen``: nobody has handed out its receipt yet (see :meth:`mark_seen`).
        """
        extra: dict[str, Any] = {}
        if response is not None:
            extra = {"response": at_rest(response), "infcode": int(response.get("infcode") or 0)}
        self._update(
            msgid,
            **extra,
            state=OutboxState.DONE,
            setl_id=info.setl_id,
            mdtrt_id=info.mdtrt_id,
            medfee_cents=to_cents(info.medfee_sumamt),
            fund_cents=to_cents(info.fund_pay_sumamt),
            acct_cents=to_cents(info.acct_pay),
            cash_cents=to_cents(info.psn_cash_pay),
            balanced=int(info.balances(fund_total_includes_acct)),
            insutype=info.insutype,
            clr_type=info.clr_type,
            clr_optins=info.clr_optins,
            note=note or None,
            unseen=int(unseen),
        )

    def mark_cancelled(self, setl_id: str, by_msgid: str) -> None:
        with self._tx_outcome() as db:
            db.execute(
                "UPDATE outbox SET cancelled_by = ?, unseen = 0 WHERE infno = '2207'"
                " AND setl_id = ? AND state = ?",
                (by_msgid, setl_id, OutboxState.DONE),
            )

    def mark_reversed(self, msgid: str, by_msgid: str) -> None:
        self._update(msgid, state=OutboxState.REVERSED, reversed_by=by_msgid)

    def flag_manual(self, msgid: str, note: str) -> None:
        self._update(msgid, manual=1, note=note)

    def clear_manual(self, msgid: str) -> None:
        self._update(msgid, manual=0)

    def add_note(self, msgid: str, note: str) -> None:
        self._update(msgid, note=note)

    def mark_seen(self, msgid: str) -> None:
        """The receipt of this settlement was handed out."""
        self._update(msgid, unseen=0)

    def acknowledge_unseen(self, psn_no: str) -> int:
        """The desk knows about the unseen settlements of ``psn_no``; returns how many."""
        with self._tx_outcome() as db:
            cur = db.execute(
                "UPDATE outbox SET unseen = 0 WHERE psn_no = ? AND infno = '2207' AND unseen = 1",
                (psn_no,),
            )
            return int(cur.rowcount)

    def purge_resend_data(self, day: date) -> int:
        """Mask what a balanced ``day`` still holds unmasked, and scrub the free pages.

        Every request and reply is masked when it is written (:func:`at_rest`), so
        for rows of this version there is nothing to rewrite; rows written by an
        older outbox, which kept requests other than 1101 whole for byte-exact
        resends, are reduced to :func:`minimise` (names, ID and card numbers, birth
        dates masked) once the day's reconciliation balances. What later steps need stays: msgid, psn_no, setl_id, mdtrt_id,
        ipt_otp_no, amounts (a 2208 cancellation still works). Rows still ``pending`` or
        ``unknown`` are left alone. ``secure_delete`` and a WAL checkpoint keep the old
        bytes out of free pages and the WAL (regulation.md Art. 18; docs/privacy.md).
        Returns the number of rows rewritten.
        """
        with self._lock:
            db = self._connection()
            db.execute("PRAGMA secure_delete=ON")
            found = db.execute(
                "SELECT msgid, request, response FROM outbox WHERE day = ? AND state NOT IN (?, ?)",
                (day.isoformat(), *OPEN_STATES),
            ).fetchall()
        changed = []
        for r in found:
            request, response = r["request"], r["response"]
            new_request = dumps(minimise(loads(request)))
            new_response = None if response is None else dumps(minimise(loads(response)))
            if new_request != request or new_response != response:
                changed.append((new_request, new_response, r["msgid"]))
        if changed:
            with self._tx() as db:
                db.executemany(
                    "UPDATE outbox SET request = ?, response = ? WHERE msgid = ?", changed
                )
            with self._lock:
                self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(changed)

    def record_reconciliation(self, day: date, msgid: str, balanced: bool) -> None:
        with self._tx_outcome() as db:
            db.execute(
                "INSERT OR REPLACE INTO reconciliations VALUES (?,?,?,?)",
                (day.isoformat(), msgid, _now_text(self._clock()), int(balanced)),
            )

    # -- reading -----------------------------------------------------------

    @staticmethod
    def _row(r: sqlite3.Row) -> OutboxRow:
        """A row by column name (``SELECT *``: a column added later shifts nothing)."""
        return OutboxRow(
            msgid=r["msgid"],
            infno=r["infno"],
            day=r["day"],
            state=OutboxState(r["state"]),
            psn_no=r["psn_no"],
            insuplc_admdvs=r["insuplc_admdvs"],
            attempts=r["attempts"],
            infcode=r["infcode"],
            error=r["error"],
            ref_msgid=r["ref_msgid"],
            setl_id=r["setl_id"],
            cancelled_by=r["cancelled_by"],
            reversed_by=r["reversed_by"],
            manual=bool(r["manual"]),
            note=r["note"],
            request=loads(r["request"]),
            response=loads(r["response"]) if r["response"] is not None else None,
            mdtrt_id=r["mdtrt_id"],
            session=r["session"],
            unseen=bool(r["unseen"]),
        )

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, args).fetchall()

    def _select(
        self, where: str, args: tuple[Any, ...] = (), *, source: str = "outbox"
    ) -> list[OutboxRow]:
        found = self._query(f"SELECT * FROM {source} WHERE {where} ORDER BY msgid", args)
        return [self._row(r) for r in found]

    def get(self, msgid: str) -> OutboxRow:
        found = self._select("msgid = ?", (msgid,))
        if not found:
            raise OutboxError(f"no outbox row {msgid}", f"交易日志中无报文 {msgid}")
        return found[0]

    def rows(
        self,
        *,
        day: date | None = None,
        infno: str | None = None,
        states: tuple[OutboxState, ...] = (),
    ) -> list[OutboxRow]:
        sql = "1=1"
        args: list[Any] = []
        if day is not None:
            sql += " AND day = ?"
            args.append(day.isoformat())
        if infno is not None:
            sql += " AND infno = ?"
            args.append(infno)
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        return self._select(sql, tuple(args))

    def unresolved(self, day: date | None = None) -> list[OutboxRow]:
        """Rows whose outcome is not known (pending, unknown) or that await a person
        (two indexed lookups: this runs before every command)."""
        sql = (
            "msgid IN (SELECT msgid FROM outbox WHERE state IN (?, ?)"
            " UNION SELECT msgid FROM outbox WHERE manual = 1)"
        )
        if day is None:
            return self._select(sql, OPEN_STATES)
        return self._select(sql + " AND day = ?", (*OPEN_STATES, day.isoformat()))

    def of_visit(self, mdtrt_id: str) -> list[OutboxRow]:
        return self._select("mdtrt_id = ?", (mdtrt_id,))

    def open_visits(self) -> list[OutboxRow]:
        """2201 rows of the last :data:`OPEN_VISIT_DAYS` days whose visit is still
        registered as far as this outbox knows: no live settlement (2207 done and not
        cancelled) and no 2202 done."""
        since = (self._clock().date() - timedelta(days=OPEN_VISIT_DAYS)).isoformat()
        done = OutboxState.DONE
        return self._select(
            "day >= ? AND infno = '2201' AND state = ? AND mdtrt_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM outbox c WHERE c.mdtrt_id = outbox.mdtrt_id"
            "   AND c.infno = '2202' AND c.state = ?)"
            " AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.mdtrt_id = outbox.mdtrt_id"
            "   AND s.infno = '2207' AND s.state = ? AND s.cancelled_by IS NULL)",
            (since, done, done, done),
            source="outbox INDEXED BY outbox_day",
        )

    def blockers(self, psn_no: str) -> list[OutboxRow]:
        """2207 rows of ``psn_no`` that must be dealt with before settling them again:
        outcome unknown, awaiting a person, or made with a receipt nobody has seen."""
        return self._select(
            "psn_no = ? AND infno = '2207' AND (state IN (?, ?) OR manual = 1"
            " OR (unseen = 1 AND state = ? AND cancelled_by IS NULL))",
            (psn_no, *OPEN_STATES, OutboxState.DONE),
        )

    def last_msgid(self) -> str | None:
        (r,) = self._query("SELECT max(msgid) AS msgid FROM outbox")
        return str(r["msgid"]) if r["msgid"] is not None else None

    def day_totals(self, day: date) -> Totals:
        """Valid settlements of ``day``: 2207 done and not cancelled by 2208."""
        return self.group_totals(day)

    def group_totals(self, day: date, group: tuple[str, str, str] | None = None) -> Totals:
        """:meth:`day_totals` of one (insutype, clr_type, clr_optins) group, or all."""
        sql = (
            "SELECT count(*) AS n, coalesce(sum(medfee_cents),0) AS medfee,"
            " coalesce(sum(fund_cents),0) AS fund, coalesce(sum(acct_cents),0) AS acct,"
            " coalesce(sum(cash_cents),0) AS cash FROM outbox"
            " WHERE day = ? AND infno = '2207' AND state = ? AND cancelled_by IS NULL"
        )
        args: tuple[Any, ...] = (day.isoformat(), OutboxState.DONE)
        if group is not None:
            sql += " AND insutype = ? AND clr_type = ? AND clr_optins = ?"
            args += group
        (r,) = self._query(sql, args)
        return Totals(
            r["n"],
            from_cents(r["medfee"]),
            from_cents(r["fund"]),
            from_cents(r["acct"]),
            from_cents(r["cash"]),
        )

    def settlement_groups(self, day: date) -> list[tuple[str, str, str]]:
        """(insutype, clr_type, clr_optins) of the day's recorded settlements (3201 groups)."""
        found = self._query(
            "SELECT DISTINCT insutype, clr_type, clr_optins FROM outbox WHERE day = ?"
            " AND infno = '2207' AND setl_id IS NOT NULL ORDER BY 1, 2, 3",
            (day.isoformat(),),
        )
        return [(str(r["insutype"]), str(r["clr_type"]), str(r["clr_optins"])) for r in found]

    def unbalanced(self, day: date) -> list[str]:
        """msgids of the day's settlements whose split does not add up."""
        found = self._query(
            "SELECT msgid FROM outbox WHERE day = ? AND infno = '2207' AND balanced = 0",
            (day.isoformat(),),
        )
        return [r["msgid"] for r in found]

    def reconciled(self, day: date) -> bool:
        return self.reconciliation(day) is not None

    def reconciliation(self, day: date) -> str | None:
        """msgid of the day's last 3201, if any."""
        found = self._query("SELECT msgid FROM reconciliations WHERE day = ?", (day.isoformat(),))
        return str(found[0]["msgid"]) if found else None
