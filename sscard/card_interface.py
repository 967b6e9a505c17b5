"""The card interface between a simulated card and the transport that carries its bytes.

Why a top-level module: the terminal layer's in-process transport
(:mod:`sscard.terminals.simulator`) and every simulated card
(:mod:`sscard.simulators`) both need it, terminals must not import simulators, and
simulators build on apdu, crypto and cards only (docs/architecture.md,
"Layers"). Modelled on vsmartcard's ``SmartcardOS``; the same card serves every path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sscard.errors import ExitStatus, SscardError


class CardTorn(SscardError):
    """The simulated card lost power during (or after) an APDU: no response.

    Part of the card interface because every transport must handle it: the
    in-process transport turns it into ``CardRemoved``, the vpcd bridge drops
    its socket so pcscd sees the card leave. Code -4 = "no response from card"
    (reference §C4.5).
    """

    exit_status = ExitStatus.READER
    code = -4
    message_en = "card lost power (torn); no response"
    message_zh = "卡片掉电（拔卡），无响应"


class CardNotPowered(CardTorn):
    """A command reached a simulated card that has no power (after ``power_off``).

    A real card without power answers nothing, so the simulated one does not either
    (an earlier simulator answered APDUs after a power-off). A subclass of
    :class:`CardTorn` because every transport already handles "no response": the
    in-process transport reports the card removed, the vpcd bridge drops its link.
    """

    message_en = "card is not powered (power it on first); no response"
    message_zh = "卡片未上电（请先上电），无响应"


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
        injection cut the power (the response is lost), and :class:`CardNotPowered`
        when the card has been powered off and not powered on again.
        """
        ...
