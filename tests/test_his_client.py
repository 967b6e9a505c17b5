"""A HIS client written from public HIS code, against ``sscard sim insurance serve``.

Nothing of sscard's client or models is used: the envelope, the request bodies and
the reply shapes follow the public HIS classes of medical-insurance.md §1.7, and the
HTTP is stdlib ``urllib`` with the ``json`` module:

* envelope: ``binzhe12123/Medical`` SZSI_Smart/Model/SYB/SYBCommon.cs (``InCommon``
  field list, msgid = fixmedins_code(12) + yyyyMMddHHmmss(14) + seq(4); ``OutCommon``
  ``int infcode``), idoku-test/HN-YBJ-SDK NY-YBJ-SDK.Model/BaseResp.cs (``int infcode``);
* 9001 QD9001.cs ``signIn``/``signinoutb``; 1101 JBXX/RY1101.cs (type 03 with card_sn);
  2201 YBJS/GH2201.cs ``data``; 2203 YBJS/ZJ2203.cs; 2204 YBJS/ZJ2204.cs ``Result`` (19
  fields); 2206/2207 YBJS/JS2207.cs ``In2207`` and newtouch-cloud/openhis
  NeiMengGuYiBaoApp/Models/Output/YiBao/Output_2207.cs (``setlinfo2207``,
  ``List<setldetail>``); 2208 YBJS/ZJCX2208.cs (``pdn_cash_pay``); 3201
  YYJGFW/JS3201.cs ``In3201`` (nine fields) and openhis Output_3201.cs ``stmtinfo``.

Where public code disagrees with itself the test takes what a HIS can rely on: the
Shenzhen 1101 class types ``age`` as string and its 2207 class as int, a captured
reply in openhis (CQYiBaoInterface) has ``35.0``: a JSON number is asserted. The
Shenzhen 2208 class reads ``pdn_cash_pay``, the captured 2208 reply carries
``psn_cash_pay``: both are asserted present.

The chain is 9001 → 1101 → 2201 → 2203 → 2204 → 2206 → 2207 → 3201 (balanced) →
2208 → 3201, for a Jiangsu cardholder filed for treatment at a Shanghai clinic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from sscard.simulators.profile import new_card

FIXMEDINS_CODE, FIXMEDINS_NAME, MDTRTAREA = "H31010400009", "HIS测试医院", "310000"
BEIJING = timezone(timedelta(hours=8))

# Field lists as declared in the public classes (names, not sscard's).
BASEINFO = ("psn_no", "psn_cert_type", "certno", "psn_name", "gend", "naty", "brdy", "age")
INSUINFO = ("balc", "insutype", "psn_type", "psn_insu_stas", "psn_insu_date", "paus_insu_date",
            "cvlserv_flag", "insuplc_admdvs", "emp_name")  # fmt: skip
RESULT_2204 = ("feedetl_sn", "det_item_fee_sumamt", "cnt", "pric", "pric_uplmt_amt",
               "selfpay_prop", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt",
               "inscp_scp_amt", "chrgitm_lv", "med_chrgitm_type", "bas_medn_flag",
               "hi_nego_drug_flag", "chld_medc_flag", "list_sp_item_flag", "lmt_used_flag",
               "drt_reim_flag", "memo")  # fmt: skip
SETLINFO_2207 = ("mdtrt_id", "setl_id", "psn_no", "psn_name", "psn_cert_type", "certno", "gend",
                 "naty", "brdy", "age", "insutype", "psn_type", "cvlserv_flag", "setl_time",
                 "mdtrt_cert_type", "med_type", "medfee_sumamt", "fulamt_ownpay_amt",
                 "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc",
                 "hifp_pay", "pool_prop_selfpay", "cvlserv_pay", "hifes_pay", "hifmi_pay",
                 "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt",
                 "acct_pay", "psn_cash_pay", "hosp_part_amt", "balc", "acct_mulaid_pay",
                 "medins_setl_id", "clr_optins", "clr_way", "clr_type")  # fmt: skip
AMOUNTS_2207 = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
                "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay",
                "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt",
                "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt", "balc",
                "acct_mulaid_pay")  # fmt: skip
FUND_ITEMS = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
              "oth_pay")  # fmt: skip
SETLINFO_2208 = ("mdtrt_id", "setl_id", "clr_optins", "setl_time", "medfee_sumamt",
                 "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                 "act_pay_dedc", "hifp_pay", "pool_prop_selfpay", "cvlserv_pay", "hifes_pay",
                 "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt",
                 "psn_part_amt", "acct_pay", "balc", "acct_mulaid_pay", "hosp_part_amt",
                 "medins_setl_id", "pdn_cash_pay")  # fmt: skip
SETLDETAIL = ("fund_pay_type", "inscp_scp_amt", "crt_payb_lmt_amt", "fund_payamt",
              "fund_pay_type_name", "setl_proc_info")  # fmt: skip
STMTINFO = ("setl_optins", "stmt_rslt", "stmt_rslt_dscr")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def money(value: Any) -> Decimal:
    """What a C# ``decimal`` property makes of a JSON number."""
    assert is_number(value), value
    return Decimal(str(value)).quantize(Decimal("0.01"))


class His:
    """SYBCommon.InCommon over HTTP, as the public HIS code builds it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seq = 0
        self.sign_no = ""
        self.insuplc_admdvs = ""

    def msgid(self) -> str:
        self.seq += 1
        return f"{FIXMEDINS_CODE}{datetime.now(BEIJING):%Y%m%d%H%M%S}{self.seq:04d}"

    def post(self, infno: str, body: dict[str, Any]) -> dict[str, Any]:
        envelope = {
            "infno": infno,
            "msgid": self.msgid(),
            "mdtrtarea_admvs": MDTRTAREA,
            "insuplc_admdvs": self.insuplc_admdvs,
            "recer_sys_code": "MBS_LOCAL",
            "dev_no": "",
            "dev_safe_info": "",
            "cainfo": "",
            "signtype": "",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "HIS01",
            "opter_name": "收费员",
            "inf_time": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "fixmedins_code": FIXMEDINS_CODE,
            "fixmedins_name": FIXMEDINS_NAME,
            "sign_no": self.sign_no,
            "input": body,
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            reply = json.loads(response.read().decode("utf-8"))
        # OutCommon: int infcode, string inf_refmsgid (30), refmsg_time/respond_time (17).
        assert type(reply["infcode"]) is int
        assert isinstance(reply["inf_refmsgid"], str) and len(reply["inf_refmsgid"]) == 30
        assert len(reply["refmsg_time"]) == 17 and len(reply["respond_time"]) == 17
        assert reply["infcode"] == 0, reply["err_msg"]
        output = reply["output"]
        assert isinstance(output, dict)
        return output


def fields(node: dict[str, Any], names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in node]
    assert not missing, missing


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """``sscard sim insurance serve`` in its own process, the card's holder enrolled."""
    tmp = tmp_path_factory.mktemp("his")
    card_path = tmp / "card.json"
    new_card("jiangsu", seed=13).save(card_path)
    url_file = tmp / "url.txt"
    server = subprocess.Popen(
        [sys.executable, "-c", "from sscard.cli import main; main()", "sim", "insurance",
         "serve", "--db", str(tmp / "ledger.db"), "--url-file", str(url_file),
         "--enrol", str(card_path), "--filing-to", MDTRTAREA],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # What the card reader DLL (ReadCardBas) gives the HIS: card number, card_sn, holder.
        card = json.loads(card_path.read_text(encoding="utf-8"))["ssse"]
        yield url_file.read_text().strip(), card
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_his_chain_9001_to_3201_with_a_cancellation_in_between(
    served: tuple[str, dict[str, Any]],
) -> None:
    url, card = served
    his = His(url)
    now = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")

    # 9001: signIn -> signinoutb{sign_time, sign_no}
    out = his.post("9001", {"signIn": {"opter_no": "HIS01", "mac": "00-00-00-00-00-00",
                                       "ip": "127.0.0.1"}})  # fmt: skip
    fields(out["signinoutb"], ("sign_time", "sign_no"))
    datetime.strptime(out["signinoutb"]["sign_time"], "%Y-%m-%d %H:%M:%S")
    his.sign_no = out["signinoutb"]["sign_no"]

    # 1101 with the social security card: type 03, card number and card_sn.
    out = his.post("1101", {"data": {
        "mdtrt_cert_type": "03", "mdtrt_cert_no": card["ef05"]["card_number"],
        "card_sn": card["ef05"]["card_id"], "begntime": now, "psn_cert_type": "01",
        "certno": card["ef06"]["ssn"], "psn_name": card["ef06"]["name"]}})  # fmt: skip
    base = out["baseinfo"]
    fields(base, BASEINFO)
    assert base["certno"] == card["ef06"]["ssn"] and base["psn_name"] == card["ef06"]["name"]
    assert is_number(base["age"])
    assert isinstance(out["insuinfo"], list) and isinstance(out["idetinfo"], list)
    insu = out["insuinfo"][0]
    fields(insu, INSUINFO)
    psn_no, opening = base["psn_no"], money(insu["balc"])
    his.insuplc_admdvs = insu["insuplc_admdvs"]  # every later envelope carries it
    assert his.insuplc_admdvs[:2] == "32"  # a Jiangsu insured person, cross-province here

    # 2201 registration -> data{mdtrt_id, psn_no, ipt_otp_no}
    out = his.post("2201", {"data": {
        "psn_no": psn_no, "insutype": insu["insutype"], "begntime": now,
        "mdtrt_cert_type": "03", "mdtrt_cert_no": card["ef05"]["card_number"],
        "ipt_otp_no": "MZ20250001", "atddr_no": "D001", "dr_name": "王医生",
        "dept_code": "A03", "dept_name": "全科", "caty": "A03"}})  # fmt: skip
    fields(out["data"], ("mdtrt_id", "psn_no", "ipt_otp_no"))
    mdtrt_id = out["data"]["mdtrt_id"]
    assert out["data"]["ipt_otp_no"] == "MZ20250001"

    # 2203 visit (Shenzhen's class names the node mdtrtInfo)
    his.post("2203", {"mdtrtInfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
                                    "begntime": now, "main_cond_dscr": "咳嗽",
                                    "dise_codg": "", "dise_name": ""},
                      "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.9",
                                    "diag_name": "急性上呼吸道感染", "diag_dept": "全科",
                                    "dise_dor_no": "D001", "dise_dor_name": "王医生",
                                    "diag_time": now, "vali_flag": "1"}]})  # fmt: skip

    # 2204 fee details -> result[] with 19 fields
    lines = [("1", "XA01AA001", "30.00", 1, "30.00"), ("2", "BN02BE001", "84.00", 2, "42.00"),
             ("3", "ZF0001", "12.00", 1, "12.00")]  # fmt: skip
    out = his.post("2204", {"feedetail": [
        {"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "CB001",
         "rxno": "", "rx_circ_flag": "0", "fee_ocur_time": now, "med_list_codg": codg,
         "medins_list_codg": f"H-{sn}", "det_item_fee_sumamt": amount, "cnt": cnt,
         "pric": pric, "bilg_dept_codg": "A03", "bilg_dept_name": "全科",
         "bilg_dr_codg": "D001", "bilg_dr_name": "王医生", "hosp_appr_flag": "1"}
        for sn, codg, amount, cnt, pric in lines]})  # fmt: skip
    assert isinstance(out["result"], list) and len(out["result"]) == 3
    for row in out["result"]:
        fields(row, RESULT_2204)
        assert is_number(row["det_item_fee_sumamt"]) and is_number(row["cnt"])
    medfee = sum((money(r["det_item_fee_sumamt"]) for r in out["result"]), Decimal("0.00"))
    assert medfee == Decimal("126.00")

    # 2206 pre-settlement, then 2207 with the four amounts copied from it (In2207)
    settle = {"psn_no": psn_no, "mdtrt_cert_type": "03",
              "mdtrt_cert_no": card["ef05"]["card_number"], "med_type": "11",
              "medfee_sumamt": float(medfee), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
              "chrg_bchno": "CB001", "insutype": insu["insutype"], "acct_used_flag": "1"}  # fmt: skip
    pre = his.post("2206", {"data": settle})["setlinfo"]
    fields(pre, SETLINFO_2207)
    out = his.post("2207", {"data": {**settle, "invono": "FP0001",
                                     **{k: pre[k] for k in ("fulamt_ownpay_amt",
                                                            "overlmt_selfpay", "preselfpay_amt",
                                                            "inscp_scp_amt")}}})  # fmt: skip
    info, detail = out["setlinfo"], out["setldetail"]
    fields(info, SETLINFO_2207)
    for name in AMOUNTS_2207:
        assert is_number(info[name]), name
    assert is_number(info["pool_prop_selfpay"]) and is_number(info["age"])
    assert info["setl_id"] and len(info["medins_setl_id"]) == 30
    datetime.strptime(info["setl_time"], "%Y-%m-%d %H:%M:%S")
    assert info["psn_name"] == card["ef06"]["name"] and info["mdtrt_cert_type"] == "03"
    # Fund arithmetic as the HIS books it.
    fund = money(info["fund_pay_sumamt"])
    acct, cash = money(info["acct_pay"]), money(info["psn_cash_pay"])
    assert money(info["medfee_sumamt"]) == medfee == fund + acct + cash
    assert money(info["psn_part_amt"]) == acct + cash
    assert fund == sum((money(info[k]) for k in FUND_ITEMS), Decimal("0.00"))
    assert money(info["fulamt_ownpay_amt"]) == Decimal("12.00")  # the ZF line
    assert money(info["preselfpay_amt"]) == Decimal("8.40")  # 10 % of the class B line
    assert acct > 0 and money(info["balc"]) == opening - acct  # acct_used_flag=1
    assert {k: money(info[k]) for k in ("fund_pay_sumamt", "acct_pay", "psn_cash_pay")} == {
        k: money(pre[k]) for k in ("fund_pay_sumamt", "acct_pay", "psn_cash_pay")
    }  # 2207 confirms what 2206 showed
    assert isinstance(detail, list) and detail
    for row in detail:
        fields(row, SETLDETAIL)
    assert sum((money(r["fund_payamt"]) for r in detail), Decimal("0.00")) == fund

    # 3201 with the nine fields of In3201 -> stmtinfo, balanced
    day = datetime.now(BEIJING).strftime("%Y-%m-%d")
    statement = {"insutype": info["insutype"], "clr_type": info["clr_type"],
                 "setl_optins": info["clr_optins"], "stmt_begndate": day, "stmt_enddate": day,
                 "medfee_sumamt": float(medfee), "fund_pay_sumamt": float(fund),
                 "acct_pay": float(acct), "fixmedins_setl_cnt": 1}  # fmt: skip
    out = his.post("3201", {"data": statement})
    fields(out["stmtinfo"], STMTINFO)
    assert out["stmtinfo"]["stmt_rslt"] == "0", out["stmtinfo"]["stmt_rslt_dscr"]

    # 2208 cancellation -> the reversed setlinfo (pdn_cash_pay) and setldetail[]
    out = his.post("2208", {"data": {"setl_id": info["setl_id"], "mdtrt_id": mdtrt_id,
                                     "psn_no": psn_no}})  # fmt: skip
    back = out["setlinfo"]
    fields(back, SETLINFO_2208)
    assert money(back["medfee_sumamt"]) == -medfee and money(back["acct_pay"]) == -acct
    assert money(back["pdn_cash_pay"]) == -cash == money(back["psn_cash_pay"])
    assert money(back["fund_pay_sumamt"]) == -fund and money(back["balc"]) == opening
    assert [money(r["fund_payamt"]) for r in out["setldetail"]] == [
        -money(r["fund_payamt"]) for r in detail
    ]

    # 3201 again: the HIS nets the cancellation out; the platform agrees.
    out = his.post("3201", {"data": {**statement, "medfee_sumamt": 0, "fund_pay_sumamt": 0,
                                     "acct_pay": 0, "fixmedins_setl_cnt": 0}})  # fmt: skip
    assert out["stmtinfo"]["stmt_rslt"] == "0", out["stmtinfo"]["stmt_rslt_dscr"]
