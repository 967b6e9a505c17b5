"""The simulated platform's SQLite ledger and transaction handlers.

One envelope in, one envelope out (medical-insurance.md §1.1). Every
message is handled in a single SQLite transaction that also stores its
reply under the msgid, so a duplicate msgid returns the first reply
(idempotency, §1.5; the same msgid with another body is refused) and a reply
dropped after commit leaves a consistent ledger. Money is stored as integer
cents. Handlers run one at a time (a lock around one connection): simple, and
enough for thousands of settlements per minute on loopback.

Replies have the shape real HIS code reads (§1.7): ``infcode`` a number,
``inf_refmsgid`` always 30 characters, 1101 ``age`` numeric, 2204 ``result[]``
with its 19 fields, 2206/2207 ``setlinfo`` carrying the person, 2208 the
reversed ``setlinfo`` (cash also as the spec's ``pdn_cash_pay``) and
``setldetail[]``, 3201 ``stmtinfo``. A card (1101 type 03) is identified by card
number **and** ``card_sn``: card numbers repeat across provinces. Node names of
the input are matched case-insensitively and a single object is accepted where
a list is expected, as Shenzhen's public HIS classes send ``mdtrtInfo`` and a
lone ``feedetail`` object. ``sign_no`` is optional; one that is sent must be
known. ``input`` longer than 40,000 characters is refused.

sscard profile behaviour (medical-insurance.md, last section): 2601 only for
oinfno 2201/2207/2304, same day, and not for a message the day's 3201 already
covered (a settlement made after a reconciliation can still be reversed); a
2601 of a message never seen is an error (infcode -1) and, the simulator's own
safety, bars that msgid should it still arrive; cross-province 2206/2207
without a filing is refused with infcode -1.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sscard.clock import beijing_now
from sscard.errors import ConfigError
from sscard.simulators.insurance_platform.policies import (
    POLICIES,
    AreaPolicy,
    ItemClass,
    area_covers,
    classify_item,
    compute_split,
    policy_for,
)
from sscard.simulators.insurance_platform.wire import dumps, from_cents, loads, to_cents
from sscard.sqlite import Store, open_database

_SCHEMA = """
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
_ADDED_COLUMNS = (
    ("persons", "card_sn", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "setldetail", "TEXT NOT NULL DEFAULT '[]'"),
    ("settlements", "insutype", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "clr_type", "TEXT NOT NULL DEFAULT ''"),
    ("settlements", "clr_optins", "TEXT NOT NULL DEFAULT ''"),
    ("statements", "upto", "INTEGER NOT NULL DEFAULT 0"),
)
_INDEXES = """
CREATE INDEX IF NOT EXISTS persons_card ON persons (card_no, card_sn);
CREATE INDEX IF NOT EXISTS settlements_day ON settlements (fixmedins_code, day, state);
CREATE INDEX IF NOT EXISTS fee_batch ON fee_details (mdtrt_id, chrg_bchno);
"""

#: ``input`` is at most 40,000 characters (§1.1, §1.7); longer bodies are refused.
MAX_INPUT_CHARS = 40_000
#: 2207 must carry these amounts (copied from the 2206 answer), §1.7.
SETTLE_REQUIRED = ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")
#: The nine fields of a spec 3201 (§1.7): no cash total.
STATEMENT_FIELDS = (
    "insutype", "clr_type", "setl_optins", "stmt_begndate", "stmt_enddate", "medfee_sumamt",
    "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt",
)  # fmt: skip
#: 2601 of a message the platform never saw (an error, §1.7).
UNKNOWN_ORIGINAL = "原交易不存在 / original message (omsgid) not found"


#: Transactions the simulator answers; 5261 and 2599 are sscard profile queries.
INFNOS = (
    "9001", "1101", "2201", "2202", "2203", "2204", "2205", "2206", "2207", "2208", "2601",
    "3201", "5261", "2599",
)  # fmt: skip


class Refusal(Exception):
    """A business refusal: infcode -1 with a Chinese / English err_msg.

    ``keep`` runs after the refused transaction's changes were rolled back, in
    the same commit: what the platform remembers even though it said no.
    """

    def __init__(
        self, zh: str, en: str, *, keep: Callable[[sqlite3.Connection], None] | None = None
    ) -> None:
        super().__init__(f"{zh} / {en}")
        self.err_msg = f"{zh} / {en}"
        self.keep = keep


@dataclass
class _Ctx:
    db: sqlite3.Connection
    env: dict[str, Any]
    msgid: str
    infno: str
    fixmedins_code: str
    mdtrtarea: str
    now: datetime

    @property
    def day(self) -> str:
        return self.now.date().isoformat()


def _node(env: dict[str, Any], key: str) -> Any:
    """``input[key]``, the name matched case-insensitively (``mdtrtInfo`` = ``mdtrtinfo``)."""
    inp = env.get("input")
    if not isinstance(inp, dict):
        return None
    if key in inp:
        return inp[key]
    lowered = key.lower()
    return next((v for k, v in inp.items() if str(k).lower() == lowered), None)


def _data(env: dict[str, Any], key: str = "data") -> dict[str, Any]:
    value = _node(env, key)
    return value if isinstance(value, dict) else {}


def _rows(env: dict[str, Any], key: str) -> list[Any]:
    """A list node; a single object where the spec has a list counts as a list of one."""
    value = _node(env, key)
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


def _age(brdy: str, today: date) -> int:
    born = date.fromisoformat(brdy)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _day_of(value: Any, name: str) -> str:
    """``yyyy-MM-dd`` from a date, date-time or ISO date-time string."""
    text = str(value or "").strip()[:10]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise Refusal(f"{name} 不是有效日期", f"{name} is not a valid date") from None


def _amount(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise Refusal(f"{name} 不是有效金额", f"{name} is not a valid amount") from None
    if amount < 0 or amount > Decimal("100000000"):
        raise Refusal(f"{name} 金额超出范围", f"{name} out of range")
    return amount


def _money(cents: int) -> Decimal:
    return from_cents(cents)


def _quantity(value: Any) -> Decimal:
    """cnt (16,4) / pric (16,6) echoed in 2204 ``result[]``; 0 when unreadable."""
    try:
        return Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _normalise_date(value: date | str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    text = value.strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text).isoformat()


class Ledger(Store):
    """The platform's state; :meth:`handle` is the whole protocol."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], datetime] = beijing_now,
        policies: dict[str, AreaPolicy] = POLICIES,
        require_sign_in: bool = True,
    ) -> None:
        """``clock``: Beijing wall-clock time by default (setl_time, days, ids).
        ``require_sign_in``: a ``sign_no`` that is sent must be one 9001 issued to
        that institution (sending none is allowed, §1.7)."""
        try:
            self._db = open_database(path, synchronous="NORMAL", busy_timeout=10.0)
            self._db.executescript(_SCHEMA)
            for table, column, decl in _ADDED_COLUMNS:
                have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            self._db.executescript(_INDEXES)
        except sqlite3.Error as exc:
            name = Path(path).name
            raise ConfigError(
                f"cannot open ledger {name}: {exc}", f"无法打开医保平台账本 {name}"
            ) from None
        self._lock = threading.Lock()
        self.clock = clock
        self.policies = policies
        self.require_sign_in = require_sign_in
        self._handlers: dict[str, Callable[[_Ctx], dict[str, Any]]] = {
            "9001": self._sign_in,
            "1101": self._person_info,
            "2201": self._register,
            "2202": self._cancel_registration,
            "2203": self._visit,
            "2204": self._fees,
            "2205": self._delete_fees,
            "2206": self._pre_settle,
            "2207": self._settle,
            "2208": self._cancel_settlement,
            "2601": self._reverse,
            "3201": self._statement,
            "5261": self._settlement_query,
            "2599": self._filing_check,
        }

    def _next(self, db: sqlite3.Connection, name: str) -> int:
        db.execute(
            "INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return int(db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    # -- set-up API (tests, demo, card-profile loader) ---------------------

    def add_person(
        self,
        certno: str,
        psn_name: str,
        gend: str,
        brdy: date | str,
        insuplc_admdvs: str,
        insutype: str = "310",
        acct_balance: Decimal | str | int = "0.00",
        *,
        card_no: str = "",
        card_sn: str = "",
        psn_type: str = "11",
        naty: str = "01",
        emp_name: str = "",
        cvlserv_flag: str = "0",
    ) -> str:
        """Insert or update an insured person; returns ``psn_no``.

        ``card_no`` + ``card_sn`` (the card identification code, 32 hex) identify
        the person's social security card in 1101 type 03; both are needed.
        """
        if policy_for(insuplc_admdvs, self.policies) is None:
            raise ValueError(f"no policy for insured area {insuplc_admdvs}")
        cents = to_cents(Decimal(str(acct_balance)))
        with self._tx() as db:
            row = db.execute("SELECT psn_no FROM persons WHERE certno = ?", (certno,)).fetchone()
            psn_no = row[0] if row else f"{insuplc_admdvs}{self._next(db, 'psn'):014d}"
            db.execute(
                "INSERT OR REPLACE INTO persons (psn_no, certno, card_no, card_sn, psn_name,"
                " gend, naty, brdy, insuplc_admdvs, insutype, psn_type, emp_name, cvlserv_flag,"
                " acct_cents) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    psn_no, certno, card_no, card_sn.upper(), psn_name, gend, naty,
                    _normalise_date(brdy), insuplc_admdvs, insutype, psn_type, emp_name,
                    cvlserv_flag, cents,
                ),
            )  # fmt: skip
        return psn_no

    def add_person_from_card(
        self,
        ssn: str,
        name: str,
        sex: str,
        birth_date: date | str,
        region_code: str,
        *,
        insuplc_admdvs: str | None = None,
        insutype: str = "310",
        acct_balance: Decimal | str | int = "1000.00",
        card_no: str = "",
        card_sn: str = "",
    ) -> str:
        """Loader for a card profile (EF05/EF06 data): the insured area defaults to
        the card's region mapped onto the policy table (city, else province pool).

        This mapping is the simulator's own; the SDK never derives admdvs from the
        card (sscard profile, "Area codes").
        """
        gend = {"M": "1", "F": "2", "男": "1", "女": "2"}.get(sex.upper(), sex)
        area = insuplc_admdvs
        if area is None:
            policy = policy_for(region_code, self.policies)
            if policy is None:
                raise ValueError(f"no insured area for region {region_code}")
            area = policy.admdvs
        return self.add_person(
            ssn, name, gend, birth_date, area, insutype, acct_balance, card_no=card_no,
            card_sn=card_sn,
        )  # fmt: skip

    def add_filing(
        self,
        psn_no: str,
        insuplc: str,
        mdtrtarea: str,
        begin: date | str,
        end: date | str,
        med_type: str = "",
        *,
        emergency: bool = False,
    ) -> int:
        """Register a cross-area filing (异地就医备案); ``med_type`` "" = any."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO filings (psn_no, insuplc_admdvs, mdtrtarea_admvs, begndate, enddate,"
                " med_type, emergency) VALUES (?,?,?,?,?,?,?)",
                (psn_no, insuplc, mdtrtarea, _normalise_date(begin), _normalise_date(end),
                 med_type, int(emergency)),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def balance(self, psn_no: str) -> Decimal:
        row = self._query("SELECT acct_cents FROM persons WHERE psn_no = ?", (psn_no,))
        if not row:
            raise KeyError(psn_no)
        return _money(row[0][0])

    def usage(self, psn_no: str, year: int | None = None) -> tuple[Decimal, Decimal]:
        """(deductible used, fund paid) in ``year`` (default: this year)."""
        year = year or self.clock().year
        row = self._query(
            "SELECT dedc_cents, fund_cents FROM usage WHERE psn_no = ? AND year = ?",
            (psn_no, year),
        )
        return (_money(row[0][0]), _money(row[0][1])) if row else (_money(0), _money(0))

    def settlements(self, state: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT setl_id, medins_setl_id, psn_no, state, setlinfo, mdtrt_id FROM settlements"
        rows = self._query(sql + (" WHERE state = ?" if state else ""), (state,) if state else ())
        return [
            {"setl_id": r[0], "medins_setl_id": r[1], "psn_no": r[2], "state": r[3],
             "setlinfo": loads(r[4]), "mdtrt_id": r[5]}
            for r in rows
        ]  # fmt: skip

    def message_count(self, infno: str | None = None) -> int:
        sql = "SELECT count(*) FROM messages" + (" WHERE infno = ?" if infno else "")
        return int(self._query(sql, (infno,) if infno else ())[0][0])

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- protocol ----------------------------------------------------------

    def _reply(
        self,
        now: datetime,
        infcode: int,
        output: dict[str, Any],
        err: str = "",
        *,
        area: str = "",
        db: sqlite3.Connection | None = None,
    ) -> dict[str, Any]:
        """The response envelope; ``inf_refmsgid`` = receiver area(6) + time(14) + serial(10)."""
        stamp = now.strftime("%Y%m%d%H%M%S%f")[:17]
        if db is None:
            with self._tx() as own:
                serial = self._next(own, "refmsg")
        else:
            serial = self._next(db, "refmsg")
        area = area if len(area) == 6 and area.isdigit() else "000000"
        return {
            "infcode": infcode,
            "inf_refmsgid": f"{area}{now:%Y%m%d%H%M%S}{serial % 10**10:010d}",
            "refmsg_time": stamp,
            "respond_time": stamp,
            "err_msg": err,
            "warn_msg": "",
            "output": output,
        }

    def handle(self, env: Any) -> dict[str, Any]:
        """Process one request envelope and return the response envelope."""
        now = self.clock()
        if not isinstance(env, dict):
            return self._reply(now, -1, {}, "报文格式错误 / malformed envelope")
        infno, msgid = str(env.get("infno") or ""), str(env.get("msgid") or "")
        fixmedins = str(env.get("fixmedins_code") or "")
        area = str(env.get("mdtrtarea_admvs") or "")
        if len(msgid) != 30 or not msgid.startswith(fixmedins) or len(fixmedins) != 12:
            return self._reply(
                now,
                -1,
                {},
                "msgid 须为机构编号+时间+序号共30位 / msgid must be code(12)+time(14)+seq(4)",
                area=area,
            )
        if infno not in self._handlers:
            return self._reply(
                now, -1, {}, f"不支持的交易 {infno} / unsupported infno {infno}", area=area
            )
        text = dumps(env.get("input"))
        if len(text) > MAX_INPUT_CHARS:
            return self._reply(
                now,
                -1,
                {},
                f"交易输入超过{MAX_INPUT_CHARS}字符 / input longer than {MAX_INPUT_CHARS:,} "
                "characters",
                area=area,
            )
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._tx() as db:
            prior = db.execute(
                "SELECT infno, state, response, digest FROM messages WHERE msgid = ?", (msgid,)
            ).fetchone()
            if prior is not None:
                if prior[1] == "voided":
                    return self._reply(
                        now,
                        -1,
                        {},
                        "该报文已冲正，不予处理 / message was reversed (2601) before it arrived",
                        area=area,
                        db=db,
                    )
                if prior[0] != infno or prior[3] != digest:
                    return self._reply(
                        now,
                        -1,
                        {},
                        "报文号重复使用 / msgid reused for a different request",
                        area=area,
                        db=db,
                    )
                first: dict[str, Any] = loads(prior[2])
                return first
            ctx = _Ctx(db, env, msgid, infno, fixmedins, area, now)
            db.execute("SAVEPOINT biz")
            keep: Callable[[sqlite3.Connection], None] | None = None
            try:
                self._check_sign_in(ctx)
                output = self._handlers[infno](ctx)
                db.execute("RELEASE biz")
                reply = self._reply(now, 0, output, area=area, db=db)
            except Refusal as exc:
                db.execute("ROLLBACK TO biz")
                db.execute("RELEASE biz")
                reply = self._reply(now, -1, {}, exc.err_msg, area=area, db=db)
                keep = exc.keep
            psn = _data(env).get("psn_no") or _data(env, "mdtrtinfo").get("psn_no") or ""
            db.execute(
                "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)",
                (msgid, infno, ctx.day, fixmedins, str(psn), reply["infcode"],
                 "done" if reply["infcode"] == 0 else "refused", dumps(reply), digest),
            )  # fmt: skip
            if keep is not None:
                keep(db)
            return reply

    def _check_sign_in(self, ctx: _Ctx) -> None:
        """``sign_no`` is optional (§1.7); one that is sent must be this institution's."""
        sign_no = str(ctx.env.get("sign_no") or "")
        if ctx.infno == "9001" or not self.require_sign_in or not sign_no:
            return
        row = ctx.db.execute(
            "SELECT fixmedins_code FROM sign_ins WHERE sign_no = ?", (sign_no,)
        ).fetchone()
        if row is None or row[0] != ctx.fixmedins_code:
            raise Refusal("签到编号无效，请重新签到(9001)", "sign_no unknown: sign in again (9001)")

    # -- helpers -----------------------------------------------------------

    def _person(self, ctx: _Ctx, psn_no: str) -> tuple[Any, ...]:
        row = ctx.db.execute(
            "SELECT psn_no, insuplc_admdvs, insutype, acct_cents FROM persons WHERE psn_no = ?",
            (psn_no,),
        ).fetchone()
        if row is None:
            raise Refusal("参保人员不存在", "insured person not found")
        routed = str(ctx.env.get("insuplc_admdvs") or "")
        if routed != row[1]:
            raise Refusal(
                f"参保地医保区划 {routed or '(空)'} 与参保人不符，请取1101返回值",
                f"insuplc_admdvs {routed or '(empty)'} does not match the insured's area; "
                "take it from 1101",
            )
        return tuple(row)

    def _visit(self, ctx: _Ctx) -> dict[str, Any]:
        info = _data(ctx.env, "mdtrtinfo")
        visit = self._open_visit(
            ctx, str(info.get("mdtrt_id") or ""), str(info.get("psn_no") or "")
        )
        diseinfo = _rows(ctx.env, "diseinfo")
        ctx.db.execute(
            "UPDATE visits SET med_type = ?, diseinfo = ? WHERE mdtrt_id = ?",
            (str(info.get("med_type") or ""), dumps(diseinfo), visit[0]),
        )
        return {}

    def _open_visit(self, ctx: _Ctx, mdtrt_id: str, psn_no: str) -> tuple[Any, ...]:
        self._person(ctx, psn_no)
        row = ctx.db.execute(
            "SELECT mdtrt_id, psn_no, state, begntime, med_type, insutype, ipt_otp_no"
            " FROM visits WHERE mdtrt_id = ? AND fixmedins_code = ?",
            (mdtrt_id, ctx.fixmedins_code),
        ).fetchone()
        if row is None or row[1] != psn_no:
            raise Refusal("就诊信息不存在", "visit (mdtrt_id) not found for this person")
        if row[2] != "registered":
            raise Refusal("就诊已撤销", "visit was cancelled")
        return tuple(row)

    def _usage(self, ctx: _Ctx, psn_no: str) -> tuple[int, int]:
        row = ctx.db.execute(
            "SELECT dedc_cents, fund_cents FROM usage WHERE psn_no = ? AND year = ?",
            (psn_no, ctx.now.year),
        ).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def _add_usage(self, ctx: _Ctx, psn_no: str, year: int, dedc: int, fund: int) -> None:
        ctx.db.execute(
            "INSERT INTO usage VALUES (?,?,?,?) ON CONFLICT(psn_no, year) DO UPDATE SET"
            " dedc_cents = dedc_cents + excluded.dedc_cents,"
            " fund_cents = fund_cents + excluded.fund_cents",
            (psn_no, year, dedc, fund),
        )

    # -- transactions ------------------------------------------------------

    def _sign_in(self, ctx: _Ctx) -> dict[str, Any]:
        seq = self._next(ctx.db, "sign")
        area = ctx.mdtrtarea or "000000"
        sign_no = f"{area}{ctx.now:%Y%m%d%H%M%S}{seq:010d}"
        opter = str(_data(ctx.env, "signIn").get("opter_no") or "")
        ctx.db.execute(
            "INSERT INTO sign_ins VALUES (?,?,?,?)",
            (sign_no, ctx.fixmedins_code, opter, ctx.now.isoformat(sep=" ", timespec="seconds")),
        )
        return {"signinoutb": {"sign_time": f"{ctx.now:%Y-%m-%d %H:%M:%S}", "sign_no": sign_no}}

    def _person_info(self, ctx: _Ctx) -> dict[str, Any]:
        """1101. Type 03 (SSC): card number **and** card_sn, which card numbers alone
        cannot give (they repeat across provinces); 02: the ID number. A ``certno``
        that is sent must be the person's (§1.7)."""
        data = _data(ctx.env)
        cert_type = str(data.get("mdtrt_cert_type") or "")
        cert_no = str(data.get("mdtrt_cert_no") or "").strip()
        if not cert_no:
            raise Refusal("就诊凭证编号不能为空", "mdtrt_cert_no must not be empty")
        columns = (
            "SELECT psn_no, certno, psn_name, gend, naty, brdy, insuplc_admdvs, insutype,"
            " psn_type, emp_name, cvlserv_flag, acct_cents FROM persons"
        )
        if cert_type == "03":
            card_sn = str(data.get("card_sn") or "").strip().upper()
            if not card_sn:
                raise Refusal(
                    "社会保障卡就诊须传卡识别码(card_sn)",
                    "card_sn (card identification code) is required for an SSC (type 03)",
                )
            row = ctx.db.execute(
                columns + " WHERE card_no = ? AND card_sn = ?", (cert_no, card_sn)
            ).fetchone()
        elif cert_type == "02":
            row = ctx.db.execute(columns + " WHERE certno = ?", (cert_no,)).fetchone()
        else:
            raise Refusal(
                f"就诊凭证类型 {cert_type or '(空)'} 不受支持（模拟平台支持02、03）",
                f"mdtrt_cert_type {cert_type or '(empty)'} not supported (simulator: 02, 03)",
            )
        if row is None:
            raise Refusal("未查询到参保人员信息", "insured person not found")
        certno = str(data.get("certno") or "").strip()
        if certno and certno != row[1]:
            raise Refusal("证件号码与就诊凭证不符", "certno does not match the visit credential")
        return {
            "baseinfo": {
                "psn_no": row[0], "psn_cert_type": "01", "certno": row[1], "psn_name": row[2],
                "gend": row[3], "naty": row[4], "brdy": row[5],
                "age": Decimal(_age(row[5], ctx.now.date())),
            },
            "insuinfo": [
                {
                    "balc": _money(row[11]), "insutype": row[7], "psn_type": row[8],
                    "psn_insu_stas": "1", "psn_insu_date": "2010-01-01", "paus_insu_date": "",
                    "cvlserv_flag": row[10], "insuplc_admdvs": row[6], "emp_name": row[9],
                }
            ],
            "idetinfo": [],
        }  # fmt: skip

    def _register(self, ctx: _Ctx) -> dict[str, Any]:
        data = _data(ctx.env)
        psn_no = str(data.get("psn_no") or "")
        person = self._person(ctx, psn_no)
        if str(data.get("insutype") or "") != person[2]:
            raise Refusal(
                "险种类型与参保信息不符", "insutype does not match the person's insurance"
            )
        otp = str(data.get("ipt_otp_no") or "")
        if not otp:
            raise Refusal("门诊号不能为空", "ipt_otp_no is required")
        taken = ctx.db.execute(
            "SELECT 1 FROM visits WHERE fixmedins_code = ? AND ipt_otp_no = ? AND state = ?",
            (ctx.fixmedins_code, otp, "registered"),
        ).fetchone()
        if taken:
            raise Refusal("门诊号已登记", "ipt_otp_no already registered")
        mdtrt_id = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}{self._next(ctx.db, 'mdtrt'):010d}"
        ctx.db.execute(
            "INSERT INTO visits VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
            (mdtrt_id, psn_no, ctx.fixmedins_code, ctx.mdtrtarea, otp, person[2],
             str(data.get("begntime") or f"{ctx.now:%Y-%m-%d %H:%M:%S}"), "", ctx.msgid,
             "registered"),
        )  # fmt: skip
        return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": otp}}

    def _cancel_registration(self, ctx: _Ctx) -> dict[str, Any]:
        data = _data(ctx.env)
        visit = self._open_visit(
            ctx, str(data.get("mdtrt_id") or ""), str(data.get("psn_no") or "")
        )
        self._close_visit(ctx, visit[0], delete_details=False)
        return {}

    def _close_visit(self, ctx: _Ctx, mdtrt_id: str, *, delete_details: bool) -> None:
        if ctx.db.execute(
            "SELECT 1 FROM settlements WHERE mdtrt_id = ? AND state = 'settled'", (mdtrt_id,)
        ).fetchone():
            raise Refusal(
                "就诊已结算，请先撤销结算(2208)", "visit has a settlement; cancel it (2208) first"
            )
        active = ctx.db.execute(
            "SELECT count(*) FROM fee_details WHERE mdtrt_id = ? AND state = 'active'", (mdtrt_id,)
        ).fetchone()[0]
        if active and not delete_details:
            raise Refusal(
                "存在未撤销的费用明细，请先撤销(2205)",
                "fee details remain; delete them (2205) first",
            )
        ctx.db.execute("UPDATE fee_details SET state = 'deleted' WHERE mdtrt_id = ?", (mdtrt_id,))
        ctx.db.execute("UPDATE visits SET state = 'cancelled' WHERE mdtrt_id = ?", (mdtrt_id,))

    def _fees(self, ctx: _Ctx) -> dict[str, Any]:
        items = _rows(ctx.env, "feedetail")
        if not items:
            raise Refusal("费用明细不能为空", "feedetail is empty")
        results = []
        for item in items:
            if not isinstance(item, dict):
                raise Refusal("费用明细格式错误", "malformed feedetail entry")
            visit = self._open_visit(
                ctx, str(item.get("mdtrt_id") or ""), str(item.get("psn_no") or "")
            )
            sn = str(item.get("feedetl_sn") or "")
            amount = _amount(item.get("det_item_fee_sumamt"), "det_item_fee_sumamt")
            codg = str(item.get("med_list_codg") or "")
            if not sn or not codg:
                raise Refusal(
                    "明细流水号与目录编码不能为空", "feedetl_sn and med_list_codg are required"
                )
            if ctx.db.execute(
                "SELECT 1 FROM fee_details WHERE mdtrt_id = ? AND feedetl_sn = ? AND state != ?",
                (visit[0], sn, "deleted"),
            ).fetchone():
                raise Refusal(f"明细流水号 {sn} 已上传", f"feedetl_sn {sn} already uploaded")
            cls: ItemClass = classify_item(codg, amount)
            ctx.db.execute(
                "INSERT OR REPLACE INTO fee_details VALUES (?,?,?,?,?,?,?,?,NULL,'active')",
                (visit[0], sn, str(item.get("chrg_bchno") or ""), codg, to_cents(amount),
                 to_cents(cls.fulamt_ownpay_amt), to_cents(cls.preselfpay_amt),
                 to_cents(cls.inscp_scp_amt)),
            )  # fmt: skip
            results.append(
                {
                    "feedetl_sn": sn, "det_item_fee_sumamt": amount,
                    "cnt": _quantity(item.get("cnt")), "pric": _quantity(item.get("pric")),
                    "pric_uplmt_amt": amount, "selfpay_prop": cls.selfpay_prop,
                    "fulamt_ownpay_amt": cls.fulamt_ownpay_amt, "overlmt_amt": Decimal("0.00"),
                    "preselfpay_amt": cls.preselfpay_amt, "inscp_scp_amt": cls.inscp_scp_amt,
                    "chrgitm_lv": cls.chrgitm_lv, "med_chrgitm_type": cls.med_chrgitm_type,
                    "lmt_used_flag": "0", "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
                    "chld_medc_flag": "0", "list_sp_item_flag": "0", "drt_reim_flag": "0",
                    "memo": "",
                }
            )  # fmt: skip
        return {"result": results}

    def _delete_fees(self, ctx: _Ctx) -> dict[str, Any]:
        data = _data(ctx.env)
        visit = self._open_visit(
            ctx, str(data.get("mdtrt_id") or ""), str(data.get("psn_no") or "")
        )
        bchno = str(data.get("chrg_bchno") or "0000")
        sql = "UPDATE fee_details SET state = 'deleted' WHERE mdtrt_id = ? AND state = 'active'"
        sql += " AND setl_id IS NULL"
        args: tuple[Any, ...] = (visit[0],)
        if bchno != "0000":
            sql += " AND chrg_bchno = ?"
            args += (bchno,)
        ctx.db.execute(sql, args)
        return {}

    def _filing(
        self, ctx: _Ctx, psn_no: str, insuplc: str, mdtrtarea: str, med_type: str, day: str
    ) -> str:
        """FILED / EMERGENCY / NOT_FILED for a visit on ``day`` (profile filing check)."""
        rows = ctx.db.execute(
            "SELECT mdtrtarea_admvs, med_type, emergency FROM filings WHERE psn_no = ?"
            " AND insuplc_admdvs = ? AND begndate <= ? AND enddate >= ?",
            (psn_no, insuplc, day, day),
        ).fetchall()
        for area, kind, emergency in rows:
            if area_covers(area, mdtrtarea) and (not kind or not med_type or kind == med_type):
                return "EMERGENCY" if emergency else "FILED"
        return "NOT_FILED"

    def _split(self, ctx: _Ctx, *, commit: bool) -> dict[str, Any]:
        data = _data(ctx.env)
        psn_no = str(data.get("psn_no") or "")
        person = self._person(ctx, psn_no)
        visit = self._open_visit(ctx, str(data.get("mdtrt_id") or ""), psn_no)
        if commit:
            missing = [k for k in SETTLE_REQUIRED if data.get(k) is None or data.get(k) == ""]
            if missing:
                raise Refusal(
                    f"结算(2207)缺少必填金额：{'、'.join(missing)}",
                    f"2207 without the required amounts: {', '.join(missing)}",
                )
            for name in SETTLE_REQUIRED:
                _amount(data.get(name), name)
        med_type = str(data.get("med_type") or visit[4] or "")
        insuplc = str(person[1])
        if insuplc[:2] != ctx.mdtrtarea[:2]:
            day = str(visit[3])[:10]
            if self._filing(ctx, psn_no, insuplc, ctx.mdtrtarea, med_type, day) == "NOT_FILED":
                raise Refusal(
                    f"跨省异地就医未备案：参保地 {insuplc} 无到就医地 {ctx.mdtrtarea} 的"
                    f"异地就医备案（医疗类别 {med_type}）",
                    f"cross-province treatment not filed: no filing (异地就医备案) from insured "
                    f"area {insuplc} to treatment area {ctx.mdtrtarea} for med_type {med_type}",
                )
        policy = policy_for(insuplc, self.policies)
        if policy is None:
            raise Refusal("参保地政策未配置", "no policy for the insured area")
        where = "mdtrt_id = ? AND state = 'active' AND setl_id IS NULL"
        args: tuple[Any, ...] = (visit[0],)
        bchno = str(data.get("chrg_bchno") or "")
        if bchno and bchno != "0000":
            where += " AND chrg_bchno = ?"
            args += (bchno,)
        sql = (
            "SELECT coalesce(sum(amount_cents),0), coalesce(sum(ownpay_cents),0),"
            " coalesce(sum(preselfpay_cents),0), coalesce(sum(inscp_cents),0), count(*)"
            f" FROM fee_details WHERE {where}"
        )
        total, ownpay, pre, inscp, count = ctx.db.execute(sql, args).fetchone()
        if count == 0:
            raise Refusal("无待结算费用明细", "no unsettled fee details for this visit")
        medfee = _amount(data.get("medfee_sumamt"), "medfee_sumamt")
        if to_cents(medfee) != total:
            raise Refusal(
                f"医疗费总额 {medfee} 与明细合计 {_money(total)} 不符",
                f"medfee_sumamt {medfee} does not match the uploaded details ({_money(total)})",
            )
        dedc_used, fund_used = self._usage(ctx, psn_no)
        split = compute_split(
            policy,
            fulamt_ownpay_amt=_money(ownpay),
            preselfpay_amt=_money(pre),
            inscp_scp_amt=_money(inscp),
            deductible_used=_money(dedc_used),
            fund_used=_money(fund_used),
            balance=_money(person[3]),
            use_account=str(data.get("acct_used_flag") or "0") == "1",
        )
        setl_id = ""
        if commit:
            setl_id = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}9{self._next(ctx.db, 'setl'):09d}"
        who = ctx.db.execute(
            "SELECT psn_name, certno, gend, naty, brdy, psn_type, cvlserv_flag FROM persons"
            " WHERE psn_no = ?",
            (psn_no,),
        ).fetchone()
        fund_type = "310100" if person[2] == "310" else "390100"
        clr_type = "41" if med_type.startswith("4") else "11"
        setlinfo = {
            "setl_id": setl_id, "mdtrt_id": visit[0], "psn_no": psn_no,
            "psn_name": who[0], "psn_cert_type": "01", "certno": who[1], "gend": who[2],
            "naty": who[3], "brdy": who[4], "age": Decimal(_age(who[4], ctx.now.date())),
            "insutype": person[2], "psn_type": who[5], "cvlserv_flag": who[6],
            "mdtrt_cert_type": str(data.get("mdtrt_cert_type") or ""),
            "medins_setl_id": ctx.msgid, "med_type": med_type,
            "setl_time": f"{ctx.now:%Y-%m-%d %H:%M:%S}" if commit else "",
            "medfee_sumamt": split.medfee_sumamt, "fulamt_ownpay_amt": split.fulamt_ownpay_amt,
            "overlmt_selfpay": Decimal("0.00"), "preselfpay_amt": split.preselfpay_amt,
            "inscp_scp_amt": split.inscp_scp_amt, "act_pay_dedc": split.act_pay_dedc,
            "hifp_pay": split.hifp_pay, "pool_prop_selfpay": split.pool_prop_selfpay,
            "cvlserv_pay": Decimal("0.00"), "hifes_pay": Decimal("0.00"),
            "hifmi_pay": Decimal("0.00"), "hifob_pay": Decimal("0.00"),
            "maf_pay": Decimal("0.00"), "oth_pay": Decimal("0.00"),
            "fund_pay_sumamt": split.fund_pay_sumamt, "psn_part_amt": split.psn_part_amt,
            "acct_pay": split.acct_pay, "psn_cash_pay": split.psn_cash_pay,
            "hosp_part_amt": Decimal("0.00"), "balc": split.balc,
            "acct_mulaid_pay": Decimal("0.00"), "clr_optins": insuplc, "clr_way": "1",
            "clr_type": clr_type,
        }  # fmt: skip
        setldetail = [
            {
                "fund_pay_type": fund_type, "fund_pay_type_name": "基本医疗保险统筹基金",
                "inscp_scp_amt": split.inscp_scp_amt, "crt_payb_lmt_amt": split.cap_left_after,
                "fund_payamt": split.hifp_pay, "setl_proc_info": f"{policy.admdvs} policy",
            }
        ]  # fmt: skip
        if commit:
            acct = to_cents(split.acct_pay)
            cur = ctx.db.execute(
                "UPDATE persons SET acct_cents = acct_cents - ? WHERE psn_no = ? AND acct_cents >= ?",
                (acct, psn_no, acct),
            )
            if cur.rowcount != 1:
                raise Refusal("个人账户余额不足", "personal account balance insufficient")
            self._add_usage(
                ctx, psn_no, ctx.now.year, to_cents(split.act_pay_dedc), to_cents(split.hifp_pay)
            )
            ctx.db.execute(f"UPDATE fee_details SET setl_id = ? WHERE {where}", (setl_id, *args))
            ctx.db.execute(
                "INSERT INTO settlements (setl_id, medins_setl_id, mdtrt_id, psn_no,"
                " fixmedins_code, day, year, medfee_cents, fund_cents, hifp_cents, dedc_cents,"
                " acct_cents, cash_cents, state, undone_by, setlinfo, setldetail, insutype,"
                " clr_type, clr_optins) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'settled',NULL,?,?,?,?,?)",
                (setl_id, ctx.msgid, visit[0], psn_no, ctx.fixmedins_code, ctx.day, ctx.now.year,
                 to_cents(split.medfee_sumamt), to_cents(split.fund_pay_sumamt),
                 to_cents(split.hifp_pay), to_cents(split.act_pay_dedc), acct,
                 to_cents(split.psn_cash_pay), dumps(setlinfo), dumps(setldetail), person[2],
                 clr_type, insuplc),
            )  # fmt: skip
        return {"setlinfo": setlinfo, "setldetail": setldetail}

    def _pre_settle(self, ctx: _Ctx) -> dict[str, Any]:
        return self._split(ctx, commit=False)

    def _settle(self, ctx: _Ctx) -> dict[str, Any]:
        return self._split(ctx, commit=True)

    def _undo_settlement(
        self, ctx: _Ctx, setl_id: str, state: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Give back the account payment and the year's deductible and fund usage."""
        row = ctx.db.execute(
            "SELECT psn_no, year, dedc_cents, hifp_cents, acct_cents, setlinfo, setldetail"
            " FROM settlements WHERE setl_id = ?",
            (setl_id,),
        ).fetchone()
        psn_no, year, dedc, hifp, acct, info, detail = row
        ctx.db.execute(
            "UPDATE persons SET acct_cents = acct_cents + ? WHERE psn_no = ?", (acct, psn_no)
        )
        self._add_usage(ctx, psn_no, year, -dedc, -hifp)
        ctx.db.execute("UPDATE fee_details SET setl_id = NULL WHERE setl_id = ?", (setl_id,))
        ctx.db.execute(
            "UPDATE settlements SET state = ?, undone_by = ? WHERE setl_id = ?",
            (state, ctx.msgid, setl_id),
        )
        return loads(info), loads(detail)

    def _cancel_settlement(self, ctx: _Ctx) -> dict[str, Any]:
        """2208: the reversed ``setlinfo`` and ``setldetail[]`` (amounts negated).

        The cash is given as ``psn_cash_pay`` and as the spec's ``pdn_cash_pay``
        (§1.7): Shenzhen's public HIS class reads the latter, a captured 2208
        reply in public vendor code shows the former.
        """
        data = _data(ctx.env)
        psn_no = str(data.get("psn_no") or "")
        self._person(ctx, psn_no)
        setl_id = str(data.get("setl_id") or "")
        row = ctx.db.execute(
            "SELECT mdtrt_id, psn_no, state, fixmedins_code FROM settlements WHERE setl_id = ?",
            (setl_id,),
        ).fetchone()
        if (
            row is None
            or row[1] != psn_no
            or row[0] != data.get("mdtrt_id")
            or (row[3] != ctx.fixmedins_code)
        ):
            raise Refusal("结算信息不存在", "settlement (setl_id) not found")
        if row[2] != "settled":
            raise Refusal("结算已撤销或冲正", "settlement already cancelled or reversed")
        info, detail = self._undo_settlement(ctx, setl_id, "cancelled")
        keep = ("balc", "pool_prop_selfpay", "age", "crt_payb_lmt_amt")
        negated = {
            k: (-v if isinstance(v, Decimal) and k not in keep else v) for k, v in info.items()
        }
        negated["setl_id"] = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}9{self._next(ctx.db, 'setl'):09d}"
        negated["medins_setl_id"] = ctx.msgid
        negated["setl_time"] = f"{ctx.now:%Y-%m-%d %H:%M:%S}"
        negated["pdn_cash_pay"] = negated.get("psn_cash_pay", Decimal("0.00"))
        balance = ctx.db.execute(
            "SELECT acct_cents FROM persons WHERE psn_no = ?", (psn_no,)
        ).fetchone()[0]
        negated["balc"] = _money(balance)
        reversed_detail = [
            {k: (-v if isinstance(v, Decimal) and k not in keep else v) for k, v in d.items()}
            for d in detail
        ]
        return {"setlinfo": negated, "setldetail": reversed_detail}

    def _reverse(self, ctx: _Ctx) -> dict[str, Any]:
        """2601. An ``omsgid`` never seen is an error (§1.7), and the simulator bars it so
        that a late copy cannot settle after the desk was told it did not. A 3201 stops
        the reversal of the settlements it reconciled, not of what came after it, nor of
        a registration (2201 moves no money)."""
        data = _data(ctx.env)
        omsgid, oinfno = str(data.get("omsgid") or ""), str(data.get("oinfno") or "")
        psn_no = str(data.get("psn_no") or "")
        if oinfno not in ("2201", "2207", "2304"):
            raise Refusal(f"交易 {oinfno} 不允许冲正", f"infno {oinfno} is not reversible")
        if len(omsgid) != 30 or not omsgid.startswith(ctx.fixmedins_code):
            raise Refusal("原报文号无效", "omsgid is not a msgid of this institution")
        self._person(ctx, psn_no)
        out = {"omsgid": omsgid, "oinfno": oinfno}
        prior = ctx.db.execute(
            "SELECT rowid, infno, day, psn_no, infcode, state FROM messages WHERE msgid = ?",
            (omsgid,),
        ).fetchone()
        if prior is None:

            def bar(db: sqlite3.Connection) -> None:
                db.execute(
                    "INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,-1,'voided','{}','')",
                    (omsgid, oinfno, ctx.day, ctx.fixmedins_code, psn_no),
                )

            zh, en = UNKNOWN_ORIGINAL.split(" / ")
            raise Refusal(zh, en, keep=bar)
        rowid, infno, day, owner, infcode, state = prior
        if infno != oinfno or (owner and owner != psn_no):
            raise Refusal("原交易与冲正请求不符", "omsgid does not match oinfno / psn_no")
        if state in ("reversed", "voided"):
            return {"data": {**out, "rvs_rslt": "already"}}
        if day != ctx.day:
            raise Refusal("仅可冲正当日交易", "only same-day transactions can be reversed")
        closed = ctx.db.execute(
            "SELECT upto FROM statements WHERE fixmedins_code = ? AND day = ?",
            (ctx.fixmedins_code, day),
        ).fetchone()
        if oinfno != "2201" and closed is not None and rowid <= closed[0]:
            raise Refusal(
                "该交易已对账(3201)，不能冲正", "the transaction is reconciled (3201); no reversal"
            )
        result = "nothing"
        if infcode == 0 and oinfno == "2207":
            row = ctx.db.execute(
                "SELECT setl_id, state FROM settlements WHERE medins_setl_id = ?", (omsgid,)
            ).fetchone()
            if row is not None and row[1] == "settled":
                self._undo_settlement(ctx, row[0], "reversed")
                result = "reversed"
        elif infcode == 0 and oinfno == "2201":
            row = ctx.db.execute(
                "SELECT mdtrt_id, state FROM visits WHERE reg_msgid = ?", (omsgid,)
            ).fetchone()
            if row is not None and row[1] == "registered":
                self._close_visit(ctx, row[0], delete_details=True)
                result = "reversed"
        ctx.db.execute("UPDATE messages SET state = 'reversed' WHERE msgid = ?", (omsgid,))
        return {"data": {**out, "rvs_rslt": result}}

    def _statement(self, ctx: _Ctx) -> dict[str, Any]:
        """3201 as the spec has it (§1.7): nine fields in (no cash total), ``stmtinfo`` out.

        One statement per insurance type, clearing type and clearing institution
        (``setl_optins`` = the settlements' ``clr_optins``). It closes the days it
        covers for 2601 of the messages received so far.
        """
        data = _data(ctx.env)
        missing = [k for k in STATEMENT_FIELDS if data.get(k) is None or data.get(k) == ""]
        if missing:
            raise Refusal(
                f"对账(3201)缺少字段：{'、'.join(missing)}",
                f"3201 without the fields: {', '.join(missing)}",
            )
        begin = _day_of(data["stmt_begndate"], "stmt_begndate")
        end = _day_of(data["stmt_enddate"], "stmt_enddate")
        days = (date.fromisoformat(end) - date.fromisoformat(begin)).days
        if not 0 <= days <= 31:
            raise Refusal(
                "对账日期区间无效（最长31天）", "statement period invalid (at most 31 days)"
            )
        optins = str(data["setl_optins"])
        row = ctx.db.execute(
            "SELECT count(*), coalesce(sum(medfee_cents),0), coalesce(sum(fund_cents),0),"
            " coalesce(sum(acct_cents),0) FROM settlements WHERE fixmedins_code = ?"
            " AND day BETWEEN ? AND ? AND state = 'settled' AND insutype = ? AND clr_type = ?"
            " AND clr_optins = ?",
            (ctx.fixmedins_code, begin, end, str(data["insutype"]), str(data["clr_type"]), optins),
        ).fetchone()
        try:
            count = int(str(data["fixmedins_setl_cnt"]))
        except ValueError:
            raise Refusal("结算笔数无效", "fixmedins_setl_cnt is not a number") from None
        theirs = (
            count,
            *(to_cents(_amount(data[k], k)) for k in ("medfee_sumamt", "fund_pay_sumamt",
                                                       "acct_pay")),
        )  # fmt: skip
        agree = tuple(row) == theirs
        upto = ctx.db.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0]
        for offset in range(days + 1):
            day = (date.fromisoformat(begin) + timedelta(days=offset)).isoformat()
            ctx.db.execute(
                "INSERT OR REPLACE INTO statements VALUES (?,?,?,?)",
                (ctx.fixmedins_code, day, ctx.msgid, upto),
            )
        if agree:
            dscr = "对账平 / balanced"
        else:
            count, medfee, fund, acct = row
            dscr = (
                f"对账不平：医保 {count} 笔，医疗费 {_money(medfee)}，基金 {_money(fund)}，"
                f"个人账户 {_money(acct)} / not balanced: the platform has {count} settlements, "
                f"medfee {_money(medfee)}, fund {_money(fund)}, account {_money(acct)}"
            )
        return {
            "stmtinfo": {
                "setl_optins": optins, "stmt_rslt": "0" if agree else "1", "stmt_rslt_dscr": dscr,
            }
        }  # fmt: skip

    def _settlement_query(self, ctx: _Ctx) -> dict[str, Any]:
        data = _data(ctx.env)
        psn_no = str(data.get("psn_no") or "")
        self._person(ctx, psn_no)
        row = ctx.db.execute(
            "SELECT state, setlinfo FROM settlements WHERE medins_setl_id = ? AND psn_no = ?"
            " AND fixmedins_code = ?",
            (str(data.get("medins_setl_id") or ""), psn_no, ctx.fixmedins_code),
        ).fetchone()
        if row is None:
            return {"data": {"setl_stas": "none", "setlinfo": None}}
        return {"data": {"setl_stas": row[0], "setlinfo": loads(row[1])}}

    def _filing_check(self, ctx: _Ctx) -> dict[str, Any]:
        data = _data(ctx.env)
        psn_no = str(data.get("psn_no") or "")
        person = self._person(ctx, psn_no)
        area = str(data.get("mdtrtarea_admvs") or ctx.mdtrtarea)
        day = str(data.get("begntime") or ctx.day)[:10]
        status = self._filing(
            ctx, psn_no, str(person[1]), area, str(data.get("med_type") or ""), day
        )
        return {"data": {"filing_stas": status}}
