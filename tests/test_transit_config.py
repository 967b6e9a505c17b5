"""Validator configuration typos never become free rides.

Unknown keys and sections, missing or mistyped values, a flat validator without a
fare, a city code outside the T-Union table (reference §P5.8): each is one
bilingual error naming the file, the key and its TOML line; the CLI exits 2 and
writes nothing (no journal, no PSAM image, the card untouched). ``ValidatorConfig``
built in code checks its field types at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sscard.applets.transit import FarePolicy, ValidatorConfig
from sscard.applets.transit.errors import TransitConfigError
from sscard.cards.ids import Industry
from sscard.cli.transit import transit_group
from sscard.errors import ExitStatus
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam

BASE = """\
# a flat-fare bus
[validator]
terminal_id = "BUS-71"
psam_terminal_id = "290071000001"
mode = "flat"
city_code = "2900"
line = 71
fare = 200

[journal]
path = "j.db"
"""


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``[journal] path`` lands in the state directory: here, ``tmp_path``."""
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> TransitConfigError:
    with pytest.raises(TransitConfigError) as info:
        ValidatorConfig.load(_write(tmp_path, text))
    return info.value


def test_the_base_config_loads(tmp_path: Path) -> None:
    cfg = ValidatorConfig.load(_write(tmp_path, BASE))
    assert (cfg.fare, cfg.city_code, cfg.repeat_tap_seconds) == (200, "2900", 60)
    assert cfg.psam_terminal_id == bytes.fromhex("290071000001")
    assert cfg.institution_id == bytes.fromhex("01012900FFFFFFFF")  # city in bytes 2-3


Edit = Callable[[str], str]

CASES: list[tuple[str, Edit, str, int]] = [
    # (what, edit of BASE, text the English message must hold, TOML line)
    ("typo of fare", lambda t: t.replace("fare = 200", "fair = 200"),
     "unknown key 'validator.fair' (did you mean 'fare'?)", 8),
    ("typo of a section", lambda t: t.replace("[journal]", "[jounral]"),
     "unknown section 'jounral' (did you mean 'journal'?)", 10),
    ("typo in [checks]", lambda t: t + '[checks]\nalgorithm = ["sm4"]\n',
     "unknown key 'checks.algorithm' (did you mean 'algorithms'?)", 13),
    ("flat fare missing", lambda t: t.replace("fare = 200\n", ""),
     "validator.fare: a flat validator needs a fare", 2),
    ("fare as a string", lambda t: t.replace("fare = 200", 'fare = "200"'),
     "validator.fare: expected int, got str", 8),
    ("province-level city code", lambda t: t.replace('"2900"', '"2000"'),
     "'2000' is not a T-Union city code", 6),
    ("institution of another city",
     lambda t: t.replace("line = 71", 'institution_id = "01012000FFFFFFFF"\nline = 71'),
     "bytes 2-3 must be the city code 2900", 7),
    ("PSAM terminal missing", lambda t: t.replace('psam_terminal_id = "290071000001"\n', ""),
     "validator.psam_terminal_id: required", 2),
    ("PSAM terminal too short", lambda t: t.replace("290071000001", "2900710001"),
     "validator.psam_terminal_id: 6 bytes as hex", 4),
    ("negative repeat window", lambda t: t.replace("fare = 200", "fare = 200\nrepeat_tap_seconds = -1"),
     "validator.repeat_tap_seconds: must be 0 (off) or more", 9),
    ("unknown discount category", lambda t: t + "[discounts]\npirate = 5\n",
     "discounts.pirate: category is one of", 13),
]  # fmt: skip


@pytest.mark.parametrize(("what", "edit", "message", "line"), CASES, ids=[c[0] for c in CASES])
def test_each_mistake_names_file_key_and_line(
    tmp_path: Path, what: str, edit: Edit, message: str, line: int
) -> None:
    err = _error(tmp_path, edit(BASE))
    assert err.message_en.startswith(f"bus.toml line {line}: "), err.message_en
    assert message in err.message_en, err.message_en
    assert err.message_zh.startswith(f"bus.toml第{line}行："), err.message_zh
    assert err.exit_status is ExitStatus.USAGE and "\n" not in err.bilingual()


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path, "[validator\n")
    assert "bus.toml is not valid TOML" in err.message_en and "line 1" in err.message_en
    with pytest.raises(TransitConfigError, match="cannot read"):
        ValidatorConfig.load(tmp_path / "nope.toml")


def test_zero_fare_is_allowed_only_when_written(tmp_path: Path) -> None:
    cfg = ValidatorConfig.load(_write(tmp_path, BASE.replace("fare = 200", "fare = 0")))
    assert cfg.fare == 0
    with pytest.raises(TransitConfigError, match="needs a fare"):
        ValidatorConfig(terminal_id="T", city_code="2900")  # flat, no fare


def _kw(**over: Any) -> dict[str, Any]:
    return {"terminal_id": "T", "city_code": "2900", "fare": 200, **over}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("institution_id", "01012900FFFFFFFF", "validator.institution_id: expected 8 bytes, got str"),
        ("industry", "bus", "validator.industry: expected an Industry code"),
        ("fare", "200", "validator.fare: expected an integer number of fen, got str"),
        ("fare", True, "validator.fare: expected an integer number of fen, got bool"),
        ("line", 7.1, "validator.line: expected an integer, got float"),
        ("psam_terminal_id", "290071000001", "validator.psam_terminal_id: expected 6 bytes"),
        ("city_code", 2900, "validator.city_code: expected a string"),
        ("journal_path", "v.db", "journal.journal_path: expected a Path, got str"),
        ("algorithms", {0}, "checks.algorithms: expected a frozenset"),
        ("policy", {}, "transfer.policy: expected a FarePolicy"),
        ("industry", 0x0D, "validator.industry: unknown industry code"),
        ("city_code", "3100", "'3100' is not a T-Union city code"),
    ],
)  # fmt: skip
def test_wrong_types_fail_at_construction(field: str, value: Any, message: str) -> None:
    with pytest.raises(TransitConfigError) as info:
        ValidatorConfig(**_kw(**{field: value}))
    assert message in info.value.message_en, info.value.message_en
    assert "配置项" in info.value.message_zh


def test_good_construction_in_code() -> None:
    cfg = ValidatorConfig(
        **_kw(industry=Industry.BUS, institution_id=bytes.fromhex("02022900FFFFFFFF"),
              policy=FarePolicy(), psam_terminal_id=bytes(6))
    )  # fmt: skip
    assert cfg.institution_id.hex().upper() == "02022900FFFFFFFF"


# --------------------------------------------------------------------------- CLI


def _files(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("fare = 200", "fair = 200"),
        lambda t: t.replace("fare = 200\n", ""),
        lambda t: t.replace('"2900"', '"2000"'),
    ],
    ids=["typo", "no-fare", "old-city-code"],
)
def test_cli_bad_config_one_line_exit_2_nothing_written(tmp_path: Path, edit: Edit) -> None:
    card = tmp_path / "card.json"
    new_card("shanghai", seed=4, balance=1_000).save(card)
    before = card.read_bytes()
    config = _write(tmp_path, edit(BASE))
    existing = _files(tmp_path)
    r = CliRunner().invoke(
        transit_group,
        ["tap", "--config", str(config), "--psam-sim", str(tmp_path / "psam.json"),
         "--sim", str(card)],
    )  # fmt: skip
    assert r.exit_code == ExitStatus.USAGE, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "bus.toml line" in lines[0] and " / " in lines[0], r.output
    assert "bus.toml第" in lines[0]
    assert _files(tmp_path) == existing  # no journal, no psam.json
    assert card.read_bytes() == before


def test_cli_refuses_a_psam_of_another_validator(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    new_card("shanghai", seed=4, balance=1_000).save(card)
    before = card.read_bytes()
    psam = tmp_path / "psam.json"
    new_psam(bytes.fromhex("290071000002"), keys=default_key_set()).save(psam)
    config = _write(tmp_path, BASE)
    r = CliRunner().invoke(
        transit_group,
        ["tap", "--config", str(config), "--psam-sim", str(psam), "--sim", str(card)],
    )
    assert r.exit_code == ExitStatus.USAGE, r.output
    assert "290071000001" in r.output and "290071000002" in r.output
    assert "one PSAM per validator" in r.output and "每台验票机一张PSAM" in r.output
    assert not (tmp_path / "j.db").exists() and card.read_bytes() == before
