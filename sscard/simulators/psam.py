"""The simulated PSAM: purse MAC1/MAC2 for validators and SSSE card-authentication keys.

A PSAM is a card of its own (built on :class:`~sscard.simulators.cos.CardOS`, T=0 by
default), so a terminal drives it with raw APDUs exactly as a real SAM slot
(reference §P3 and its "sscard profile"):

=====================================  =====================================================
``00 A4 00 00 02 1001``                select the PSAM application (by FID, no AID)
``00 B0 96 00 06``                     terminal number, EF 0016 (in the MF and in DF 1001)
``00 B0 97 00 01``                     key index, EF 0017 byte 0 (DF 1001)
``80 70 00 00 1C|24 <data>``           INIT SAM FOR PURCHASE: card random 4 ‖ offline
                                       counter 2 ‖ amount 4 ‖ type 1 ‖ date-time 7 ‖ key
                                       version 1 ‖ algorithm ID 1 ‖ ASN right 8 B [‖ issuer
                                       ID 8]. Answer: terminal txn seq 4 ‖ MAC1 4 (T=0:
                                       ``61 08`` then ``00 C0 00 00 08``). The sequence
                                       number is persistent and increments per 8070.
``80 72 00 00 04 <MAC2>``              CREDIT SAM FOR PURCHASE: ``9000`` or ``9302``
=====================================  =====================================================

DPK = Div(Div(MPK, issuer ID), ASN8) for Lc ``24``, Div(MPK, ASN8) for Lc ``1C``
(profile "PSAM diversification"); algorithm ID ``00`` 3DES, ``04`` SM4 (profile).
Errors: Lc other than 1C/24 ``6700``; key version not held ``6A88``; algorithm ID
04 on a PSAM without SM4 ``6A81``, unknown algorithm ID ``6A80``; 8072 without a
prior 8070 ``6901``. A failed 8072 keeps the purchase context (the terminal may
retry with the MAC2 of GET TRANSACTION PROVE, §P5.7); a good one ends it.

**SSSE card-authentication commands (sscard profile; no public PSAM spec).** They
mirror the generic DES init/compute pair of reference §P3 (``801A``/``80FA``):

=====================================  =====================================================
``80 1A kid alg 10 <card ID 16>``      derive the card's key ``kid`` (``00`` IRK, ``0A``
                                       RKSSSE) for SSSE algorithm flag ``alg`` (``01``
                                       3DES, ``03`` SM4) from the card identification code
                                       (EF05 rec 01): Div(Div(MK, bytes 0-7), bytes 8-15)
                                       (reference part C profile "Key diversification").
``80 FA 00 00 10 <X8 ‖ S8>``           answer the 8-B cryptogram: for IRK, X8 = the process
                                       factor sent in ``00 88`` and the answer is the card's
                                       expected INTERNAL AUTHENTICATE response; for RKSSSE,
                                       X8 = the card's challenge (``00 84 00 00 08``) and
                                       the answer is E8 for ``00 82 00 0A 10 E8 ‖ S8``
                                       (reference §C3.4, §C3.5 and profile).
``80 FA 01 00 18 <X8 ‖ S8 ‖ R8>``      verify: ``9000`` when R8 (the card's response)
                                       equals the cryptogram, else ``9302``.
=====================================  =====================================================

Errors: ``6A81`` when ``alg`` is 03 and the PSAM has no SM4 (the reader maps this to
−2202), ``6A88`` when ``kid`` is 0A and the PSAM holds no RKSSSE (−2203) or ``kid`` is
unknown, ``6A86`` for another ``alg``, ``6700`` for a wrong Lc, ``6985`` for 80FA
without a prior 801A. The derived key stays until the next 801A, a reset or power off.

The PSAM image (``"schema": "sscard-psam/1"``) is a JSON file holding the terminal
number, key index, the persistent sequence number and the master keys the PSAM
carries, marked ``TEST KEYS - NOT FOR PRODUCTION``; :meth:`PsamImage.save` is atomic.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sscard.apdu import Command, errors
from sscard.apdu.catalog import CLA_PROPRIETARY, Ins
from sscard.apdu.codec import bcd_datetime
from sscard.cards.purse import SamCreditData, SamPurchaseInitData, SamPurchaseInitResponse
from sscard.cards.ssse import SamCipherData, SamCryptogram, SamKeyInitData
from sscard.crypto import purse as pc
from sscard.crypto import ssse
from sscard.crypto.errors import UnsupportedAlgorithm
from sscard.crypto.purse import Algorithm
from sscard.simulators.cos import (
    FREE,
    NEVER,
    Applet,
    CardOS,
    DedicatedFile,
    TransparentFile,
    decode_body,
)
from sscard.simulators.faults import Faults
from sscard.simulators.keys import TEST_KEYS_WARNING, Family, KeySet, default_key_set
from sscard.simulators.profile import (
    ProfileError,
    atomic_write_text,
    parse_json_text,
    read_json_file,
)

__all__ = [
    "PSAM_ATR",
    "PSAM_SCHEMA",
    "PsamApplet",
    "PsamImage",
    "load_psam",
    "new_psam",
    "psam_card",
    "save_psam",
]

PSAM_SCHEMA = "sscard-psam/1"
PSAM_DF_FID = 0x1001
EF_TERMINAL, EF_KEY_INDEX = 0x16, 0x17
#: SSSE key IDs the PSAM can derive (reference §C2, sscard.cards.ids.SsseKeyId).
KID_IRK, KID_RKSSSE = 0x00, 0x0A
_SSSE_NAMES = {KID_IRK: "IRK", KID_RKSSSE: "RKSSSE"}
#: SSSE algorithm flags (reference §C3.1): 01 3DES, 03 SM4.
FLAG_DES, FLAG_SM4 = 0x01, 0x03

#: T=0 only (no TD1): TS 3B, T0 68 (TB1, TC1, 8 historical bytes "SSCPSAM1").
PSAM_ATR = bytes.fromhex("3B680000") + b"SSCPSAM1"


def _family(algorithm: int) -> Family:
    return "sm4" if algorithm in (Algorithm.SM4, FLAG_SM4) else "3des"


# =========================================================================== image


@dataclass
class PsamImage:
    """Everything a PSAM keeps: identity, the persistent sequence number and its keys.

    ``purse_masters``: family -> MPK; ``ssse_masters``: family -> {"IRK", "RKSSSE"} ->
    master key. A PSAM "without RKSSSE" or "without SM4" simply lacks those keys.
    """

    terminal_id: bytes
    key_index: int = 1
    next_seq: int = 1
    purse_key_version: int = 1
    t0: bool = True
    purse_masters: dict[str, bytes] = field(default_factory=dict, repr=False)
    ssse_masters: dict[str, dict[str, bytes]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.terminal_id) != 6:
            raise ProfileError("PSAM terminal number must be 6 bytes", "PSAM终端机编号须为6字节")
        if not 0 <= self.key_index <= 0xFF or not 0 <= self.purse_key_version <= 0xFF:
            raise ProfileError(
                "PSAM key index/version must be one byte", "PSAM密钥索引/版本须为1字节"
            )
        if not 0 <= self.next_seq <= 0xFFFFFFFF:
            raise ProfileError("PSAM sequence must fit 4 bytes", "PSAM交易序号须为4字节")

    @property
    def sm4(self) -> bool:
        """True when the PSAM can do SM4 (purse algorithm 04, SSSE flag 03)."""
        return "sm4" in self.purse_masters or "sm4" in self.ssse_masters

    @property
    def has_rkssse(self) -> bool:
        return any("RKSSSE" in keys for keys in self.ssse_masters.values())

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PSAM_SCHEMA,
            "warning": TEST_KEYS_WARNING,
            "terminal_id": self.terminal_id.hex().upper(),
            "key_index": self.key_index,
            "next_seq": self.next_seq,
            "purse_key_version": self.purse_key_version,
            "t0": self.t0,
            "keys": {
                "purse": {fam: {"MPK": k.hex().upper()} for fam, k in self.purse_masters.items()},
                "ssse": {
                    fam: {n: k.hex().upper() for n, k in sorted(keys.items())}
                    for fam, keys in self.ssse_masters.items()
                },
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PsamImage:
        if data.get("warning") != TEST_KEYS_WARNING:
            raise ProfileError(
                f'PSAM file must carry "warning": "{TEST_KEYS_WARNING}"',
                f"PSAM文件须带有测试密钥警告“{TEST_KEYS_WARNING}”",
            )
        keys = data.get("keys")
        if not isinstance(keys, dict):
            raise ProfileError("PSAM file: keys must be an object", "PSAM文件：keys应为对象")
        purse = {
            fam: _hex16(names["MPK"], f"keys.purse.{fam}.MPK")
            for fam, names in _families(keys.get("purse", {}), "keys.purse", ("MPK",)).items()
        }
        ssse_keys = {
            fam: {n: _hex16(k, f"keys.ssse.{fam}.{n}") for n, k in names.items()}
            for fam, names in _families(keys.get("ssse", {}), "keys.ssse", ()).items()
        }
        return cls(
            terminal_id=_hex(data.get("terminal_id"), "terminal_id"),
            key_index=_int(data.get("key_index", 1), "key_index"),
            next_seq=_int(data.get("next_seq", 1), "next_seq"),
            purse_key_version=_int(data.get("purse_key_version", 1), "purse_key_version"),
            t0=bool(data.get("t0", True)),
            purse_masters=purse,
            ssse_masters=ssse_keys,
        )

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PsamImage:
        return cls.from_dict(parse_json_text(text, PSAM_SCHEMA))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PsamImage:
        return cls.from_dict(read_json_file(path, PSAM_SCHEMA))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomic (temp file + rename): a crash leaves the previous image."""
        atomic_write_text(path, self.to_json())


def _families(value: Any, where: str, required: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or any(f not in ("3des", "sm4") for f in value):
        raise ProfileError(f"{where}: expected 3des/sm4 objects", f"{where}：应为3des/sm4对象")
    for fam, names in value.items():
        if not isinstance(names, dict) or any(n not in names for n in required):
            raise ProfileError(f"{where}.{fam}: missing keys", f"{where}.{fam}：缺少密钥")
    return value


def _hex(value: Any, where: str) -> bytes:
    try:
        return bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raise ProfileError(f"{where}: not hex", f"{where}：不是十六进制") from None


def _hex16(value: Any, where: str) -> bytes:
    key = _hex(value, where)
    if len(key) != 16:
        raise ProfileError(f"{where}: must be 16 bytes", f"{where}：须为16字节")
    return key


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProfileError(f"{where}: expected an integer", f"{where}：应为整数")
    return value


def new_psam(
    terminal_id: bytes | str,
    key_index: int = 1,
    *,
    keys: KeySet | None = None,
    has_rkssse: bool = True,
    sm4: bool = True,
    t0: bool = True,
) -> PsamImage:
    """A fresh PSAM image loaded with ``keys``' MPK, IRK and (optionally) RKSSSE masters.

    ``terminal_id`` is the 6-byte terminal number, as bytes or as the 12 hex digits a
    validator configuration uses. ``keys`` defaults to the TEST key set, as for
    ``build_card``. ``has_rkssse=False`` builds the PSAM of error −2203, ``sm4=False``
    the one of −2202.
    """
    if isinstance(terminal_id, str):
        try:
            terminal_id = bytes.fromhex(terminal_id)
        except ValueError:
            terminal_id = b""
    if len(terminal_id) != 6:
        raise ProfileError("PSAM terminal number must be 6 bytes", "PSAM终端机编号须为6字节")
    keys = keys if keys is not None else default_key_set()
    families: tuple[Family, ...] = ("3des", "sm4") if sm4 else ("3des",)
    names = ("IRK", "RKSSSE") if has_rkssse else ("IRK",)
    purse: dict[str, bytes] = {
        f: keys.purse.master("MPK", f) for f in families if f in keys.purse.keys
    }
    ssse_keys: dict[str, dict[str, bytes]] = {
        f: {n: keys.ssse.master(n, f) for n in names} for f in families if f in keys.ssse.keys
    }
    return PsamImage(
        terminal_id=bytes(terminal_id),
        key_index=key_index,
        purse_key_version=keys.purse_key_version,
        t0=t0,
        purse_masters=purse,
        ssse_masters=ssse_keys,
    )


def load_psam(path: str | os.PathLike[str]) -> PsamImage:
    return PsamImage.load(path)


def save_psam(image: PsamImage, path: str | os.PathLike[str]) -> None:
    image.save(path)


# =========================================================================== applet


@dataclass(frozen=True)
class _Purchase:
    session_key: bytes = field(repr=False)
    amount: int
    algorithm: Algorithm


@dataclass(frozen=True)
class _SsseKey:
    key_id: int
    flag: int
    key: bytes = field(repr=False)


class PsamApplet(Applet):
    """The PSAM application of DF 1001 (commands in the module docstring)."""

    def __init__(self, image: PsamImage) -> None:
        self.image = image
        self._purchase: _Purchase | None = None
        self._ssse: _SsseKey | None = None
        self.instructions = {
            (CLA_PROPRIETARY, Ins.INIT_SAM_FOR_PURCHASE): self.init_sam_for_purchase,
            (CLA_PROPRIETARY, Ins.CREDIT_SAM_FOR_PURCHASE): self.credit_sam_for_purchase,
            (CLA_PROPRIETARY, Ins.INIT_FOR_DESCRYPT): self.init_ssse_key,
            (CLA_PROPRIETARY, Ins.CIPHER_DATA): self.ssse_compute,
        }

    def __repr__(self) -> str:
        return f"PsamApplet(terminal={self.image.terminal_id.hex().upper()})"

    def answer_size(self, cmd: Command) -> int | None:
        """8070 answers seq ‖ MAC1 (8 B) and commits the sequence number: Le is judged
        first (card_os.py, "Le before side effects")."""
        return SamPurchaseInitResponse.size() if (cmd.cla, cmd.ins) == (0x80, 0x70) else None

    def reset(self) -> None:
        self._purchase = None
        self._ssse = None

    # -- purse --------------------------------------------------------------------------

    def init_sam_for_purchase(self, cos: CardOS, cmd: Command) -> bytes:
        """8070: terminal txn seq ‖ MAC1 (reference §P3, §P4.2-4.4); seq + 1 committed."""
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            raise errors.WrongParameters()
        body = decode_body(SamPurchaseInitData, cmd)  # Lc 1C one-level, 24 two-level
        try:
            algo = Algorithm.from_byte(body.algorithm_id)
        except UnsupportedAlgorithm:
            raise errors.WrongData() from None
        image = self.image
        master = image.purse_masters.get(_family(algo))
        if master is None:
            raise errors.FunctionNotSupported()  # no SM4 in this PSAM
        if body.key_version != image.purse_key_version:
            raise errors.KeyNotFound()
        if body.issuer_id is not None:
            dpk = pc.diversify2(master, body.issuer_id, body.asn8, algo)
        else:
            dpk = pc.diversify(master, body.asn8, algo)
        seq = image.next_seq
        if seq > 0xFFFFFFFF:
            raise errors.ConditionsNotSatisfied()  # sequence exhausted
        sk = pc.purchase_session_key(
            dpk,
            card_random=body.random,
            offline_counter=body.offline_counter,
            terminal_seq=seq,
            algorithm=algo,
        )
        mac1 = pc.purchase_mac1(
            sk,
            amount=body.amount,
            txn_type=body.txn_type,
            terminal_id=image.terminal_id,
            date_time=bcd_datetime(body.time),
            algorithm=algo,
        )

        def apply() -> None:
            image.next_seq = seq + 1

        self._purchase = None
        cos.commit(apply)
        self._purchase = _Purchase(sk, body.amount, algo)
        return SamPurchaseInitResponse(terminal_seq=seq, mac1=mac1).encode()

    def credit_sam_for_purchase(self, cos: CardOS, cmd: Command) -> bytes:
        """8072: verify the card's MAC2 over the amount (§P4.4): 9000 or 9302."""
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            raise errors.WrongParameters()
        mac2 = decode_body(SamCreditData, cmd).mac2
        p = self._purchase
        if p is None:
            raise errors.InvalidState()
        expected = pc.purchase_mac2(p.session_key, amount=p.amount, algorithm=p.algorithm)
        if not hmac.compare_digest(expected, mac2):
            raise errors.MacInvalid()
        self._purchase = None
        return b""

    # -- SSSE ---------------------------------------------------------------------------

    def init_ssse_key(self, cos: CardOS, cmd: Command) -> bytes:
        """801A kid alg: derive the card's IRK/RKSSSE from its card identification code."""
        kid, flag = cmd.p1, cmd.p2
        if flag not in (FLAG_DES, FLAG_SM4):
            raise errors.WrongParameters()
        masters = self.image.ssse_masters.get(_family(flag))
        if masters is None:
            raise errors.FunctionNotSupported()  # −2202: no SM4
        name = _SSSE_NAMES.get(kid)
        if name is None or name not in masters:
            raise errors.KeyNotFound()  # −2203 for RKSSSE
        card_id = decode_body(SamKeyInitData, cmd).card_id
        self._ssse = _SsseKey(kid, flag, ssse.card_key(masters[name], card_id, flag))
        return b""

    def ssse_compute(self, cos: CardOS, cmd: Command) -> bytes:
        """80FA 00: cryptogram of X8 ‖ S8; 80FA 01: verify X8 ‖ S8 ‖ R8 (9000 / 9302)."""
        if cmd.p2 != 0x00 or cmd.p1 not in (0x00, 0x01):
            raise errors.WrongParameters()
        verify = cmd.p1 == 0x01
        size = SamCipherData.size() if verify else SamCipherData.min_size()
        if len(cmd.data) != size:
            raise errors.WrongLength()
        body = decode_body(SamCipherData, cmd)
        k = self._ssse
        if k is None:
            raise errors.ConditionsNotSatisfied()
        if k.key_id == KID_IRK:
            cryptogram = ssse.internal_auth(k.key, body.x8, body.s8, k.flag)
        else:
            cryptogram = ssse.external_auth(k.key, body.x8, body.s8, k.flag)
        if not verify:
            return SamCryptogram(cryptogram=cryptogram).encode()
        if body.r8 is None or not hmac.compare_digest(cryptogram, body.r8):
            raise errors.MacInvalid()
        return b""


# =========================================================================== card


def psam_card(
    image: PsamImage,
    *,
    path: str | os.PathLike[str] | None = None,
    faults: Faults | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> CardOS:
    """A PSAM card for ``image``: MF (EF 0016) → DF 1001 (EF 0016, EF 0017, the applet).

    With ``path`` the image is saved atomically after every committed change (the
    sequence number), so a restarted validator never reuses a sequence number.
    """
    terminal = bytes(image.terminal_id)

    def ef16() -> TransparentFile:
        return TransparentFile(
            fid=EF_TERMINAL,
            sfi=EF_TERMINAL,
            data=bytearray(terminal),
            read=FREE,
            write=NEVER,
            name="terminal number",
        )

    mf = DedicatedFile(fid=0x3F00)
    df = DedicatedFile(fid=PSAM_DF_FID, applet=PsamApplet(image), label_text="PSAM")
    df.add_all(
        ef16(),
        TransparentFile(
            fid=EF_KEY_INDEX,
            sfi=EF_KEY_INDEX,
            data=bytearray([image.key_index]),
            read=FREE,
            write=NEVER,
            name="key index",
        ),
    )
    mf.add_all(ef16(), df)

    def save(_: CardOS) -> None:
        if path is not None:
            image.save(path)

    return CardOS(mf, atr=PSAM_ATR, t0=image.t0, faults=faults, rng=rng, on_commit=save)
