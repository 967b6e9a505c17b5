"""ISO/IEC 9797-1 padding method 2 and MAC algorithms 1 and 3, PBOC MAC.

The purse and the SSSE application both use these (
reference §P4.3, reference part C sscard profile "SSSE secure messaging"):
padding method 2 is **always** applied, so a full final block gets a whole
extra ``80 00 … 00`` block, and the PBOC MAC is the leftmost 4 bytes.
"""

from __future__ import annotations

from sscard.crypto.ciphers import BlockAlgorithm, BlockCipher
from sscard.crypto.errors import DataLengthError, KeyLengthError, PaddingError

__all__ = ["mac_alg1", "mac_alg3", "pad_m2", "pboc_mac", "unpad_m2"]


def pad_m2(data: bytes, block_size: int = 8) -> bytes:
    """ISO 9797-1 method 2: append ``80`` then ``00`` up to a multiple of ``block_size``."""
    if block_size <= 0:
        raise DataLengthError(
            f"block size must be positive, got {block_size}", f"分组长度须为正数，实际 {block_size}"
        )
    padded = bytes(data) + b"\x80"
    return padded + bytes(-len(padded) % block_size)


def unpad_m2(data: bytes, block_size: int = 8) -> bytes:
    """Strip method-2 padding; :class:`PaddingError` when it is absent or malformed."""
    if block_size <= 0 or not data or len(data) % block_size:
        raise PaddingError(
            f"padded data must be a non-empty multiple of {block_size} B, got {len(data)} B",
            f"填充后数据须为 {block_size} 字节的非零整数倍，实际 {len(data)} 字节",
        )
    stripped = data.rstrip(b"\x00")
    # The marker must sit within the last block: at most block_size - 1 zero bytes follow it.
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= block_size:
        raise PaddingError()
    return stripped[:-1]


def _icv(icv: bytes | None, block_size: int) -> bytes:
    if icv is None:
        return bytes(block_size)
    if len(icv) != block_size:
        raise DataLengthError(
            f"initial chaining value must be {block_size} B, got {len(icv)} B",
            f"初始链接值须为 {block_size} 字节，实际 {len(icv)} 字节",
        )
    return bytes(icv)


def mac_alg1(cipher: BlockCipher, data: bytes, icv: bytes | None = None) -> bytes:
    """MAC algorithm 1 (CBC-MAC) with padding method 2; returns the full last block.

    ``icv`` defaults to zeros (purse MACs); the SSSE secure-messaging MAC
    passes the card challenge. Works with any :class:`BlockCipher` (DES,
    3DES, SM4), whose encryptor is reused for every block.
    """
    n = cipher.block_size
    return cipher.cbc_last_block(pad_m2(data, n), _icv(icv, n))


def mac_alg3(key: bytes, data: bytes, icv: bytes | None = None) -> bytes:
    """MAC algorithm 3 ("retail MAC") with a 16-byte DES key, padding method 2; 8 bytes.

    Single-DES CBC with K1 over every block, then decrypt with K2 and encrypt
    with K1 on the final block (reference §N5).
    """
    if len(key) != 16:
        raise KeyLengthError(
            f"retail MAC key must be 16 bytes, got {len(key)}",
            f"Retail MAC 密钥须为 16 字节，实际 {len(key)} 字节",
        )
    k1 = BlockCipher(key[:8], BlockAlgorithm.DES)
    k2 = BlockCipher(key[8:], BlockAlgorithm.DES)
    return k1.encrypt_block(k2.decrypt_block(mac_alg1(k1, data, icv)))


def pboc_mac(cipher: BlockCipher, data: bytes, icv: bytes | None = None) -> bytes:
    """PBOC MAC: leftmost 4 bytes of :func:`mac_alg1` (reference §P4.3)."""
    return mac_alg1(cipher, data, icv)[:4]
