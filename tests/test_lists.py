"""Blacklist and trust list: file format, lookups, versions, 1 M entries."""

from __future__ import annotations

import random
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.services.lists import (
    Blacklist,
    BlacklistReason,
    ListError,
    ListFormatError,
    ListVersionError,
    TrustList,
)

ASN = "03105170010170907984"  # reference §P1.2 sample
CARD_ID = "330100D156000005011BA293AA4B9E55"  # reference §C1.4 sample

SAMPLE = f"""# sscard-blacklist/1 version=42 issued=2025-03-01
# lost and cancelled cards, Zhejiang and Shanghai
{ASN} 01
{CARD_ID} 04

330100:X00000019
310000:w49158758 02
03105170010170900001
"""


def write(tmp_path: Path, text: str, name: str = "list.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_blacklist(tmp_path: Path):
    bl = Blacklist.load(write(tmp_path, SAMPLE))
    assert (bl.version, bl.issued, len(bl)) == (42, date(2025, 3, 1), 5)
    assert bl.check_asn(ASN) is BlacklistReason.LOST
    assert bl.check_asn(bytes.fromhex(ASN)) is BlacklistReason.LOST
    assert bl.check_asn("03105170010170900001") is BlacklistReason.UNSPECIFIED
    assert bl.check_asn("03105170010170900001")  # a listed card is truthy whatever the reason
    assert bl.check_asn("03105170010170900002") is None
    assert bl.check_card_id(CARD_ID.lower()) is BlacklistReason.COUNTERFEIT
    assert bl.check_card_id(bytes.fromhex(CARD_ID)) is BlacklistReason.COUNTERFEIT
    assert bl.check_card_number("330100", "X00000019") is BlacklistReason.UNSPECIFIED
    assert bl.check_card_number("310000", "W49158758") is BlacklistReason.CANCELLED
    # Card numbers are unique only within their issuing region (Art. 7).
    assert bl.check_card_number("320100", "X00000019") is None
    # Wrong-size or malformed keys are simply not listed, never an IndexError.
    assert bl.check_asn("0310") is None and bl.check_asn(b"\x00" * 11) is None
    assert bl.check_asn("ZZ105170010170907984") is None
    assert bl.check_card_number("33010", "X00000019") is None
    assert "12333" in BlacklistReason.LOST.text_en and "挂失" in BlacklistReason.LOST.text_zh


def test_round_trip_through_lines(tmp_path: Path):
    bl = Blacklist.load(write(tmp_path, SAMPLE))
    again = Blacklist.parse(bl.lines())
    assert list(again.lines()) == list(bl.lines())
    assert again.check_card_number("310000", "W49158758") is BlacklistReason.CANCELLED


@given(
    listed=st.dictionaries(
        st.binary(min_size=10, max_size=10), st.sampled_from(list(BlacklistReason)), max_size=60
    ),
    probes=st.lists(st.binary(min_size=10, max_size=10), max_size=20),
)
def test_lookup_matches_a_dict(listed: dict[bytes, BlacklistReason], probes: list[bytes]):
    lines = ["# sscard-blacklist/1 version=1 issued=2025-01-01"]
    lines += [f"{k.hex()} {r.value:02X}" for k, r in listed.items()]
    bl = Blacklist.parse(lines)
    for key in [*listed, *probes]:
        assert bl.check_asn(key) == listed.get(key)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty"),
        ("0310517001017090798401\n", 1, "expected '# sscard-blacklist/1"),
        ("# sscard-trustlist/1 version=1 issued=2025-01-01\n", 1, "not a blacklist"),
        ("# sscard-blacklist/1 version=1 issued=2025-02-30\n", 1, "date"),
        (f"# sscard-blacklist/1 version=1 issued=2025-01-01\n{ASN}\n0310517001017090798\n", 3, ""),
        (f"# sscard-blacklist/1 version=1 issued=2025-01-01\n\n{ASN[:-1]}G\n", 3, ""),
        (f"# sscard-blacklist/1 version=1 issued=2025-01-01\n{ASN} 99\n", 2, "reason"),
        (f"# sscard-blacklist/1 version=1 issued=2025-01-01\n{ASN} 01 x\n", 2, ""),
        ("# sscard-blacklist/1 version=1 issued=2025-01-01\n33010A:X00000019\n", 2, ""),
        ("# sscard-blacklist/1 version=1 issued=2025-01-01\n330100:X0000001!\n", 2, ""),
    ],
)
def test_malformed_line_is_typed_with_line_number(
    tmp_path: Path, text: str, line: int, fragment: str
):
    with pytest.raises(ListFormatError) as err:
        Blacklist.load(write(tmp_path, text))
    assert err.value.line == line
    assert (
        err.value.message_en.startswith(f"line {line}: ") and f"第{line}行" in err.value.message_zh
    )
    assert fragment in err.value.message_en


def test_unreadable_files_are_typed(tmp_path: Path):
    with pytest.raises(ListError, match="cannot read"):
        Blacklist.load(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"# sscard-blacklist/1 version=1 issued=2025-01-01\n\xff\xfe\n")
    with pytest.raises(ListFormatError, match="UTF-8"):
        Blacklist.load(bad)


def test_version_rollback_refused_unless_forced(tmp_path: Path):
    current = Blacklist.load(write(tmp_path, SAMPLE))
    older = write(tmp_path, SAMPLE.replace("version=42", "version=41"), "old.txt")
    with pytest.raises(ListVersionError) as err:
        current.reload(older)
    assert (err.value.offered, err.value.current) == (41, 42)
    assert "41" in err.value.message_zh
    with pytest.raises(ListVersionError):
        Blacklist.load(older, current=42)
    assert current.reload(older, force=True).version == 41
    assert current.reload(write(tmp_path, SAMPLE, "same.txt")).version == 42
    newer = write(tmp_path, SAMPLE.replace("version=42", "version=43"), "new.txt")
    assert current.reload(newer).version == 43


def test_one_million_entries(tmp_path: Path):
    """Load + lookups with 1,000,000 ASNs (generated here); the budget is < 10 s in all."""
    t0 = time.perf_counter()
    rnd = random.Random(20251001)
    keys = [rnd.randbytes(10) for _ in range(1_000_000)]
    path = tmp_path / "big.txt"
    with open(path, "w", encoding="ascii") as f:
        f.write("# sscard-blacklist/1 version=7 issued=2025-03-01\n")
        f.writelines(
            k.hex().upper() + (" 01\n" if i % 4 == 0 else "\n") for i, k in enumerate(keys)
        )
    bl = Blacklist.load(path)
    assert len(bl) == 1_000_000
    for i in range(0, 1_000_000, 97):  # ~10,000 listed cards, with their reasons
        expected = BlacklistReason.LOST if i % 4 == 0 else BlacklistReason.UNSPECIFIED
        assert bl.check_asn(keys[i]) is expected
    listed = set(keys)
    absent = [k for k in (rnd.randbytes(10) for _ in range(10_000)) if k not in listed]
    assert all(bl.check_asn(k) is None for k in absent)
    assert bl.check_asn(min(keys)) and bl.check_asn(max(keys))  # both ends of the table
    assert bl.check_asn(b"\x00" * 10) is None and bl.check_asn(b"\xff" * 10) is None
    assert time.perf_counter() - t0 < 10


# --------------------------------------------------------------------------- trust list


def test_default_trust_list():
    trust = TrustList.default()
    for region in ("310115", "320500", "330100", "331100", "339900", "341800"):
        assert trust.trusts_region(region)
    assert not trust.trusts_region("110000") and not trust.trusts_region("6399")
    assert trust.trusts_card_id(CARD_ID)  # region 330100 from the card ID code
    assert not trust.trusts_card_id("639900D15600000500BF7C7A48FB4966")  # Qinghai
    assert not trust.trusts_card_id("not hex")
    issuer = bytes.fromhex("01011000FFFFFFFF")
    assert trust.trusts_purse(issuer, interoperable=True)  # national T-Union
    assert not trust.trusts_purse(issuer, interoperable=False)  # a local-only card elsewhere


def test_trust_list_file(tmp_path: Path):
    text = """# sscard-trustlist/1 version=3 issued=2025-03-01
# Hangzhou metro: local Hangzhou cards and the Zhejiang province
02021000FFFFFFFF
330100
"""
    trust = TrustList.load(write(tmp_path, text))
    assert trust.version == 3 and not trust.tunion
    assert trust.trusts_purse(bytes.fromhex("02021000FFFFFFFF"), interoperable=False)
    assert not trust.trusts_purse(bytes.fromhex("01011000FFFFFFFF"), interoperable=True)
    assert trust.trusts_region("330102") and not trust.trusts_region("330200")
    assert TrustList.parse(trust.lines()) == trust
    with pytest.raises(ListVersionError):
        trust.reload(write(tmp_path, text.replace("version=3", "version=2"), "old.txt"))
    with pytest.raises(ListFormatError) as err:
        TrustList.load(write(tmp_path, text + "tunion extra\n", "bad.txt"))
    assert err.value.line == 5
    with pytest.raises(ListFormatError) as err:
        TrustList.load(write(tmp_path, SAMPLE, "blacklist.txt"))
    assert err.value.line == 1 and "not a trustlist" in err.value.message_en
