"""Which commands a terminal may send a second time on its own (the ``repeat`` column of
the command table, :mod:`sscard.apdu.catalog`).

Why: on ``6Cxx`` ("wrong Le, the right one is xx") ISO 7816-4 lets a terminal re-send
the command with Le = xx, and Metrodroid does so once for its reads (reference
§P5.8). For a command with side effects that is a second *execution*: a card OS that
committed DEBIT FOR PURCHASE before it looked at Le answers the re-sent copy ``6901``
(no session), and the terminal reports a failure for a debit that was taken
(such a card exists). So ``Connection`` re-sends a command only when this table says a
repeat leaves the card exactly as one execution would; every other command that draws
``6Cxx`` raises :class:`~sscard.terminals.errors.CommandOutcomeUnknown`, and the
application goes to its recovery path (805A for a debit, a balance check for a load).

Keyed by (CLA class, INS): CLA class ``0x00`` for interindustry commands (logical
channel and secure-messaging bits ignored), ``0x80`` for proprietary ones (PBOC, purse,
PSAM). A command with secure messaging is never repeatable: its MAC used the card's
single-use challenge. A command missing from the table is not repeatable.

"Repeatable" means *no persistent effect and a repeat gives a valid answer*: reads,
SELECT, GET RESPONSE, GET BALANCE, GET TRANSACTION PROVE (805A, the recovery read),
INITIALIZE (8050 opens a volatile session; a second one replaces it, the terminal uses
the last answer), GET CHALLENGE (the last challenge is the live one), INTERNAL
AUTHENTICATE (a pure function of the key and the input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sscard.apdu.catalog import COMMANDS, cla_class, lookup

if TYPE_CHECKING:
    from sscard.apdu.command import Command

__all__ = ["COMMAND_REPEAT", "repeat_key", "safe_to_repeat"]

#: (CLA class, INS) -> (name, safe to repeat): the repeat column of
#: :data:`sscard.apdu.catalog.COMMANDS` (each unsafe row notes why there); a command
#: without a row is unsafe too.
COMMAND_REPEAT: dict[tuple[int, int], tuple[str, bool]] = {
    spec.key: (spec.name or f"INS {spec.ins:02X}", spec.repeat) for spec in COMMANDS
}


def repeat_key(cla: int, ins: int) -> tuple[int, int]:
    """The table key of a command: (``0x80`` if CLA is proprietary else ``0x00``, INS)."""
    return (cla_class(cla), ins)


def safe_to_repeat(command: Command) -> bool:
    """True when sending ``command`` again changes nothing a single execution did not.

    Secure messaging: never (the MAC used a single-use challenge).
    """
    if command.secure_messaging:
        return False
    spec = lookup(command.cla, command.ins)
    return spec is not None and spec.repeat
