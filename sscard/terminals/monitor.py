"""Card and reader events from PC/SC, as an explicit, closeable object.

Why not pyscard's ``CardMonitor``: it is a process-wide singleton thread that
prints tracebacks and dies on a reader unplug or a pcscd restart without telling
anyone (pyscard issues #13 #74 #82 #128).
Here:

- the caller owns the object and drives it (blocking iterator, ``get(timeout)``
  or an async generator); no thread of its own, ``close()`` wakes a blocked wait
  with SCardCancel and returns promptly;
- every wait is a bounded SCardGetStatusChange (reference §N3.3);
- reader arrival/removal comes from the ``\\\\?PnP?\\Notification`` pseudo-reader,
  with polling of the reader list as a fallback;
- losing pcscd (killed, restarted) is an ``error`` event, followed by
  ``removed``/``reader-gone`` for what was known; the context is re-established
  in the background of the next waits and ``recovered`` is reported, then the
  readers and cards are announced again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sscard.errors import SscardError
from sscard.terminals import pcsc
from sscard.terminals.errors import PcscUnavailable

EventKind = Literal["inserted", "removed", "reader-added", "reader-gone", "error", "recovered"]


@dataclass(frozen=True)
class CardEvent:
    """One thing that happened; ``reader`` is None for service-level events."""

    kind: EventKind
    reader: str | None = None
    atr: bytes = b""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reader": self.reader,
            "atr": self.atr.hex().upper() or None,
            "message": self.message or None,
        }

    def __str__(self) -> str:
        parts: list[str] = [self.kind]
        if self.reader:
            parts.append(self.reader)
        if self.atr:
            parts.append(f"ATR {self.atr.hex().upper()}")
        if self.message:
            parts.append(self.message)
        return " | ".join(parts)


class CardMonitor:
    """Watches readers (all, or those whose name contains one of ``readers``).

    ``initial=True`` reports the readers and cards already there when the
    monitor starts as ``reader-added``/``inserted``.
    """

    def __init__(
        self,
        readers: Sequence[str] | None = None,
        *,
        initial: bool = True,
        poll: float = 1.0,
        retry: float = 0.2,
    ) -> None:
        self._sc = pcsc.scard()
        self._filter = [r.lower() for r in readers] if readers else None
        self._poll = poll
        self._retry = retry
        self._ctx: pcsc.PcscContext | None = None
        self._ctx_lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._closed = threading.Event()
        self._pending: deque[CardEvent] = deque()
        self._state: dict[str, int] = {}
        self._present: dict[str, bool] = {}
        self._use_pnp = True
        self._pnp_state = 0
        self._quiet = not initial  # swallow the first snapshot when initial=False
        self._lost = False
        self._started = False

    # -- public ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def readers(self) -> list[str]:
        return list(self._state)

    def get(self, timeout: float | None = None) -> CardEvent | None:
        """The next event, or None when ``timeout`` (default: one poll) passes or closed."""
        wait = self._poll if timeout is None else timeout
        deadline = time.monotonic() + wait
        while not self._pending and not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and self._started:
                break
            with self._step_lock:
                if self.closed:
                    break
                self._step(max(0.0, min(remaining, self._poll)))
        return self._pending.popleft() if self._pending else None

    def __iter__(self) -> Iterator[CardEvent]:
        """Blocking iterator; ends when ``close()`` is called (from any thread)."""
        while not self.closed:
            event = self.get(self._poll)
            if event is not None:
                yield event

    async def events(self) -> AsyncIterator[CardEvent]:
        """Async generator over events; each wait runs in a worker thread, bounded by ``poll``."""
        while not self.closed:
            event = await asyncio.to_thread(self.get, self._poll)
            if event is not None:
                yield event

    def close(self) -> None:
        """Stop: wake any blocked wait (SCardCancel) and release the PC/SC context."""
        self._closed.set()
        with self._ctx_lock:
            if self._ctx is not None:
                self._ctx.cancel()
        if self._step_lock.acquire(timeout=self._poll + 1.0):
            try:
                self._drop_context()
            finally:
                self._step_lock.release()

    def __enter__(self) -> CardMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one bounded step -----------------------------------------------------------

    def _emit(self, event: CardEvent) -> None:
        if not self._quiet or event.kind in ("error", "recovered"):
            self._pending.append(event)

    def _drop_context(self) -> None:
        with self._ctx_lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.close()

    def _watched(self, name: str) -> bool:
        return self._filter is None or any(f in name.lower() for f in self._filter)

    def _step(self, timeout: float) -> None:
        self._started = True
        ctx = self._ctx
        if ctx is None:
            ctx = self._establish()
            if ctx is None:
                self._closed.wait(min(self._retry, timeout) if timeout > 0 else 0)
                return
            self._sync_readers(ctx)
        if not self._use_pnp:
            self._sync_readers(ctx)
        states: list[tuple[str, int]] = [(r, s) for r, s in self._state.items()]
        if self._use_pnp:
            states.append((pcsc.PNP_NOTIFICATION, self._pnp_state))
        try:
            hresult, new = ctx.status_change(states, timeout)
        except PcscUnavailable:
            hresult, new = pcsc.E_NO_SERVICE, []
        if hresult in (pcsc.E_TIMEOUT, pcsc.E_CANCELLED):
            self._quiet = False
            return
        if hresult in pcsc.SERVICE_LOST:
            self._service_lost()
            return
        if hresult in (pcsc.E_UNKNOWN_READER, pcsc.E_READER_UNAVAILABLE):
            if self._use_pnp and not self._pnp_works(ctx):
                self._use_pnp = False
            self._sync_readers(ctx)
            return
        if hresult != pcsc.S_SUCCESS:
            # pcsc-lite answers a waiting client whose daemon died with odd codes
            # (0x8010006A seen): ask the service whether it is still there.
            if not self._service_alive(ctx):
                self._service_lost()
                return
            err = pcsc.error_for("SCardGetStatusChange", hresult)
            self._emit(CardEvent("error", message=err.message_en))
            self._closed.wait(min(self._retry, timeout))
            return
        self._apply(ctx, new)
        self._quiet = False

    def _establish(self) -> pcsc.PcscContext | None:
        try:
            ctx = pcsc.PcscContext()
        except SscardError as exc:
            if not self._lost:
                self._lost = True
                self._emit(CardEvent("error", message=exc.message_en))
            return None
        with self._ctx_lock:
            if self.closed:
                ctx.close()
                return None
            self._ctx = ctx
        if self._lost:
            self._lost = False
            self._emit(CardEvent("recovered", message="PC/SC service is back"))
        return ctx

    def _service_lost(self) -> None:
        self._drop_context()
        self._lost = True
        self._emit(CardEvent("error", message=PcscUnavailable().message_en))
        for reader in list(self._state):
            self._forget(reader)
        self._pnp_state = 0

    def _forget(self, reader: str) -> None:
        if self._present.pop(reader, False):
            self._emit(CardEvent("removed", reader))
        self._state.pop(reader, None)
        self._emit(CardEvent("reader-gone", reader))

    @staticmethod
    def _service_alive(ctx: pcsc.PcscContext) -> bool:
        try:
            ctx.list_readers()
        except PcscUnavailable:
            return False
        except SscardError:
            return True
        return True

    def _pnp_works(self, ctx: pcsc.PcscContext) -> bool:
        hresult, _ = ctx.status_change([(pcsc.PNP_NOTIFICATION, self._sc.SCARD_STATE_UNAWARE)], 0)
        return hresult in (pcsc.S_SUCCESS, pcsc.E_TIMEOUT)

    def _sync_readers(self, ctx: pcsc.PcscContext) -> None:
        try:
            names = [r for r in ctx.list_readers() if self._watched(r)]
        except PcscUnavailable:
            self._service_lost()
            return
        for reader in list(self._state):
            if reader not in names:
                self._forget(reader)
        for reader in names:
            if reader not in self._state:
                self._state[reader] = self._sc.SCARD_STATE_UNAWARE
                self._present[reader] = False
                self._emit(CardEvent("reader-added", reader))

    def _apply(self, ctx: pcsc.PcscContext, new: list[tuple[str, int, list[int]]]) -> None:
        sc = self._sc
        resync = False
        for name, state, atr in new:
            if name == pcsc.PNP_NOTIFICATION:
                if state & sc.SCARD_STATE_CHANGED:
                    resync = True
                self._pnp_state = state & ~sc.SCARD_STATE_CHANGED
                continue
            if name not in self._state:
                continue
            if state & (sc.SCARD_STATE_UNKNOWN | sc.SCARD_STATE_UNAVAILABLE):
                resync = True
                continue
            self._state[name] = state & ~sc.SCARD_STATE_CHANGED
            present = bool(state & sc.SCARD_STATE_PRESENT)
            if present != self._present.get(name, False):
                self._present[name] = present
                self._emit(
                    CardEvent("inserted", name, bytes(atr))
                    if present
                    else CardEvent("removed", name)
                )
        if resync:
            self._sync_readers(ctx)
