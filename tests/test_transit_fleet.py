"""A fleet of validators, each with its own PSAM; an overdrawn card.

reference §P5.8: the 6-B terminal number in 8070, EF 0018 and EF 001E is the
PSAM's (EF 16), so clearing tells validators apart only with one PSAM per validator;
GET BALANCE P1 01 on an overdrawn card is the amount overdrawn (Metrodroid
``TUnionTransitData``: ``if b0 > 0 b0 else -P1_01``; CardBal), on both sides.
Everything through the CLI where a vendor would use it: ``sscard sim psam new``,
``sscard transit tap``, ``sscard transit history``/``balance``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from metrodroid_reader import MetrodroidTUnionReader
from test_transit_support import TID, Rig, bus

from sscard.applets.transit import Purse, TapAccepted, Validator, ValidatorConfig, load
from sscard.applets.transit.errors import TransitConfigError
from sscard.cli.sim import command as sim_command
from sscard.cli.transit import transit_group
from sscard.errors import ExitStatus
from sscard.services.journal import Journal, TapState
from sscard.simulators.load_host import LoadHost
from sscard.simulators.profile import CardProfile, new_card

FLEET = {"BUS-71": "290071000001", "BUS-72": "290072000001"}
CONFIG = """\
[validator]
terminal_id = "{name}"
psam_terminal_id = "{tid}"
mode = "flat"
city_code = "2900"
line = {line}
fare = {fare}

[journal]
path = "{name}.db"
"""


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``[journal] path`` lands in the state directory: here, ``tmp_path``."""
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path))


def test_two_validators_two_psams_each_record_carries_its_terminal(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    new_card("anhui", seed=9, balance=2_000).save(card)
    for n, (name, tid) in enumerate(FLEET.items()):
        r = CliRunner().invoke(
            sim_command, ["psam", "new", "--terminal-id", tid, "-o", str(tmp_path / f"{name}.json")]
        )
        assert r.exit_code == 0, r.output
        (tmp_path / f"{name}.toml").write_text(
            CONFIG.format(name=name, tid=tid, line=71 + n, fare=200 + 100 * n)
        )
    for name in FLEET:
        r = CliRunner().invoke(
            transit_group,
            ["tap", "--config", str(tmp_path / f"{name}.toml"),
             "--psam-sim", str(tmp_path / f"{name}.json"), "--sim", str(card), "--json"],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(transit_group, ["history", "--sim", str(card), "--json"])
    hist = json.loads(r.output)
    assert [(t["terminal"], t["amount_fen"]) for t in hist["transactions"][:2]] == [
        ("290072000001", 300),
        ("290071000001", 200),
    ]
    assert [t["terminal"] for t in hist["trips"]] == ["0000290072000001", "0000290071000001"]
    text = CliRunner().invoke(transit_group, ["history", "--sim", str(card)]).output
    assert "terminal 290072000001" in text and "terminal 290071000001" in text
    for name, tid in FLEET.items():
        with Journal(tmp_path / f"{name}.db") as journal:
            [row] = [journal.get(1)]
            assert journal.stats().by_state[TapState.COMPLETED] == 1
        assert (row.terminal_id, row.psam_terminal_id.hex().upper()) == (name, tid)
    shown = CliRunner().invoke(sim_command, ["psam", "show", str(tmp_path / "BUS-71.json")])
    assert "PSAM terminal 290071000001" in shown.output and "next seq 2" in shown.output


def test_psam_new_checks_its_input_and_never_overwrites(tmp_path: Path) -> None:
    out = str(tmp_path / "p.json")
    r = CliRunner().invoke(sim_command, ["psam", "new", "--terminal-id", "2900", "-o", out])
    assert r.exit_code == ExitStatus.USAGE and "12 hex digits" in r.output
    assert CliRunner().invoke(sim_command, ["psam", "new", "--terminal-id", "290000000001",
                                            "-o", out]).exit_code == 0  # fmt: skip
    r = CliRunner().invoke(sim_command, ["psam", "new", "--terminal-id", "290000000002", "-o", out])
    assert r.exit_code == ExitStatus.USAGE and "exists" in r.output


def test_a_validator_refuses_a_psam_of_another_terminal(tmp_path: Path) -> None:
    rig = Rig(tmp_path)  # PSAM terminal 310000000042
    cfg = ValidatorConfig(terminal_id="T", city_code="2900", fare=200,
                          psam_terminal_id=bytes.fromhex("290000000001"),
                          journal_path=tmp_path / "v.db")  # fmt: skip
    with pytest.raises(TransitConfigError, match="one PSAM per validator"):
        Validator(cfg, rig.psam)
    assert not (tmp_path / "v.db").exists()
    Validator(dataclasses.replace(cfg, psam_terminal_id=TID), rig.psam).close()


# --------------------------------------------------------------------------- overdraft


def _overdraft_card(balance: int, limit: int) -> CardProfile:
    profile = new_card("shanghai", seed=5, balance=balance)
    assert profile.purse is not None
    profile.purse = dataclasses.replace(profile.purse, overdraft_limit=limit)
    return profile


def test_an_overdrawn_card_shows_minus_the_amount_overdrawn(tmp_path: Path) -> None:
    """Balance 1.00, limit 10.00, a 5.00 fare: -4.00 for every reader (was -10.00)."""
    rig = Rig(tmp_path)
    card, conn = rig.card(_overdraft_card(100, 1_000))
    r = rig.validator(bus(fare=500)).tap(conn)
    assert isinstance(r, TapAccepted) and r.balance == -400
    assert rig.rows()[0].balance_after == -400
    p = Purse(conn)
    p.select()
    b = p.balances()
    assert (b.balance, b.overdrawn, b.signed) == (0, 400, -400)
    assert p.counters().overdraft_limit == 1_000
    seen = MetrodroidTUnionReader(card.execute).read()  # public logic, raw APDUs
    assert seen.balance == -400 and (seen.trips[0].fare, seen.trips[0].txn_type) == (500, 9)
    # A load repays the overdraft first: 10.00 loaded -> 6.00, and the TAC verifies.
    result = load(conn, 1_000, LoadHost(rig.keys), terminal_id=TID, clock=rig.clock)
    assert (result.balance_before, result.balance, result.tac_verified) == (-400, 600, True)
    b = p.balances()
    assert (b.balance, b.overdrawn, b.signed) == (600, 0, 600)
    seen = MetrodroidTUnionReader(card.execute).read()
    assert seen.balance == 600 and seen.trips[0].fare == -1_000  # a top-up


def test_cli_balance_and_history_of_an_overdrawn_card(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    _overdraft_card(100, 1_000).save(path)
    psam = tmp_path / "psam.json"
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG.format(name="BUS-71", tid=FLEET["BUS-71"], line=71, fare=500))
    r = CliRunner().invoke(
        transit_group,
        ["tap", "--config", str(config), "--psam-sim", str(psam), "--sim", str(path)],
    )
    assert r.exit_code == 0 and "balance -4.00" in r.output, r.output
    data = json.loads(
        CliRunner().invoke(transit_group, ["balance", "--sim", str(path), "--json"]).output
    )
    assert (data["balance_fen"], data["overdrawn_fen"], data["overdraft_limit_fen"]) == (
        -400, 400, 1_000,
    )  # fmt: skip
    hist = json.loads(
        CliRunner().invoke(transit_group, ["history", "--sim", str(path), "--json"]).output
    )
    assert hist["balance_fen"] == -400 and hist["trips"][0]["balance_fen"] == 0
