"""BER-TLV, simple record TLV and the cn/an/BCD field rules."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.apdu import TlvError
from sscard.apdu.codec import (
    an_decode,
    an_encode,
    bcd_date,
    bcd_datetime,
    cn_decode,
    cn_encode,
    from_bcd,
    parse_bcd_date,
    parse_bcd_datetime,
    to_bcd,
)
from sscard.apdu.tlv import (
    Tlv,
    ber_decode,
    ber_encode,
    ber_find,
    encode_length,
    simple_tlv_decode,
    simple_tlv_encode,
)

# The T-Union SELECT answer of a real simulator (reference §P1.2), SW stripped.
EP_FCI = bytes.fromhex(
    "6F318408A000000632010105A5259F0801029F0C1E01011000FFFFFFFF0201031051700101709079842019080620401231"
    "0000"
)


def test_fci_with_multibyte_tags_and_path_lookup():
    objs = ber_decode(EP_FCI)
    assert [o.tag for o in objs] == [0x6F]
    assert ber_find(objs, 0x6F, 0x84).value == bytes.fromhex("A000000632010105")  # type: ignore[union-attr]
    ef15 = ber_find(objs, 0x6F, 0xA5, 0x9F0C)
    assert ef15 is not None and len(ef15.value) == 30
    assert ef15.value[:8] == bytes.fromhex("01011000FFFFFFFF")
    assert objs[0].find(0xA5, 0x9F08).value == b"\x02"  # type: ignore[union-attr]
    assert ber_find(objs, 0x6F, 0x99) is None
    assert ber_encode(objs) == EP_FCI


@pytest.mark.parametrize(
    ("n", "encoded"), [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100")]
)
def test_length_forms(n: int, encoded: str):
    assert encode_length(n).hex().upper() == encoded
    obj = Tlv(0x04, bytes(n))
    assert ber_decode(obj.encode()) == [obj]


def test_malformed_tag_numbers_are_refused():
    with pytest.raises(TlvError):
        Tlv(0x9F7F1A, b"").encode()  # 7F ends the tag before 1A
    with pytest.raises(TlvError):
        Tlv(0x9F, b"").encode()  # first byte announces more tag bytes


def test_length_too_big():
    with pytest.raises(TlvError):
        encode_length(0x10000)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("9F", "multi-byte tag truncated at offset 0"),
        ("84", "length missing at offset 1"),
        ("8405A0000006", "length 5 runs past the end"),
        ("8483000001", "length form 83"),
        ("848200", "length bytes truncated"),
        ("6F038402A0", "runs past the end"),
        ("9FFFFFFFFF01", "longer than 4 bytes"),
    ],
)
def test_bad_tlv_says_where(raw: str, fragment: str):
    with pytest.raises(TlvError) as exc:
        ber_decode(bytes.fromhex(raw))
    assert fragment in exc.value.message_en


def test_simple_record_tlv_vectors():
    # EF05 record 01 and 03 answers (reference §C6)
    tag, value = simple_tlv_decode(bytes.fromhex("0110330300D15600000599110145FFFFFFFF"))
    assert tag == 0x01 and value.hex().upper() == "330300D15600000599110145FFFFFFFF"
    assert simple_tlv_decode(bytes.fromhex("0304332E3030")) == (0x03, b"3.00")
    assert simple_tlv_encode(0x03, b"3.00") == bytes.fromhex("0304332E3030")
    with pytest.raises(TlvError, match="runs past"):
        simple_tlv_decode(bytes.fromhex("03053300"))
    with pytest.raises(TlvError, match="after the value"):
        simple_tlv_decode(bytes.fromhex("030133FF"))
    with pytest.raises(TlvError):
        simple_tlv_decode(b"\x03")


def test_cn_an_padding_rules():
    assert cn_encode("20211203", 4) == bytes.fromhex("20211203")
    assert cn_encode("330300", 4) == bytes.fromhex("330300FF")
    assert cn_decode(bytes.fromhex("330300FF")) == "330300"
    assert an_encode("X00000019", 9) == b"X00000019"
    assert an_encode("张三", 30) == "张三".encode("gbk") + bytes(26)
    assert an_decode("张三".encode("gbk") + bytes(26)) == "张三"
    with pytest.raises(TlvError):
        cn_encode("123456789", 4)
    with pytest.raises(TlvError):
        an_encode("ABCDEFGHIJ", 9)
    with pytest.raises(TlvError):
        from_bcd(bytes.fromhex("12F3"))  # digit after padding
    with pytest.raises(TlvError):
        from_bcd(bytes.fromhex("1A"))
    with pytest.raises(TlvError):
        an_decode(b"\xff\xff\x81")


def test_dates():
    assert bcd_date(date(2031, 12, 2)) == bytes.fromhex("20311202")
    assert parse_bcd_date(bytes.fromhex("20311202")) == date(2031, 12, 2)
    assert bcd_datetime(datetime(2011, 12, 21, 21, 48, 22)) == bytes.fromhex("20111221214822")
    assert parse_bcd_datetime(bytes.fromhex("20111221214822")) == datetime(2011, 12, 21, 21, 48, 22)
    with pytest.raises(TlvError):
        parse_bcd_date(bytes.fromhex("20231340"))
    with pytest.raises(TlvError):
        to_bcd("12a4")


# --- properties ------------------------------------------------------------

primitive_tags = st.sampled_from([0x4F, 0x50, 0x84, 0x87, 0x9F08, 0x9F0C, 0x5F2D, 0xDF8101])
constructed_tags = st.sampled_from([0x6F, 0xA5, 0x70, 0xBF0C, 0x61])

tlvs = st.recursive(
    st.builds(Tlv, primitive_tags, st.binary(max_size=300)),
    lambda children: st.builds(
        lambda tag, kids: Tlv.of(tag, *kids), constructed_tags, st.lists(children, max_size=4)
    ),
    max_leaves=10,
)


@given(st.lists(tlvs, max_size=5))
def test_ber_round_trip(objs: list[Tlv]):
    assert ber_decode(ber_encode(objs)) == objs


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_ber(raw: bytes):
    try:
        objs = ber_decode(raw)
    except TlvError as exc:
        assert exc.message_en and exc.message_zh
    else:
        for o in objs:
            assert isinstance(o, Tlv)


@given(st.integers(1, 0xFE), st.binary(max_size=254))
def test_simple_tlv_round_trip(tag: int, value: bytes):
    assert simple_tlv_decode(simple_tlv_encode(tag, value)) == (tag, value)


@given(st.text(alphabet="0123456789", max_size=24))
def test_cn_round_trip(digits: str):
    length = (len(digits) + 1) // 2 + 1
    assert cn_decode(cn_encode(digits, length)) == digits


@given(st.binary(max_size=64))
def test_arbitrary_bcd_never_crashes(raw: bytes):
    try:
        text = from_bcd(raw)
    except TlvError:
        pass
    else:
        assert text.isdigit() or text == ""
