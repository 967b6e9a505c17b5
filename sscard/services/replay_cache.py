"""Single-use e-SSC QR nonces, shared by every verifier process on one machine.

The e-SSC profile makes each QR code scannable once (reference part C, "sscard profile",
e-SSC row; reference §M3: "each code scannable only once"). Two gates in
two processes may scan the same code at the same moment, so the cache is a SQLite
file in WAL mode: the first ``INSERT`` of ``(issuer key ID, nonce)`` under the
PRIMARY KEY wins, the second hits the constraint, and SQLite's file locking makes
that atomic across processes. Entries only need to outlive the time a token could
still be accepted (issue time + validity + skew); older rows are deleted on write.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from sscard.errors import SscardError
from sscard.sqlite import Store, open_database, state_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_nonce (
    key_id BLOB NOT NULL,
    nonce BLOB NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key_id, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_nonce_expiry ON seen_nonce (expires_at);
"""

#: How long a writer waits for another process's lock before giving up.
BUSY_TIMEOUT_S = 5.0


class ReplayCacheError(SscardError):
    """The replay cache file cannot be opened or written."""

    message_en = "replay cache unavailable"
    message_zh = "防重放缓存不可用"


def default_path() -> Path:
    """``$SSCARD_ECARD_REPLAY_DB``, else ``$SSCARD_STATE_DIR`` (default ~/.local/state/sscard)."""
    return state_path("SSCARD_ECARD_REPLAY_DB", "ecard-replay.sqlite3")


class ReplayCache(Store):
    """``consume()`` a nonce: True the first time, False on every later call until expiry."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # synchronous=NORMAL: a nonce lost on a power cut is harmless.
            self._db = open_database(path, synchronous="NORMAL", busy_timeout=BUSY_TIMEOUT_S)
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ReplayCacheError(
                f"cannot open replay cache {self.path.name}: {type(exc).__name__}",
                f"无法打开防重放缓存 {self.path.name}",
            ) from exc

    def consume(self, key_id: bytes, nonce: bytes, expires_at: float, now: float) -> bool:
        """Record ``(key_id, nonce)``; False if it is already there and not yet expired."""
        try:
            with self._tx() as db:
                db.execute("DELETE FROM seen_nonce WHERE expires_at < ?", (now,))
                db.execute(
                    "INSERT INTO seen_nonce (key_id, nonce, expires_at) VALUES (?, ?, ?)",
                    (key_id, nonce, expires_at),
                )
        except sqlite3.IntegrityError:  # the PRIMARY KEY is taken: seen before
            return False
        except sqlite3.Error as exc:
            raise ReplayCacheError(
                f"replay cache write failed: {type(exc).__name__}",
                "防重放缓存写入失败",
            ) from exc
        return True

    def purge(self, now: float | None = None) -> int:
        """Delete expired entries; return how many."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM seen_nonce WHERE expires_at < ?",
                (time.time() if now is None else now,),
            )
            return cur.rowcount

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM seen_nonce").fetchone()
            return int(row[0])
