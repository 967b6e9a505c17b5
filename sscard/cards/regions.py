"""GB/T 2260 administrative division codes for the card's region fields.

The first 3 bytes of the card identification code (EF05 rec 01) are the issuing
region, 6 BCD digits (reference §C1.4, §C5); the province is the first two
digits. The city table is the one of reference §M5 for
the four Yangtze River Delta provinces; other provinces are known by name only.
``xx9900`` is province-level issuance (e.g. 339900, 省医保).
"""

from __future__ import annotations

from dataclasses import dataclass

from sscard.errors import SscardError


class UnknownRegion(SscardError):
    """A region code that is not 6 digits or whose province does not exist."""

    code = -20  # card identification code format error (reference §C4.5)
    message_en = "unknown region code"
    message_zh = "未知的行政区划代码"


@dataclass(frozen=True)
class Province:
    code: str  # "330000"
    name_zh: str
    name_en: str
    #: CLI key ("zhejiang") for the four delta provinces, else "". The purse's T-Union
    #: city codes are GB/T 13497, not these: see :mod:`sscard.cards.cities`.
    key: str = ""


@dataclass(frozen=True)
class City:
    code: str  # "330100"
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Region:
    """A decoded region code: always a province; a city (or Shanghai district) if known."""

    code: str
    province: Province
    city: City | None

    @property
    def province_level(self) -> bool:
        """True for ``xx0000`` and ``xx9900`` (issued by the province itself)."""
        return self.code[2:] in ("0000", "9900")

    @property
    def name_zh(self) -> str:
        return self.province.name_zh + (self.city.name_zh if self.city else "")

    @property
    def name_en(self) -> str:
        if self.city is None:
            return self.province.name_en
        return f"{self.city.name_en}, {self.province.name_en}"


_PROVINCE_ROWS = [
    ("11", "北京市", "Beijing"),
    ("12", "天津市", "Tianjin"),
    ("13", "河北省", "Hebei"),
    ("14", "山西省", "Shanxi"),
    ("15", "内蒙古自治区", "Inner Mongolia"),
    ("21", "辽宁省", "Liaoning"),
    ("22", "吉林省", "Jilin"),
    ("23", "黑龙江省", "Heilongjiang"),
    ("31", "上海市", "Shanghai"),
    ("32", "江苏省", "Jiangsu"),
    ("33", "浙江省", "Zhejiang"),
    ("34", "安徽省", "Anhui"),
    ("35", "福建省", "Fujian"),
    ("36", "江西省", "Jiangxi"),
    ("37", "山东省", "Shandong"),
    ("41", "河南省", "Henan"),
    ("42", "湖北省", "Hubei"),
    ("43", "湖南省", "Hunan"),
    ("44", "广东省", "Guangdong"),
    ("45", "广西壮族自治区", "Guangxi"),
    ("46", "海南省", "Hainan"),
    ("50", "重庆市", "Chongqing"),
    ("51", "四川省", "Sichuan"),
    ("52", "贵州省", "Guizhou"),
    ("53", "云南省", "Yunnan"),
    ("54", "西藏自治区", "Tibet"),
    ("61", "陕西省", "Shaanxi"),
    ("62", "甘肃省", "Gansu"),
    ("63", "青海省", "Qinghai"),
    ("64", "宁夏回族自治区", "Ningxia"),
    ("65", "新疆维吾尔自治区", "Xinjiang"),
    ("71", "台湾省", "Taiwan"),
    ("81", "香港特别行政区", "Hong Kong"),
    ("82", "澳门特别行政区", "Macao"),
]

#: The four delta provinces by their CLI key.
_DELTA = {"31": "shanghai", "32": "jiangsu", "33": "zhejiang", "34": "anhui"}

PROVINCES_BY_PREFIX: dict[str, Province] = {
    p2: Province(p2 + "0000", zh, en, _DELTA.get(p2, "")) for p2, zh, en in _PROVINCE_ROWS
}
#: The delta provinces by CLI key: "shanghai", "jiangsu", "zhejiang", "anhui".
DELTA_PROVINCES: dict[str, Province] = {p.key: p for p in PROVINCES_BY_PREFIX.values() if p.key}

# reference §M5 (Shanghai: districts; others: prefecture-level cities).
_CITY_ROWS = """
310101 黄浦 Huangpu|310104 徐汇 Xuhui|310105 长宁 Changning|310106 静安 Jing'an|310107 普陀 Putuo
310109 虹口 Hongkou|310110 杨浦 Yangpu|310112 闵行 Minhang|310113 宝山 Baoshan|310114 嘉定 Jiading
310115 浦东新区 Pudong|310117 松江 Songjiang|310118 青浦 Qingpu|310120 奉贤 Fengxian
310151 崇明 Chongming
320100 南京 Nanjing|320200 无锡 Wuxi|320300 徐州 Xuzhou|320400 常州 Changzhou|320500 苏州 Suzhou
320600 南通 Nantong|320700 连云港 Lianyungang|320800 淮安 Huai'an|320900 盐城 Yancheng
321000 扬州 Yangzhou|321100 镇江 Zhenjiang|321200 泰州 Taizhou|321300 宿迁 Suqian
330100 杭州 Hangzhou|330200 宁波 Ningbo|330300 温州 Wenzhou|330400 嘉兴 Jiaxing|330500 湖州 Huzhou
330600 绍兴 Shaoxing|330700 金华 Jinhua|330800 衢州 Quzhou|330900 舟山 Zhoushan
331000 台州 Taizhou|331100 丽水 Lishui
340100 合肥 Hefei|340200 芜湖 Wuhu|340300 蚌埠 Bengbu|340400 淮南 Huainan|340500 马鞍山 Ma'anshan
340600 淮北 Huaibei|340700 铜陵 Tongling|340800 安庆 Anqing|341000 黄山 Huangshan
341100 滁州 Chuzhou|341200 阜阳 Fuyang|341300 宿州 Suzhou|341500 六安 Lu'an|341600 亳州 Bozhou
341700 池州 Chizhou|341800 宣城 Xuancheng
"""


def _parse_cities() -> dict[str, City]:
    out: dict[str, City] = {}
    for chunk in _CITY_ROWS.replace("\n", "|").split("|"):
        if chunk.strip():
            code, zh, en = chunk.split(maxsplit=2)
            out[code] = City(code, zh, en)
    return out


CITIES: dict[str, City] = _parse_cities()


def cities_of(province: Province) -> list[City]:
    """The cities (Shanghai: districts) of the table for one province, in code order."""
    return [c for code, c in sorted(CITIES.items()) if code[:2] == province.code[:2]]


def region_of(code6: str) -> Region:
    """Decode a 6-digit GB/T 2260 code.

    The city is looked up exactly, then by its prefecture (``330102`` -> 330100
    Hangzhou); a code below an unknown prefecture still yields its province.
    Raises :class:`UnknownRegion` for a malformed code or an unknown province.
    """
    if len(code6) != 6 or not code6.isascii() or not code6.isdigit():
        raise UnknownRegion("region code must be 6 digits", "行政区划代码应为6位数字")
    province = PROVINCES_BY_PREFIX.get(code6[:2])
    if province is None:
        raise UnknownRegion(f"no province {code6[:2]}", f"不存在省级代码{code6[:2]}")
    city = CITIES.get(code6) or CITIES.get(code6[:4] + "00")
    return Region(code6, province, city)


def province_by_key(key: str) -> Province:
    """``"zhejiang"`` -> Zhejiang; case-insensitive; UnknownRegion otherwise."""
    try:
        return DELTA_PROVINCES[key.lower()]
    except KeyError:
        raise UnknownRegion(
            f"unknown province {key!r}; one of {', '.join(DELTA_PROVINCES)}",
            f"未知省份{key!r}",
        ) from None
