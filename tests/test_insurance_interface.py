"""The national interface as real HIS code reads it: one test per row of §1.7.

Raw envelopes over HTTP against the simulated platform (no sscard client in the
request path unless a row is about the client), asserting node names and JSON
types as the public HIS classes of medical-insurance.md §1.7 declare them
(binzhe12123/Medical SZSI_Smart/Model/SYB, newtouch-cloud/openhis NeiMengGuYiBaoApp
Models, idoku-test/HN-YBJ-SDK). Expected amounts are computed here from the policy
numbers, not by the simulator's split code.
"""

from __future__ import annotations

import http.client
import itertools
import json
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sscard.clock import beijing_now
from sscard.services.insurance import (
    MAX_INPUT_CHARS,
    ClientConfig,
    FeeItem,
    FeeUploadRequest,
    InsuranceClient,
    InvalidRequest,
    Settlement,
    split_fee_upload,
)
from sscard.simulators.insurance_platform import POLICIES, AcctScope, InsurancePlatform

FIXMEDINS = "H31010400001"
SHANGHAI = "310000"
CERTNO = "340104199001010011"  # test identity
CARD_NO, CARD_SN = "A12345678", "340100D15600000512345678ABCDEF01"
_SEQ = itertools.count(1)


def msgid() -> str:
    return f"{FIXMEDINS}{beijing_now():%Y%m%d%H%M%S}{next(_SEQ) % 10000:04d}"


class Raw:
    """Envelopes as SYBCommon.InCommon has them, posted as JSON; replies as parsed JSON."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "", parts.port, parts.path
        self.sign_no = ""

    def call(
        self, infno: str, body: Any, *, insuplc: str = "", sign: bool = True, mid: str = ""
    ) -> dict[str, Any]:
        envelope = {
            "infno": infno, "msgid": mid or msgid(), "mdtrtarea_admvs": SHANGHAI,
            "insuplc_admdvs": insuplc, "recer_sys_code": "MBS_LOCAL", "dev_no": "",
            "dev_safe_info": "", "cainfo": "", "signtype": "", "infver": "V1.0",
            "opter_type": "1", "opter": "0001", "opter_name": "desk",
            "inf_time": beijing_now().strftime("%Y-%m-%d %H:%M:%S"), "fixmedins_code": FIXMEDINS,
            "fixmedins_name": "clinic", "sign_no": self.sign_no if sign else "", "input": body,
        }  # fmt: skip
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("POST", self.path, body=json.dumps(envelope, default=str).encode())
            resp = conn.getresponse()
            assert resp.status == 200  # HTTP 200 whether or not the platform agrees (§1.7)
            return json.loads(resp.read())  # type: ignore[no-any-return]
        finally:
            conn.close()

    def ok(self, infno: str, body: Any, **kw: Any) -> dict[str, Any]:
        reply = self.call(infno, body, **kw)
        assert reply["infcode"] == 0, reply["err_msg"]
        return reply["output"]  # type: ignore[no-any-return]


@pytest.fixture
def raw(platform: InsurancePlatform) -> Raw:
    r = Raw(platform.url)
    r.sign_no = r.ok("9001", {"signIn": {"opter_no": "0001", "mac": "", "ip": ""}})["signinoutb"][
        "sign_no"
    ]
    return r


def enrol(platform: InsurancePlatform, area: str = "340100", balance: str = "1000.00") -> str:
    psn_no = platform.add_person(
        CERTNO, "测试甲", "1", "1990-01-01", area, "310", balance, card_no=CARD_NO, card_sn=CARD_SN
    )
    platform.add_filing(psn_no, area, SHANGHAI, date.today(), date(2099, 12, 31))
    return psn_no


def now() -> str:
    return beijing_now().strftime("%Y-%m-%d %H:%M:%S")


ITEMS = [  # class A 500, class B 200 (10 % first self-payment), self-paid 100
    ("1", "XA01AA", "500.00", "1", "500"),
    ("2", "B02BB", "200.00", "2", "100"),
    ("3", "ZF03CC", "100.00", "1", "100"),
]


def visit(raw: Raw, psn_no: str, area: str, otp: str = "MZ1") -> str:
    """2201 → 2203 → 2204; the mdtrt_id."""
    mdtrt_id = raw.ok(
        "2201",
        {"data": {"psn_no": psn_no, "insutype": "310", "begntime": now(),
                  "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "ipt_otp_no": otp,
                  "atddr_no": "D1", "dr_name": "医生", "dept_code": "A03", "dept_name": "全科",
                  "caty": "A03"}},
        insuplc=area,
    )["data"]["mdtrt_id"]  # fmt: skip
    raw.ok(
        "2203",
        {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
                       "begntime": now()}, "diseinfo": []},
        insuplc=area,
    )  # fmt: skip
    raw.ok(
        "2204",
        {"feedetail": [
            {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1",
             "rx_circ_flag": "0", "fee_ocur_time": now(), "med_list_codg": codg,
             "medins_list_codg": f"H-{sn}", "det_item_fee_sumamt": amount, "cnt": cnt,
             "pric": pric, "bilg_dept_codg": "A03", "bilg_dept_name": "全科",
             "bilg_dr_codg": "D1", "bilg_dr_name": "医生", "hosp_appr_flag": "1"}
            for sn, codg, amount, cnt, pric in ITEMS
        ]},
        insuplc=area,
    )  # fmt: skip
    return str(mdtrt_id)


def settle_body(psn_no: str, mdtrt_id: str, pre: dict[str, Any] | None = None, **kw: Any) -> Any:
    data = {
        "psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "med_type": "11",
        "medfee_sumamt": "800.00", "psn_setlway": "01", "mdtrt_id": mdtrt_id,
        "chrg_bchno": "B1", "insutype": "310", "acct_used_flag": "1",
    }  # fmt: skip
    if pre is not None:
        data.update(
            invono="",
            **{k: pre[k] for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
                                   "inscp_scp_amt")},
        )  # fmt: skip
    data.update(kw)
    return {"data": data}


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- envelope ------------------------------------------------------------------------


def test_envelope_infcode_is_a_number_and_inf_refmsgid_always_30_chars(
    raw: Raw, platform: InsurancePlatform
) -> None:
    """OutCommon: infcode int, inf_refmsgid = area(6) + yyyyMMddHHmmss(14) + serial(10)."""
    enrol(platform)
    replies = [
        raw.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}}),  # ok
        raw.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x"}}),  # refused
        raw.call("1101", {}, mid="short"),  # refused before the ledger
        raw.call("7777", {}),  # unknown infno
    ]
    assert [r["infcode"] for r in replies] == [0, -1, -1, -1]
    refs = set()
    for reply in replies:
        assert type(reply["infcode"]) is int
        ref = reply["inf_refmsgid"]
        assert len(ref) == 30 and ref.isdigit(), ref
        datetime.strptime(ref[6:20], "%Y%m%d%H%M%S")
        assert len(reply["refmsg_time"]) == 17 and len(reply["respond_time"]) == 17
        refs.add(ref)
    assert len(refs) == 4
    assert replies[0]["inf_refmsgid"].startswith(SHANGHAI)


def test_sign_no_is_optional(raw: Raw, platform: InsurancePlatform) -> None:
    enrol(platform)
    reply = raw.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}},
                     sign=False)  # fmt: skip
    assert reply["infcode"] == 0


def test_input_over_40000_characters_is_refused(raw: Raw, platform: InsurancePlatform) -> None:
    psn_no = enrol(platform)
    big = {"data": {"psn_no": psn_no, "mdtrt_id": "M", "memo": "x" * MAX_INPUT_CHARS}}
    reply = raw.call("2205", big, insuplc="340100")
    assert reply["infcode"] == -1 and "40000" in reply["err_msg"]
    assert platform.ledger.message_count("2205") == 0


def test_the_client_refuses_an_oversized_body_and_fee_uploads_are_split(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    items = tuple(
        FeeItem(f"{k}", "XA01AA001", f"H-{k:04d}", Decimal("1.00"), Decimal(1), Decimal("1.00"),
                medins_list_name="阿莫西林胶囊 0.25g*24粒", fee_ocur_time=now())
        for k in range(400)
    )  # fmt: skip
    upload = FeeUploadRequest("M1", "P1", "340100", "B1", now(), items)
    config = ClientConfig(platform.url, FIXMEDINS, "clinic", SHANGHAI)
    with InsuranceClient(config, tmp_path / "o.db") as client:
        with pytest.raises(InvalidRequest, match="40,000"):
            client.upload_fees(upload)
        assert client.outbox.rows(infno="2204") == []  # refused before it was written
    parts = split_fee_upload(upload)
    assert len(parts) > 1 and sum(len(p.items) for p in parts) == 400
    assert [i.feedetl_sn for p in parts for i in p.items] == [i.feedetl_sn for i in items]
    for part in parts:
        part.check_size()


# -- 1101 ---------------------------------------------------------------------------


def test_1101_identifies_a_card_by_number_and_card_sn(
    raw: Raw, platform: InsurancePlatform
) -> None:
    """Card numbers repeat across provinces: number alone, or a wrong card_sn, finds nobody."""
    psn_no = enrol(platform)
    other = platform.add_person(
        "330106198808080088", "测试乙", "2", "1988-08-08", "330100", card_no=CARD_NO,
        card_sn="330100D1560000058877665544332211",
    )  # fmt: skip
    found = raw.ok("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": CARD_NO,
                                     "card_sn": CARD_SN.lower()}})  # fmt: skip
    assert found["baseinfo"]["psn_no"] == psn_no != other
    refused = {
        "no card_sn": {"mdtrt_cert_type": "03", "mdtrt_cert_no": CARD_NO},
        "empty number": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "", "card_sn": CARD_SN},
        "wrong card_sn": {"mdtrt_cert_type": "03", "mdtrt_cert_no": CARD_NO,
                          "card_sn": "340100D156000005" + "0" * 16},
        "certno of another": {"mdtrt_cert_type": "03", "mdtrt_cert_no": CARD_NO,
                              "card_sn": CARD_SN, "certno": "330106198808080088"},
    }  # fmt: skip
    messages = {k: raw.call("1101", {"data": v})["err_msg"] for k, v in refused.items()}
    assert "card_sn" in messages["no card_sn"]
    assert messages["empty number"].startswith("就诊凭证编号不能为空")
    assert "未查询到参保人员信息" in messages["wrong card_sn"]
    assert "certno" in messages["certno of another"]


def test_1101_age_is_numeric(raw: Raw, platform: InsurancePlatform) -> None:
    enrol(platform)
    out = raw.ok("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO}})
    base = out["baseinfo"]
    assert isinstance(base["age"], int | float) and not isinstance(base["age"], bool)
    today = beijing_now().date()
    assert base["age"] == today.year - 1990 - ((today.month, today.day) < (1, 1))
    assert isinstance(out["insuinfo"], list) and isinstance(out["idetinfo"], list)
    assert isinstance(out["insuinfo"][0]["balc"], int | float)


# -- 2204 -----------------------------------------------------------------------------


RESULT_2204 = {
    "feedetl_sn", "det_item_fee_sumamt", "cnt", "pric", "pric_uplmt_amt", "selfpay_prop",
    "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt", "chrgitm_lv",
    "med_chrgitm_type", "lmt_used_flag", "bas_medn_flag", "hi_nego_drug_flag",
    "chld_medc_flag", "list_sp_item_flag", "drt_reim_flag", "memo",
}  # fmt: skip


def test_2204_result_has_the_19_fields(raw: Raw, platform: InsurancePlatform) -> None:
    psn_no = enrol(platform)
    mdtrt_id = raw.ok(
        "2201",
        {"data": {"psn_no": psn_no, "insutype": "310", "begntime": now(),
                  "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "ipt_otp_no": "MZ9"}},
        insuplc="340100",
    )["data"]["mdtrt_id"]  # fmt: skip
    # Shenzhen's ZJ2204 class sends a lone object where the spec has a list: accepted.
    out = raw.ok(
        "2204",
        {"feedetail": {"feedetl_sn": "7", "mdtrt_id": mdtrt_id, "psn_no": psn_no,
                       "chrg_bchno": "B1", "fee_ocur_time": now(), "med_list_codg": "B02BB",
                       "medins_list_codg": "H-7", "det_item_fee_sumamt": "37.50", "cnt": 2.5,
                       "pric": "15.00"}},
        insuplc="340100",
    )  # fmt: skip
    (row,) = out["result"]
    assert set(row) == RESULT_2204
    assert Decimal(str(row["cnt"])) == Decimal("2.5") and Decimal(str(row["pric"])) == 15
    assert row["chrgitm_lv"] == "02" and Decimal(str(row["preselfpay_amt"])) == Decimal("3.75")


# -- 2206 / 2207 --------------------------------------------------------------------


PERSON_FIELDS = (
    "psn_no", "psn_name", "psn_cert_type", "certno", "gend", "naty", "brdy", "age", "insutype",
    "psn_type", "cvlserv_flag", "mdtrt_cert_type",
)  # fmt: skip


def test_2206_and_2207_setlinfo_carry_the_person_and_medins_setl_id(
    raw: Raw, platform: InsurancePlatform
) -> None:
    psn_no = enrol(platform)
    mdtrt_id = visit(raw, psn_no, "340100")
    pre_id = msgid()
    pre = raw.ok("2206", settle_body(psn_no, mdtrt_id), insuplc="340100", mid=pre_id)
    setl_id = msgid()
    done = raw.ok("2207", settle_body(psn_no, mdtrt_id, pre["setlinfo"]), insuplc="340100",
                  mid=setl_id)  # fmt: skip
    for out, mid in ((pre, pre_id), (done, setl_id)):
        info = out["setlinfo"]
        for name in PERSON_FIELDS:
            assert info[name] not in (None, ""), name
        assert info["psn_name"] == "测试甲" and info["certno"] == CERTNO
        assert info["brdy"] == "1990-01-01" and isinstance(info["age"], int | float)
        assert info["mdtrt_cert_type"] == "02" and info["medins_setl_id"] == mid
        assert isinstance(out["setldetail"], list)
        for amount in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay", "balc"):
            assert isinstance(info[amount], int | float), amount
    assert done["setlinfo"]["setl_id"] and not pre["setlinfo"]["setl_id"]


@pytest.mark.parametrize(
    "missing", ["fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]
)
def test_2207_refuses_a_body_without_the_four_required_amounts(
    raw: Raw, platform: InsurancePlatform, missing: str
) -> None:
    psn_no = enrol(platform)
    mdtrt_id = visit(raw, psn_no, "340100")
    pre = raw.ok("2206", settle_body(psn_no, mdtrt_id), insuplc="340100")["setlinfo"]
    body = settle_body(psn_no, mdtrt_id, pre)
    del body["data"][missing]
    reply = raw.call("2207", body, insuplc="340100")
    assert reply["infcode"] == -1 and missing in reply["err_msg"]
    assert platform.ledger.settlements() == []
    assert platform.balance(psn_no) == Decimal("1000.00")


@pytest.mark.parametrize("area", sorted(POLICIES))
@pytest.mark.parametrize("setlway", ["01", "02"])
def test_acct_used_flag_lets_the_personal_account_pay_in_every_area(
    raw: Raw, platform: InsurancePlatform, area: str, setlway: str
) -> None:
    """§1.7: acct_used_flag=1 -> acct_pay > 0 and balc falls; 0 -> the account is untouched."""
    psn_no = enrol(platform, area)
    policy = POLICIES[area]
    assert policy.acct_scope is not AcctScope.NONE
    inscp, ownpay = Decimal("680.00"), Decimal("100.00")  # 500 A + 180 of the 200 B
    dedc_left, fund_left = policy.deductible, policy.annual_cap
    for flag, otp in (("0", "MZ0"), ("1", "MZ1")):
        # This visit's split by hand: deductible left first, then ratio, up to the cap.
        dedc = min(inscp, dedc_left)
        fund = min(cents((inscp - dedc) * policy.ratio), fund_left)
        dedc_left, fund_left = dedc_left - dedc, fund_left - fund
        personal = Decimal("800.00") - fund
        acct = personal if policy.acct_scope is AcctScope.ALL else personal - ownpay
        mdtrt_id = visit(raw, psn_no, area, otp)
        body = settle_body(psn_no, mdtrt_id, acct_used_flag=flag, psn_setlway=setlway)
        pre = raw.ok("2206", body, insuplc=area)["setlinfo"]
        info = raw.ok("2207", settle_body(psn_no, mdtrt_id, pre, acct_used_flag=flag,
                                          psn_setlway=setlway), insuplc=area)["setlinfo"]  # fmt: skip
        assert Decimal(str(info["fund_pay_sumamt"])) == fund
        if flag == "0":
            assert Decimal(str(info["acct_pay"])) == 0
            assert platform.balance(psn_no) == Decimal("1000.00")
        else:
            assert Decimal(str(info["acct_pay"])) == acct > 0
            assert Decimal(str(info["balc"])) == Decimal("1000.00") - acct
            assert platform.balance(psn_no) == Decimal("1000.00") - acct


# -- 2208 ------------------------------------------------------------------------------


def test_2208_answers_pdn_cash_pay_and_the_reversed_setldetail(
    raw: Raw, platform: InsurancePlatform, tmp_path: Path
) -> None:
    psn_no = enrol(platform)
    mdtrt_id = visit(raw, psn_no, "340100")
    pre = raw.ok("2206", settle_body(psn_no, mdtrt_id), insuplc="340100")["setlinfo"]
    done = raw.ok("2207", settle_body(psn_no, mdtrt_id, pre), insuplc="340100")
    setl_id = done["setlinfo"]["setl_id"]
    out = raw.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}},
                 insuplc="340100")  # fmt: skip
    info = out["setlinfo"]
    cash = Decimal(str(done["setlinfo"]["psn_cash_pay"]))
    assert cash > 0 and Decimal(str(info["pdn_cash_pay"])) == -cash  # the spec's spelling
    assert Decimal(str(info["medfee_sumamt"])) == Decimal("-800.00")
    assert info["setl_id"] != setl_id and Decimal(str(info["balc"])) == Decimal("1000.00")
    (original,) = done["setldetail"]
    (reversed_,) = out["setldetail"]
    assert reversed_["fund_pay_type"] == original["fund_pay_type"]
    assert Decimal(str(reversed_["fund_payamt"])) == -Decimal(str(original["fund_payamt"])) < 0
    # The client reads the cash from pdn_cash_pay when psn_cash_pay is absent.
    without = {k: v for k, v in out.items()}
    without["setlinfo"] = {k: v for k, v in info.items() if k != "psn_cash_pay"}
    parsed = Settlement.from_output("m", json.loads(json.dumps(without), parse_float=Decimal))
    assert parsed.setlinfo.psn_cash_pay == -cash


# -- 2601 ------------------------------------------------------------------------------


def test_2601_of_a_message_never_seen_is_an_error(raw: Raw, platform: InsurancePlatform) -> None:
    psn_no = enrol(platform)
    never = msgid()
    reply = raw.call("2601", {"data": {"psn_no": psn_no, "omsgid": never, "oinfno": "2207"}},
                     insuplc="340100")  # fmt: skip
    assert reply["infcode"] == -1 and "omsgid" in reply["err_msg"]


def test_a_3201_does_not_block_reversing_a_settlement_made_after_it(
    raw: Raw, platform: InsurancePlatform
) -> None:
    psn_no = enrol(platform)
    settled = []
    for otp in ("MZ1", "MZ2"):
        mdtrt_id = visit(raw, psn_no, "340100", otp)
        pre = raw.ok("2206", settle_body(psn_no, mdtrt_id), insuplc="340100")["setlinfo"]
        mid = msgid()
        info = raw.ok("2207", settle_body(psn_no, mdtrt_id, pre), insuplc="340100",
                      mid=mid)["setlinfo"]  # fmt: skip
        settled.append((mid, info))
        if otp == "MZ1":  # the day's 3201 after the first settlement
            first = info
            out = raw.ok("3201", {"data": {
                "insutype": "310", "clr_type": "11", "setl_optins": "340100",
                "stmt_begndate": date.today().isoformat(),
                "stmt_enddate": date.today().isoformat(),
                "medfee_sumamt": first["medfee_sumamt"],
                "fund_pay_sumamt": first["fund_pay_sumamt"], "acct_pay": first["acct_pay"],
                "fixmedins_setl_cnt": 1}})  # fmt: skip
            assert out["stmtinfo"]["stmt_rslt"] == "0"
    (early, _), (late, _) = settled
    blocked = raw.call("2601", {"data": {"psn_no": psn_no, "omsgid": early, "oinfno": "2207"}},
                       insuplc="340100")  # fmt: skip
    assert blocked["infcode"] == -1 and "3201" in blocked["err_msg"]
    later = raw.ok("2601", {"data": {"psn_no": psn_no, "omsgid": late, "oinfno": "2207"}},
                   insuplc="340100")  # fmt: skip
    assert later["data"]["rvs_rslt"] == "reversed"
    assert [s["state"] for s in platform.ledger.settlements()] == ["settled", "reversed"]


def test_a_3201_does_not_block_reversing_a_registration(
    raw: Raw, platform: InsurancePlatform
) -> None:
    """A 2201 moves no money: a registration whose reply was lost can be undone after 3201."""
    psn_no = enrol(platform)
    reg = msgid()
    raw.ok("2201", {"data": {"psn_no": psn_no, "insutype": "310", "begntime": now(),
                             "mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO,
                             "ipt_otp_no": "MZ7"}}, insuplc="340100", mid=reg)  # fmt: skip
    day = date.today().isoformat()
    raw.ok("3201", {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "340100",
                             "stmt_begndate": day, "stmt_enddate": day, "medfee_sumamt": 0,
                             "fund_pay_sumamt": 0, "acct_pay": 0, "fixmedins_setl_cnt": 0}})  # fmt: skip
    out = raw.ok("2601", {"data": {"psn_no": psn_no, "omsgid": reg, "oinfno": "2201"}},
                 insuplc="340100")  # fmt: skip
    assert out["data"]["rvs_rslt"] == "reversed"
    assert platform.ledger._query("SELECT state FROM visits", ()) == [("cancelled",)]


# -- 3201 ------------------------------------------------------------------------------


def test_3201_takes_the_nine_spec_fields_and_answers_stmtinfo(
    raw: Raw, platform: InsurancePlatform
) -> None:
    """JS3201.In3201 (9 fields, no cash total) -> Output_3201.stmtinfo: a spec HIS balances."""
    psn_no = enrol(platform)
    mdtrt_id = visit(raw, psn_no, "340100")
    pre = raw.ok("2206", settle_body(psn_no, mdtrt_id), insuplc="340100")["setlinfo"]
    info = raw.ok("2207", settle_body(psn_no, mdtrt_id, pre), insuplc="340100")["setlinfo"]
    day = date.today().isoformat()
    nine = {
        "insutype": "310", "clr_type": info["clr_type"], "setl_optins": info["clr_optins"],
        "stmt_begndate": day, "stmt_enddate": day, "medfee_sumamt": info["medfee_sumamt"],
        "fund_pay_sumamt": info["fund_pay_sumamt"], "acct_pay": info["acct_pay"],
        "fixmedins_setl_cnt": 1,
    }  # fmt: skip
    out = raw.ok("3201", {"data": nine})
    assert set(out) == {"stmtinfo"}
    assert out["stmtinfo"]["stmt_rslt"] == "0"
    assert out["stmtinfo"]["setl_optins"] == "340100" and out["stmtinfo"]["stmt_rslt_dscr"]
    # DateTime-typed dates as a C# HIS serialises them also work.
    assert raw.ok("3201", {"data": {**nine, "stmt_begndate": f"{day}T00:00:00",
                                    "stmt_enddate": f"{day}T00:00:00"}})[
        "stmtinfo"]["stmt_rslt"] == "0"  # fmt: skip
    differs = raw.ok("3201", {"data": {**nine, "fixmedins_setl_cnt": 2}})["stmtinfo"]
    assert differs["stmt_rslt"] == "1" and "1 settlements" in differs["stmt_rslt_dscr"]
    missing = raw.call("3201", {"data": {k: v for k, v in nine.items() if k != "setl_optins"}})
    assert missing["infcode"] == -1 and "setl_optins" in missing["err_msg"]
