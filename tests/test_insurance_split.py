"""Fund split of the simulated platform and the client's amount rules (§1.3)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.services.insurance import AreaCase, InvalidAmount, SetlInfo, money
from sscard.services.insurance.money import dumps, loads
from sscard.simulators.insurance_platform import POLICIES, AcctScope, compute_split, policy_for

amounts = st.decimals(min_value=0, max_value=20000, places=2, allow_nan=False)


@given(
    code=st.sampled_from(sorted(POLICIES)),
    ownpay=amounts,
    pre=amounts,
    inscp=amounts,
    dedc_used=amounts,
    fund_used=amounts,
    balance=amounts,
    use_account=st.booleans(),
)
def test_split_adds_up_and_respects_every_limit(
    code: str,
    ownpay: Decimal,
    pre: Decimal,
    inscp: Decimal,
    dedc_used: Decimal,
    fund_used: Decimal,
    balance: Decimal,
    use_account: bool,
) -> None:
    policy = POLICIES[code]
    s = compute_split(
        policy,
        fulamt_ownpay_amt=ownpay,
        preselfpay_amt=pre,
        inscp_scp_amt=inscp,
        deductible_used=dedc_used,
        fund_used=fund_used,
        balance=balance,
        use_account=use_account,
    )
    assert s.medfee_sumamt == ownpay + pre + inscp
    assert s.fund_pay_sumamt + s.acct_pay + s.psn_cash_pay == s.medfee_sumamt
    assert 0 <= s.act_pay_dedc <= max(Decimal(0), policy.deductible - dedc_used)
    assert 0 <= s.hifp_pay <= max(Decimal(0), policy.annual_cap - fund_used)
    assert s.hifp_pay <= inscp * policy.ratio + Decimal("0.005")
    assert 0 <= s.acct_pay <= balance and s.balc == balance - s.acct_pay
    assert s.psn_cash_pay >= 0
    if not use_account or policy.acct_scope is AcctScope.NONE:
        assert s.acct_pay == 0
    if policy.acct_scope is AcctScope.IN_SCOPE:
        assert s.psn_cash_pay >= ownpay  # self-paid items never from the account
    assert s.hifp_pay == s.hifp_pay.quantize(Decimal("0.01"))


def test_known_split_for_hangzhou() -> None:
    # 700 deductible, 65 %, account pays everything personal: 1000 in scope, 50 own pay.
    s = compute_split(
        POLICIES["330100"],
        fulamt_ownpay_amt=Decimal("50.00"),
        preselfpay_amt=Decimal("0.00"),
        inscp_scp_amt=Decimal("1000.00"),
        deductible_used=Decimal("0.00"),
        fund_used=Decimal("0.00"),
        balance=Decimal("2000.00"),
        use_account=True,
    )
    assert (s.act_pay_dedc, s.hifp_pay, s.acct_pay, s.psn_cash_pay) == (
        Decimal("700.00"),
        Decimal("195.00"),
        Decimal("855.00"),
        Decimal("0.00"),
    )


def test_policy_table_covers_the_four_provinces_with_different_policies() -> None:
    assert {code[:2] for code in POLICIES} == {"31", "32", "33", "34"}
    assert len({(p.deductible, p.ratio, p.annual_cap, p.acct_scope) for p in POLICIES.values()}) > 4
    assert policy_for("320583") is POLICIES["320500"]  # Kunshan → Suzhou pool
    assert policy_for("341523") is POLICIES["340000"]  # no city entry → province pool
    assert policy_for("110000") is None


def test_area_case() -> None:
    assert AreaCase.of("340100", "310000") is AreaCase.CROSS_PROVINCE
    assert AreaCase.of("330300", "330100") is AreaCase.IN_PROVINCE
    assert AreaCase.of("310000", "310000") is AreaCase.LOCAL


def _setl(fund: str, acct: str, cash: str, total: str) -> SetlInfo:
    zero = Decimal("0.00")
    values = {f: zero for f in SetlInfo.__dataclass_fields__}
    values.update(
        {k: "" for k in ("setl_id", "mdtrt_id", "psn_no", "medins_setl_id", "insutype")}
        | {k: "" for k in ("med_type", "setl_time", "clr_optins", "clr_way", "clr_type")}
    )
    values.update(
        fund_pay_sumamt=Decimal(fund),
        acct_pay=Decimal(acct),
        psn_cash_pay=Decimal(cash),
        medfee_sumamt=Decimal(total),
    )
    return SetlInfo(**values)


def test_fund_total_semantics_flag() -> None:
    hunan = _setl("60.00", "30.00", "10.00", "100.00")  # fund excludes the account
    guangdong = _setl("90.00", "30.00", "10.00", "100.00")  # fund includes it
    assert hunan.balances() and not hunan.balances(fund_total_includes_acct=True)
    assert guangdong.balances(fund_total_includes_acct=True) and not guangdong.balances()


@given(st.decimals(min_value=0, max_value=999999, places=2, allow_nan=False))
def test_amounts_round_trip_through_json_numbers(amount: Decimal) -> None:
    value = money(amount)
    assert money(loads(dumps({"a": value}))["a"].quantize(Decimal("0.01"))) == value


def test_money_accepts_str_and_int() -> None:
    assert money("12.5") == Decimal("12.50") and money(3) == Decimal("3.00")
    with pytest.raises(InvalidAmount, match="float"):
        money(0.1)  # type: ignore[arg-type]
