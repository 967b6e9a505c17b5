"""The simulator steered from the command line, through the real pcscd:
``sscard sim set`` changes a card image, ``sscard sim serve --tear-on 8054`` serves it
with a tear, and the validator recovers the torn debit on the next tap."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from sscard.applets.transit import Psam, TapAccepted, TapRefused, Validator, ValidatorConfig
from sscard.cards.ids import Industry
from sscard.cli import main
from sscard.cli.serve import parse_tear
from sscard.errors import ConfigError
from sscard.services.journal import Journal, TapState
from sscard.simulators.faults import TearPoint
from sscard.simulators.pcscd import PrivatePcscd
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection, PcscTransport, SimulatorTransport
from sscard.terminals.pcsc import wait_for_card

TERMINAL = "290000000017"


@pytest.fixture
def served(tmp_path: Path, sscard_pcscd: PrivatePcscd) -> Iterator[tuple[str, Path]]:
    """A card image, changed with ``sim set``, served by ``sim serve --tear-on 8054``."""
    card = tmp_path / "card.json"
    new_card("zhejiang", seed=17, balance=500).save(card)
    result = CliRunner().invoke(main, ["sim", "set", str(card), "--balance", "3000"])
    assert result.exit_code == 0, result.output
    code = "from sscard.cli import main; main()"
    args = ["sim", "serve", str(card), "--port", str(sscard_pcscd.ports[0]), "--tear-on", "8054"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    reader = sscard_pcscd.reader_names[0]
    try:
        assert wait_for_card(reader, present=True, timeout=15), "sim serve did not start"
        yield reader, card
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reaps the process and closes its pipe
        wait_for_card(reader, present=False, timeout=10)


@pytest.mark.pcsc
def test_a_tear_injected_from_the_cli_is_recovered_on_the_next_tap(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    reader, card_file = served
    psam = Psam(Connection(SimulatorTransport(psam_card(new_psam(TERMINAL)))).connect()).open()
    config = ValidatorConfig(
        terminal_id="bus-17", psam_terminal_id=bytes.fromhex(TERMINAL), mode="flat", fare=200,
        city_code="3310", industry=int(Industry.BUS), line=17, repeat_tap_seconds=0,
        journal_path=tmp_path / "journal.db",
    )  # fmt: skip
    journal = Journal(config.journal_path)
    now = datetime(2026, 12, 2, 8, 30)
    with Validator(config, psam, journal=journal, clock=lambda: now) as validator:
        conn = Connection(PcscTransport(reader)).connect()
        torn = validator.tap(conn)
        assert isinstance(torn, TapRefused)
        assert wait_for_card(reader, present=True, timeout=10)  # vpcd reconnects the card
        conn.reconnect()
        again = validator.tap(conn)
        assert isinstance(again, TapAccepted) and again.recovered
        assert (again.fare, again.balance) == (200, 2_800)  # charged once, from sim set's 30.00
        conn.close()
        states = [journal.get(i).state for i in (1,)]
        assert states == [TapState.COMPLETED]
    assert CardProfile.load(card_file).purse.balance == 2_800  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spec", "point", "once"),
    [("54", TearPoint.AFTER_COMMIT, True), ("8054:before", TearPoint.BEFORE_COMMIT, True),
     ("805a:after:every", TearPoint.AFTER_COMMIT, False)],
)  # fmt: skip
def test_tear_flags_parse(spec: str, point: TearPoint, once: bool) -> None:
    tear = parse_tear(spec)
    assert (tear.point, tear.once) == (point, once)
    apdu = bytes.fromhex(spec[:4] if len(spec.split(":")[0]) == 4 else "80" + spec[:2]) + b"\0\0"
    assert tear.when is not None and tear.when(apdu)


@pytest.mark.parametrize("spec", ["5", "zz", "8054:sometimes", "123456"])
def test_a_bad_tear_flag_is_a_usage_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_tear(spec)
