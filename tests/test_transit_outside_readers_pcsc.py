"""A vendor's bench, through a real pcscd: card and PSAM served by ``sscard sim serve`` on
two vpcd slots, taps and a load by the ``sscard`` CLI, then the card read by a reader
written from Metrodroid's public logic (tests/metrodroid_reader.py, raw pyscard).

The acceptance "a reader written from Metrodroid's public
logic ... reads, through pcscd, a card tapped by sscard: balance, amounts, types,
terminal and times agree with ``sscard transit history --json``, including an
overdrawn card and a load" (reference §P5.8).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from metrodroid_reader import MetrodroidTUnionReader, TUnionCard, pyscard_transceive

from sscard import clock
from sscard.simulators.pcscd import PrivatePcscd
from sscard.simulators.profile import new_card
from sscard.simulators.psam import PsamImage
from sscard.terminals.pcsc import wait_for_card

pytestmark = pytest.mark.pcsc

TERMINAL = "290071000001"
CONFIG = f"""\
[validator]
terminal_id = "SH-BUS-71"
psam_terminal_id = "{TERMINAL}"
mode = "flat"
city_code = "2900"
line = 71
fare = 500

[journal]
path = "bus.db"
"""
CLI = "from sscard.cli import main; main()"


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``[journal] path`` lands in the state directory: here, ``tmp_path``."""
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path))


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@contextmanager
def _served(path: Path, port: int, reader: str) -> Iterator[None]:
    """``sscard sim serve PATH --port PORT`` in its own process, until the test ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "sim", "serve", str(path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving"), (line, proc.stderr.read() if proc.stderr else "")
        assert wait_for_card(reader, present=True, timeout=10), f"pcscd did not see {path.name}"
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        wait_for_card(reader, present=False, timeout=5)


def _metrodroid(reader: str) -> TUnionCard:
    transceive, close = pyscard_transceive(reader)
    try:
        return MetrodroidTUnionReader(transceive).read()
    finally:
        close()


def _agree(card: TUnionCard, history: dict[str, Any], asn: str) -> None:
    """Metrodroid's view against ``sscard transit history --json``."""
    assert card.serial == asn[1:]
    assert card.balance == history["balance_fen"]
    ours = [
        (-t["amount_fen"] if t["type"] == "02" else t["amount_fen"], int(t["type"], 16),
         int(t["terminal"], 16), clock.parse_instant(t["time"]))
        for t in history["transactions"]
    ]  # fmt: skip
    theirs = [(t.fare, t.txn_type, t.station, t.time) for t in card.trips]
    assert theirs == ours


def test_cli_tap_through_pcscd_and_metrodroid_reads_the_card(
    tmp_path: Path, pcscd: PrivatePcscd
) -> None:
    card_reader, sam_reader = pcscd.reader_names
    card = tmp_path / "card.json"
    profile = new_card("jiangsu", seed=8, balance=100)
    assert profile.purse is not None
    profile.purse = dataclasses.replace(profile.purse, overdraft_limit=1_000)
    profile.save(card)
    asn = profile.purse.ef0015.asn
    psam = tmp_path / "psam.json"
    _cli("sim", "psam", "new", "--terminal-id", TERMINAL, "-o", str(psam))
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG)

    with _served(card, pcscd.ports[0], card_reader), _served(psam, pcscd.ports[1], sam_reader):
        tap = _cli("transit", "tap", "--config", str(config), "-r", card_reader,
                   "--psam-reader", sam_reader, "--json")  # fmt: skip
        result = json.loads(tap.stdout)
        assert (result["accepted"], result["fare_fen"], result["balance_fen"]) == (True, 500, -400)

        overdrawn = _metrodroid(card_reader)
        history = json.loads(_cli("transit", "history", "-r", card_reader, "--json").stdout)
        assert overdrawn.balance == -400  # -(P1 01), not the -10.00 limit
        _agree(overdrawn, history, asn)
        assert overdrawn.trips[0].station == int(TERMINAL, 16)
        assert overdrawn.trips[0].time.utcoffset() is not None

        _cli("transit", "load", "10", "-r", card_reader, "--test-keys")  # simulated load host
        loaded = _metrodroid(card_reader)
        history = json.loads(_cli("transit", "history", "-r", card_reader, "--json").stdout)
        assert loaded.balance == 600 and loaded.trips[0].fare == -1_000  # a top-up
        _agree(loaded, history, asn)

        again = _cli("transit", "tap", "--config", str(config), "-r", card_reader,
                     "--psam-reader", sam_reader, "--json", check=False)  # fmt: skip
        assert again.returncode == 1 and json.loads(again.stdout)["code"] == "ALREADY_PAID"

    assert PsamImage.load(psam).next_seq == 2  # the served PSAM kept its sequence number
    assert (
        json.loads(_cli("transit", "balance", "--sim", str(card), "--json").stdout)["balance_fen"]
        == 600
    )  # the served card saved its image
