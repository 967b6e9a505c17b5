"""The simulated social security card (SSSE side) from generated profiles, raw APDUs only.

References: reference §C1.3-1.5 (records), §C2 (commands), §C3 (algorithm flag,
authentication, PIN), §C5 (ATR) and its "sscard profile" (diversification, SM4
authentication, secure messaging). Expected answers are computed independently
with sscard.crypto and the sscard.cards layouts.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from helpers import tx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscard.apdu import Response
from sscard.apdu.tlv import simple_tlv_decode
from sscard.cards.ids import SSSE_DDF_NAME
from sscard.cards.ssse import AtrHistorical, Ef05, Ef06, SsseFci
from sscard.crypto import ssse as ssse_crypto
from sscard.simulators.card import SocialSecurityCard, build_card, load_card
from sscard.simulators.faults import CardTorn, TearPoint, ins_is
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card

H = bytes.fromhex
SELECT_SSSE = "00A404000F" + SSSE_DDF_NAME.hex()
PROVINCES = ("shanghai", "jiangsu", "zhejiang", "anhui")
TODAY = date(2025, 6, 1)


def make(province: str = "zhejiang", generation: int = 3, state: str = "ok") -> SocialSecurityCard:
    profile = new_card(province, generation=generation, state=state, seed=7, today=TODAY)
    return build_card(profile, default_key_set())


def card_key(card: SocialSecurityCard, name: str) -> bytes:
    """The card's key derived independently from the TEST masters (profile diversification)."""
    flag = card.profile.ssse.algorithm_flag
    family = "sm4" if flag == 0x03 else "3des"
    master = default_key_set().ssse.master(name, family)
    return ssse_crypto.card_key(master, card.profile.ssse.ef05.card_id.encode(), flag)


def read_all(card: SocialSecurityCard, sfi: int, count: int) -> dict[int, bytes]:
    out = {}
    for rec in range(1, count + 1):
        r = tx(card, f"00B2{rec:02X}{(sfi << 3) | 4:02X}00")
        assert r.sw == 0x9000, (sfi, rec, r)
        out[r.data[0]] = r.data
    return out


def ext_auth(card: SocialSecurityCard, kid: int, key: bytes) -> Response:
    challenge = tx(card, "0084000008").data
    source = H("1122334455667788")
    e8 = ssse_crypto.external_auth(key, challenge, source, card.profile.ssse.algorithm_flag)
    return tx(card, f"008200{kid:02X}10" + (e8 + source).hex())


@pytest.mark.parametrize("generation", [2, 3])
@pytest.mark.parametrize("province", PROVINCES)
def test_every_province_and_generation_serves_ef05_ef06(province: str, generation: int) -> None:
    card = make(province, generation)
    profile = card.profile.ssse
    hist = AtrHistorical.from_atr(card.power_on())
    assert card.atr[:4] == H("3B6D0000") and len(card.atr) == 17
    assert hist.serial[:3].hex() == profile.ef05.card_id.region  # region digits in the serial
    fci = tx(card, SELECT_SSSE)
    assert fci.sw == 0x9000
    assert SsseFci.decode(fci.data).algorithm == (3 if generation == 3 else 1)
    assert fci.data.endswith(H("9F0C038601") + bytes([3 if generation == 3 else 1]))
    ef05 = Ef05.from_records(read_all(card, 5, 7))
    assert ef05 == profile.ef05
    assert ef05.spec_version == f"{generation}.00"
    assert ef05.card_id.region[:2] == {"shanghai": "31", "jiangsu": "32",
                                       "zhejiang": "33", "anhui": "34"}[province]  # fmt: skip
    if generation == 3:
        assert tx(card, "00B2013400").sw == 0x6982  # EF06 needs RKSSSE
        assert ext_auth(card, 0x0A, card_key(card, "RKSSSE")).sw == 0x9000
    ef06 = Ef06.from_records(read_all(card, 6, 7))
    assert ef06 == profile.ef06


def test_gen2_has_no_rkssse_and_ef06_is_free() -> None:
    card = make(generation=2)
    tx(card, SELECT_SSSE)
    assert tx(card, "00A4020002EF06").sw == 0x9000
    assert tx(card, "00B2080000").data[0] == 0x08  # by tag: SSN record
    assert ext_auth(card, 0x0A, bytes(16)).sw == 0x6A88


def test_read_record_modes_on_ef05() -> None:
    card = make()
    tx(card, SELECT_SSSE)
    by_sfi = tx(card, "00B2072C00").data  # reference §C1.3: record 7 of SFI 5
    assert simple_tlv_decode(by_sfi)[0] == 0x07
    tx(card, "00A4020002EF05")
    assert tx(card, "00B2070400").data == by_sfi
    assert tx(card, "00B2070000").data == by_sfi
    assert tx(card, "00B2000400").data == by_sfi  # current record
    assert tx(card, "00B2072C09").sw == 0x6C0B  # Le = value length only: resend with 0B
    assert tx(card, "00B2082C00").sw == 0x6A83


def test_select_by_fid_and_path() -> None:
    card = make()
    assert tx(card, "00A4000002DDF1").sw == 0x9000
    assert tx(card, "00A4000002EF05").sw == 0x9000
    assert tx(card, "00B2010400").data[:2] == H("0110")
    assert tx(card, "00A40800 04 DDF1 EF05").sw == 0x9000
    assert tx(card, "00A40000023F00").sw == 0x9000
    assert tx(card, "00A4040006 D15600000503").sw == 0x9000  # DF04 medical
    assert tx(card, "00A4000002DF01").sw == 0x9000  # sibling DF


def test_rkssse_wrong_cryptogram_counts_down_and_challenge_is_single_use() -> None:
    card = make()
    tx(card, SELECT_SSSE)
    rkssse = card_key(card, "RKSSSE")
    challenge = tx(card, "0084000008").data
    source = H("0102030405060708")
    e8 = ssse_crypto.external_auth(rkssse, challenge, source, 0x03)
    assert tx(card, "0082000A10" + (e8 + source).hex()).sw == 0x9000
    assert tx(card, "0082000A10" + (e8 + source).hex()).sw == 0x6984  # challenge used
    tx(card, "0084000008")
    assert tx(card, "0082000A10" + (e8 + source).hex()).sw == 0x63C2  # stale cryptogram
    assert ext_auth(card, 0x0A, rkssse).sw == 0x9000  # success resets the counter
    for sw in (0x63C2, 0x63C1, 0x63C0, 0x6983):
        assert ext_auth(card, 0x0A, bytes(16)).sw == sw
    assert ext_auth(card, 0x0A, rkssse).sw == 0x6983


@pytest.mark.parametrize("generation", [2, 3])
def test_internal_auth_matches_independent_computation(generation: int) -> None:
    card = make(generation=generation)
    tx(card, SELECT_SSSE)
    p8 = tx(card, "0084000008").data
    s8 = H("A1A2A3A4A5A6A7A8")
    r = tx(card, "0088000010" + (p8 + s8).hex() + "08")
    flag = 3 if generation == 3 else 1
    assert r.sw == 0x9000
    assert r.data == ssse_crypto.internal_auth(card_key(card, "IRK"), p8, s8, flag)
    assert tx(card, "0088000011" + (p8 + s8).hex() + "01").data == r.data  # key version byte
    assert tx(card, "008800000F" + (p8 + s8)[:15].hex()).sw == 0x6700
    assert tx(card, "0088000510" + (p8 + s8).hex()).sw == 0x6A88  # no such key


def test_counterfeit_card_has_right_data_wrong_irk() -> None:
    genuine = make()
    fake_profile = new_card("zhejiang", generation=3, seed=7, today=TODAY)
    fake_profile.counterfeit = True
    fake = build_card(fake_profile, default_key_set())
    p8, s8 = H("0011223344556677"), H("8899AABBCCDDEEFF")
    answers = []
    for card in (genuine, fake):
        tx(card, SELECT_SSSE)
        assert tx(card, "00B2012C00").data == tx(genuine, "00B2012C00").data
        answers.append(tx(card, "0088000010" + (p8 + s8).hex()).data)
    assert answers[0] == ssse_crypto.internal_auth(card_key(genuine, "IRK"), p8, s8, 3)
    assert len(answers[1]) == 8 and answers[1] != answers[0]


def test_pin_verify_change_block_sequence() -> None:
    card = make()
    tx(card, SELECT_SSSE)
    assert tx(card, "0020000003123450").sw == 0x63C2
    assert tx(card, "0020000003123456").sw == 0x9000  # resets the counter
    assert tx(card, "00200000").sw == 0x9000
    assert tx(card, "805E0100 07 123456 FF 888888").sw == 0x9000
    assert tx(card, "0020000003123456").sw == 0x63C2
    assert tx(card, "0020000003888888").sw == 0x9000
    for sw in (0x63C2, 0x63C1, 0x63C0, 0x6983):
        assert tx(card, "0020000003000000").sw == sw
    assert tx(card, "0020000003888888").sw == 0x6983
    assert tx(card, "805E0100 07 888888 FF 123456").sw == 0x6983


def test_initial_pin_flag_and_no_change_back() -> None:
    profile = new_card("anhui", generation=2, seed=3, today=TODAY)
    profile.ssse.pin.initial = True
    card = build_card(profile, default_key_set())
    tx(card, SELECT_SSSE)
    assert tx(card, "0020000003123456").sw == 0x9000
    assert card.security.pin_initial
    assert tx(card, "805E0100 07 123456 FF 246810").sw == 0x9000
    assert tx(card, "805E0100 07 246810 FF 123456").sw == 0x6985


def test_pin_locked_profile() -> None:
    card = make(state="pin-locked")
    tx(card, SELECT_SSSE)
    assert tx(card, "0020000003123456").sw == 0x6983


def test_blocked_profile_refuses_select() -> None:
    card = make(state="blocked")
    assert tx(card, SELECT_SSSE).sw == 0x6A81


def test_expired_profile_still_serves_its_dates() -> None:
    card = make(state="expired")
    tx(card, SELECT_SSSE)
    expiry = Ef05.from_records(read_all(card, 5, 7)).expiry_date
    assert expiry < TODAY


def _sm_update_record(card: SocialSecurityCard, key: bytes, p1p2: str, data: bytes) -> Response:
    flag = card.profile.ssse.algorithm_flag
    challenge = tx(card, "00840000" + ("10" if flag == 3 else "08")).data
    header = H("04DC" + p1p2) + bytes([len(data) + 4])
    mac = ssse_crypto.sm_mac(key, challenge, header + data, flag)
    return tx(card, (header + data + mac).hex())


@pytest.mark.parametrize("generation", [2, 3])
def test_sm_update_record_good_and_bad_mac(generation: int) -> None:
    card = make(generation=generation)
    tx(card, SELECT_SSSE)
    new_number = b"\x07\x09" + b"Z12345678"
    assert tx(card, "00DC072C0B" + new_number.hex()).sw == 0x6982  # plain: needs SM
    stk = card_key(card, "STK")
    assert _sm_update_record(card, bytes(16), "072C", new_number).sw == 0x6988
    assert tx(card, "00B2072C00").data != new_number
    assert _sm_update_record(card, stk, "072C", new_number).sw == 0x9000
    assert tx(card, "00B2072C00").data == new_number


def test_t0_card_uses_61xx_and_6cxx() -> None:
    card = build_card(new_card("shanghai", seed=1, today=TODAY), default_key_set(), t0=True)
    assert tx(card, SELECT_SSSE).sw == 0x611B
    fci = tx(card, "00C000001B")
    assert SsseFci.decode(fci.data).algorithm == 3
    assert tx(card, "00B2012C00").sw == 0x6C12
    assert tx(card, "00B2012C12").data[:2] == H("0110")
    p8 = tx(card, "0084000008").data
    assert tx(card, "0088000010" + (p8 * 2).hex()).sw == 0x6108
    assert len(tx(card, "00C0000008").data) == 8


def test_power_cycle_keeps_persistent_state_only() -> None:
    card = make()
    tx(card, SELECT_SSSE)
    tx(card, "0020000003111111")
    ext_auth(card, 0x0A, card_key(card, "RKSSSE"))
    assert tx(card, "00B2013400").sw == 0x9000
    card.power_off()
    card.power_on()
    tx(card, SELECT_SSSE)
    assert tx(card, "00B2013400").sw == 0x6982  # authentication is volatile
    assert tx(card, "00200000").sw == 0x63C2  # the spent try is not


def test_load_card_saves_changes_atomically(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    new_card("jiangsu", generation=2, seed=5, today=TODAY).save(path)
    card = load_card(path)
    tx(card, SELECT_SSSE)
    assert tx(card, "0020000003000000").sw == 0x63C2
    assert json.loads(path.read_text("utf-8"))["ssse"]["pin"]["tries_left"] == 2
    assert tx(card, "805E0100 07 123456 FF 13579F").sw == 0x9000
    stk = card_key(card, "STK")
    assert _sm_update_record(card, stk, "072C", b"\x07\x09Q00000001").sw == 0x9000
    reloaded = load_card(path)
    assert reloaded.profile.ssse.pin.tries_left == 3
    assert reloaded.profile.ssse.ef05.card_number == "Q00000001"
    tx(reloaded, SELECT_SSSE)
    assert tx(reloaded, "000000000000").sw != 0x9000
    assert tx(reloaded, "00200000 03 13579F").sw == 0x9000
    assert not list(tmp_path.glob(".card.json.*"))  # no temp file left behind


def test_tear_after_commit_on_a_file_backed_card(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    new_card("shanghai", generation=3, seed=9, today=TODAY).save(path)
    card = load_card(path)
    tx(card, SELECT_SSSE)
    card.faults.tear_on(ins_is(0x20), TearPoint.AFTER_COMMIT)
    with pytest.raises(CardTorn):
        card.execute(H("0020000003000000"))
    assert CardProfile.load(path).ssse.pin.tries_left == 2  # committed and saved
    card.faults.tear_on(ins_is(0x20), TearPoint.BEFORE_COMMIT)
    card.power_on()
    tx(card, SELECT_SSSE)
    with pytest.raises(CardTorn):
        card.execute(H("0020000003000000"))
    assert CardProfile.load(path).ssse.pin.tries_left == 2  # nothing happened


def test_df01_records_need_the_pin() -> None:
    card = make()
    assert tx(card, "00A4040006D15600000500").sw == 0x9000
    assert tx(card, "00B2012C00").sw == 0x6982
    tx(card, SELECT_SSSE)
    tx(card, "0020000003123456")
    tx(card, "00A4040006D15600000500")
    r = tx(card, "00B2012C00")
    assert r.sw == 0x9000 and r.data[0] == 0x01
    assert r.data[2:] == card.profile.df01["EF05"][1]


_KNOWN = [bytes.fromhex(h) for h in ("00A4", "00B0", "00B2", "00DC", "04DC", "84DC", "0020",
                                     "805E", "8424", "0084", "0088", "0082", "00C0", "8050",
                                     "805C", "8054", "8052", "80DC", "805A", "00E2")]  # fmt: skip
_APDUS = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda h, rest: h + rest, st.sampled_from(_KNOWN), st.binary(max_size=44)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_APDUS, min_size=1, max_size=8), st.booleans())
def test_arbitrary_bytes_never_raise_nor_move_the_balance(apdus: list[bytes], t0: bool) -> None:
    card = build_card(_FUZZ_PROFILE, default_key_set(), t0=t0)
    select_purse = H("00A4040008A000000632010105")
    for i, apdu in enumerate(apdus):
        if i % 3 == 0:
            card.execute(select_purse)  # keep the purse reachable for the fuzz
        raw = card.execute(apdu)
        assert len(raw) >= 2 and raw[-2:] != b"\x6f\x00"
    card.power_on()
    card.execute(select_purse)
    balance = Response.parse(card.execute(H("805C000204")))
    assert balance == Response((5000).to_bytes(4, "big"), 0x9000)


_FUZZ_PROFILE = new_card("jiangsu", generation=3, balance=5000, seed=11, today=TODAY)


@pytest.mark.parametrize("generation", [2, 3])
def test_unblock_and_reload_pin_per_profile(generation: int) -> None:
    card = make(generation=generation, state="pin-locked")
    flag = card.profile.ssse.algorithm_flag
    tx(card, SELECT_SSSE)
    assert tx(card, "0020000003123456").sw == 0x6983
    challenge = tx(card, "00840000" + ("10" if flag == 3 else "08")).data
    bad = ssse_crypto.sm_mac(bytes(16), challenge, H("8424000004"), flag)
    assert tx(card, "8424000004" + bad.hex()).sw == 0x6988
    challenge = tx(card, "00840000" + ("10" if flag == 3 else "08")).data
    mac = ssse_crypto.sm_mac(card_key(card, "PUK"), challenge, H("8424000004"), flag)
    assert tx(card, "8424000004" + mac.hex()).sw == 0x9000  # UNBLOCK PIN: counter back to 3
    assert tx(card, "00200000").sw == 0x63C3
    # RELOAD PIN: new PIN ‖ MAC over it, IV 0, with the reload key (STK in the profile)
    new = H("246810")
    block = 16 if flag == 3 else 8
    mac = ssse_crypto.sm_mac(card_key(card, "STK"), bytes(block), new, flag)
    assert tx(card, "805E000007" + (new + mac).hex()).sw == 0x9000
    assert tx(card, "0020000003246810").sw == 0x9000
    assert tx(card, "805E000007" + (new + bytes(4)).hex()).sw == 0x9302
