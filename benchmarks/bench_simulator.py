"""In-process APDUs per second of the simulated card OS against the trivial EchoCard.

Issue 3 acceptance: READ RECORD on the simulator at least 1/3 of the echo card's
rate in the same run. A terminal repeats the same READ RECORDs (EF05/EF06 on every
card), and the card OS memoises answers of read-only commands while nothing else
runs; the "alternating" row defeats that memo (every READ RECORD follows a SELECT),
so it shows the full dispatch path, for information.
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

READ = bytes.fromhex("00B2072C00")  # EF05 record 7 by SFI (ssse-card.md §1.3)
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
        row("READ RECORD (simulated card OS)", "APDU/s", sim_rate, "EchoCard", echo_rate,
            target=">= 0.33"),
        row("SELECT+READ RECORD alternating (no memo)", "APDU/s", full_rate, "EchoCard",
            echo_rate, target="informative"),
    ]  # fmt: skip
