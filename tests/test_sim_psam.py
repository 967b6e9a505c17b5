"""The simulated PSAM, alone and together with the purse card, with raw APDU bytes only.

reference §P3 (PSAM commands, T=0 GET RESPONSE), §P4 (MAC1/MAC2), the sscard
profile (two-level diversification issuer then ASN, 1001/EF16/EF17, 9302), and the
SSSE key commands documented in sscard/simulators/psam.py.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from helpers import ok, run

from sscard.cards.purse import CompositeRecord, TripRecord, TxnRecord
from sscard.cards.ssse import CardIdCode
from sscard.crypto import purse as pc
from sscard.crypto import ssse
from sscard.simulators.cos import CardOS
from sscard.simulators.faults import CardTorn, TearPoint, ins_is
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import ProfileError, SchemaMismatch
from sscard.simulators.psam import PsamImage, load_psam, new_psam, psam_card, save_psam
from sscard.simulators.purse_applet import purse_card, sample_profile

H = bytes.fromhex
KEYS = default_key_set()
TERMINAL = H("310000000042")
EF15 = H("01011000FFFFFFFF0201031051700101709079842019080620401231 0000".replace(" ", ""))
ISSUER, ASN8 = EF15[0:8], EF15[12:20]
CARD_ID = CardIdCode(region="310100", rid=H("D156000005"), card_specific=H("0102030405060708"))


def t0_call(psam: CardOS, apdu: str) -> bytes:
    """Case-4 command under T=0: ``61 xx`` then GET RESPONSE."""
    data, sw = run(psam, apdu)
    assert data == b"" and sw >> 8 == 0x61
    return ok(psam, f"00C00000{sw & 0xFF:02X}")


def select_psam(psam: CardOS) -> None:
    """``00 A4 00 00 02 1001``: 9000 (T=1) or 61xx with the FCI waiting (T=0)."""
    _, sw = run(psam, "00A40000021001")
    assert sw == 0x9000 or sw >> 8 == 0x61


def new_psam_card(**kw: object) -> tuple[PsamImage, CardOS]:
    image = new_psam(TERMINAL, keys=KEYS, **kw)  # type: ignore[arg-type]
    card = psam_card(image)
    select_psam(card)
    return image, card


def init_data(
    algorithm: int = 0, *, amount: int = 0x100, counter: int = 0, two_level: bool = True
) -> str:
    data = (
        H("A1B2C3D4")
        + counter.to_bytes(2, "big")
        + amount.to_bytes(4, "big")
        + b"\x09"
        + H("20250301081500")
        + bytes([KEYS.purse_key_version, algorithm])
        + ASN8
        + (ISSUER if two_level else b"")
    )
    return f"80700000{len(data):02X}{data.hex()}08"


# --------------------------------------------------------------------- files


def test_terminal_number_and_key_index_files() -> None:
    _, psam = new_psam_card()
    assert ok(psam, "00B0960006") == TERMINAL
    assert ok(psam, "00B0970001") == b"\x01"
    select_psam(psam)
    run(psam, "00A40000023F00")  # MF: the terminal number is readable there too
    assert ok(psam, "00B0960006") == TERMINAL


# --------------------------------------------------------------------- 8070 / 8072


@pytest.mark.parametrize("algorithm", [0x00, 0x04])
@pytest.mark.parametrize("two_level", [True, False])
def test_8070_mac1_matches_the_profile_diversification(algorithm: int, two_level: bool) -> None:
    image, psam = new_psam_card()
    answer = t0_call(psam, init_data(algorithm, two_level=two_level))
    seq, mac1 = int.from_bytes(answer[:4], "big"), answer[4:]
    assert seq == 1 and image.next_seq == 2
    family = "sm4" if algorithm else "3des"
    mpk = KEYS.purse.master("MPK", family)
    dpk = (
        pc.diversify(pc.diversify(mpk, ISSUER, algorithm), ASN8, algorithm)
        if two_level
        else pc.diversify(mpk, ASN8, algorithm)
    )
    sk = pc.purchase_session_key(
        dpk, card_random=H("A1B2C3D4"), offline_counter=0, terminal_seq=1, algorithm=algorithm
    )
    assert mac1 == pc.purchase_mac1(
        sk, amount=0x100, txn_type=9, terminal_id=TERMINAL, date_time=H("20250301081500"),
        algorithm=algorithm,
    )  # fmt: skip
    # 8072: wrong MAC2 -> 9302 and the context survives for a retry; right one -> 9000.
    assert run(psam, "8072000004DEADBEEF")[1] == 0x9302
    ok(psam, "8072000004" + pc.purchase_mac2(sk, amount=0x100, algorithm=algorithm).hex())
    assert run(psam, "8072000004" + mac1.hex())[1] == 0x6901


def test_t1_psam_answers_8070_directly() -> None:
    image = new_psam(TERMINAL, keys=KEYS, t0=False)
    psam = psam_card(image)
    select_psam(psam)
    assert len(ok(psam, init_data())) == 8


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("8072000004 01020304", 0x6901),  # no 8070 yet
        ("8070000010" + "00" * 16 + "08", 0x6700),
        ("807001001C" + "00" * 28, 0x6A86),
        (init_data(0x07), 0x6A80),  # unknown algorithm ID
        (init_data(0x00).replace("0100" + ASN8.hex(), "0200" + ASN8.hex()), 0x6A88),
        ("801A0001100102", 0x6700),
        ("801A0002" + "10" + CARD_ID.hex, 0x6A86),  # algorithm flag 02 (SSF33)
        ("801A0501" + "10" + CARD_ID.hex, 0x6A88),  # unknown key ID
        ("80FA000010" + "00" * 16, 0x6985),  # no 801A yet
        ("80FA020010" + "00" * 16, 0x6A86),
    ],
)
def test_status_words(apdu: str, sw: int) -> None:
    _, psam = new_psam_card(t0=False)
    assert run(psam, apdu)[1] == sw


def test_psam_without_sm4_refuses_sm4_cards() -> None:
    _, psam = new_psam_card(sm4=False, t0=False)
    assert run(psam, init_data(0x04))[1] == 0x6A81
    assert run(psam, "801A0003 10" + CARD_ID.hex)[1] == 0x6A81  # -2202
    ok(psam, "801A0001 10" + CARD_ID.hex)


def test_psam_without_rkssse() -> None:
    image, psam = new_psam_card(has_rkssse=False, t0=False)
    assert not image.has_rkssse
    assert run(psam, "801A0A03 10" + CARD_ID.hex)[1] == 0x6A88  # -2203
    ok(psam, "801A0003 10" + CARD_ID.hex)


# --------------------------------------------------------------------- SSSE keys


@pytest.mark.parametrize("flag", [0x01, 0x03])
def test_ssse_internal_and_external_authentication_cryptograms(flag: int) -> None:
    _, psam = new_psam_card(t0=False)
    family = "sm4" if flag == 3 else "3des"
    code = CARD_ID.encode()
    p8, s8 = H("1122334455667788"), H("8877665544332211")
    ok(psam, f"801A00{flag:02X}10{code.hex()}")
    irk = ssse.card_key(KEYS.ssse.master("IRK", family), code, flag)
    expected = ssse.internal_auth(irk, p8, s8, flag)
    assert ok(psam, "80FA000010" + (p8 + s8).hex()) == expected
    ok(psam, "80FA010018" + (p8 + s8 + expected).hex())
    assert run(psam, "80FA010018" + (p8 + s8 + bytes(8)).hex())[1] == 0x9302
    ok(psam, f"801A0A{flag:02X}10{code.hex()}")
    rk = ssse.card_key(KEYS.ssse.master("RKSSSE", family), code, flag)
    challenge = H("0102030405060708")
    assert ok(psam, "80FA000010" + (challenge + s8).hex()) == ssse.external_auth(
        rk, challenge, s8, flag
    )


# --------------------------------------------------------------------- card + PSAM


def _composite_purchase(card: CardOS, psam: CardOS, amount: int) -> tuple[bytes, bytes]:
    """The validator's APDUs (reference §P6 count): card SELECT, 805003, 80DC 1A,
    80DC 1E, 8054; PSAM 8070 (+ GET RESPONSE), 8072. Returns (TAC, 8070 answer)."""
    fci = ok(card, "00A4040008A00000063201010500")
    ef15 = fci[-30:]
    terminal = ok(psam, "00B0960006")
    index = ok(psam, "00B0970001")
    init = ok(card, f"805003020B{index.hex()}{amount:08X}{terminal.hex()}0F")
    balance = int.from_bytes(init[0:4], "big")
    ok(card, "80DC02D080" + _bus_record(terminal).hex())
    ok(card, "80DC00F030" + _trip_record(terminal, amount, balance - amount).hex())
    sam_in = (
        init[11:15]  # random
        + init[4:6]  # offline counter
        + amount.to_bytes(4, "big")
        + b"\x09"
        + H("20250301081500")
        + init[9:11]  # key version, algorithm ID
        + ef15[12:20]
        + ef15[0:8]
    )
    sam_out = t0_call(psam, "8070000024" + sam_in.hex() + "08")
    debit = ok(card, "805401000F" + sam_out[:4].hex() + "20250301081500" + sam_out[4:].hex() + "08")
    tac, mac2 = debit[:4], debit[4:]
    ok(psam, "8072000004" + mac2.hex())
    return tac, sam_out


def _bus_record(terminal: bytes) -> bytes:
    return CompositeRecord(
        record_id=2, state=1, entry_city="3100", entry_line=8, entry_stop=3,
        entry_terminal=H("0000") + terminal, entry_time=datetime(2025, 3, 1, 8, 15),
        max_amount=500,
    ).encode()  # fmt: skip


def _trip_record(terminal: bytes, amount: int, after: int) -> bytes:
    return TripRecord(
        record_type=3, terminal_id=H("0000") + terminal, industry=2,
        line_station=H("00080003000100"), amount=amount, balance=after,
        time=datetime(2025, 3, 1, 8, 15), city_code="3100", institution_id=ISSUER,
    ).encode()  # fmt: skip


@pytest.mark.parametrize("algorithm", [0x00, 0x04])
def test_full_composite_purchase_card_and_psam(algorithm: int) -> None:
    card = purse_card(sample_profile(balance=10_000, algorithm_id=algorithm), KEYS)
    image, psam = new_psam_card()
    tac, sam_out = _composite_purchase(card, psam, 150)
    assert ok(card, "805C000204") == (10_000 - 150).to_bytes(4, "big")
    record = TxnRecord.decode(ok(card, "00B201C400"))
    assert (record.counter, record.amount, record.txn_type, record.terminal_id) == (
        0,
        150,
        9,
        TERMINAL,
    )
    assert ok(card, "00B202D400") == _bus_record(TERMINAL)
    assert ok(card, "00B201F400") == _trip_record(TERMINAL, 150, 10_000 - 150)
    # The host checks the TAC with DTK from MTK (issuer, then ASN).
    dtk = KEYS.purse_card_key("MTK", ISSUER, ASN8, algorithm)
    assert tac == pc.purchase_tac(
        dtk, amount=150, txn_type=9, terminal_id=TERMINAL,
        terminal_seq=int.from_bytes(sam_out[:4], "big"), date_time=H("20250301081500"),
        algorithm=algorithm,
    )  # fmt: skip
    # A second tap: the PSAM sequence and the card's offline counter both moved on.
    _, second = _composite_purchase(card, psam, 50)
    assert int.from_bytes(second[:4], "big") == 2 and image.next_seq == 3
    assert TxnRecord.decode(ok(card, "00B201C400")).counter == 1


def test_tear_after_commit_recovery_with_805a_and_the_same_psam_context() -> None:
    card = purse_card(sample_profile(balance=1000, algorithm_id=4), KEYS)
    _, psam = new_psam_card()
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    with pytest.raises(CardTorn):
        _composite_purchase(card, psam, 300)
    card.power_on()
    ok(card, "00A4040008A00000063201010500")
    proof = ok(card, "805A000902000108")  # counter N + 1 = 1
    ok(psam, "8072000004" + proof[:4].hex())  # the PSAM accepts the recovered MAC2
    assert ok(card, "805C000204") == (700).to_bytes(4, "big")


def test_tear_before_commit_recovery_finds_no_debit() -> None:
    card = purse_card(sample_profile(balance=1000), KEYS)
    _, psam = new_psam_card()
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.BEFORE_COMMIT)
    with pytest.raises(CardTorn):
        _composite_purchase(card, psam, 300)
    card.power_on()
    ok(card, "00A4040008A00000063201010500")
    assert run(card, "805A000902000108")[1] == 0x9406
    assert ok(card, "805C000204") == (1000).to_bytes(4, "big")
    assert run(card, "00B201F400")[1] == 0x6A83


def test_psam_rejects_a_mac2_from_another_purchase() -> None:
    card = purse_card(sample_profile(balance=1000), KEYS)
    _, psam = new_psam_card()
    _composite_purchase(card, psam, 10)
    t0_call(psam, init_data(amount=20))
    # The MAC2 of the first purchase does not verify against the new PSAM context.
    proof = ok(card, "805A000902000108")
    assert run(psam, "8072000004" + proof[:4].hex())[1] == 0x9302


# --------------------------------------------------------------------- image


def test_image_json_round_trip_and_persistent_sequence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "psam.json"
    image = new_psam(TERMINAL, 3, keys=KEYS, has_rkssse=False)
    save_psam(image, path)
    data = json.loads(path.read_text())
    assert data["schema"] == "sscard-psam/1"
    assert data["warning"] == "TEST KEYS - NOT FOR PRODUCTION"
    assert "RKSSSE" not in json.dumps(data["keys"])
    psam = psam_card(load_psam(path), path=path)
    select_psam(psam)
    assert ok(psam, "00B0970001") == b"\x03"
    t0_call(psam, init_data())
    t0_call(psam, init_data())
    reloaded = load_psam(path)
    assert reloaded.next_seq == 3
    assert reloaded == PsamImage.from_json(path.read_text())
    assert not reloaded.has_rkssse and reloaded.sm4
    again = psam_card(reloaded, path=path)
    select_psam(again)
    assert t0_call(again, init_data())[:4] == H("00000003")
    assert [p.name for p in tmp_path.iterdir()] == ["psam.json"]  # no temp files left


def test_a_tear_after_8070_still_consumes_the_sequence_number(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "psam.json"
    image = new_psam(TERMINAL, keys=KEYS)
    psam = psam_card(image, path=path)
    select_psam(psam)
    psam.faults.tear_on(ins_is(0x70, 0x80), TearPoint.AFTER_COMMIT)
    with pytest.raises(CardTorn):
        run(psam, init_data())
    assert load_psam(path).next_seq == 2


def test_failed_save_keeps_the_previous_image(tmp_path, mocker) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "psam.json"
    image = new_psam(TERMINAL, keys=KEYS)
    image.save(path)
    before = path.read_text()
    image.next_seq = 99
    mocker.patch("os.replace", side_effect=OSError("disk full"))
    with pytest.raises(OSError):
        image.save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["psam.json"]


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.update(schema="sscard-psam/9"), SchemaMismatch),
        (lambda d: d.pop("warning"), ProfileError),
        (lambda d: d.update(terminal_id="0011"), ProfileError),
        (lambda d: d["keys"]["purse"]["3des"].update(MPK="00"), ProfileError),
        (lambda d: d.update(next_seq="1"), ProfileError),
        (lambda d: d.update(keys=[]), ProfileError),
    ],
)
def test_bad_images_are_typed_errors(mutate, error) -> None:  # type: ignore[no-untyped-def]
    data = new_psam(TERMINAL, keys=KEYS).to_dict()
    mutate(data)
    with pytest.raises(error):
        PsamImage.from_json(json.dumps(data))
