"""Where the service's readers come from: PC/SC (pcscd), or in-process simulated slots.

The service talks to readers through this small interface so that one code path
serves a real deployment (``PcscBackend``: pcscd, any PC/SC reader, events from
:class:`~sscard.terminals.monitor.CardMonitor`, which survives a pcscd restart and a
reader unplug) and a machine without readers (``SimBackend``: ``sscard --sim
card.json serve``, and the fast tests of the HTTP layer, which insert and eject
simulated cards by hand).

Each operation opens its own connection and closes it afterwards: a card swapped
between two requests, or a pcscd restarted, never leaves a stale handle behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sscard.simulators.base import SimulatedCard
from sscard.terminals.connection import Connection
from sscard.terminals.errors import NoCard, NoReader
from sscard.terminals.monitor import CardEvent

ReaderState = Literal["empty", "card", "error"]
Publish = Callable[[CardEvent], None]


@dataclass(frozen=True)
class ReaderInfo:
    """One reader as ``GET /v1/readers`` shows it (no personal data: the ATR is not)."""

    name: str
    state: ReaderState
    atr: bytes = b""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "card": self.state == "card",
            "atr": self.atr.hex().upper() or None,
        }


class Backend(Protocol):
    """What the service needs from the readers."""

    def list_readers(self) -> list[ReaderInfo]: ...

    def open(self, name: str) -> Connection:
        """A connected Connection to the card in reader ``name`` (NoCard if empty)."""
        ...

    def watch(self, publish: Publish, stop: threading.Event) -> None:
        """Block, calling ``publish`` for every card/reader event, until ``stop`` is set."""
        ...

    def wake(self) -> None:
        """Make a blocked ``watch`` notice ``stop`` promptly."""
        ...


def _ignored(name: str, ignore: Sequence[str]) -> bool:
    return any(s.lower() in name.lower() for s in ignore if s)


class PcscBackend:
    """Readers of the local pcscd; ``ignore`` hides readers (e.g. the PSAM's)."""

    def __init__(self, ignore: Sequence[str] = (), *, poll: float = 0.5) -> None:
        self.ignore = tuple(ignore)
        self._poll = poll
        self._monitor_lock = threading.Lock()
        self._monitor: object | None = None

    def list_readers(self) -> list[ReaderInfo]:
        from sscard.terminals import pcsc

        sc = pcsc.scard()
        with pcsc.PcscContext() as ctx:
            names = [n for n in ctx.list_readers() if not _ignored(n, self.ignore)]
            if not names:
                return []
            hresult, states = ctx.status_change([(n, sc.SCARD_STATE_UNAWARE) for n in names], 0)
        if hresult != pcsc.S_SUCCESS:
            return [ReaderInfo(n, "error") for n in names]
        out = []
        for name, state, atr in states:
            if state & (sc.SCARD_STATE_UNAVAILABLE | sc.SCARD_STATE_MUTE):
                out.append(ReaderInfo(name, "error"))
            elif state & sc.SCARD_STATE_PRESENT:
                out.append(ReaderInfo(name, "card", bytes(atr)))
            else:
                out.append(ReaderInfo(name, "empty"))
        return out

    def open(self, name: str) -> Connection:
        from sscard.terminals.pcsc import PcscTransport

        return Connection(PcscTransport(name)).connect()

    def watch(self, publish: Publish, stop: threading.Event) -> None:
        from sscard.terminals.monitor import CardMonitor

        monitor = CardMonitor(initial=True, poll=self._poll)
        with self._monitor_lock:
            self._monitor = monitor
        try:
            while not stop.is_set():
                event = monitor.get(self._poll)
                if event is not None and not (event.reader and _ignored(event.reader, self.ignore)):
                    publish(event)
        finally:
            monitor.close()

    def wake(self) -> None:
        with self._monitor_lock:
            monitor = self._monitor
        if monitor is not None:
            monitor.close()  # type: ignore[attr-defined]


class SimBackend:
    """In-process slots holding simulated cards; ``insert``/``eject`` publish events."""

    def __init__(self, names: Sequence[str] = ("sscard simulator 00",)) -> None:
        self._cards: dict[str, SimulatedCard | None] = dict.fromkeys(names)
        self._lock = threading.Lock()
        self._listeners: list[Publish] = []
        self._wake = threading.Event()

    @property
    def names(self) -> list[str]:
        return list(self._cards)

    def insert(self, name: str, card: SimulatedCard) -> None:
        with self._lock:
            self._cards[name] = card
            listeners = list(self._listeners)
        for publish in listeners:
            publish(CardEvent("inserted", name, card.atr))

    def eject(self, name: str) -> None:
        with self._lock:
            had = self._cards.get(name) is not None
            self._cards[name] = None
            listeners = list(self._listeners)
        if had:
            for publish in listeners:
                publish(CardEvent("removed", name))

    def unplug(self, name: str) -> None:
        """The reader goes away, card and all (a USB reader pulled out)."""
        with self._lock:
            had = self._cards.pop(name, None) is not None
            listeners = list(self._listeners)
        for publish in listeners:
            if had:
                publish(CardEvent("removed", name))
            publish(CardEvent("reader-gone", name))

    def plug(self, name: str) -> None:
        """A reader (empty) is plugged in."""
        with self._lock:
            self._cards.setdefault(name, None)
            listeners = list(self._listeners)
        for publish in listeners:
            publish(CardEvent("reader-added", name))

    def list_readers(self) -> list[ReaderInfo]:
        with self._lock:
            return [
                ReaderInfo(n, "card", c.atr) if c is not None else ReaderInfo(n, "empty")
                for n, c in self._cards.items()
            ]

    def open(self, name: str) -> Connection:
        from sscard.terminals.simulator import SimulatorTransport

        with self._lock:
            if name not in self._cards:
                raise NoReader(f"no reader named {name!r}", f"没有名为 {name!r} 的读卡器")
            card = self._cards[name]
        if card is None:
            raise NoCard()
        return Connection(SimulatorTransport(card, name=name)).connect()

    def watch(self, publish: Publish, stop: threading.Event) -> None:
        with self._lock:
            # A previous service's ``wake`` left the flag set: without clearing it, a
            # second service on this backend (the benchmark's load rows, a restarted
            # demo) spins here holding the GIL, ~20 ms on every HTTP read.
            self._wake.clear()
            self._listeners.append(publish)
            snapshot = list(self._cards.items())
        for name, card in snapshot:
            publish(CardEvent("reader-added", name))
            if card is not None:
                publish(CardEvent("inserted", name, card.atr))
        try:
            while not stop.is_set():
                self._wake.wait(1.0)
        finally:
            with self._lock:
                self._listeners.remove(publish)

    def wake(self) -> None:
        self._wake.set()
