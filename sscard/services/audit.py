"""The privacy audit log: one SQLite row per identity check, with no full personal data.

The regulation asks for privacy protection, an audit log and minimal retention
(regulation Art. 18). So a row holds when, where (terminal),
why (scenario), what came out (result, reason codes) and *who* only as masks
(张*三, 3401**********1234, a masked card identification code). :meth:`AuditLog.record`
takes the raw values and masks them itself, so no caller can forget; terminal IDs,
scenarios, results and reason codes must be short ASCII codes, which keeps free text
(and with it names) out of the other columns. Rows older than the retention period
are deleted when the log is opened, by a write at most every ``purge_interval_s``
seconds (default 60: a row outlives its retention by at most a minute, and a busy
service does not run the DELETE per row), and by :meth:`AuditLog.purge`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sscard.cards.privacy import mask_card_id, mask_name, mask_ssn
from sscard.errors import SscardError
from sscard.sqlite import Store, Synchronous, open_database, state_path

log = logging.getLogger(__name__)

#: Default retention (sscard choice: the reference sets no period; "minimal retention").
DEFAULT_RETENTION_DAYS = 30.0
#: How often a write runs the retention DELETE (seconds of the log's clock).
DEFAULT_PURGE_INTERVAL_S = 60.0

_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ID_LIKE = re.compile(r"[0-9]{15}")  # a citizen ID number (15 or 18 digits) is never a code

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    terminal_id TEXT NOT NULL,
    scenario TEXT NOT NULL,
    result TEXT NOT NULL,
    subject_name TEXT NOT NULL DEFAULT '',
    subject_ssn TEXT NOT NULL DEFAULT '',
    subject_card TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
"""


class AuditError(SscardError):
    """The audit log cannot be written or read, or a field is not a plain code."""

    message_en = "audit log error"
    message_zh = "审计日志错误"


def default_path() -> Path:
    """``$SSCARD_AUDIT_DB``, else ``$SSCARD_STATE_DIR`` (default ~/.local/state/sscard)."""
    return state_path("SSCARD_AUDIT_DB", "audit.sqlite3")


@dataclass(frozen=True)
class AuditRecord:
    """One audit row as stored (already masked)."""

    id: int
    at: float
    terminal_id: str
    scenario: str
    result: str
    subject_name: str
    subject_ssn: str
    subject_card: str
    reasons: tuple[str, ...]

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = self.time.isoformat(timespec="seconds")
        out["reasons"] = list(self.reasons)
        return out


def check_code(field: str, value: str) -> str:
    """``value`` if it is a plain code (no spaces, no CJK: so no names), else AuditError."""
    if not _CODE.fullmatch(value) or _ID_LIKE.search(value):
        raise AuditError(
            f"audit {field} must be 1-64 ASCII letters, digits or _.:- (no ID numbers)",
            f"审计字段 {field} 须为 1-64 个 ASCII 字母、数字或 _.:-（不得含身份证号）",
        )
    return value


def _timestamp(value: float | datetime) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


class AuditLog(Store):
    """Append-only identity-check log in one SQLite file (WAL; several processes may write)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention_days: float | None = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
        purge_interval_s: float = DEFAULT_PURGE_INTERVAL_S,
        synchronous: Synchronous | None = None,
    ) -> None:
        if retention_days is not None and retention_days <= 0:
            raise AuditError("retention must be positive", "保存期限须为正数")
        if purge_interval_s < 0:
            raise AuditError("purge interval must not be negative", "清理间隔不能为负数")
        self.path = Path(path)
        self.retention_days = retention_days
        self.purge_interval_s = purge_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._purged_at: float | None = None
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # synchronous: SQLite's default unless the caller chooses (the reader
            # service takes NORMAL: in the OS before the answer leaves, no fsync).
            self._db = open_database(path, synchronous=synchronous, busy_timeout=5.0)
            # Deleted rows are overwritten, not left in free pages (minimal retention).
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
            with self._lock:  # at start-up: a log reopened after a pause is trimmed at once
                self._purge_locked(self._clock())
        except (sqlite3.Error, OSError) as exc:
            raise AuditError(
                f"cannot open audit log {self.path.name}: {type(exc).__name__}",
                f"无法打开审计日志 {self.path.name}",
            ) from exc

    def record(
        self,
        *,
        terminal_id: str,
        scenario: str,
        result: str,
        reasons: Iterable[str] = (),
        name: str | None = None,
        ssn: str | None = None,
        card_id_code: bytes | str | None = None,
    ) -> AuditRecord:
        """Append one check. ``name``/``ssn``/``card_id_code`` are masked here, never stored."""
        rec = AuditRecord(
            id=0,
            at=self._clock(),
            terminal_id=check_code("terminal_id", terminal_id),
            scenario=check_code("scenario", scenario),
            result=check_code("result", result),
            subject_name=mask_name(name) if name else "",
            subject_ssn=mask_ssn(ssn.strip()) if ssn else "",
            subject_card=mask_card_id(card_id_code) if card_id_code else "",
            reasons=tuple(check_code("reason", r) for r in reasons),
        )
        try:
            with self._tx() as db:
                if self._purge_due(rec.at):
                    self._purge_locked(rec.at)
                cur = db.execute(
                    "INSERT INTO audit (at, terminal_id, scenario, result, subject_name,"
                    " subject_ssn, subject_card, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rec.at,
                        rec.terminal_id,
                        rec.scenario,
                        rec.result,
                        rec.subject_name,
                        rec.subject_ssn,
                        rec.subject_card,
                        json.dumps(rec.reasons),
                    ),
                )
        except sqlite3.Error as exc:
            raise AuditError(
                f"audit write failed: {type(exc).__name__}", "审计日志写入失败"
            ) from exc
        rec = replace(rec, id=cur.lastrowid or 0)
        log.debug("audit #%d %s %s %s", rec.id, rec.scenario, rec.result, rec.subject_name)
        return rec

    def _purge_due(self, now: float) -> bool:
        """Time for the retention DELETE: never run yet, ``purge_interval_s`` passed, or the
        clock went back (then the next interval counts from the new time)."""
        last = self._purged_at
        return last is None or now < last or now - last >= self.purge_interval_s

    def _purge_locked(self, now: float) -> int:
        self._purged_at = now
        if self.retention_days is None:
            return 0
        cutoff = now - self.retention_days * 86400.0
        return self._db.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount

    def purge(self, now: float | datetime | None = None) -> int:
        """Delete rows older than the retention period; return how many."""
        with self._lock:
            try:
                return self._purge_locked(self._clock() if now is None else _timestamp(now))
            except sqlite3.Error as exc:
                raise AuditError(
                    f"audit purge failed: {type(exc).__name__}", "审计日志清理失败"
                ) from exc

    def query(
        self,
        since: float | datetime | None = None,
        *,
        until: float | datetime | None = None,
        terminal_id: str | None = None,
        scenario: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Rows in time order, optionally filtered by time range, terminal and scenario."""
        sql = "SELECT id, at, terminal_id, scenario, result, subject_name, subject_ssn,"
        sql += " subject_card, reasons FROM audit WHERE 1=1"
        args: list[Any] = []
        if since is not None:
            sql += " AND at >= ?"
            args.append(_timestamp(since))
        if until is not None:
            sql += " AND at < ?"
            args.append(_timestamp(until))
        if terminal_id is not None:
            sql += " AND terminal_id = ?"
            args.append(terminal_id)
        if scenario is not None:
            sql += " AND scenario = ?"
            args.append(scenario)
        sql += " ORDER BY at, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            try:
                rows = self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise AuditError(
                    f"audit query failed: {type(exc).__name__}", "审计日志查询失败"
                ) from exc
        return [
            AuditRecord(
                id=r[0],
                at=r[1],
                terminal_id=r[2],
                scenario=r[3],
                result=r[4],
                subject_name=r[5],
                subject_ssn=r[6],
                subject_card=r[7],
                reasons=tuple(json.loads(r[8])),
            )
            for r in rows
        ]
