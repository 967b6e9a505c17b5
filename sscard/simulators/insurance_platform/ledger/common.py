"""What every transaction family shares: the request context, the refusal, the
readers of the ``input`` nodes and of amounts, and the person / visit look-ups.

Node names are matched case-insensitively and a single object counts as a list of
one, because Shenzhen's public HIS classes send ``mdtrtInfo`` and a lone
``feedetail`` object (§M1.7).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sscard.simulators.insurance_platform.ledger.schema import FilingStatus, VisitState
from sscard.simulators.insurance_platform.policies import POLICIES, AreaPolicy, area_covers
from sscard.simulators.insurance_platform.wire import from_cents


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
class Ctx:
    """One request inside its transaction (``db`` yields :class:`sqlite3.Row`)."""

    db: sqlite3.Connection
    env: dict[str, Any]
    msgid: str
    infno: str
    fixmedins_code: str
    mdtrtarea: str
    now: datetime
    policies: dict[str, AreaPolicy] = field(default_factory=lambda: POLICIES)

    @property
    def day(self) -> str:
        return self.now.date().isoformat()


#: A transaction handler: the ``output`` of a successful reply, or :class:`Refusal`.
Handler = Callable[[Ctx], dict[str, Any]]


def node(env: dict[str, Any], key: str) -> Any:
    """``input[key]``, the name matched case-insensitively (``mdtrtInfo`` = ``mdtrtinfo``)."""
    inp = env.get("input")
    if not isinstance(inp, dict):
        return None
    if key in inp:
        return inp[key]
    lowered = key.lower()
    return next((v for k, v in inp.items() if str(k).lower() == lowered), None)


def data(env: dict[str, Any], key: str = "data") -> dict[str, Any]:
    value = node(env, key)
    return value if isinstance(value, dict) else {}


def rows(env: dict[str, Any], key: str) -> list[Any]:
    """A list node; a single object where the spec has a list counts as a list of one."""
    value = node(env, key)
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


def age(brdy: str, today: date) -> int:
    born = date.fromisoformat(brdy)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def day_of(value: Any, name: str) -> str:
    """``yyyy-MM-dd`` from a date, date-time or ISO date-time string."""
    text = str(value or "").strip()[:10]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise Refusal(f"{name} 不是有效日期", f"{name} is not a valid date") from None


def amount(value: Any, name: str) -> Decimal:
    try:
        result = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise Refusal(f"{name} 不是有效金额", f"{name} is not a valid amount") from None
    if result < 0 or result > Decimal("100000000"):
        raise Refusal(f"{name} 金额超出范围", f"{name} out of range")
    return result


def money(cents: int) -> Decimal:
    return from_cents(cents)


def quantity(value: Any) -> Decimal:
    """cnt (16,4) / pric (16,6) echoed in 2204 ``result[]``; 0 when unreadable."""
    try:
        return Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        return Decimal(0)


def normalise_date(value: date | str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    text = value.strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text).isoformat()


def next_value(db: sqlite3.Connection, name: str) -> int:
    """The next value of counter ``name`` (1, 2, ...), in the caller's transaction."""
    row = db.execute(
        "INSERT INTO counters (name, value) VALUES (?, 1)"
        " ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        (name,),
    ).fetchone()
    return int(row[0])


def person(ctx: Ctx, psn_no: str) -> sqlite3.Row:
    """The insured person, who must be routed to their own insured area (§M1.7)."""
    row: sqlite3.Row | None = ctx.db.execute(
        "SELECT * FROM persons WHERE psn_no = ?", (psn_no,)
    ).fetchone()
    if row is None:
        raise Refusal("参保人员不存在", "insured person not found")
    routed = str(ctx.env.get("insuplc_admdvs") or "")
    if routed != row["insuplc_admdvs"]:
        raise Refusal(
            f"参保地医保区划 {routed or '(空)'} 与参保人不符，请取1101返回值",
            f"insuplc_admdvs {routed or '(empty)'} does not match the insured's area; "
            "take it from 1101",
        )
    return row


def open_visit(
    ctx: Ctx, mdtrt_id: str, psn_no: str, *, person_checked: bool = False
) -> sqlite3.Row:
    """This institution's open visit of ``psn_no`` (after checking the person, unless
    the caller just did)."""
    if not person_checked:
        person(ctx, psn_no)
    row: sqlite3.Row | None = ctx.db.execute(
        "SELECT mdtrt_id, psn_no, state, begntime, med_type, insutype, ipt_otp_no"
        " FROM visits WHERE mdtrt_id = ? AND fixmedins_code = ?",
        (mdtrt_id, ctx.fixmedins_code),
    ).fetchone()
    if row is None or row["psn_no"] != psn_no:
        raise Refusal("就诊信息不存在", "visit (mdtrt_id) not found for this person")
    if row["state"] != VisitState.REGISTERED:
        raise Refusal("就诊已撤销", "visit was cancelled")
    return row


def usage(ctx: Ctx, psn_no: str) -> tuple[int, int]:
    """(deductible, fund) cents used this year."""
    row = ctx.db.execute(
        "SELECT dedc_cents, fund_cents FROM usage WHERE psn_no = ? AND year = ?",
        (psn_no, ctx.now.year),
    ).fetchone()
    return (row["dedc_cents"], row["fund_cents"]) if row else (0, 0)


def add_usage(ctx: Ctx, psn_no: str, year: int, dedc: int, fund: int) -> None:
    ctx.db.execute(
        "INSERT INTO usage (psn_no, year, dedc_cents, fund_cents) VALUES (?,?,?,?)"
        " ON CONFLICT(psn_no, year) DO UPDATE SET"
        " dedc_cents = dedc_cents + excluded.dedc_cents,"
        " fund_cents = fund_cents + excluded.fund_cents",
        (psn_no, year, dedc, fund),
    )


def filing_status(
    ctx: Ctx, psn_no: str, insuplc: str, mdtrtarea: str, med_type: str, day: str
) -> FilingStatus:
    """FILED / EMERGENCY / NOT_FILED for a visit on ``day`` (profile filing check)."""
    found = ctx.db.execute(
        "SELECT mdtrtarea_admvs, med_type, emergency FROM filings WHERE psn_no = ?"
        " AND insuplc_admdvs = ? AND begndate <= ? AND enddate >= ?",
        (psn_no, insuplc, day, day),
    ).fetchall()
    for filing in found:
        kind = filing["med_type"]
        if area_covers(filing["mdtrtarea_admvs"], mdtrtarea) and (
            not kind or not med_type or kind == med_type
        ):
            return FilingStatus.EMERGENCY if filing["emergency"] else FilingStatus.FILED
    return FilingStatus.NOT_FILED
