"""The card OS driven with raw APDU bytes: file system, Le/T=0 rules, access, commit, faults.

References: reference §C1.3 (READ RECORD modes, SFI), §C2 and §C2.1 (commands,
status words); ISO 7816-4 file selection. The tree is hand-built so each rule is
tested apart from any applet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from helpers import tx
from hypothesis import given, settings
from hypothesis import strategies as st

from sscard.apdu import Command, Response
from sscard.crypto.ssse import sm_mac
from sscard.simulators.base import EchoCard, SimulatedCard
from sscard.simulators.cos import (
    FREE,
    NEVER,
    PIN,
    Access,
    Applet,
    CardOS,
    DedicatedFile,
    Key,
    KeyUse,
    Pin,
    RecordFile,
    RecordStructure,
    TransparentFile,
)
from sscard.simulators.faults import CardTorn, Faults, Tear, TearPoint, ins_is

H = bytes.fromhex
DDF_NAME = H("7378312E73682EC9E7BBE1B1A3D5CF")
MAC_KEY = H("00112233445566778899AABBCCDDEEFF")
REC1 = H("0110330300D15600000599110145FFFFFFFF")  # reference §C6 EF05 rec 01


def _counter_rng() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


class Counter(Applet):
    """A toy applet: 80 10 increments a persistent counter through commit; 80 12 reads it."""

    def __init__(self) -> None:
        self.value = 0
        self.instructions = {(0x80, 0x10): self.bump, (0x80, 0x12): self.read}

    def bump(self, cos: CardOS, cmd: Command) -> bytes:
        new = self.value + 1

        def apply() -> None:
            self.value = new

        cos.commit(apply)
        return new.to_bytes(2, "big")

    def read(self, cos: CardOS, cmd: Command) -> bytes:
        return self.value.to_bytes(2, "big")


def make_card(*, t0: bool = False, faults: Faults | None = None) -> CardOS:
    mf = DedicatedFile(fid=0x3F00)
    ddf = DedicatedFile(
        fid=0xDDF1,
        name=DDF_NAME,
        proprietary=H("9F0C03860101"),
        pin=Pin(H("123456"), initial=H("123456")),
        keys={
            0x01: Key(0x01, MAC_KEY, 0x01, KeyUse.MAC),
            0x0A: Key(0x0A, MAC_KEY, 0x01, KeyUse.EXTERNAL_AUTH),
        },
    )
    ddf.add_all(
        RecordFile(fid=0xEF05, sfi=5, records=[REC1, H("020133"), H("0304332E3030")],
                   write=Access.mac(0x01)),
        RecordFile(fid=0xEF06, sfi=6, records=[H("0802AAAA")], read=Access.auth(0x0A),
                   write=FREE),
        RecordFile(fid=0xEF07, sfi=7, records=[H("0701FF")], read=PIN, write=PIN),
        RecordFile(fid=0xEF08, sfi=8, structure=RecordStructure.LINEAR_FIXED, record_size=3,
                   records=[H("000000"), H("111111")], write=FREE),
        RecordFile(fid=0xEF09, sfi=9, structure=RecordStructure.CYCLIC, record_size=2,
                   max_records=2, write=FREE),
        TransparentFile(fid=0x0015, sfi=0x15, data=bytearray(range(30)), write=FREE),
        TransparentFile(fid=0x0016, sfi=0x16, data=bytearray(300), write=NEVER),
    )  # fmt: skip
    app = DedicatedFile(fid=0x1001, name=H("A000000632010105"), applet=Counter())
    mf.add_all(ddf, app)
    return CardOS(mf, atr=H("3B6D0000") + bytes(13), t0=t0, faults=faults, rng=_counter_rng())


SELECT_DDF = "00A404000F" + DDF_NAME.hex()


def test_card_os_is_a_simulated_card() -> None:
    card = make_card()
    assert isinstance(card, SimulatedCard)
    assert card.power_on() == card.atr == card.reset()


# ------------------------------------------------------------------ SELECT


def test_select_by_name_answers_fci_with_algorithm_flag() -> None:
    r = tx(make_card(), SELECT_DDF)
    assert r.sw == 0x9000
    assert r.data == H("6F19840F") + DDF_NAME + H("A5069F0C03860101")


@pytest.mark.parametrize(
    "apdus",
    [
        ["00A4000002DDF1", "00A4000002EF05"],
        ["00A4010002DDF1", "00A4020002EF05"],
        ["00A40800 04 DDF1EF05"],
        ["00A40800 06 3F00DDF1EF05"],
        ["00A4000002DDF1", "00A40900 02 EF05"],
        ["00A4040007 7378312E73682E", "00A4020002EF05"],  # partial DF name
    ],
)
def test_select_by_fid_path_and_partial_name(apdus: list[str]) -> None:
    card = make_card()
    for apdu in apdus:
        assert tx(card, apdu).sw == 0x9000
    assert tx(card, "00B2010400").data == REC1


def test_select_errors() -> None:
    card = make_card()
    assert tx(card, "00A4000002EEEE").sw == 0x6A82
    assert tx(card, "00A4040005 0102030405").sw == 0x6A82
    assert tx(card, "00A4050002DDF1").sw == 0x6A86
    assert tx(card, "00A4001002DDF1").sw == 0x6A86
    assert tx(card, "00A400000301 0203").sw == 0x6700
    assert tx(card, "00A4080003 DDF1EF").sw == 0x6700
    assert tx(card, "00A4030000").sw == 0x6A82  # MF has no parent
    assert tx(card, "00A4000002DDF1").sw == 0x9000
    assert tx(card, "00A4030000").data.startswith(H("6F04830 23F00".replace(" ", "")))


def test_select_p2_0c_returns_no_data() -> None:
    assert tx(make_card(), "00A4040C0F" + DDF_NAME.hex()) == Response(b"", 0x9000)


def test_blocked_df_select_6a81_and_current_9303() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    card.security.current_df.blocked = True  # changed outside execute: seen at once
    assert tx(card, "00B2010400").sw == 0x9303
    tx(card, "00A40000023F00")
    assert tx(card, SELECT_DDF).sw == 0x6A81


# ------------------------------------------------------------------ READ RECORD / BINARY


def test_read_record_all_p2_modes() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2072C00").sw == 0x6A83  # SFI 5 record 7 does not exist here
    assert tx(card, "00B2012C00").data == REC1  # SFI form (reference §C1.3)
    assert tx(card, "00B2030400").data == H("0304332E3030")  # record number, current EF
    assert tx(card, "00B2000400").data == H("0304332E3030")  # 00 = current record
    assert tx(card, "00B2020000").data == H("020133")  # by record identifier (tag)
    assert tx(card, "00B2080000").sw == 0x6A83
    assert tx(card, "00B2012D00").sw == 0x6A86  # mode 5 unsupported
    assert tx(card, "00B201FC00").sw == 0x6A86  # SFI 31
    assert tx(card, "00B2015C00").sw == 0x6A82  # SFI 11 absent
    assert tx(card, "00B200AC00").sw == 0x6981  # SFI 0x15 is transparent


def test_read_record_without_current_ef() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2010400").sw == 0x6986


def test_wrong_le_gets_6cxx_and_le_00_any_length() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2012C10").sw == 0x6C12
    assert tx(card, "00B2012C14").sw == 0x6C12
    assert tx(card, "00B2012C12").data == REC1
    assert tx(card, "00B2012C").data == REC1  # case 1 in T=1: data anyway


def test_read_binary_sfi_offset_and_errors() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B0950000").data == bytes(range(30))
    assert tx(card, "00B0950A04").data == bytes(range(10, 14))
    assert tx(card, "00B0951F00").sw == 0x6B00
    assert tx(card, "00B0000200").data == bytes(range(2, 30))  # current EF = 0015
    assert tx(card, "00B0C50000").sw == 0x6A86  # bits 7-6 of P1 must be 0
    assert tx(card, "00B0850000").sw == 0x6981  # SFI 5 is a record file
    r = tx(card, "00B0960000")  # a 300-byte file: one read gives at most 256 bytes
    assert r == Response(bytes(256), 0x9000)
    assert tx(card, "00B0010000") == Response(bytes(44), 0x9000)  # offset 256


# ------------------------------------------------------------------ T=0


def test_t0_case4_answers_61xx_and_get_response() -> None:
    card = make_card(t0=True)
    r = tx(card, SELECT_DDF)  # case 3 with an FCI
    assert r == Response(b"", 0x611B)
    assert tx(card, "00C0000020").sw == 0x6C1B  # more than waits: 6C with the real length
    r = tx(card, "00C000001B")
    assert r.sw == 0x9000 and r.data.startswith(H("6F19840F"))
    assert tx(card, "00C000001B").sw == 0x6985  # nothing pending any more


def test_t0_get_response_in_chunks_and_cleared_by_other_command() -> None:
    card = make_card(t0=True)
    tx(card, SELECT_DDF)
    first = tx(card, "00C0000010")
    assert first.sw == 0x610B and len(first.data) == 0x10
    assert tx(card, "00C000000B").sw == 0x9000
    tx(card, SELECT_DDF)
    tx(card, "00B2012C12")  # any other command drops the pending answer
    assert tx(card, "00C000001B").sw == 0x6985


def test_t0_case2_needs_exact_le() -> None:
    card = make_card(t0=True)
    tx(card, "00A4040C0F" + DDF_NAME.hex())
    assert tx(card, "00B2012C00").sw == 0x6C12  # Le 00 = 256 in T=0
    assert tx(card, "00B2012C12").data == REC1


# ------------------------------------------------------------------ errors never raise


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("", 0x6700),
        ("00", 0x6700),
        ("00B201", 0x6700),
        ("00B2010405AA", 0x6700),  # Lc says 5, 1 byte follows
        ("00CA000000", 0x6D00),
        ("80B2010400", 0x6E00),  # READ RECORD exists, not with CLA 80
        ("FFB2010400", 0x6E00),
        ("0060000000", 0x6D00),
        ("00C0000000", 0x6985),
        ("00C0010000", 0x6985),
    ],
)
def test_malformed_and_unknown_commands(apdu: str, sw: int) -> None:
    assert tx(make_card(), apdu).sw == sw


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6))
def test_arbitrary_bytes_always_get_a_status_word(apdus: list[bytes]) -> None:
    card = make_card()
    counter = card.mf.children[1]
    assert isinstance(counter, DedicatedFile) and isinstance(counter.applet, Counter)
    for apdu in apdus:
        raw = card.execute(apdu)
        assert len(raw) >= 2
        assert raw[-2:] != b"\x6f\x00"  # a handler bug would show as 6F00
    # Random bytes cannot commit without a well-formed 80 10 after selecting the applet.
    if not any(a[:2] == b"\x80\x10" for a in apdus):
        assert counter.applet.value == 0


# ------------------------------------------------------------------ access conditions


def test_pin_access_verify_change_and_block() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2013C00").sw == 0x6982
    assert tx(card, "00200000").sw == 0x63C3
    assert tx(card, "0020000003123457").sw == 0x63C2
    assert tx(card, "0020000003123456").sw == 0x9000
    assert card.security.pin_initial  # the issuer's initial PIN (SDK reports -35)
    assert tx(card, "00B2013C00").data == H("0701FF")
    assert tx(card, "00200000").sw == 0x9000
    # back to the initial PIN is refused (-36); a new one works and clears the flag
    assert tx(card, "805E0100 07 123456 FF 123456").sw == 0x6985
    assert tx(card, "805E0100 07 123456 FF 654321").sw == 0x9000
    assert not card.security.pin_initial
    assert tx(card, "805E0100 07 123456 FF 111111").sw == 0x63C2
    assert tx(card, "805E0100 06 123456 654321").sw == 0x6A80
    for sw in (0x63C1, 0x63C0):
        assert tx(card, "0020000003999999").sw == sw
    assert tx(card, "0020000003654321").sw == 0x6983
    assert tx(card, "00200000").sw == 0x6983


def test_pin_status_lost_on_power_and_on_leaving_the_df() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    tx(card, "0020000003123456")
    tx(card, "00A4000002EF07")
    assert tx(card, "00B2010400").sw == 0x9000
    tx(card, "00A40000023F00")
    tx(card, SELECT_DDF)
    assert tx(card, "00B2013C00").sw == 0x6982
    tx(card, "0020000003123456")
    card.power_off()
    card.power_on()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2013C00").sw == 0x6982


def test_verify_parameter_errors() -> None:
    card = make_card()
    assert tx(card, "0020000003123456").sw == 0x6A88  # no PIN at the MF
    tx(card, SELECT_DDF)
    assert tx(card, "0020000103123456").sw == 0x6A86
    assert tx(card, "00200000021A").sw == 0x6700
    assert tx(card, "0020000003ABCDEF").sw == 0x6700


def test_get_challenge_lengths() -> None:
    card = make_card()
    assert tx(card, "0084000004").data == H("00000001")
    assert tx(card, "0084000008").data == H("0000000000000002")
    assert len(tx(card, "0084000010").data) == 16
    assert tx(card, "0084000005").sw == 0x6700
    assert tx(card, "0084000100").sw == 0x6A86


def _sm_update(card: CardOS, header: str, data: bytes, key: bytes = MAC_KEY) -> Response:
    challenge = tx(card, "0084000008").data
    hdr = H(header) + bytes([len(data) + 4])
    mac = sm_mac(key, challenge, hdr + data, 0x01)
    return tx(card, (hdr + data + mac).hex())


def test_secure_messaging_update_record() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00DC022C 03 020132").sw == 0x6982  # plain write of a MAC file
    assert _sm_update(card, "04DC022C", H("020132")).sw == 0x9000
    assert tx(card, "00B2022C00").data == H("020132")
    assert _sm_update(card, "04DC022C", H("020139"), key=bytes(16)).sw == 0x6988
    assert tx(card, "00B2022C00").data == H("020132")
    assert tx(card, "04DC022C 07 020139 01020304").sw == 0x6984  # no challenge
    # the challenge is single use
    challenge = tx(card, "0084000008").data
    hdr = H("84DC022C07")
    mac = sm_mac(MAC_KEY, challenge, hdr + H("020135"), 0x01)
    assert tx(card, (hdr + H("020135") + mac).hex()).sw == 0x9000
    assert tx(card, (hdr + H("020135") + mac).hex()).sw == 0x6984
    tx(card, "0084000008")
    assert tx(card, "04DC022C 03 020139").sw == 0x6988  # shorter than a MAC


def test_external_auth_gates_a_file_and_locks() -> None:
    from sscard.crypto.ssse import external_auth

    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00B2013400").sw == 0x6982
    assert tx(card, "0082000A10" + "00" * 16).sw == 0x6984  # no challenge yet
    challenge = tx(card, "0084000008").data
    src = H("0102030405060708")
    e8 = external_auth(MAC_KEY, challenge, src, 0x01)
    assert tx(card, "0082000A10" + (e8 + src).hex()).sw == 0x9000
    assert tx(card, "00B2013400").data == H("0802AAAA")
    # wrong cryptograms count down, then lock
    for sw in (0x63C2, 0x63C1, 0x63C0):
        tx(card, "0084000008")
        assert tx(card, "0082000A10" + "00" * 16).sw == sw
    tx(card, "0084000008")
    assert tx(card, "0082000A10" + "00" * 16).sw == 0x6983
    assert tx(card, "0082000B10" + "00" * 16).sw == 0x6A88


def test_update_record_structures() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    assert tx(card, "00DC0144 03 222222").sw == 0x9000  # linear fixed, SFI 8
    assert tx(card, "00DC0144 02 2222").sw == 0x6700  # wrong size
    assert tx(card, "00B2014400").data == H("222222")
    assert tx(card, "00DC0344 03 222222").sw == 0x6A83
    for rec in ("0001", "0002", "0003"):
        assert tx(card, "00E20048 02" + rec).sw == 0x9000  # cyclic SFI 9
    assert tx(card, "00B2014C00").data == H("0003")  # record 1 = newest
    assert tx(card, "00B2024C00").data == H("0002")
    assert tx(card, "00B2034C00").sw == 0x6A83  # oldest dropped
    assert tx(card, "00D6000302 FFFF").sw == 0x6981  # current EF is the cyclic EF09
    tx(card, "00A4020002 0015")
    assert tx(card, "00D6001C03 FFFFFF").sw == 0x6700
    assert tx(card, "00D6001C02 FFFF").sw == 0x9000
    assert tx(card, "00B0951C02").data == H("FFFF")


# ------------------------------------------------------------------ commit, tearing


def test_reads_see_every_commit() -> None:
    card = make_card()
    tx(card, "00A4040008A000000632010105")
    assert tx(card, "8012000002").data == H("0000")
    assert tx(card, "8012000002").data == H("0000")
    assert tx(card, "8010000002").data == H("0001")
    assert tx(card, "8012000002").data == H("0001")
    assert card.commits == 1


def test_read_record_follows_current_ef_changes() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    tx(card, "00A4020002EF05")
    assert tx(card, "00B2010400").data == REC1
    tx(card, "00B2014400")  # SFI 8 becomes the current EF
    assert tx(card, "00B2010400").data == H("000000")
    tx(card, "00B2012C00")
    assert tx(card, "00B2010400").data == REC1


@pytest.mark.parametrize("point", [TearPoint.BEFORE_COMMIT, TearPoint.AFTER_COMMIT])
def test_tear_before_or_after_commit(point: TearPoint) -> None:
    card = make_card()
    tx(card, "00A4040008A000000632010105")
    card.faults.tear_on(ins_is(0x10, 0x80), point)
    with pytest.raises(CardTorn):
        card.execute(H("8010000002"))
    assert card.torn
    with pytest.raises(CardTorn):
        card.execute(H("8012000002"))
    card.power_on()
    assert not card.torn
    tx(card, "00A4040008A000000632010105")
    expected = H("0001") if point is TearPoint.AFTER_COMMIT else H("0000")
    assert tx(card, "8012000002").data == expected


def test_tear_nth_apdu_and_wrong_pin_is_still_counted() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    card.faults.arm(Tear(TearPoint.AFTER_COMMIT, nth=2))
    assert tx(card, "0020000003999999").sw == 0x63C2  # 1st: not torn
    with pytest.raises(CardTorn):
        card.execute(H("0020000003999999"))  # 2nd: counter spent, answer lost
    card.power_on()
    tx(card, SELECT_DDF)
    assert tx(card, "00200000").sw == 0x63C1


def test_tear_before_commit_keeps_pin_tries() -> None:
    card = make_card()
    tx(card, SELECT_DDF)
    card.faults.tear_after(1, TearPoint.BEFORE_COMMIT)
    with pytest.raises(CardTorn):
        card.execute(H("0020000003999999"))
    card.reset()
    tx(card, SELECT_DDF)
    assert tx(card, "00200000").sw == 0x63C3


def test_slow_card_latency() -> None:
    import time

    card = make_card(faults=Faults(latency=0.02))
    start = time.perf_counter()
    for _ in range(3):
        tx(card, "00A40000023F00")
    assert time.perf_counter() - start >= 0.06


def test_echo_card_baseline() -> None:
    assert EchoCard().execute(H("0001000002AABB")) == H("AABB9000")


def test_a_powered_off_card_answers_nothing() -> None:
    """No APDU is processed between power off and power on (a mute card)."""
    from sscard.card_interface import CardNotPowered, CardTorn

    card = make_card()
    assert tx(card, SELECT_DDF).sw == 0x9000
    card.power_off()
    with pytest.raises(CardNotPowered) as info:
        card.execute(bytes.fromhex(SELECT_DDF))
    assert isinstance(info.value, CardTorn) and " / " in info.value.bilingual()
    card.power_on()
    assert tx(card, SELECT_DDF).sw == 0x9000
