"""The ledger: one SQLite file, the set-up API, and :meth:`Ledger.handle`.

One envelope in, one envelope out (§M1.1). Every message is
handled in a single SQLite transaction that also stores its reply under the
msgid, so a duplicate msgid returns the first reply (idempotency, §M1.5; the same
msgid with another body is refused) and a reply dropped after commit leaves a
consistent ledger. Handlers run one at a time (the :class:`~sscard.sqlite.Store`
lock around one connection): simple, and enough for thousands of settlements per
minute on loopback. ``input`` longer than 40,000 characters is refused.

Replies have the shape real HIS code reads (§M1.7): ``infcode`` a number,
``inf_refmsgid`` always 30 characters. The handlers live in one module per
transaction family; dispatch.py is the infno table.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sscard.clock import beijing_now
from sscard.errors import ConfigError, ExitStatus, SscardError
from sscard.simulators.insurance_platform.ledger.common import (
    Ctx,
    Handler,
    Refusal,
    data,
    money,
    next_value,
    normalise_date,
)
from sscard.simulators.insurance_platform.ledger.dispatch import HANDLERS
from sscard.simulators.insurance_platform.ledger.persons import check_sign_in
from sscard.simulators.insurance_platform.ledger.schema import MessageState, create_schema
from sscard.simulators.insurance_platform.policies import POLICIES, AreaPolicy, policy_for
from sscard.simulators.insurance_platform.wire import dumps, loads, to_cents
from sscard.sqlite import Store, open_database

#: ``input`` is at most 40,000 characters (§M1.1, §M1.7); longer bodies are refused.
MAX_INPUT_CHARS = 40_000


class LedgerClosed(SscardError):
    """The ledger was used after :meth:`Ledger.close` (the platform was stopped)."""

    exit_status = ExitStatus.SYSTEM
    message_en = "the insurance platform ledger is closed"
    message_zh = "医保平台账本已关闭"


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
        that institution (sending none is allowed, §M1.7)."""
        name = Path(path).name
        try:
            db = open_database(path, synchronous="NORMAL", busy_timeout=10.0)
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open ledger {name}: {exc}", f"无法打开医保平台账本 {name}"
            ) from None
        super().__init__(db)
        try:
            self._set_up(lambda: create_schema(db))
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open ledger {name}: {exc}", f"无法打开医保平台账本 {name}"
            ) from None
        self.clock = clock
        self.policies = policies
        self.require_sign_in = require_sign_in
        #: infno -> handler; a copy per ledger, so a test may replace one.
        self._handlers: dict[str, Handler] = dict(HANDLERS)

    def _closed_error(self) -> Exception:
        return LedgerClosed()

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
            psn_no = row["psn_no"] if row else f"{insuplc_admdvs}{next_value(db, 'psn'):014d}"
            db.execute(
                "INSERT OR REPLACE INTO persons (psn_no, certno, card_no, card_sn, psn_name,"
                " gend, naty, brdy, insuplc_admdvs, insutype, psn_type, emp_name, cvlserv_flag,"
                " acct_cents) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    psn_no, certno, card_no, card_sn.upper(), psn_name, gend, naty,
                    normalise_date(brdy), insuplc_admdvs, insutype, psn_type, emp_name,
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
                (psn_no, insuplc, mdtrtarea, normalise_date(begin), normalise_date(end),
                 med_type, int(emergency)),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    # -- reading (tests, CLI) ----------------------------------------------

    def balance(self, psn_no: str) -> Decimal:
        found = self._query("SELECT acct_cents FROM persons WHERE psn_no = ?", (psn_no,))
        if not found:
            raise KeyError(psn_no)
        return money(found[0][0])

    def usage(self, psn_no: str, year: int | None = None) -> tuple[Decimal, Decimal]:
        """(deductible used, fund paid) in ``year`` (default: this year)."""
        year = year or self.clock().year
        found = self._query(
            "SELECT dedc_cents, fund_cents FROM usage WHERE psn_no = ? AND year = ?",
            (psn_no, year),
        )
        return (money(found[0][0]), money(found[0][1])) if found else (money(0), money(0))

    def settlements(self, state: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT setl_id, medins_setl_id, psn_no, state, setlinfo, mdtrt_id FROM settlements"
        with self._lock:
            found = self._connection().execute(
                sql + (" WHERE state = ?" if state else ""), (state,) if state else ()
            )
            return [{**dict(r), "setlinfo": loads(r["setlinfo"])} for r in found]

    def message_count(self, infno: str | None = None) -> int:
        sql = "SELECT count(*) FROM messages" + (" WHERE infno = ?" if infno else "")
        return int(self._query(sql, (infno,) if infno else ())[0][0])

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Plain tuples (tests compare them with literals)."""
        with self._lock:
            return [tuple(r) for r in self._connection().execute(sql, args)]

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
                serial = next_value(own, "refmsg")
        else:
            serial = next_value(db, "refmsg")
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
        reply, text = self._process(env)
        return reply if reply is not None else loads(text)

    def respond(self, env: Any) -> bytes:
        """:meth:`handle`, answered as the JSON the wire carries: the text stored under
        the msgid, encoded once (a duplicate gets the stored bytes, not a re-encoding)."""
        return self._process(env)[1].encode("utf-8")

    def _refuse(
        self, now: datetime, err: str, area: str, db: sqlite3.Connection | None = None
    ) -> tuple[dict[str, Any], str]:
        reply = self._reply(now, -1, {}, err, area=area, db=db)
        return reply, dumps(reply)

    def _process(self, env: Any) -> tuple[dict[str, Any] | None, str]:
        """(reply, its JSON text); reply None for a stored reply (only its text is read)."""
        now = self.clock()
        if not isinstance(env, dict):
            return self._refuse(now, "报文格式错误 / malformed envelope", "")
        infno, msgid = str(env.get("infno") or ""), str(env.get("msgid") or "")
        fixmedins = str(env.get("fixmedins_code") or "")
        area = str(env.get("mdtrtarea_admvs") or "")
        if len(msgid) != 30 or not msgid.startswith(fixmedins) or len(fixmedins) != 12:
            return self._refuse(
                now,
                "msgid 须为机构编号+时间+序号共30位 / msgid must be code(12)+time(14)+seq(4)",
                area,
            )
        handler = self._handlers.get(infno)
        if handler is None:
            return self._refuse(now, f"不支持的交易 {infno} / unsupported infno {infno}", area)
        text = dumps(env.get("input"))
        if len(text) > MAX_INPUT_CHARS:
            return self._refuse(
                now,
                f"交易输入超过{MAX_INPUT_CHARS}字符 / input longer than {MAX_INPUT_CHARS:,} "
                "characters",
                area,
            )
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._tx() as db:
            prior = db.execute(
                "SELECT infno, state, response, digest FROM messages WHERE msgid = ?", (msgid,)
            ).fetchone()
            if prior is not None:
                if prior["state"] == MessageState.VOIDED:
                    return self._refuse(
                        now,
                        "该报文已冲正，不予处理 / message was reversed (2601) before it arrived",
                        area,
                        db,
                    )
                if prior["infno"] != infno or prior["digest"] != digest:
                    return self._refuse(
                        now, "报文号重复使用 / msgid reused for a different request", area, db
                    )
                return None, str(prior["response"])
            ctx = Ctx(db, env, msgid, infno, fixmedins, area, now, self.policies)
            db.execute("SAVEPOINT biz")
            keep: Callable[[sqlite3.Connection], None] | None = None
            try:
                if self.require_sign_in:
                    check_sign_in(ctx)
                output = handler(ctx)
                db.execute("RELEASE biz")
                reply = self._reply(now, 0, output, area=area, db=db)
            except Refusal as exc:
                db.execute("ROLLBACK TO biz")
                db.execute("RELEASE biz")
                reply = self._reply(now, -1, {}, exc.err_msg, area=area, db=db)
                keep = exc.keep
            answer = dumps(reply)
            psn = data(env).get("psn_no") or data(env, "mdtrtinfo").get("psn_no") or ""
            state = MessageState.DONE if reply["infcode"] == 0 else MessageState.REFUSED
            db.execute(
                "INSERT INTO messages (msgid, infno, day, fixmedins_code, psn_no, infcode, state,"
                " response, digest) VALUES (?,?,?,?,?,?,?,?,?)",
                (msgid, infno, ctx.day, fixmedins, str(psn), reply["infcode"], state, answer,
                 digest),
            )  # fmt: skip
            if keep is not None:
                keep(db)
            return reply, answer
