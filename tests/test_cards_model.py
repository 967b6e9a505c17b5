"""SSN check digit, regions, masking, SSSE record sets, identifiers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sscard.cards import ids
from sscard.cards.layout import LayoutError
from sscard.cards.privacy import mask_card_number, mask_name, mask_secret, mask_ssn
from sscard.cards.purse import Ef0015, EpFci
from sscard.cards.regions import UnknownRegion, cities_of, province_by_key, region_of
from sscard.cards.ssn import (
    InvalidSsn,
    birth_date_of,
    check_digit,
    is_valid_ssn,
    make_ssn,
    sex_of,
    validate_ssn,
)
from sscard.cards.ssse import CardIdCode, Ef05, Ef06, SsseFci, item_by_record, item_by_tag

H = bytes.fromhex

# ----------------------------------------------------------------------------- SSN


@pytest.mark.parametrize(
    ("ssn", "birth", "sex"),
    [
        ("11010519491231002X", date(1949, 12, 31), "2"),  # GB 11643-1999 example 1
        ("440524188001010014", date(1880, 1, 1), "1"),  # GB 11643-1999 example 2
    ],
)
def test_gb11643_known_answers(ssn: str, birth: date, sex: str) -> None:
    assert check_digit(ssn[:17]) == ssn[17]
    assert validate_ssn(ssn.lower()) == ssn
    assert birth_date_of(ssn) == birth
    assert sex_of(ssn) == sex


@pytest.mark.parametrize(
    "bad",
    [
        "110105194912310021",  # wrong check digit
        "11010519491231002",  # 17 characters
        "11010519491331002X",  # month 13
        "1101051949123100XX",  # X inside the digits
        "１１010519491231002X",  # full-width digits
        "",
    ],
)
def test_invalid_ssns(bad: str) -> None:
    assert not is_valid_ssn(bad)
    with pytest.raises(InvalidSsn) as info:
        validate_ssn(bad)
    if bad:
        assert bad not in str(info.value)  # the number is never echoed


@given(
    region=st.sampled_from(["310115", "320100", "330300", "341600"]),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    seq=st.integers(0, 999),
)
def test_make_ssn_round_trip(region: str, birth: date, seq: int) -> None:
    ssn = make_ssn(region, birth, seq)
    assert is_valid_ssn(ssn)
    assert birth_date_of(ssn) == birth
    assert sex_of(ssn) == ("1" if seq % 2 else "2")
    # Any single-character change of the body breaks the check digit.
    i = seq % 17
    changed = ssn[:i] + str((int(ssn[i]) + 1) % 10) + ssn[i + 1 :]
    assert not is_valid_ssn(changed)


# ----------------------------------------------------------------------------- regions


def test_region_lookup() -> None:
    r = region_of("331100")
    assert (r.province.name_zh, r.city and r.city.name_en) == ("浙江省", "Lishui")
    assert r.name_en == "Lishui, Zhejiang"
    assert region_of("330102").city == region_of("330100").city  # district -> prefecture
    pudong = region_of("310115").city
    assert pudong is not None and pudong.name_zh == "浦东新区"
    assert region_of("339900").province_level and region_of("339900").city is None
    assert region_of("639900").province.name_en == "Qinghai"  # spec example card
    assert region_of("411600").province.name_zh == "河南省"
    for bad in ("990000", "33010", "33O100", ""):
        with pytest.raises(UnknownRegion):
            region_of(bad)


def test_delta_tables() -> None:
    counts = {k: len(cities_of(province_by_key(k))) for k in ("shanghai", "jiangsu", "zhejiang",
                                                              "anhui")}  # fmt: skip
    assert counts == {"shanghai": 15, "jiangsu": 13, "zhejiang": 11, "anhui": 16}
    assert province_by_key("Anhui").code == "340000"
    with pytest.raises(UnknownRegion):
        province_by_key("beijing")


# ----------------------------------------------------------------------------- privacy


def test_masks() -> None:
    assert mask_name("张小三") == "张*三"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_name("张") == "*"
    assert mask_name("") == ""
    assert mask_ssn("340104199001011234") == "3401**********1234"
    assert mask_card_number("X00000019") == "X0****019"
    assert mask_secret("123456") == "<6 chars redacted>"
    assert "123456" not in mask_secret(b"123456")


# ----------------------------------------------------------------------------- SSSE


def _ef05() -> Ef05:
    return Ef05(
        card_id=CardIdCode.from_hex("330300D15600000599110145FFFFFFFF"),
        card_type="3",
        spec_version="3.00",
        init_org="33030000000001",
        issue_date=date(2021, 12, 3),
        expiry_date=date(2031, 12, 2),
        card_number="X00000019",
    )


def test_ef05_records_and_tags() -> None:
    ef05 = _ef05()
    recs = ef05.records()
    assert recs[1] == H("0110330300D15600000599110145FFFFFFFF")  # reference §C1.3
    assert recs[3] == H("0304332E3030")  # "3.00"
    assert sorted(recs) == list(range(1, 8))
    by_tag = {raw[0]: raw for raw in recs.values()}
    assert Ef05.from_records(by_tag) == ef05
    assert Ef05.from_tlvs(reversed(list(recs.values()))) == ef05
    assert ef05.generation == 3
    assert ef05.expired(date(2031, 12, 3)) and not ef05.expired(date(2031, 12, 2))
    cid = ef05.card_id
    assert cid.level1_factor == H("330300D156000005") and cid.level2_factor == H("99110145FFFFFFFF")
    city = cid.region_info().city
    assert cid.rid_ok and city is not None and city.name_en == "Wenzhou"


def test_ef06_tag_record_mapping_and_repr() -> None:
    ef06 = Ef06(
        ssn="11010519491231002X", name="买买提", name_ext="·艾力", sex="1", ethnicity="05",
        birthplace="650100", birth_date=date(1949, 12, 31),
    )  # fmt: skip
    recs = ef06.records()
    # PERSO writes rec 1/tag 08, 2/09, 4/0A, 5/0B, 7/0D (reference §C1.5).
    assert {n: r[0] for n, r in recs.items()} == {
        1: 0x08, 2: 0x09, 3: 0x4E, 4: 0x0A, 5: 0x0B, 6: 0x0C, 7: 0x0D
    }  # fmt: skip
    assert [len(recs[n]) - 2 for n in range(1, 8)] == [18, 30, 20, 1, 1, 3, 4]
    by_tag = {r[0]: r for r in recs.values()}
    assert Ef06.from_records(by_tag).full_name == "买买提·艾力"
    del by_tag[0x4E]  # 1st-gen cards have no name extension
    assert Ef06.from_records(by_tag).name_ext == ""
    del by_tag[0x08]
    with pytest.raises(LayoutError, match="record 08 missing"):
        Ef06.from_records(by_tag)
    assert "买" not in repr(ef06) and "1101" not in repr(ef06)
    assert item_by_record(0xEF06, 3).tag == 0x4E and item_by_tag(0xEF05, 7).length == 9


def test_ssse_item_checks_tag_and_length() -> None:
    item = item_by_tag(0xEF05, 0x01)
    with pytest.raises(LayoutError, match="tag 02"):
        item.decode(H("0210330300D15600000599110145FFFFFFFF"))
    with pytest.raises(LayoutError):
        item.decode(H("010F330300D15600000599110145FFFF"))  # card ID must be 16 B
    # Shorter an values are accepted (cards differ), longer are not.
    assert item_by_tag(0xEF05, 7).decode(b"\x07\x04X000") == "X000"
    with pytest.raises(LayoutError):
        item_by_tag(0xEF05, 7).decode(b"\x07\x0aX000000199")


def test_fci_builders() -> None:
    fci = SsseFci(algorithm=ids.AlgorithmFlag.SM4).encode()
    assert H("9F0C03860103") in fci and ids.SSSE_DDF_NAME in fci
    # A card that puts 9F0C directly under 6F still parses.
    alt = H("6F08 9F0C03860101 8400")
    assert SsseFci.decode(alt).algorithm == 1
    with pytest.raises(LayoutError):
        SsseFci.decode(H("6F03840100"))
    ep = EpFci(ef0015=Ef0015._test_vectors[0][1])
    assert ep.encode()[:2] == H("6F31")


def test_ids() -> None:
    gbk_name = "社会保障".encode("gbk")
    assert (b"sx1.sh." + gbk_name, b"PKI." + gbk_name) == (ids.SSSE_DDF_NAME, ids.PKI_DDF_NAME)
    assert ids.AppDf.DF04_MEDICAL.aid == H("D15600000503")
    assert [d.df_number for d in ids.AppDf] == list(range(1, 8))
    assert (int(ids.SsseKeyId.RKSSSE), int(ids.SsseKeyId.PUK)) == (0x0A, 0x06)
    assert len(ids.PPSE_NAME) == 14
