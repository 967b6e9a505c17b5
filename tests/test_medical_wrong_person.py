"""Settle the right person (security): the wrong-person scene as tests.

A Jiangsu card and a Zhejiang card share a card number; only the Zhejiang holder is
insured. Card numbers are not unique across provinces (medical-insurance.md §1.7),
so the platform identifies a card by number *and* card_sn, and the desk checks that
the person 1101 returns is the cardholder it read (EF06 SSN and name). Real HTTP
platform, real SQLite ledger, outbox and audit log, cards read through the SSSE reader.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import read_card as read

from sscard.applets.medical import FrontDesk, VisitPlan, WrongPerson
from sscard.cli.medical import command
from sscard.services.audit import AuditLog
from sscard.services.insurance import (
    ClientConfig,
    InsuranceClient,
    PlatformError,
    PlatformFilingCheck,
)
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile, new_card

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VISIT_CSV = EXAMPLES / "visit.csv"


def twin_cards() -> tuple[CardProfile, CardProfile]:
    """A Jiangsu and a Zhejiang card with the same card number (different card_sn, holder)."""
    zhejiang = new_card("zhejiang", seed=5)
    jiangsu = new_card("jiangsu", seed=5)
    jiangsu.ssse.ef05 = replace(jiangsu.ssse.ef05, card_number=zhejiang.ssse.ef05.card_number)
    assert jiangsu.ssse.ef05.card_id.hex != zhejiang.ssse.ef05.card_id.hex
    assert jiangsu.ssse.ef06.ssn != zhejiang.ssse.ef06.ssn
    return jiangsu, zhejiang


def make_desk(platform: InsurancePlatform, outbox: Path, audit: AuditLog) -> FrontDesk:
    client = InsuranceClient(ClientConfig(platform.url, "H31010400001", "clinic", "310000"), outbox)
    return FrontDesk(client, filing_check=PlatformFilingCheck(client), audit=audit)


def business_rows(desk: FrontDesk) -> list[str]:
    return [r.infno for r in desk.client.outbox.rows() if r.infno != "9001"]


def test_sim_new_gives_provinces_different_card_numbers_for_one_seed() -> None:
    numbers = {p: new_card(p, seed=5).ssse.ef05.card_number for p in
               ("shanghai", "jiangsu", "zhejiang", "anhui")}  # fmt: skip
    assert len(set(numbers.values())) == 4
    assert new_card("jiangsu", seed=5).ssse.ef05.card_number == numbers["jiangsu"]  # reproducible


def test_same_card_number_other_province_is_not_found_by_the_platform(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    jiangsu, zhejiang = twin_cards()
    zj_psn = platform.enrol_card(zhejiang)
    with AuditLog(tmp_path / "audit.db") as audit:
        desk = make_desk(platform, tmp_path / "outbox.db", audit)
        with desk.client:
            with pytest.raises(PlatformError) as refused:
                desk.settle(read(jiangsu), VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
            assert "未查询到参保人员信息" in refused.value.err_msg
            assert business_rows(desk) == ["1101"]
    assert platform.ledger.message_count("2201") == 0 and platform.ledger.settlements() == []
    assert str(platform.balance(zj_psn)) == "1000.00"


def lax_platform(platform: InsurancePlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault: a platform whose 1101 ignores the certno it is sent (some do not check it)."""
    ledger = platform.ledger
    strict = ledger._handlers["1101"]

    def ignore_certno(ctx):  # type: ignore[no-untyped-def]
        ctx.env = {**ctx.env, "input": {"data": {**ctx.env["input"]["data"], "certno": ""}}}
        return strict(ctx)

    monkeypatch.setitem(ledger._handlers, "1101", ignore_certno)


def test_platform_answering_with_another_person_is_refused_at_the_desk(
    platform: InsurancePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's record for this card (number + card_sn) is the Zhejiang holder (a
    mis-issued card or bad platform data) and it does not check certno: the desk must
    not settle on that account."""
    lax_platform(platform, monkeypatch)
    jiangsu, zhejiang = twin_cards()
    ef05, other = jiangsu.ssse.ef05, zhejiang.ssse.ef06
    zj_psn = platform.add_person_from_card(
        other.ssn, other.full_name, other.sex, other.birth_date, "330100",
        card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    platform.add_filing(zj_psn, "330100", "310000", date.today(), date(2099, 12, 31))
    card = read(jiangsu)
    with AuditLog(tmp_path / "audit.db") as audit:
        desk = make_desk(platform, tmp_path / "outbox.db", audit)
        with desk.client:
            with pytest.raises(WrongPerson) as refused:
                desk.settle(card, VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
            err = refused.value
            # Same seed, same drawn name: here only the SSN tells the two holders apart.
            want = ("ssn_mismatch",) + (() if card.name == other.full_name else ("name_mismatch",))
            assert err.reasons == want
            assert "does not match the card" in err.message_en and "与卡片不符" in err.message_zh
            assert "nothing charged" in err.message_en and "未扣费" in err.message_zh
            assert err.exit_status == 1
            # Nothing registered; the outbox holds the 1101 only, noted and masked.
            assert business_rows(desk) == ["1101"]
            (query,) = desk.client.outbox.rows(infno="1101")
            assert query.note and "does not match the card" in query.note
            stored = json.dumps([query.request, query.response], ensure_ascii=False, default=str)
            for secret in (other.ssn, other.full_name, card.ssn, card.name, card.card_number):
                assert secret not in stored
        (row,) = audit.query()
        assert (row.scenario, row.result) == ("medical_1101", "refused")
        assert row.reasons == want
        assert row.subject_ssn and card.ssn not in row.subject_ssn  # masked
        assert row.subject_name and card.name != row.subject_name
    assert platform.ledger.message_count("2201") == 0 and platform.ledger.settlements() == []
    assert str(platform.balance(zj_psn)) == "1000.00"
    for text in (err.message_en, err.message_zh, repr(err)):
        assert card.ssn not in text and other.ssn not in text and card.name not in text


def test_strict_platform_refuses_a_certno_that_is_not_the_cards(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    """Same bad record on a platform that checks the certno sent with 1101 (§1.7)."""
    jiangsu, zhejiang = twin_cards()
    ef05, other = jiangsu.ssse.ef05, zhejiang.ssse.ef06
    platform.add_person_from_card(
        other.ssn, other.full_name, other.sex, other.birth_date, "330100",
        card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    with AuditLog(tmp_path / "audit.db") as audit:
        desk = make_desk(platform, tmp_path / "outbox.db", audit)
        with desk.client:
            with pytest.raises(PlatformError, match="certno"):
                desk.settle(read(jiangsu), VisitPlan.from_file(VISIT_CSV), confirm=lambda p: True)
            assert business_rows(desk) == ["1101"]
    assert platform.ledger.message_count("2201") == 0


def test_wrong_name_through_the_cli_is_bilingual_and_audited(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    """The platform's person has the card's SSN but another name: refused all the same."""
    jiangsu, _zhejiang = twin_cards()
    ef05, ef06 = jiangsu.ssse.ef05, jiangsu.ssse.ef06
    platform.add_person_from_card(
        ef06.ssn, "王" + ef06.full_name[1:] if ef06.full_name[0] != "王" else "李小明",
        ef06.sex, ef06.birth_date, "320100", card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    card_path = tmp_path / "jiangsu.json"
    jiangsu.save(card_path)
    config = tmp_path / "medical.toml"
    config.write_text(
        f'[platform]\nurl = "{platform.url}"\n[institution]\nfixmedins_code = "H31010400001"\n'
        f'mdtrtarea_admvs = "310000"\n[desk]\noutbox = "{tmp_path / "o.db"}"\n'
        f'audit_log = "{tmp_path / "audit.db"}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        command,
        ["settle", "--sim", str(card_path), "--items", str(VISIT_CSV), "--yes",
         "--config", str(config)],
        env={"SSCARD_INSURANCE_URL": ""},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    out = result.output
    assert out.startswith("error: the platform's person does not match the card")
    assert "医保平台返回的人员与卡片不符" in out and "Traceback" not in out
    assert "name differ" in out and "姓名不一致" in out
    assert ef06.ssn not in out and ef06.full_name not in out
    assert platform.ledger.message_count("2201") == 0
    with AuditLog(tmp_path / "audit.db") as audit:
        assert [(r.result, r.reasons) for r in audit.query()] == [("refused", ("name_mismatch",))]
