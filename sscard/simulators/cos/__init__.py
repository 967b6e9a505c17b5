"""A small ISO 7816-4 card OS for simulated cards and PSAMs.

An applet plugs in as :class:`Applet` (its ``instructions`` table, ``answer_size``,
``select_response``, ``on_select``, ``reset``), command bodies decode with
:func:`decode_body` and the shared layouts of :mod:`sscard.cards`. Public names:
:class:`CardOS`, :class:`Applet`, the file-system classes and access rules.
"""

from sscard.simulators.cos.applet import Applet, Handler, decode_body
from sscard.simulators.cos.card_os import CardOS, SecurityState, sw_bytes
from sscard.simulators.cos.files import (
    FREE,
    NEVER,
    PIN,
    Access,
    AccessKind,
    DedicatedFile,
    ElementaryFile,
    Key,
    KeyUse,
    Pin,
    RecordFile,
    RecordStructure,
    TransparentFile,
)
from sscard.simulators.cos.iso import default_fci

__all__ = [
    "FREE",
    "NEVER",
    "PIN",
    "Access",
    "AccessKind",
    "Applet",
    "CardOS",
    "DedicatedFile",
    "ElementaryFile",
    "Handler",
    "Key",
    "KeyUse",
    "Pin",
    "RecordFile",
    "RecordStructure",
    "SecurityState",
    "TransparentFile",
    "decode_body",
    "default_fci",
    "sw_bytes",
]
