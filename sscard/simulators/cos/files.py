"""The ISO 7816-4 file system of the simulated card: DFs, EFs, keys, PINs, access rules.

Plain mutable objects: the card OS (``cos.card_os``) walks and changes them; a
profile loader builds them. Structures follow ISO 7816-4 §7 as used by the social
security card (reference §C1) and the purse (reference §P1):
transparent EF, linear fixed / linear variable record EF, cyclic EF.

Persistent state lives here (contents, counters, try counters, blocked flags);
volatile state (selection, challenge, security status) lives in
:class:`sscard.simulators.cos.card_os.SecurityState`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, IntFlag
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sscard.simulators.cos.applet import Applet


class AccessKind(Enum):
    """What a file operation needs (reference §C1.4-1.5, §C3.2)."""

    FREE = "free"
    PIN = "pin"  # the PIN of the DF (or an ancestor) verified in this session
    AUTH = "auth"  # a prior EXTERNAL AUTHENTICATE with key ``key_id``
    MAC = "mac"  # secure messaging (CLA 04/84) with a MAC under key ``key_id``
    NEVER = "never"


@dataclass(frozen=True)
class Access:
    """One access condition. ``Access.auth(0x0A)`` = external auth with RKSSSE."""

    kind: AccessKind = AccessKind.FREE
    key_id: int = 0

    @classmethod
    def auth(cls, key_id: int) -> Access:
        return cls(AccessKind.AUTH, key_id)

    @classmethod
    def mac(cls, key_id: int) -> Access:
        return cls(AccessKind.MAC, key_id)

    def __str__(self) -> str:
        if self.kind in (AccessKind.AUTH, AccessKind.MAC):
            return f"{self.kind.value}:{self.key_id:02X}"
        return self.kind.value


FREE = Access()
PIN = Access(AccessKind.PIN)
NEVER = Access(AccessKind.NEVER)


class RecordStructure(Enum):
    LINEAR_FIXED = "linear-fixed"
    LINEAR_VARIABLE = "linear-variable"
    CYCLIC = "cyclic"  # record 1 is the newest; appending drops the oldest when full


class KeyUse(IntFlag):
    """What a key may be used for (reference §C3.2 key table)."""

    INTERNAL_AUTH = 1  # IRK: INTERNAL AUTHENTICATE
    EXTERNAL_AUTH = 2  # PUK, UK*, RK*, RKSSSE: EXTERNAL AUTHENTICATE
    MAC = 4  # STK, UK*: secure messaging on UPDATE BINARY/RECORD
    PIN_UNBLOCK = 8  # PUK: UNBLOCK PIN
    PIN_RELOAD = 16  # RELOAD PIN


@dataclass(eq=False)
class Key:
    """A card key (IRK, PUK, STK, UK, RKSSSE, ...). ``tries``/``max_tries`` gate
    EXTERNAL AUTHENTICATE (63Cx, then 6983). ``algorithm`` is the SSSE flag
    (01 3DES, 03 SM4; reference §C3.1). The repr never shows the value."""

    key_id: int
    value: bytes
    algorithm: int = 0x01
    usage: KeyUse = KeyUse.EXTERNAL_AUTH | KeyUse.MAC
    max_tries: int = 3
    tries: int = 3
    name: str = ""

    @property
    def blocked(self) -> bool:
        return self.tries <= 0

    def __repr__(self) -> str:
        return f"Key({self.name or hex(self.key_id)}, alg={self.algorithm:02X}, tries={self.tries})"


@dataclass(eq=False)
class Pin:
    """The cardholder PIN of a DF: BCD digits, try counter (reference §C3.8, profile: 3).

    ``initial`` is the issuer's initial PIN value (kept so VERIFY can flag an
    initial PIN and CHANGE PIN can refuse to go back to it). Never printed.
    """

    value: bytes
    max_tries: int = 3
    tries: int = 3
    initial: bytes | None = None

    @property
    def blocked(self) -> bool:
        return self.tries <= 0

    def __repr__(self) -> str:
        return f"Pin(tries={self.tries}/{self.max_tries})"


@dataclass(eq=False)
class ElementaryFile:
    """Common part of every EF: identifiers and access rules."""

    fid: int | None = None
    sfi: int | None = None
    read: Access = FREE
    write: Access = NEVER
    name: str = ""  # for traces only
    parent: DedicatedFile | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"EF{self.fid:04X}" if self.fid is not None else f"SFI{self.sfi or 0:02X}"


@dataclass(eq=False)
class TransparentFile(ElementaryFile):
    """A binary EF: READ BINARY / UPDATE BINARY with an offset (fixed size)."""

    data: bytearray = field(default_factory=bytearray)


@dataclass(eq=False)
class RecordFile(ElementaryFile):
    """A record EF. Records are kept as ``bytes``; index 0 is record number 1.

    ``record_size`` is the fixed size (linear fixed, cyclic) or the maximum (linear
    variable, 0 = unlimited up to 255). ``max_records`` bounds APPEND/cyclic files.
    """

    structure: RecordStructure = RecordStructure.LINEAR_VARIABLE
    records: list[bytes] = field(default_factory=list)
    record_size: int = 0
    max_records: int = 0

    def find_by_tag(self, tag: int) -> int | None:
        """Index of the first simple-TLV record whose tag (first byte) is ``tag``."""
        for i, rec in enumerate(self.records):
            if rec and rec[0] == tag:
                return i
        return None

    def append(self, record: bytes) -> None:
        """APPEND RECORD semantics; for a cyclic file the new record becomes record 1."""
        if self.structure is RecordStructure.CYCLIC:
            self.records.insert(0, record)
            if self.max_records:
                del self.records[self.max_records :]
        else:
            self.records.append(record)


@dataclass(eq=False)
class DedicatedFile:
    """MF, DDF, DF or ADF. An ``applet`` adds instructions and the SELECT answer.

    ``algorithm`` is the SSSE algorithm flag used by the DF's keys (3DES 01 or
    SM4 03); ``proprietary`` is the content of the FCI's A5 template when no
    applet supplies its own SELECT answer.
    """

    fid: int | None = None
    name: bytes | None = None  # DF name / AID (SELECT by name, P1 04)
    children: list[DedicatedFile | ElementaryFile] = field(default_factory=list)
    keys: dict[int, Key] = field(default_factory=dict)
    pin: Pin | None = None
    applet: Applet | None = None
    algorithm: int = 0x01
    proprietary: bytes = b""
    blocked: bool = False  # application blocked: SELECT 6A81, other commands 9303
    label_text: str = ""
    parent: DedicatedFile | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        if self.label_text:
            return self.label_text
        if self.fid is not None:
            return f"DF{self.fid:04X}"
        return f"DF[{(self.name or b'').hex().upper()}]"

    def add(self, node: DedicatedFile | ElementaryFile) -> DedicatedFile:
        """Attach a child; returns self so trees can be built fluently."""
        node.parent = self
        self.children.append(node)
        return self

    def add_all(self, *nodes: DedicatedFile | ElementaryFile) -> DedicatedFile:
        for node in nodes:
            self.add(node)
        return self

    def child_by_fid(self, fid: int) -> DedicatedFile | ElementaryFile | None:
        for child in self.children:
            if child.fid == fid:
                return child
        return None

    def ef_by_sfi(self, sfi: int) -> ElementaryFile | None:
        for child in self.children:
            if isinstance(child, ElementaryFile) and child.sfi == sfi:
                return child
        return None

    def ancestry(self) -> Iterator[DedicatedFile]:
        """This DF, then its parent, up to the MF."""
        node: DedicatedFile | None = self
        while node is not None:
            yield node
            node = node.parent

    def walk(self) -> Iterator[DedicatedFile]:
        """This DF and every DF below it, depth first."""
        yield self
        for child in self.children:
            if isinstance(child, DedicatedFile):
                yield from child.walk()

    def find_key(self, key_id: int) -> Key | None:
        """A key of this DF, else of the nearest ancestor holding that ID."""
        for df in self.ancestry():
            key = df.keys.get(key_id)
            if key is not None:
                return key
        return None

    def find_pin(self) -> tuple[DedicatedFile, Pin] | None:
        for df in self.ancestry():
            if df.pin is not None:
                return df, df.pin
        return None
