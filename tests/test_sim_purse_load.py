"""Load through the load-host simulator: card 8050 00 -> host MAC1 check / MAC2 -> card 8052.

reference §P2, §P4.2, §P4.4 (load MACs, profile load TAC) and the sscard profile
(DLK from MLK, issuer then ASN; SM4 variant).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from helpers import ok, run

from sscard.cards.purse import TxnRecord
from sscard.simulators.cos import CardOS
from sscard.simulators.keys import default_key_set, generate_key_set
from sscard.simulators.load_host import LoadDeclined, LoadHost, LoadMacInvalid
from sscard.simulators.purse_applet import VECTOR_KEY, purse_card, sample_profile

H = bytes.fromhex
KEYS = default_key_set()
TERMINAL = H("310000000042")
EF15 = sample_profile().ef0015.encode()
ISSUER, ASN = EF15[0:8], EF15[10:20]
WHEN = datetime(2025, 3, 1, 9, 30, 5)


def load_init(card: CardOS, amount: int) -> bytes:
    ok(card, "00A4040008A00000063201010500")
    return ok(card, f"805000020B01{amount:08X}{TERMINAL.hex()}10")


@pytest.mark.parametrize("algorithm", [0x00, 0x04])
def test_load_through_the_host(algorithm: int) -> None:
    card = purse_card(sample_profile(balance=250, algorithm_id=algorithm), KEYS)
    host = LoadHost(KEYS)
    init = load_init(card, 5000)
    assert init[7] == algorithm
    auth = host.authorize(
        init_response=init, issuer_id=ISSUER, asn=ASN, amount=5000, terminal_id=TERMINAL,
        date_time=WHEN,
    )  # fmt: skip
    tac = ok(card, "805200000B" + auth.credit_data.hex() + "04")
    assert host.verify_tac(auth, tac)
    assert not host.verify_tac(auth, bytes(4))
    assert ok(card, "805C000204") == (5250).to_bytes(4, "big")
    record = TxnRecord.decode(ok(card, "00B201C400"))
    assert (record.counter, record.amount, record.txn_type, record.time) == (0, 5000, 2, WHEN)
    # The online counter moved: the next INITIALIZE FOR LOAD reports 0001.
    assert load_init(card, 1)[4:6] == H("0001")


def test_host_refuses_a_tampered_or_foreign_mac1() -> None:
    card = purse_card(sample_profile(balance=0), KEYS)
    init = load_init(card, 100)
    host = LoadHost(KEYS)
    with pytest.raises(LoadMacInvalid) as caught:
        host.authorize(
            init_response=init, issuer_id=ISSUER, asn=ASN, amount=101, terminal_id=TERMINAL,
            date_time=WHEN,
        )  # fmt: skip
    assert "MAC1" in caught.value.message_en
    other = LoadHost(generate_key_set(seed=1))  # another issuer's masters
    with pytest.raises(LoadMacInvalid):
        other.authorize(
            init_response=init, issuer_id=ISSUER, asn=ASN, amount=100, terminal_id=TERMINAL,
            date_time=WHEN,
        )  # fmt: skip
    # Nothing reached the card: CREDIT without a valid MAC2 is refused.
    assert run(card, "805200000B" + WHEN.strftime("%Y%m%d%H%M%S") + "00000000 04")[1] == 0x9302
    assert ok(card, "805C000204") == bytes(4)


@pytest.mark.parametrize(
    "init",
    [
        H("00000000 0000 02 00 11223344"),  # 12 B: no MAC1
        H("00000000 0000 07 00 11223344 2988AE5A"),  # key version unknown to the host
        H("00000000 0000 01 05 11223344 2988AE5A"),  # algorithm ID 05
    ],
)
def test_host_declines_malformed_answers(init: bytes) -> None:
    with pytest.raises(LoadDeclined):
        LoadHost(KEYS).authorize(
            init_response=init, issuer_id=ISSUER, asn=ASN, amount=1, terminal_id=TERMINAL,
            date_time=WHEN,
        )  # fmt: skip


def test_vector_host_reproduces_mac2() -> None:
    """§P4.5 load: the host with DLK = vector key answers MAC2 3A845BF0."""
    auth = LoadHost.with_card_keys(VECTOR_KEY).authorize(
        init_response=H("00000000 0000 02 00 11223344 2988AE5A"),
        issuer_id=ISSUER,
        asn=ASN,
        amount=0x1000,
        terminal_id=H("001122334455"),
        date_time=H("20111221214822"),
        txn_type=0x01,
    )
    assert auth.mac2 == H("3A845BF0")
    assert auth.credit_data == H("20111221 214822 3A845BF0")
