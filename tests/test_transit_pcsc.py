"""The validator through a real pcscd: the card on vpcd slot 0, the PSAM on slot 1.

End to end over the real pcscd; the private pcscd and the vpcd
bridges come from tests/pcsc_harness.py. The PSAM is T=0 (61xx + GET RESPONSE through
PC/SC), the card a T=0 social security card with an SM4 purse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pcsc_harness import VirtualReader
from test_transit_support import TID, Rig, metro

from sscard.applets.transit import Psam, Purse, Refusal, TapAccepted, TapKind, TapRefused
from sscard.services.journal import TapState
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection
from sscard.terminals.pcsc import PcscTransport, wait_for_card

pytestmark = pytest.mark.pcsc


def _conn(reader: VirtualReader) -> Connection:
    return Connection(PcscTransport(reader.name)).connect()


def test_metro_entry_exit_and_tear_recovery_through_pcscd(
    tmp_path: Path, vreader: VirtualReader, vreader2: VirtualReader
) -> None:
    rig = Rig(tmp_path)
    vreader2.insert(psam_card(new_psam(TID, keys=rig.keys)))
    psam_conn = _conn(vreader2)
    assert psam_conn.protocol == "T=0"
    rig.psam = Psam(psam_conn).open()
    assert rig.psam.terminal_id == TID
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 16, 17))

    card = build_card(rig.profile("jiangsu", balance=3_000), rig.keys, t0=True)
    vreader.insert(card)
    conn = _conn(vreader)
    first = entry.tap(conn)
    assert isinstance(first, TapAccepted) and first.kind is TapKind.ENTRY
    conn.close()
    vreader.eject()

    rig.advance(40)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    vreader.insert(card)
    conn = _conn(vreader)
    torn = exit_.tap(conn)
    assert isinstance(torn, TapRefused) and torn.reason is Refusal.DEBIT_UNCERTAIN
    assert wait_for_card(vreader.name, present=True, timeout=5)  # the card is back
    conn.reconnect()
    again = exit_.tap(conn)
    assert isinstance(again, TapAccepted)
    assert (again.recovered, again.mac2_verified, again.fare, again.balance) == (
        True, True, 600, 2_400,
    )  # fmt: skip
    purse = Purse(conn)
    purse.select()
    assert purse.balance() == 2_400
    assert [r.state for r in rig.rows()] == [TapState.COMPLETED] * 2
    conn.close()
    psam_conn.close()
