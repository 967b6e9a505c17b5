"""A torn card (fault injection) looks like a removed card on every transport."""

from __future__ import annotations

import pytest

from sscard.apdu import Command
from sscard.cards.ids import TUNION_EP_AID
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport
from sscard.terminals.errors import CardRemoved

SELECT_EP = Command(0x00, 0xA4, 0x04, 0x00, TUNION_EP_AID, le=256)
GET_BALANCE = Command(0x80, 0x5C, 0x00, 0x02, le=4)


def test_in_process_tear_is_card_removed_and_card_comes_back():
    card = build_card(new_card("zhejiang", seed=7))
    card.faults.tear_on(ins_is(0x5C, 0x80), TearPoint.BEFORE_COMMIT)
    transport = SimulatorTransport(card)
    conn = Connection(transport)
    conn.connect()
    conn.send(SELECT_EP)
    with pytest.raises(CardRemoved):
        conn.send(GET_BALANCE)
    conn.connect()  # the same card presented again: powered up afresh
    conn.send(SELECT_EP)
    assert len(conn.send(GET_BALANCE).data) == 4


@pytest.mark.pcsc
def test_vpcd_tear_is_seen_as_removal(vreader):  # type: ignore[no-untyped-def]
    from sscard.terminals.pcsc import PcscTransport, wait_for_card

    card = build_card(new_card("anhui", seed=3))
    card.faults.tear_on(ins_is(0x5C, 0x80), TearPoint.BEFORE_COMMIT)
    vreader.insert(card)
    conn = Connection(PcscTransport(vreader.name))
    conn.connect()
    conn.send(SELECT_EP)
    with pytest.raises(CardRemoved):
        conn.send(GET_BALANCE)
    assert vreader.bridge.tears == 1
    wait_for_card(vreader.name, present=True, timeout=5)
    conn.reconnect()
    conn.send(SELECT_EP)
    assert len(conn.send(GET_BALANCE).data) == 4
    conn.close()
