"""The simulated card OS: power, dispatch, status words, Le and T=0 rules, commit, faults.

vsmartcard's ``SmartcardOS`` shape (frankmorgner/vsmartcard, ``virtualsmartcard/VirtualSmartcard.py``):
``execute(apdu) -> rapdu`` over an instruction table; handlers raise the typed
errors of :mod:`sscard.apdu.errors` and the OS turns them into status words.
``execute`` never raises, except :class:`~sscard.simulators.faults.CardTorn` when a
planned tear fires (the card is then unpowered until ``power_on``).

Le rules (reference §C2 READ RECORD; both protocols, so terminals can be tested
against either):

* T=1: the answer comes directly. A case-2/4 command whose Le is neither 00
  ("up to 256") nor the exact length of the answer gets ``6Cxx``. A case-3 command
  that produces data (SELECT without Le) gets its data anyway, as common COS do.
* T=0: a case-3/4 command with data to return answers ``61xx`` and GET RESPONSE
  (``00 C0 00 00 xx``) serves it; a case-2 command must carry the exact Le (00 =
  256) or gets ``6Cxx``.

Atomicity: a handler changes persistent state only inside :meth:`CardOS.commit`;
the commit point is where a planned tear hits (before: nothing applied; after:
applied and saved, response lost).

Le before side effects: a command whose handler commits and answers
data (DEBIT 8054, CREDIT FOR LOAD 8052, PSAM 8070, ...) declares its answer length
(:meth:`Applet.answer_size`); the OS applies the Le rule above to that length *before*
the handler runs, so a wrong Le gets ``6Cxx`` with nothing changed, never a commit
followed by ``6Cxx``. Commands with side effects and no answer data (updates, PIN
changes) answer ``9000`` whatever Le says: Le cannot make them fail after a commit.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sscard.apdu import Command, errors
from sscard.apdu.errors import ApduFormatError, CardError
from sscard.card_interface import CardNotPowered
from sscard.simulators.cos.applet import Applet, Handler
from sscard.simulators.cos.files import (
    Access,
    AccessKind,
    DedicatedFile,
    ElementaryFile,
    Key,
    KeyUse,
)
from sscard.simulators.faults import CardTorn, Faults, TearPoint

_SW_9000 = b"\x90\x00"
#: Parsed commands kept per APDU bytes (terminals repeat the same commands);
#: :class:`Command` is immutable, so sharing one is safe whatever the card's state.
_PARSED_MAX = 512


def sw_bytes(sw: int) -> bytes:
    return bytes((sw >> 8, sw & 0xFF))


class _Torn(Exception):
    """Internal: power went at the commit point (never escapes ``execute``)."""


@dataclass(eq=False)
class SecurityState:
    """Volatile state: lost on power off, reset and tear (ISO 7816-4 §5.4).

    ``pins`` holds the DFs whose PIN was verified, ``keys`` the (DF, key) pairs of
    successful EXTERNAL AUTHENTICATEs; both are dropped when the current DF
    leaves the DF that owns them. ``pin_initial`` is true when the PIN was
    verified with the issuer's initial value (the SDK reports -35, reference §C4.5).
    """

    current_df: DedicatedFile
    current_ef: ElementaryFile | None = None
    current_record: int | None = None  # index into current_ef.records
    challenge: bytes | None = None
    pins: set[DedicatedFile] = field(default_factory=set)
    pin_initial: bool = False
    keys: set[tuple[DedicatedFile, Key]] = field(default_factory=set)


class CardOS:
    """One simulated card (or PSAM): a file tree under ``mf`` plus the OS around it.

    ``rng(n)`` makes challenges (inject a deterministic one in tests);
    ``on_commit(cos)`` runs after every committed change (a file-backed card
    saves itself there); ``faults`` is the fault plan (``simulators.faults``).
    """

    def __init__(
        self,
        mf: DedicatedFile,
        *,
        atr: bytes,
        t0: bool = False,
        faults: Faults | None = None,
        rng: Callable[[int], bytes] = secrets.token_bytes,
        on_commit: Callable[[CardOS], None] | None = None,
        extra_instructions: Mapping[tuple[int, int], Handler] | None = None,
    ) -> None:
        from sscard.simulators.cos import iso  # the ISO handlers need this module's types

        self.mf = mf
        self._atr = bytes(atr)
        self.t0 = t0
        self.faults = faults if faults is not None else Faults()
        self.rng = rng
        self.on_commit = on_commit
        self.security = SecurityState(mf)
        self.torn = False
        self.powered = True
        self.commits = 0  # committed state changes since construction (tests, benchmarks)
        self._instructions: dict[tuple[int, int], Handler] = dict(iso.INSTRUCTIONS)
        if extra_instructions:
            self._instructions.update(extra_instructions)
        self._known_ins = {ins for _, ins in self._instructions}
        for df in mf.walk():
            if df.applet is not None:
                self._known_ins.update(ins for _, ins in df.applet.instructions)
        self._pending = b""  # T=0 / long answers waiting for GET RESPONSE
        self._tear: TearPoint | None = None
        self._committed = False
        self._parsed: dict[bytes, Command] = {}  # parse memo only, never an answer memo

    # ------------------------------------------------------------ SimulatedCard

    @property
    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self._lose_volatile()
        self.torn = False
        self.powered = True
        return self._atr

    def power_off(self) -> None:
        self._lose_volatile()
        self.powered = False

    def reset(self) -> bytes:
        return self.power_on()

    def execute(self, apdu: bytes) -> bytes:
        """Process one command APDU: data ‖ SW1 SW2. Never raises, except :class:`CardTorn`
        (and its :class:`CardNotPowered` after ``power_off``)."""
        if self.torn:
            raise CardTorn()
        if not self.powered:
            raise CardNotPowered()  # a card without power answers nothing
        faults = self.faults
        if faults.tears or faults.latency:
            return self._execute_faulty(bytes(apdu), faults)
        return self._run(bytes(apdu))

    # ------------------------------------------------------------ handler API

    @property
    def current_df(self) -> DedicatedFile:
        return self.security.current_df

    @property
    def current_ef(self) -> ElementaryFile | None:
        return self.security.current_ef

    def commit(self, apply: Callable[[], None]) -> None:
        """Apply one persistent state change atomically: the card's commit point.

        ``apply`` must only assign already computed values (it must not fail).
        A tear planned BEFORE_COMMIT fires here without applying anything; one
        planned AFTER_COMMIT fires after ``apply`` and the save.
        """
        if self._tear is TearPoint.BEFORE_COMMIT:
            raise _Torn()
        apply()
        self.commits += 1
        self._committed = True
        if self.on_commit is not None:
            self.on_commit(self)
        if self._tear is TearPoint.AFTER_COMMIT:
            raise _Torn()

    def take_challenge(self) -> bytes | None:
        """The last GET CHALLENGE value, consumed (a challenge is single-use)."""
        challenge, self.security.challenge = self.security.challenge, None
        return challenge

    def select_df(self, df: DedicatedFile) -> None:
        """Make ``df`` current; drop security status of DFs that are no longer on the path."""
        sec = self.security
        old = sec.current_df
        on_path = set(df.ancestry())
        if old is not df:
            for node in old.ancestry():
                if node not in on_path and node.applet is not None:
                    node.applet.reset()
            sec.pins = {d for d in sec.pins if d in on_path}
            if not sec.pins:
                sec.pin_initial = False
            sec.keys = {(d, k) for d, k in sec.keys if d in on_path}
        sec.current_df = df
        sec.current_ef = None
        sec.current_record = None
        if df.applet is not None:
            df.applet.on_select(self, df)

    def is_authenticated(self, df: DedicatedFile, key_id: int) -> bool:
        """True when an EXTERNAL AUTHENTICATE with ``key_id`` (as seen from ``df``) succeeded."""
        key = df.find_key(key_id)
        return key is not None and any(k is key for _, k in self.security.keys)

    def pin_verified(self, df: DedicatedFile) -> bool:
        found = df.find_pin()
        return found is not None and found[0] in self.security.pins

    def check_access(self, node: ElementaryFile, access: Access, cmd: Command) -> bytes:
        """Enforce ``access`` for ``cmd`` on ``node``; returns the command data (MAC removed).

        6982 when the condition is not met; secure messaging is checked by
        :meth:`unwrap_sm`. A secure-messaging command on a file that does not
        ask for a MAC answers 6882 (secure messaging not supported).
        """
        df = node.parent or self.mf
        kind = access.kind
        if kind is AccessKind.MAC:
            if not cmd.secure_messaging:
                raise errors.SecurityNotSatisfied()
            return self.unwrap_sm(cmd, df, access.key_id)
        if cmd.secure_messaging:
            raise errors.UnknownStatus(0x6882)
        if kind is AccessKind.FREE:
            return cmd.data
        if kind is AccessKind.PIN:
            if self.pin_verified(df):
                return cmd.data
        elif kind is AccessKind.AUTH and self.is_authenticated(df, access.key_id):
            return cmd.data
        raise errors.SecurityNotSatisfied()

    def unwrap_sm(
        self, cmd: Command, df: DedicatedFile, key_id: int, usage: KeyUse = KeyUse.MAC
    ) -> bytes:
        """Verify the 4-byte MAC of a CLA 04/84 command (reference part C profile,
        "SSSE secure messaging") and return the data without it.

        MAC input = CLA INS P1 P2 Lc' ‖ data, Lc' = Lc (MAC included); IV = the
        last challenge, padded with 00 to the block size (8 B 3DES, 16 B SM4).
        No challenge: 6984. Bad MAC or data shorter than 4: 6988.
        """
        from sscard.crypto.ssse import sm_mac

        key = df.find_key(key_id)
        if key is None or not key.usage & usage:
            raise errors.KeyNotFound()
        challenge = self.take_challenge()
        if challenge is None:
            raise errors.ReferenceDataInvalid()
        if len(cmd.data) < 4:
            raise errors.SmDataInvalid()
        data, mac = cmd.data[:-4], cmd.data[-4:]
        block = 16 if key.algorithm == 0x03 else 8
        iv = (challenge + bytes(block))[:block]
        header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2, len(cmd.data)))
        expected = sm_mac(key.value, iv, header + data, key.algorithm)
        if not hmac.compare_digest(expected, mac):
            raise errors.SmDataInvalid()
        return data

    # ------------------------------------------------------------ internals

    def _lose_volatile(self) -> None:
        for df in self.mf.walk():
            if df.applet is not None:
                df.applet.reset()
        self.security = SecurityState(self.mf)
        self._pending = b""

    def _execute_faulty(self, apdu: bytes, faults: Faults) -> bytes:
        if faults.latency:
            time.sleep(faults.latency)
        tear = faults.tear_for(apdu)
        if tear is None:
            return self._run(apdu)
        self._tear = tear
        self._committed = False
        try:
            self._run(apdu)
        except _Torn:
            pass
        finally:
            self._tear = None
        # Power is gone whether or not the handler reached its commit point.
        self._lose_volatile()
        self.torn = True
        raise CardTorn()

    def _run(self, apdu: bytes) -> bytes:
        """Every command runs its handler against the current state: no answer memo."""
        try:
            return self._process(apdu)
        except _Torn:
            raise
        except CardError as exc:  # raised outside a handler
            return sw_bytes(exc.sw)
        except Exception:  # a bug must not kill the terminal under test
            return b"\x6f\x00"

    def _process(self, apdu: bytes) -> bytes:
        n = len(apdu)
        if n < 4:
            return b"\x67\x00"
        cla, ins = apdu[0], apdu[1]
        if cla == 0xFF:
            return b"\x6e\x00"
        if ins & 0xF0 in (0x60, 0x90):
            return b"\x6d\x00"
        cmd = self._parsed.get(apdu)
        if cmd is None:
            try:
                cmd = Command.parse(apdu)
            except ApduFormatError:
                return b"\x67\x00"
            if len(self._parsed) >= _PARSED_MAX:
                self._parsed.clear()
            self._parsed[apdu] = cmd
        pending, self._pending = self._pending, b""
        if ins == 0xC0 and cla in (0x00, 0x80):
            return self._get_response(cmd, pending)
        found = self._lookup((cla, ins))
        if found is None:
            return b"\x6e\x00" if ins in self._known_ins else b"\x6d\x00"
        handler, owner = found
        if self.security.current_df.blocked and ins != 0xA4:
            return b"\x93\x03"
        if owner is not None:
            size = owner.answer_size(cmd)
            if size is not None and self._le_verdict(cmd, size) == "6C":
                return sw_bytes(0x6C00 | (size & 0xFF))  # decided before any commit
        try:
            data = handler(self, cmd)
        except CardError as exc:
            return sw_bytes(exc.sw)
        return self._shape(cmd, data)

    def _lookup(self, key: tuple[int, int]) -> tuple[Handler, Applet | None] | None:
        """The handler for (CLA, INS) and the applet owning it (None for the OS's ISO
        commands): current DF and its ancestors first."""
        df: DedicatedFile | None = self.security.current_df
        while df is not None:
            applet = df.applet
            if applet is not None:
                handler = applet.instructions.get(key)
                if handler is not None:
                    return handler, applet
            df = df.parent
        handler = self._instructions.get(key)
        if handler is None:
            return None
        return handler, None

    def _le_verdict(self, cmd: Command, n: int) -> Literal["direct", "more", "6C"]:
        """The Le rule of the module docstring for an answer of ``n`` > 0 bytes: answer
        it directly, keep it for GET RESPONSE (61xx), or refuse the Le (6Cxx)."""
        le = cmd.le
        if self.t0 and (le is None or cmd.data):
            return "more"
        if le is None:
            return "direct" if n <= 256 else "more"
        if le == n or (le == 256 and not self.t0 and n < 256):
            return "direct"
        if le in (256, 65536) and n > le:
            return "more"
        return "6C"

    def _shape(self, cmd: Command, data: bytes) -> bytes:
        """Apply the Le and T=0 rules of the module docstring to a handler's answer."""
        if not data:
            return _SW_9000
        n = len(data)
        verdict = self._le_verdict(cmd, n)
        if verdict == "direct":
            return data + _SW_9000
        if verdict == "more":
            return self._more(data, cmd.le or 256)  # T=0 keeps it all for GET RESPONSE
        return sw_bytes(0x6C00 | (n & 0xFF))

    def _more(self, data: bytes, first: int) -> bytes:
        """T=0 style: keep the answer for GET RESPONSE and say how much waits (61xx)."""
        if self.t0:
            self._pending = data
            return sw_bytes(0x6100 | (len(data) & 0xFF) if len(data) < 256 else 0x6100)
        self._pending = data[first:]
        rest = len(self._pending)
        return data[:first] + sw_bytes(0x6100 | (rest & 0xFF if rest < 256 else 0))

    def _get_response(self, cmd: Command, pending: bytes) -> bytes:
        if not pending:
            return b"\x69\x85"
        if cmd.p1 or cmd.p2:
            self._pending = pending
            return b"\x6a\x86"
        if cmd.data or cmd.le is None:
            self._pending = pending
            return b"\x67\x00"
        le = cmd.le
        n = len(pending)
        if le > n and not (le == 256 and not self.t0):
            self._pending = pending
            return sw_bytes(0x6C00 | (n & 0xFF))
        chunk, rest = pending[:le], pending[le:]
        if rest:
            self._pending = rest
            return chunk + sw_bytes(0x6100 | (len(rest) & 0xFF if len(rest) < 256 else 0))
        return chunk + _SW_9000
