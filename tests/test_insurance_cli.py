"""``sscard sim insurance serve`` as a real process on loopback."""

from __future__ import annotations

import time
from pathlib import Path

from helpers import insurance_platform_process

from sscard.services.insurance import ClientConfig, InsuranceClient, PersonInfoRequest


def test_serve_with_demo_data_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with insurance_platform_process(
        ["--demo-data", "--db", str(tmp_path / "l.db")], tmp_path / "url.txt"
    ) as served:
        assert served.url.startswith("http://127.0.0.1:")
        config = ClientConfig(served.url, "H31010400001", "demo", "310000", timeout=5)
        with InsuranceClient(config, tmp_path / "o.db") as client:
            person = client.person_info(PersonInfoRequest("02", "340104199001010011"))
            assert person.insuplc_admdvs == "340100"
    assert served.returncode == 0
    out = served.out
    assert "3401**********0011" in out and "340104199001010011" not in out  # redacted


def test_serve_enrols_a_simulated_card_with_a_filing(tmp_path: Path) -> None:
    from sscard.services.insurance import FilingCheckRequest, FilingStatus
    from sscard.simulators.profile import new_card

    card = new_card("anhui", seed=11)
    card.save(tmp_path / "card.json")
    ssn = card.ssse.ef06.ssn
    args = [
        "--enrol", str(tmp_path / "card.json"), "--filing-to", "310000",
        "--db", str(tmp_path / "l.db"),
    ]  # fmt: skip
    with insurance_platform_process(args, tmp_path / "url.txt") as served:
        config = ClientConfig(served.url, "H31010400001", "demo", "310000")
        with InsuranceClient(config, tmp_path / "o.db") as client:
            person = client.person_info(PersonInfoRequest("02", ssn))
            assert person.insuplc_admdvs.startswith("34")
            status = client.filing_check(
                FilingCheckRequest(
                    person.psn_no, person.insuplc_admdvs, "310000", "11", time.strftime("%Y-%m-%d")
                )
            )
            assert status is FilingStatus.FILED
    assert served.returncode == 0
    out = served.out
    assert ssn not in out and f"{ssn[:4]}**********{ssn[-4:]}" in out
