"""ISO 7816-4 command and response APDUs: all four cases, short and extended.

A ``Command`` is built once and serves three jobs (pySim's lesson): building
the bytes, naming the command in traces, and being parsed back by the
simulated card. Le is kept as the number of bytes wanted: 256 encodes as
``00`` (short) and 65536 as ``0000`` (extended).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sscard.apdu.catalog import Ins, spec_for
from sscard.apdu.errors import ApduFormatError, CardError, error_for_sw, sw_text

MAX_SHORT_DATA = 255
MAX_SHORT_LE = 256
MAX_EXT_DATA = 65535
MAX_EXT_LE = 65536

_INIT_NAMES = {  # 8050 by P1 (JR/T 0025: load, purchase, CAPP purchase)
    0x00: "INITIALIZE FOR LOAD",
    0x01: "INITIALIZE FOR PURCHASE",
    0x03: "INITIALIZE FOR CAPP PURCHASE",
}


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ApduFormatError(f"{name} {value} is not a byte", f"{name}值{value}不是一个字节")


@dataclass(frozen=True)
class Command:
    """A command APDU. ``le=None`` means no Le field; 1..65536 bytes otherwise."""

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None
    extended: bool = False
    # The encoding, computed once: a Command is immutable and often re-sent.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _check_byte(name.upper(), getattr(self, name))
        if self.cla == 0xFF:
            raise ApduFormatError("CLA FF is reserved for PPS", "CLA FF 保留给PPS")
        if self.ins & 0xF0 in (0x60, 0x90):
            raise ApduFormatError(
                f"INS {self.ins:02X} is a T=0 procedure byte", f"INS {self.ins:02X} 是T=0过程字节"
            )
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > MAX_EXT_DATA:
            raise ApduFormatError(
                f"data of {len(self.data)} bytes exceeds 65535",
                f"数据{len(self.data)}字节超过65535",
            )
        if self.le is not None and not 1 <= self.le <= MAX_EXT_LE:
            raise ApduFormatError(f"Le {self.le} outside 1..65536", f"Le {self.le} 超出1..65536")

    # --- properties -----------------------------------------------------

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        return 1 + (self.le is not None) + 2 * bool(self.data)

    @property
    def is_extended(self) -> bool:
        return (
            self.extended
            or len(self.data) > MAX_SHORT_DATA
            or (self.le is not None and self.le > MAX_SHORT_LE)
        )

    @property
    def secure_messaging(self) -> bool:
        """CLA indicates secure messaging (e.g. 04, 0C, 84: PBOC MAC)."""
        if 0x40 <= self.cla <= 0x7F:
            return bool(self.cla & 0x20)
        return bool(self.cla & 0x0C)

    @property
    def proprietary(self) -> bool:
        return bool(self.cla & 0x80)

    @property
    def name(self) -> str:
        """The command's name from :mod:`sscard.apdu.catalog` (traces, errors)."""
        if self.proprietary and self.ins == Ins.INITIALIZE:
            return _INIT_NAMES.get(self.p1, "INITIALIZE")
        spec = spec_for(self.cla, self.ins)
        return spec.name if spec is not None and spec.name else f"INS {self.ins:02X}"

    def with_le(self, le: int | None) -> Command:
        return replace(self, le=le)

    # --- wire format ----------------------------------------------------

    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def _lc_field(self) -> bytes:
        if not self.data:
            return b""
        if self.is_extended:
            return b"\x00" + len(self.data).to_bytes(2, "big")
        return bytes([len(self.data)])

    def _le_field(self) -> bytes:
        if self.le is None:
            return b""
        if self.is_extended:
            value = (self.le % MAX_EXT_LE).to_bytes(2, "big")
            return value if self.data else b"\x00" + value
        return bytes([self.le % MAX_SHORT_LE])

    def __bytes__(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = self.header() + self._lc_field() + self.data + self._le_field()
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    def __repr__(self) -> str:
        parts = [self.name, (self.header() + self._lc_field()).hex().upper()]
        if self.data:
            parts.append(self.data.hex().upper())
        if self.le is not None:
            parts.append("Le=" + self._le_field().hex().upper())
        return " ".join(parts)

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        """Parse any of the four cases, short or extended; ApduFormatError says what is wrong."""
        n = len(raw)
        if n < 4:
            raise ApduFormatError(
                f"{n} bytes, a command needs at least 4 (CLA INS P1 P2)",
                f"仅{n}字节，命令至少需要4字节",
            )
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return cls(cla, ins, p1, p2)
        if n == 5:
            return cls(cla, ins, p1, p2, le=raw[4] or MAX_SHORT_LE)
        if raw[4] != 0:  # short Lc
            lc = raw[4]
            if n == 5 + lc:
                return cls(cla, ins, p1, p2, raw[5:])
            if n == 6 + lc:
                return cls(cla, ins, p1, p2, raw[5:-1], le=raw[-1] or MAX_SHORT_LE)
            raise ApduFormatError(
                f"Lc={lc} but {n - 5} bytes follow the header",
                f"Lc={lc}，但头部后有{n - 5}字节",
            )
        # raw[4] == 00: extended length
        if n == 6:
            raise ApduFormatError(
                "extended length field truncated at byte 5", "扩展长度字段在第5字节处被截断"
            )
        if n == 7:
            return cls(
                cla, ins, p1, p2, le=int.from_bytes(raw[5:7], "big") or MAX_EXT_LE, extended=True
            )
        lc = int.from_bytes(raw[5:7], "big")
        if lc == 0:
            raise ApduFormatError("extended Lc of 0", "扩展Lc为0")
        if n == 7 + lc:
            return cls(cla, ins, p1, p2, raw[7:], extended=True)
        if n == 9 + lc:
            le = int.from_bytes(raw[-2:], "big") or MAX_EXT_LE
            return cls(cla, ins, p1, p2, raw[7:-2], le=le, extended=True)
        raise ApduFormatError(
            f"extended Lc={lc} but {n - 7} bytes follow", f"扩展Lc={lc}，但其后有{n - 7}字节"
        )


@dataclass(frozen=True)
class Response:
    """A response APDU: data and status word."""

    data: bytes = b""
    sw: int = 0x9000

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise ApduFormatError(f"status word {self.sw} out of range", "状态字超出范围")

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ApduFormatError(
                f"response of {len(raw)} bytes has no status word",
                f"响应仅{len(raw)}字节，缺少状态字",
            )
        return cls(bytes(raw[:-2]), raw[-2] << 8 | raw[-1])

    def __bytes__(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @property
    def text(self) -> str:
        en, zh = sw_text(self.sw)
        return f"{self.sw:04X} {en} / {zh}"

    def error(self, ins: int | None = None) -> CardError | None:
        return None if self.ok else error_for_sw(self.sw, ins)

    def check(self, ins: int | None = None) -> Response:
        """Return self when SW is 9000, else raise the typed error (``ins`` refines 63Cx)."""
        err = self.error(ins)
        if err is not None:
            raise err
        return self

    def __repr__(self) -> str:
        data = self.data.hex().upper() + " " if self.data else ""
        return f"{data}{self.sw:04X}"
