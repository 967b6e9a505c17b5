"""Where the SSSE card keys live: a PSAM, a software key set, or an HSM (two-step flow).

A terminal proves a card genuine with internal authentication (IRK, reference §C3.4)
and, on 3rd-generation cards, unlocks EF06 with external authentication (RKSSSE,
§C1.5, §C3.5). Both need the *card* key, derived from an issuer master with the sscard
profile diversification (two levels from the card identification code). A
:class:`KeyProvider` hides where that happens, so the reader never holds a master key:

* :class:`PsamKeyProvider` — a PSAM on a second reader, ``80 1A`` / ``80 FA``
  (the PSAM simulator's sscard-profile commands, sscard/simulators/psam.py);
* :class:`SoftwareKeyProvider` — masters from a key set (tests, the simulator's
  TEST keys, or an operator's own file);
* :class:`HsmSimulator` — the host side of ``iReadCardBas_HSM_Step1/Step2``
  (§C3.6, §C4.3): the reader never sees a key, the host answers ``INT|EXT|``.

PSAM faults map to the unified-interface codes (§C4.5): no PSAM −2201, PSAM without
SM4 −2202, PSAM without RKSSSE −2203, a missing IRK −24 (key level insufficient).
Keys never appear in a repr, a message or a trace (``sensitive=True`` on every
PSAM exchange).
"""

from __future__ import annotations

import hmac
from typing import Protocol

from sscard.apdu import CardError, Command
from sscard.apdu import errors as sw_errors
from sscard.apdu.catalog import CLA_ISO, CLA_PROPRIETARY, Ins
from sscard.cards.ids import PSAM_DF_FID, PSAM_EF_TERMINAL, SsseKeyId
from sscard.cards.ssse import SamCipherData, SamCryptogram, SamKeyInitData
from sscard.crypto.ssse import (
    SsseAlgorithm,
    card_key,
    external_auth,
    internal_auth,
    internal_auth_block,
)
from sscard.errors import SscardError
from sscard.terminals.connection import Connection
from sscard.terminals.errors import TerminalError

__all__ = [
    "HsmSimulator",
    "KeyProvider",
    "MasterKeySet",
    "PsamError",
    "PsamKeyInsufficient",
    "PsamKeyProvider",
    "PsamMissing",
    "PsamNoRkssse",
    "PsamNoSm4",
    "SoftwareKeyProvider",
    "family_of",
]


# =========================================================================== errors


class PsamError(SscardError):
    """The PSAM (or whatever supplies card keys) cannot do what the card needs."""

    code = -2201
    message_en = "PSAM error"
    message_zh = "PSAM 错误"


class PsamMissing(PsamError):
    """No PSAM (no reader, no card in it, or not a PSAM): −2201."""

    code = -2201
    message_en = "no PSAM (card keys unavailable)"
    message_zh = "无PSAM卡（无法获取卡片密钥）"


class PsamNoSm4(PsamError):
    """The PSAM has no SM4 (or SSF33) keys for a 3rd-generation card: −2202."""

    code = -2202
    message_en = "PSAM has no SM4 algorithm"
    message_zh = "PSAM卡不支持SM4算法"


class PsamNoRkssse(PsamError):
    """The PSAM holds no RKSSSE: 3.0 cards need it to read EF06 (−2203, §C1.5)."""

    code = -2203
    message_en = "PSAM has no RKSSSE key (3.0 cards need external authentication)"
    message_zh = "PSAM卡无RKSSSE密钥（3.0卡读取个人基本信息需外部认证）"


class PsamKeyInsufficient(PsamError):
    """The PSAM lacks another key the card needs (IRK): −24 "key level insufficient"."""

    code = -24
    message_en = "PSAM key level insufficient"
    message_zh = "PSAM卡密钥级别不够"


# =========================================================================== protocol


class KeyProvider(Protocol):
    """Computes or checks the cryptograms of one card; never hands out a key.

    ``card_id`` is the 16-B card identification code (EF05 rec 01), ``algorithm`` the
    SSSE flag of the SELECT FCI (01 3DES, 03 SM4; reference §C3.1).
    """

    @property
    def terminal_number(self) -> str:
        """12 digits (PSAM EF 0016, iReadCardBas field 10), or "" when there is none."""
        ...

    def verify_internal(
        self, card_id: bytes, algorithm: int, process8: bytes, source8: bytes, response8: bytes
    ) -> bool:
        """Is ``response8`` the card's correct answer to ``00 88 00 00 10 P8‖S8`` (§C3.4)?"""
        ...

    def external_cryptogram(
        self,
        card_id: bytes,
        algorithm: int,
        challenge8: bytes,
        source8: bytes,
        key_id: int = SsseKeyId.RKSSSE,
    ) -> bytes:
        """E8 for ``00 82 00 kid 10 E8‖S8`` from the card's challenge (§C3.5, profile)."""
        ...


def family_of(algorithm: int) -> str:
    """The key-set family of an SSSE flag: ``"sm4"`` for 03, ``"3des"`` for 01."""
    return "sm4" if algorithm == SsseAlgorithm.SM4 else "3des"


class _Masters(Protocol):
    def master(self, name: str, family: str) -> bytes: ...


class MasterKeySet(Protocol):
    """What a key set must offer (sscard.simulators.keys.KeySet does): SSSE masters."""

    @property
    def ssse(self) -> _Masters: ...


_KEY_NAMES: dict[int, str] = {
    SsseKeyId.IRK: "IRK",
    SsseKeyId.RKSSSE: "RKSSSE",
    SsseKeyId.PUK: "PUK",
}


def _key_name(key_id: int) -> str:
    name = _KEY_NAMES.get(int(key_id))
    if name is None:
        raise PsamKeyInsufficient(f"no key with ID {key_id:02X}", f"无密钥标识{key_id:02X}")
    return name


# =========================================================================== software


class SoftwareKeyProvider:
    """Card keys derived in the host from a key set's masters (profile diversification).

    For tests and the simulator's TEST key set; in production a PSAM or an HSM keeps
    the masters. ``terminal_number`` is what iReadCardBas reports as field 10.
    """

    def __init__(self, key_set: MasterKeySet, *, terminal_number: str = "") -> None:
        self._keys = key_set
        self._terminal_number = terminal_number

    @property
    def terminal_number(self) -> str:
        return self._terminal_number

    def card_key(self, name: str, card_id: bytes, algorithm: int) -> bytes:
        """Div(Div(master, ID[0:8]), ID[8:16]) (reference part C profile "Key diversification")."""
        return card_key(self._keys.ssse.master(name, family_of(algorithm)), card_id, algorithm)

    def verify_internal(
        self, card_id: bytes, algorithm: int, process8: bytes, source8: bytes, response8: bytes
    ) -> bool:
        irk = self.card_key("IRK", card_id, algorithm)
        return hmac.compare_digest(internal_auth(irk, process8, source8, algorithm), response8)

    def external_cryptogram(
        self,
        card_id: bytes,
        algorithm: int,
        challenge8: bytes,
        source8: bytes,
        key_id: int = SsseKeyId.RKSSSE,
    ) -> bytes:
        key = self.card_key(_key_name(key_id), card_id, algorithm)
        return external_auth(key, challenge8, source8, algorithm)

    def __repr__(self) -> str:
        return "<SoftwareKeyProvider keys=<redacted>>"


# =========================================================================== PSAM


class PsamKeyProvider:
    """A PSAM on a second reader (sscard profile ``80 1A`` / ``80 FA``, psam.py docstring).

    ``psam`` None means "no PSAM" (−2201). The PSAM application (DF 1001) is selected
    and the terminal number read once, on first use.
    """

    def __init__(self, psam: Connection | None) -> None:
        self.psam = psam
        self._terminal: str | None = None

    def _open(self) -> Connection:
        if self.psam is None:
            raise PsamMissing()
        if self._terminal is None:
            try:
                self.psam.send(
                    Command(CLA_ISO, Ins.SELECT, 0x00, 0x00, PSAM_DF_FID.to_bytes(2, "big"))
                )
                data = self.psam.send(
                    Command(CLA_ISO, Ins.READ_BINARY, 0x80 | PSAM_EF_TERMINAL, 0x00, le=6),
                    sensitive=False,
                ).data
            except (CardError, TerminalError):
                raise PsamMissing() from None
            self._terminal = data.hex().upper()
        return self.psam

    @property
    def terminal_number(self) -> str:
        try:
            self._open()
        except PsamMissing:
            return ""
        return self._terminal or ""

    def _derive(self, psam: Connection, key_id: int, card_id: bytes, algorithm: int) -> None:
        """``80 1A kid alg 10 card-ID``: the PSAM derives the card key."""
        try:
            data = SamKeyInitData(card_id=card_id).encode()
            psam.send(
                Command(CLA_PROPRIETARY, Ins.INIT_FOR_DESCRYPT, key_id, algorithm, data),
                sensitive=True,
            )
        except sw_errors.FunctionNotSupported:
            raise PsamNoSm4() from None
        except sw_errors.KeyNotFound:
            if key_id == SsseKeyId.RKSSSE:
                raise PsamNoRkssse() from None
            raise PsamKeyInsufficient() from None
        except (sw_errors.InsNotSupported, sw_errors.ClaNotSupported, TerminalError):
            raise PsamMissing() from None  # not a PSAM (another card in the slot), or gone

    def verify_internal(
        self, card_id: bytes, algorithm: int, process8: bytes, source8: bytes, response8: bytes
    ) -> bool:
        psam = self._open()
        self._derive(psam, SsseKeyId.IRK, card_id, algorithm)
        try:
            data = SamCipherData(x8=process8, s8=source8, r8=response8).encode()
            check = Command(CLA_PROPRIETARY, Ins.CIPHER_DATA, 0x01, 0x00, data)
            response = psam.transmit(check, sensitive=True)
        except TerminalError:
            raise PsamMissing() from None
        if response.sw == 0x9302:
            return False
        response.check(0xFA)
        return True

    def external_cryptogram(
        self,
        card_id: bytes,
        algorithm: int,
        challenge8: bytes,
        source8: bytes,
        key_id: int = SsseKeyId.RKSSSE,
    ) -> bytes:
        psam = self._open()
        self._derive(psam, key_id, card_id, algorithm)
        try:
            data = SamCipherData(x8=challenge8, s8=source8).encode()
            answer = psam.send(
                Command(CLA_PROPRIETARY, Ins.CIPHER_DATA, 0x00, 0x00, data, le=8), sensitive=True
            )
            return SamCryptogram.decode(answer.data).cryptogram
        except TerminalError:
            raise PsamMissing() from None

    def __repr__(self) -> str:
        return f"<PsamKeyProvider {self.psam!r}>"


# =========================================================================== HSM


class HsmSimulator:
    """The host/HSM side of ``iReadCardBas_HSM_Step1/Step2`` (reference §C3.6, §C4.3).

    :meth:`compute` takes the Step1 string ``region|ATR|alg|cardId|intP|intS|extP|extS|``
    and answers ``INT(32 hex)|EXT(32 hex)|``. INT is the full 16-B block for SM4 (the
    reader compares its first 8 B, profile); for DES-family cards, whose cryptogram is
    8 B, INT is the 8 B followed by 8 zero bytes (sscard choice). EXT = E8 ‖ S8.
    """

    def __init__(self, key_set: MasterKeySet) -> None:
        self._soft = SoftwareKeyProvider(key_set)

    def compute(self, step1: str) -> str:
        fields = step1.split("|")
        if len(fields) < 8:
            raise HsmInputError()
        try:
            algorithm = int(fields[2], 16)
            card_id = bytes.fromhex(fields[3])
            int_p, int_s, ext_p, ext_s = (bytes.fromhex(f) for f in fields[4:8])
        except ValueError:
            raise HsmInputError() from None
        if len(card_id) != 16 or {len(int_p), len(int_s), len(ext_p), len(ext_s)} != {8}:
            raise HsmInputError()
        irk = self._soft.card_key("IRK", card_id, algorithm)
        int_block = internal_auth_block(irk, int_p, int_s, algorithm)
        e8 = self._soft.external_cryptogram(card_id, algorithm, ext_p, ext_s)
        return f"{int_block.hex().upper()}|{(e8 + ext_s).hex().upper()}|"

    def __repr__(self) -> str:
        return "<HsmSimulator keys=<redacted>>"


class HsmInputError(SscardError):
    """A Step1 string the host cannot parse: −23 "illegal input"."""

    code = -23
    message_en = "malformed HSM Step1 string"
    message_zh = "加密机第一步数据格式错误"
