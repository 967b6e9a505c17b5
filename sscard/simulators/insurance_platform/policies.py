"""Insured-area policies and the fund split of the simulated platform.

"参保地政策" (§M1.6): the *insured's* area decides the
split, whatever the place of treatment. The numbers below are sscard test
data chosen to differ between areas, not real policy. The split fills the
§M1.3 fields: deductible (起付线) first, then the pooled fund pays ``ratio``
of the rest up to the annual cap, the personal account pays what its scope
allows, cash pays the remainder.

Catalogue rule of the simulator (就医地目录, simplified): ``med_list_codg``
starting ``ZF`` is outside the catalogue (fully self-paid, 丙类), starting
``B`` is class B (乙类, 10 % first self-payment), anything else is class A.
The charge-item type follows the national code's first letter: ``X`` western
medicine (09), ``Z`` Chinese patent medicine (11), ``T`` decoction pieces (10),
anything else "other" (14).

Every area lets the personal account pay when the HIS asks for it
(``acct_used_flag=1``, §M1.7); areas differ in *what* it may pay
(:class:`AcctScope`). ``NONE`` stays available for a province table that needs it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
CLASS_B_SELFPAY = Decimal("0.10")


class AcctScope(enum.StrEnum):
    """What the personal account (个人账户) may pay of the personal share."""

    ALL = "all"  # the whole personal share, self-paid items included
    IN_SCOPE = "in_scope"  # the personal share minus fully self-paid items
    NONE = "none"  # the account is not used for outpatient care


@dataclass(frozen=True)
class AreaPolicy:
    admdvs: str
    name_en: str
    name_zh: str
    deductible: Decimal  # per calendar year
    ratio: Decimal  # share of the in-scope amount above the deductible paid by the fund
    annual_cap: Decimal  # fund payments per calendar year
    acct_scope: AcctScope


def _p(
    code: str, en: str, zh: str, dedc: str, ratio: str, cap: str, scope: AcctScope
) -> AreaPolicy:
    return AreaPolicy(code, en, zh, Decimal(dedc), Decimal(ratio), Decimal(cap), scope)


#: Insured areas of the four delta provinces (codes: §M5; illustrative numbers).
POLICIES: dict[str, AreaPolicy] = {
    p.admdvs: p
    for p in (
        _p("310000", "Shanghai", "上海市", "1500.00", "0.70", "10000.00", AcctScope.ALL),
        _p(
            "320000",
            "Jiangsu (province pool)",
            "江苏省本级",
            "800.00",
            "0.60",
            "5000.00",
            AcctScope.IN_SCOPE,
        ),
        _p("320100", "Nanjing", "南京市", "600.00", "0.65", "6000.00", AcctScope.IN_SCOPE),
        _p("320500", "Suzhou", "苏州市", "500.00", "0.70", "8000.00", AcctScope.ALL),
        _p(
            "330000",
            "Zhejiang (province pool)",
            "浙江省本级",
            "1000.00",
            "0.60",
            "6000.00",
            AcctScope.IN_SCOPE,
        ),
        _p("330100", "Hangzhou", "杭州市", "700.00", "0.65", "6000.00", AcctScope.ALL),
        _p("330300", "Wenzhou", "温州市", "500.00", "0.55", "5000.00", AcctScope.IN_SCOPE),
        _p(
            "340000",
            "Anhui (province pool)",
            "安徽省本级",
            "800.00",
            "0.55",
            "4000.00",
            AcctScope.IN_SCOPE,
        ),
        _p("340100", "Hefei", "合肥市", "300.00", "0.60", "5000.00", AcctScope.IN_SCOPE),
        _p("340200", "Wuhu", "芜湖市", "500.00", "0.55", "4000.00", AcctScope.ALL),
    )
}


def policy_for(admdvs: str, policies: dict[str, AreaPolicy] = POLICIES) -> AreaPolicy | None:
    """Exact area, else its city (xxxx00), else its province pool (xx0000)."""
    for code in (admdvs, admdvs[:4] + "00", admdvs[:2] + "0000"):
        if code in policies:
            return policies[code]
    return None


def area_covers(filed_area: str, treatment_area: str) -> bool:
    """A filing to a province (xx0000) or city (xxxx00) covers the areas below it."""
    if filed_area == treatment_area:
        return True
    if filed_area.endswith("0000"):
        return filed_area[:2] == treatment_area[:2]
    return filed_area.endswith("00") and filed_area[:4] == treatment_area[:4]


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ItemClass:
    """Platform classification of one fee line (2204 ``result[]``)."""

    chrgitm_lv: str  # 01 class A, 02 class B, 03 self-paid
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    med_chrgitm_type: str = "14"


def _charge_type(med_list_codg: str) -> str:
    return {"X": "09", "Z": "11", "T": "10"}.get(med_list_codg[:1], "14")


def classify_item(med_list_codg: str, amount: Decimal) -> ItemClass:
    kind = _charge_type(med_list_codg)
    if med_list_codg.startswith("ZF"):
        return ItemClass("03", Decimal("1.0000"), amount, ZERO, ZERO, "14")
    if med_list_codg.startswith("B"):
        pre = _round(amount * CLASS_B_SELFPAY)
        return ItemClass("02", CLASS_B_SELFPAY, ZERO, pre, amount - pre, kind)
    return ItemClass("01", Decimal("0.0000"), ZERO, ZERO, amount, kind)


@dataclass(frozen=True)
class Split:
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    balc: Decimal
    cap_left_after: Decimal


def compute_split(
    policy: AreaPolicy,
    *,
    fulamt_ownpay_amt: Decimal,
    preselfpay_amt: Decimal,
    inscp_scp_amt: Decimal,
    deductible_used: Decimal,
    fund_used: Decimal,
    balance: Decimal,
    use_account: bool,
) -> Split:
    """The §M1.3 split of one settlement (fund total excludes the account, Hunan style)."""
    medfee = fulamt_ownpay_amt + preselfpay_amt + inscp_scp_amt
    dedc = min(inscp_scp_amt, max(ZERO, policy.deductible - deductible_used))
    cap_left = max(ZERO, policy.annual_cap - fund_used)
    hifp = min(_round((inscp_scp_amt - dedc) * policy.ratio), cap_left)
    psn_part = medfee - hifp
    if policy.acct_scope is AcctScope.ALL:
        acct_base = psn_part
    elif policy.acct_scope is AcctScope.IN_SCOPE:
        acct_base = psn_part - fulamt_ownpay_amt
    else:
        acct_base = ZERO
    acct = min(acct_base, balance) if use_account else ZERO
    return Split(
        medfee_sumamt=medfee,
        fulamt_ownpay_amt=fulamt_ownpay_amt,
        preselfpay_amt=preselfpay_amt,
        inscp_scp_amt=inscp_scp_amt,
        act_pay_dedc=dedc,
        hifp_pay=hifp,
        pool_prop_selfpay=(Decimal(1) - policy.ratio).quantize(Decimal("0.0001")),
        fund_pay_sumamt=hifp,
        psn_part_amt=psn_part,
        acct_pay=acct,
        psn_cash_pay=psn_part - acct,
        balc=balance - acct,
        cap_left_after=cap_left - hifp,
    )
