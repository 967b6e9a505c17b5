"""PSAM against whole generated cards (SSSE + purse), raw APDUs on both sides.

The PSAM's SSSE commands (sscard profile, sscard/simulators/psam.py) authenticate the
card (IRK, reference §C3.4) and open EF06 with RKSSSE (§C3.5, 3rd generation); its
purse commands run a composite purchase on a generated card (reference §P3, §P6).
"""

from __future__ import annotations

from datetime import date

import pytest
from helpers import ok, run

from sscard.apdu.tlv import simple_tlv_decode
from sscard.cards.ids import SSSE_DDF_NAME
from sscard.simulators.card import SocialSecurityCard, build_card
from sscard.simulators.cos import CardOS
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card

H = bytes.fromhex
KEYS = default_key_set()
TERMINAL = H("320000000077")
SELECT_SSSE = "00A404000F" + SSSE_DDF_NAME.hex()


def make(generation: int, *, counterfeit: bool = False) -> SocialSecurityCard:
    profile = new_card("jiangsu", generation=generation, balance=2000, seed=11,
                       today=date(2025, 6, 1))  # fmt: skip
    profile.counterfeit = counterfeit
    return build_card(profile, KEYS)


def t1_psam(**kw: object) -> CardOS:
    psam = psam_card(new_psam(TERMINAL, keys=KEYS, t0=False, **kw))  # type: ignore[arg-type]
    ok(psam, "00A40000021001")
    return psam


def card_id_and_flag(card: CardOS) -> tuple[bytes, int]:
    fci = ok(card, SELECT_SSSE)
    tag, code = simple_tlv_decode(ok(card, "00B2012C00"))
    assert tag == 0x01 and len(code) == 16
    return code, fci[-1]


def internal_auth_ok(card: CardOS, psam: CardOS) -> bool:
    code, flag = card_id_and_flag(card)
    p8, s8 = ok(card, "0084000008"), H("A5A5A5A55A5A5A5A")
    r8 = ok(card, "0088000010" + (p8 + s8).hex())
    ok(psam, f"801A00{flag:02X}10{code.hex()}")
    return run(psam, "80FA010018" + (p8 + s8 + r8).hex())[1] == 0x9000


@pytest.mark.parametrize("generation", [2, 3])
def test_psam_authenticates_a_genuine_card_and_spots_a_counterfeit(generation: int) -> None:
    psam = t1_psam()
    assert internal_auth_ok(make(generation), psam)
    assert not internal_auth_ok(make(generation, counterfeit=True), psam)


def test_rkssse_from_the_psam_opens_ef06_on_a_3rd_gen_card() -> None:
    card, psam = make(3), t1_psam()
    code, flag = card_id_and_flag(card)
    assert flag == 0x03
    assert run(card, "00B2013400")[1] == 0x6982
    ok(psam, f"801A0A{flag:02X}10{code.hex()}")
    challenge, s8 = ok(card, "0084000008"), H("0102030405060708")
    e8 = ok(psam, "80FA000010" + (challenge + s8).hex())
    ok(card, "0082000A10" + (e8 + s8).hex())
    assert ok(card, "00B2013400")  # EF06 record 1, refused (6982) before


def test_psam_without_rkssse_or_sm4_cannot_serve_a_3rd_gen_card() -> None:
    code, flag = card_id_and_flag(make(3))
    assert run(t1_psam(has_rkssse=False), f"801A0A{flag:02X}10{code.hex()}")[1] == 0x6A88
    assert run(t1_psam(sm4=False), f"801A00{flag:02X}10{code.hex()}")[1] == 0x6A81


@pytest.mark.parametrize("generation", [2, 3])
def test_simple_purchase_on_a_generated_card(generation: int) -> None:
    card, psam = make(generation), t1_psam()
    fci = ok(card, "00A4040008A00000063201010500")
    ef15 = fci[-30:]
    init = ok(card, "805001020B01000000C8" + TERMINAL.hex() + "0F")
    assert init[10] == (0x04 if generation == 3 else 0x00)  # algorithm ID
    sam = ok(
        psam,
        "8070000024"
        + (init[11:15] + init[4:6] + H("000000C8 06 20250601120000") + init[9:11]).hex()
        + (ef15[12:20] + ef15[0:8]).hex()
        + "08",
    )
    debit = ok(card, "805401000F" + sam[:4].hex() + "20250601120000" + sam[4:].hex() + "08")
    ok(psam, "8072000004" + debit[4:].hex())
    assert ok(card, "805C000204") == (2000 - 200).to_bytes(4, "big")
