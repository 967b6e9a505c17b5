"""End-to-end: the insurance client against the simulated platform over HTTP.

Real server on 127.0.0.1, real SQLite files in tmp_path. Expected splits are
computed here from the policy numbers, not by the simulator's code
(medical-insurance.md §1.3, §1.5, §1.6 and the sscard profile).
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import journal_and_die
from pytest_mock import MockerFixture

from sscard.services.insurance import (
    AreaCase,
    CancelRegistrationRequest,
    CancelSettlementRequest,
    ClientConfig,
    DeleteFeesRequest,
    FeeItem,
    FeeUploadRequest,
    FilingStatus,
    InsuranceClient,
    InvalidAmount,
    InvalidRequest,
    ManualReconciliationRequired,
    NoFilingCheck,
    OutboxError,
    OutboxState,
    OutcomeUnknown,
    PersonInfoRequest,
    PlatformError,
    PlatformFilingCheck,
    PlatformUnreachable,
    Reconciler,
    ReconciliationBlocked,
    RegisterRequest,
    ReversalRefused,
    ReversalRequest,
    SettleConfirmRequest,
    SettlementNotMade,
    SettleRequest,
    VisitUploadRequest,
)
from sscard.simulators.insurance_platform import POLICIES, AcctScope, InsurancePlatform

FIXMEDINS = "H31010400001"  # H + Xuhui 310104 + 5 digits (§1.1 observed format)
SHANGHAI = "310000"
CERT_HEFEI = "340104199001010011"  # test data, not a real person
CERT_SH = "310104198505050022"


def now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    url: str, path: Path, sleeps: list[float] | None = None, timeout: float = 3.0
) -> InsuranceClient:
    config = ClientConfig(url, FIXMEDINS, "徐汇测试诊所", SHANGHAI, timeout=timeout)
    record = sleeps if sleeps is not None else []
    return InsuranceClient(config, path, sleep=record.append)


@pytest.fixture
def client(
    platform: InsurancePlatform, tmp_path: Path, sleeps: list[float]
) -> Iterator[InsuranceClient]:
    with make_client(platform.url, tmp_path / "outbox.db", sleeps) as c:
        yield c


@pytest.fixture
def hefei(platform: InsurancePlatform) -> str:
    """An Anhui (Hefei) cardholder with a filing for treatment in Shanghai."""
    psn_no = platform.add_person(CERT_HEFEI, "测试甲", "1", "1990-01-01", "340100", "310", "1000")
    platform.add_filing(psn_no, "340100", SHANGHAI, date.today(), date(2099, 12, 31), "11")
    return psn_no


ITEMS = (
    FeeItem("1", "XA01AA", "H-001", Decimal("500.00"), Decimal("1"), Decimal("500")),
    FeeItem("2", "B02BB", "H-002", Decimal("200.00"), Decimal("2"), Decimal("100")),
    FeeItem("3", "ZF03CC", "H-003", Decimal("100.00"), Decimal("1"), Decimal("100")),
)


def open_visit(
    client: InsuranceClient, certno: str, items: tuple[FeeItem, ...] = ITEMS, otp: str = "OTP-1"
) -> SettleRequest:
    """1101 → 2201 → 2203 → 2204; returns the 2206 request for the visit."""
    person = client.person_info(PersonInfoRequest("02", certno))
    insu = person.insurance("310")
    reg = client.register(
        RegisterRequest(
            person.psn_no, insu.insutype, insu.insuplc_admdvs, now_text(), "02", certno, otp
        )
    )
    client.upload_visit(
        VisitUploadRequest(reg.mdtrt_id, person.psn_no, insu.insuplc_admdvs, "11", now_text())
    )
    client.upload_fees(
        FeeUploadRequest(reg.mdtrt_id, person.psn_no, insu.insuplc_admdvs, "B1", now_text(), items)
    )
    total = sum((i.det_item_fee_sumamt for i in items), Decimal("0.00"))
    return SettleRequest(
        person.psn_no, insu.insuplc_admdvs, "02", certno, "11", total, reg.mdtrt_id, "B1", "310",
        acct_used_flag="1",
    )  # fmt: skip


def settle(client: InsuranceClient, pre: SettleRequest) -> SettleConfirmRequest:
    return SettleConfirmRequest.from_pre(pre, client.pre_settle(pre))


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- the right split ----------------------------------------------------------


def test_cross_province_with_filing_settles_with_the_policy_split(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    # Hefei policy numbers, restated here so a change to the table is noticed.
    deductible, ratio, cap = Decimal("300.00"), Decimal("0.60"), Decimal("5000.00")
    policy = POLICIES["340100"]
    assert (policy.deductible, policy.ratio, policy.annual_cap) == (deductible, ratio, cap)
    assert policy.acct_scope is AcctScope.IN_SCOPE
    # Class A 500 in scope; class B 200 with 10 % first self-payment; ZF 100 self-paid.
    ownpay, pre_self, inscp = Decimal("100.00"), Decimal("20.00"), Decimal("680.00")
    dedc = min(inscp, deductible)
    fund = cents((inscp - dedc) * ratio)
    personal = Decimal("800.00") - fund
    acct = min(personal - ownpay, Decimal("1000.00"))  # in-scope account use
    cash = personal - acct

    pre = open_visit(client, CERT_HEFEI)
    assert AreaCase.of(pre.insuplc_admdvs, SHANGHAI) is AreaCase.CROSS_PROVINCE
    assert (
        PlatformFilingCheck(client).check(hefei, "340100", SHANGHAI, "11", now_text())
        is FilingStatus.FILED
    )
    preview = client.pre_settle(pre)
    assert preview.setlinfo.setl_id == ""
    assert platform.balance(hefei) == Decimal("1000.00")  # 2206 charges nothing
    result = client.settle(SettleConfirmRequest.from_pre(pre, preview))
    info = result.setlinfo
    assert info.medins_setl_id == result.msgid
    assert (info.fulamt_ownpay_amt, info.preselfpay_amt, info.inscp_scp_amt) == (
        ownpay, pre_self, inscp
    )  # fmt: skip
    assert (info.act_pay_dedc, info.hifp_pay, info.fund_pay_sumamt) == (dedc, fund, fund)
    assert (info.psn_part_amt, info.acct_pay, info.psn_cash_pay) == (personal, acct, cash)
    assert info.balc == Decimal("1000.00") - acct
    assert info.pool_prop_selfpay == Decimal("0.4000")
    assert info.balances()
    assert platform.balance(hefei) == Decimal("1000.00") - acct
    assert platform.usage(hefei) == (dedc, fund)
    row = client.outbox.get(result.msgid)
    assert (row.state, row.setl_id) == ("done", info.setl_id)


def test_second_visit_uses_the_remaining_deductible_and_the_cap(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    client.settle(settle(client, open_visit(client, CERT_HEFEI)))
    big = (FeeItem("9", "XA09", "H-9", Decimal("9000.00"), Decimal("1"), Decimal("9000")),)
    second = client.settle(settle(client, open_visit(client, CERT_HEFEI, big, "OTP-2")))
    # Deductible already used; 9000 × 0.60 = 5400 exceeds the 5000 − 228 cap left.
    assert second.setlinfo.act_pay_dedc == Decimal("0.00")
    assert second.setlinfo.hifp_pay == Decimal("5000.00") - Decimal("228.00")
    assert platform.usage(hefei)[1] == Decimal("5000.00")


def test_cross_province_without_filing_is_refused_with_the_platform_message(
    client: InsuranceClient, platform: InsurancePlatform
) -> None:
    psn_no = platform.add_person("340104199202020033", "测试乙", "2", "1992-02-02", "340100")
    assert (
        PlatformFilingCheck(client).check(psn_no, "340100", SHANGHAI, "11", now_text())
        is FilingStatus.NOT_FILED
    )
    assert NoFilingCheck().check(psn_no, "340100", SHANGHAI, "11", "") is FilingStatus.UNKNOWN
    pre = open_visit(client, "340104199202020033")
    with pytest.raises(PlatformError) as refused:
        client.pre_settle(pre)
    assert refused.value.infcode == -1
    assert "未备案" in refused.value.err_msg and "not filed" in refused.value.err_msg
    assert "340100" in refused.value.err_msg and SHANGHAI in refused.value.err_msg
    assert "not filed" in refused.value.message_en and "未备案" in refused.value.message_zh
    with pytest.raises(PlatformError):
        client.settle(SettleConfirmRequest(**pre.__dict__))
    assert platform.ledger.settlements() == []
    rows = client.outbox.rows(infno="2207")
    assert [r.state for r in rows] == ["failed"]
    assert platform.ledger.message_count("2207") == 1  # a refusal is never retried


def test_in_province_needs_no_filing(client: InsuranceClient, platform: InsurancePlatform) -> None:
    psn_no = platform.add_person(CERT_SH, "测试丙", "1", "1985-05-05", "310000", "310", "50")
    result = client.settle(settle(client, open_visit(client, CERT_SH)))
    # Shanghai: deductible 1500 swallows the whole 680 in scope; account pays all it can.
    assert result.setlinfo.hifp_pay == Decimal("0.00")
    assert result.setlinfo.acct_pay == Decimal("50.00")
    assert platform.balance(psn_no) == Decimal("0.00")


# -- lost replies and reconciliation -----------------------------------------


def test_reply_dropped_after_commit_is_recorded_not_charged_twice(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    request = settle(client, open_visit(client, CERT_HEFEI))
    platform.inject("2207", "drop")
    result = client.settle(request)  # no reply; the 5261 query finds the settlement
    row = client.outbox.get(result.msgid)
    assert row.state == "done" and row.note and "5261" in row.note
    settled = platform.ledger.settlements("settled")
    assert len(settled) == 1 and settled[0]["medins_setl_id"] == result.msgid
    assert platform.balance(hefei) == Decimal("1000.00") - result.setlinfo.acct_pay
    report = client.reconcile(date.today())
    assert report.balanced, report.differences
    assert report.local.count == 1 and report.local.acct_pay == result.setlinfo.acct_pay


def unmasked(row_request: dict[str, object], certno: str) -> dict[str, object]:
    """The envelope as it went on the wire: the outbox keeps the card/ID number masked."""
    envelope = json.loads(json.dumps(row_request, default=float), parse_float=Decimal)
    envelope["input"]["data"]["mdtrt_cert_no"] = certno
    return envelope


def test_request_lost_before_processing_is_not_made_and_can_be_settled_again(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    request = settle(client, open_visit(client, CERT_HEFEI))
    platform.inject("2207", "lose")
    with pytest.raises(SettlementNotMade) as not_made:
        client.settle(request)
    lost = client.outbox.get(not_made.value.msgid)
    # 5261 found nothing, the 2601 was answered -1 (original never seen, §1.7), and a
    # second 5261 still found nothing: not made.
    assert lost.state == "failed" and lost.note and "not made" in lost.note
    reversal = client.outbox.rows(infno="2601")[0]
    assert reversal.state == "failed" and reversal.infcode == -1
    assert platform.balance(hefei) == Decimal("1000.00")
    # A late copy of the lost request is barred all the same (the simulator's safety).
    status, reply = post_raw(platform.url, unmasked(lost.request, CERT_HEFEI))
    assert status == 200 and reply["infcode"] == -1 and "2601" in reply["err_msg"]
    again = client.settle(request)
    assert again.msgid != lost.msgid
    assert len(platform.ledger.settlements("settled")) == 1
    assert client.reconcile(date.today()).balanced


def test_http_500_leaves_outcome_unknown_until_resolved(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    request = settle(client, open_visit(client, CERT_HEFEI))
    platform.inject("2207", "http500")
    with pytest.raises(OutcomeUnknown) as unknown:
        client.settle(request, resolve_unknown=False)
    assert "HTTP 500" in unknown.value.message_en
    assert client.outbox.get(unknown.value.msgid).state == "unknown"
    resolutions = client.resolve_unknown()
    assert [(r.msgid, r.action) for r in resolutions] == [(unknown.value.msgid, "not_made")]
    assert platform.ledger.settlements() == []
    assert client.resolve(unknown.value.msgid).action == "none"  # already final


def test_timeout_while_the_platform_is_slow_ends_with_one_consistent_outcome(
    platform: InsurancePlatform, tmp_path: Path, hefei: str
) -> None:
    with make_client(platform.url, tmp_path / "slow.db", timeout=0.3) as client:
        request = settle(client, open_visit(client, CERT_HEFEI))
        platform.inject("2207", "delay", delay=0.8)
        with pytest.raises(SettlementNotMade):
            client.settle(request)  # query: none yet; 2601 bars the late original
        time.sleep(0.8)  # let the delayed original reach the ledger
        assert platform.ledger.settlements() == []
        assert platform.balance(hefei) == Decimal("1000.00")
        assert client.reconcile(date.today()).balanced


def test_reversal_gives_up_after_three_attempts_with_the_profile_backoff(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str, sleeps: list[float]
) -> None:
    request = settle(client, open_visit(client, CERT_HEFEI))
    platform.inject("*", "http500", count=100)
    with pytest.raises(ManualReconciliationRequired) as manual:
        client.settle(request)
    assert sleeps[-3:] == [2.0, 8.0, 30.0]
    row = client.outbox.get(manual.value.msgid)
    assert row.manual and row.state == "unknown" and "3 attempts" in (row.note or "")
    reversals = client.outbox.rows(infno="2601")
    assert len(reversals) == 1 and reversals[0].attempts == 3
    platform.clear_faults()
    # The settlement awaits a person: the day is not closed (no 3201). The unanswered
    # 2601 was resent under its msgid and got its answer (-1: the 2207 never arrived).
    with pytest.raises(ReconciliationBlocked) as blocked:
        client.reconcile(date.today())
    assert [r.msgid for r in blocked.value.rows] == [manual.value.msgid]
    assert blocked.value.exit_status == 5 and "no 3201" in blocked.value.message_en
    assert platform.ledger.message_count("3201") == 0
    assert client.outbox.get(reversals[0].msgid).state == "failed"
    # Retrying the manual row now the platform answers: 5261 finds nothing, and its 2601
    # finds the msgid already barred by the first one; nothing charged, the day closes.
    (retried,) = client.resolve_orphans(retry_manual=True)
    assert (retried.msgid, retried.action, retried.detail) == (
        manual.value.msgid, "reversed", "already"
    )  # fmt: skip
    assert platform.ledger.settlements() == []
    assert client.reconcile(date.today()).balanced


def test_duplicate_msgid_returns_the_first_result(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    result = client.settle(settle(client, open_visit(client, CERT_HEFEI)))
    row = client.outbox.get(result.msgid)
    sent = unmasked(row.request, CERT_HEFEI)
    _status, first = post_raw(platform.url, sent)
    assert first["infcode"] == 0 and first["output"]["setlinfo"]["medins_setl_id"] == row.msgid
    for _ in range(2):
        status, reply = post_raw(platform.url, sent)
        assert status == 200 and reply == first
    altered = json.loads(json.dumps(sent, default=str))
    altered["input"]["data"]["medfee_sumamt"] = "1.00"
    status, reply = post_raw(platform.url, altered)
    assert reply["infcode"] == -1 and "msgid" in str(reply["err_msg"])
    assert len(platform.ledger.settlements()) == 1
    assert platform.balance(hefei) == Decimal("1000.00") - result.setlinfo.acct_pay


def test_cancel_2208_then_2205_then_2202_restores_everything(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    pre = open_visit(client, CERT_HEFEI)
    result = client.settle(settle(client, pre))
    with pytest.raises(PlatformError, match="2208"):
        client.cancel_registration(
            CancelRegistrationRequest(pre.psn_no, pre.mdtrt_id, "OTP-1", pre.insuplc_admdvs)
        )
    cancel = client.cancel_settlement(
        CancelSettlementRequest(result.setlinfo.setl_id, pre.mdtrt_id, pre.psn_no, "340100")
    )
    assert cancel.setlinfo.acct_pay == -result.setlinfo.acct_pay
    assert cancel.setlinfo.balc == Decimal("1000.00")
    assert platform.balance(hefei) == Decimal("1000.00")
    assert platform.usage(hefei) == (Decimal("0.00"), Decimal("0.00"))
    assert client.outbox.get(result.msgid).cancelled_by == cancel.msgid
    with pytest.raises(PlatformError, match="2205"):
        client.cancel_registration(
            CancelRegistrationRequest(pre.psn_no, pre.mdtrt_id, "OTP-1", pre.insuplc_admdvs)
        )
    client.delete_fees(DeleteFeesRequest(pre.mdtrt_id, pre.psn_no, pre.insuplc_admdvs))
    client.cancel_registration(
        CancelRegistrationRequest(pre.psn_no, pre.mdtrt_id, "OTP-1", pre.insuplc_admdvs)
    )
    with pytest.raises(PlatformError):
        client.cancel_settlement(
            CancelSettlementRequest(result.setlinfo.setl_id, pre.mdtrt_id, pre.psn_no, "340100")
        )
    report = client.reconcile(date.today())
    assert report.balanced and report.local.count == 0


def test_2601_reversal_restores_balance_and_annual_cap_usage(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    result = client.settle(settle(client, open_visit(client, CERT_HEFEI)))
    assert platform.usage(hefei) != (Decimal("0.00"), Decimal("0.00"))
    answer = client.reverse(result.msgid)
    assert (answer.omsgid, answer.oinfno, answer.rvs_rslt) == (result.msgid, "2207", "reversed")
    assert platform.balance(hefei) == Decimal("1000.00")
    assert platform.usage(hefei) == (Decimal("0.00"), Decimal("0.00"))
    assert client.outbox.get(result.msgid).state == "reversed"
    with pytest.raises(ReversalRefused):
        client.reverse(result.msgid)  # profile: a reversed row is final
    with pytest.raises(InvalidRequest):
        ReversalRequest(hefei, result.msgid, "2204", "340100")  # not in {2201, 2207, 2304}


def test_no_reversal_after_the_day_is_reconciled(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    result = client.settle(settle(client, open_visit(client, CERT_HEFEI)))
    assert client.reconcile(date.today()).balanced
    with pytest.raises(ReversalRefused, match="3201"):
        client.reverse(result.msgid)
    # A settlement made after the 3201 can still be reversed (§1.7), on both sides.
    later = client.settle(settle(client, open_visit(client, CERT_HEFEI, otp="OTP-2")))
    assert client.reverse(later.msgid).rvs_rslt == "reversed"
    assert [s["state"] for s in platform.ledger.settlements()] == ["settled", "reversed"]


def test_reversal_of_a_registration(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    pre = open_visit(client, CERT_HEFEI)
    registration = client.outbox.rows(infno="2201")[0]
    assert client.reverse(registration.msgid).rvs_rslt == "reversed"
    with pytest.raises(PlatformError, match="cancelled"):
        client.pre_settle(pre)


def test_reconcile_reports_a_settlement_missing_locally(
    client: InsuranceClient, platform: InsurancePlatform, tmp_path: Path, hefei: str
) -> None:
    mine = client.settle(settle(client, open_visit(client, CERT_HEFEI)))
    theirs = client.settle(settle(client, open_visit(client, CERT_HEFEI, otp="OTP-9")))
    # Drift as seen in the field: the hospital lost track of the second settlement.
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        db.execute("UPDATE outbox SET state = 'failed' WHERE msgid = ?", (theirs.msgid,))
    report = client.reconcile(date.today())
    assert not report.balanced and report.stmt_rslt == "1"
    (statement,) = report.statements
    assert (statement.insutype, statement.clr_type, statement.setl_optins) == (
        "310", "11", "340100"
    )  # fmt: skip
    assert statement.local.count == 1
    assert statement.local.medfee_sumamt == mine.setlinfo.medfee_sumamt
    total = mine.setlinfo.medfee_sumamt + theirs.setlinfo.medfee_sumamt
    assert f"the platform has 2 settlements, medfee {total}" in statement.stmt_rslt_dscr
    assert report.as_dict()["statements"][0]["stmt_rslt"] == "1"


# -- msgid -------------------------------------------------------------------


def test_msgid_is_monotonic_across_client_restarts(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    seen: list[str] = []
    for _ in range(3):
        with make_client(platform.url, path) as client:
            seen.append((client.sign_in().sign_time and client.outbox.last_msgid()) or "")
            client.sign_in()
            seen.append(client.outbox.last_msgid() or "")
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    for msgid in seen:
        assert len(msgid) == 30 and msgid.startswith(FIXMEDINS)
        datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S")
        assert msgid[26:].isdigit()


def test_msgid_stays_monotonic_when_the_clock_goes_back_or_a_second_overflows(
    tmp_path: Path,
) -> None:
    from sscard.services.insurance import Outbox

    times = iter([datetime(2025, 3, 1, 10, 0, 5), datetime(2025, 3, 1, 9, 59, 0)])
    box = Outbox(tmp_path / "o.db", FIXMEDINS, clock=lambda: next(times))
    first, _ = box.create("9001", lambda m, n: {"msgid": m})
    second, _ = box.create("9001", lambda m, n: {"msgid": m})
    assert first == f"{FIXMEDINS}202503011000050001"
    assert second == f"{FIXMEDINS}202503011000050002"  # clock went back: keep the last stamp
    box.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        db.execute("UPDATE msgid_state SET seq = 9999")
    box = Outbox(tmp_path / "o.db", FIXMEDINS, clock=lambda: datetime(2025, 3, 1, 10, 0, 5))
    third, _ = box.create("9001", lambda m, n: {"msgid": m})
    assert third == f"{FIXMEDINS}202503011000060001"  # borrowed the next second
    box.close()


def test_outbox_of_another_institution_is_refused(tmp_path: Path) -> None:
    from sscard.services.insurance import Outbox, OutboxError

    Outbox(tmp_path / "o.db", FIXMEDINS).close()
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "o.db", "H34010000001")


# -- bad input -----------------------------------------------------------------


def test_unknown_person_is_refused(client: InsuranceClient) -> None:
    with pytest.raises(PlatformError) as refused:
        client.person_info(PersonInfoRequest("02", "110101200001019999"))
    assert "not found" in refused.value.err_msg
    assert "110101200001019999" not in refused.value.bilingual()  # no SSN in messages


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (Decimal("-1.00"), "negative"),
        (Decimal("1000000.01"), "limit"),
        (Decimal("12.345"), "2 decimal places"),
        ("abc", "not a number"),
        (Decimal("NaN"), "finite"),
        (12.5, "float"),
    ],
)
def test_bad_amounts_are_refused_before_anything_is_written(
    client: InsuranceClient, amount: object, reason: str
) -> None:
    before = len(client.outbox.rows())
    with pytest.raises(InvalidAmount, match=reason):
        SettleRequest(
            "P1",
            "340100",
            "02",
            "x",
            "11",
            amount,
            "M1",
            "B1",
            "310",  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidAmount):
        FeeItem("1", "XA", "H", amount, Decimal("1"), Decimal("1"))  # type: ignore[arg-type]
    assert len(client.outbox.rows()) == before


def test_psn_no_without_insured_area_is_refused(client: InsuranceClient) -> None:
    with pytest.raises(InvalidRequest, match="insuplc_admdvs"):
        client.delete_fees(DeleteFeesRequest("M1", "P1", ""))
    assert client.outbox.rows() == []


def test_platform_down_is_a_clear_error_and_nothing_is_half_done(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService"
    with make_client(url, tmp_path / "o.db", timeout=1.0) as client:
        with pytest.raises(PlatformUnreachable) as down:
            client.sign_in()
        assert "unreachable" in down.value.message_en and "无法连接" in down.value.message_zh
        rows = client.outbox.rows()
        assert [r.state for r in rows] == ["failed"]
        assert rows[0].error and rows[0].error.startswith("not sent")
        assert client.resolve_unknown() == []  # nothing to reconcile


def test_platform_down_during_a_visit_leaves_registration_consistent(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    person = client.person_info(PersonInfoRequest("02", CERT_HEFEI))
    platform.inject("2201", "drop")
    with pytest.raises(OutcomeUnknown) as unknown:
        client.register(
            RegisterRequest(person.psn_no, "310", "340100", now_text(), "02", CERT_HEFEI, "OTP-7")
        )
    resolution = client.resolve(unknown.value.msgid)
    assert resolution.action == "reversed" and resolution.detail == "reversed"
    # The registration the platform committed was cancelled: the number is free again.
    client.register(
        RegisterRequest(person.psn_no, "310", "340100", now_text(), "02", CERT_HEFEI, "OTP-7")
    )


def test_query_is_retried_but_business_transactions_are_not(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str
) -> None:
    set_fault_over_http(platform, {"infno": "1101", "kind": "http500", "count": 1})
    client.person_info(PersonInfoRequest("02", CERT_HEFEI))
    assert client.outbox.rows(infno="1101")[0].attempts == 2
    set_fault_over_http(platform, {"infno": "2201", "kind": "http500", "count": 1})
    with pytest.raises(OutcomeUnknown):
        client.register(
            RegisterRequest(hefei, "310", "340100", now_text(), "02", CERT_HEFEI, "OTP-8")
        )
    row = client.outbox.rows(infno="2201")[0]
    assert row.attempts == 1 and row.state == "unknown"


def test_sign_no_is_optional_but_a_wrong_one_is_refused(
    platform: InsurancePlatform, tmp_path: Path, hefei: str
) -> None:
    """§1.7: sign_no is optional on every transaction; one that is sent must be known."""
    config = ClientConfig(platform.url, FIXMEDINS, "x", SHANGHAI)
    with InsuranceClient(config, tmp_path / "o.db", auto_sign_in=False) as client:
        assert client.person_info(PersonInfoRequest("02", CERT_HEFEI)).psn_no == hefei
        client.sign_no = f"{SHANGHAI}20250101000000" + "9" * 10
        with pytest.raises(PlatformError, match="9001"):
            client.person_info(PersonInfoRequest("02", CERT_HEFEI))
        signed = client.sign_in()
        assert signed.sign_no.startswith(SHANGHAI)
        assert client.person_info(PersonInfoRequest("02", CERT_HEFEI)).psn_no == hefei


def test_envelope_carries_every_field_of_the_reference(client: InsuranceClient, hefei: str) -> None:
    client.person_info(PersonInfoRequest("02", CERT_HEFEI))
    envelope = client.outbox.rows(infno="1101")[0].request
    assert set(envelope) == {
        "infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no",
        "dev_safe_info", "cainfo", "signtype", "infver", "opter_type", "opter", "opter_name",
        "inf_time", "fixmedins_code", "fixmedins_name", "sign_no", "input",
    }  # fmt: skip
    datetime.strptime(envelope["inf_time"], "%Y-%m-%d %H:%M:%S")
    assert envelope["sign_no"] and envelope["input"]["data"]["mdtrt_cert_type"] == "02"


def test_admin_endpoint_rejects_unknown_faults(platform: InsurancePlatform) -> None:
    status = set_fault_over_http(platform, {"infno": "2207", "kind": "explode"})
    assert status == 400


def test_add_person_from_card_maps_the_region(platform: InsurancePlatform) -> None:
    psn_no = platform.add_person_from_card(
        "340202198001010044", "测试丁", "F", "19800101", "340202"
    )
    assert psn_no.startswith("340200")  # Wuhu district → Wuhu city pool
    with pytest.raises(ValueError, match="region"):
        platform.add_person_from_card("110101198001010055", "x", "M", "19800101", "110101")


# -- raw HTTP helpers ------------------------------------------------------------


def post_raw(url: str, envelope: dict[str, object]) -> tuple[int, dict[str, object]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        body = json.dumps(envelope, default=float).encode()
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read(), parse_float=Decimal)
    finally:
        conn.close()


def set_fault_over_http(platform: InsurancePlatform, spec: dict[str, object]) -> int:
    """POST /admin/faults with the platform's admin token."""
    parts = urlsplit(platform.url)
    headers = {"Authorization": f"Bearer {platform.admin_token}"}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("POST", "/admin/faults", body=json.dumps(spec).encode(), headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_a_row_left_pending_by_a_crash_is_resolved_after_restart(
    platform: InsurancePlatform, tmp_path: Path, hefei: str, mocker: MockerFixture
) -> None:
    path = tmp_path / "crash.db"
    with make_client(platform.url, path) as client:
        request = settle(client, open_visit(client, CERT_HEFEI))
        msgid = journal_and_die(client, request, mocker)  # journalled, then the process dies
    with make_client(platform.url, path) as restarted:
        assert restarted.outbox.get(msgid).state == "pending"
        assert restarted.resolve_unknown() == []  # pending rows only on request
        (resolution,) = restarted.resolve_orphans()
        assert (resolution.msgid, resolution.action) == (msgid, "not_made")
        assert "original message (omsgid) not found" in resolution.detail
        assert platform.ledger.settlements() == []
        assert restarted.settle(request).setlinfo.setl_id  # the desk can settle again


# -- send(): the retry policy follows Request.side_effects alone ----------------------


class LostReplies:
    """Fault injection on the HTTP layer (pytest-mock): the platform receives and answers
    the request, then the reply is lost (a read timeout) for the next ``n`` requests of an
    infno. ``sent`` lists every envelope that left the client, in order."""

    def __init__(self, mocker: MockerFixture) -> None:
        self.sent: list[dict[str, str]] = []
        self.lose: dict[str, int] = {}
        real_request = http.client.HTTPConnection.request
        real_getresponse = http.client.HTTPConnection.getresponse

        def request(conn: http.client.HTTPConnection, method: str, url: str, body: bytes,
                    headers: dict[str, str]) -> None:  # fmt: skip
            envelope = json.loads(body)
            self.sent.append({"infno": envelope["infno"], "msgid": envelope["msgid"]})
            real_request(conn, method, url, body=body, headers=headers)

        def getresponse(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
            infno = self.sent[-1]["infno"]
            if self.lose.get(infno, 0) > 0:
                self.lose[infno] -= 1
                real_getresponse(conn).read()  # applied and answered: only the reply is lost
                raise TimeoutError("timed out")
            return real_getresponse(conn)

        mocker.patch.object(http.client.HTTPConnection, "request", autospec=True,
                            side_effect=request)  # fmt: skip
        mocker.patch.object(http.client.HTTPConnection, "getresponse", autospec=True,
                            side_effect=getresponse)  # fmt: skip

    def of(self, infno: str) -> list[str]:
        return [s["msgid"] for s in self.sent if s["infno"] == infno]


def test_a_request_with_side_effects_is_sent_once_and_left_unknown_on_a_timeout(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str, mocker: MockerFixture
) -> None:
    request = settle(client, open_visit(client, CERT_HEFEI))
    assert SettleConfirmRequest.side_effects
    faults = LostReplies(mocker)
    faults.lose["2207"] = 5
    with pytest.raises(OutcomeUnknown) as unknown:
        client.send(request)
    assert faults.of("2207") == [unknown.value.msgid]  # once, never retried
    row = client.outbox.get(unknown.value.msgid)
    assert (row.state, row.attempts) == (OutboxState.UNKNOWN, 1)
    assert "timeout" in row.error or "timed out" in row.error
    assert [s["state"] for s in platform.ledger.settlements()] == ["settled"]  # it did arrive
    (resolution,) = Reconciler(client).resolve_unknown()  # found with 5261, through send()
    assert (resolution.action, resolution.state) == ("recorded", OutboxState.DONE)
    assert faults.of("2207") == [unknown.value.msgid]  # and still never resent it


def test_a_side_effect_free_request_is_retried_under_its_msgid(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str, sleeps: list[float],
    mocker: MockerFixture,
) -> None:  # fmt: skip
    pre = open_visit(client, CERT_HEFEI)
    assert not SettleRequest.side_effects  # 2206 is a trial calculation
    faults = LostReplies(mocker)
    faults.lose["2206"] = 2
    preview = client.send(pre)
    (msgid,) = set(faults.of("2206"))
    assert faults.of("2206") == [msgid] * 3 and preview.msgid == msgid
    assert sleeps == [0.2, 0.4]  # query_backoff × attempt
    row = client.outbox.get(msgid)
    assert (row.state, row.attempts) == (OutboxState.DONE, 3)
    assert preview.setlinfo.medfee_sumamt == Decimal("800.00")
    faults.lose["2206"] = 3  # every attempt lost: nothing to reconcile, the row is failed
    with pytest.raises(OutcomeUnknown) as unknown:
        client.send(pre)
    assert len(faults.of("2206")) == 6
    assert client.outbox.get(unknown.value.msgid).state == OutboxState.FAILED
    assert client.resolve_unknown() == []
    assert platform.ledger.settlements() == []  # 2206 settled nothing, however often sent


def test_attempts_overrides_the_policy_and_resend_repeats_the_journalled_bytes(
    client: InsuranceClient, platform: InsurancePlatform, hefei: str, mocker: MockerFixture
) -> None:
    pre = open_visit(client, CERT_HEFEI)
    faults = LostReplies(mocker)
    faults.lose["2206"] = 1
    with pytest.raises(OutcomeUnknown) as unknown:
        client.send(pre, attempts=1)
    assert len(faults.of("2206")) == 1
    assert client.outbox.get(unknown.value.msgid).state == OutboxState.FAILED
    more = (FeeItem("4", "XA01AA", "H-001", Decimal("50.00"), Decimal("1"), Decimal("50")),)
    upload = FeeUploadRequest(pre.mdtrt_id, pre.psn_no, pre.insuplc_admdvs, "B2", now_text(), more)
    faults.lose["2204"] = 1
    with pytest.raises(OutcomeUnknown) as lost:
        client.send(upload)
    assert client.outbox.get(lost.value.msgid).state == OutboxState.UNKNOWN
    output = client.resend(lost.value.msgid)  # the platform answers a known msgid again
    assert [r["feedetl_sn"] for r in output["result"]] == ["4"]
    assert faults.of("2204")[-2:] == [lost.value.msgid] * 2
    row = client.outbox.get(lost.value.msgid)
    assert (row.state, row.attempts) == (OutboxState.DONE, 2)
    with pytest.raises(OutboxError, match="stored masked"):  # 2206 holds the card number
        client.resend(unknown.value.msgid)
