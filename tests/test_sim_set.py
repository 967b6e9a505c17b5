"""``sscard sim set``: repair and steer a simulated card image from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sscard.cli import main
from sscard.simulators.profile import DEFAULT_PIN, CardProfile, new_card


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "card.json"
    new_card("anhui", seed=3).save(path)
    return path


def sscard(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_three_wrong_pins_then_unblock_then_the_test_pin_works(card: Path) -> None:
    for _ in range(3):
        sscard("--sim", str(card), "pin", "verify", "--pin-stdin", stdin="000000\n")
    code, out = sscard("--sim", str(card), "pin", "verify", "--pin-stdin", stdin=DEFAULT_PIN + "\n")
    assert code == 1 and "locked" in out
    assert CardProfile.load(card).ssse.pin.tries_left == 0
    code, out = sscard("sim", "set", str(card), "--unblock")
    assert code == 0 and "unblocked" in out
    code, out = sscard("--sim", str(card), "pin", "verify", "--pin-stdin", stdin=DEFAULT_PIN + "\n")
    assert code == 0 and "PIN correct" in out


def test_balance_state_tries_pin_and_expiry(card: Path) -> None:
    code, out = sscard("sim", "set", str(card), "--balance", "150", "--pin-tries", "1",
                       "--expiry", "2020-01-31", "--pin-stdin", "--json", stdin="4321\n")  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert shown["purse"]["balance_fen"] == 150 and shown["pin"]["tries_left"] == 1
    assert shown["expiry_date"] == "2020-01-31" and "4321" not in out  # PIN stays redacted
    profile = CardProfile.load(card)
    assert profile.purse is not None and profile.purse.balance == 150
    assert profile.ssse.pin.pin == "4321"
    code, out = sscard("--sim", str(card), "transit", "balance")
    assert code == 0 and "1.50" in out

    assert sscard("sim", "set", str(card), "--state", "blocked")[0] == 0
    blocked = CardProfile.load(card)
    assert blocked.ssse.state == "blocked" and blocked.purse is not None and blocked.purse.blocked
    code, out = sscard("--sim", str(card), "transit", "balance")
    assert code != 0
    assert sscard("sim", "set", str(card), "--state", "ok")[0] == 0
    assert sscard("--sim", str(card), "transit", "balance")[0] == 0


@pytest.mark.parametrize(
    "args",
    [["--balance", "100001"], ["--pin-stdin"], ["--pin-tries", "9"], []],
    ids=["over purse maximum", "PIN not digits", "more tries than the card has", "nothing"],
)
def test_a_bad_change_is_one_line_and_leaves_the_file_alone(card: Path, args: list[str]) -> None:
    before = card.read_bytes()
    result = CliRunner().invoke(main, ["sim", "set", str(card), *args], input="12ab\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and " / " in result.stderr
    assert card.read_bytes() == before
