"""In-process APDUs per second of the simulated card OS against the trivial EchoCard.

The card OS has no answer memo: every APDU is parsed (a parse memo keeps immutable
Command objects), dispatched through the DF path and answered by its handler from the
current state. So the READ RECORD row is the full dispatch path of a repeated READ
RECORD (EF05 record 7, as every terminal reads it); the alternating row interleaves a
SELECT, the other half of a terminal's reads. Both are informative: the target of 1/3
of the echo card's rate, which only a memo reached, was withdrawn.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from benchmarks.timing import rate, row
from sscard.cards.ids import SSSE_DDF_NAME
from sscard.simulators.base import EchoCard
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card

READ = bytes.fromhex("00B2072C00")  # EF05 record 7 by SFI (reference §C1.3)
SELECT_EF05 = bytes.fromhex("00A4020C02EF05")


def run() -> list[dict[str, Any]]:
    card = build_card(new_card("zhejiang", generation=2, seed=1, today=date(2025, 1, 1)),
                      default_key_set())  # fmt: skip
    card.execute(bytes.fromhex("00A404000F") + SSSE_DDF_NAME)
    assert card.execute(READ)[-2:] == b"\x90\x00"
    echo = EchoCard()
    execute, echo_execute = card.execute, echo.execute

    def sim_read() -> None:
        execute(READ)

    def echo_read() -> None:
        echo_execute(READ)

    def sim_alternating() -> None:
        execute(SELECT_EF05)
        execute(READ)

    echo_rate = rate(echo_read)
    sim_rate = rate(sim_read)
    full_rate = 2 * rate(sim_alternating)
    return [
        row("READ RECORD (simulated card OS, no answer memo)", "APDU/s", sim_rate, "EchoCard",
            echo_rate, target="informative"),
        row("SELECT+READ RECORD alternating", "APDU/s", full_rate, "EchoCard",
            echo_rate, target="informative"),
    ]  # fmt: skip
