"""The front-desk flow end to end: simulated card → FrontDesk → simulated platform over HTTP.

Real HTTP server on 127.0.0.1, real SQLite ledger and outbox in tmp_path, the card
read through the SSSE reader from a generated card profile. Expected splits are
computed here from the policy numbers (medical-insurance.md §1.3, §1.6 and the
sscard profile), not by the simulator's split code.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from sscard.apdu.errors import PinIncorrect
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.medical import (
    CardIdentity,
    CardNotUsable,
    DeskConfig,
    FilingRequired,
    FrontDesk,
    PreSettlement,
    SettlementDeclined,
    VisitAborted,
    VisitPlan,
    read_identity,
)
from sscard.cards.privacy import mask_card_number
from sscard.errors import ConfigError
from sscard.services.insurance import (
    AreaCase,
    ClientConfig,
    FeeFileError,
    FilingStatus,
    InsuranceClient,
    InvalidAmount,
    NoFilingCheck,
    PlatformError,
    PlatformFilingCheck,
    PlatformUnreachable,
    load_fee_items,
)
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import POLICIES, AcctScope, InsurancePlatform
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.terminals import Connection, SimulatorTransport

FIXMEDINS = "H31010400001"
XUHUI = "310000"  # Shanghai medical-insurance area of the clinic (municipal pool)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VISIT_CSV = EXAMPLES / "visit.csv"
CENT = Decimal("0.01")


@dataclass
class Holder:
    profile: CardProfile
    psn_no: str


def enrol(
    platform: InsurancePlatform,
    province: str,
    seed: int,
    *,
    area: str | None = None,
    filed_for: str | None = None,
    balance: str = "1000.00",
) -> Holder:
    """Insure the holder of a generated card (area from the card region unless given)."""
    profile = new_card(province, seed=seed)
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    psn_no = platform.add_person_from_card(
        ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
        insuplc_admdvs=area, acct_balance=balance, card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    if filed_for is not None:
        insured = area or psn_no[:6]
        platform.add_filing(psn_no, insured, filed_for, date.today(), date(2099, 12, 31), "11")
    return Holder(profile, psn_no)


def read(holder: Holder, pin: str | None = None) -> CardIdentity:
    conn = Connection(SimulatorTransport(build_card(holder.profile)))
    conn.connect()
    try:
        return read_identity(conn, SoftwareKeyProvider(default_key_set()), pin=pin)
    finally:
        conn.close()


def make_desk(url: str, outbox: Path, *, filing: str = "platform") -> FrontDesk:
    client = InsuranceClient(
        ClientConfig(url, FIXMEDINS, "徐汇测试诊所", XUHUI, timeout=3.0),
        outbox,
        sleep=lambda s: None,
    )
    check = PlatformFilingCheck(client) if filing == "platform" else NoFilingCheck()
    return FrontDesk(client, filing_check=check, acct_used_flag="1")


@pytest.fixture
def desk(platform: InsurancePlatform, tmp_path: Path) -> Iterator[FrontDesk]:
    d = make_desk(platform.url, tmp_path / "outbox.db")
    yield d
    d.client.close()


def yes(pre: PreSettlement) -> bool:
    return True


def expected_split(area: str, balance: Decimal) -> dict[str, Decimal]:
    """The §1.3 split of examples/visit.csv for a first visit this year, by hand."""
    policy = POLICIES[area]
    items = load_fee_items(VISIT_CSV)
    total = sum((i.det_item_fee_sumamt for i in items), Decimal(0))
    ownpay = sum((i.det_item_fee_sumamt for i in items if i.med_list_codg.startswith("ZF")),
                 Decimal(0))  # fmt: skip
    pre = sum(
        ((i.det_item_fee_sumamt * Decimal("0.10")).quantize(CENT, ROUND_HALF_UP)
         for i in items if i.med_list_codg.startswith("B")),
        Decimal(0),
    )  # fmt: skip
    inscp = total - ownpay - pre
    dedc = min(inscp, policy.deductible)
    fund = ((inscp - dedc) * policy.ratio).quantize(CENT, ROUND_HALF_UP)
    personal = total - fund
    base = {AcctScope.ALL: personal, AcctScope.IN_SCOPE: personal - ownpay}.get(
        policy.acct_scope, Decimal(0)
    )
    acct = min(base, balance)
    return {"medfee_sumamt": total, "act_pay_dedc": dedc, "fund_pay_sumamt": fund,
            "acct_pay": acct, "psn_cash_pay": personal - acct, "balc": balance - acct}  # fmt: skip


# -- settling --------------------------------------------------------------------------


def test_anhui_cardholder_with_filing_settles_in_shanghai_with_the_policy_split(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    card = read(holder, pin="123456")
    shown: list[PreSettlement] = []

    def confirm(pre: PreSettlement) -> bool:
        shown.append(pre)
        return True

    receipt = desk.settle(card, VisitPlan.from_file(VISIT_CSV), confirm=confirm)

    want = expected_split("340100", Decimal("1000.00"))
    assert want["fund_pay_sumamt"] == Decimal("125.88")  # 509.80 in scope, 300 deductible, 60 %
    assert (want["acct_pay"], want["psn_cash_pay"]) == (Decimal("388.12"), Decimal("12.00"))
    info = receipt.setlinfo
    got = {name: getattr(info, name) for name in want}
    assert got == want
    assert shown[0].split.fund_pay_sumamt == want["fund_pay_sumamt"]  # 2206 showed the same
    assert receipt.patient.area_case is AreaCase.CROSS_PROVINCE
    assert receipt.patient.filing is FilingStatus.FILED
    assert platform.balance(holder.psn_no) == want["balc"]
    assert info.medins_setl_id == receipt.settlement.msgid
    # 2201 went out with the SSC as medium and the card identification code as card_sn;
    # the outbox keeps requests and replies masked at rest.
    sent = desk.client.outbox.rows(infno="2201")[0].request_input["data"]
    ef05 = holder.profile.ssse.ef05
    assert sent["mdtrt_cert_type"] == "03"
    assert sent["mdtrt_cert_no"] == mask_card_number(ef05.card_number) != ef05.card_number
    assert sent["card_sn"][:6] == ef05.card_id.hex[:6] and sent["card_sn"] != ef05.card_id.hex
    query = desk.client.outbox.rows(infno="1101")[0]
    asked = query.request_input["data"]
    assert asked["mdtrt_cert_type"] == "03"
    assert asked["mdtrt_cert_no"] == mask_card_number(ef05.card_number) != ef05.card_number
    assert asked["card_sn"] != ef05.card_id.hex and asked["card_sn"][:6] == ef05.card_id.hex[:6]
    stored = json.dumps(query.response, ensure_ascii=False, default=str)
    assert holder.profile.ssse.ef06.ssn not in stored
    assert holder.profile.ssse.ef06.full_name not in stored
    # The receipt masks the holder by default and tells everything on request.
    ef06 = holder.profile.ssse.ef06
    text, data = receipt.text(), str(receipt.to_dict())
    for shown_text in (text, data, repr(receipt)):
        assert ef06.ssn not in shown_text and ef06.full_name not in shown_text
    assert "基金支付 Fund pays" in text and "388.12" in text
    assert receipt.to_dict(redact=False)["patient"]["ssn"] == ef06.ssn


def test_reply_dropped_after_2207_is_resolved_and_charged_once(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    platform.inject("2207", "drop")
    receipt = desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    want = expected_split("340100", Decimal("1000.00"))
    assert receipt.setlinfo.acct_pay == want["acct_pay"]
    assert platform.balance(holder.psn_no) == want["balc"]
    assert len(platform.ledger.settlements("settled")) == 1
    assert desk.client.outbox.rows(states=("unknown", "pending")) == []


def test_registration_without_reply_is_reversed_and_reported(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    platform.inject("2201", "drop")  # committed on the platform, reply lost
    with pytest.raises(VisitAborted) as info:
        desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    assert info.value.stage == "2201" and info.value.cleanup.steps == ("2601",)
    assert "registration reversed (2601)" in info.value.message_en
    assert platform.ledger._query("SELECT state FROM visits", ()) == [("cancelled",)]
    assert [r.state for r in desk.client.outbox.rows(infno="2201")] == ["reversed"]


def test_local_shanghai_cardholder_needs_no_filing(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "shanghai", 5)
    receipt = desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    assert receipt.patient.area_case is AreaCase.LOCAL
    assert receipt.patient.filing is None
    assert platform.ledger.message_count("2599") == 0  # no filing check asked


# -- refusals ----------------------------------------------------------------------------


def test_without_filing_the_desk_refuses_before_registering(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 12, area="340100")
    with pytest.raises(FilingRequired) as info:
        desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    assert "340100" in info.value.message_en and "未备案" in info.value.message_zh
    assert platform.ledger.message_count("2201") == 0
    assert platform.balance(holder.psn_no) == Decimal("1000.00")


def test_without_filing_check_the_platform_refuses_and_the_visit_is_cancelled(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    holder = enrol(platform, "anhui", 12, area="340100")
    desk = make_desk(platform.url, tmp_path / "o.db", filing="none")
    with desk.client, pytest.raises(VisitAborted) as info:
        desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    err = info.value
    assert err.stage == "2206"
    assert isinstance(err.cause, PlatformError)
    assert err.err_msg.startswith("跨省异地就医未备案") and "340100" in err.err_msg
    assert err.err_msg in err.message_zh  # the platform's own words reach the desk
    assert err.cleanup.complete and err.cleanup.steps == ("2205", "2202")
    assert "cancelled (2205, 2202); nothing charged" in err.message_en
    assert platform.ledger.settlements() == []
    assert platform.balance(holder.psn_no) == Decimal("1000.00")
    # Registering the same patient again works: nothing is left registered.
    assert platform.ledger._query("SELECT state FROM visits", ()) == [("cancelled",)]


def test_card_not_enrolled_is_refused_by_1101(platform: InsurancePlatform, desk: FrontDesk) -> None:
    stranger = Holder(new_card("anhui", seed=99), "")
    with pytest.raises(PlatformError) as info:
        desk.settle(read(stranger), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    assert "未查询到参保人员信息" in info.value.err_msg
    assert platform.ledger.message_count("2201") == 0


def test_declining_the_pre_settlement_cancels_the_visit(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    with pytest.raises(SettlementDeclined) as info:
        desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=lambda pre: False)
    assert info.value.cleanup.steps == ("2205", "2202")
    assert platform.ledger.message_count("2207") == 0
    assert platform.ledger._query("SELECT state FROM visits", ()) == [("cancelled",)]


def test_wrong_pin_stops_before_the_platform(platform: InsurancePlatform) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    with pytest.raises(PinIncorrect):
        read(holder, pin="000000")
    assert platform.ledger.message_count() == 0


def test_expired_card_is_not_used(platform: InsurancePlatform) -> None:
    with pytest.raises(CardNotUsable):
        read(Holder(new_card("anhui", seed=3, state="expired"), ""))


# -- bad fee files ---------------------------------------------------------------------


HEADER = "feedetl_sn,med_list_codg,medins_list_codg,cnt,pric\n"


@pytest.mark.parametrize(
    ("body", "line", "column", "field"),
    [
        ("1,XA01,H-1,1,30\n2,XA02,H-2,1,-5\n", 3, 5, "pric"),  # negative price
        ("1,XA01,H-1,1,2000000\n", 2, 5, "pric"),  # absurd: over the sanity limit
        ("1,XA01,H-1,1,30\n2,XA02,H-2,1\n", 3, 5, ""),  # a cell missing
        ("1,XA01,H-1,0,30\n", 2, 4, "cnt"),  # zero quantity
    ],
)
def test_bad_fee_file_is_refused_with_its_position_before_anything_is_sent(
    platform: InsurancePlatform, tmp_path: Path, body: str, line: int, column: int, field: str
) -> None:
    path = tmp_path / "visit.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(FeeFileError) as info:
        VisitPlan.from_file(path)
    assert (info.value.line, info.value.column, info.value.field) == (line, column, field)
    assert f"line {line}, column {column}" in info.value.message_en
    assert platform.ledger.message_count() == 0


def test_visit_total_over_the_limit_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "visit.csv"
    path.write_text(HEADER + "1,XA01,H-1,1,600000\n2,XA02,H-2,1,600000\n", encoding="utf-8")
    with pytest.raises(InvalidAmount) as info:
        VisitPlan.from_file(path)
    assert info.value.field == "medfee_sumamt"


# -- cancel ------------------------------------------------------------------------------


def test_cancel_restores_balance_and_annual_usage(
    platform: InsurancePlatform, desk: FrontDesk
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    receipt = desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=yes)
    assert platform.balance(holder.psn_no) < Decimal("1000.00")
    assert platform.usage(holder.psn_no) != (Decimal("0.00"), Decimal("0.00"))

    result = desk.cancel(receipt.setl_id)

    assert result.steps == ("2208", "2205", "2202")
    assert result.balc == Decimal("1000.00") == platform.balance(holder.psn_no)
    assert platform.usage(holder.psn_no) == (Decimal("0.00"), Decimal("0.00"))
    assert -result.reversal.setlinfo.acct_pay == receipt.setlinfo.acct_pay
    assert [s["state"] for s in platform.ledger.settlements()] == ["cancelled"]
    assert desk.client.outbox.day_totals(date.today()).count == 0
    assert desk.reconcile(date.today()).balanced


# -- platform down -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_platform_down_is_a_clear_error_and_nothing_is_half_done(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    card = read(holder)
    desk = make_desk(f"http://127.0.0.1:{free_port()}/", tmp_path / "o.db")
    with desk.client:
        with pytest.raises(PlatformUnreachable) as info:
            desk.settle(card, VisitPlan.from_file(VISIT_CSV), confirm=yes)
        rows = desk.client.outbox.rows()
    assert "unreachable" in info.value.message_en and "未发送" in info.value.message_zh
    assert [(r.infno, r.state) for r in rows] == [("9001", "failed")]


def test_platform_lost_mid_visit_leaves_a_visit_the_desk_can_cancel_later(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    holder = enrol(platform, "anhui", 11, area="340100", filed_for="310000")
    outbox = tmp_path / "o.db"
    desk = make_desk(platform.url, outbox)

    def platform_dies(pre: PreSettlement) -> bool:
        platform.stop()
        return True

    with desk.client, pytest.raises(VisitAborted) as info:
        desk.settle(read(holder), VisitPlan.from_file(VISIT_CSV), confirm=platform_dies)
    err = info.value
    assert isinstance(err.cause, PlatformUnreachable) and err.stage == "2207"
    assert not err.cleanup.complete
    mdtrt_id = err.cleanup.mdtrt_id
    assert f"sscard medical cancel --visit {mdtrt_id}" in err.message_en
    # Outbox consistent: nothing unknown, the 2207 and the clean-up provably not sent.
    with InsuranceClient(desk.client.config, outbox) as check:
        states = {(r.infno, r.state) for r in check.outbox.rows()}
    assert ("2207", "failed") in states and ("2205", "failed") in states
    assert not {s for _i, s in states} & {"unknown", "pending"}

    # The platform comes back (same ledger): the visit is cancelled from the outbox.
    with InsurancePlatform(tmp_path / "ledger.db") as again:
        later = make_desk(again.url, outbox)
        with later.client:
            assert later.cancel_visit(mdtrt_id).steps == ("2205", "2202")
        assert again.ledger.settlements() == []
        assert again.balance(holder.psn_no) == Decimal("1000.00")


# -- configuration -------------------------------------------------------------------------


def test_example_config_loads_and_env_overrides_the_url() -> None:
    config = DeskConfig.load(
        EXAMPLES / "medical.toml", env={"SSCARD_INSURANCE_URL": "http://h:1/x"}
    )
    assert config.url == "http://h:1/x"
    assert (config.fixmedins_code, config.mdtrtarea_admvs) == ("H31010400001", "310000")
    assert config.acct_used_flag == "1" and config.filing_check == "platform"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[desk]\nopertor = "1"\n', "unknown key desk.opertor"),
        ("[platform]\nurl = 5\n", "wrong type"),
        ("[clinic]\n", "unknown section"),
        ("[platform\n", "medical.toml"),
        ("", "no platform URL"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "medical.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        DeskConfig.load(path, env={})
    assert words in info.value.message_en
