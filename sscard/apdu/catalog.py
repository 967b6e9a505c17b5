"""The one table of commands sscard sends or serves: INS codes, names, case, redaction,
PIN status words and repeat safety.

Why one table: pySim declares each command once (a class per command) and derives
building, naming and decoding from it. Here a row (:class:`CommandSpec`) carries
everything that used to live in five places, and the users read it:

* building and dispatch: :class:`Ins` names every INS code; terminals write
  ``Command(CLA_PROPRIETARY, Ins.GET_BALANCE, ...)`` and the simulated card OS keys its
  handlers ``(CLA, Ins.X)``;
* naming: :attr:`Command.name <sscard.apdu.command.Command.name>` (traces, errors);
* tracing and redaction: :meth:`sscard.terminals.tracing.Redaction.for_command`;
* status words: 63Cx / 6983 after a row with ``pin_tries`` mean PIN tries / PIN blocked
  (:func:`sscard.apdu.errors.error_for_sw`);
* repeat safety: :func:`sscard.apdu.repeat.safe_to_repeat` (re-sending on 6Cxx).

Rows are keyed by (CLA class, INS): ``0x00`` interindustry (ISO/IEC 7816-4), ``0x80``
proprietary (CLA bit 8 set: PBOC ED/EP, JR/T 0025 / T-Union purse, PSAM, the SSSE
card's PIN commands). For naming and redaction a proprietary command without a row of
its own falls back to the interindustry row of its INS (CLA 80 20 is still a VERIFY
that carries a PIN); repeat safety never falls back (a missing row is not repeatable).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = [
    "CLA_ISO",
    "CLA_PROPRIETARY",
    "COMMANDS",
    "PIN_INS",
    "CommandSpec",
    "Ins",
    "Redact",
    "cla_class",
    "lookup",
    "spec_for",
]

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80


class Ins(IntEnum):
    """INS codes (ISO/IEC 7816-4; PBOC / JR/T 0025 ED/EP; transit PSAM; sscard profile).

    Aliases share a code where the CLA class decides the meaning (24: CHANGE
    REFERENCE DATA with CLA 00, UNBLOCK PIN with CLA 80).
    """

    SELECT = 0xA4
    READ_BINARY = 0xB0
    READ_RECORD = 0xB2
    UPDATE_BINARY = 0xD6
    UPDATE_RECORD = 0xDC
    APPEND_RECORD = 0xE2
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    UNBLOCK_PIN = 0x24
    RESET_RETRY_COUNTER = 0x2C
    GET_CHALLENGE = 0x84
    INTERNAL_AUTHENTICATE = 0x88
    EXTERNAL_AUTHENTICATE = 0x82
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA
    APPLICATION_BLOCK = 0x1E
    # -- PBOC ED/EP and the T-Union purse
    INITIALIZE = 0x50
    CREDIT_FOR_LOAD = 0x52
    DEBIT_FOR_PURCHASE = 0x54
    GET_TRANSACTION_PROVE = 0x5A
    GET_BALANCE = 0x5C
    CHANGE_PIN = 0x5E
    UPDATE_CAPP_DATA_CACHE = 0xDC
    PKI_VERIFY_PIN = 0xC4
    # -- PSAM
    INIT_SAM_FOR_PURCHASE = 0x70
    CREDIT_SAM_FOR_PURCHASE = 0x72
    INIT_FOR_DESCRYPT = 0x1A
    CIPHER_DATA = 0xFA
    # -- key loading (never sent by sscard; listed so a trace of one is redacted)
    WRITE_KEY = 0xD4
    KEY_4A = 0x4A
    KEY_C2 = 0xC2


class Redact(Enum):
    """What a trace leaves out of one exchange (sscard.terminals.tracing)."""

    NONE = "none"
    ANSWER = "answer"  # reads: the answer may hold a name or an ID number
    BOTH = "both"  # PINs, keys, MACs, cryptograms, data written to the card


@dataclass(frozen=True)
class CommandSpec:
    """One command. ``name`` None: unnamed (traces say ``INS xx``).

    ``cases``: the ISO/IEC 7816-3 cases a well-formed command of this row takes
    (1 no data no Le, 2 Le only, 3 data only, 4 both). ``pin_tries``: 63Cx counts PIN
    tries and 6983 is "PIN blocked" after this command. ``repeat``: sending it a second
    time leaves the card as one execution did (see sscard.apdu.repeat for the rule).
    """

    cla: int  # CLA class: CLA_ISO or CLA_PROPRIETARY
    ins: int
    name: str | None
    cases: tuple[int, ...]
    redact: Redact = Redact.NONE
    pin_tries: bool = False
    repeat: bool = False
    note: str = ""

    @property
    def key(self) -> tuple[int, int]:
        return (self.cla, self.ins)


_I, _P = CLA_ISO, CLA_PROPRIETARY
_B, _A = Redact.BOTH, Redact.ANSWER

#: Every command, interindustry first.
COMMANDS: tuple[CommandSpec, ...] = (
    # -- interindustry (ISO/IEC 7816-4) ----------------------------------------------
    CommandSpec(_I, Ins.SELECT, "SELECT", (1, 2, 3, 4), repeat=True),
    CommandSpec(_I, Ins.READ_BINARY, "READ BINARY", (2,), _A, repeat=True),
    CommandSpec(_I, Ins.READ_RECORD, "READ RECORD", (2,), _A, repeat=True),
    CommandSpec(_I, Ins.GET_DATA, "GET DATA", (2,), repeat=True),
    CommandSpec(_I, Ins.GET_RESPONSE, "GET RESPONSE", (2,), repeat=True),
    CommandSpec(_I, Ins.GET_CHALLENGE, "GET CHALLENGE", (2,), repeat=True,
                note="replaces the volatile challenge only"),
    CommandSpec(_I, Ins.INTERNAL_AUTHENTICATE, "INTERNAL AUTHENTICATE", (4,), _B, repeat=True,
                note="a pure function of the key and the input"),
    CommandSpec(_I, Ins.UPDATE_BINARY, "UPDATE BINARY", (3,), _B, note="writes the card"),
    CommandSpec(_I, Ins.UPDATE_RECORD, "UPDATE RECORD", (3,), _B),
    CommandSpec(_I, Ins.APPEND_RECORD, "APPEND RECORD", (3,), _B, note="a repeat appends twice"),
    CommandSpec(_I, Ins.VERIFY, "VERIFY", (1, 3), _B, pin_tries=True, note="spends a PIN try"),
    CommandSpec(_I, Ins.CHANGE_REFERENCE_DATA, "CHANGE REFERENCE DATA", (3,), _B,
                pin_tries=True),
    CommandSpec(_I, Ins.RESET_RETRY_COUNTER, "RESET RETRY COUNTER", (1, 3), _B,
                note="carries a PIN; its 63Cx is not a PIN try count"),
    CommandSpec(_I, Ins.EXTERNAL_AUTHENTICATE, "EXTERNAL AUTHENTICATE", (3,), _B,
                note="spends a try and the challenge"),
    CommandSpec(_I, Ins.APPLICATION_BLOCK, "APPLICATION BLOCK", (1, 3)),
    # -- proprietary (PBOC ED/EP, T-Union purse, SSSE PIN commands) -------------------
    CommandSpec(_P, Ins.SELECT, "SELECT", (1, 2, 3, 4), repeat=True),
    CommandSpec(_P, Ins.READ_BINARY, "READ BINARY", (2,), _A, repeat=True),
    CommandSpec(_P, Ins.READ_RECORD, "READ RECORD", (2,), _A, repeat=True),
    CommandSpec(_P, Ins.GET_DATA, "GET DATA", (2,), repeat=True),
    CommandSpec(_P, Ins.GET_CHALLENGE, "GET CHALLENGE", (2,)),
    CommandSpec(_P, Ins.EXTERNAL_AUTHENTICATE, "EXTERNAL AUTHENTICATE", (3,), _B),
    CommandSpec(_P, Ins.INTERNAL_AUTHENTICATE, "INTERNAL AUTHENTICATE", (4,), _B),
    CommandSpec(_P, Ins.UPDATE_BINARY, "UPDATE BINARY", (3,), _B),
    CommandSpec(_P, Ins.GET_BALANCE, "GET BALANCE", (2,), repeat=True),
    CommandSpec(_P, Ins.GET_TRANSACTION_PROVE, "GET TRANSACTION PROVE", (4,), _B, repeat=True,
                note="reads the last purchase's proof"),
    CommandSpec(_P, Ins.INITIALIZE, "INITIALIZE", (4,), _B, repeat=True,
                note="volatile session; the last one counts"),
    CommandSpec(_P, Ins.DEBIT_FOR_PURCHASE, "DEBIT FOR PURCHASE", (4,), _B, note="takes money"),
    CommandSpec(_P, Ins.CREDIT_FOR_LOAD, "CREDIT FOR LOAD", (4,), _B, note="adds money"),
    CommandSpec(_P, Ins.UPDATE_CAPP_DATA_CACHE, "UPDATE CAPP DATA CACHE", (3,), _B,
                note="a repeat caches a second record"),
    CommandSpec(_P, Ins.CHANGE_PIN, "CHANGE PIN", (3,), _B, pin_tries=True,
                note="CHANGE/RELOAD PIN"),
    CommandSpec(_P, Ins.UNBLOCK_PIN, "UNBLOCK PIN", (3,), _B, pin_tries=True),
    CommandSpec(_P, Ins.APPLICATION_BLOCK, "APPLICATION BLOCK", (1, 3)),
    CommandSpec(_P, Ins.PKI_VERIFY_PIN, "PKI VERIFY PIN", (3, 4), _B, pin_tries=True,
                note="its answer is the PIN hash"),
    # -- PSAM (transit PSAM; SSSE card authentication, sscard profile)
    CommandSpec(_P, Ins.INIT_SAM_FOR_PURCHASE, "INIT SAM FOR PURCHASE", (3, 4), _B,
                note="commits the terminal transaction sequence number"),
    CommandSpec(_P, Ins.CREDIT_SAM_FOR_PURCHASE, "CREDIT SAM FOR PURCHASE", (3,), _B,
                note="ends the purchase context on success"),
    CommandSpec(_P, Ins.INIT_FOR_DESCRYPT, "INIT FOR DESCRYPT", (3,), _B),
    CommandSpec(_P, Ins.CIPHER_DATA, "CIPHER DATA", (3, 4), _B),
    # -- key loading
    CommandSpec(_P, Ins.WRITE_KEY, None, (3,), _B),
    CommandSpec(_P, Ins.KEY_4A, None, (3,), _B),
    CommandSpec(_P, Ins.KEY_C2, None, (3,), _B),
)  # fmt: skip

_BY_KEY: dict[tuple[int, int], CommandSpec] = {spec.key: spec for spec in COMMANDS}
if len(_BY_KEY) != len(COMMANDS):  # pragma: no cover - a table edit error
    raise RuntimeError("duplicate (CLA class, INS) row in sscard.apdu.catalog")

#: INS codes after which 63Cx counts PIN tries and 6983 means "PIN blocked".
PIN_INS: frozenset[int] = frozenset(spec.ins for spec in COMMANDS if spec.pin_tries)


def cla_class(cla: int) -> int:
    """``CLA_PROPRIETARY`` when CLA bit 8 is set, else ``CLA_ISO`` (channel/SM bits ignored)."""
    return CLA_PROPRIETARY if cla & 0x80 else CLA_ISO


def lookup(cla: int, ins: int) -> CommandSpec | None:
    """The row of exactly this CLA class and INS (repeat safety uses only this)."""
    return _BY_KEY.get((cla_class(cla), ins))


def spec_for(cla: int, ins: int) -> CommandSpec | None:
    """The row for naming and redaction: the command's own row, else, for a proprietary
    CLA, the interindustry row of the same INS."""
    spec = _BY_KEY.get((cla_class(cla), ins))
    if spec is None and cla & 0x80:
        spec = _BY_KEY.get((CLA_ISO, ins))
    return spec
