"""Versioned blacklist and trust list, loaded from files, for validators and identity checks.

Why: a validator refuses a reported card before 8050 (reference part P, profile
row "Blacklist file"; §P5.6: validators keep versioned black- and whitelists);
loss reporting, replacement and cancellation are decided by the issuing place
(regulation Art. 7) and forged, altered or misused cards carry liability
(Art. 21). The formats are *sscard profile*: the official blacklist file format
is not public (reference §P7).

One text format for both lists (UTF-8/ASCII, ``#`` lines and blank lines ignored)::

    # sscard-blacklist/1 version=42 issued=2025-03-01
    03105170010170907984 01        purse ASN, 10 B = 20 hex digits, reason 01 (lost)
    330100D156000005011BA293AA4B9E55 card identification code, 16 B = 32 hex digits
    330100:X00000019 04            region code : 9-character card number

    # sscard-trustlist/1 version=7 issued=2025-03-01
    tunion                         any T-Union interoperable purse (EF 0017 flag 0001)
    01011000FFFFFFFF               a purse issuer ID, 8 B = 16 hex digits
    3310                           a purse issuing city: T-Union (GB/T 13497) code, the
                                   issuer ID bytes 2-3 (reference §P5.8)
    330000                         a GB/T 2260 region: 330000 = the province

(The trailing descriptions above are not part of the files.) A replacement list
with a lower version than the current one is refused unless forced, so an old
file cannot silently re-admit a card reported lost since.

Storage, measured for 1,000,000 ASNs on the 2-core build machine (numbers from
``benchmarks/bench_services.py`` and a one-off comparison; both vary with load):

=============================  ==========  ============  ===================
structure                      load        memory        lookups/s
=============================  ==========  ============  ===================
``frozenset`` of ``bytes``     0.7-1.3 s   77-92 MB      ~3,000,000
sorted ``bytes`` + bisect      1.6-2.5 s   11-15 MB      ~100,000-200,000
(chosen; 11 B per entry)
SQLite table, no rowid         ~5 s        ~19 MB        ~250,000
=============================  ==========  ============  ===================

A validator looks up one card per tap: 5-10 µs against a 400 ms budget
(reference §P6), while validators are small machines; so memory decides and
the sorted buffer is used. Duplicate lines are kept (harmless; ``len`` counts them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from sscard.cards.cities import city as tunion_city
from sscard.errors import ExitStatus, SscardError
from sscard.files import open_text

# --------------------------------------------------------------------------- errors


class ListError(SscardError):
    """Base class of list errors."""

    exit_status = ExitStatus.USAGE
    code = -14  # a configuration input is bad (sscard.errors.ConfigError uses the same)
    message_en = "bad card list"
    message_zh = "名单文件错误"


class ListFormatError(ListError):
    """A malformed header or entry; ``line`` is the 1-based line number (0: the file)."""

    def __init__(self, line: int, what_en: str, what_zh: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {what_en}", f"第{line}行：{what_zh}")


class ListVersionError(ListError):
    """A list older than the one in use: refused unless forced (rollback protection)."""

    def __init__(self, kind: str, offered: int, current: int) -> None:
        self.offered = offered
        self.current = current
        super().__init__(
            f"{kind} version {offered} is older than the current version {current}",
            f"名单版本{offered}低于当前版本{current}",
        )


# --------------------------------------------------------------------------- header

_L = TypeVar("_L")

_HEADER = re.compile(r"#\s*sscard-(\w+)/1\s+version=(\d+)\s+issued=(\d{4}-\d{2}-\d{2})\s*")


@dataclass(frozen=True)
class ListHeader:
    kind: str  # "blacklist" or "trustlist"
    version: int
    issued: date

    def line(self) -> str:
        return f"# sscard-{self.kind}/1 version={self.version} issued={self.issued.isoformat()}"


def _parse_header(first_line: str, kind: str) -> ListHeader:
    m = _HEADER.fullmatch(first_line.strip())
    if m is None:
        raise ListFormatError(
            1,
            f"expected '# sscard-{kind}/1 version=N issued=YYYY-MM-DD'",
            f"应为'# sscard-{kind}/1 version=N issued=YYYY-MM-DD'",
        )
    if m.group(1) != kind:
        raise ListFormatError(1, f"this is a {m.group(1)}, not a {kind}", f"不是{kind}文件")
    try:
        issued = date.fromisoformat(m.group(3))
    except ValueError:
        raise ListFormatError(1, "bad issue date", "发布日期错误") from None
    return ListHeader(kind, int(m.group(2)), issued)


def _load(path: str | os.PathLike[str], parse: Callable[[Iterable[str]], _L]) -> _L:
    """Stream the file into ``parse`` (a million lines are never held as a list)."""
    try:
        with open_text(path) as f:  # regular file, size bound (sscard.files)
            return parse(line.rstrip("\n") for line in f)
    except OSError as exc:
        raise ListError(
            f"cannot read {Path(path).name}: {exc.strerror}", "无法读取名单文件"
        ) from exc
    except UnicodeDecodeError:
        raise ListFormatError(0, "not UTF-8 text", "不是UTF-8文本") from None


def _split_header(lines: Iterable[str], kind: str) -> tuple[ListHeader, Iterator[str]]:
    it = iter(lines)
    first = next(it, None)
    if first is None:
        raise ListFormatError(1, "empty file", "空文件")
    return _parse_header(first, kind), it


def _check_version(header: ListHeader, current: int | None, force: bool) -> None:
    if current is not None and header.version < current and not force:
        raise ListVersionError(header.kind, header.version, current)


# --------------------------------------------------------------------------- blacklist


class BlacklistReason(Enum):
    """Why a card is listed (sscard profile codes). Members are truthy, even UNSPECIFIED."""

    UNSPECIFIED = 0
    LOST = 1  # loss reported (挂失), Art. 7
    CANCELLED = 2  # cancelled (注销), Art. 7
    REPLACED = 3  # superseded by a replacement or renewal (补换), Art. 7
    COUNTERFEIT = 4  # forged or altered (伪造、变造), Art. 21
    MISUSE = 5  # lent, transferred or used by another person (出借、转让、冒用), Art. 21

    @property
    def text_en(self) -> str:
        return _REASON_TEXT[self][0]

    @property
    def text_zh(self) -> str:
        return _REASON_TEXT[self][1]


_REASON_TEXT = {
    BlacklistReason.UNSPECIFIED: ("card is blacklisted", "卡片已列入黑名单"),
    BlacklistReason.LOST: (
        "card reported lost; contact the issuing place or 12333",
        "卡片已挂失，请联系发卡地或拨打12333",
    ),
    BlacklistReason.CANCELLED: ("card cancelled", "卡片已注销"),
    BlacklistReason.REPLACED: ("card replaced by a new card", "卡片已补换，请使用新卡"),
    BlacklistReason.COUNTERFEIT: ("card refused (forged or altered)", "卡片被拒（伪造或变造）"),
    BlacklistReason.MISUSE: ("card refused (not the holder's use)", "卡片被拒（非本人使用）"),
}
_REASON_BY_TOKEN = {f"{r.value:02X}": r for r in BlacklistReason}
_REASON_BYTE = {token: bytes((r.value,)) for token, r in _REASON_BY_TOKEN.items()}
_BY_VALUE = {r.value: r for r in BlacklistReason}

#: Key widths in bytes: purse ASN, region ‖ card number, card identification code.
ASN_LEN, CARD_NUMBER_LEN, CARD_ID_LEN = 10, 12, 16


class _SortedTable:
    """Fixed-width rows ``key ‖ reason`` in one sorted ``bytes``: ~11 B per ASN.

    A ``set`` of 1 M ``bytes`` costs ~90 B per entry; this costs the key plus one
    byte, and a binary search is ~20 slice comparisons.
    """

    def __init__(self, width: int, rows: list[bytes]) -> None:
        rows.sort()
        self.width = width
        self._row = width + 1
        self._n = len(rows)
        self._buf = b"".join(rows)

    def __len__(self) -> int:
        return self._n

    def get(self, key: bytes) -> int | None:
        """The reason byte of ``key``, or None."""
        if len(key) != self.width:
            return None
        buf, row, width = self._buf, self._row, self.width
        lo, hi = 0, self._n
        while lo < hi:
            mid = (lo + hi) // 2
            at = mid * row
            if buf[at : at + width] < key:
                lo = mid + 1
            else:
                hi = mid
        at = lo * row
        if lo < self._n and buf[at : at + width] == key:
            return buf[at + width]
        return None

    def items(self) -> Iterable[tuple[bytes, int]]:
        buf, row, width = self._buf, self._row, self.width
        for at in range(0, len(buf), row):
            yield buf[at : at + width], buf[at + width]


def _card_number_key(region: str, number: str) -> bytes | None:
    """``330100`` + ``X00000019`` -> 3 B BCD region ‖ 9 B ASCII; None if malformed."""
    if len(region) != 6 or not region.isascii() or not region.isdigit():
        return None
    if len(number) != 9 or not number.isascii() or not number.isalnum():
        return None
    return bytes.fromhex(region) + number.upper().encode("ascii")


def _hex_key(value: bytes | str, width: int) -> bytes | None:
    if isinstance(value, bytes):
        return value if len(value) == width else None
    if len(value) != 2 * width:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


class Blacklist:
    """Lost, cancelled, replaced or refused cards, by ASN, card ID code or card number.

    Keys are exact: a purse ASN (EF 0015[10..19]); an SSSE card identification
    code (EF05 rec 01, 16 B, whose first 3 B are the issuing region); or an SSSE
    region code with its 9-character card number (numbers are only unique within
    the issuing region). Lookups return the :class:`BlacklistReason` or None.
    """

    KIND: ClassVar[str] = "blacklist"

    def __init__(self, header: ListHeader, rows: dict[int, list[bytes]]) -> None:
        self.header = header
        self._tables = {width: _SortedTable(width, rows.get(width, [])) for width in _WIDTHS}

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def issued(self) -> date:
        return self.header.issued

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def __repr__(self) -> str:
        return f"Blacklist(version={self.version}, issued={self.issued}, entries={len(self)})"

    # ------------------------------------------------------------ loading

    @classmethod
    def empty(cls, version: int = 0, issued: date = date(1970, 1, 1)) -> Self:
        return cls(ListHeader(cls.KIND, version, issued), {})

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, current: int | None = None, force: bool = False
    ) -> Self:
        """Read a list file; refuse (:class:`ListVersionError`) a version below ``current``."""
        return _load(path, lambda lines: cls.parse(lines, current=current, force=force))

    def reload(self, path: str | os.PathLike[str], *, force: bool = False) -> Blacklist:
        """The list in ``path`` as a replacement for this one (no rollback unless forced)."""
        return self.load(path, current=self.version, force=force)

    @classmethod
    def parse(
        cls, lines: Iterable[str], *, current: int | None = None, force: bool = False
    ) -> Self:
        header, rest = _split_header(lines, cls.KIND)
        _check_version(header, current, force)
        rows: dict[int, list[bytes]] = {w: [] for w in _WIDTHS}
        asn_rows, id_rows, number_rows = rows[ASN_LEN], rows[CARD_ID_LEN], rows[CARD_NUMBER_LEN]
        fromhex, reason_byte = bytes.fromhex, _REASON_BYTE
        default = reason_byte["00"]
        # The hot loop for a million lines: as little work per line as possible.
        for lineno, line in enumerate(rest, start=2):
            parts = line.split()
            if not parts or parts[0][0] == "#":
                continue
            token = parts[0]
            try:
                if len(parts) == 1:
                    reason = default
                elif len(parts) == 2:
                    reason = reason_byte[parts[1].upper()]
                else:
                    raise ValueError
                size = len(token)
                if size == 2 * ASN_LEN:
                    asn_rows.append(fromhex(token) + reason)
                elif size == 2 * CARD_ID_LEN:
                    id_rows.append(fromhex(token) + reason)
                elif size == 16 and token[6] == ":":
                    key = _card_number_key(token[:6], token[7:])
                    if key is None:
                        raise ValueError
                    number_rows.append(key + reason)
                else:
                    raise ValueError
            except (ValueError, KeyError):
                raise ListFormatError(
                    lineno,
                    "expected an ASN (20 hex), a card ID code (32 hex) or REGION:CARDNO,"
                    " then an optional 2-digit reason",
                    "应为ASN（20位十六进制）、卡识别码（32位十六进制）或 区划:卡号，可加2位原因码",
                ) from None
        return cls(header, rows)

    # ------------------------------------------------------------ lookups

    def _reason(self, width: int, key: bytes | None) -> BlacklistReason | None:
        if key is None:
            return None
        value = self._tables[width].get(key)
        return None if value is None else _BY_VALUE[value]

    def check_asn(self, asn: bytes | str) -> BlacklistReason | None:
        """Reason if the purse ASN (10 B, or 20 hex digits) is listed, else None."""
        return self._reason(ASN_LEN, _hex_key(asn, ASN_LEN))

    def check_card_id(self, card_id_code: bytes | str) -> BlacklistReason | None:
        """Reason if the SSSE card identification code (16 B / 32 hex) is listed."""
        return self._reason(CARD_ID_LEN, _hex_key(card_id_code, CARD_ID_LEN))

    def check_card_number(self, region: str, number: str) -> BlacklistReason | None:
        """Reason if card ``number`` of issuing ``region`` (6 digits) is listed."""
        return self._reason(CARD_NUMBER_LEN, _card_number_key(region, number))

    # ------------------------------------------------------------ writing

    def lines(self) -> Iterable[str]:
        """The list in file form (header first); ``parse(list(bl.lines()))`` round-trips."""
        yield self.header.line()
        for width, table in self._tables.items():
            for key, reason in table.items():
                token = key.hex().upper()
                if width == CARD_NUMBER_LEN:
                    token = f"{key[:3].hex()}:{key[3:].decode('ascii')}"
                yield token if reason == 0 else f"{token} {reason:02X}"


_WIDTHS = (ASN_LEN, CARD_NUMBER_LEN, CARD_ID_LEN)


# --------------------------------------------------------------------------- trust list

#: The four Yangtze River Delta provinces (regulation Art. 4, 22): Shanghai,
#: Jiangsu, Zhejiang, Anhui.
DELTA_REGIONS = ("310000", "320000", "330000", "340000")
TUNION = "tunion"


@dataclass(frozen=True)
class TrustList:
    """Accepted issuers: purse issuer IDs, T-Union interoperable cards, SSSE regions.

    A purse card is trusted if it is T-Union interoperable (EF 0017
    interoperability flag ``0001``) and ``tunion`` is listed, or if its 8-B
    issuer ID (EF 0015[0..7]) or its issuing city (the T-Union city code in issuer
    ID bytes 2-3, :mod:`sscard.cards.cities`) is listed. An SSSE card is trusted if its issuing
    region, its prefecture (``xxyy00``) or its province (``xx0000``) is listed.
    """

    KIND: ClassVar[str] = "trustlist"

    header: ListHeader
    tunion: bool
    issuer_ids: frozenset[bytes]
    regions: frozenset[str]
    cities: frozenset[str] = frozenset()

    @property
    def version(self) -> int:
        return self.header.version

    @classmethod
    def default(cls) -> TrustList:
        """The four delta provinces and national T-Union, version 0 (Art. 11: any province)."""
        return cls(
            ListHeader(cls.KIND, 0, date(2022, 10, 1)), True, frozenset(), frozenset(DELTA_REGIONS)
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, current: int | None = None, force: bool = False
    ) -> TrustList:
        return _load(path, lambda lines: cls.parse(lines, current=current, force=force))

    def reload(self, path: str | os.PathLike[str], *, force: bool = False) -> TrustList:
        return self.load(path, current=self.version, force=force)

    @classmethod
    def parse(
        cls, lines: Iterable[str], *, current: int | None = None, force: bool = False
    ) -> TrustList:
        header, rest = _split_header(lines, cls.KIND)
        _check_version(header, current, force)
        tunion = False
        issuers: set[bytes] = set()
        regions: set[str] = set()
        cities: set[str] = set()
        for lineno, line in enumerate(rest, start=2):
            parts = line.split()
            if not parts or parts[0][0] == "#":
                continue
            token = parts[0]
            if len(parts) == 1 and token.lower() == TUNION:
                tunion = True
            elif len(parts) == 1 and len(token) == 6 and token.isascii() and token.isdigit():
                regions.add(token)
            elif len(parts) == 1 and len(token) == 4 and token.isascii() and token.isdigit():
                if tunion_city(token) is None:
                    raise ListFormatError(
                        lineno,
                        f"{token} is not a T-Union city code",
                        f"{token}不是交通联合城市代码",
                    )
                cities.add(token)
            elif len(parts) == 1 and (key := _hex_key(token, 8)) is not None:
                issuers.add(key)
            else:
                raise ListFormatError(
                    lineno,
                    "expected 'tunion', an issuer ID (16 hex), a city code (4 digits)"
                    " or a region code (6 digits)",
                    "应为tunion、发卡机构标识（16位十六进制）、城市代码（4位数字）"
                    "或行政区划代码（6位数字）",
                )
        return cls(header, tunion, frozenset(issuers), frozenset(regions), frozenset(cities))

    def trusts_purse(self, issuer_id: bytes, *, interoperable: bool) -> bool:
        """Is a purse card of this issuer accepted? ``interoperable``: EF 0017 flag ``0001``."""
        return (
            (interoperable and self.tunion)
            or issuer_id in self.issuer_ids
            or issuer_id[2:4].hex() in self.cities
        )

    def trusts_region(self, region: str) -> bool:
        """Is an SSSE card issued in ``region`` (6 digits, GB/T 2260) accepted?"""
        if len(region) != 6:
            return False
        return not self.regions.isdisjoint((region, region[:4] + "00", region[:2] + "0000"))

    def trusts_card_id(self, card_id_code: bytes | str) -> bool:
        """Is the card of this identification code accepted? Its first 3 B are the region."""
        key = _hex_key(card_id_code, CARD_ID_LEN)
        return key is not None and self.trusts_region(key[:3].hex())

    def lines(self) -> Iterable[str]:
        yield self.header.line()
        if self.tunion:
            yield TUNION
        yield from sorted(i.hex().upper() for i in self.issuer_ids)
        yield from sorted(self.cities)
        yield from sorted(self.regions)
