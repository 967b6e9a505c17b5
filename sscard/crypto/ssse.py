"""Social security card (SSSE) keys, card authentication, secure-messaging MAC, PKI PIN.

* 2.0 DES-family cards: reference §C3.4 (internal authentication) and §C3.5
  (external authentication), as published.
* SM4 cards, key diversification and the secure-messaging MAC: reference part C
  "sscard profile" — project choices where LD/T 32 is not public.
* PKI PIN hash and PIN block: reference §C6 test vectors (PERSO).
"""

from __future__ import annotations

from enum import IntEnum

from sscard.crypto._common import SM4_PAD8, diversify_once, key16, need
from sscard.crypto.ciphers import BlockAlgorithm, BlockCipher
from sscard.crypto.errors import DataLengthError, UnsupportedAlgorithm
from sscard.crypto.mac import mac_alg3, pboc_mac
from sscard.crypto.sm3 import sm3

__all__ = [
    "SsseAlgorithm",
    "card_key",
    "diversify",
    "external_auth",
    "internal_auth",
    "internal_auth_block",
    "pin_hash",
    "pki_pin_block",
    "sm_mac",
]


class SsseAlgorithm(IntEnum):
    """Algorithm flag ``aa`` in the SSSE FCI ``9F0C 03 86 01 aa`` (reference §C3.1)."""

    DES = 0x01
    SSF33 = 0x02
    SM4 = 0x03

    @classmethod
    def from_byte(cls, value: int) -> SsseAlgorithm:
        """Decode the flag byte; unknown values are :class:`UnsupportedAlgorithm`."""
        try:
            return cls(value)
        except ValueError:
            raise UnsupportedAlgorithm(
                f"SSSE algorithm flag {value:#04x} is unknown", f"未知社保卡算法标识 {value:#04x}"
            ) from None


def _family(alg: SsseAlgorithm | int) -> BlockAlgorithm:
    """Map the card flag to a block cipher; SSF33 is not public, so not implemented."""
    algo = alg if isinstance(alg, SsseAlgorithm) else SsseAlgorithm.from_byte(alg)
    if algo is SsseAlgorithm.SSF33:
        raise UnsupportedAlgorithm(
            "SSF33 is not implemented (algorithm not public)", "不支持 SSF33 算法（算法未公开）"
        )
    return BlockAlgorithm.SM4 if algo is SsseAlgorithm.SM4 else BlockAlgorithm.DES


def diversify(master_key: bytes, factor8: bytes, alg: SsseAlgorithm | int) -> bytes:
    """Div(MK, D): 3DES_MK(D) ‖ 3DES_MK(~D) (flag 01) or SM4_MK(D ‖ ~D) (flag 03); 16 B."""
    return diversify_once(master_key, factor8, _family(alg))


def card_key(master_key: bytes, card_id_code: bytes, alg: SsseAlgorithm | int) -> bytes:
    """Card key = Div(Div(MK, L1), L2) from the 16-B card identification code (EF05 rec 01).

    Profile: L1 = bytes 0-7 (region 3 B ‖ RID 5 B), L2 = bytes 8-15. Applies to
    IRK, PUK, STK, UK*, RK*, RKSSSE.
    """
    code = need("card identification code", card_id_code, 16)
    return diversify(diversify(master_key, code[:8], alg), code[8:], alg)


def _process_then_encrypt(
    key: bytes, process8: bytes, source8: bytes, family: BlockAlgorithm
) -> bytes:
    """The shared shape of internal and external authentication.

    DES family: PK = 3DES_K(P8) (8 B, a single-DES key); result = DES_PK(S8).
    SM4 (profile): PK = SM4_K(P8 ‖ 80 00…); result = leftmost 8 B of SM4_PK(S8 ‖ 80 00…).
    """
    key = key16("authentication key", key)
    p8 = need("process factor", process8, 8)
    s8 = need("source data", source8, 8)
    if family is BlockAlgorithm.SM4:
        pk = BlockCipher(key, family).encrypt_block(p8 + SM4_PAD8)
        return BlockCipher(pk, family).encrypt_block(s8 + SM4_PAD8)[:8]
    pk = BlockCipher(key, family).encrypt_block(p8)
    return BlockCipher(pk, family).encrypt_block(s8)


def internal_auth(irk: bytes, process8: bytes, source8: bytes, alg: SsseAlgorithm | int) -> bytes:
    """Expected 8-B response to ``00 88 00 kid 10 P8‖S8`` (§C3.4; SM4 per profile)."""
    return _process_then_encrypt(irk, process8, source8, _family(alg))


def internal_auth_block(
    irk: bytes, process8: bytes, source8: bytes, alg: SsseAlgorithm | int
) -> bytes:
    """The HSM's INT field of ``iReadCardBas_HSM_Step2`` (§C3.6), 16 B.

    SM4 (profile): the whole block SM4_PK(S8 ‖ 80 00…), whose first 8 B are the
    card's answer. DES family: the 8-B answer followed by 8 zero bytes (sscard
    choice). The reader compares only the first 8 B either way.
    """
    family = _family(alg)
    if family is BlockAlgorithm.SM4:
        key = key16("authentication key", irk)
        pk = BlockCipher(key, family).encrypt_block(need("process factor", process8, 8) + SM4_PAD8)
        return BlockCipher(pk, family).encrypt_block(need("source data", source8, 8) + SM4_PAD8)
    return _process_then_encrypt(irk, process8, source8, family) + bytes(8)


def external_auth(key: bytes, challenge8: bytes, source8: bytes, alg: SsseAlgorithm | int) -> bytes:
    """E8 for ``00 82 00 kid 10 E8‖S8`` from the card's 8-B challenge (§C3.5; SM4 per profile)."""
    return _process_then_encrypt(key, challenge8, source8, _family(alg))


def sm_mac(key: bytes, challenge: bytes, header_and_data: bytes, alg: SsseAlgorithm | int) -> bytes:
    """4-byte SSSE secure-messaging MAC (profile "SSSE secure messaging").

    ``header_and_data`` = CLA INS P1 P2 Lc' ‖ data (Lc' = Lc + 4), built by the caller.
    DES-family cards: ISO 9797-1 alg 3 with the 16-B key, IV = 8-B challenge.
    SM4 cards: SM4-CBC-MAC, IV = 16-B challenge. Padding 80 00… always; leftmost 4 B.
    """
    family = _family(alg)
    key = key16("secure-messaging key", key)
    if family is BlockAlgorithm.SM4:
        iv = need("SM4 challenge", challenge, 16)
        return pboc_mac(BlockCipher(key, family), header_and_data, iv)
    return mac_alg3(key, header_and_data, need("DES challenge", challenge, 8))[:4]


def pin_hash(pin_bcd: bytes) -> bytes:
    """PKI PIN hash H = SM3(BCD PIN) (reference §C6: PIN 123456 → ``3DE741F4…``)."""
    if not pin_bcd:
        raise DataLengthError("PIN must not be empty", "PIN 不能为空")
    return sm3(pin_bcd)


def pki_pin_block(pin_bcd: bytes, challenge16: bytes) -> bytes:
    """Data of the PKI VERIFY ``00 20 01 81 10``: SM4-ECB(CTK, RAM), CTK = SM3(PIN)[0:16] (§C6)."""
    ram = need("PKI challenge", challenge16, 16)
    return BlockCipher(pin_hash(pin_bcd)[:16], BlockAlgorithm.SM4).encrypt_block(ram)
