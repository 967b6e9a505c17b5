"""A bus validator built on the sscard SDK: PSAM, flat fare, journal, one tap per card.

Run: ``python examples/python/bus_validator.py [WORKDIR]``. With no hardware it
uses simulated cards and a simulated PSAM (TEST keys). On a real validator,
replace ``SimulatorTransport(...)`` with ``PcscTransport("reader name")`` from
``sscard.terminals.pcsc`` (or your own Transport, see own_reader.py) for both
the card and the SAM slot; nothing else changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sscard.applets.transit import Psam, TapAccepted, Validator, ValidatorConfig
from sscard.services.journal import Journal
from sscard.simulators.card import build_card
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection, SimulatorTransport

TERMINAL_ID = "000000000071"  # the PSAM's terminal number: one per validator


def show(result: object) -> None:
    """The display and buzzer hook: here a print; on a validator, your hardware."""
    if isinstance(result, TapAccepted):
        print(f"OK  fare {result.fare / 100:.2f}  balance {result.balance / 100:.2f}")
    else:
        print(f"NO  {result}")


def main(workdir: Path) -> int:
    psam_conn = Connection(SimulatorTransport(psam_card(new_psam(TERMINAL_ID))))
    psam = Psam(psam_conn.connect()).open()
    config = ValidatorConfig(
        terminal_id=TERMINAL_ID, mode="flat", fare=200, city_code="2900", line=71,
        industry=2, journal_path=workdir / "bus-71.db",
    )  # fmt: skip
    paid = 0
    with Validator(config, psam, journal=Journal(config.journal_path)) as validator:
        for province in ("shanghai", "jiangsu", "zhejiang", "anhui"):  # one card from each
            card = build_card(new_card(province, seed=71, balance=1_000))
            with Connection(SimulatorTransport(card)) as conn:
                result = validator.tap(conn)
            show(result)
            paid += result.fare if isinstance(result, TapAccepted) else 0
    psam_conn.close()
    print(f"taken {paid / 100:.2f} CNY; journal {config.journal_path}")
    return 0 if paid == 800 else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)))
