"""BER-TLV (ISO 7816-4 / EMV) and the social-security simple record TLV.

BER-TLV: multi-byte tags (low 5 bits 11111 in the first byte, then bytes with
b8 set until the last), lengths of 1 to 3 bytes (``xx`` < 80, ``81 xx``,
``82 xx xx``), constructed tags (bit 6 of the first byte) nest. Used for FCI
templates (SELECT answers, 6F/A5/9F0C, reference §P1.2).

Simple TLV: ``tag(1) len(1) value``, the form of every SSSE record
(reference §C1.3): READ RECORD returns the whole TLV.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sscard.apdu.errors import TlvError


@dataclass(frozen=True)
class Tlv:
    """One BER-TLV object; ``children`` is set for constructed tags."""

    tag: int
    value: bytes = b""
    children: tuple[Tlv, ...] | None = None

    @property
    def constructed(self) -> bool:
        return bool(_tag_bytes(self.tag)[0] & 0x20)

    @classmethod
    def of(cls, tag: int, *children: Tlv) -> Tlv:
        """A constructed object built from its children."""
        return cls(tag, b"".join(c.encode() for c in children), tuple(children))

    def encode(self) -> bytes:
        value = (
            b"".join(c.encode() for c in self.children) if self.children is not None else self.value
        )
        return _tag_bytes(self.tag) + encode_length(len(value)) + value

    def find(self, *path: int) -> Tlv | None:
        """The descendant reached by the tag path, or None."""
        return ber_find(self.children or (), *path)

    def __repr__(self) -> str:
        if self.children is not None:
            inner = ", ".join(repr(c) for c in self.children)
            return f"Tlv({self.tag:X}: [{inner}])"
        return f"Tlv({self.tag:X}: {self.value.hex().upper()})"


def _tag_bytes(tag: int) -> bytes:
    if tag < 0:
        raise TlvError(f"negative tag {tag}", f"标签为负：{tag}")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    if _read_tag(raw, 0) != (tag, len(raw)):
        raise TlvError(f"{tag:X} is not a well-formed BER tag", f"{tag:X} 不是合法的BER标签")
    return raw


def encode_length(n: int) -> bytes:
    """BER length: 1 byte below 128, else 81 xx or 82 xx xx."""
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    raise TlvError(f"length {n} needs more than 3 length bytes", f"长度{n}超过3字节长度编码")


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError(f"tag missing at offset {pos}", f"偏移{pos}处缺少标签")
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError(
                    f"multi-byte tag truncated at offset {start}", f"偏移{start}处多字节标签被截断"
                )
            b = data[pos]
            pos += 1
            if not b & 0x80:
                break
            if pos - start > 4:
                raise TlvError(
                    f"tag longer than 4 bytes at offset {start}", f"偏移{start}处标签过长"
                )
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError(f"length missing at offset {pos}", f"偏移{pos}处缺少长度")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n not in (1, 2):
        raise TlvError(
            f"length form {first:02X} at offset {pos} not supported", f"偏移{pos}处长度格式不支持"
        )
    if pos + 1 + n > len(data):
        raise TlvError(f"length bytes truncated at offset {pos}", f"偏移{pos}处长度字节被截断")
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def ber_decode(data: bytes, *, depth: int = 0) -> list[Tlv]:
    """All top-level objects in ``data``; constructed objects are parsed recursively.

    Padding bytes 00 and FF between objects (ISO 7816-4 §5.2.2) are skipped.
    Raises TlvError with the offset of the problem; never IndexError.
    """
    if depth > 16:
        raise TlvError("nesting deeper than 16 levels", "嵌套超过16层")
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        end = pos + length
        if end > len(data):
            raise TlvError(
                f"tag {tag:X} at offset {start}: length {length} runs past the end "
                f"({len(data) - pos} bytes left)",
                f"偏移{start}处标签{tag:X}的长度{length}超出数据末尾",
            )
        value = data[pos:end]
        if _tag_bytes(tag)[0] & 0x20:
            out.append(Tlv(tag, value, tuple(ber_decode(value, depth=depth + 1))))
        else:
            out.append(Tlv(tag, value))
        pos = end
    return out


def ber_encode(objects: Iterable[Tlv]) -> bytes:
    """Concatenated encodings of ``objects``."""
    return b"".join(o.encode() for o in objects)


def ber_find(objects: Iterable[Tlv], *path: int) -> Tlv | None:
    """Follow a tag path, e.g. ``ber_find(fci, 0x6F, 0xA5, 0x9F0C)``."""
    if not path:
        return None
    for obj in objects:
        if obj.tag == path[0]:
            if len(path) == 1:
                return obj
            return ber_find(obj.children or (), *path[1:])
    return None


def simple_tlv_encode(tag: int, value: bytes) -> bytes:
    """``tag len value`` with one-byte tag and length (reference §C1.3)."""
    if not 0 < tag < 0xFF:
        raise TlvError(f"simple TLV tag {tag:#x} out of range 01-FE", "简单TLV标签超出01-FE范围")
    if len(value) > 0xFE:
        raise TlvError(f"simple TLV value of {len(value)} bytes > 254", "简单TLV值超过254字节")
    return bytes([tag, len(value)]) + value


def simple_tlv_decode(record: bytes) -> tuple[int, bytes]:
    """One SSSE record ``tag len value`` -> (tag, value); trailing bytes are an error."""
    if len(record) < 2:
        raise TlvError(f"record of {len(record)} bytes has no tag and length", "记录缺少标签和长度")
    tag, length = record[0], record[1]
    if 2 + length > len(record):
        raise TlvError(
            f"record tag {tag:02X}: length {length} runs past the end ({len(record) - 2} bytes)",
            f"记录标签{tag:02X}的长度{length}超出数据末尾",
        )
    if 2 + length < len(record):
        raise TlvError(
            f"record tag {tag:02X}: {len(record) - 2 - length} bytes after the value",
            f"记录标签{tag:02X}的值后有多余字节",
        )
    return tag, record[2 : 2 + length]
