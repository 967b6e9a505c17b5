"""2601, reversal (冲正) of a message by its msgid (sscard profile).

Only oinfno 2201/2207/2304, same day, and not for a message the day's 3201
already covered (a settlement made after a reconciliation can still be
reversed). A 2601 of a message never seen is an error (infcode -1, §M1.7) and,
the simulator's own safety, bars that msgid should it still arrive.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sscard.simulators.insurance_platform.ledger.common import Ctx, Refusal, data, person
from sscard.simulators.insurance_platform.ledger.schema import (
    MessageState,
    SettlementState,
    VisitState,
)
from sscard.simulators.insurance_platform.ledger.settlement import undo_settlement
from sscard.simulators.insurance_platform.ledger.visits import close_visit

#: 2601 of a message the platform never saw (an error, §M1.7).
UNKNOWN_ORIGINAL = "原交易不存在 / original message (omsgid) not found"
#: What a 2601 may reverse (sscard profile).
REVERSIBLE = ("2201", "2207", "2304")


def reverse(ctx: Ctx) -> dict[str, Any]:
    """2601. An ``omsgid`` never seen is an error (§M1.7), and the simulator bars it so
    that a late copy cannot settle after the desk was told it did not. A 3201 stops
    the reversal of the settlements it reconciled, not of what came after it, nor of
    a registration (2201 moves no money)."""
    req = data(ctx.env)
    omsgid, oinfno = str(req.get("omsgid") or ""), str(req.get("oinfno") or "")
    psn_no = str(req.get("psn_no") or "")
    if oinfno not in REVERSIBLE:
        raise Refusal(f"交易 {oinfno} 不允许冲正", f"infno {oinfno} is not reversible")
    if len(omsgid) != 30 or not omsgid.startswith(ctx.fixmedins_code):
        raise Refusal("原报文号无效", "omsgid is not a msgid of this institution")
    person(ctx, psn_no)
    out = {"omsgid": omsgid, "oinfno": oinfno}
    prior = ctx.db.execute(
        "SELECT rowid, infno, day, psn_no, infcode, state FROM messages WHERE msgid = ?",
        (omsgid,),
    ).fetchone()
    if prior is None:

        def bar(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO messages (msgid, infno, day, fixmedins_code, psn_no,"
                " infcode, state, response, digest) VALUES (?,?,?,?,?,-1,?,'{}','')",
                (omsgid, oinfno, ctx.day, ctx.fixmedins_code, psn_no, MessageState.VOIDED),
            )

        zh, en = UNKNOWN_ORIGINAL.split(" / ")
        raise Refusal(zh, en, keep=bar)
    owner = prior["psn_no"]
    if prior["infno"] != oinfno or (owner and owner != psn_no):
        raise Refusal("原交易与冲正请求不符", "omsgid does not match oinfno / psn_no")
    if prior["state"] in (MessageState.REVERSED, MessageState.VOIDED):
        return {"data": {**out, "rvs_rslt": "already"}}
    if prior["day"] != ctx.day:
        raise Refusal("仅可冲正当日交易", "only same-day transactions can be reversed")
    closed = ctx.db.execute(
        "SELECT upto FROM statements WHERE fixmedins_code = ? AND day = ?",
        (ctx.fixmedins_code, prior["day"]),
    ).fetchone()
    if oinfno != "2201" and closed is not None and prior["rowid"] <= closed["upto"]:
        raise Refusal(
            "该交易已对账(3201)，不能冲正", "the transaction is reconciled (3201); no reversal"
        )
    result = "nothing"
    if prior["infcode"] == 0 and oinfno == "2207":
        row = ctx.db.execute(
            "SELECT setl_id, state FROM settlements WHERE medins_setl_id = ?", (omsgid,)
        ).fetchone()
        if row is not None and row["state"] == SettlementState.SETTLED:
            undo_settlement(ctx, row["setl_id"], SettlementState.REVERSED)
            result = "reversed"
    elif prior["infcode"] == 0 and oinfno == "2201":
        row = ctx.db.execute(
            "SELECT mdtrt_id, state FROM visits WHERE reg_msgid = ?", (omsgid,)
        ).fetchone()
        if row is not None and row["state"] == VisitState.REGISTERED:
            close_visit(ctx, row["mdtrt_id"], delete_details=True)
            result = "reversed"
    ctx.db.execute("UPDATE messages SET state = ? WHERE msgid = ?", (MessageState.REVERSED, omsgid))
    return {"data": {**out, "rvs_rslt": result}}
