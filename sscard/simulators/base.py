"""The small card-OS interface every simulated card implements, and a trivial card.

The interface itself (:class:`SimulatedCard`, :class:`CardTorn`) lives in
:mod:`sscard.card_interface` so the terminal layer can use it without importing
simulators; it is re-exported here for the simulators and their users.
"""

from __future__ import annotations

from sscard.card_interface import CardNotPowered, CardTorn, SimulatedCard

__all__ = ["CardNotPowered", "CardTorn", "CardWrapper", "EchoCard", "SimulatedCard"]


class CardWrapper:
    """A simulated card that passes everything to ``card``: the base of a card standing
    between a terminal and another card (a slow reader, a card at contact speed, a tampered
    answer, a recorder, middleware that rewrites Le). Subclasses override :meth:`execute`
    and call ``super().execute`` (or ``self.card.execute``) for the inner card's answer."""

    def __init__(self, card: SimulatedCard) -> None:
        self.card = card

    @property
    def atr(self) -> bytes:
        return bytes(self.card.atr)

    def power_on(self) -> bytes:
        return bytes(self.card.power_on())

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> bytes:
        return bytes(self.card.reset())

    def execute(self, apdu: bytes) -> bytes:
        return bytes(self.card.execute(apdu))


class EchoCard:
    """A trivial card: answers every command with its data and 9000.

    Used as the baseline of the benchmarks (the simulator must reach a third of
    its rate) and to test transports without the card OS.
    """

    ATR = bytes.fromhex("3B80800101")

    def __init__(self) -> None:
        self.powered = True

    @property
    def atr(self) -> bytes:
        return self.ATR

    def power_on(self) -> bytes:
        self.powered = True
        return self.ATR

    def power_off(self) -> None:
        self.powered = False

    def reset(self) -> bytes:
        return self.power_on()

    def execute(self, apdu: bytes) -> bytes:
        if not self.powered:
            raise CardNotPowered()
        if len(apdu) < 4:
            return b"\x67\x00"
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        return body + b"\x90\x00"
