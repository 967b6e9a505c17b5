"""``sscard medical`` end to end with CliRunner: simulated card file, platform over HTTP."""

from __future__ import annotations

import json
import socket
from datetime import date
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from example_configs import EXAMPLES, medical_config

from sscard.cli.medical import command
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile, new_card


def card_file(
    tmp_path: Path, platform: InsurancePlatform, *, filed: bool = True
) -> tuple[Path, CardProfile, str]:
    profile = new_card("anhui", seed=21)
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    psn_no = platform.add_person_from_card(
        ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
        insuplc_admdvs="340100", card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    if filed:
        platform.add_filing(psn_no, "340100", "310000", date.today(), date(2099, 12, 31))
    path = tmp_path / "card.json"
    profile.save(path)
    return path, profile, psn_no


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        command, list(args), env={"SSCARD_INSURANCE_URL": "", **(env or {})}, input=input
    )
    return result.exit_code, result.output


def test_settle_with_sim_card_prints_the_receipt_json_then_cancel_and_reconcile(
    tmp_path: Path, platform: InsurancePlatform
) -> None:
    card, profile, psn_no = card_file(tmp_path, platform)
    config = str(medical_config(tmp_path, platform.url))
    items = str(EXAMPLES / "visit.csv")

    code, out = run("settle", "--sim", str(card), "--items", items, "--yes", "--json",
                    "--config", config)  # fmt: skip
    assert code == 0, out
    receipt = json.loads(out[out.index("{") :])  # the pre-settlement goes to stderr
    assert receipt["area_case"] == "cross_province" and receipt["filing"] == "FILED"
    assert receipt["split"]["fund_pay_sumamt"] == "125.88"
    assert receipt["split"]["acct_pay"] == "388.12"
    assert receipt["split"]["psn_cash_pay"] == "12.00"
    assert receipt["patient"]["ssn"] != profile.ssse.ef06.ssn  # masked by default
    assert profile.ssse.ef06.ssn not in out and profile.ssse.ef06.full_name not in out
    assert platform.balance(psn_no) == Decimal("611.88")

    code, out = run("cancel", receipt["setl_id"], "--json", "--config", config)
    assert code == 0, out
    assert json.loads(out)["steps"] == ["2208", "2205", "2202"]
    assert platform.balance(psn_no) == Decimal("1000.00")

    code, out = run("reconcile", "--date", date.today().isoformat(), "--config", config)
    assert code == 0, out
    assert "balanced" in out and "0 settlements" in out


def test_settle_asks_and_a_no_cancels_the_visit(
    tmp_path: Path, platform: InsurancePlatform
) -> None:
    card, _profile, psn_no = card_file(tmp_path, platform)
    config = str(medical_config(tmp_path, platform.url))
    code, out = run("settle", "--sim", str(card), "--items", str(EXAMPLES / "visit.json"),
                    "--config", config, input="n\n")  # fmt: skip
    assert code == 1
    assert "基金支付 Fund pays" in out and "settle? / 确认结算？" in out
    assert "not confirmed at the desk: registration cancelled" in out
    assert "挂号已撤销" in out and "2205, 2202" in out
    assert platform.ledger.settlements() == []
    assert platform.balance(psn_no) == Decimal("1000.00")


def test_settle_without_filing_prints_the_refusal(
    tmp_path: Path, platform: InsurancePlatform
) -> None:
    card, _profile, _psn = card_file(tmp_path, platform, filed=False)
    config = str(medical_config(tmp_path, platform.url))
    code, out = run("settle", "--sim", str(card), "--items", str(EXAMPLES / "visit.csv"),
                    "--yes", "--config", config)  # fmt: skip
    assert code == 1
    assert out.startswith("error: cross-province treatment not filed")
    assert "跨省异地就医未备案" in out and "Traceback" not in out
    assert platform.ledger.message_count("2201") == 0


def test_platform_down_is_one_clear_line(tmp_path: Path, platform: InsurancePlatform) -> None:
    card, _profile, _psn = card_file(tmp_path, platform)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    config = str(medical_config(tmp_path, platform.url))
    code, out = run("settle", "--sim", str(card), "--items", str(EXAMPLES / "visit.csv"), "--yes",
                    "--config", config, env={"SSCARD_INSURANCE_URL": dead})  # fmt: skip
    assert code == 4
    assert "unreachable" in out and dead in out and "nothing was registered or charged" in out
    assert len(out.strip().splitlines()) == 1


def test_malformed_fee_file_names_line_and_column(
    tmp_path: Path, platform: InsurancePlatform
) -> None:
    card, _profile, _psn = card_file(tmp_path, platform)
    items = tmp_path / "visit.csv"
    items.write_text(
        "feedetl_sn,med_list_codg,medins_list_codg,cnt,pric\n1,XA01,H-1,1,30\n2,XA02,H-2,1,abc\n",
        encoding="utf-8",
    )
    config = str(medical_config(tmp_path, platform.url))
    code, out = run("settle", "--sim", str(card), "--items", str(items), "--yes", "--json",
                    "--config", config)  # fmt: skip
    assert code == 2
    error = json.loads(out)
    assert error["error"] == "FeeFileError"
    assert "visit.csv line 3, column 5 (pric)" in error["message_en"]
    assert platform.ledger.message_count() == 0


def test_no_config_and_no_url_says_how_to_configure(tmp_path: Path) -> None:
    code, out = run("reconcile")
    assert code == 2 and "SSCARD_INSURANCE_URL" in out
