"""``sscard sim new`` makes the cards a terminal must refuse or treat specially:
a counterfeit, a card from outside the delta, a local-only purse, a student card."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sscard.cards.ids import CardCategory
from sscard.cli import main
from sscard.simulators.profile import CardProfile


def sscard(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_a_counterfeit_fails_the_genuineness_check(tmp_path: Path) -> None:
    card = str(tmp_path / "fake.json")
    assert sscard("sim", "new", "--province", "jiangsu", "--counterfeit", "-o", card)[0] == 0
    assert CardProfile.load(card).counterfeit
    code, out = sscard("--sim", card, "identity", "check", "--scenario", "hotel", "--no-audit")
    assert code == 1 and "(counterfeit)" in out


def test_a_card_from_outside_the_delta(tmp_path: Path) -> None:
    card = str(tmp_path / "beijing.json")
    code, out = sscard("sim", "new", "--province", "other", "--seed", "2", "-o", card, "--json")
    assert code == 0 and json.loads(out)["region"]["code"] == "110000"
    code, out = sscard("--sim", card, "identity", "check", "--scenario", "gate", "--no-audit")
    assert code == 1 and "untrusted_region" in out
    code, out = sscard("--sim", card, "transit", "balance")
    assert code == 0 and "北京市 Beijing" in out  # T-Union city 1000
    code, out = sscard("sim", "new", "--province", "other", "--region", "330100", "-o", card)
    assert code == 2 and "--province zhejiang" in out


def test_a_local_student_card(tmp_path: Path) -> None:
    card = str(tmp_path / "student.json")
    code, out = sscard("sim", "new", "--province", "anhui", "--category", "student",
                       "--local-only", "-o", card, "--json")  # fmt: skip
    assert code == 0
    shown = json.loads(out)["purse"]
    assert (shown["category"], shown["interoperable"]) == ("student", False)
    purse = CardProfile.load(card).purse
    assert purse is not None and purse.ef0017.category == CardCategory.STUDENT
    assert not purse.ef0017.interoperable
