"""The small card-OS interface every simulated card implements.

Modelled on vsmartcard's ``SmartcardOS`` (power on/off/reset, ATR,
``execute(apdu) -> rapdu``): the transport that carries the bytes (in-process,
vpcd socket) is a separate object, so the same card serves every path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sscard.errors import SscardError


class CardTorn(SscardError):
    """The simulated card lost power during (or after) an APDU: no response.

    Part of the card interface because every transport must handle it: the
    in-process transport turns it into ``CardRemoved``, the vpcd bridge drops
    its socket so pcscd sees the card leave. Code -4 = "no response from card"
    (ssse-card.md §4.5).
    """

    code = -4
    message_en = "card lost power (torn); no response"
    message_zh = "卡片掉电（拔卡），无响应"


@runtime_checkable
class SimulatedCard(Protocol):
    """What a transport needs from a simulated card (or PSAM)."""

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        ...

    def power_on(self) -> bytes:
        """Cold reset: volatile state (selection, challenge, PIN status) is lost; returns ATR."""
        ...

    def power_off(self) -> None:
        """Remove power; an uncommitted transaction is lost."""
        ...

    def reset(self) -> bytes:
        """Warm reset; same effect on volatile state as power_on; returns ATR."""
        ...

    def execute(self, apdu: bytes) -> bytes:
        """Process one command APDU; returns data ‖ SW1 SW2.

        Never raises for bad input; raises :class:`CardTorn` only when a fault
        injection cut the power (the response is lost).
        """
        ...


class EchoCard:
    """A trivial card: answers every command with its data and 9000.

    Used as the baseline of the benchmarks (the simulator must reach a third of
    its rate) and to test transports without the card OS.
    """

    ATR = bytes.fromhex("3B80800101")

    @property
    def atr(self) -> bytes:
        return self.ATR

    def power_on(self) -> bytes:
        return self.ATR

    def power_off(self) -> None:
        return None

    def reset(self) -> bytes:
        return self.ATR

    def execute(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return b"\x67\x00"
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        return body + b"\x90\x00"
