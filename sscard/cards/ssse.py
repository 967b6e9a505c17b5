"""SSSE basic data: EF05 / EF06 records, the card identification code, FCI, ATR.

Each SSSE record is a simple TLV ``tag len value`` and READ RECORD returns the
whole TLV (reference §C1.3). The table :data:`SSSE_ITEMS` maps (EF, record
number) <-> tag, length and format (§C1.4 EF05, §C1.5 EF06); every item is also a
layout with its own test vectors. :class:`Ef05` and :class:`Ef06` are the typed
views the reader applet returns and the simulator's card image holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import ClassVar, Self

from sscard.apdu.codec import an_decode, an_encode, bcd_date, cn_decode, cn_encode, parse_bcd_date
from sscard.apdu.errors import TlvError
from sscard.apdu.tlv import Tlv, ber_decode, simple_tlv_decode, simple_tlv_encode
from sscard.cards.ids import ATR_PREFIX, EF05_FID, EF06_FID, MOHRSS_RID, SSSE_DDF_NAME
from sscard.cards.layout import Cn, Coded, Layout, LayoutError, Raw, fld, register
from sscard.cards.regions import Region, region_of

H = bytes.fromhex


@dataclass(frozen=True, kw_only=True)
class CardIdCode(Layout):
    """卡识别码, EF05 rec 01 (16 B): region 3 B BCD ‖ RID 5 B ‖ 8 B card-specific.

    The sscard profile derives every SSSE card key from it: level-1 factor = bytes
    0-7, level-2 factor = bytes 8-15 (reference part C, "sscard profile").
    """

    region: str = fld(Cn(3))
    rid: bytes = fld(Raw(5))
    card_specific: bytes = fld(Raw(8))

    def _check(self) -> None:
        if len(self.region) != 6:
            raise LayoutError("CardIdCode", "region must be 6 digits", "地区代码应为6位数字")

    @property
    def hex(self) -> str:
        """32 upper-case hex characters, as in iReadCardBas field 4 (reference §C4.2)."""
        return self.encode().hex().upper()

    @property
    def level1_factor(self) -> bytes:
        return self.encode()[:8]

    @property
    def level2_factor(self) -> bytes:
        return self.card_specific

    @property
    def rid_ok(self) -> bool:
        """The MOHRSS RID is where every issued card has it."""
        return self.rid == MOHRSS_RID

    def region_info(self) -> Region:
        """The decoded region; raises UnknownRegion for an unknown province."""
        return region_of(self.region)

    @classmethod
    def from_hex(cls, text: str) -> CardIdCode:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise LayoutError("CardIdCode", "not hex", "不是十六进制") from None
        return cls.decode(raw)


# Set after the class so the decoded side can be built with it.
CardIdCode._test_vectors = [
    (H("330300D15600000599110145FFFFFFFF"),  # reference §C1.3 (PERSO)
     CardIdCode(region="330300", rid=MOHRSS_RID, card_specific=H("99110145FFFFFFFF"))),
    (H("639900D15600000500BF7C7A48FB4966"),  # §C4.2 spec example
     CardIdCode(region="639900", rid=MOHRSS_RID, card_specific=H("00BF7C7A48FB4966"))),
]  # fmt: skip


# --------------------------------------------------------------------------- record table


class Fmt(Enum):
    """Value formats of SSSE items (reference §C1.3)."""

    CARD_ID = "card-id"  # CardIdCode
    AN = "an"  # ASCII text, 00-padded
    GBK = "gbk"  # GBK text, 00-padded
    CN = "cn"  # BCD digits, F-padded
    DATE = "date"  # cn YYYYMMDD


SsseValue = str | date | CardIdCode


@dataclass(frozen=True)
class SsseItem:
    """One SSSE data item: where it lives, its tag, length and format.

    As a layout it encodes a value to the whole record TLV and back. Decoding is
    lenient about a value shorter than the declared length (cards differ); encoding
    always produces the declared length, padded per format.
    """

    ef: int
    record: int
    tag: int
    length: int
    fmt: Fmt
    attr: str  # attribute name on Ef05 / Ef06
    name_en: str
    name_zh: str
    vectors: tuple[tuple[bytes, SsseValue], ...] = ()

    @property
    def layout_name(self) -> str:
        return f"SSSE EF{self.ef & 0xFF:02X} tag {self.tag:02X} ({self.attr})"

    def test_vectors(self) -> Sequence[tuple[bytes, object]]:
        return self.vectors

    def decode_value(self, value: bytes) -> SsseValue:
        """The typed value of the V part of the record."""
        try:
            match self.fmt:
                case Fmt.CARD_ID:
                    return CardIdCode.decode(value)
                case Fmt.AN:
                    return an_decode(value, "ascii")
                case Fmt.GBK:
                    return an_decode(value, "gbk")
                case Fmt.CN:
                    return cn_decode(value)
                case Fmt.DATE:
                    return parse_bcd_date(value)
        except TlvError:
            pass
        raise LayoutError(self.layout_name, "value is malformed", "数据格式错误")

    def encode_value(self, value: SsseValue) -> bytes:
        """The V part, exactly ``length`` bytes."""
        try:
            match self.fmt:
                case Fmt.CARD_ID if isinstance(value, CardIdCode):
                    return value.encode()
                case Fmt.AN if isinstance(value, str):
                    return an_encode(value, self.length, "ascii")
                case Fmt.GBK if isinstance(value, str):
                    return an_encode(value, self.length, "gbk")
                case Fmt.CN if isinstance(value, str):
                    return cn_encode(value, self.length)
                case Fmt.DATE if isinstance(value, date):
                    return bcd_date(value)
        except (TlvError, UnicodeEncodeError):
            pass
        raise LayoutError(self.layout_name, "value cannot be encoded", "数据无法编码")

    def decode(self, record: bytes) -> SsseValue:
        """A whole record (tag len value) as READ RECORD returns it."""
        try:
            tag, value = simple_tlv_decode(record)
        except TlvError:
            raise LayoutError(self.layout_name, "record is not a TLV", "记录不是TLV") from None
        if tag != self.tag:
            raise LayoutError(self.layout_name, f"record has tag {tag:02X}", f"记录标签为{tag:02X}")
        if len(value) > self.length or (self.fmt in (Fmt.CARD_ID, Fmt.DATE) and
                                         len(value) != self.length):  # fmt: skip
            raise LayoutError(
                self.layout_name, f"value of {len(value)} bytes", f"数据长度{len(value)}字节"
            )
        return self.decode_value(value)

    def encode(self, value: SsseValue) -> bytes:
        return simple_tlv_encode(self.tag, self.encode_value(value))

    def decode_any(self, data: bytes) -> object:
        return self.decode(data)

    def encode_any(self, value: object) -> bytes:
        if not isinstance(value, str | date | CardIdCode):
            raise TypeError("not an SSSE value")
        return self.encode(value)


def _gbk(text: str, n: int) -> bytes:
    return text.encode("gbk") + bytes(n - len(text.encode("gbk")))


_CID = CardIdCode._test_vectors[0]
_E5, _E6 = EF05_FID, EF06_FID

#: reference §C1.4 (EF05: record number = tag) and §C1.5 (EF06 tag <-> record).
SSSE_ITEMS: tuple[SsseItem, ...] = (
    SsseItem(_E5, 1, 0x01, 16, Fmt.CARD_ID, "card_id", "card identification code", "卡识别码",
             ((b"\x01\x10" + _CID[0], _CID[1]),)),  # published (PERSO)
    SsseItem(_E5, 2, 0x02, 1, Fmt.AN, "card_type", "card type", "卡的类别",
             ((H("020133"), "3"),)),
    SsseItem(_E5, 3, 0x03, 4, Fmt.AN, "spec_version", "specification version", "规范版本",
             ((H("0304332E3030"), "3.00"),)),  # published (PERSO)
    SsseItem(_E5, 4, 0x04, 12, Fmt.CN, "init_org", "initialising organisation", "初始化机构编号",
             ((H("040C33010000000001FFFFFFFFFF"), "33010000000001"),)),
    SsseItem(_E5, 5, 0x05, 4, Fmt.DATE, "issue_date", "issue date", "发卡日期",
             ((H("050420211203"), date(2021, 12, 3)),)),
    SsseItem(_E5, 6, 0x06, 4, Fmt.DATE, "expiry_date", "expiry date", "卡有效期",
             ((H("060420311202"), date(2031, 12, 2)),)),
    SsseItem(_E5, 7, 0x07, 9, Fmt.AN, "card_number", "card number", "卡号",
             ((b"\x07\x09X00000019", "X00000019"),)),
    SsseItem(_E6, 1, 0x08, 18, Fmt.AN, "ssn", "social security number", "社会保障号码",
             ((b"\x08\x1211010519491231002X", "11010519491231002X"),)),
    SsseItem(_E6, 2, 0x09, 30, Fmt.GBK, "name", "name", "姓名",
             ((H("091E") + _gbk("张三", 30), "张三"),)),
    SsseItem(_E6, 3, 0x4E, 20, Fmt.GBK, "name_ext", "name extension", "姓名扩展",
             ((H("4E14") + bytes(20), ""), (H("4E14") + _gbk("·买买提", 20), "·买买提"))),
    SsseItem(_E6, 4, 0x0A, 1, Fmt.AN, "sex", "sex", "性别",
             ((H("0A0131"), "1"),)),
    SsseItem(_E6, 5, 0x0B, 1, Fmt.CN, "ethnicity", "ethnicity", "民族",
             ((H("0B0101"), "01"),)),
    SsseItem(_E6, 6, 0x0C, 3, Fmt.CN, "birthplace", "birthplace", "出生地",
             ((H("0C03330100"), "330100"),)),
    SsseItem(_E6, 7, 0x0D, 4, Fmt.DATE, "birth_date", "birth date", "出生日期",
             ((H("0D0419491231"), date(1949, 12, 31)),)),
)  # fmt: skip

for _item in SSSE_ITEMS:
    register(_item)


def item_by_tag(ef: int, tag: int) -> SsseItem:
    for item in SSSE_ITEMS:
        if item.ef == ef and item.tag == tag:
            return item
    raise LayoutError(f"EF{ef & 0xFF:02X}", f"no item with tag {tag:02X}", f"无标签{tag:02X}")


def item_by_record(ef: int, record: int) -> SsseItem:
    for item in SSSE_ITEMS:
        if item.ef == ef and item.record == record:
            return item
    raise LayoutError(f"EF{ef & 0xFF:02X}", f"no record {record}", f"无记录{record}")


def items_of(ef: int) -> tuple[SsseItem, ...]:
    return tuple(i for i in SSSE_ITEMS if i.ef == ef)


class _RecordFile:
    """Shared record-set logic of Ef05 and Ef06: all items of one EF."""

    EF: ClassVar[int]

    @classmethod
    def from_records(cls, records: Mapping[int, bytes]) -> Self:
        """From record TLVs keyed by *tag* (as READ RECORD by tag returns them).

        A missing item is an error, except the EF06 name extension (1st-gen cards).
        """
        values: dict[str, object] = {}
        for item in items_of(cls.EF):
            raw = records.get(item.tag)
            if raw is None:
                if item.attr == "name_ext":
                    values[item.attr] = ""
                    continue
                raise LayoutError(
                    f"EF{cls.EF & 0xFF:02X}", f"record {item.tag:02X} missing",
                    f"缺少记录{item.tag:02X}",
                )  # fmt: skip
            values[item.attr] = item.decode(raw)
        return cls(**values)

    @classmethod
    def from_tlvs(cls, records: Iterable[bytes]) -> Self:
        """From whole record TLVs in any order (e.g. read by record number, P2=04)."""
        return cls.from_records({raw[0]: raw for raw in records if raw})

    def records(self) -> dict[int, bytes]:
        """Record TLVs keyed by physical record number (what a card stores)."""
        return {item.record: item.encode(getattr(self, item.attr)) for item in items_of(self.EF)}


@dataclass(frozen=True, kw_only=True)
class Ef05(_RecordFile):
    """EF05 issuer data, readable without authentication on 1st/2nd gen (reference §C1.4)."""

    EF: ClassVar[int] = EF05_FID

    card_id: CardIdCode
    card_type: str
    spec_version: str
    init_org: str
    issue_date: date
    expiry_date: date
    card_number: str

    @property
    def generation(self) -> int:
        """Readers treat spec version 3.x as 3rd gen (§C1.4); 1 for 1.x, else 2."""
        major = self.spec_version[:1]
        return 3 if major == "3" else 1 if major == "1" else 2

    def expired(self, today: date) -> bool:
        return today > self.expiry_date


@dataclass(frozen=True, kw_only=True)
class Ef06(_RecordFile):
    """EF06 holder basic information (reference §C1.5); personal fields stay out of repr."""

    EF: ClassVar[int] = EF06_FID

    ssn: str = dataclasses.field(repr=False)
    name: str = dataclasses.field(repr=False)
    name_ext: str = dataclasses.field(default="", repr=False)
    sex: str
    ethnicity: str
    birthplace: str = dataclasses.field(repr=False)
    birth_date: date = dataclasses.field(repr=False)

    @property
    def full_name(self) -> str:
        """Name + name extension, as the interface spec says (§C1.5, §C4.2)."""
        return self.name + self.name_ext


# --------------------------------------------------------------------------- FCI, ATR


@dataclass(frozen=True)
class SsseFci(Coded):
    """The SELECT-SSSE answer; readers only need ``9F0C 03 86 01 aa`` (reference §C3.1).

    *sscard profile* for the rest of the template: ``6F L 84 0F <DDF name> A5 L
    9F0C 03 86 01 aa``. Decoding looks for 9F0C anywhere in 6F so other layouts parse.
    """

    algorithm: int
    df_name: bytes = SSSE_DDF_NAME

    @classmethod
    def decode(cls, data: bytes) -> Self:
        try:
            objs = ber_decode(data)
            fci = next((o for o in objs if o.tag == 0x6F), None)
            if fci is None:
                raise LayoutError("SsseFci", "no 6F template", "缺少6F模板")
            name = fci.find(0x84)
            flag = fci.find(0x9F0C) or fci.find(0xA5, 0x9F0C)
            if flag is None:
                raise LayoutError("SsseFci", "no 9F0C algorithm flag", "缺少9F0C算法标识")
            inner = ber_decode(flag.value)
        except TlvError:
            raise LayoutError("SsseFci", "not a BER-TLV FCI", "FCI不是BER-TLV") from None
        alg = next((o for o in inner if o.tag == 0x86 and len(o.value) == 1), None)
        if alg is None:
            raise LayoutError("SsseFci", "no 86 algorithm byte in 9F0C", "9F0C中缺少86算法字节")
        return cls(algorithm=alg.value[0], df_name=name.value if name else b"")

    def encode(self) -> bytes:
        flag = Tlv(0x9F0C, Tlv(0x86, bytes([self.algorithm])).encode())
        return Tlv.of(0x6F, Tlv(0x84, self.df_name), Tlv.of(0xA5, flag)).encode()


SsseFci._test_vectors = [
    (H("6F19840F") + SSSE_DDF_NAME + H("A5069F0C03860103"), SsseFci(algorithm=3)),
    (H("6F19840F") + SSSE_DDF_NAME + H("A5069F0C03860101"), SsseFci(algorithm=1)),
]


@dataclass(frozen=True, kw_only=True)
class AtrHistorical(Layout):
    """The 13 historical bytes after ``3B 6D 00 00`` (reference §C5, 社保系列11).

    T1-T2 chip maker (0081 Huada, 0085 Huahong, 0087 Datang, 0090 Fudan), T3-T5 COS,
    T6-T7 card maker (8660 Eastcompeace), T8-TD serial (often carries region digits).
    """

    chip_maker: bytes = fld(Raw(2))
    cos: bytes = fld(Raw(3))
    card_maker: bytes = fld(Raw(2))
    serial: bytes = fld(Raw(6))

    @property
    def atr(self) -> bytes:
        return ATR_PREFIX + self.encode()

    @classmethod
    def from_atr(cls, atr: bytes) -> AtrHistorical:
        """Readers drop the first 4 ATR bytes (``atr.Mid(8)``)."""
        return cls.decode(atr[len(ATR_PREFIX) :])


AtrHistorical._test_vectors = [
    (H("00904A3001866033110000048A"),  # §C4.3 HSM Step1 sample (331100 card)
     AtrHistorical(chip_maker=H("0090"), cos=H("4A3001"), card_maker=H("8660"),
                   serial=H("33110000048A"))),
    (H("00814E43238697159900BF7C7A"),  # §C4.2 spec example
     AtrHistorical(chip_maker=H("0081"), cos=H("4E4323"), card_maker=H("8697"),
                   serial=H("159900BF7C7A"))),
]  # fmt: skip


# --------------------------------------------------------------------------- PSAM commands
# The SSSE card-authentication commands of the PSAM (sscard profile, mirroring the
# generic DES init/compute pair 801A/80FA of a transit PSAM; no public PSAM spec).


@dataclass(frozen=True, kw_only=True)
class SamKeyInitData(Layout):
    """Data of PSAM ``80 1A kid alg 10``, 16 B: the card identification code (EF05
    rec 01) the PSAM diversifies the card's key ``kid`` from."""

    card_id: bytes = fld(Raw(16), repr=False)


SamKeyInitData._test_vectors = [
    (H("330100 D156000005 0123456789ABCDEF"),
     SamKeyInitData(card_id=H("330100D1560000050123456789ABCDEF"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SamCipherData(Layout):
    """Data of PSAM ``80 FA``: X8 ‖ S8 (P1 00, compute, 16 B) or X8 ‖ S8 ‖ R8 (P1 01,
    verify the card's response R8, 24 B). X8 is the process factor of ``00 88`` (IRK)
    or the card's challenge (RKSSSE); S8 the source data (reference §C3.4, §C3.5)."""

    x8: bytes = fld(Raw(8))
    s8: bytes = fld(Raw(8))
    r8: bytes | None = fld(Raw(8), optional_tail=True)


SamCipherData._test_vectors = [
    (H("1122334455667788 0000000000000000"),
     SamCipherData(x8=H("1122334455667788"), s8=bytes(8))),
    (H("1122334455667788 0000000000000000 A1A2A3A4A5A6A7A8"),
     SamCipherData(x8=H("1122334455667788"), s8=bytes(8), r8=H("A1A2A3A4A5A6A7A8"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SamCryptogram(Layout):
    """Answer of PSAM ``80 FA 00``, 8 B: the expected INTERNAL AUTHENTICATE answer
    (IRK) or the E8 of EXTERNAL AUTHENTICATE (RKSSSE)."""

    cryptogram: bytes = fld(Raw(8), repr=False)


SamCryptogram._test_vectors = [
    (H("A1A2A3A4A5A6A7A8"), SamCryptogram(cryptogram=H("A1A2A3A4A5A6A7A8"))),
]
