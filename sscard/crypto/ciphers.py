"""DES, 2-/3-key 3DES and SM4 block operations on pyca/cryptography.

Why this module exists: building a ``Cipher`` costs ~8 µs, an ``update`` on a
live ECB context well under 1 µs (reference §N5, §N6.3).
:class:`BlockCipher` builds its ECB encryptor once and reuses it for every
block, which is the project's way to run CBC-MACs and bulk SM4.

Keys always reach ``TripleDES`` as 24 bytes (reference §N5): a 16-byte
2-key 3DES key becomes ``k + k[:8]`` and an 8-byte single-DES key ``k * 3``;
other lengths warn (deprecated) in ``cryptography``, and tests run with -W error.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from sscard.crypto.errors import DataLengthError, KeyLengthError, UnsupportedAlgorithm

__all__ = [
    "BlockAlgorithm",
    "BlockCipher",
    "block_cipher",
    "des_ecb_decrypt",
    "des_ecb_encrypt",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "xor_bytes",
]


class BlockAlgorithm(StrEnum):
    """Block cipher families used by the cards.

    ``DES`` is the whole DES family; the key length picks the variant:
    8 B single DES, 16 B 2-key 3DES (EDE, K1 K2 K1), 24 B 3-key 3DES.
    """

    DES = "des"
    SM4 = "sm4"


_DES_KEY_LENGTHS = (8, 16, 24)


def _expand_des_key(key: bytes) -> bytes:
    """Return the 24-byte TripleDES key for an 8-, 16- or 24-byte DES-family key."""
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise KeyLengthError(
        f"DES/3DES key must be 8, 16 or 24 bytes, got {len(key)}",
        f"DES/3DES 密钥须为 8、16 或 24 字节，实际 {len(key)} 字节",
    )


def xor_bytes(a: bytes, b: bytes) -> bytes:
    """XOR two equal-length byte strings (CBC chaining, key halves)."""
    if len(a) != len(b):
        raise DataLengthError(
            f"XOR operands differ in length ({len(a)} vs {len(b)})",
            f"异或操作数长度不同（{len(a)} 与 {len(b)}）",
        )
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


class BlockCipher:
    """One key, one algorithm, ECB contexts built once and reused.

    ECB contexts are never finalised: ``update`` on whole blocks returns the
    same number of bytes, so one context serves any number of calls. The
    decryptor is built on first use (most MACs never decrypt). Not thread-safe:
    use one instance per thread. The repr never shows the key.
    """

    __slots__ = ("_algorithm", "_cipher", "_decryptor", "_encryptor", "_key_length")

    def __init__(self, key: bytes, algorithm: BlockAlgorithm | str = BlockAlgorithm.DES) -> None:
        try:
            algo = BlockAlgorithm(algorithm)
        except ValueError:
            raise UnsupportedAlgorithm(
                f"unknown block algorithm {algorithm!r}", f"未知分组算法 {algorithm!r}"
            ) from None
        key = bytes(key)
        if algo is BlockAlgorithm.SM4:
            if len(key) != 16:
                raise KeyLengthError(
                    f"SM4 key must be 16 bytes, got {len(key)}",
                    f"SM4 密钥须为 16 字节，实际 {len(key)} 字节",
                )
            cipher = Cipher(algorithms.SM4(key), modes.ECB())
        else:
            cipher = Cipher(TripleDES(_expand_des_key(key)), modes.ECB())
        self._algorithm = algo
        self._key_length = len(key)
        self._cipher = cipher
        self._encryptor: CipherContext = cipher.encryptor()
        self._decryptor: CipherContext | None = None

    @property
    def algorithm(self) -> BlockAlgorithm:
        return self._algorithm

    @property
    def block_size(self) -> int:
        """8 for the DES family, 16 for SM4."""
        return 16 if self._algorithm is BlockAlgorithm.SM4 else 8

    def __repr__(self) -> str:
        return f"BlockCipher({self._algorithm.value}, key={self._key_length} B)"

    def _check(self, data: bytes, *, single: bool) -> None:
        n = self.block_size
        if (single and len(data) != n) or len(data) % n:
            what = "one block" if single else "a multiple of the block size"
            raise DataLengthError(
                f"{self._algorithm.value} data must be {what} ({n} B), got {len(data)} B",
                f"{self._algorithm.value} 数据须为{'一个分组' if single else '分组长度的整数倍'}"
                f"（{n} 字节），实际 {len(data)} 字节",
            )

    def _dec(self) -> CipherContext:
        if self._decryptor is None:
            self._decryptor = self._cipher.decryptor()
        return self._decryptor

    def encrypt_block(self, block: bytes) -> bytes:
        """Encrypt exactly one block."""
        self._check(block, single=True)
        return self._encryptor.update(block)

    def decrypt_block(self, block: bytes) -> bytes:
        """Decrypt exactly one block."""
        self._check(block, single=True)
        return self._dec().update(block)

    def ecb_encrypt(self, data: bytes) -> bytes:
        """ECB-encrypt whole blocks (no padding: the caller pads)."""
        self._check(data, single=False)
        return self._encryptor.update(data)

    def cbc_last_block(self, data: bytes, iv: bytes) -> bytes:
        """CBC-encrypt whole blocks, return only the last ciphertext block (CBC-MAC core).

        One XOR on ints and one ``update`` per block, no per-block checks: MACs
        are short (1-3 blocks), so per-block Python overhead matters as much as
        the one-off cost of building the context.
        """
        self._check(data, single=False)
        n = self.block_size
        if len(iv) != n:
            raise DataLengthError(
                f"IV must be {n} B, got {len(iv)} B", f"初始向量须为 {n} 字节，实际 {len(iv)} 字节"
            )
        update = self._encryptor.update
        chain = bytes(iv)
        for i in range(0, len(data), n):
            block = int.from_bytes(chain) ^ int.from_bytes(data[i : i + n])
            chain = update(block.to_bytes(n))
        return chain

    def ecb_decrypt(self, data: bytes) -> bytes:
        """ECB-decrypt whole blocks."""
        self._check(data, single=False)
        return self._dec().update(data)


def block_cipher(key: bytes, algorithm: BlockAlgorithm | str = BlockAlgorithm.DES) -> BlockCipher:
    """Factory: a reusable :class:`BlockCipher` for ``key`` (see its docstring)."""
    return BlockCipher(key, algorithm)


def des_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """DES-family ECB encryption; the key length (8/16/24 B) picks DES, 2-key or 3-key 3DES."""
    return BlockCipher(key, BlockAlgorithm.DES).ecb_encrypt(data)


def des_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """DES-family ECB decryption; see :func:`des_ecb_encrypt`."""
    return BlockCipher(key, BlockAlgorithm.DES).ecb_decrypt(data)


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """SM4 (GB/T 32907) ECB encryption of whole 16-byte blocks."""
    return BlockCipher(key, BlockAlgorithm.SM4).ecb_encrypt(data)


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """SM4 ECB decryption of whole 16-byte blocks."""
    return BlockCipher(key, BlockAlgorithm.SM4).ecb_decrypt(data)
