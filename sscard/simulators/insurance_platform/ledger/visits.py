"""The visit and its fee details: 2201 register, 2202 cancel the registration,
2203 diagnosis, 2204 upload fee details, 2205 delete them (§M1.7).

2204 answers ``result[]`` with the 19 fields real HIS code reads; a single
``feedetail`` object counts as a list of one.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

from sscard.simulators.insurance_platform.ledger.common import (
    Ctx,
    Refusal,
    amount,
    data,
    next_value,
    open_visit,
    person,
    quantity,
    rows,
)
from sscard.simulators.insurance_platform.ledger.schema import (
    FeeState,
    SettlementState,
    VisitState,
)
from sscard.simulators.insurance_platform.policies import ItemClass, classify_item
from sscard.simulators.insurance_platform.wire import dumps, to_cents


def register(ctx: Ctx) -> dict[str, Any]:
    """2201: open a visit; one open visit per outpatient number and institution."""
    req = data(ctx.env)
    psn_no = str(req.get("psn_no") or "")
    insured = person(ctx, psn_no)
    if str(req.get("insutype") or "") != insured["insutype"]:
        raise Refusal("险种类型与参保信息不符", "insutype does not match the person's insurance")
    otp = str(req.get("ipt_otp_no") or "")
    if not otp:
        raise Refusal("门诊号不能为空", "ipt_otp_no is required")
    taken = ctx.db.execute(
        "SELECT 1 FROM visits WHERE fixmedins_code = ? AND ipt_otp_no = ? AND state = ?",
        (ctx.fixmedins_code, otp, VisitState.REGISTERED),
    ).fetchone()
    if taken:
        raise Refusal("门诊号已登记", "ipt_otp_no already registered")
    mdtrt_id = f"{ctx.mdtrtarea}{ctx.now:%Y%m%d}{next_value(ctx.db, 'mdtrt'):010d}"
    ctx.db.execute(
        "INSERT INTO visits (mdtrt_id, psn_no, fixmedins_code, mdtrtarea_admvs, ipt_otp_no,"
        " insutype, begntime, med_type, reg_msgid, state, diseinfo)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
        (mdtrt_id, psn_no, ctx.fixmedins_code, ctx.mdtrtarea, otp, insured["insutype"],
         str(req.get("begntime") or f"{ctx.now:%Y-%m-%d %H:%M:%S}"), "", ctx.msgid,
         VisitState.REGISTERED),
    )  # fmt: skip
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": otp}}


def cancel_registration(ctx: Ctx) -> dict[str, Any]:
    """2202: only a visit without a settlement or remaining fee details."""
    req = data(ctx.env)
    visit = open_visit(ctx, str(req.get("mdtrt_id") or ""), str(req.get("psn_no") or ""))
    close_visit(ctx, visit["mdtrt_id"], delete_details=False)
    return {}


def close_visit(ctx: Ctx, mdtrt_id: str, *, delete_details: bool) -> None:
    """Cancel a visit (2202, or a 2601 of its 2201, which also drops its details)."""
    if ctx.db.execute(
        "SELECT 1 FROM settlements WHERE mdtrt_id = ? AND state = ?",
        (mdtrt_id, SettlementState.SETTLED),
    ).fetchone():
        raise Refusal(
            "就诊已结算，请先撤销结算(2208)", "visit has a settlement; cancel it (2208) first"
        )
    active = ctx.db.execute(
        "SELECT count(*) FROM fee_details WHERE mdtrt_id = ? AND state = ?",
        (mdtrt_id, FeeState.ACTIVE),
    ).fetchone()[0]
    if active and not delete_details:
        raise Refusal(
            "存在未撤销的费用明细，请先撤销(2205)", "fee details remain; delete them (2205) first"
        )
    ctx.db.execute(
        "UPDATE fee_details SET state = ? WHERE mdtrt_id = ?", (FeeState.DELETED, mdtrt_id)
    )
    ctx.db.execute(
        "UPDATE visits SET state = ? WHERE mdtrt_id = ?", (VisitState.CANCELLED, mdtrt_id)
    )


def diagnose(ctx: Ctx) -> dict[str, Any]:
    """2203: the visit's medical type and diagnoses (``mdtrtinfo`` + ``diseinfo``)."""
    info = data(ctx.env, "mdtrtinfo")
    visit = open_visit(ctx, str(info.get("mdtrt_id") or ""), str(info.get("psn_no") or ""))
    ctx.db.execute(
        "UPDATE visits SET med_type = ?, diseinfo = ? WHERE mdtrt_id = ?",
        (str(info.get("med_type") or ""), dumps(rows(ctx.env, "diseinfo")), visit["mdtrt_id"]),
    )
    return {}


def upload_fees(ctx: Ctx) -> dict[str, Any]:
    """2204: store each detail with its class (own-pay, pre-self-pay, in-scope)."""
    items = rows(ctx.env, "feedetail")
    if not items:
        raise Refusal("费用明细不能为空", "feedetail is empty")
    results = []
    visits: dict[tuple[str, str], sqlite3.Row] = {}  # one look-up per visit, not per item
    for item in items:
        if not isinstance(item, dict):
            raise Refusal("费用明细格式错误", "malformed feedetail entry")
        key = (str(item.get("mdtrt_id") or ""), str(item.get("psn_no") or ""))
        visit = visits.get(key)
        if visit is None:
            visit = visits[key] = open_visit(ctx, *key)
        sn = str(item.get("feedetl_sn") or "")
        fee = amount(item.get("det_item_fee_sumamt"), "det_item_fee_sumamt")
        codg = str(item.get("med_list_codg") or "")
        if not sn or not codg:
            raise Refusal(
                "明细流水号与目录编码不能为空", "feedetl_sn and med_list_codg are required"
            )
        if ctx.db.execute(
            "SELECT 1 FROM fee_details WHERE mdtrt_id = ? AND feedetl_sn = ? AND state != ?",
            (visit["mdtrt_id"], sn, FeeState.DELETED),
        ).fetchone():
            raise Refusal(f"明细流水号 {sn} 已上传", f"feedetl_sn {sn} already uploaded")
        cls: ItemClass = classify_item(codg, fee)
        ctx.db.execute(
            "INSERT OR REPLACE INTO fee_details (mdtrt_id, feedetl_sn, chrg_bchno,"
            " med_list_codg, amount_cents, ownpay_cents, preselfpay_cents, inscp_cents,"
            " setl_id, state) VALUES (?,?,?,?,?,?,?,?,NULL,?)",
            (visit["mdtrt_id"], sn, str(item.get("chrg_bchno") or ""), codg, to_cents(fee),
             to_cents(cls.fulamt_ownpay_amt), to_cents(cls.preselfpay_amt),
             to_cents(cls.inscp_scp_amt), FeeState.ACTIVE),
        )  # fmt: skip
        results.append(
            {
                "feedetl_sn": sn, "det_item_fee_sumamt": fee,
                "cnt": quantity(item.get("cnt")), "pric": quantity(item.get("pric")),
                "pric_uplmt_amt": fee, "selfpay_prop": cls.selfpay_prop,
                "fulamt_ownpay_amt": cls.fulamt_ownpay_amt, "overlmt_amt": Decimal("0.00"),
                "preselfpay_amt": cls.preselfpay_amt, "inscp_scp_amt": cls.inscp_scp_amt,
                "chrgitm_lv": cls.chrgitm_lv, "med_chrgitm_type": cls.med_chrgitm_type,
                "lmt_used_flag": "0", "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
                "chld_medc_flag": "0", "list_sp_item_flag": "0", "drt_reim_flag": "0",
                "memo": "",
            }
        )  # fmt: skip
    return {"result": results}


def delete_fees(ctx: Ctx) -> dict[str, Any]:
    """2205: unsettled details of one batch (``chrg_bchno``), or all with ``0000``."""
    req = data(ctx.env)
    visit = open_visit(ctx, str(req.get("mdtrt_id") or ""), str(req.get("psn_no") or ""))
    bchno = str(req.get("chrg_bchno") or "0000")
    sql = "UPDATE fee_details SET state = ? WHERE mdtrt_id = ? AND state = ? AND setl_id IS NULL"
    args: tuple[Any, ...] = (FeeState.DELETED, visit["mdtrt_id"], FeeState.ACTIVE)
    if bchno != "0000":
        sql += " AND chrg_bchno = ?"
        args += (bchno,)
    ctx.db.execute(sql, args)
    return {}
