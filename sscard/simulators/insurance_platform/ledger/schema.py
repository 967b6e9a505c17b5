"""The ledger's tables and the states its rows move through.

Money is integer cents. Every state column holds one of the StrEnums below
(the values are what older ledger files already hold, so they open unchanged);
the partial index ``visits_otp`` spells ``'registered'`` out because SQLite
needs a literal there.
"""

from __future__ import annotations

import enum
import sqlite3


class VisitState(enum.StrEnum):
    """A visit (2201) is open until it is cancelled (2202) or its 2201 reversed (2601)."""

    REGISTERED = "registered"
    CANCELLED = "cancelled"


class FeeState(enum.StrEnum):
    """A fee detail (2204) is active until deleted (2205, or with its visit)."""

    ACTIVE = "active"
    DELETED = "deleted"


class SettlementState(enum.StrEnum):
    """A settlement (2207) stays settled unless cancelled (2208) or reversed (2601)."""

    SETTLED = "settled"
    CANCELLED = "cancelled"
    REVERSED = "reversed"


class MessageState(enum.StrEnum):
    """What became of a msgid: answered (infcode 0 / -1), undone by a 2601, or barred
    by a 2601 that arrived before it (``voided``: a late copy is refused)."""

    DONE = "done"
    REFUSED = "refused"
    REVERSED = "reversed"
    VOIDED = "voided"


class FilingStatus(enum.StrEnum):
    """Answer of the profile filing check (2599) for a cross-area visit."""

    FILED = "FILED"
    EMERGENCY = "EMERGENCY"
    NOT_FILED = "NOT_FILED"


SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    psn_no TEXT PRIMARY KEY, certno TEXT NOT NULL UNIQUE, card_no TEXT NOT NULL DEFAULT '',
    card_sn TEXT NOT NULL DEFAULT '', psn_name TEXT NOT NULL, gend TEXT NOT NULL, naty TEXT NOT NULL, brdy TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL, insutype TEXT NOT NULL, psn_type TEXT NOT NULL,
    emp_name TEXT NOT NULL, cvlserv_flag TEXT NOT NULL, acct_cents INTEGER NOT NULL,
    CHECK (acct_cents >= 0));
CREATE TABLE IF NOT EXISTS usage (
    psn_no TEXT NOT NULL, year INTEGER NOT NULL, dedc_cents INTEGER NOT NULL DEFAULT 0,
    fund_cents INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (psn_no, year));
CREATE TABLE IF NOT EXISTS filings (
    id INTEGER PRIMARY KEY, psn_no TEXT NOT NULL, insuplc_admdvs TEXT NOT NULL,
    mdtrtarea_admvs TEXT NOT NULL, begndate TEXT NOT NULL, enddate TEXT NOT NULL,
    med_type TEXT NOT NULL, emergency INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sign_ins (
    sign_no TEXT PRIMARY KEY, fixmedins_code TEXT NOT NULL, opter TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS visits (
    mdtrt_id TEXT PRIMARY KEY, psn_no TEXT NOT NULL, fixmedins_code TEXT NOT NULL,
    mdtrtarea_admvs TEXT NOT NULL, ipt_otp_no TEXT NOT NULL, insutype TEXT NOT NULL,
    begntime TEXT NOT NULL, med_type TEXT NOT NULL DEFAULT '', reg_msgid TEXT NOT NULL,
    state TEXT NOT NULL, diseinfo TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS visits_otp ON visits (fixmedins_code, ipt_otp_no)
    WHERE state = 'registered';
CREATE TABLE IF NOT EXISTS fee_details (
    mdtrt_id TEXT NOT NULL, feedetl_sn TEXT NOT NULL, chrg_bchno TEXT NOT NULL,
    med_list_codg TEXT NOT NULL, amount_cents INTEGER NOT NULL, ownpay_cents INTEGER NOT NULL,
    preselfpay_cents INTEGER NOT NULL, inscp_cents INTEGER NOT NULL, setl_id TEXT,
    state TEXT NOT NULL, PRIMARY KEY (mdtrt_id, feedetl_sn));
CREATE TABLE IF NOT EXISTS settlements (
    setl_id TEXT PRIMARY KEY, medins_setl_id TEXT NOT NULL UNIQUE, mdtrt_id TEXT NOT NULL,
    psn_no TEXT NOT NULL, fixmedins_code TEXT NOT NULL, day TEXT NOT NULL, year INTEGER NOT NULL,
    medfee_cents INTEGER NOT NULL, fund_cents INTEGER NOT NULL, hifp_cents INTEGER NOT NULL,
    dedc_cents INTEGER NOT NULL, acct_cents INTEGER NOT NULL, cash_cents INTEGER NOT NULL,
    state TEXT NOT NULL, undone_by TEXT, setlinfo TEXT NOT NULL, setldetail TEXT NOT NULL DEFAULT '[]',
    insutype TEXT NOT NULL DEFAULT '', clr_type TEXT NOT NULL DEFAULT '',
    clr_optins TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS messages (
    msgid TEXT PRIMARY KEY, infno TEXT NOT NULL, day TEXT NOT NULL, fixmedins_code TEXT NOT NULL,
    psn_no TEXT NOT NULL, infcode INTEGER NOT NULL, state TEXT NOT NULL, response TEXT NOT NULL,
    digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS statements (
    fixmedins_code TEXT NOT NULL, day TEXT NOT NULL, msgid TEXT NOT NULL,
    upto INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (fixmedins_code, day));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Columns added after the first release: (table, column, declaration) for old ledger files.
ADDED_COLUMNS = (
    ("persons", "card_sn", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "setldetail", "TEXT NOT NULL DEFAULT '[]'"),
    ("settlements", "insutype", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "clr_type", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "clr_optins", "TEXT NOT NULL DEFAULT ''"),
    ("statements", "upto", "INTEGER NOT NULL DEFAULT 0"),
)

INDEXES = """
CREATE INDEX IF NOT EXISTS persons_card ON persons (card_no, card_sn);
CREATE INDEX IF NOT EXISTS settlements_day ON settlements (fixmedins_code, day, state);
CREATE INDEX IF NOT EXISTS fee_batch ON fee_details (mdtrt_id, chrg_bchno);
"""


def create_schema(db: sqlite3.Connection) -> None:
    """Create the tables, add the columns an older ledger file lacks, then the indexes."""
    db.executescript(SCHEMA)
    for table, column, decl in ADDED_COLUMNS:
        have = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    db.executescript(INDEXES)
