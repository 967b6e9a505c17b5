"""Sign-in and the insured person: 9001, 1101, and the profile filing check 2599.

``sign_no`` is optional (§M1.7); one that is sent must be one a 9001 issued to that
institution. A card (1101 type 03) is identified by card number **and** ``card_sn``:
card numbers repeat across provinces.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sscard.simulators.insurance_platform.ledger.common import (
    Ctx,
    Refusal,
    age,
    data,
    filing_status,
    money,
    next_value,
    person,
)


def check_sign_in(ctx: Ctx) -> None:
    """``sign_no`` is optional (§M1.7); one that is sent must be this institution's."""
    sign_no = str(ctx.env.get("sign_no") or "")
    if ctx.infno == "9001" or not sign_no:
        return
    row = ctx.db.execute(
        "SELECT fixmedins_code FROM sign_ins WHERE sign_no = ?", (sign_no,)
    ).fetchone()
    if row is None or row["fixmedins_code"] != ctx.fixmedins_code:
        raise Refusal("签到编号无效，请重新签到(9001)", "sign_no unknown: sign in again (9001)")


def sign_in(ctx: Ctx) -> dict[str, Any]:
    """9001: a ``sign_no`` of receiver area(6) + time(14) + serial(10)."""
    seq = next_value(ctx.db, "sign")
    area = ctx.mdtrtarea or "000000"
    sign_no = f"{area}{ctx.now:%Y%m%d%H%M%S}{seq:010d}"
    opter = str(data(ctx.env, "signIn").get("opter_no") or "")
    ctx.db.execute(
        "INSERT INTO sign_ins (sign_no, fixmedins_code, opter, at) VALUES (?,?,?,?)",
        (sign_no, ctx.fixmedins_code, opter, ctx.now.isoformat(sep=" ", timespec="seconds")),
    )
    return {"signinoutb": {"sign_time": f"{ctx.now:%Y-%m-%d %H:%M:%S}", "sign_no": sign_no}}


def person_info(ctx: Ctx) -> dict[str, Any]:
    """1101. Type 03 (SSC): card number **and** card_sn, which card numbers alone
    cannot give (they repeat across provinces); 02: the ID number. A ``certno``
    that is sent must be the person's (§M1.7)."""
    req = data(ctx.env)
    cert_type = str(req.get("mdtrt_cert_type") or "")
    cert_no = str(req.get("mdtrt_cert_no") or "").strip()
    if not cert_no:
        raise Refusal("就诊凭证编号不能为空", "mdtrt_cert_no must not be empty")
    if cert_type == "03":
        card_sn = str(req.get("card_sn") or "").strip().upper()
        if not card_sn:
            raise Refusal(
                "社会保障卡就诊须传卡识别码(card_sn)",
                "card_sn (card identification code) is required for an SSC (type 03)",
            )
        row = ctx.db.execute(
            "SELECT * FROM persons WHERE card_no = ? AND card_sn = ?", (cert_no, card_sn)
        ).fetchone()
    elif cert_type == "02":
        row = ctx.db.execute("SELECT * FROM persons WHERE certno = ?", (cert_no,)).fetchone()
    else:
        raise Refusal(
            f"就诊凭证类型 {cert_type or '(空)'} 不受支持（模拟平台支持02、03）",
            f"mdtrt_cert_type {cert_type or '(empty)'} not supported (simulator: 02, 03)",
        )
    if row is None:
        raise Refusal("未查询到参保人员信息", "insured person not found")
    certno = str(req.get("certno") or "").strip()
    if certno and certno != row["certno"]:
        raise Refusal("证件号码与就诊凭证不符", "certno does not match the visit credential")
    return {
        "baseinfo": {
            "psn_no": row["psn_no"], "psn_cert_type": "01", "certno": row["certno"],
            "psn_name": row["psn_name"], "gend": row["gend"], "naty": row["naty"],
            "brdy": row["brdy"], "age": Decimal(age(row["brdy"], ctx.now.date())),
        },
        "insuinfo": [
            {
                "balc": money(row["acct_cents"]), "insutype": row["insutype"],
                "psn_type": row["psn_type"], "psn_insu_stas": "1",
                "psn_insu_date": "2010-01-01", "paus_insu_date": "",
                "cvlserv_flag": row["cvlserv_flag"], "insuplc_admdvs": row["insuplc_admdvs"],
                "emp_name": row["emp_name"],
            }
        ],
        "idetinfo": [],
    }  # fmt: skip


def filing_check(ctx: Ctx) -> dict[str, Any]:
    """2599 (sscard profile): is a cross-area visit filed (备案) in the insured area?"""
    req = data(ctx.env)
    psn_no = str(req.get("psn_no") or "")
    insured = person(ctx, psn_no)
    area = str(req.get("mdtrtarea_admvs") or ctx.mdtrtarea)
    day = str(req.get("begntime") or ctx.day)[:10]
    status = filing_status(
        ctx, psn_no, str(insured["insuplc_admdvs"]), area, str(req.get("med_type") or ""), day
    )
    return {"data": {"filing_stas": status}}
