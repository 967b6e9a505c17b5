"""The ISO 7816-4 wire codec: commands, responses, status words, TLV.

Everything above this package speaks ``Command``/``Response`` and catches the
typed errors of :mod:`sscard.apdu.errors`; nothing re-implements a status word
or a TLV parser.
"""

from sscard.apdu import errors
from sscard.apdu.command import Command, Response
from sscard.apdu.errors import ApduFormatError, CardError, TlvError, error_for_sw, sw_text

__all__ = [
    "ApduFormatError",
    "CardError",
    "Command",
    "Response",
    "TlvError",
    "error_for_sw",
    "errors",
    "sw_text",
]
