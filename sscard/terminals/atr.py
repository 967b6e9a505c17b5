"""Decoding an answer to reset (ISO 7816-3 §8) and the social security card pattern.

Why here: the transport needs the protocols an ATR offers (T=0 only when TD1 is
absent), and ``sscard atr`` shows the interface and historical bytes. The SSC
pattern is ``3B 6D 00 00`` + 13 historical bytes: chip maker (2), COS (3), card
maker (2), serial (6) (reference §C5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sscard.errors import ExitStatus, SscardError


class AtrFormatError(SscardError):
    """The bytes are not a well-formed ATR."""

    exit_status = ExitStatus.USAGE
    code = -13
    message_en = "malformed ATR"
    message_zh = "ATR 格式错误"


#: reference §C5 (samples; other codes are shown raw).
CHIP_MAKERS = {
    "0081": "Huada (华大)",
    "0085": "Huahong (华虹)",
    "0087": "Datang (大唐)",
    "0090": "Fudan Microelectronics (复旦微)",
}
CARD_MAKERS = {"8660": "Eastcompeace (东信和平)"}
COS_PREFIXES = {"5431": "TurboCOS"}

SSC_PREFIX = bytes.fromhex("3B6D0000")


@dataclass(frozen=True)
class InterfaceByte:
    name: str  # "TA1", "TD2", ...
    value: int


@dataclass(frozen=True)
class SscHistorical:
    """The 13 historical bytes of a social security card ATR (reference §C5)."""

    chip_maker: str
    chip_maker_name: str | None
    cos: str
    cos_name: str | None
    card_maker: str
    card_maker_name: str | None
    serial: str

    @classmethod
    def parse(cls, hist: bytes) -> SscHistorical:
        chip, cos, maker, serial = hist[0:2].hex(), hist[2:5].hex(), hist[5:7].hex(), hist[7:13]
        return cls(
            chip_maker=chip.upper(),
            chip_maker_name=CHIP_MAKERS.get(chip),
            cos=cos.upper(),
            cos_name=COS_PREFIXES.get(cos[:4]),
            card_maker=maker.upper(),
            card_maker_name=CARD_MAKERS.get(maker),
            serial=serial.hex().upper(),
        )


@dataclass(frozen=True)
class Atr:
    raw: bytes
    ts: int
    t0: int
    interface: tuple[InterfaceByte, ...]
    historical: bytes
    tck: int | None
    protocols: tuple[int, ...] = field(default=(0,))
    tck_ok: bool | None = None

    @property
    def convention(self) -> str:
        return "direct" if self.ts == 0x3B else "inverse"

    @property
    def offers_t0(self) -> bool:
        return 0 in self.protocols

    @property
    def offers_t1(self) -> bool:
        return 1 in self.protocols

    @property
    def ssc(self) -> SscHistorical | None:
        """Social security card fields when the ATR has the ``3B 6D 00 00`` shape."""
        if self.raw.startswith(SSC_PREFIX) and len(self.historical) == 13:
            return SscHistorical.parse(self.historical)
        return None

    def as_dict(self) -> dict[str, Any]:
        ssc = self.ssc
        return {
            "atr": self.raw.hex().upper(),
            "ts": f"{self.ts:02X}",
            "convention": self.convention,
            "t0": f"{self.t0:02X}",
            "interface": {b.name: f"{b.value:02X}" for b in self.interface},
            "protocols": [f"T={p}" for p in self.protocols],
            "historical": self.historical.hex().upper(),
            "tck": None if self.tck is None else f"{self.tck:02X}",
            "tck_ok": self.tck_ok,
            "ssc": None if ssc is None else ssc.__dict__,
        }


def parse_atr(raw: bytes) -> Atr:
    """Parse TS, T0, TAi..TDi, historical bytes and TCK; AtrFormatError when truncated."""
    if len(raw) < 2:
        raise AtrFormatError(f"ATR of {len(raw)} bytes is too short", f"ATR 仅 {len(raw)} 字节")
    ts, t0 = raw[0], raw[1]
    if ts not in (0x3B, 0x3F):
        raise AtrFormatError(f"TS {ts:02X} is neither 3B nor 3F", f"TS {ts:02X} 不是 3B 或 3F")
    pos, y, i = 2, t0 >> 4, 1
    k = t0 & 0x0F
    interface: list[InterfaceByte] = []
    protocols: list[int] = []
    while True:
        td: int | None = None
        for bit, letter in ((1, "A"), (2, "B"), (4, "C"), (8, "D")):
            if y & bit:
                if pos >= len(raw):
                    raise AtrFormatError(
                        f"ATR truncated in T{letter}{i}", f"ATR 在 T{letter}{i} 处被截断"
                    )
                interface.append(InterfaceByte(f"T{letter}{i}", raw[pos]))
                if letter == "D":
                    td = raw[pos]
                pos += 1
        if td is None:
            break
        if (td & 0x0F) != 15 and (td & 0x0F) not in protocols:
            protocols.append(td & 0x0F)
        y, i = td >> 4, i + 1
    if pos + k > len(raw):
        raise AtrFormatError("ATR truncated in the historical bytes", "ATR 历史字节被截断")
    historical = raw[pos : pos + k]
    pos += k
    needs_tck = any(p != 0 for p in protocols)
    tck: int | None = None
    tck_ok: bool | None = None
    if needs_tck and pos < len(raw):
        tck = raw[pos]
        x = 0
        for b in raw[1 : pos + 1]:
            x ^= b
        tck_ok = x == 0
        pos += 1
    elif needs_tck:
        raise AtrFormatError("ATR lacks its TCK byte", "ATR 缺少 TCK 校验字节")
    if pos != len(raw):
        raise AtrFormatError(
            f"{len(raw) - pos} extra bytes after the ATR", f"ATR 之后多出 {len(raw) - pos} 字节"
        )
    return Atr(
        raw=bytes(raw),
        ts=ts,
        t0=t0,
        interface=tuple(interface),
        historical=bytes(historical),
        tck=tck,
        protocols=tuple(protocols) or (0,),
        tck_ok=tck_ok,
    )


def protocols_of(raw: bytes) -> tuple[int, ...]:
    """Protocols an ATR offers; T=0 and T=1 both assumed when it cannot be parsed."""
    try:
        return parse_atr(raw).protocols
    except AtrFormatError:
        return (0, 1)
