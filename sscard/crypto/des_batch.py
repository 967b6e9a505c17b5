"""Single DES over many blocks, each with its own key, vectorised with numpy.

Why: a clearing day checks a million TACs under some 300,000 different card keys
(transit-purse.md §4.4: the 3DES purse's TAC key is the single-DES key DTK_left XOR
DTK_right). pyca/cryptography encrypts fast but costs ~15 µs to set up each key
(platform-notes.md §5), which is most of the time; here the key schedule and the
16 rounds run as array operations over all keys at once, so a key costs nothing
extra. FIPS 46-3 DES, encryption only; checked against pyca/cryptography on random
keys and blocks and against the FIPS 81 example in tests/test_clearing.py.

Permutations use byte tables: for each input byte, a 256-entry table of its
contribution to the output, so a 64-bit permutation is 8 lookups. The S-boxes are
merged with the P permutation into eight 64-entry tables (the classic "SP" tables).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["des_encrypt_blocks", "des_key_schedule"]

U64 = npt.NDArray[np.uint64]

_IP = (
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
)  # fmt: skip
_FP = tuple(_IP.index(i) + 1 for i in range(1, 65))
_E = (
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
    16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
)  # fmt: skip
_P = (
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
)  # fmt: skip
_PC1 = (
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3,
    60, 52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37,
    29, 21, 13, 5, 28, 20, 12, 4,
)  # fmt: skip
_PC2 = (
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
)  # fmt: skip
_SHIFTS = (1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1)
_S = (
    (14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11,
     9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5,
     11, 3, 14, 10, 0, 6, 13),
    (15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10,
     6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2,
     11, 6, 7, 12, 0, 5, 14, 9),
    (10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14,
     12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7,
     4, 15, 14, 3, 11, 5, 2, 12),
    (7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12,
     1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8,
     9, 4, 5, 11, 12, 7, 2, 14),
    (2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
     10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2,
     13, 6, 15, 0, 9, 10, 4, 5, 3),
    (12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14,
     0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10,
     11, 14, 1, 7, 6, 0, 8, 13),
    (4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12,
     2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7,
     9, 5, 0, 15, 14, 2, 3, 12),
    (13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11,
     0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13,
     15, 12, 9, 0, 3, 5, 6, 11),
)  # fmt: skip


def _tables(perm: tuple[int, ...], n_in: int) -> list[U64]:
    """Per input byte, a 256-entry table of that byte's bits moved to their output places."""
    n_out = len(perm)
    tables = []
    for byte in range(n_in // 8):
        table = np.zeros(256, dtype=np.uint64)
        for value in range(256):
            out = 0
            for i, src in enumerate(perm):
                bit = src - 1  # 0 = the input's most significant bit
                if bit // 8 == byte and value >> (7 - bit % 8) & 1:
                    out |= 1 << (n_out - 1 - i)
            table[value] = out
        tables.append(table)
    return tables


def _permute(x: U64, tables: list[U64], n_in: int) -> U64:
    out = np.zeros_like(x)
    for byte, table in enumerate(tables):
        out |= table[(x >> np.uint64(n_in - 8 - 8 * byte)) & np.uint64(0xFF)]
    return out


_T_IP = _tables(_IP, 64)
_T_FP = _tables(_FP, 64)
_T_E = _tables(_E, 32)
_T_PC1 = _tables(_PC1, 64)
_T_PC2 = _tables(_PC2, 56)


def _sp_tables() -> list[U64]:
    """S-box i followed by P: 6 input bits -> their 32-bit contribution to f."""
    p_tables = _tables(_P, 32)
    out = []
    for i, box in enumerate(_S):
        table = np.zeros(64, dtype=np.uint64)
        for b in range(64):
            row = (b >> 4 & 2) | (b & 1)
            col = b >> 1 & 0xF
            s = np.array([box[row * 16 + col] << (28 - 4 * i)], dtype=np.uint64)
            table[b] = _permute(s, p_tables, 32)[0]
        out.append(table)
    return out


_SP = _sp_tables()
_M28 = np.uint64(0x0FFFFFFF)
_M32 = np.uint64(0xFFFFFFFF)


def des_key_schedule(keys: U64) -> U64:
    """(16, n) 48-bit round keys for n 64-bit DES keys (parity bits ignored)."""
    cd = _permute(keys, _T_PC1, 64)
    c, d = cd >> np.uint64(28), cd & _M28
    rounds = np.empty((16, len(keys)), dtype=np.uint64)
    for r, shift in enumerate(_SHIFTS):
        s, back = np.uint64(shift), np.uint64(28 - shift)
        c = ((c << s) | (c >> back)) & _M28
        d = ((d << s) | (d >> back)) & _M28
        rounds[r] = _permute((c << np.uint64(28)) | d, _T_PC2, 56)
    return rounds


def des_encrypt_blocks(blocks: U64, round_keys: U64, key_index: npt.NDArray[np.intp]) -> U64:
    """DES-encrypt 64-bit ``blocks``; block i under the key ``round_keys[:, key_index[i]]``."""
    x = _permute(blocks, _T_IP, 64)
    left, right = x >> np.uint64(32), x & _M32
    for r in range(16):
        e = _permute(right, _T_E, 32) ^ round_keys[r][key_index]
        f = _SP[7][e & np.uint64(63)]
        for i in range(7):
            f ^= _SP[i][(e >> np.uint64(42 - 6 * i)) & np.uint64(63)]
        left, right = right, left ^ f
    return _permute((right << np.uint64(32)) | left, _T_FP, 64)
