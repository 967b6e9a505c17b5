"""PC/SC backend over pyscard's low-level ``smartcard.scard`` API.

Why the low-level API: it returns result codes instead of raising generic
exceptions, so each PC/SC code becomes one typed error (reference §N2-3:
0x8010001D no service, 0x80100069 removed card, 0x8010000C no card), and it is
the fastest path (§N4: ~53 µs raw vs ~63 µs through ``CardConnection``).

pyscard is imported lazily: the codec, crypto and simulator work where it is
not built (it has no Linux wheel, reference §N1).

Reader choice follows GlobalPlatformPro (martinpaljak/GlobalPlatformPro, its
``-r`` reader option): index, name substring, ``SSCARD_READER``; ignore list
``SSCARD_READER_IGNORE``; a typed error when ambiguous or absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Literal

from sscard.errors import DependencyMissing
from sscard.terminals.base import ProtocolName, Transport
from sscard.terminals.errors import (
    CardRemoved,
    CardReset,
    NoCard,
    NoReader,
    NotConnected,
    PcscError,
    PcscUnavailable,
    ReaderAmbiguous,
    ReaderBusy,
    ReaderGone,
    TerminalError,
    TerminalTimeout,
)

ShareMode = Literal["shared", "exclusive"]

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

# PC/SC result codes (pcsc-lite pcsclite.h), as unsigned 32-bit values.
S_SUCCESS = 0x00000000
E_CANCELLED = 0x80100002
E_INVALID_HANDLE = 0x80100003
E_UNKNOWN_READER = 0x80100009
E_TIMEOUT = 0x8010000A
E_SHARING_VIOLATION = 0x8010000B
E_NO_SMARTCARD = 0x8010000C
E_PROTO_MISMATCH = 0x8010000F
E_READER_UNAVAILABLE = 0x80100017
E_NOT_TRANSACTED = 0x80100016
E_NO_SERVICE = 0x8010001D
E_SERVICE_STOPPED = 0x8010001E
E_NO_READERS_AVAILABLE = 0x8010002E
F_COMM_ERROR = 0x80100013
W_UNRESPONSIVE_CARD = 0x80100066
W_UNPOWERED_CARD = 0x80100067
W_RESET_CARD = 0x80100068
W_REMOVED_CARD = 0x80100069

#: Seconds to wait for pcscd to notice a removal after a failed exchange (one poll is 0.4 s).
REMOVAL_GRACE = 1.0

#: Codes meaning "the PC/SC service is gone": re-establish the context.
SERVICE_LOST = frozenset({E_NO_SERVICE, E_SERVICE_STOPPED, E_INVALID_HANDLE, F_COMM_ERROR})

_scard_module: ModuleType | None = None


def scard() -> ModuleType:
    """``smartcard.scard``, imported on first use; DependencyMissing with the fix otherwise."""
    global _scard_module
    if _scard_module is None:
        try:
            from smartcard import scard as module
        except ImportError as exc:
            raise DependencyMissing(
                "pyscard is not installed: apt-get install libpcsclite-dev gcc, "
                f"then pip install pyscard ({exc})",
                "未安装 pyscard：请先 apt-get install libpcsclite-dev gcc，再 pip install pyscard",
            ) from exc
        _scard_module = module
    return _scard_module


def u32(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def error_for(call: str, hresult: int) -> TerminalError:
    """The typed error for a failed PC/SC call."""
    code = u32(hresult)
    if code in SERVICE_LOST:
        return PcscUnavailable()
    mapping: dict[int, type[TerminalError]] = {
        W_REMOVED_CARD: CardRemoved,
        W_RESET_CARD: CardReset,
        E_NO_SMARTCARD: NoCard,
        W_UNPOWERED_CARD: NoCard,
        E_UNKNOWN_READER: ReaderGone,
        E_READER_UNAVAILABLE: ReaderGone,
        E_SHARING_VIOLATION: ReaderBusy,
        E_TIMEOUT: TerminalTimeout,
        W_UNRESPONSIVE_CARD: TerminalTimeout,
    }
    kind = mapping.get(code)
    return kind() if kind is not None else PcscError(call, code)


def _check(call: str, hresult: int) -> None:
    if hresult != S_SUCCESS:
        raise error_for(call, hresult)


class PcscContext:
    """An ``SCARDCONTEXT``: established on creation, released by ``close``."""

    def __init__(self) -> None:
        self._sc = scard()
        hresult, handle = self._sc.SCardEstablishContext(self._sc.SCARD_SCOPE_USER)
        _check("SCardEstablishContext", hresult)
        self.handle: int | None = handle

    def list_readers(self) -> list[str]:
        if self.handle is None:
            raise PcscUnavailable()
        hresult, readers = self._sc.SCardListReaders(self.handle, [])
        if u32(hresult) == E_NO_READERS_AVAILABLE:
            return []
        _check("SCardListReaders", hresult)
        return list(readers)

    def status_change(
        self, states: list[tuple[str, int, Any]] | list[tuple[str, int]], timeout: float
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        """One bounded SCardGetStatusChange; returns (unsigned hresult, new states)."""
        if self.handle is None:
            raise PcscUnavailable()
        ms = max(0, int(timeout * 1000))
        hresult, new = self._sc.SCardGetStatusChange(self.handle, ms, states)
        return u32(hresult), new

    def cancel(self) -> None:
        """Wake a blocked SCardGetStatusChange (callable from another thread)."""
        if self.handle is not None:
            self._sc.SCardCancel(self.handle)

    def close(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            self._sc.SCardReleaseContext(handle)

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_readers() -> list[str]:
    """Reader names known to pcscd; PcscUnavailable when pcscd is not running."""
    with PcscContext() as ctx:
        return ctx.list_readers()


def ignore_list(ignore: Sequence[str] | None = None) -> list[str]:
    if ignore is not None:
        return [s for s in ignore if s]
    env = os.environ.get("SSCARD_READER_IGNORE", "")
    return [s.strip() for s in env.split(",") if s.strip()]


def usable_readers(readers: Sequence[str], ignore: Sequence[str] | None = None) -> list[str]:
    """Readers minus those matching the ignore list (case-insensitive substrings)."""
    skip = [s.lower() for s in ignore_list(ignore)]
    return [r for r in readers if not any(s in r.lower() for s in skip)]


def choose_reader(
    readers: Sequence[str],
    choice: str | int | None = None,
    *,
    ignore: Sequence[str] | None = None,
    with_card: Sequence[str] | None = None,
) -> str:
    """Pick one reader: by index, exact name, or unique substring; else a typed error.

    ``choice`` defaults to ``SSCARD_READER``. With no choice and several readers,
    the single one holding a card (``with_card``) wins, as in GPPro; otherwise
    ``ReaderAmbiguous`` lists the candidates.
    """
    if choice is None:
        choice = os.environ.get("SSCARD_READER") or None
    candidates = usable_readers(readers, ignore)
    if not candidates:
        raise NoReader(
            "no smart-card reader found" + (" (all ignored)" if readers else ""),
            "未找到读卡器" + ("（均被忽略）" if readers else ""),
        )
    if choice is None:
        if len(candidates) == 1:
            return candidates[0]
        if with_card is not None:
            loaded = [r for r in candidates if r in with_card]
            if len(loaded) == 1:
                return loaded[0]
        raise _ambiguous(candidates)
    if isinstance(choice, int) or choice.strip().isdigit():
        index = int(choice)
        if 0 <= index < len(candidates):
            return candidates[index]
        raise NoReader(
            f"no reader with index {index} (there are {len(candidates)})",
            f"没有序号为 {index} 的读卡器（共 {len(candidates)} 个）",
        )
    for reader in candidates:
        if reader == choice:
            return reader
    matches = [r for r in candidates if choice.lower() in r.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NoReader(f"no reader matches {choice!r}", f"没有读卡器匹配 {choice!r}")
    raise _ambiguous(matches)


def _ambiguous(names: Sequence[str]) -> ReaderAmbiguous:
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names))
    return ReaderAmbiguous(
        f"several readers match ({listing}): choose one with -r/--reader or SSCARD_READER",
        f"匹配到多个读卡器（{listing}）：请用 -r/--reader 或 SSCARD_READER 指定",
    )


def readers_with_card(ctx: PcscContext, readers: Sequence[str]) -> list[str]:
    if not readers:
        return []
    sc = scard()
    hresult, states = ctx.status_change([(r, sc.SCARD_STATE_UNAWARE) for r in readers], 0)
    if hresult != S_SUCCESS:
        return []
    return [name for name, state, _atr in states if state & sc.SCARD_STATE_PRESENT]


def wait_for_card(
    reader: str, *, present: bool = True, timeout: float = 5.0, context: PcscContext | None = None
) -> bool:
    """Block (SCardGetStatusChange, never a blind sleep) until a card is present/absent.

    Returns False when ``timeout`` runs out first.
    """
    ctx = context or PcscContext()
    sc = scard()
    try:
        deadline = time.monotonic() + timeout
        states: Any = [(reader, sc.SCARD_STATE_UNAWARE)]
        hresult, states = ctx.status_change(states, 0)
        while True:
            if hresult not in (S_SUCCESS, E_TIMEOUT):
                raise error_for("SCardGetStatusChange", hresult)
            state = states[0][1]
            if bool(state & sc.SCARD_STATE_PRESENT) == present and not state & (
                sc.SCARD_STATE_UNAVAILABLE
            ):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            hresult, states = ctx.status_change(
                [(reader, state & ~sc.SCARD_STATE_CHANGED)], min(remaining, 1.0)
            )
    finally:
        if context is None:
            ctx.close()


class PcscTransport(Transport):
    """A card in a PC/SC reader.

    ``reader``: index, name or substring (default ``SSCARD_READER``); ``share``:
    shared or exclusive; ``protocols``: which to offer (pcscd picks, we expose the
    result); ``wait``: seconds to wait for a card at connect (0 = fail at once).
    """

    def __init__(
        self,
        reader: str | int | None = None,
        *,
        share: ShareMode = "shared",
        protocols: Sequence[ProtocolName] = ("T=0", "T=1"),
        ignore: Sequence[str] | None = None,
        wait: float = 0.0,
        extended: bool | None = None,
    ) -> None:
        super().__init__(supports_extended=extended)
        self._sc = scard()
        self._choice = reader
        self._ignore = ignore
        self.share: ShareMode = share
        self._protocols = tuple(protocols)
        self._wait = wait
        self.name = reader if isinstance(reader, str) else "PC/SC"
        self._ctx: PcscContext | None = None
        self._hcard: int | None = None
        self._pci: int = 0
        self._txn_depth = 0

    # -- properties -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._hcard is not None

    def _share_flag(self) -> int:
        sc = self._sc
        return int(sc.SCARD_SHARE_EXCLUSIVE if self.share == "exclusive" else sc.SCARD_SHARE_SHARED)

    def _protocol_mask(self) -> int:
        sc = self._sc
        mask = 0
        if "T=0" in self._protocols:
            mask |= sc.SCARD_PROTOCOL_T0
        if "T=1" in self._protocols:
            mask |= sc.SCARD_PROTOCOL_T1
        return int(mask)

    def _set_protocol(self, active: int) -> None:
        sc = self._sc
        self._pci = active
        self._protocol = "T=1" if active == sc.SCARD_PROTOCOL_T1 else "T=0"

    # -- lifecycle ------------------------------------------------------------------

    def connect(self) -> None:
        if self._hcard is not None:
            return
        if self._ctx is None:
            self._ctx = PcscContext()
        ctx = self._ctx
        try:
            readers = ctx.list_readers()
            with_card = readers_with_card(ctx, readers) if self._choice is None else None
            reader = choose_reader(readers, self._choice, ignore=self._ignore, with_card=with_card)
            self.name = reader
            if self._wait > 0 and not wait_for_card(reader, timeout=self._wait, context=ctx):
                raise NoCard(
                    f"no card in {reader!r} after {self._wait:.1f} s",
                    f"{self._wait:.1f} 秒内读卡器 {reader!r} 中无卡",
                )
            hresult, hcard, active = self._sc.SCardConnect(
                ctx.handle, reader, self._share_flag(), self._protocol_mask()
            )
            _check("SCardConnect", hresult)
            self._hcard = hcard
            self._set_protocol(active)
            self._atr = self._read_atr()
        except BaseException:
            self._release_context()
            raise

    def _read_atr(self) -> bytes:
        hresult, _reader, _state, _proto, atr = self._sc.SCardStatus(self._hcard)
        _check("SCardStatus", hresult)
        return bytes(atr)

    def disconnect(self) -> None:
        hcard, self._hcard = self._hcard, None
        if hcard is not None:
            self._sc.SCardDisconnect(hcard, self._sc.SCARD_LEAVE_CARD)
        self._protocol = None
        self._atr = b""
        self._release_context()

    def _release_context(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.close()

    def reconnect(self, reset: bool = False) -> None:
        if self._hcard is None:
            self.connect()
            return
        disposition = self._sc.SCARD_RESET_CARD if reset else self._sc.SCARD_LEAVE_CARD
        hresult, active = self._sc.SCardReconnect(
            self._hcard, self._share_flag(), self._protocol_mask(), disposition
        )
        if u32(hresult) in SERVICE_LOST:  # pcscd restarted: the handle is dead
            self.disconnect()
            self.connect()
            return
        _check("SCardReconnect", hresult)
        self._set_protocol(active)
        self._atr = self._read_atr()

    # -- exchange -------------------------------------------------------------------

    def transmit(self, apdu: bytes) -> bytes:
        if self._hcard is None:
            raise NotConnected()
        hresult, response = self._sc.SCardTransmit(self._hcard, self._pci, list(apdu))
        if hresult or not response:
            self._transmit_failed(u32(hresult))
        return bytes(response)

    def _transmit_failed(self, hresult: int) -> None:
        """Turn a failed exchange into the right typed error.

        A card pulled out *during* an exchange does not give 0x80100069 at once:
        vpcd (and some readers) make pcscd return an empty response or
        SCARD_E_NOT_TRANSACTED until its next poll (400 ms) notices the removal.
        So on those we wait, bounded, for the reader to report the card gone.
        """
        if hresult not in (S_SUCCESS, E_NOT_TRANSACTED, W_UNRESPONSIVE_CARD):
            raise error_for("SCardTransmit", hresult)
        if self._ctx is not None and wait_for_card(
            self.name, present=False, timeout=REMOVAL_GRACE, context=self._ctx
        ):
            raise CardRemoved()
        if hresult == S_SUCCESS:
            return  # an empty answer: Response.parse reports it as ApduFormatError
        raise error_for("SCardTransmit", hresult)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """SCardBeginTransaction/End around a multi-APDU operation (re-entrant)."""
        with self._txn_lock:
            if self._hcard is None:
                raise NotConnected()
            outer = self._txn_depth == 0
            if outer:
                _check("SCardBeginTransaction", self._sc.SCardBeginTransaction(self._hcard))
            self._txn_depth += 1
            try:
                yield
            finally:
                self._txn_depth -= 1
                if outer and self._hcard is not None:
                    self._sc.SCardEndTransaction(self._hcard, self._sc.SCARD_LEAVE_CARD)
