"""Input checks and the key-diversification step that the purse and SSSE modules share.

Both card families diversify with the published PBOC rule, Div(MK, D) =
3DES_MK(D) ‖ 3DES_MK(~D) or SM4_MK(D ‖ ~D) (reference §P4.1; reference part C
"sscard profile", key diversification), and both stretch an 8-byte input to one
SM4 block with ``80 00…`` (the profiles' SM4 rows). One copy here, so a card key
derived for the purse and for the SSSE cannot drift apart.
"""

from __future__ import annotations

from sscard.crypto.ciphers import BlockAlgorithm, BlockCipher
from sscard.crypto.errors import DataLengthError, KeyLengthError

#: Profile rule: an 8-byte input X becomes the SM4 block X ‖ 80 00 00 00 00 00 00 00.
SM4_PAD8 = b"\x80" + bytes(7)


def need(name: str, value: bytes, length: int) -> bytes:
    """``value`` as bytes if it is exactly ``length`` long, else :class:`DataLengthError`."""
    if len(value) != length:
        raise DataLengthError(
            f"{name} must be {length} bytes, got {len(value)}",
            f"{name} 须为 {length} 字节，实际 {len(value)} 字节",
        )
    return bytes(value)


def key16(name: str, key: bytes) -> bytes:
    """A 16-byte key (3DES double-length or SM4), else :class:`KeyLengthError`."""
    if len(key) != 16:
        raise KeyLengthError(
            f"{name} must be a 16-byte key, got {len(key)} B",
            f"{name} 须为 16 字节密钥，实际 {len(key)} 字节",
        )
    return bytes(key)


def diversify_once(master_key: bytes, factor8: bytes, family: BlockAlgorithm) -> bytes:
    """Div(MK, D) with the block cipher ``family`` (DES: 3DES with a 16-B key); 16 B."""
    d = need("diversification factor", factor8, 8)
    block = d + bytes(b ^ 0xFF for b in d)
    return BlockCipher(key16("master key", master_key), family).ecb_encrypt(block)
