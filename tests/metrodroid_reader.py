"""A T-Union reader written from Metrodroid's public logic, not from sscard's model.

Sources (metrodroid/metrodroid, src/commonMain/kotlin/au/id/micolous/metrodroid/):
``card/iso7816/ISO7816Protocol.kt`` (APDU framing: Le always sent, ``00`` = 256;
on ``6C xx`` resend once with Le = xx; never GET RESPONSE; any SW1 other than 90 is
an error, 6A82 file not found, 6A83 end of records), ``card/iso7816/
ISO7816Application.kt`` (``dumpAllSfis``: SFI 1-31, READ BINARY ``00 B0 80|sfi 00
00``, then READ RECORD ``00 B2 r (sfi<<3)|4 00`` until 6A83; ``dumpFile``: unselect
``00 A4 00 00 00``, select by FID, READ BINARY / READ RECORD of the current EF),
``card/china/ChinaCard.kt`` (GET BALANCE ``80 5C i 02 04`` for i = 0..3; files
4, 5, 8, 9, 10, 21, 24, 25 at MF level and under 1001), ``transit/china/
ChinaTransitData.kt`` (``getFile``: 1001/id, then id, then the SFI; record times
are BCD in ``MetroTimeZone.BEIJING``), ``transit/china/ChinaTrip.kt`` (EF 18: cost
bytes 5-8, type byte 9, station bytes 10-15, time bytes 16-22; type 2 = top-up,
shown negative; valid when cost or time is non-zero) and ``transit/china/
TUnionTransitData.kt`` (serial = EF 15 hex bytes 10-19 without the first digit;
balance = P1 0 bits 1-31 if > 0, else minus P1 1 bits 1-31).

Deliberately self-contained: raw bytes in, plain values out (no sscard imports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

Transceive = Callable[[bytes], bytes]  # C-APDU -> R-APDU (data ‖ SW1 SW2)

TUNION_AID = bytes.fromhex("A000000632010105")
#: ChinaRegistry factories' application names, in the order Metrodroid tries them.
CHINA_AIDS = (
    b"PAY.SZT",
    bytes.fromhex("A00000000386980701"),  # City Union
    TUNION_AID,
)
BEIJING = timezone(timedelta(hours=8))  # MetroTimeZone.BEIJING


class IsoError(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


@dataclass
class File:
    binary: bytes | None = None
    records: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Trip:
    fare: int  # fen; negative for a top-up (type 2)
    txn_type: int
    station: int  # bytes 10-15: the terminal
    time: datetime  # aware, Beijing


@dataclass(frozen=True)
class TUnionCard:
    serial: str
    balance: int  # fen, signed as Metrodroid shows it
    trips: list[Trip]
    apdus: int


class Protocol:
    """ISO7816Protocol.sendRequest."""

    def __init__(self, transceive: Transceive) -> None:
        self.transceive = transceive
        self.count = 0

    def _real(self, cla: int, ins: int, p1: int, p2: int, le: int, data: bytes) -> bytes:
        apdu = bytes([cla, ins, p1, p2])
        if data:
            apdu += bytes([len(data)]) + data
        apdu += bytes([le])
        self.count += 1
        answer = self.transceive(apdu)
        if len(answer) < 2:
            raise IsoError(0)
        return answer

    def send(self, cla: int, ins: int, p1: int, p2: int, le: int, data: bytes = b"") -> bytes:
        answer = self._real(cla, ins, p1, p2, le, data)
        sw1, sw2 = answer[-2], answer[-1]
        if sw1 == 0x6C and sw2 != le:
            answer = self._real(cla, ins, p1, p2, sw2, data)
            sw1, sw2 = answer[-2], answer[-1]
        if sw1 != 0x90:
            raise IsoError(sw1 << 8 | sw2)
        return answer[:-2]


class MetrodroidTUnionReader:
    """Dump like ChinaCard.dumpTag, parse like TUnionTransitData."""

    def __init__(self, transceive: Transceive) -> None:
        self.p = Protocol(transceive)
        self.sfi_files: dict[int, File] = {}
        self.fid_files: dict[tuple[int, ...], File] = {}
        self.balances: dict[int, bytes] = {}

    # -- dump --------------------------------------------------------------------------

    def _select_app(self) -> bool:
        for aid in CHINA_AIDS:  # selectByNameOrNull, each a fresh SELECT
            try:
                self.p.send(0x00, 0xA4, 0x04, 0x00, 0x00, aid)
            except IsoError:
                continue
            if aid == TUNION_AID:
                return True
        return False

    def _dump_sfi(self, sfi: int) -> None:
        try:
            data: bytes | None = self.p.send(0x00, 0xB0, 0x80 | sfi, 0x00, 0x00)
        except IsoError as exc:
            if exc.sw in (0x6A82, 0x6982):
                return  # file not found / locked: stop here
            data = None
        records: dict[int, bytes] = {}
        eof = False
        for r in range(1, 256):
            try:
                records[r] = self.p.send(0x00, 0xB2, r, (sfi << 3) | 4, 0x00)
            except IsoError as exc:
                eof = exc.sw == 0x6A83
                break
        if data is None and not records and not eof:
            return
        self.sfi_files[sfi] = File(data, records)

    def _dump_fid(self, path: tuple[int, ...]) -> None:
        with contextlib.suppress(IsoError):
            self.p.send(0x00, 0xA4, 0x00, 0x00, 0x00)  # unselectFile
        try:
            for fid in path:
                self.p.send(0x00, 0xA4, 0x00, 0x00, 0x00, fid.to_bytes(2, "big"))
        except IsoError:
            return
        try:
            data: bytes | None = self.p.send(0x00, 0xB0, 0x00, 0x00, 0x00)
        except IsoError:
            data = None
        records: dict[int, bytes] = {}
        for r in range(1, 256):
            try:
                records[r] = self.p.send(0x00, 0xB2, r, 0x04, 0x00)
            except IsoError:
                break
        self.fid_files[path] = File(data, records)

    def read(self) -> TUnionCard:
        if not self._select_app():
            raise IsoError(0x6A82)
        for sfi in range(1, 32):
            self._dump_sfi(sfi)
        for i in range(4):
            with contextlib.suppress(IsoError):
                self.balances[i] = self.p.send(0x80, 0x5C, i, 0x02, 0x04)
        for j in range(2):
            for f in (4, 5, 8, 9, 10, 21, 24, 25):
                self._dump_fid((0x1001, f) if j else (f,))
        return self._parse()

    # -- parse -------------------------------------------------------------------------

    def _file(self, fid: int) -> File | None:
        """ChinaTransitData.getFile: 1001/id, then id, then the SFI."""
        for found in (self.fid_files.get((0x1001, fid)), self.fid_files.get((fid,))):
            if found is not None and (found.binary or found.records):
                return found
        return self.sfi_files.get(fid)

    def _balance(self, i: int) -> int:
        raw = self.balances.get(i)
        return 0 if raw is None else int.from_bytes(raw, "big") & 0x7FFFFFFF

    def _parse(self) -> TUnionCard:
        f15 = self._file(0x15)
        if f15 is None or f15.binary is None:
            raise IsoError(0x6A82)
        serial = f15.binary[10:20].hex()[1:]
        b0, b1 = self._balance(0), self._balance(1)
        balance = b0 if b0 > 0 else b0 - b1
        trips = []
        history = self._file(0x18)
        for _, rec in sorted((history.records if history else {}).items()):
            cost = int.from_bytes(rec[5:9], "big")
            kind = rec[9]
            station = int.from_bytes(rec[10:16], "big")
            stamp = int.from_bytes(rec[16:23], "big")
            if cost == 0 and stamp == 0:
                continue
            trips.append(Trip(-cost if kind == 2 else cost, kind, station, _bcd_time(rec[16:23])))
        return TUnionCard(serial, balance, trips, self.p.count)


def _bcd(b: bytes) -> int:
    return int(b.hex())


def _bcd_time(raw: bytes) -> datetime:
    """ChinaTransitData.parseHexDateTime: BCD YYYY MM DD hh mm ss, Beijing time."""
    return datetime(_bcd(raw[0:2]), _bcd(raw[2:3]), _bcd(raw[3:4]), _bcd(raw[4:5]),
                    _bcd(raw[5:6]), _bcd(raw[6:7]), tzinfo=BEIJING)  # fmt: skip


def pyscard_transceive(reader_name: str) -> tuple[Transceive, Callable[[], None]]:
    """A raw transceive over pyscard (no sscard code) and its close function."""
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == reader_name)
    connection = reader.createConnection()
    connection.connect()

    def transceive(apdu: bytes) -> bytes:
        data, sw1, sw2 = connection.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    return transceive, connection.disconnect
