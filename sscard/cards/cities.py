"""T-Union city codes (GB/T 13497-1992), from one data file: ``sscard/data/tunion-city-codes.csv``.

Why: outside readers decode the purse's city fields with this table, not with GB/T 2260
(reference §P5.8): T-Union Master reads EF 0015 issuer ID bytes 2-3 as the
issuing city, and the 1E acceptor city and institution ID bytes 2-3 as the trip's
city, and looks them up in its ``resources/city_code.txt`` (上海 2900, 南京 3010,
杭州 3310, 合肥 3610, ...). So the issuer ID, EF 0017 city, 1E/1A cities, the
validator configuration and trust lists all carry the code of the issuing **city**
(never a province's): a card of 330100 Hangzhou carries 3310.

The file holds T-Union Master's 351 codes and names, plus the GB/T 2260 code
(:mod:`sscard.cards.regions`) where sscard links one: the municipalities and the
cities of the four delta provinces.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

from sscard.cards.regions import UnknownRegion

DATA_FILE = "tunion-city-codes.csv"


@dataclass(frozen=True)
class TUnionCity:
    code: str  # "3310": 4 digits, as 2 BCD bytes on the card
    name_zh: str  # "杭州市", as T-Union Master shows it
    gb2260: str = ""  # "330100", or "" when sscard links none
    name_en: str = ""

    @property
    def name(self) -> str:
        """``杭州市 Hangzhou`` (the English part only when known)."""
        return f"{self.name_zh} {self.name_en}" if self.name_en else self.name_zh


@functools.cache
def _table() -> tuple[dict[str, TUnionCity], dict[str, TUnionCity]]:
    """Both indexes of the data file: by T-Union code and by GB/T 2260 code."""
    text = (resources.files("sscard") / "data" / DATA_FILE).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    by_code: dict[str, TUnionCity] = {}
    by_region: dict[str, TUnionCity] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        city = TUnionCity(row["code"], row["name_zh"], row["gb2260"], row["name_en"])
        by_code[city.code] = city
        if city.gb2260:
            by_region[city.gb2260] = city
    return by_code, by_region


def all_cities() -> list[TUnionCity]:
    """Every city of the table, in code order."""
    return sorted(_table()[0].values(), key=lambda c: c.code)


def city(code: str) -> TUnionCity | None:
    """The city of a 4-digit T-Union code (case-insensitive hex text), or None."""
    return _table()[0].get(code.upper())


def city_of_region(region: str) -> TUnionCity:
    """The issuing city of a GB/T 2260 region code: the city itself, its prefecture
    (``330102`` -> 330100 Hangzhou), its municipality (``310104`` -> 310000 Shanghai);
    a province-level issuer (``330000``, ``339900``) issues as its capital (``xx0100``,
    sscard profile). Raises :class:`UnknownRegion` when none is in the table.
    """
    by_region = _table()[1]
    for key in (region, region[:4] + "00", region[:2] + "0000", region[:2] + "0100"):
        found = by_region.get(key)
        if found is not None:
            return found
    raise UnknownRegion(
        f"no T-Union city code for region {region}", f"行政区划{region}没有交通联合城市代码"
    )
