"""``sscard sim insurance serve`` as a real process on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sscard.services.insurance import ClientConfig, InsuranceClient, PersonInfoRequest

# Ctrl-C must reach the child even when pytest itself runs with SIGINT ignored (a
# background job without job control): an ignored signal is inherited across exec.
SIGINT_DEFAULT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


def test_serve_with_demo_data_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    url_file = tmp_path / "url.txt"
    code = (
        SIGINT_DEFAULT + "from sscard.cli.insurance_sim import command; "
        f"command(['--demo-data', '--db', {str(tmp_path / 'l.db')!r}, '--url-file', {str(url_file)!r}])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        config = ClientConfig(url, "H31010400001", "demo", "310000", timeout=5)
        with InsuranceClient(config, tmp_path / "o.db") as client:
            person = client.person_info(PersonInfoRequest("02", "340104199001010011"))
            assert person.insuplc_admdvs == "340100"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "3401**********0011" in out and "340104199001010011" not in out  # redacted


def test_serve_enrols_a_simulated_card_with_a_filing(tmp_path: Path) -> None:
    from sscard.services.insurance import FilingCheckRequest, FilingStatus
    from sscard.simulators.profile import new_card

    card = new_card("anhui", seed=11)
    card.save(tmp_path / "card.json")
    ssn = card.ssse.ef06.ssn
    url_file = tmp_path / "url.txt"
    args = [
        "--enrol", str(tmp_path / "card.json"), "--filing-to", "310000",
        "--db", str(tmp_path / "l.db"), "--url-file", str(url_file),
    ]  # fmt: skip
    code = SIGINT_DEFAULT + f"from sscard.cli.insurance_sim import command; command({args!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config = ClientConfig(url_file.read_text().strip(), "H31010400001", "demo", "310000")
        with InsuranceClient(config, tmp_path / "o.db") as client:
            person = client.person_info(PersonInfoRequest("02", ssn))
            assert person.insuplc_admdvs.startswith("34")
            status = client.filing_check(
                FilingCheckRequest(
                    person.psn_no, person.insuplc_admdvs, "310000", "11", time.strftime("%Y-%m-%d")
                )
            )
            assert status is FilingStatus.FILED
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert ssn not in out and f"{ssn[:4]}**********{ssn[-4:]}" in out
