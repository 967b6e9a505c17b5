"""Settlement: 2206 pre-settle, 2207 settle, 2208 cancel, and the profile query 5261.

2206 and 2207 compute the same split of the visit's unsettled fee details under
the insured area's policy (policies.py); 2207 also moves the money and must carry
the amounts copied from the 2206 answer (§M1.7). Both answer ``setlinfo`` carrying
the person and ``setldetail[]``. Cross-province treatment without a filing is
refused (sscard profile). 2208 answers the reversed ``setlinfo`` and ``setldetail[]``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sscard.simulators.insurance_platform.ledger.common import (
    Ctx,
    Refusal,
    add_usage,
    age,
    amount,
    data,
    filing_status,
    money,
    next_value,
    open_visit,
    person,
    usage,
)
from sscard.simulators.insurance_platform.ledger.schema import (
    FeeState,
    FilingStatus,
    SettlementState,
)
from sscard.simulators.insurance_platform.policies import compute_split, policy_for
from sscard.simulators.insurance_platform.wire import dumps, loads, to_cents

#: 2207 must carry these amounts (copied from the 2206 answer), §M1.7.
SETTLE_REQUIRED = ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")
#: Amounts a reversed (2208) ``setlinfo`` / ``setldetail`` keeps as they were.
_NOT_NEGATED = ("balc", "pool_prop_selfpay", "age", "crt_payb_lmt_amt")
_ZERO = Decimal("0.00")


def pre_settle(ctx: Ctx) -> dict[str, Any]:
    """2206: the split, nothing stored."""
    return _split(ctx, commit=False)


def settle(ctx: Ctx) -> dict[str, Any]:
    """2207: the split, stored under a new ``setl_id``, the money moved."""
    return _split(ctx, commit=True)


def _split(ctx: Ctx, *, commit: bool) -> dict[str, Any]:
    req = data(ctx.env)
    psn_no = str(req.get("psn_no") or "")
    insured = person(ctx, psn_no)
    visit = open_visit(ctx, str(req.get("mdtrt_id") or ""), psn_no, person_checked=True)
    if commit:
        missing = [k for k in SETTLE_REQUIRED if req.get(k) is None or req.get(k) == ""]
        if missing:
            raise Refusal(
                f"结算(2207)缺少必填金额：{'、'.join(missing)}",
                f"2207 without the required amounts: {', '.join(missing)}",
            )
        for name in SETTLE_REQUIRED:
            amount(req.get(name), name)
    med_type = str(req.get("med_type") or visit["med_type"] or "")
    insuplc = str(insured["insuplc_admdvs"])
    if insuplc[:2] != ctx.mdtrtarea[:2]:
        day = str(visit["begntime"])[:10]
        status = filing_status(ctx, psn_no, insuplc, ctx.mdtrtarea, med_type, day)
        if status == FilingStatus.NOT_FILED:
            raise Refusal(
                f"跨省异地就医未备案：参保地 {insuplc} 无到就医地 {ctx.mdtrtarea} 的"
                f"异地就医备案（医疗类别 {med_type}）",
                f"cross-province treatment not filed: no filing (异地就医备案) from insured "
                f"area {insuplc} to treatment area {ctx.mdtrtarea} for med_type {med_type}",
            )
    policy = policy_for(insuplc, ctx.policies)
    if policy is None:
        raise Refusal("参保地政策未配置", "no policy for the insured area")
    where = "mdtrt_id = ? AND state = ? AND setl_id IS NULL"
    args: tuple[Any, ...] = (visit["mdtrt_id"], FeeState.ACTIVE)
    bchno = str(req.get("chrg_bchno") or "")
    if bchno and bchno != "0000":
        where += " AND chrg_bchno = ?"
        args += (bchno,)
    fees = ctx.db.execute(
        "SELECT coalesce(sum(amount_cents),0) AS total, coalesce(sum(ownpay_cents),0) AS own,"
        " coalesce(sum(preselfpay_cents),0) AS pre, coalesce(sum(inscp_cents),0) AS inscp,"
        f" count(*) AS n FROM fee_details WHERE {where}",
        args,
    ).fetchone()
    if fees["n"] == 0:
        raise Refusal("无待结算费用明细", "no unsettled fee details for this visit")
    medfee = amount(req.get("medfee_sumamt"), "medfee_sumamt")
    if to_cents(medfee) != fees["total"]:
        raise Refusal(
            f"医疗费总额 {medfee} 与明细合计 {money(fees['total'])} 不符",
            f"medfee_sumamt {medfee} does not match the uploaded details ({money(fees['total'])})",
        )
    dedc_used, fund_used = usage(ctx, psn_no)
    split = compute_split(
        policy,
        fulamt_ownpay_amt=money(fees["own"]),
        preselfpay_amt=money(fees["pre"]),
        inscp_scp_amt=money(fees["inscp"]),
        deductible_used=money(dedc_used),
        fund_used=money(fund_used),
        balance=money(insured["acct_cents"]),
        use_account=str(req.get("acct_used_flag") or "0") == "1",
    )
    setl_id = ""
    if commit:
        setl_id = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}9{next_value(ctx.db, 'setl'):09d}"
    insutype = insured["insutype"]
    fund_type = "310100" if insutype == "310" else "390100"
    clr_type = "41" if med_type.startswith("4") else "11"
    setlinfo = {
        "setl_id": setl_id, "mdtrt_id": visit["mdtrt_id"], "psn_no": psn_no,
        "psn_name": insured["psn_name"], "psn_cert_type": "01", "certno": insured["certno"],
        "gend": insured["gend"], "naty": insured["naty"], "brdy": insured["brdy"],
        "age": Decimal(age(insured["brdy"], ctx.now.date())), "insutype": insutype,
        "psn_type": insured["psn_type"], "cvlserv_flag": insured["cvlserv_flag"],
        "mdtrt_cert_type": str(req.get("mdtrt_cert_type") or ""),
        "medins_setl_id": ctx.msgid, "med_type": med_type,
        "setl_time": f"{ctx.now:%Y-%m-%d %H:%M:%S}" if commit else "",
        "medfee_sumamt": split.medfee_sumamt, "fulamt_ownpay_amt": split.fulamt_ownpay_amt,
        "overlmt_selfpay": _ZERO, "preselfpay_amt": split.preselfpay_amt,
        "inscp_scp_amt": split.inscp_scp_amt, "act_pay_dedc": split.act_pay_dedc,
        "hifp_pay": split.hifp_pay, "pool_prop_selfpay": split.pool_prop_selfpay,
        "cvlserv_pay": _ZERO, "hifes_pay": _ZERO, "hifmi_pay": _ZERO, "hifob_pay": _ZERO,
        "maf_pay": _ZERO, "oth_pay": _ZERO,
        "fund_pay_sumamt": split.fund_pay_sumamt, "psn_part_amt": split.psn_part_amt,
        "acct_pay": split.acct_pay, "psn_cash_pay": split.psn_cash_pay,
        "hosp_part_amt": _ZERO, "balc": split.balc,
        "acct_mulaid_pay": _ZERO, "clr_optins": insuplc, "clr_way": "1",
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
        add_usage(ctx, psn_no, ctx.now.year, to_cents(split.act_pay_dedc), to_cents(split.hifp_pay))
        ctx.db.execute(f"UPDATE fee_details SET setl_id = ? WHERE {where}", (setl_id, *args))
        ctx.db.execute(
            "INSERT INTO settlements (setl_id, medins_setl_id, mdtrt_id, psn_no,"
            " fixmedins_code, day, year, medfee_cents, fund_cents, hifp_cents, dedc_cents,"
            " acct_cents, cash_cents, state, undone_by, setlinfo, setldetail, insutype,"
            " clr_type, clr_optins) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?)",
            (setl_id, ctx.msgid, visit["mdtrt_id"], psn_no, ctx.fixmedins_code, ctx.day,
             ctx.now.year, to_cents(split.medfee_sumamt), to_cents(split.fund_pay_sumamt),
             to_cents(split.hifp_pay), to_cents(split.act_pay_dedc), acct,
             to_cents(split.psn_cash_pay), SettlementState.SETTLED, dumps(setlinfo),
             dumps(setldetail), insutype, clr_type, insuplc),
        )  # fmt: skip
    return {"setlinfo": setlinfo, "setldetail": setldetail}


def undo_settlement(
    ctx: Ctx, setl_id: str, state: SettlementState
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Give back the account payment and the year's deductible and fund usage (2208,
    or a 2601 of the 2207); returns the stored ``setlinfo`` and ``setldetail``."""
    row = ctx.db.execute(
        "SELECT psn_no, year, dedc_cents, hifp_cents, acct_cents, setlinfo, setldetail"
        " FROM settlements WHERE setl_id = ?",
        (setl_id,),
    ).fetchone()
    ctx.db.execute(
        "UPDATE persons SET acct_cents = acct_cents + ? WHERE psn_no = ?",
        (row["acct_cents"], row["psn_no"]),
    )
    add_usage(ctx, row["psn_no"], row["year"], -row["dedc_cents"], -row["hifp_cents"])
    ctx.db.execute("UPDATE fee_details SET setl_id = NULL WHERE setl_id = ?", (setl_id,))
    ctx.db.execute(
        "UPDATE settlements SET state = ?, undone_by = ? WHERE setl_id = ?",
        (state, ctx.msgid, setl_id),
    )
    return loads(row["setlinfo"]), loads(row["setldetail"])


def _negated(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (-v if isinstance(v, Decimal) and k not in _NOT_NEGATED else v)
        for k, v in values.items()
    }


def cancel(ctx: Ctx) -> dict[str, Any]:
    """2208: the reversed ``setlinfo`` and ``setldetail[]`` (amounts negated).

    The cash is given as ``psn_cash_pay`` and as the spec's ``pdn_cash_pay``
    (§M1.7): Shenzhen's public HIS class reads the latter, a captured 2208
    reply in public vendor code shows the former.
    """
    req = data(ctx.env)
    psn_no = str(req.get("psn_no") or "")
    person(ctx, psn_no)
    setl_id = str(req.get("setl_id") or "")
    row = ctx.db.execute(
        "SELECT mdtrt_id, psn_no, state, fixmedins_code FROM settlements WHERE setl_id = ?",
        (setl_id,),
    ).fetchone()
    if (
        row is None
        or row["psn_no"] != psn_no
        or row["mdtrt_id"] != req.get("mdtrt_id")
        or row["fixmedins_code"] != ctx.fixmedins_code
    ):
        raise Refusal("结算信息不存在", "settlement (setl_id) not found")
    if row["state"] != SettlementState.SETTLED:
        raise Refusal("结算已撤销或冲正", "settlement already cancelled or reversed")
    info, detail = undo_settlement(ctx, setl_id, SettlementState.CANCELLED)
    negated = _negated(info)
    negated["setl_id"] = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}9{next_value(ctx.db, 'setl'):09d}"
    negated["medins_setl_id"] = ctx.msgid
    negated["setl_time"] = f"{ctx.now:%Y-%m-%d %H:%M:%S}"
    negated["pdn_cash_pay"] = negated.get("psn_cash_pay", _ZERO)
    balance = ctx.db.execute(
        "SELECT acct_cents FROM persons WHERE psn_no = ?", (psn_no,)
    ).fetchone()["acct_cents"]
    negated["balc"] = money(balance)
    return {"setlinfo": negated, "setldetail": [_negated(d) for d in detail]}


def query(ctx: Ctx) -> dict[str, Any]:
    """5261 (sscard profile): what the platform holds for the 2207 with this msgid."""
    req = data(ctx.env)
    psn_no = str(req.get("psn_no") or "")
    person(ctx, psn_no)
    row = ctx.db.execute(
        "SELECT state, setlinfo FROM settlements WHERE medins_setl_id = ? AND psn_no = ?"
        " AND fixmedins_code = ?",
        (str(req.get("medins_setl_id") or ""), psn_no, ctx.fixmedins_code),
    ).fetchone()
    if row is None:
        return {"data": {"setl_stas": "none", "setlinfo": None}}
    return {"data": {"setl_stas": row["state"], "setlinfo": loads(row["setlinfo"])}}
