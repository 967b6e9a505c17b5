"""Single DES over many blocks, each with its own key, vectorised with numpy.

Why: a clearing day checks a million TACs under some 300,000 different card keys
(§P4.4: the 3DES purse's TAC key is the single-DES key DTK_left XOR
DTK_right). pyca/cryptography encrypts fast but costs ~15 µs to set up each key
(§N5), which is most of the time; here the key schedule and the
16 rounds run as array operations over all keys at once, so a key costs nothing
extra. FIPS 46-3 DES, encryption only; checked against pyca/cryptography on random
keys and blocks and against the FIPS 81 example in tests/test_clearing.py.

Permutations (IP, FP, PC1, PC2) use byte tables: for each input byte, a 256-entry
table of its contribution to the output, so a 64-bit permutation is 8 lookups.
The rounds are the classic table-driven DES of Outerbridge's d3des: both halves kept
rotated left by one bit, so the expansion E is one rotation and the eight 6-bit
S-box inputs sit at byte boundaries of two 32-bit words; the round keys "cooked" to
match; S-boxes merged with P. Here pairs of S-boxes share one table (index
``word & 0x3F3F``), so a round is four lookups: in numpy a lookup costs ~1.5 ns per
element whatever the table size, ten times an XOR, so fewer lookups is what counts.
Rows are processed in cache-sized chunks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["des_cbc_encrypt_last", "des_encrypt_blocks", "des_key_schedule"]

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


def _byte_tables(source: dict[int, int], n_in: int, n_out: int) -> list[U64]:
    """Per input byte, a 256-entry table of that byte's bits moved to their output places;
    ``source``: output bit -> input bit (0 = the most significant of each)."""
    values = np.arange(256, dtype=np.uint64)
    tables = []
    for byte in range(n_in // 8):
        table = np.zeros(256, dtype=np.uint64)
        for out, bit in source.items():
            if bit // 8 == byte:
                on = (values >> np.uint64(7 - bit % 8)) & np.uint64(1)
                table |= on << np.uint64(n_out - 1 - out)
        tables.append(table)
    return tables


def _tables(perm: tuple[int, ...], n_in: int) -> list[U64]:
    """Byte tables of a FIPS permutation (1-based input bit per output bit)."""
    return _byte_tables({i: src - 1 for i, src in enumerate(perm)}, n_in, len(perm))


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
_PAIR = np.uint32(0x3F3F)
_CHUNK = 32768  # rows per pass: the round's working arrays stay in cache


def _rotl32(x: npt.NDArray[np.uint32], n: int) -> npt.NDArray[np.uint32]:
    out: npt.NDArray[np.uint32] = (x << np.uint32(n)) | (x >> np.uint32(32 - n))
    return out


def _pair_table(hi: int, lo: int) -> npt.NDArray[np.uint32]:
    """S-boxes ``hi`` and ``lo`` with P, output rotated left by 1, indexed by
    ``(in_hi << 8) | in_lo`` (the two 6-bit inputs one byte apart in a round word)."""
    sp = [_rotl32(t.astype(np.uint32), 1) for t in _SP]
    table = np.zeros(0x3F3F + 1, dtype=np.uint32)
    a, b = np.arange(64)[:, None], np.arange(64)[None, :]
    table[(a << 8) | b] = sp[hi][a] ^ sp[lo][b]
    return table


# Word 1 = rotr(R', 4) holds the inputs of S1 (bits 24-29), S3, S5, S7 (bits 0-5);
# word 2 = R' those of S2, S4, S6, S8 (R' = R rotated left by one bit).
_T1H, _T1L, _T2H, _T2L = _pair_table(0, 2), _pair_table(4, 6), _pair_table(1, 3), _pair_table(5, 7)


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


def _cook(round_keys: U64) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """48-bit round keys as the two 32-bit words XORed into the round words:
    the 6-bit key chunks of S1, S3, S5, S7 (word 1) and S2, S4, S6, S8 (word 2)
    at bits 24, 16, 8, 0."""
    chunk = [
        ((round_keys >> np.uint64(42 - 6 * i)) & np.uint64(63)).astype(np.uint32) for i in range(8)
    ]
    at = [np.uint32(24), np.uint32(16), np.uint32(8)]
    k1 = (chunk[0] << at[0]) | (chunk[2] << at[1]) | (chunk[4] << at[2]) | chunk[6]
    k2 = (chunk[1] << at[0]) | (chunk[3] << at[1]) | (chunk[5] << at[2]) | chunk[7]
    return k1, k2


def _cooked_tables() -> list[list[U64]]:
    """Per round, per key byte: that byte's bits in the round's cooked key (word 1 in
    the high 32 bits, word 2 in the low). PC1, the rotations and PC2 compose into one
    bit permutation of the key per round, so a round key is 8 lookups."""
    tables = []
    shift = 0
    for r in range(16):
        shift += _SHIFTS[r]
        source = {}  # cooked bit (0 = most significant of 64) -> key bit (0 = MSB)
        for i in range(8):  # S-box i's 6 key bits
            slot, word = divmod(i, 2)  # odd boxes in word 1 (high), even in word 2
            for j in range(6):
                cd = _PC2[6 * i + j] - 1  # bit of C_r ‖ D_r
                half, q = divmod(cd, 28)
                cd0 = 28 * half + (q + shift) % 28  # the same bit before the rotations
                source[32 * word + 8 * slot + 2 + j] = _PC1[cd0] - 1
        round_tables = _byte_tables(source, 64, 64)
        tables.append(round_tables)
    return tables


_T_COOKED = _cooked_tables()


def _cooked_schedule(keys: U64) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """(16, n) cooked round-key words 1 and 2 of n 64-bit keys, straight from the key."""
    k1 = np.empty((16, len(keys)), dtype=np.uint32)
    k2 = np.empty((16, len(keys)), dtype=np.uint32)
    key_bytes = [
        ((keys >> np.uint64(56 - 8 * b)) & np.uint64(0xFF)).astype(np.intp) for b in range(8)
    ]
    for r, tables in enumerate(_T_COOKED):
        x = tables[0].take(key_bytes[0])
        for b in range(1, 8):
            x |= tables[b].take(key_bytes[b])
        k1[r] = x >> np.uint64(32)
        k2[r] = x & _M32
    return k1, k2


def _rounds(
    left: npt.NDArray[np.uint32],
    right: npt.NDArray[np.uint32],
    k1: npt.NDArray[np.uint32],
    k2: npt.NDArray[np.uint32],
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """16 rounds on rotated halves; returns (R16', L16'): the pre-output, swapped."""
    intp = np.intp
    for k in range(16):
        w = _rotl32(right, 28) ^ k1[k]
        f = _T1L.take((w & _PAIR).astype(intp))
        f ^= _T1H.take(((w >> np.uint32(16)) & _PAIR).astype(intp))
        w = right ^ k2[k]
        f ^= _T2L.take((w & _PAIR).astype(intp))
        f ^= _T2H.take(((w >> np.uint32(16)) & _PAIR).astype(intp))
        left, right = right, left ^ f
    return right, left


def _split(blocks: U64) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """IP, then the two halves rotated left by one bit."""
    x = _permute(blocks, _T_IP, 64)
    return _rotl32((x >> np.uint64(32)).astype(np.uint32), 1), _rotl32(
        (x & _M32).astype(np.uint32), 1
    )


def _join(left: npt.NDArray[np.uint32], right: npt.NDArray[np.uint32]) -> U64:
    """Halves rotated back, then FP."""
    hi, lo = _rotl32(left, 31).astype(np.uint64), _rotl32(right, 31).astype(np.uint64)
    return _permute((hi << np.uint64(32)) | lo, _T_FP, 64)


def des_cbc_encrypt_last(keys: U64, key_index: npt.NDArray[np.intp], blocks: U64) -> U64:
    """The last CBC block (ICV 0) of each row: ``blocks`` is (n, steps) 64-bit words,
    row i under the key ``keys[key_index[i]]``. The chain stays between IP and FP
    (IP and FP are inverse permutations, and IP is linear: IP(a ^ b) = IP(a) ^ IP(b))."""
    n, steps = blocks.shape
    k1, k2 = _cooked_schedule(keys)
    split = [_split(np.ascontiguousarray(blocks[:, s])) for s in range(steps)]
    left_out = np.empty(n, dtype=np.uint32)
    right_out = np.empty(n, dtype=np.uint32)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        index = key_index[a:b]
        c1, c2 = k1[:, index], k2[:, index]
        left = np.zeros(b - a, dtype=np.uint32)
        right = np.zeros(b - a, dtype=np.uint32)
        for m_left, m_right in split:
            left, right = _rounds(left ^ m_left[a:b], right ^ m_right[a:b], c1, c2)
        left_out[a:b], right_out[a:b] = left, right
    return _join(left_out, right_out)


def des_encrypt_blocks(blocks: U64, round_keys: U64, key_index: npt.NDArray[np.intp]) -> U64:
    """DES-encrypt 64-bit ``blocks``; block i under the key ``round_keys[:, key_index[i]]``."""
    k1, k2 = _cook(round_keys)
    index = np.asarray(key_index, dtype=np.intp)
    left, right = _split(blocks)
    left, right = _rounds(left, right, k1[:, index], k2[:, index])
    return _join(left, right)
