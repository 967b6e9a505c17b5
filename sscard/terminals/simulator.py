"""In-process transport: a ``SimulatedCard`` behind the same interface as a real reader.

jcardsim's lesson (licel/jcardsim: ``CardSimulator`` with programmatic insert): tests and
demos use the same terminal API as production, with programmatic insert and
eject. Errors match the PC/SC path: no card -> ``NoCard``; eject (or a new card)
after connect -> ``CardRemoved`` until ``reconnect``/``connect``.

T=0 behaviour (61xx / 6Cxx) is the card's business: a card model built for T=0
answers that way itself, and this transport only reports the protocol the ATR
offers (T=0 when TD1 is absent, ISO 7816-3 §8.2.3).
"""

from __future__ import annotations

import threading

from sscard.card_interface import CardTorn, SimulatedCard
from sscard.terminals.atr import protocols_of
from sscard.terminals.base import ProtocolName, Transport
from sscard.terminals.errors import CardRemoved, NoCard, NotConnected


class SimulatorTransport(Transport):
    """One virtual reader slot holding (or not) one simulated card."""

    def __init__(
        self,
        card: SimulatedCard | None = None,
        *,
        name: str = "sscard simulator",
        protocol: ProtocolName | None = None,
        supports_extended: bool | None = None,
    ) -> None:
        super().__init__(supports_extended=supports_extended)
        self.name = name
        self._card = card
        self._generation = 0  # bumps on every insert/eject
        self._session: int | None = None  # generation we connected to
        self._forced_protocol = protocol
        self._lock = threading.Lock()

    # -- the slot -------------------------------------------------------------------

    @property
    def card(self) -> SimulatedCard | None:
        return self._card

    @property
    def card_present(self) -> bool:
        return self._card is not None

    def insert(self, card: SimulatedCard) -> None:
        with self._lock:
            self._card = card
            self._generation += 1

    def eject(self) -> SimulatedCard | None:
        with self._lock:
            card, self._card = self._card, None
            self._generation += 1
        if card is not None:
            card.power_off()
        return card

    # -- Transport ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._session is not None

    def connect(self) -> None:
        with self._lock:
            card = self._card
            if card is None:
                raise NoCard()
            self._atr = card.power_on()
            self._session = self._generation
            self._protocol = self._forced_protocol or self._negotiate(self._atr)

    @staticmethod
    def _negotiate(atr: bytes) -> ProtocolName:
        """Prefer T=1 when offered, like pcscd with SCARD_PROTOCOL_T0 | T1."""
        return "T=1" if 1 in protocols_of(atr) else "T=0"

    def disconnect(self) -> None:
        self._session = None
        self._protocol = None
        self._atr = b""

    def reconnect(self, reset: bool = False) -> None:
        with self._lock:
            card = self._card
            if card is None:
                self._session = None
                raise NoCard()
            if reset or self._session != self._generation:
                self._atr = card.reset() if self._session == self._generation else card.power_on()
            self._session = self._generation
            self._protocol = self._forced_protocol or self._negotiate(self._atr)

    def transmit(self, apdu: bytes) -> bytes:
        session, card = self._session, self._card
        if session is None:
            raise NotConnected()
        if card is None or session != self._generation:
            raise CardRemoved()
        try:
            return card.execute(apdu)
        except CardTorn:
            # The card left the field mid-APDU: this session is over; the card
            # stays in the reader and the next connect() powers it up again.
            with self._lock:
                self._generation += 1
                self._session = None
            raise CardRemoved() from None
