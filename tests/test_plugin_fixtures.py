"""Written only against the shipped pytest plugin's fixtures: tap, read, settle."""

from decimal import Decimal

from sscard.applets.medical import VisitPlan
from sscard.applets.transit import TapAccepted
from sscard.services.insurance.models import FeeItem


def test_a_bus_tap(sscard_card, sscard_validator) -> None:
    card = sscard_card("jiangsu", balance=1_000)
    bus = sscard_validator(mode="flat", fare=200, city_code="2900", industry=2, line=71)
    result = bus.tap(card.connect())
    assert isinstance(result, TapAccepted) and (result.fare, result.balance) == (200, 800)


def test_a_read_and_a_settlement(sscard_card, sscard_insurance, sscard_desk) -> None:
    card = sscard_card("shanghai", generation=3)
    sscard_insurance.enrol_card(card.profile)
    identity = sscard_desk.read(card)
    assert identity.card_number == card.profile.ssse.ef05.card_number
    item = FeeItem("1", "XA01", "H-1", Decimal("30.00"), Decimal("1"), Decimal("30.00"))
    receipt = sscard_desk().settle(identity, VisitPlan((item,)), confirm=lambda pre: True)
    info = receipt.setlinfo
    assert info.setl_id and info.medfee_sumamt == Decimal("30.00")
    assert info.fund_pay_sumamt + info.psn_part_amt == info.medfee_sumamt
