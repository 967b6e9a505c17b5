"""A hospital front desk settling an outpatient visit across provinces (Art. 13).

Run: ``python examples/python/front_desk.py [WORKDIR]``. Starts the simulated
national insurance platform (a real HTTP server on loopback), insures the holder
of a Jiangsu card with a filing for Shanghai, reads the card at a Shanghai clinic
and settles: 1101 -> 2201 -> 2203 -> 2204 -> 2206 -> 2207, with every request kept
in a durable outbox so a lost reply is resolved, never sent twice. At a real desk
the platform URL is the province's gateway and the card sits in a PC/SC reader.
"""

from __future__ import annotations

import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.medical import FrontDesk, PreSettlement, VisitPlan, read_identity
from sscard.services.insurance import ClientConfig, InsuranceClient
from sscard.services.insurance.filing import PlatformFilingCheck
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport

CLINIC, CLINIC_AREA = "H31010400001", "310000"  # a Shanghai clinic and its insurance area
VISIT = Path(__file__).resolve().parent.parent / "visit.csv"  # fee items as a HIS exports them


def confirm(pre: PreSettlement) -> bool:
    """The clerk's confirmation: show the split, then settle (here: always yes)."""
    print(pre.text())
    return True


def main(workdir: Path) -> int:
    profile = new_card("jiangsu", seed=13)
    with InsurancePlatform(workdir / "platform-ledger.db") as platform:
        platform.enrol_card(profile, filing_to=CLINIC_AREA)
        config = ClientConfig(platform.url, CLINIC, "Example clinic", CLINIC_AREA)
        with InsuranceClient(config, workdir / "outbox.db") as client:
            desk = FrontDesk(client, filing_check=PlatformFilingCheck(client))
            with Connection(SimulatorTransport(build_card(profile))) as conn:
                card = read_identity(conn, SoftwareKeyProvider(default_key_set()))
            receipt = desk.settle(card, VisitPlan.from_file(VISIT), confirm=confirm)
    print(receipt.text(redact=True))
    info = receipt.setlinfo
    return 0 if info.fund_pay_sumamt + info.psn_part_amt == info.medfee_sumamt > Decimal(0) else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)))
