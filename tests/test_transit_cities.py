"""T-Union city codes as outside readers decode them (reference §P5.8).

T-Union Master (SocialSisterYi/T-Union_Master, also in tkerby/flipperzero-firmware-
wPlugins) shows a card's issuing city by looking EF 0015 bytes 2-3 up in its
``resources/city_code.txt`` (GB/T 13497-1992), and a trip's city from the 1E
institution ID bytes 2-3. ``TUM_DELTA`` below is transcribed from that public file
(the lines of Beijing and the four delta provinces), not from sscard's data file:
each delta city's card must decode to T-Union Master's name in ``sscard transit
balance``, and 1E/1A/EF 0017 must carry the same code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_transit_support import TODAY, Rig, bus, metro

from sscard.applets.transit import Purse, TapAccepted
from sscard.cards.cities import all_cities, city, city_of_region
from sscard.cards.regions import CITIES, UnknownRegion
from sscard.cli.transit import transit_group
from sscard.services.lists import ListFormatError, TrustList
from sscard.simulators.profile import new_card

# T-Union Master resources/city_code.txt, verbatim lines for Beijing and the delta.
TUM_DELTA_TEXT = """\
1000: 北京市
2900: 上海市
3010: 南京市
3020: 无锡市
3050: 苏州市
3310: 杭州市
3320: 宁波市
3610: 合肥市
3030: 徐州市
3040: 常州市
3060: 南通市
3070: 连云港市
3080: 淮安市
3110: 盐城市
3120: 扬州市
3140: 镇江市
3160: 泰州市
3180: 宿迁市
3330: 温州市
3350: 嘉兴市
3360: 湖州市
3370: 绍兴市
3380: 金华市
3410: 衢州市
3420: 舟山市
3450: 台州市
3430: 丽水市
3620: 芜湖市
3630: 蚌埠市
3640: 淮南市
3650: 马鞍山市
3660: 淮北市
3670: 铜陵市
3680: 安庆市
3710: 黄山市
3750: 滁州市
3720: 阜阳市
3740: 宿州市
3760: 六安市
3810: 亳州市
3790: 池州市
3770: 宣城市
"""
TUM_DELTA = dict(line.split(": ") for line in TUM_DELTA_TEXT.splitlines())
TUM_BY_NAME = {name: code for code, name in TUM_DELTA.items()}
PROVINCES = {"31": "shanghai", "32": "jiangsu", "33": "zhejiang", "34": "anhui"}


def _tum_code(region: str) -> str:
    """What T-Union Master expects for a card of GB/T 2260 ``region``: by city name."""
    if region.startswith("31"):
        return TUM_BY_NAME["上海市"]
    return TUM_BY_NAME[CITIES[region].name_zh + "市"]


def test_the_data_file_agrees_with_t_union_master() -> None:
    for code, name in TUM_DELTA.items():
        found = city(code)
        assert found is not None and found.name_zh == name, code
    cities = all_cities()
    assert len(cities) == 351 == len({c.code for c in cities})  # T-Union Master's count
    assert all(len(c.code) == 4 and c.code.isdigit() for c in cities)
    assert city("2000") is None and city("2100") is None  # the old profile guesses


# Every prefecture-level city of the three provinces and one Shanghai district.
DELTA_REGIONS = [*sorted(r for r in CITIES if r[:2] in ("32", "33", "34")), "310104"]


@pytest.mark.parametrize("region", DELTA_REGIONS)
def test_a_card_of_each_delta_city_shows_its_city(tmp_path: Path, region: str) -> None:
    expected = _tum_code(region)
    profile = new_card(PROVINCES[region[:2]], seed=7, today=TODAY, region=region)
    assert profile.purse is not None
    ef15, ef17 = profile.purse.ef0015, profile.purse.ef0017
    assert ef15.issuer_id[2:4].hex() == expected == ef17.city_code  # issuer ID, EF 0017
    path = tmp_path / "card.json"
    profile.save(path)
    r = CliRunner().invoke(transit_group, ["balance", "--sim", str(path), "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)["city"]
    assert (shown["code"], shown["name_zh"]) == (expected, TUM_DELTA[expected])
    text = CliRunner().invoke(transit_group, ["balance", "--sim", str(path)]).output
    assert f"发卡地 {TUM_DELTA[expected]}" in text


def test_a_province_level_card_issues_as_the_capital() -> None:
    assert city_of_region("330000").code == "3310"  # Zhejiang province -> Hangzhou
    assert city_of_region("339900").code == "3310"  # province-level medical insurance
    assert city_of_region("320102").code == "3010"  # a district of Nanjing
    assert city_of_region("110105").code == "1000"  # Beijing, the §P1.3 sample
    with pytest.raises(UnknownRegion):
        city_of_region("540100")  # no link to GB/T 2260 for Lhasa in sscard's file


def test_trips_carry_the_acceptor_city_where_t_union_master_reads_it(tmp_path: Path) -> None:
    """1E bytes 32-33 and the institution ID bytes 2-3 (T-Union Master query_worker.c
    takes the trip's city from ``institution_id[4..8]`` of its hex) and 1A entry city."""
    rig = Rig(tmp_path)
    _, conn = rig.card(rig.profile("zhejiang", seed=2))
    hangzhou = {"city_code": "3310", "institution_id": bytes.fromhex("02023310FFFFFFFF")}
    r = rig.validator(metro("entry", 2, 5, **hangzhou)).tap(conn)
    assert isinstance(r, TapAccepted) and r.trip is not None and r.composite is not None
    raw = r.trip.encode()
    assert raw[32:34].hex() == "3310" and raw[34 + 2 : 34 + 4].hex() == "3310"
    assert r.composite.entry_city == "3310"
    p = Purse(conn)
    p.select()
    assert p.trips()[0].city_code == "3310"


def test_a_hangzhou_card_is_local_in_hangzhou_and_roams_elsewhere(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    profile = new_card("zhejiang", seed=3, today=TODAY, region="330100", interoperable=False)
    _, conn = rig.card(profile)
    home = rig.validator(bus(city_code="3310"))
    assert isinstance(home.tap(conn), TapAccepted)  # local card at home
    assert not rig.validator(bus(city_code="2900", terminal_id="SH")).tap(conn).accepted


def test_trust_list_city_codes(tmp_path: Path) -> None:
    header = "# sscard-trustlist/1 version=2 issued=2025-03-01"
    trust = TrustList.parse([header, "3310", "330000"])
    assert trust.cities == frozenset({"3310"}) and not trust.tunion
    hangzhou = bytes.fromhex("01013310FFFFFFFF")
    assert trust.trusts_purse(hangzhou, interoperable=True)
    assert not trust.trusts_purse(bytes.fromhex("01012900FFFFFFFF"), interoperable=True)
    assert list(trust.lines())[1:] == ["3310", "330000"]
    with pytest.raises(ListFormatError, match="2000 is not a T-Union city code"):
        TrustList.parse([header, "2000"])
    # A validator that trusts only Hangzhou cards.
    rig = Rig(tmp_path)
    _, hz = rig.card(new_card("zhejiang", seed=3, today=TODAY, region="330100"))
    _, sh = rig.card(new_card("shanghai", seed=3, today=TODAY))
    v = rig.validator(bus(city_code="3610"), trustlist=trust)  # a Hefei bus
    assert v.tap(hz).accepted and not v.tap(sh).accepted
