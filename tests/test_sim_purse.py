"""The simulated T-Union purse, driven with raw APDU bytes only.

Known answers from reference §P4.5 (load MAC1/MAC2, purchase
MAC1/MAC2), the §P1.2 SELECT sample, and the all-or-nothing rules of the sscard profile.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from helpers import ok, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscard.cards.purse import CompositeRecord, PpseFci, TripRecord, TxnRecord
from sscard.crypto import purse as pc
from sscard.simulators.cos import CardOS
from sscard.simulators.faults import CardTorn, TearPoint, ins_is
from sscard.simulators.keys import default_key_set
from sscard.simulators.load_host import LoadHost
from sscard.simulators.profile import CardProfile, PurseProfile, new_card
from sscard.simulators.purse_applet import (
    VECTOR_KEY,
    build_purse_adf,
    find_purse,
    purse_card,
    sample_profile,
    vector_keys,
)

H = bytes.fromhex
RND = H("11223344")
TERMINAL = H("001122334455")


def select_ep(card: CardOS) -> bytes:
    return ok(card, "00A4040008 A000000632010105 00")


def balance(card: CardOS) -> int:
    return int.from_bytes(ok(card, "805C000204"), "big")


def vector_card(bal: int = 0, **changes: object) -> CardOS:
    profile = replace(sample_profile(balance=bal), **changes)  # type: ignore[arg-type]
    card = purse_card(profile, vector_keys(), rng=lambda n: RND[:n])
    select_ep(card)
    return card


# --------------------------------------------------------------------- selection


def test_ppse_lists_mot_t_ep_and_select_answers_the_reference_sample() -> None:
    card = purse_card(sample_profile(), vector_keys())
    ppse = PpseFci.decode(ok(card, "00A404000E 325041592E5359532E4444463031 00"))
    entry = ppse.find_label()
    assert entry is not None and entry.aid == H("A000000632010105")
    # reference §P1.2, real simulator response (S14), byte for byte.
    assert select_ep(card) == H(
        "6F31 8408A000000632010105 A525 9F080102 9F0C1E 01011000FFFFFFFF 02 01"
        " 03105170010170907984 20190806 20401231 0000"
    )
    assert ok(card, "00B0950000") == H(
        "01011000FFFFFFFF020103105170010170907984201908062040123100 00".replace(" ", "")
    )
    assert len(ok(card, "00B0960037")) == 55
    assert len(ok(card, "00B097003C")) == 60


def test_blocked_purse_answers_6a81_on_select() -> None:
    card = purse_card(replace(sample_profile(), blocked=True), vector_keys())
    assert run(card, "00A4040008A00000063201010500")[1] == 0x6A81


# --------------------------------------------------------------------- published vectors


def test_load_vector_mac1_and_mac2() -> None:
    """§P4.5 load: the card answers MAC1 2988AE5A and accepts MAC2 3A845BF0."""
    card = vector_card()
    answer = ok(card, "80 50 00 01 0B 01 00001000 001122334455 10")
    assert answer == H("00000000 0000 02 00 11223344 2988AE5A")
    tac = ok(card, "80 52 00 00 0B 20111221 214822 3A845BF0 04")
    assert len(tac) == 4
    assert balance(card) == 0x1000
    # The host with the same DLK reproduces MAC2 and accepts the card's TAC.
    host = LoadHost.with_card_keys(VECTOR_KEY)
    auth = host.authorize(
        init_response=answer,
        issuer_id=H("01011000FFFFFFFF"),
        asn=H("03105170010170907984"),
        amount=0x1000,
        terminal_id=TERMINAL,
        date_time=datetime(2011, 12, 21, 21, 48, 22),
        txn_type=0x01,
    )
    assert auth.mac2 == H("3A845BF0")
    assert host.verify_tac(auth, tac)
    record = TxnRecord.decode(ok(card, "00B201C400"))
    assert record == TxnRecord(
        counter=0,
        overdraft_limit=0,
        amount=0x1000,
        txn_type=0x01,
        terminal_id=TERMINAL,
        time=datetime(2011, 12, 21, 21, 48, 22),
    )


def test_purchase_vector_mac1_accepted_and_mac2() -> None:
    """§P4.5 purchase: MAC1 F15CAB75 (seq 00000001) is accepted; MAC2 is 56988A13."""
    card = vector_card(0x1000)
    init = ok(card, "80 50 01 02 0B 01 00001000 001122334455 0F")
    assert init == H("00001000 0000 000000 01 00 11223344")
    answer = ok(card, "80 54 01 00 0F 00000001 20120229 135100 F15CAB75 08")
    tac, mac2 = answer[:4], answer[4:]
    assert mac2 == H("56988A13")
    dtk_key = pc.purchase_tac(
        VECTOR_KEY,
        amount=0x1000,
        txn_type=6,
        terminal_id=TERMINAL,
        terminal_seq=1,
        date_time=H("20120229135100"),
        algorithm=0,
    )
    assert tac == dtk_key
    assert balance(card) == 0
    # 805A with counter N + 1 = 1 proves it: MAC2 ‖ TAC.
    assert ok(card, "80 5A 00 06 02 0001 08") == mac2 + tac


def test_load_then_purchase_on_one_card_reproduces_both_vectors() -> None:
    card = vector_card()
    ok(card, "805000010B0100001000001122334455 10")
    ok(card, "805200000B201112212148223A845BF0 04")
    ok(card, "805001020B0100001000001122334455 0F")
    assert ok(card, "805401000F0000000120120229135100F15CAB75 08")[4:] == H("56988A13")


# --------------------------------------------------------------------- failures: nothing changes


def _snapshot(card: CardOS) -> tuple[object, ...]:
    df, applet = find_purse(card)
    files = tuple(tuple(ef.records) for ef in df.children if hasattr(ef, "records"))
    return applet.state, files


def test_insufficient_balance_is_9401_and_changes_nothing() -> None:
    card = vector_card(100)
    before = _snapshot(card)
    assert run(card, "805001020B0100000200001122334455 0F")[1] == 0x9401
    assert run(card, "805401000F0000000120120229135100F15CAB75 08")[1] == 0x6901
    assert _snapshot(card) == before
    assert balance(card) == 100


def test_overdraft_limit_is_respected() -> None:
    card = vector_card(100, overdraft_limit=500)
    assert int.from_bytes(ok(card, "805C030204"), "big") == 600
    init = ok(card, "805001020B010000012C001122334455 0F")
    assert init[6:9] == H("0001F4")  # overdraft limit in the answer
    sk = pc.purchase_session_key(
        VECTOR_KEY, card_random=RND, offline_counter=0, terminal_seq=7, algorithm=0
    )
    mac1 = pc.purchase_mac1(
        sk, amount=300, txn_type=6, terminal_id=TERMINAL, date_time=H("20250301081500"),
        algorithm=0,
    )  # fmt: skip
    ok(card, "805401000F00000007 20250301081500".replace(" ", "") + mac1.hex())
    values = [int.from_bytes(ok(card, f"805C0{p}0204"), "big") for p in range(4)]
    # balance, amount overdrawn (P1 01, §P5.8: Metrodroid/CardBal), overdraft used, usable
    assert values == [0, 200, 200, 300]
    assert run(card, "805001020B0100000190001122334455 0F")[1] == 0x9401  # 400 > 300


def test_bad_mac1_is_9302_changes_nothing_and_drops_the_cache() -> None:
    card = vector_card(0x1000)
    before = _snapshot(card)
    ok(card, "805003020B0100001000001122334455 0F")
    ok(card, "80DC 02 D0 80" + _bus_record().hex())
    ok(card, "80DC 00 F0 30" + _trip_record().hex())
    assert run(card, "805401000F0000000120120229135100DEADBEEF 08")[1] == 0x9302
    assert _snapshot(card) == before
    assert balance(card) == 0x1000
    assert run(card, "805A000902000108")[1] == 0x9406  # nothing to prove
    assert run(card, "00B201F400")[1] == 0x6A83  # no trip record was written
    # The session is over: the right MAC1 now finds no purchase to complete.
    assert run(card, "805401000F0000000120120229135100F15CAB75 08")[1] == 0x6901


def test_load_over_max_balance_is_6985() -> None:
    card = vector_card(900, max_balance=1000)
    assert run(card, "805000020B0100000065001122334455 10")[1] == 0x6985  # 900 + 101
    assert len(ok(card, "805000020B0100000064001122334455 10")) == 16  # exactly the max


def test_bad_load_mac2_is_9302() -> None:
    card = vector_card()
    ok(card, "805000010B0100001000001122334455 10")
    assert run(card, "805200000B2011122121482200000000 04")[1] == 0x9302
    assert balance(card) == 0
    assert run(card, "00B201C400")[1] == 0x6A83


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("805001020B0200001000001122334455 0F", 0x9403),  # key index 02 unknown
        ("805002020B0100001000001122334455 0F", 0x6A86),  # P1 02
        ("805003010B0100001000001122334455 0F", 0x6A86),  # CAPP on the ED
        ("805001020A01000010000011223344 0F", 0x6700),
        ("805C040204", 0x6A86),
        ("805C000304", 0x6A86),
        ("805A000602000108", 0x9406),
        ("805A0006030000010008", 0x6700),
        ("80DC02D080" + "00" * 128, 0x6901),  # no composite purchase open
        ("805200000B201112212148223A845BF0 04", 0x6901),  # no load open
    ],
)
def test_status_words(apdu: str, sw: int) -> None:
    assert run(vector_card(0x1000), apdu)[1] == sw


def test_80dc_checks_the_record_against_the_layouts() -> None:
    card = vector_card(0x1000)
    ok(card, "805003020B0100001000001122334455 0F")
    bad_id = bytearray(_bus_record())
    bad_id[1] = 0x01
    assert run(card, "80DC02D080" + bad_id.hex())[1] == 0x6A80
    assert run(card, "80DC05D080" + _bus_record().hex())[1] == 0x6A83
    assert run(card, "80DC02D07F" + _bus_record()[:127].hex())[1] == 0x6700
    bad_time = bytearray(_trip_record())
    bad_time[25:32] = H("20251399999999")
    assert run(card, "80DC00F030" + bad_time.hex())[1] == 0x6A80
    assert run(card, "80DC00F130" + _trip_record().hex())[1] == 0x6A86
    # The simple purchase has no cache at all.
    ok(card, "805001020B0100001000001122334455 0F")
    assert run(card, "80DC02D080" + _bus_record().hex())[1] == 0x6901


# --------------------------------------------------------------------- composite + records


def _bus_record(state: int = 1) -> bytes:
    return CompositeRecord(
        record_id=2,
        txn_serial="0000000000001234",
        state=state,
        entry_city="3100",
        entry_institution=H("01011000FFFFFFFF"),
        entry_line=8,
        entry_stop=19,
        entry_vehicle="HU-A1234",
        entry_terminal=H("0000") + TERMINAL,
        entry_time=datetime(2025, 3, 1, 8, 15),
        max_amount=500,
    ).encode()


def _trip_record(amount: int = 0x1000, after: int = 0) -> bytes:
    return TripRecord(
        record_type=3,
        terminal_id=H("0000") + TERMINAL,
        industry=2,
        line_station=H("00080013000100"),
        amount=amount,
        balance=after,
        time=datetime(2012, 2, 29, 13, 51),
        city_code="3100",
        institution_id=H("01011000FFFFFFFF"),
    ).encode()


def _capp_purchase(card: CardOS, amount: int = 0x1000, seq: int = 1) -> bytes:
    init = ok(card, f"805003020B01{amount:08X}001122334455 0F")
    ok(card, "80DC02D080" + _bus_record().hex())
    ok(card, "80DC00F030" + _trip_record(amount).hex())
    counter = int.from_bytes(init[4:6], "big")
    sk = pc.purchase_session_key(
        VECTOR_KEY, card_random=init[11:15], offline_counter=counter, terminal_seq=seq,
        algorithm=0,
    )  # fmt: skip
    dt = H("20120229135100")
    mac1 = pc.purchase_mac1(
        sk, amount=amount, txn_type=9, terminal_id=TERMINAL, date_time=dt, algorithm=0
    )
    return ok(card, f"805401000F{seq:08X}{dt.hex()}{mac1.hex()}08")


def test_composite_purchase_commits_records_exactly_as_the_layouts_say() -> None:
    card = vector_card(0x2000)
    _capp_purchase(card)
    assert balance(card) == 0x1000
    log = TxnRecord.decode(ok(card, "00B201C400"))
    assert log == TxnRecord(
        counter=0,
        overdraft_limit=0,
        amount=0x1000,
        txn_type=9,
        terminal_id=TERMINAL,
        time=datetime(2012, 2, 29, 13, 51),
    )
    assert ok(card, "00B202D400") == _bus_record()
    assert CompositeRecord.decode(ok(card, "00B202D400")).state == 1
    assert ok(card, "00B201F400") == _trip_record()
    assert TripRecord.decode(ok(card, "00B201F400")).record_type == 3
    assert ok(card, "00B201D400")[:3] == H("27017D")  # metro record untouched
    assert ok(card, "805A000902000108")[:4] == _capp_purchase_mac2()


def _capp_purchase_mac2() -> bytes:
    sk = pc.purchase_session_key(
        VECTOR_KEY, card_random=RND, offline_counter=0, terminal_seq=1, algorithm=0
    )
    return pc.purchase_mac2(sk, amount=0x1000, algorithm=0)


def test_cyclic_log_keeps_the_newest_ten_records_first() -> None:
    card = vector_card(50_000)
    for seq in range(1, 13):
        _capp_purchase(card, amount=seq, seq=seq)
    amounts = [TxnRecord.decode(ok(card, f"00B2{n:02X}C400")).amount for n in range(1, 11)]
    assert amounts == list(range(12, 2, -1))
    assert run(card, "00B20BC400")[1] == 0x6A83
    counters = [TxnRecord.decode(ok(card, f"00B2{n:02X}C400")).counter for n in (1, 10)]
    assert counters == [11, 2]
    assert TripRecord.decode(ok(card, "00B20CF400")).amount == 1  # 1E keeps 30


# --------------------------------------------------------------------- tearing


def test_tear_after_commit_805a_proves_the_debit() -> None:
    card = vector_card(0x2000)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    with pytest.raises(CardTorn):
        _capp_purchase(card)
    card.power_on()
    select_ep(card)
    proof = ok(card, "80 5A 00 09 02 0001 08")  # counter N + 1
    assert proof[:4] == _capp_purchase_mac2()
    assert balance(card) == 0x1000
    assert ok(card, "00B202D400") == _bus_record()
    assert ok(card, "00B201F400") == _trip_record()


def test_tear_before_commit_changes_nothing_and_805a_fails() -> None:
    card = vector_card(0x2000)
    before = _snapshot(card)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.BEFORE_COMMIT)
    with pytest.raises(CardTorn):
        _capp_purchase(card)
    card.power_on()
    select_ep(card)
    assert run(card, "80 5A 00 09 02 0001 08")[1] == 0x9406
    assert balance(card) == 0x2000
    assert _snapshot(card) == before


def test_tear_during_80dc_discards_the_cache() -> None:
    card = vector_card(0x2000)
    ok(card, "805003020B0100001000001122334455 0F")
    ok(card, "80DC02D080" + _bus_record().hex())
    card.faults.tear_on(ins_is(0xDC, 0x80), TearPoint.AFTER_COMMIT)
    with pytest.raises(CardTorn):
        ok(card, "80DC00F030" + _trip_record().hex())
    card.power_on()
    select_ep(card)
    assert run(card, "805401000F0000000120120229135100F15CAB75 08")[1] == 0x6901
    assert ok(card, "00B202D400")[3:] == bytes(125)


# --------------------------------------------------------------------- image round trip


def test_state_is_saved_and_reloaded_through_the_card_image(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = default_key_set()
    profile = new_card("shanghai", generation=3, balance=5000, seed=7)
    assert profile.purse is not None
    path = tmp_path / "card.json"
    profile.save(path)

    def save(cos: CardOS) -> None:
        df, applet = find_purse(cos)
        assert profile.purse is not None
        profile.purse = applet.export(df, profile.purse)
        profile.save(path)

    card = purse_card(profile.purse, keys, on_commit=save)
    select_ep(card)
    host = LoadHost(keys)
    init = ok(card, "805000020B0100000064001122334455 10")
    ef15 = profile.purse.ef0015.encode()
    auth = host.authorize(
        init_response=init, issuer_id=ef15[:8], asn=ef15[10:20], amount=100,
        terminal_id=TERMINAL, date_time=datetime(2025, 3, 1, 8, 0),
    )  # fmt: skip
    tac = ok(card, "805200000B" + auth.credit_data.hex() + "04")
    assert host.verify_tac(auth, tac)
    reloaded = CardProfile.load(path)
    assert reloaded.purse is not None
    assert reloaded.purse.balance == 5100
    assert reloaded.purse.online_counter == 2
    assert reloaded.purse.txn_records[0].amount == 100
    again = purse_card(reloaded.purse, keys)
    select_ep(again)
    assert balance(again) == 5100


def test_export_of_an_untouched_card_is_the_profile() -> None:
    profile: PurseProfile = sample_profile(balance=1234)
    df, applet = find_purse(purse_card(profile, vector_keys()))
    assert applet.export(df, profile) == profile
    assert build_purse_adf(profile, vector_keys()).name == H("A000000632010105")


# --------------------------------------------------------------------- property


_INS = st.sampled_from([0x50, 0x52, 0x54, 0x5A, 0x5C, 0xDC, 0xB0, 0xB2, 0xA4, 0xC0, 0x84])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.tuples(
                st.sampled_from([0x00, 0x80, 0x84]), _INS, st.binary(min_size=2, max_size=40)
            ).map(lambda t: bytes([t[0], t[1]]) + t[2]),
        ),
        max_size=8,
    )
)
def test_arbitrary_bytes_never_raise_and_never_move_money(apdus: list[bytes]) -> None:
    card = vector_card(0x1000)
    for apdu in apdus:
        answer = card.execute(apdu)
        assert len(answer) >= 2
    card.execute(H("00A4040008A000000632010105"))
    assert balance(card) == 0x1000


def test_vector_keys_profile_option_bypasses_diversification() -> None:
    profile = sample_profile()
    profile.vector_keys = True  # type: ignore[attr-defined]  # option the image may carry
    card = purse_card(profile, default_key_set(), rng=lambda n: RND[:n])
    select_ep(card)
    assert ok(card, "805000010B0100001000001122334455 10")[-4:] == H("2988AE5A")
