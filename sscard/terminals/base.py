"""The one interface every way of reaching a card implements.

Why an ABC with so little in it: backends (PC/SC, in-process simulator, replay)
only move bytes; everything protocol-level (T=0 GET RESPONSE, 6Cxx, chaining,
tracing) lives once in ``Connection`` above them, as in pySim's ``LinkBase``
(osmocom pySim, ``pySim/transport/__init__.py``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

ProtocolName = Literal["T=0", "T=1"]


class Transport(ABC):
    """Moves one command APDU to the card and its response back, as ``bytes``."""

    #: Human-readable name (the reader name for PC/SC).
    name: str = "transport"

    def __init__(self, *, supports_extended: bool | None = None) -> None:
        self._txn_lock = threading.RLock()
        self._supports_extended = supports_extended
        # The session as the backend set it up: connect() fills both, disconnect() clears them.
        self._atr = b""
        self._protocol: ProtocolName | None = None

    @property
    def atr(self) -> bytes:
        """ATR of the connected card (b"" when not connected)."""
        return self._atr

    @property
    def protocol(self) -> ProtocolName | None:
        """Active protocol after ``connect``: "T=0" or "T=1"."""
        return self._protocol

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @property
    def supports_extended(self) -> bool:
        """Whether extended-length APDUs can be sent as such.

        T=0 cannot carry them (ISO 7816-3 §12.1: ENVELOPE or chaining instead);
        on T=1 we assume the reader can. ``supports_extended`` given to the
        constructor overrides that guess (a reader known to lack or to have them).
        """
        if self._supports_extended is not None:
            return self._supports_extended
        return self.protocol == "T=1"

    @abstractmethod
    def connect(self) -> None:
        """Power the card up (if needed) and open a session; NoCard if there is none."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the session; idempotent."""

    @abstractmethod
    def reconnect(self, reset: bool = False) -> None:
        """Re-open the session after a reset by someone else, optionally resetting the card."""

    @abstractmethod
    def transmit(self, apdu: bytes) -> bytes:
        """Send one C-APDU, return the R-APDU (data ‖ SW1 SW2) unchanged."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several APDUs so no other application interleaves (PC/SC transaction).

        The base version only serialises threads of this process; PC/SC adds
        SCardBeginTransaction/SCardEndTransaction. Re-entrant.
        """
        with self._txn_lock:
            yield

    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = f"{self.protocol}" if self.connected else "disconnected"
        return f"<{type(self).__name__} {self.name!r} {state}>"
