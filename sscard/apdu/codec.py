"""BCD and the social-security field padding rules.

reference §C1.3: **cn** (compressed numeric, BCD) is left-aligned and padded
on the right with F; **an** is left-aligned and padded on the right with 00.
Dates on the card and in purse records are BCD YYYYMMDD (time hhmmss).
"""

from __future__ import annotations

from datetime import date, datetime

from sscard.apdu.errors import TlvError

_HEX_DIGITS = "0123456789"


def to_bcd(digits: str) -> bytes:
    """``"20240101"`` -> ``20 24 01 01``; an odd length is padded with F."""
    if any(c not in _HEX_DIGITS for c in digits):
        raise TlvError(f"not a decimal string: {digits!r}", f"不是十进制数字串：{digits!r}")
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def from_bcd(data: bytes) -> str:
    """BCD bytes to digits, stopping at the first F nibble (cn padding)."""
    text = data.hex().upper()
    end = text.find("F")
    if end >= 0:
        if text[end:].strip("F"):
            raise TlvError("BCD digits after F padding", "F填充后仍有数字")
        text = text[:end]
    if any(c not in _HEX_DIGITS for c in text):
        raise TlvError(f"not BCD: {data.hex().upper()}", f"不是BCD编码：{data.hex().upper()}")
    return text


def cn_encode(digits: str, length: int) -> bytes:
    """A cn field of ``length`` bytes: BCD, left-aligned, right-padded with F."""
    raw = to_bcd(digits)
    if len(raw) > length:
        raise TlvError(f"{len(digits)} digits do not fit {length} bytes", "数字位数超过字段长度")
    return bytes.fromhex(digits + "F" * (2 * length - len(digits)))


def cn_decode(data: bytes) -> str:
    """The digits of a cn field (F padding removed)."""
    return from_bcd(data)


def an_encode(text: str | bytes, length: int, encoding: str = "gbk") -> bytes:
    """An an field of ``length`` bytes: left-aligned, right-padded with 00."""
    raw = text.encode(encoding) if isinstance(text, str) else text
    if len(raw) > length:
        raise TlvError(f"{len(raw)} bytes do not fit {length}", "数据长度超过字段长度")
    return raw + bytes(length - len(raw))


def an_decode(data: bytes, encoding: str = "gbk") -> str:
    """The text of an an field (trailing 00 removed)."""
    try:
        return data.rstrip(b"\x00").decode(encoding)
    except UnicodeDecodeError as exc:
        raise TlvError(
            f"not {encoding} text at byte {exc.start}", f"第{exc.start}字节不是{encoding}编码"
        ) from None


def bcd_date(d: date) -> bytes:
    """4-byte BCD YYYYMMDD."""
    if d.year >= 1000:  # fast path: the same digits strftime writes
        return bytes.fromhex(f"{d.year:04d}{d.month:02d}{d.day:02d}")
    return to_bcd(d.strftime("%Y%m%d"))


def parse_bcd_date(data: bytes) -> date:
    """A 4-byte BCD YYYYMMDD to a date; TlvError if it is not a real date."""
    text = from_bcd(data)
    try:
        if len(text) == 8:  # fixed width: exactly the fields strptime would take
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise TlvError(
            f"not a date: {data.hex().upper()}", f"不是日期：{data.hex().upper()}"
        ) from None


def bcd_datetime(dt: datetime) -> bytes:
    """7-byte BCD YYYYMMDDhhmmss, as in MAC1/MAC2/TAC inputs (reference §P4.4)."""
    if dt.year >= 1000:  # fast path: the same digits strftime writes
        return bytes.fromhex(
            f"{dt.year:04d}{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"
        )
    return to_bcd(dt.strftime("%Y%m%d%H%M%S"))


def parse_bcd_datetime(data: bytes) -> datetime:
    """A 7-byte BCD YYYYMMDDhhmmss to a datetime."""
    text = from_bcd(data)
    try:
        if len(text) == 14:  # fixed width: exactly the fields strptime would take
            t = text
            return datetime(
                int(t[:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]), int(t[12:14])
            )
        return datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise TlvError(f"not a date-time: {data.hex().upper()}", "不是日期时间") from None
