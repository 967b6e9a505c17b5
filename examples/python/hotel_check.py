"""A hotel check-in with the social security card (Art. 9: the card is an identity credential).

Run: ``python examples/python/hotel_check.py [WORKDIR]``. Reads the card (SSSE
EF05/EF06), proves it genuine by internal authentication (here with the TEST key
set through a software key provider; at a real desk a PSAM or the issuer's HSM,
``sscard.applets.keyprovider``), checks validity and the blacklist, and writes a
masked audit row (Art. 18). The desk sees the full name and SSN only because the
``hotel`` scenario releases them for the police registration; everything printed
here is redacted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from sscard.applets.identity import IdentityCheck, IdentityPolicy
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport


def main(workdir: Path) -> int:
    keys = SoftwareKeyProvider(default_key_set())  # TEST keys: the simulator's only
    policy = IdentityPolicy()  # the built-in hotel/gate/counter scenarios
    outcomes = []
    with policy.open_audit(workdir / "audit.db") as audit:
        checker = IdentityCheck(policy, audit=audit, terminal_id="hotel-desk-1")
        for state in ("ok", "expired"):
            card = build_card(new_card("zhejiang", seed=9, state=state))
            with Connection(SimulatorTransport(card)) as conn, conn.transaction():
                result = checker.check_card("hotel", SsseReader(conn, keys))
            print(result.text(redact=True))
            outcomes.append(result.accepted)
    return 0 if outcomes == [True, False] else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)))
