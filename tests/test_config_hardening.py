"""Configuration that must be a decision, not a default.

- ``sim insurance serve --host 0.0.0.0`` is refused without ``--allow-remote``, and
  warned about with it; the admin token is printed at start and works.
- TEST keys with a card in a real reader (``--psam-sim``, ``transit load -r``) need
  ``--test-keys`` and print a warning on every run.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from example_configs import bus_config
from helpers import insurance_platform_process

from sscard.cli import main
from sscard.cli.insurance_sim import is_loopback
from sscard.errors import ExitStatus
from sscard.simulators.card import build_card
from sscard.simulators.profile import new_card


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("example.com", False), ("localhost.example.com", False), ("", False)],
)  # fmt: skip
def test_loopback_is_decided_from_the_address_not_a_name(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_insurance_serve_refuses_a_non_loopback_host(tmp_path: Path, host: str) -> None:
    result = CliRunner().invoke(
        main, ["sim", "insurance", "serve", "--host", host, "--db", str(tmp_path / "l.db")]
    )
    assert result.exit_code == ExitStatus.USAGE, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "--allow-remote" in lines[0] and " / " in lines[0]
    assert not (tmp_path / "l.db").exists()  # refused before anything was opened


def test_insurance_serve_with_allow_remote_warns_and_prints_the_admin_token(
    tmp_path: Path,
) -> None:
    args = ["--host", "0.0.0.0", "--allow-remote", "--db", str(tmp_path / "l.db"), "--json"]
    with insurance_platform_process(args, tmp_path / "url.txt") as served:
        port = served.url.split(":")[2].split("/")[0]
        spec = json.dumps({"infno": "2207", "kind": "drop"}).encode()
        url = f"http://127.0.0.1:{port}/admin/faults"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=spec), timeout=5)
        assert refused.value.code == 403
        refused.value.close()
    assert served.returncode == 0, served.err
    err = served.err
    assert "warning:" in err and "0.0.0.0" in err and "警告" in err
    token = json.loads(served.out)["admin_token"]
    assert len(token) >= 20


# --------------------------------------------------------------------------- TEST keys


@pytest.mark.parametrize(
    "args",
    [
        ["transit", "tap", "--config", "{bus}", "--psam-sim", "{w}/psam.json", "-r", "Reader 0"],
        ["validator", "run", "--config", "{bus}", "--psam-sim", "{w}/psam.json", "-r", "R"],
        ["transit", "load", "10", "-r", "Reader 0"],
    ],
    ids=["tap", "validator run", "load"],
)
def test_test_keys_with_a_real_reader_need_the_flag(tmp_path: Path, args: list[str]) -> None:
    argv = [
        a.replace("{bus}", str(bus_config(tmp_path))).replace("{w}", str(tmp_path)) for a in args
    ]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "--test-keys" in result.stderr and "测试密钥" in result.stderr
    assert not (tmp_path / "psam.json").exists()  # no TEST-key PSAM was made
    if argv[0] == "validator":
        return  # with the flag it would wait for cards on PC/SC until a signal
    # With the flag: the warning, then the (absent) reader is the problem, not the keys.
    result = CliRunner().invoke(main, [*argv, "--test-keys"])
    assert "warning:" in result.stderr and "TEST keys" in result.stderr
    assert result.exit_code in (ExitStatus.READER, ExitStatus.REFUSED), result.output


def test_the_simulated_card_needs_no_flag(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    new_card("zhejiang", seed=4).save(card)
    for argv in (["transit", "load", "10", "--sim", str(card)],
                 ["transit", "tap", "--config", str(bus_config(tmp_path)), "--psam-sim",
                  str(tmp_path / "psam.json"), "--sim", str(card)]):  # fmt: skip
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 0, result.output
        assert "warning" not in result.stderr


@pytest.mark.pcsc
def test_load_on_a_real_reader_with_test_keys_warns_every_run(vreader) -> None:  # type: ignore[no-untyped-def]
    vreader.insert(build_card(new_card("anhui", seed=8, balance=1_000)))
    refused = CliRunner().invoke(main, ["transit", "load", "5", "-r", vreader.name])
    assert refused.exit_code == ExitStatus.USAGE
    for _ in range(2):
        result = CliRunner().invoke(
            main, ["transit", "load", "5", "-r", vreader.name, "--test-keys"]
        )
        assert result.exit_code == 0, result.output
        assert result.stderr.count("warning:") == 1 and "loaded" in result.stdout
