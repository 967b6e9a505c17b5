"""3201, the daily statement (对账) as the spec has it (§M1.7).

Nine fields in (no cash total), ``stmtinfo`` out. One statement per insurance
type, clearing type and clearing institution (``setl_optins`` = the settlements'
``clr_optins``). It closes the days it covers for 2601 of the messages received
so far (reversal.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sscard.simulators.insurance_platform.ledger.common import (
    Ctx,
    Refusal,
    amount,
    data,
    day_of,
    money,
)
from sscard.simulators.insurance_platform.ledger.schema import SettlementState
from sscard.simulators.insurance_platform.wire import to_cents

#: The nine fields of a spec 3201 (§M1.7): no cash total.
STATEMENT_FIELDS = (
    "insutype", "clr_type", "setl_optins", "stmt_begndate", "stmt_enddate", "medfee_sumamt",
    "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt",
)  # fmt: skip
#: The longest statement period, in days after the first.
MAX_PERIOD_DAYS = 31


def statement(ctx: Ctx) -> dict[str, Any]:
    """3201: compare the institution's totals with the platform's settled ones."""
    req = data(ctx.env)
    missing = [k for k in STATEMENT_FIELDS if req.get(k) is None or req.get(k) == ""]
    if missing:
        raise Refusal(
            f"对账(3201)缺少字段：{'、'.join(missing)}",
            f"3201 without the fields: {', '.join(missing)}",
        )
    begin = day_of(req["stmt_begndate"], "stmt_begndate")
    end = day_of(req["stmt_enddate"], "stmt_enddate")
    days = (date.fromisoformat(end) - date.fromisoformat(begin)).days
    if not 0 <= days <= MAX_PERIOD_DAYS:
        raise Refusal("对账日期区间无效（最长31天）", "statement period invalid (at most 31 days)")
    optins = str(req["setl_optins"])
    ours = ctx.db.execute(
        "SELECT count(*) AS n, coalesce(sum(medfee_cents),0) AS medfee,"
        " coalesce(sum(fund_cents),0) AS fund, coalesce(sum(acct_cents),0) AS acct"
        " FROM settlements WHERE fixmedins_code = ? AND day BETWEEN ? AND ? AND state = ?"
        " AND insutype = ? AND clr_type = ? AND clr_optins = ?",
        (ctx.fixmedins_code, begin, end, SettlementState.SETTLED, str(req["insutype"]),
         str(req["clr_type"]), optins),
    ).fetchone()  # fmt: skip
    try:
        count = int(str(req["fixmedins_setl_cnt"]))
    except ValueError:
        raise Refusal("结算笔数无效", "fixmedins_setl_cnt is not a number") from None
    theirs = (
        count,
        *(to_cents(amount(req[k], k)) for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")),
    )
    agree = tuple(ours) == theirs
    upto = ctx.db.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0]
    for offset in range(days + 1):
        day = (date.fromisoformat(begin) + timedelta(days=offset)).isoformat()
        ctx.db.execute(
            "INSERT OR REPLACE INTO statements (fixmedins_code, day, msgid, upto) VALUES (?,?,?,?)",
            (ctx.fixmedins_code, day, ctx.msgid, upto),
        )
    if agree:
        dscr = "对账平 / balanced"
    else:
        dscr = (
            f"对账不平：医保 {ours['n']} 笔，医疗费 {money(ours['medfee'])}，"
            f"基金 {money(ours['fund'])}，个人账户 {money(ours['acct'])} / not balanced: "
            f"the platform has {ours['n']} settlements, medfee {money(ours['medfee'])}, "
            f"fund {money(ours['fund'])}, account {money(ours['acct'])}"
        )
    return {
        "stmtinfo": {
            "setl_optins": optins, "stmt_rslt": "0" if agree else "1", "stmt_rslt_dscr": dscr,
        }
    }  # fmt: skip
