"""``sscard sim insurance serve`` as a real process on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sscard.services.insurance import ClientConfig, InsuranceClient, PersonInfoRequest


def test_serve_with_demo_data_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    url_file = tmp_path / "url.txt"
    code = (
        "from sscard.cli.insurance_sim import command; "
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
