"""The delta matrix (regulation Art. 13) through the front desk.

Insured in each of the four provinces x treated in each of the four, both card
generations: local and in-province other-area visits settle without a filing,
cross-province visits settle with a filing (异地就医备案) and are refused without
one before anything is registered or charged. Every cell reads a simulated card
through the SSSE reader, runs the desk against the simulated platform over HTTP,
and checks the split by hand against the *insured* area's policy ("参保地政策",
medical-insurance.md §1.6). Insured areas: Shanghai, Suzhou, Wenzhou, Hefei;
treatment areas: Shanghai, Nanjing, Hangzhou, Wuhu (so Wenzhou → Hangzhou is the
in-province case of §1.6).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.medical import FilingRequired, FrontDesk, VisitPlan, read_identity
from sscard.services.insurance import (
    AreaCase,
    ClientConfig,
    FilingStatus,
    InsuranceClient,
    PlatformFilingCheck,
    load_fee_items,
)
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import POLICIES, AcctScope, InsurancePlatform
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport

VISIT_CSV = Path(__file__).resolve().parent.parent / "examples" / "visit.csv"
INSURED = {"shanghai": "310000", "jiangsu": "320500", "zhejiang": "330300", "anhui": "340100"}
TREATED = {"shanghai": "310000", "jiangsu": "320100", "zhejiang": "330100", "anhui": "340200"}
CENT = Decimal("0.01")
_SEEDS = itertools.count(500)


@dataclass(frozen=True)
class Cell:
    insured: str
    treated: str
    generation: int
    filed: bool

    @property
    def case(self) -> AreaCase:
        return AreaCase.of(INSURED[self.insured], TREATED[self.treated])

    def __str__(self) -> str:
        filing = "filed" if self.filed else "unfiled"
        return f"{self.insured}->{self.treated}-gen{self.generation}-{filing}"


def cells() -> list[Cell]:
    out = []
    for insured, treated, generation in itertools.product(INSURED, TREATED, (2, 3)):
        cross = insured != treated
        out.append(Cell(insured, treated, generation, cross))  # filed when one is needed
        if cross:
            out.append(Cell(insured, treated, generation, False))
    return out


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InsurancePlatform]:
    with InsurancePlatform(tmp_path_factory.mktemp("delta") / "ledger.db") as p:
        yield p


@pytest.fixture(scope="module")
def desks(
    platform: InsurancePlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FrontDesk]]:
    """One clinic per treatment area, each with its own outbox."""
    tmp = tmp_path_factory.mktemp("desks")
    out = {}
    for n, (province, area) in enumerate(TREATED.items()):
        config = ClientConfig(platform.url, f"H{area}0000{n}", "clinic", area)
        client = InsuranceClient(config, tmp / f"{province}.db")
        out[province] = FrontDesk(client, filing_check=PlatformFilingCheck(client),
                                  acct_used_flag="1")  # fmt: skip
    yield out
    for desk in out.values():
        desk.client.close()


def by_hand(area: str, balance: Decimal) -> dict[str, Decimal]:
    """The split of examples/visit.csv for a first visit of the year, from the policy."""
    policy = POLICIES[area]
    items = load_fee_items(VISIT_CSV)
    total = sum((i.det_item_fee_sumamt for i in items), Decimal(0))
    ownpay = sum((i.det_item_fee_sumamt for i in items if i.med_list_codg.startswith("ZF")),
                 Decimal(0))  # fmt: skip
    pre = sum(((i.det_item_fee_sumamt * Decimal("0.10")).quantize(CENT, ROUND_HALF_UP)
               for i in items if i.med_list_codg.startswith("B")), Decimal(0))  # fmt: skip
    inscp = total - ownpay - pre
    dedc = min(inscp, policy.deductible)
    fund = min(((inscp - dedc) * policy.ratio).quantize(CENT, ROUND_HALF_UP), policy.annual_cap)
    personal = total - fund
    base = personal if policy.acct_scope is AcctScope.ALL else personal - ownpay
    acct = min(base, balance)
    return {"medfee_sumamt": total, "act_pay_dedc": dedc, "fund_pay_sumamt": fund,
            "acct_pay": acct, "psn_cash_pay": personal - acct, "balc": balance - acct}  # fmt: skip


@pytest.mark.parametrize("cell", cells(), ids=str)
def test_delta_matrix_cell(
    cell: Cell, platform: InsurancePlatform, desks: dict[str, FrontDesk]
) -> None:
    profile = new_card(cell.insured, generation=cell.generation, seed=next(_SEEDS))
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    insured, treated = INSURED[cell.insured], TREATED[cell.treated]
    psn_no = platform.add_person_from_card(
        ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
        insuplc_admdvs=insured, card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    if cell.filed:
        platform.add_filing(psn_no, insured, treated, date.today(), date(2099, 12, 31), "11")
    keys = SoftwareKeyProvider(default_key_set()) if cell.generation == 3 else None
    with Connection(SimulatorTransport(build_card(profile))) as conn:
        card = read_identity(conn, keys)
    desk = desks[cell.treated]
    visit = VisitPlan.from_file(VISIT_CSV)

    if cell.case is AreaCase.CROSS_PROVINCE and not cell.filed:
        with pytest.raises(FilingRequired) as refused:
            desk.settle(card, visit, confirm=lambda pre: True)
        assert insured in refused.value.message_en and "未备案" in refused.value.message_zh
        visits = platform.ledger._query("SELECT 1 FROM visits WHERE psn_no = ?", (psn_no,))
        assert visits == []  # refused before 2201: nothing registered, nothing charged
        assert platform.balance(psn_no) == Decimal("1000.00")
        return

    receipt = desk.settle(card, visit, confirm=lambda pre: True)
    want = by_hand(insured, Decimal("1000.00"))
    info = receipt.setlinfo
    assert {k: getattr(info, k) for k in want} == want
    assert receipt.patient.area_case is cell.case
    expected_case = (
        AreaCase.LOCAL if cell.insured == cell.treated == "shanghai"
        else AreaCase.IN_PROVINCE if cell.insured == cell.treated
        else AreaCase.CROSS_PROVINCE
    )  # fmt: skip
    assert cell.case is expected_case
    assert receipt.patient.filing is (FilingStatus.FILED if cell.filed else None)
    assert info.clr_optins == insured  # cleared to the insured area
    assert platform.balance(psn_no) == want["balc"]
    assert desk.client.outbox.get(receipt.settlement.msgid).state == "done"
