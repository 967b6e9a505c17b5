"""Which commands a terminal may send a second time on its own: the one table.

Why: on ``6Cxx`` ("wrong Le, the right one is xx") ISO 7816-4 lets a terminal re-send
the command with Le = xx, and Metrodroid does so once for its reads (transit-purse.md
§5.8). For a command with side effects that is a second *execution*: a card OS that
committed DEBIT FOR PURCHASE before it looked at Le answers the re-sent copy ``6901``
(no session), and the terminal reports a failure for a debit that was taken
(issue 12 part 2). So ``Connection`` re-sends a command only when this table says a
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

if TYPE_CHECKING:
    from sscard.apdu.command import Command

__all__ = ["COMMAND_REPEAT", "repeat_key", "safe_to_repeat"]

#: (CLA class, INS) -> (name, safe to repeat). Unsafe rows are listed so the reason is
#: written down next to the command; absence means unsafe too.
COMMAND_REPEAT: dict[tuple[int, int], tuple[str, bool]] = {
    # -- interindustry (ISO 7816-4) ---------------------------------------------------
    (0x00, 0xA4): ("SELECT", True),
    (0x00, 0xB0): ("READ BINARY", True),
    (0x00, 0xB2): ("READ RECORD", True),
    (0x00, 0xCA): ("GET DATA", True),
    (0x00, 0xC0): ("GET RESPONSE", True),
    (0x00, 0x84): ("GET CHALLENGE", True),  # replaces the volatile challenge only
    (0x00, 0x88): ("INTERNAL AUTHENTICATE", True),  # no state at all
    (0x00, 0xD6): ("UPDATE BINARY", False),  # writes the card
    (0x00, 0xDC): ("UPDATE RECORD", False),
    (0x00, 0xE2): ("APPEND RECORD", False),  # a repeat appends twice
    (0x00, 0x20): ("VERIFY", False),  # spends a PIN try
    (0x00, 0x24): ("CHANGE REFERENCE DATA", False),
    (0x00, 0x2C): ("RESET RETRY COUNTER", False),
    (0x00, 0x82): ("EXTERNAL AUTHENTICATE", False),  # spends a try and the challenge
    (0x00, 0x1E): ("APPLICATION BLOCK", False),
    # -- proprietary (PBOC ED/EP, T-Union purse, PSAM) --------------------------------
    (0x80, 0xA4): ("SELECT", True),
    (0x80, 0xB0): ("READ BINARY", True),
    (0x80, 0xB2): ("READ RECORD", True),
    (0x80, 0xCA): ("GET DATA", True),
    (0x80, 0x5C): ("GET BALANCE", True),
    (0x80, 0x5A): ("GET TRANSACTION PROVE", True),  # reads the last purchase's proof
    (0x80, 0x50): ("INITIALIZE", True),  # volatile session; the last one counts
    (0x80, 0x54): ("DEBIT FOR PURCHASE", False),  # takes money
    (0x80, 0x52): ("CREDIT FOR LOAD", False),  # adds money
    (0x80, 0xDC): ("UPDATE CAPP DATA CACHE", False),  # a repeat caches a second record
    (0x80, 0x5E): ("CHANGE/RELOAD PIN", False),
    (0x80, 0x24): ("UNBLOCK PIN", False),
    (0x80, 0x1E): ("APPLICATION BLOCK", False),
    (0x80, 0x70): ("INIT SAM FOR PURCHASE", False),  # PSAM: commits the terminal seq
    (0x80, 0x72): ("CREDIT SAM FOR PURCHASE", False),  # PSAM: ends the context on success
    (0x80, 0x1A): ("INIT FOR DESCRYPT", False),
    (0x80, 0xFA): ("CIPHER DATA", False),
}


def repeat_key(cla: int, ins: int) -> tuple[int, int]:
    """The table key of a command: (``0x80`` if CLA is proprietary else ``0x00``, INS)."""
    return (0x80 if cla & 0x80 else 0x00, ins)


def safe_to_repeat(command: Command) -> bool:
    """True when sending ``command`` again changes nothing a single execution did not.

    Secure messaging: never (the MAC used a single-use challenge).
    """
    if command.secure_messaging:
        return False
    entry = COMMAND_REPEAT.get(repeat_key(command.cla, command.ins))
    return entry is not None and entry[1]
