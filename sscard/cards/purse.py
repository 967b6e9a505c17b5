"""T-Union purse files, records and the command/response bodies of a purchase or load.

Offsets are those of reference §P1.3 (EF 0015/0016/0017),
§P5.2 (EF 18), §P5.3 (EF 1E), §P5.4 and the profile (EF 1A bus/metro composite
record), and §P2-§P3 (8050/8052/8054/805A/8070 bodies). Amounts are in fen (int),
dates ``datetime.date``, date-times ``datetime.datetime``; identifiers that feed
the cryptography (issuer ID, terminal ID, MACs) stay ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Self

from sscard.apdu.errors import TlvError
from sscard.apdu.tlv import Tlv, ber_decode
from sscard.cards.ids import PPSE_NAME, TUNION_EP_AID, TUNION_EP_LABEL
from sscard.cards.layout import (
    DATE,
    DATETIME,
    OPT_DATETIME,
    Coded,
    Hex,
    Layout,
    LayoutError,
    Raw,
    Text,
    Uint,
    fld,
)

H = bytes.fromhex

# --------------------------------------------------------------------------- files


@dataclass(frozen=True, kw_only=True)
class Ef0015(Layout):
    """Public application info, 30 B (reference §P1.3); also the 9F0C of the FCI."""

    issuer_id: bytes = fld(Raw(8))  # byte 0 card type, bytes 2-3 city code
    app_type: int = fld(Uint(1))
    app_version: int = fld(Uint(1))  # application version / enable flag
    asn: str = fld(Hex(10))  # application serial number, 20 BCD digits
    start_date: date = fld(DATE)  # noqa: RUF009
    expiry_date: date = fld(DATE)  # noqa: RUF009
    fci_custom: bytes = fld(Raw(2))

    @property
    def card_type(self) -> int:
        """T-Union Master reads issuer ID byte 0 as the card type."""
        return self.issuer_id[0]

    @property
    def city_code(self) -> str:
        """Issuer ID bytes 2-3: the issuing city's T-Union code (GB/T 13497-1992,
        reference §P5.8), e.g. ``1000`` Beijing, ``3310`` Hangzhou."""
        return self.issuer_id[2:4].hex().upper()

    @property
    def card_number(self) -> str:
        """The printed number: the ASN with its first nibble dropped (19 digits)."""
        return self.asn[1:]

    @property
    def asn_right8(self) -> bytes:
        """EF0015[12..19]: the card-level diversification factor and 8070 input."""
        return bytes.fromhex(self.asn)[2:]


_EF0015_SAMPLE = H("01011000FFFFFFFF 02 01 03105170010170907984 20190806 20401231 0000")
_EF0015_DECODED = Ef0015(
    issuer_id=H("01011000FFFFFFFF"), app_type=2, app_version=1, asn="03105170010170907984",
    start_date=date(2019, 8, 6), expiry_date=date(2040, 12, 31), fci_custom=b"\x00\x00",
)  # fmt: skip
Ef0015._test_vectors = [(_EF0015_SAMPLE, _EF0015_DECODED)]  # §P1.2 (S14 simulator answer)


@dataclass(frozen=True, kw_only=True)
class Ef0016(Layout):
    """Cardholder info, 55 B (reference §P1.3). ID type 00 = resident ID card (PBOC)."""

    card_type: int = fld(Uint(1))
    staff_flag: int = fld(Uint(1))
    holder_name: str = fld(Text(20), default="", repr=False)
    id_number: str = fld(Text(32, "ascii"), default="", repr=False)
    id_type: int = fld(Uint(1))


Ef0016._test_vectors = [
    (H("0100") + "张三".encode("gbk") + bytes(16) + b"11010519491231002X" + bytes(14) + b"\x00",
     Ef0016(card_type=1, staff_flag=0, holder_name="张三", id_number="11010519491231002X",
            id_type=0)),
    (bytes(55), Ef0016(card_type=0, staff_flag=0, holder_name="", id_number="", id_type=0)),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Ef0017(Layout):
    """Management info, 60 B (reference §P1.3).

    Codes: city = the T-Union (GB/T 13497-1992) code of the issuing city, as in the
    issuer ID (reference §P5.8, :mod:`sscard.cards.cities`); *sscard profile*
    for the others (the public source gives only their sizes): country ``00000156``
    (ISO 3166 156 in BCD), province = GB/T 2260 digits 1-2 ‖ ``00``.
    """

    country_code: str = fld(Hex(4))
    province_code: str = fld(Hex(2))
    city_code: str = fld(Hex(2))
    interop_flag: int = fld(Uint(2))  # 0000 local only, 0001 interoperable
    category: int = fld(Uint(1))  # CardCategory
    reserved: bytes = fld(Raw(49), default=bytes(49))

    @property
    def interoperable(self) -> bool:
        """What S7 bus firmware checks before accepting a non-local card."""
        return self.interop_flag == 0x0001 and 1 <= self.category <= 5


Ef0017._test_vectors = [
    (H("00000156 3300 3310 0001 01") + bytes(49),
     Ef0017(country_code="00000156", province_code="3300", city_code="3310", interop_flag=1,
            category=1)),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TxnRecord(Layout):
    """EF 18 transaction log record, 23 B (reference §P5.2)."""

    counter: int = fld(Uint(2))  # online (load) or offline (purchase) counter
    overdraft_limit: int = fld(Uint(3))
    amount: int = fld(Uint(4))
    txn_type: int = fld(Uint(1))  # TxnType
    terminal_id: bytes = fld(Raw(6))
    time: datetime = fld(DATETIME)  # noqa: RUF009


TxnRecord._test_vectors = [
    (H("042D 000000 000001F4 09 300089000340 20241229141740"),  # §P5.2 (S1)
     TxnRecord(counter=0x042D, overdraft_limit=0, amount=500, txn_type=9,
               terminal_id=H("300089000340"), time=datetime(2024, 12, 29, 14, 17, 40))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TripRecord(Layout):
    """EF 1E trip record, 48 B (reference §P5.3)."""

    record_type: int = fld(Uint(1))  # TripRecordType
    terminal_id: bytes = fld(Raw(8))  # writers: 0000 ‖ 6-B PSAM terminal number
    industry: int = fld(Uint(1))  # Industry
    line_station: bytes = fld(Raw(7))  # bus: line 2 ‖ station 2 ‖ operator 2 ‖ 00
    amount: int = fld(Uint(4))
    balance: int = fld(Uint(4))  # after the transaction
    time: datetime = fld(DATETIME)  # noqa: RUF009
    city_code: str = fld(Hex(2))  # acceptor city
    institution_id: bytes = fld(Raw(8))  # acceptor institution
    reserved: bytes = fld(Raw(6), default=bytes(6))


TripRecord._test_vectors = [
    (H("04 0000300089000340 01 08001900300000 000001F4 00000E01 20241229141740 1000"
       " 01011000FFFFFFFF 000000000000"),  # §P5.3 (S1)
     TripRecord(record_type=4, terminal_id=H("0000300089000340"), industry=1,
                line_station=H("08001900300000"), amount=500, balance=0x0E01,
                time=datetime(2024, 12, 29, 14, 17, 40), city_code="1000",
                institution_id=H("01011000FFFFFFFF"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CompositeRecord(Layout):
    """EF 1A composite record, 128 B: bus record 02 (reference §P5.4) and the
    metro record 01 of the sscard profile (same layout, entry = boarding, gate ID in
    the vehicle field).

    The published byte ranges overlap in the alighting block; this layout resolves
    them as 59-96 alighting (city 2, institution 8, operator 2, line 2, stop 1,
    vehicle 8, terminal 8, time 7), 97-100 fare, 101-102 distance, 103-128 reserved,
    which keeps the published fare and distance positions (1-based byte numbers).
    """

    tag: int = fld(Uint(1), default=0x27)
    record_id: int = fld(Uint(1))  # CompositeRecordId: 02 bus, 01 metro
    length: int = fld(Uint(1), default=0x7D)
    valid: int = fld(Uint(1), default=1)
    mode: int = fld(Uint(1), default=1)  # 01 segmented/composite, 02 pre-authorisation
    lock_flag: int = fld(Uint(1), default=0)
    txn_serial: str = fld(Hex(8), default="0" * 16)
    state: int = fld(Uint(1), default=0)  # CompositeState
    entry_city: str = fld(Hex(2), default="0000")
    entry_institution: bytes = fld(Raw(8), default=bytes(8))
    entry_operator: bytes = fld(Raw(2), default=bytes(2))
    entry_line: int = fld(Uint(2), default=0)
    entry_stop: int = fld(Uint(1), default=0)
    entry_vehicle: str = fld(Text(8, "ascii"), default="")  # metro: gate ID
    entry_terminal: bytes = fld(Raw(8), default=bytes(8))
    entry_time: datetime | None = fld(OPT_DATETIME, default=None)  # noqa: RUF009
    max_amount: int = fld(Uint(4), default=0)  # flagged fare for a missed tap-off
    direction: int = fld(Uint(1), default=0)
    exit_city: str = fld(Hex(2), default="0000")
    exit_institution: bytes = fld(Raw(8), default=bytes(8))
    exit_operator: bytes = fld(Raw(2), default=bytes(2))
    exit_line: int = fld(Uint(2), default=0)
    exit_stop: int = fld(Uint(1), default=0)
    exit_vehicle: str = fld(Text(8, "ascii"), default="")
    exit_terminal: bytes = fld(Raw(8), default=bytes(8))
    exit_time: datetime | None = fld(OPT_DATETIME, default=None)  # noqa: RUF009
    fare: int = fld(Uint(4), default=0)
    distance: int = fld(Uint(2), default=0)
    reserved: bytes = fld(Raw(26), default=bytes(26))

    def _check(self) -> None:
        if self.tag != 0x27 or self.length != 0x7D:
            raise LayoutError("CompositeRecord", "header is not 27 xx 7D", "复合记录头不是27 xx 7D")


_BUS_BOARDED = (
    H("27027D 01 01 00 0000000000001234 01 2900 01012900FFFFFFFF 0001 0008 13")
    + b"HU-A1234"
    + H("0000300089000340 20250301081500 000001F4 00")
    + bytes(38)
    + H("00000000 0000")
    + bytes(26)
)
_METRO_EXITED = (
    H("27017D 01 01 00 0000000000000099 02 2900 02022900FFFFFFFF 0002 0002 05")
    + b"G0205-03"
    + H("0000300089000341 20250301090000 00000258 01 2900 02022900FFFFFFFF 0002 0010 11")
    + b"G1011-01"
    + H("0000300089000342 20250301093000 00000190 0C80")
    + bytes(26)
)
CompositeRecord._test_vectors = [
    (_BUS_BOARDED,  # synthetic: boarded line 8 stop 19, max fare 5.00
     CompositeRecord(record_id=2, txn_serial="0000000000001234", state=1, entry_city="2900",
                     entry_institution=H("01012900FFFFFFFF"), entry_operator=H("0001"),
                     entry_line=8, entry_stop=0x13, entry_vehicle="HU-A1234",
                     entry_terminal=H("0000300089000340"),
                     entry_time=datetime(2025, 3, 1, 8, 15), max_amount=500)),
    (_METRO_EXITED,  # synthetic metro record (profile): line 2 -> line 16, fare 4.00, 3.2 km
     CompositeRecord(record_id=1, txn_serial="0000000000000099", state=2, entry_city="2900",
                     entry_institution=H("02022900FFFFFFFF"), entry_operator=H("0002"),
                     entry_line=2, entry_stop=5, entry_vehicle="G0205-03",
                     entry_terminal=H("0000300089000341"), entry_time=datetime(2025, 3, 1, 9),
                     max_amount=600, direction=1, exit_city="2900",
                     exit_institution=H("02022900FFFFFFFF"), exit_operator=H("0002"),
                     exit_line=16, exit_stop=0x11, exit_vehicle="G1011-01",
                     exit_terminal=H("0000300089000342"),
                     exit_time=datetime(2025, 3, 1, 9, 30), fare=400, distance=3200)),
]  # fmt: skip


# --------------------------------------------------------------------------- FCIs


@dataclass(frozen=True)
class EpFci(Coded):
    """SELECT T-Union EP answer (reference §P1.2):
    ``6F L 84 08 <AID> A5 L 9F08 01 <appver> 9F0C 1E <EF 0015>``.

    9F0C holds a copy of EF 0015 so a validator can skip READ BINARY.
    """

    ef0015: Ef0015
    app_version: int | None = 2
    aid: bytes = TUNION_EP_AID

    @classmethod
    def decode(cls, data: bytes) -> Self:
        try:
            objs = ber_decode(data)
        except TlvError:
            raise LayoutError("EpFci", "not a BER-TLV FCI", "FCI不是BER-TLV") from None
        fci = next((o for o in objs if o.tag == 0x6F), None)
        if fci is None:
            raise LayoutError("EpFci", "no 6F template", "缺少6F模板")
        aid = fci.find(0x84)
        copy = fci.find(0xA5, 0x9F0C)
        if aid is None or copy is None:
            raise LayoutError("EpFci", "no 84 or 9F0C", "缺少84或9F0C")
        ver = fci.find(0xA5, 0x9F08)
        return cls(
            ef0015=Ef0015.decode(copy.value),
            app_version=ver.value[0] if ver and len(ver.value) == 1 else None,
            aid=aid.value,
        )

    def encode(self) -> bytes:
        prop = []
        if self.app_version is not None:
            prop.append(Tlv(0x9F08, bytes([self.app_version])))
        prop.append(Tlv(0x9F0C, self.ef0015.encode()))
        return Tlv.of(0x6F, Tlv(0x84, self.aid), Tlv.of(0xA5, *prop)).encode()


EpFci._test_vectors = [
    (
        H("6F31 8408A000000632010105 A525 9F080102 9F0C1E") + _EF0015_SAMPLE,  # §P1.2 (S14)
        EpFci(ef0015=_EF0015_DECODED, app_version=2),
    ),
]


@dataclass(frozen=True)
class PpseEntry:
    aid: bytes
    label: bytes = TUNION_EP_LABEL
    priority: int | None = 1


@dataclass(frozen=True)
class PpseFci(Coded):
    """SELECT "2PAY.SYS.DDF01" answer (reference §P1.2): directory entries 61 with
    4F (AID), 50 (label ``MOT_T_EP``), 87 (priority), inside ``6F/A5/BF0C``."""

    entries: tuple[PpseEntry, ...]
    name: bytes = PPSE_NAME

    @classmethod
    def decode(cls, data: bytes) -> Self:
        try:
            objs = ber_decode(data)
        except TlvError:
            raise LayoutError("PpseFci", "not a BER-TLV FCI", "FCI不是BER-TLV") from None
        fci = next((o for o in objs if o.tag == 0x6F), None)
        directory = fci.find(0xA5, 0xBF0C) if fci else None
        if fci is None or directory is None:
            raise LayoutError("PpseFci", "no 6F/A5/BF0C", "缺少6F/A5/BF0C")
        name = fci.find(0x84)
        entries = []
        for app in directory.children or ():
            if app.tag != 0x61:
                continue
            aid, label, prio = app.find(0x4F), app.find(0x50), app.find(0x87)
            if aid is None:
                raise LayoutError("PpseFci", "entry without 4F AID", "目录项缺少4F")
            entries.append(
                PpseEntry(
                    aid.value,
                    label.value if label else b"",
                    prio.value[0] if prio and len(prio.value) == 1 else None,
                )
            )
        return cls(tuple(entries), name.value if name else b"")

    def encode(self) -> bytes:
        apps = []
        for e in self.entries:
            parts = [Tlv(0x4F, e.aid)]
            if e.label:
                parts.append(Tlv(0x50, e.label))
            if e.priority is not None:
                parts.append(Tlv(0x87, bytes([e.priority])))
            apps.append(Tlv.of(0x61, *parts))
        return Tlv.of(0x6F, Tlv(0x84, self.name), Tlv.of(0xA5, Tlv.of(0xBF0C, *apps))).encode()

    def find_label(self, label: bytes = TUNION_EP_LABEL) -> PpseEntry | None:
        """The entry T-Union Master insists on (label ``MOT_T_EP``)."""
        return next((e for e in self.entries if e.label == label), None)


PpseFci._test_vectors = [
    (H("6F2E 840E") + PPSE_NAME
     + H("A51C BF0C19 6117 4F08A000000632010105 50084D4F545F545F4550 870101"),
     PpseFci((PpseEntry(TUNION_EP_AID),))),
]  # fmt: skip


# --------------------------------------------------------------------------- command bodies


@dataclass(frozen=True, kw_only=True)
class InitData(Layout):
    """Data of 8050 INITIALIZE FOR PURCHASE / CAPP PURCHASE / LOAD, 11 B (§P2)."""

    key_index: int = fld(Uint(1))
    amount: int = fld(Uint(4))
    terminal_id: bytes = fld(Raw(6))


InitData._test_vectors = [
    (H("01 00001000 001122334455"),  # §P4.5 load and purchase
     InitData(key_index=1, amount=0x1000, terminal_id=H("001122334455"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PurchaseInitResponse(Layout):
    """8050 01/03 response, 15 B (reference §P2)."""

    balance: int = fld(Uint(4))
    offline_counter: int = fld(Uint(2))
    overdraft_limit: int = fld(Uint(3))
    key_version: int = fld(Uint(1))
    algorithm_id: int = fld(Uint(1))  # PurseAlgorithmId
    random: bytes = fld(Raw(4))


PurchaseInitResponse._test_vectors = [
    (H("00000000 0000 000000 01 00 11223344"),  # §P4.5 purchase
     PurchaseInitResponse(balance=0, offline_counter=0, overdraft_limit=0, key_version=1,
                          algorithm_id=0, random=H("11223344"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LoadInitResponse(Layout):
    """8050 00 response, 16 B (reference §P2)."""

    balance: int = fld(Uint(4))
    online_counter: int = fld(Uint(2))
    key_version: int = fld(Uint(1))
    algorithm_id: int = fld(Uint(1))
    random: bytes = fld(Raw(4))
    mac1: bytes = fld(Raw(4))


LoadInitResponse._test_vectors = [
    (H("00000000 0000 02 00 11223344 2988AE5A"),  # §P4.5 load
     LoadInitResponse(balance=0, online_counter=0, key_version=2, algorithm_id=0,
                      random=H("11223344"), mac1=H("2988AE5A"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class DebitData(Layout):
    """Data of 8054 DEBIT FOR (CAPP) PURCHASE, 15 B: terminal txn seq, date-time, MAC1."""

    terminal_seq: int = fld(Uint(4))
    time: datetime = fld(DATETIME)  # noqa: RUF009
    mac1: bytes = fld(Raw(4))


DebitData._test_vectors = [
    (H("00000001 20120229 135100 F15CAB75"),  # from the §P4.5 purchase values
     DebitData(terminal_seq=1, time=datetime(2012, 2, 29, 13, 51), mac1=H("F15CAB75"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class DebitResponse(Layout):
    """8054 response: **TAC ‖ MAC2** (reference §P2)."""

    tac: bytes = fld(Raw(4))
    mac2: bytes = fld(Raw(4))


DebitResponse._test_vectors = [
    (
        H("1A2B3C4D 56988A13"),  # MAC2 of §P4.5; the TAC is a placeholder (none published)
        DebitResponse(tac=H("1A2B3C4D"), mac2=H("56988A13")),
    ),
]


@dataclass(frozen=True, kw_only=True)
class ProveResponse(Layout):
    """805A GET TRANSACTION PROVE response: **MAC2 ‖ TAC**, reversed from 8054 (§P2)."""

    mac2: bytes = fld(Raw(4))
    tac: bytes = fld(Raw(4))


ProveResponse._test_vectors = [
    (H("56988A13 1A2B3C4D"), ProveResponse(mac2=H("56988A13"), tac=H("1A2B3C4D"))),
]


@dataclass(frozen=True, kw_only=True)
class BalanceResponse(Layout):
    """805C GET BALANCE answer, 4 B: the value P1 asked for, fen (reference §P2):
    P1 00 balance, 01 amount overdrawn (§P5.8), 02 overdraft used, 03 usable balance."""

    value: int = fld(Uint(4))


BalanceResponse._test_vectors = [(H("00000E01"), BalanceResponse(value=0x0E01))]  # §P5.3 (S1)


@dataclass(frozen=True, kw_only=True)
class ProveData(Layout):
    """Data of 805A GET TRANSACTION PROVE, 2 B: the offline counter after the debit
    (N + 1, profile "Tearing recovery counter"); P2 carries the transaction type."""

    counter: int = fld(Uint(2))


ProveData._test_vectors = [(H("042E"), ProveData(counter=0x042E))]


@dataclass(frozen=True, kw_only=True)
class CreditData(Layout):
    """Data of 8052 CREDIT FOR LOAD, 11 B: date-time ‖ MAC2 (§P2)."""

    time: datetime = fld(DATETIME)  # noqa: RUF009
    mac2: bytes = fld(Raw(4))


CreditData._test_vectors = [
    (
        H("20111221 214822 3A845BF0"),  # §P4.5 load
        CreditData(time=datetime(2011, 12, 21, 21, 48, 22), mac2=H("3A845BF0")),
    ),
]


@dataclass(frozen=True, kw_only=True)
class CreditResponse(Layout):
    """8052 response: TAC (4 B)."""

    tac: bytes = fld(Raw(4))


CreditResponse._test_vectors = [(H("1A2B3C4D"), CreditResponse(tac=H("1A2B3C4D")))]


@dataclass(frozen=True, kw_only=True)
class SamPurchaseInitData(Layout):
    """Data of PSAM 8070 INIT SAM FOR PURCHASE (reference §P3): 28 B (one-level,
    Lc 1C) or 36 B with the issuer ID (two-level, Lc 24)."""

    random: bytes = fld(Raw(4))  # card random from 8050
    offline_counter: int = fld(Uint(2))
    amount: int = fld(Uint(4))
    txn_type: int = fld(Uint(1))
    time: datetime = fld(DATETIME)  # noqa: RUF009
    key_version: int = fld(Uint(1))
    algorithm_id: int = fld(Uint(1))
    asn8: bytes = fld(Raw(8))  # EF0015[12..19]
    issuer_id: bytes | None = fld(Raw(8), optional_tail=True)  # EF0015[0..7]


SamPurchaseInitData._test_vectors = [
    (H("11223344 0000 00001000 06 20120229135100 01 00 5170010170907984"),
     SamPurchaseInitData(random=H("11223344"), offline_counter=0, amount=0x1000, txn_type=6,
                         time=datetime(2012, 2, 29, 13, 51), key_version=1, algorithm_id=0,
                         asn8=H("5170010170907984"))),
    (H("11223344 0000 00001000 06 20120229135100 01 00 5170010170907984 01011000FFFFFFFF"),
     SamPurchaseInitData(random=H("11223344"), offline_counter=0, amount=0x1000, txn_type=6,
                         time=datetime(2012, 2, 29, 13, 51), key_version=1, algorithm_id=0,
                         asn8=H("5170010170907984"), issuer_id=H("01011000FFFFFFFF"))),
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SamPurchaseInitResponse(Layout):
    """PSAM 8070 response, 8 B: terminal txn seq ‖ MAC1."""

    terminal_seq: int = fld(Uint(4))
    mac1: bytes = fld(Raw(4))


SamPurchaseInitResponse._test_vectors = [
    (H("00000001 F15CAB75"), SamPurchaseInitResponse(terminal_seq=1, mac1=H("F15CAB75"))),
]


@dataclass(frozen=True, kw_only=True)
class SamCreditData(Layout):
    """Data of PSAM 8072 CREDIT SAM FOR PURCHASE, 4 B: the card's MAC2 (§P3); no answer
    data (9000 valid, 9302 invalid)."""

    mac2: bytes = fld(Raw(4))


SamCreditData._test_vectors = [(H("56988A13"), SamCreditData(mac2=H("56988A13")))]  # §P4.5
