"""What an application (SSSE, purse, PSAM) plugs into the card OS.

vsmartcard's model (frankmorgner/vsmartcard, ``SmartcardOS``): an
instruction table maps ``(CLA, INS)`` to a handler ``(cos, cmd) -> data``; a
handler answers a status word other than 9000 by raising an error of
:mod:`sscard.apdu.errors`. The OS does the rest: dispatch, Le and T=0 rules,
6D00/6E00 for unknown commands, fault injection and persistence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from sscard.apdu import Command, errors
from sscard.cards.layout import Layout, LayoutError

if TYPE_CHECKING:
    from sscard.simulators.cos.card_os import CardOS
    from sscard.simulators.cos.files import DedicatedFile

#: A command handler: returns the response data (the OS appends 9000) or raises a CardError.
Handler = Callable[["CardOS", Command], bytes]

L = TypeVar("L", bound=Layout)


def decode_body(layout: type[L], cmd: Command) -> L:
    """The data of ``cmd`` decoded with its shared layout (:mod:`sscard.cards`), so the
    simulator reads a command body exactly as the terminal wrote it: ``6700`` when the
    length is not the layout's (either size for a layout with an optional tail),
    ``6A80`` when a field is malformed (e.g. a date-time that is not a real one)."""
    if len(cmd.data) not in (layout.min_size(), layout.size()):
        raise errors.WrongLength()
    try:
        return layout.decode(cmd.data)
    except LayoutError:
        raise errors.WrongData() from None


class Applet:
    """Base class of the application logic attached to one DF/ADF (``df.applet``).

    Subclasses fill :attr:`instructions` (usually in ``__init__`` with bound
    methods) and override the hooks they need. An applet's commands are reached
    while its DF, or a DF below it, is the current DF; its table is consulted
    before the OS's ISO commands, so it may also override one of those.
    """

    #: ``(CLA, INS) -> handler``; CLA exact, e.g. ``(0x80, 0x5C)`` GET BALANCE.
    instructions: Mapping[tuple[int, int], Handler] = {}

    def answer_size(self, cmd: Command) -> int | None:
        """How many data bytes ``cmd`` answers when it succeeds, for a command that
        changes state *and* answers data; None for any other command.

        The OS checks Le against this size before the handler runs (card_os.py, "Le
        before side effects"), so a wrong Le never follows a commit.
        """
        return None

    def select_response(self, cos: CardOS, df: DedicatedFile) -> bytes | None:
        """The SELECT answer data for ``df`` (e.g. an FCI with 9F0C); None = default FCI."""
        return None

    def on_select(self, cos: CardOS, df: DedicatedFile) -> None:
        """Called after ``df`` became the current DF (not for EF selection)."""

    def reset(self) -> None:
        """Forget volatile state (open transaction, session keys): power off, reset,
        tear, or another DF selected."""
