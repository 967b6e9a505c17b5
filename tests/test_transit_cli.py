"""``sscard transit balance|history|tap|load`` and ``sscard validator run`` on the simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from example_configs import bus_config

from sscard.cli.transit import transit_group, validator_group
from sscard.services.journal import Journal, TapState
from sscard.simulators.profile import new_card


def _setup(tmp_path: Path, balance: int = 5_000, repeat: int = 60) -> tuple[str, str, str]:
    card = tmp_path / "card.json"
    new_card("zhejiang", seed=11, balance=balance).save(card)
    bus = bus_config(tmp_path, repeat_tap_seconds=repeat)
    return str(card), str(tmp_path / "psam.json"), str(bus)


def test_tap_balance_history_and_load(tmp_path: Path) -> None:
    card, psam, config = _setup(tmp_path)
    runner = CliRunner()
    r = runner.invoke(transit_group, ["tap", "--config", config, "--psam-sim", psam, "--sim", card])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ACCEPTED single: fare 2.00, balance 48.00")
    assert "扣款2.00元" in r.output
    r = runner.invoke(transit_group, ["balance", "--sim", card, "--json"])
    data = json.loads(r.output)
    assert (data["balance_fen"], data["offline_counter"], data["online_counter"]) == (4_800, 1, 1)
    assert "…" in data["asn"]  # redacted by default
    r = runner.invoke(transit_group, ["load", "20.50", "--sim", card])
    assert r.exit_code == 0, r.output
    assert "balance / 余额 68.50" in r.output
    r = runner.invoke(transit_group, ["history", "--sim", card, "--json"])
    hist = json.loads(r.output)
    assert [t["type"] for t in hist["transactions"][:3]] == ["02", "09", "02"]
    assert hist["trips"][0]["type"] == "06" and hist["trips"][0]["amount_fen"] == 200
    r = runner.invoke(transit_group, ["load", "abc", "--sim", card])
    assert r.exit_code == 2 and "amount in CNY" in r.output


def test_refused_tap_exits_1_with_a_bilingual_reason(tmp_path: Path) -> None:
    card, psam, config = _setup(tmp_path, balance=100)
    r = CliRunner().invoke(
        transit_group, ["tap", "--config", config, "--psam-sim", psam, "--sim", card, "--json"]
    )
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert (data["accepted"], data["code"], data["message_zh"]) == (
        False, "INSUFFICIENT_BALANCE", "余额不足",
    )  # fmt: skip


def test_tap_needs_a_psam_and_a_good_config(tmp_path: Path) -> None:
    card, _, config = _setup(tmp_path)
    r = CliRunner().invoke(transit_group, ["tap", "--config", config, "--sim", card])
    assert r.exit_code == 1 and "--psam-sim" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[validator]\nterminal_id = "X"\npsam_terminal_id = "290000000001"\ncity_code = "2900"\n'
        'mode = "metro"\ngate = "exit"\n'
    )
    r = CliRunner().invoke(
        transit_group, ["tap", "--config", str(bad), "--psam-sim", str(tmp_path / "p.json"),
                        "--sim", card],
    )  # fmt: skip
    assert r.exit_code == 2 and "fare_table" in r.output and "配置" in r.output


def test_validator_run_sim_loop(tmp_path: Path) -> None:
    card, psam, config = _setup(tmp_path, repeat=0)  # repeat-tap window off
    r = CliRunner().invoke(
        validator_group, ["run", "--config", config, "--psam-sim", psam, "--sim", card,
                          "--taps", "3"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.output.count("ACCEPTED") == 3 and "balance 44.00" in r.output


def test_repeat_taps_on_a_bus_charge_once(tmp_path: Path) -> None:
    """§5.8 (sscard profile): the same card again within 60 s is "already paid"."""
    card, psam, config = _setup(tmp_path)
    r = CliRunner().invoke(
        validator_group, ["run", "--config", config, "--psam-sim", psam, "--sim", card,
                          "--taps", "3"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("ACCEPTED single: fare 2.00, balance 48.00")
    assert lines[1:] == ["REFUSED ALREADY_PAID: already paid / 请勿重复刷卡"] * 2
    r = CliRunner().invoke(
        transit_group, ["tap", "--config", config, "--psam-sim", psam, "--sim", card, "--json"]
    )
    assert r.exit_code == 1 and json.loads(r.output)["code"] == "ALREADY_PAID"
    r = CliRunner().invoke(transit_group, ["balance", "--sim", card, "--json"])
    assert json.loads(r.output)["balance_fen"] == 4_800


def test_validator_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    card, psam, config = _setup(tmp_path, balance=100_000, repeat=0)
    code = "from sscard.cli.transit import validator_group; validator_group()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--config", config, "--psam-sim", psam,
         "--sim", card, "--taps", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("ACCEPTED")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    with Journal(tmp_path / "bus.db") as journal:
        stats = journal.stats()
    assert stats.by_state[TapState.PENDING] == stats.by_state[TapState.UNKNOWN] == 0
    assert stats.by_state[TapState.COMPLETED] == out.count("ACCEPTED") + 1
