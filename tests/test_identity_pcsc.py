"""Identity checks end to end through a private pcscd: card in slot 0, PSAM in slot 1.

The hotel scenario over real PC/SC (vpcd): internal authentication and the RKSSSE read
of EF06 are done by the PSAM (reference §C1.5, §C3.4); a counterfeit card is refused.
"""

from __future__ import annotations

import dataclasses

import pytest

from sscard.applets.identity import IdentityCheck
from sscard.applets.keyprovider import PsamKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection

pytestmark = pytest.mark.pcsc

HEFEI = bytes.fromhex("340100000001")


def pcsc(name: str) -> Connection:
    from sscard.terminals.pcsc import PcscTransport

    return Connection(PcscTransport(name)).connect()


def test_hotel_checks_over_pcscd_with_psam(vreader, vreader2) -> None:  # type: ignore[no-untyped-def]
    vreader2.insert(psam_card(new_psam(HEFEI, key_index=1, keys=default_key_set(), t0=True)))
    psam = pcsc(vreader2.name)
    keys = PsamKeyProvider(psam)
    check = IdentityCheck(terminal_id="hefei-hotel-01")
    try:
        for i, province in enumerate(("zhejiang", "shanghai")):
            profile = new_card(province, seed=i)
            vreader.insert(build_card(profile, t0=i % 2 == 0))
            conn = pcsc(vreader.name)
            try:
                result = check.check_card("hotel", SsseReader(conn, keys))
            finally:
                conn.close()
            assert result.accepted, result.text()
            assert result.released["ssn"] == profile.ssse.ef06.ssn
            vreader.eject()
        fake = dataclasses.replace(new_card("anhui", seed=3), counterfeit=True)
        vreader.insert(build_card(fake))
        conn = pcsc(vreader.name)
        try:
            refused = check.check_card("hotel", SsseReader(conn, keys))
        finally:
            conn.close()
        assert refused.reasons == ("counterfeit",)
    finally:
        psam.close()
