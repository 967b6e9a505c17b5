"""Fare table, discounts and the validator TOML (pure code, no card)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.applets.transit import FarePolicy, FareTable, Station, ValidatorConfig, compute_fare
from sscard.applets.transit.errors import TransitConfigError
from sscard.applets.transit.fares import penalty_fare

TABLE = "# comment\nfrom\\to,2-5,16-17\n2-5,300,600\n16-17,600,300\n"


def test_fare_table_lookup_and_flagged_max() -> None:
    t = FareTable.parse(TABLE)
    a, b = Station.parse("2-5"), Station(16, 17)
    assert t.fare(a, b) == 600 and t.fare(b, b) == 300
    assert t.fare(a, Station(9, 9)) is None
    assert t.max_from(a) == 600 and t.max_from(Station(9, 9)) == t.max_fare == 600
    assert str(b) == "16-17"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("", "empty"),
        ("from\\to,2-5\n2-5,3,4\n", "row 2"),
        ("from\\to,2-5\n2-5,x\n", "whole fen"),
        ("from\\to,25\n2-5,3\n", "line-stop"),
        ("from\\to,2-999\n2-5,3\n", "stop 0-255"),
    ],
)
def test_bad_fare_tables(text: str, what: str) -> None:
    with pytest.raises(TransitConfigError) as info:
        FareTable.parse(text)
    assert what in info.value.message_en


def test_discounts_round_in_the_passengers_favour() -> None:
    policy = FarePolicy({2: 50, 3: 100}, 90, 100)
    assert compute_fare(301, 2, policy, transfer=False).amount == 150  # discount 150.5 -> 151
    assert compute_fare(300, 3, policy, transfer=True).amount == 0
    f = compute_fare(300, 1, policy, transfer=True)
    assert (f.amount, f.discount, f.transfer_discount) == (200, 100, 100)
    assert compute_fare(50, 1, policy, transfer=True).amount == 0  # never negative
    p = penalty_fare(600)
    assert (p.amount, p.penalty, p.discount) == (600, True, 0)


@given(
    base=st.integers(0, 10_000),
    pct=st.integers(0, 100),
    off=st.integers(0, 500),
    transfer=st.booleans(),
)
def test_fare_is_between_zero_and_base(base: int, pct: int, off: int, transfer: bool) -> None:
    f = compute_fare(base, 2, FarePolicy({2: pct}, 90, off), transfer=transfer)
    assert 0 <= f.amount <= base and f.amount + f.discount == base


def test_files_read_are_relative_to_the_config_and_the_journal_to_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal is never written beside the configuration (an installed
    example folder); a relative one goes to the state directory, none at all too."""
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "fares.csv").write_text(TABLE)
    (tmp_path / "v.toml").write_text(
        '[validator]\nterminal_id = "T"\npsam_terminal_id = "290000000001"\nmode = "metro"\n'
        'gate = "exit"\nline = 16\nstation = 17\nfare_table = "fares.csv"\ncity_code = "2900"\n'
        '[journal]\npath = "j.db"\n[discounts]\nstudent = 50\n'
    )
    cfg = ValidatorConfig.load(tmp_path / "v.toml")
    assert cfg.journal_path == tmp_path / "state" / "j.db" and cfg.fare_table is not None
    assert cfg.policy.discount_percent == {2: 50} and cfg.industry == 1  # metro
    text = (tmp_path / "v.toml").read_text().replace('[journal]\npath = "j.db"\n', "")
    (tmp_path / "v.toml").write_text(text)
    default = ValidatorConfig.load(tmp_path / "v.toml").journal_path
    assert default == tmp_path / "state" / "validator-290000000001.db"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(TransitConfigError):
        ValidatorConfig.load(tmp_path / "nope.toml")
