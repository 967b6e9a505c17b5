"""The durable outbox: every request is written before it is sent.

Why: 2601 needs the original msgid (medical-insurance.md §1.5), and after a
timeout only a journal written *before* sending tells the hospital what may
have happened. The file is SQLite in WAL mode with ``synchronous=FULL`` so a
committed row survives a power cut. It also holds the msgid counter, which
keeps msgids unique and monotonic across restarts (sscard profile, "msgid and
idempotency").

Row states: ``pending`` (written, no answer yet), ``done`` (infcode 0),
``failed`` (refused, or provably never sent), ``unknown`` (no usable reply),
``reversed`` (undone or barred by a 2601). A settlement cancelled by 2208
stays ``done`` with ``cancelled_by`` set. ``manual`` flags rows a person must
reconcile.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sscard.cards.privacy import mask_card_number, mask_middle, mask_name, mask_ssn
from sscard.services.insurance.errors import InvalidRequest, OutboxError
from sscard.services.insurance.models import SetlInfo, Totals
from sscard.services.insurance.money import dumps, from_cents, loads, to_cents
from sscard.sqlite import Store, open_database

STATES = ("pending", "done", "failed", "unknown", "reversed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS msgid_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), ts TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    msgid TEXT PRIMARY KEY,
    infno TEXT NOT NULL,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending','done','failed','unknown','reversed')),
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
    note TEXT
);
CREATE INDEX IF NOT EXISTS outbox_day ON outbox (day, infno, state);
CREATE INDEX IF NOT EXISTS outbox_setl ON outbox (setl_id);
CREATE TABLE IF NOT EXISTS reconciliations (
    day TEXT PRIMARY KEY, msgid TEXT NOT NULL, at TEXT NOT NULL, balanced INTEGER NOT NULL);
"""


#: Personal fields of the national interface that the outbox keeps masked
#: (personal data at rest, regulation Art. 18): in every reply, and in the
#: requests of person queries (1101), which are asked again rather than resent.
#: Requests of the other transactions are kept byte-exact, because an identical
#: resend under the same msgid is how a lost reply is recovered idempotently;
#: they carry psn_no and the card number, not names or ID numbers.
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


_MINIMISED_REQUESTS = frozenset({"1101"})


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


@dataclass(frozen=True)
class OutboxRow:
    """One journal row; the raw request/response (personal data) stay out of repr."""

    msgid: str
    infno: str
    day: str
    state: str
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

    @property
    def request_input(self) -> dict[str, Any]:
        value = self.request.get("input") or {}
        return value if isinstance(value, dict) else {}


def _now_text(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S")


class Outbox(Store):
    """SQLite journal of one institution (``fixmedins_code``, 12 characters).

    Thread-safe: one connection guarded by a lock; ``BEGIN IMMEDIATE`` and a
    busy timeout make a second process (or a restarted client) on the same
    file safe too.
    """

    def __init__(
        self,
        path: str | Path,
        fixmedins_code: str,
        *,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if len(fixmedins_code) != 12:
            raise InvalidRequest("fixmedins_code must be 12 characters", "定点医药机构编号须为12位")
        self.path = Path(path)
        self.fixmedins_code = fixmedins_code
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = open_database(self.path, synchronous="FULL", busy_timeout=10.0)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise OutboxError(
                f"cannot open outbox {self.path.name}: {exc}", f"无法打开交易日志 {self.path.name}"
            ) from None
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='fixmedins_code'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('fixmedins_code', ?)", (fixmedins_code,))
            elif row[0] != fixmedins_code:
                raise OutboxError(
                    "outbox belongs to another institution", "交易日志属于另一家定点机构"
                )

    # -- writing -----------------------------------------------------------

    def _next_msgid(self, db: sqlite3.Connection, now: datetime) -> str:
        """fixmedins_code(12) + yyyyMMddHHmmss(14) + sequence(4), strictly increasing.

        If the clock goes back, the last timestamp is kept; after 9999 messages
        in one second the timestamp borrows the next second.
        """
        stamp = now.strftime("%Y%m%d%H%M%S")
        row = db.execute("SELECT ts, seq FROM msgid_state WHERE id = 1").fetchone()
        if row is None or stamp > row[0]:
            ts, seq = stamp, 1
        elif row[1] < 9999:
            ts, seq = row[0], row[1] + 1
        else:
            later = datetime.strptime(row[0], "%Y%m%d%H%M%S") + timedelta(seconds=1)
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
    ) -> tuple[str, dict[str, Any]]:
        """Allocate a msgid, build the envelope with it and commit it as ``pending``."""
        now = self._clock()
        with self._tx() as db:
            msgid = self._next_msgid(db, now)
            envelope = build(msgid, now)
            db.execute(
                "INSERT INTO outbox (msgid, infno, day, created_at, updated_at, state, psn_no,"
                " insuplc_admdvs, request, ref_msgid) VALUES (?,?,?,?,?,'pending',?,?,?,?)",
                (
                    msgid,
                    infno,
                    now.date().isoformat(),
                    _now_text(now),
                    _now_text(now),
                    psn_no,
                    insuplc_admdvs,
                    dumps(minimise(envelope) if infno in _MINIMISED_REQUESTS else envelope),
                    ref_msgid,
                ),
            )
        return msgid, envelope

    def _update(self, msgid: str, **values: Any) -> None:
        values["updated_at"] = _now_text(self._clock())
        names = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE outbox SET {names} WHERE msgid = ?", (*values.values(), msgid)
            )
            if cur.rowcount != 1:
                raise OutboxError(f"no outbox row {msgid}", f"交易日志中无报文 {msgid}")

    def attempt(self, msgid: str) -> None:
        """Count one send attempt (the row is pending while it is on the wire)."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, state = 'pending', updated_at = ?"
                " WHERE msgid = ?",
                (_now_text(self._clock()), msgid),
            )

    def finish(
        self,
        msgid: str,
        state: str,
        *,
        response: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if state not in STATES:
            raise ValueError(state)
        infcode = response.get("infcode") if response else None
        self._update(
            msgid,
            state=state,
            response=dumps(minimise(response)) if response is not None else None,
            infcode=int(infcode) if infcode is not None else None,
            error=error,
        )

    def record_settlement(
        self,
        msgid: str,
        info: SetlInfo,
        *,
        response: dict[str, Any] | None = None,
        fund_total_includes_acct: bool = False,
        note: str = "",
    ) -> None:
        """Mark a 2207 done with its amounts (as returned, never recomputed), in one commit."""
        extra: dict[str, Any] = {}
        if response is not None:
            extra = {"response": dumps(response), "infcode": int(response.get("infcode") or 0)}
        self._update(
            msgid,
            **extra,
            state="done",
            setl_id=info.setl_id,
            mdtrt_id=info.mdtrt_id,
            medfee_cents=to_cents(info.medfee_sumamt),
            fund_cents=to_cents(info.fund_pay_sumamt),
            acct_cents=to_cents(info.acct_pay),
            cash_cents=to_cents(info.psn_cash_pay),
            balanced=int(info.balances(fund_total_includes_acct)),
            note=note or None,
        )

    def mark_cancelled(self, setl_id: str, by_msgid: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET cancelled_by = ? WHERE infno = '2207' AND setl_id = ?"
                " AND state = 'done'",
                (by_msgid, setl_id),
            )

    def mark_reversed(self, msgid: str, by_msgid: str) -> None:
        self._update(msgid, state="reversed", reversed_by=by_msgid)

    def flag_manual(self, msgid: str, note: str) -> None:
        self._update(msgid, manual=1, note=note)

    def purge_resend_data(self, day: date) -> int:
        """Mask the personal fields kept for byte-exact resends, once ``day`` has balanced.

        Requests other than 1101 are kept whole so that a lost reply can be recovered
        by resending them unchanged (module docstring); after the day's reconciliation
        balances nothing of that day is resent or reversed any more (2601 is barred
        after 3201, reconcile.py), so what was kept for it goes: every request and reply
        of the day is reduced to :func:`minimise` (names, ID and card numbers, birth
        dates masked). What later steps need stays: msgid, psn_no, setl_id, mdtrt_id,
        ipt_otp_no, amounts (a 2208 cancellation still works). Rows still ``pending`` or
        ``unknown`` are left alone. ``secure_delete`` and a WAL checkpoint keep the old
        bytes out of free pages and the WAL (regulation.md Art. 18; docs/privacy.md).
        Returns the number of rows rewritten.
        """
        with self._lock:
            self._db.execute("PRAGMA secure_delete=ON")
            found = self._db.execute(
                "SELECT msgid, request, response FROM outbox"
                " WHERE day = ? AND state NOT IN ('pending', 'unknown')",
                (day.isoformat(),),
            ).fetchall()
        changed = []
        for msgid, request, response in found:
            new_request = dumps(minimise(loads(request)))
            new_response = None if response is None else dumps(minimise(loads(response)))
            if new_request != request or new_response != response:
                changed.append((new_request, new_response, msgid))
        if changed:
            with self._tx() as db:
                db.executemany(
                    "UPDATE outbox SET request = ?, response = ? WHERE msgid = ?", changed
                )
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(changed)

    def record_reconciliation(self, day: date, msgid: str, balanced: bool) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO reconciliations VALUES (?,?,?,?)",
                (day.isoformat(), msgid, _now_text(self._clock()), int(balanced)),
            )

    # -- reading -----------------------------------------------------------

    _COLUMNS = (
        "msgid, infno, day, state, psn_no, insuplc_admdvs, attempts, infcode, error, ref_msgid,"
        " setl_id, cancelled_by, reversed_by, manual, note, request, response"
    )

    @staticmethod
    def _row(r: tuple[Any, ...]) -> OutboxRow:
        return OutboxRow(
            msgid=r[0],
            infno=r[1],
            day=r[2],
            state=r[3],
            psn_no=r[4],
            insuplc_admdvs=r[5],
            attempts=r[6],
            infcode=r[7],
            error=r[8],
            ref_msgid=r[9],
            setl_id=r[10],
            cancelled_by=r[11],
            reversed_by=r[12],
            manual=bool(r[13]),
            note=r[14],
            request=loads(r[15]),
            response=loads(r[16]) if r[16] is not None else None,
        )

    def get(self, msgid: str) -> OutboxRow:
        with self._lock:
            r = self._db.execute(
                f"SELECT {self._COLUMNS} FROM outbox WHERE msgid = ?", (msgid,)
            ).fetchone()
        if r is None:
            raise OutboxError(f"no outbox row {msgid}", f"交易日志中无报文 {msgid}")
        return self._row(r)

    def rows(
        self, *, day: date | None = None, infno: str | None = None, states: tuple[str, ...] = ()
    ) -> list[OutboxRow]:
        sql = f"SELECT {self._COLUMNS} FROM outbox WHERE 1=1"
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
        with self._lock:
            found = self._db.execute(sql + " ORDER BY msgid", args).fetchall()
        return [self._row(r) for r in found]

    def last_msgid(self) -> str | None:
        with self._lock:
            r = self._db.execute("SELECT max(msgid) FROM outbox").fetchone()
        return r[0] if r else None

    def day_totals(self, day: date) -> Totals:
        """Valid settlements of ``day``: 2207 done and not cancelled by 2208."""
        with self._lock:
            r = self._db.execute(
                "SELECT count(*), coalesce(sum(medfee_cents),0), coalesce(sum(fund_cents),0),"
                " coalesce(sum(acct_cents),0), coalesce(sum(cash_cents),0) FROM outbox"
                " WHERE day = ? AND infno = '2207' AND state = 'done' AND cancelled_by IS NULL",
                (day.isoformat(),),
            ).fetchone()
        return Totals(r[0], from_cents(r[1]), from_cents(r[2]), from_cents(r[3]), from_cents(r[4]))

    def unbalanced(self, day: date) -> list[str]:
        """msgids of the day's settlements whose split does not add up."""
        with self._lock:
            found = self._db.execute(
                "SELECT msgid FROM outbox WHERE day = ? AND infno = '2207' AND balanced = 0",
                (day.isoformat(),),
            ).fetchall()
        return [r[0] for r in found]

    def reconciled(self, day: date) -> bool:
        with self._lock:
            r = self._db.execute(
                "SELECT 1 FROM reconciliations WHERE day = ?", (day.isoformat(),)
            ).fetchone()
        return r is not None
