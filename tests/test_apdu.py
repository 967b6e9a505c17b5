"""Command/Response codec: the four cases, extended lengths, status words, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.apdu import ApduFormatError, CardError, Command, Response, errors, sw_text

SELECT_EP = bytes.fromhex("00A4040008A00000063201010500")


@pytest.mark.parametrize(
    ("raw", "case", "data", "le", "extended"),
    [
        ("00A40400", 1, "", None, False),
        ("0084000008", 2, "", 8, False),
        ("00B0950000", 2, "", 256, False),
        ("00A4000002EF05", 3, "EF05", None, False),
        ("00A4040008A00000063201010500", 4, "A000000632010105", 256, False),
        ("00B00000000100", 2, "", 256, True),
        ("00B00000000000", 2, "", 65536, True),
        ("00D60000000003010203", 3, "010203", None, True),
        ("00D600000000030102030000", 4, "010203", 65536, True),
        ("00D600000000030102030102", 4, "010203", 258, True),
    ],
)
def test_parse_and_build_all_cases(raw: str, case: int, data: str, le: int | None, extended: bool):
    cmd = Command.parse(bytes.fromhex(raw))
    assert cmd.case == case
    assert cmd.data == bytes.fromhex(data)
    assert cmd.le == le
    assert cmd.is_extended == extended
    assert bytes(cmd).hex().upper() == raw


def test_le_256_and_65536_encodings():
    assert bytes(Command(0x00, 0xB0, le=256)) == bytes.fromhex("00B0000000")
    assert bytes(Command(0x00, 0xB0, le=65536)) == bytes.fromhex("00B00000000000")
    # data forces extended, Le 65536 -> 0000 without the extra 00
    big = Command(0x00, 0xD6, data=bytes(300), le=65536)
    assert bytes(big)[4:7] == bytes.fromhex("00012C") and bytes(big)[-2:] == b"\x00\x00"


def test_readable_repr():
    assert repr(Command.parse(SELECT_EP)) == "SELECT 00A4040008 A000000632010105 Le=00"
    assert repr(Command(0x80, 0x50, 0x03, 0x02, bytes(11), 15)).startswith(
        "INITIALIZE FOR CAPP PURCHASE 805003020B"
    )
    assert Command(0x80, 0xDC, 0x01, 0xD0, b"\x27").name == "UPDATE CAPP DATA CACHE"
    assert Command(0x00, 0xDC, 0x01, 0x04, b"\x27").name == "UPDATE RECORD"
    assert Command(0x80, 0x54, 0x01, 0x00).name == "DEBIT FOR PURCHASE"


def test_secure_messaging_bit():
    assert Command(0x84, 0xDC).secure_messaging
    assert Command(0x04, 0xD6).secure_messaging
    assert Command(0x0C, 0xB0).secure_messaging
    assert not Command(0x00, 0xB0).secure_messaging
    assert not Command(0x80, 0x50, 1, 2).secure_messaging


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("00A4", "at least 4"),
        ("00A4040008A000", "Lc=8 but 2 bytes"),
        ("00A4040000000201", "extended Lc=2 but 1 bytes"),
        ("00A404000000", "truncated at byte 5"),
        ("00A4040000000001", "extended Lc of 0"),
    ],
)
def test_bad_commands_say_what_is_wrong(raw: str, fragment: str):
    with pytest.raises(ApduFormatError) as exc:
        Command.parse(bytes.fromhex(raw))
    assert fragment in exc.value.message_en
    assert exc.value.message_zh


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"cla": 0xFF, "ins": 0xA4}, "PPS"),
        ({"cla": 0x00, "ins": 0x61}, "procedure byte"),
        ({"cla": 0x00, "ins": 0x9A}, "procedure byte"),
        ({"cla": 0x100, "ins": 0xA4}, "not a byte"),
        ({"cla": 0x00, "ins": 0xA4, "p1": -1}, "not a byte"),
        ({"cla": 0x00, "ins": 0xD6, "data": bytes(65536)}, "exceeds 65535"),
        ({"cla": 0x00, "ins": 0xB0, "le": 0}, "Le 0"),
        ({"cla": 0x00, "ins": 0xB0, "le": 65537}, "Le 65537"),
    ],
)
def test_header_checks(kwargs: dict[str, object], fragment: str):
    with pytest.raises(ApduFormatError) as exc:
        Command(**kwargs)  # type: ignore[arg-type]
    assert fragment in exc.value.message_en


def test_response_basics():
    r = Response.parse(bytes.fromhex("0102039000"))
    assert (r.data, r.sw, r.sw1, r.sw2, r.ok) == (b"\x01\x02\x03", 0x9000, 0x90, 0x00, True)
    assert r.check() is r
    assert bytes(r) == bytes.fromhex("0102039000")
    with pytest.raises(ApduFormatError):
        Response.parse(b"\x90")


@pytest.mark.parametrize(
    ("sw", "ins", "cls", "code"),
    [
        (0x63C2, 0x20, errors.PinIncorrect, -51),
        (0x63C1, 0x82, errors.AuthenticationFailed, -(0x63C1)),
        (0x6983, 0x20, errors.PinBlocked, -52),
        (0x6983, 0x82, errors.AuthMethodBlocked, -27011),
        (0x6982, None, errors.SecurityNotSatisfied, -27010),
        (0x6984, None, errors.ReferenceDataInvalid, -27012),
        (0x6985, None, errors.ConditionsNotSatisfied, -27013),
        (0x6988, None, errors.SmDataInvalid, -27016),
        (0x6A82, None, errors.FileNotFound, -27266),
        (0x6A83, None, errors.RecordNotFound, -27267),
        (0x6A88, None, errors.KeyNotFound, -27272),
        (0x9302, None, errors.MacInvalid, -37634),
        (0x9303, None, errors.ApplicationBlocked, -37635),
        (0x9401, None, errors.InsufficientBalance, -37889),
        (0x9403, None, errors.KeyIndexNotSupported, -37891),
        (0x9406, None, errors.MacUnavailable, -37894),
        (0x6700, None, errors.WrongLength, -26368),
        (0x6D00, None, errors.InsNotSupported, -27904),
        (0x6E00, None, errors.ClaNotSupported, -28160),
        (0x6A86, None, errors.WrongParameters, -27270),
        (0x6110, None, errors.MoreData, -(0x6110)),
        (0x6C08, None, errors.WrongLe, -(0x6C08)),
        (0x6901, None, errors.InvalidState, -26881),
        (0x6981, None, errors.FileStructureIncompatible, -27009),
        (0x6A80, None, errors.WrongData, -27264),
        (0x6A81, None, errors.FunctionNotSupported, -27265),
        (0x6F42, None, errors.UnknownStatus, -(0x6F42)),
    ],
)
def test_status_words_map_to_typed_errors(sw: int, ins: int | None, cls: type, code: int):
    with pytest.raises(cls) as exc:
        Response(b"", sw).check(ins)
    err = exc.value
    assert isinstance(err, CardError)
    assert err.sw == sw
    assert err.code == code
    assert err.message_en and err.message_zh
    assert f"{sw:04X}" in err.bilingual() or isinstance(err, errors.VerificationFailed)


# Every word of reference §C2.1 and reference §P2.1 (families by one member).
REFERENCE_SWS = [
    0x6110, 0x6C10, 0x6700, 0x6A86, 0x6E00, 0x6901, 0x6981, 0x6982, 0x6983, 0x6984, 0x6985,
    0x6988, 0x6A80, 0x6A81, 0x6A82, 0x6A83, 0x6A88, 0x63C0, 0x63C1, 0x63C2, 0x63C5, 0x9302,
    0x9303, 0x9401, 0x9403, 0x9406,
]  # fmt: skip


@pytest.mark.parametrize("sw", REFERENCE_SWS, ids=lambda sw: f"{sw:04X}")
def test_every_reference_status_word_has_a_typed_bilingual_error(sw: int):
    err = errors.error_for_sw(sw)
    assert type(err) is not errors.UnknownStatus
    assert err.sw == sw and err.code == -sw
    en, zh = sw_text(sw)
    assert en != "unknown status word" and en.isascii()
    assert any("\u4e00" <= c <= "\u9fff" for c in zh)  # Chinese text, not a copy of the English
    assert err.message_en.endswith(en) and err.message_zh.endswith(zh)


def test_pin_incorrect_message_matches_issue():
    err = errors.PinIncorrect(2)
    assert err.bilingual() == "PIN wrong, 2 tries left / 密码错误，还可尝试2次"
    assert err.tries_left == 2 and err.sw == 0x63C2
    assert errors.error_for_sw(0x63C0, 0x20).tries_left == 0  # type: ignore[attr-defined]


def test_family_details():
    assert errors.error_for_sw(0x6100).available == 256  # type: ignore[attr-defined]
    assert errors.error_for_sw(0x6C1E).correct_le == 0x1E  # type: ignore[attr-defined]
    assert sw_text(0x9000) == ("OK", "成功")
    assert "3 tries" in sw_text(0x63C3)[0]


def test_every_table_entry_has_both_languages():
    for entry in errors.STATUS_WORDS:
        assert entry.en and entry.zh
        assert any("\u4e00" <= c <= "\u9fff" for c in entry.zh), entry


# --- properties ------------------------------------------------------------

commands = st.builds(
    Command,
    cla=st.integers(0, 0xFE),
    ins=st.integers(0, 0xFF).filter(lambda i: i & 0xF0 not in (0x60, 0x90)),
    p1=st.integers(0, 0xFF),
    p2=st.integers(0, 0xFF),
    data=st.one_of(st.binary(max_size=300), st.binary(min_size=256, max_size=1000)),
    le=st.one_of(st.none(), st.integers(1, 65536)),
    extended=st.booleans(),
)


@given(commands)
def test_command_round_trip(cmd: Command):
    again = Command.parse(bytes(cmd))
    assert (again.cla, again.ins, again.p1, again.p2, again.data, again.le) == (
        cmd.cla,
        cmd.ins,
        cmd.p1,
        cmd.p2,
        cmd.data,
        cmd.le,
    )
    assert bytes(again) == bytes(cmd)


@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int):
    r = Response(data, sw)
    assert Response.parse(bytes(r)) == r


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parsers(raw: bytes):
    try:
        cmd = Command.parse(raw)
    except ApduFormatError:
        pass
    else:
        assert bytes(Command.parse(bytes(cmd))) == bytes(cmd)
    try:
        Response.parse(raw)
    except ApduFormatError:
        assert len(raw) < 2
