"""PBOC / T-Union electronic-purse keys, MACs and TACs.

Pure functions with named inputs; card simulator, PSAM simulator and terminal
all call these, so both sides of a transaction agree byte for byte.

* 3DES (algorithm ID ``00``): reference §P4.1-§P4.4, checked against the
  published LOAD and PURCHASE vectors of §P4.5.
* SM4 (algorithm ID ``04``): reference part P "sscard profile" (SM4 session key,
  SM4 MAC, SM4 TAC). These are project choices where no public spec exists.
"""

from __future__ import annotations

from enum import IntEnum

from sscard.crypto._common import SM4_PAD8, diversify_once, key16, need
from sscard.crypto.ciphers import BlockAlgorithm, BlockCipher, xor_bytes
from sscard.crypto.errors import DataLengthError, KeyLengthError, UnsupportedAlgorithm
from sscard.crypto.mac import pboc_mac

__all__ = [
    "Algorithm",
    "diversify",
    "diversify2",
    "load_mac1",
    "load_mac2",
    "load_session_key",
    "load_tac",
    "purchase_mac1",
    "purchase_mac2",
    "purchase_session_key",
    "purchase_tac",
]


class Algorithm(IntEnum):
    """Purse algorithm-ID byte (8050 response, 8070 input); reference part P profile."""

    TDES = 0x00
    SM4 = 0x04

    @classmethod
    def from_byte(cls, value: int) -> Algorithm:
        """Decode the byte; any other value is :class:`UnsupportedAlgorithm` (abort before 8070)."""
        try:
            return cls(value)
        except ValueError:
            raise UnsupportedAlgorithm(
                f"purse algorithm ID {value:#04x} is not supported (00 = 3DES, 04 = SM4)",
                f"不支持的钱包算法标识 {value:#04x}（00 = 3DES，04 = SM4）",
            ) from None


def _algorithm(algorithm: Algorithm | int) -> Algorithm:
    return algorithm if isinstance(algorithm, Algorithm) else Algorithm.from_byte(algorithm)


def _uint(name: str, value: int, size: int) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise DataLengthError(
            f"{name} does not fit in {size} unsigned bytes",
            f"{name} 超出 {size} 字节无符号整数范围",
        )
    return value.to_bytes(size)


def _family(algorithm: Algorithm) -> BlockAlgorithm:
    return BlockAlgorithm.SM4 if algorithm is Algorithm.SM4 else BlockAlgorithm.DES


def diversify(master_key: bytes, factor8: bytes, algorithm: Algorithm | int) -> bytes:
    """One level of key diversification (reference §P4.1); 16-byte result.

    3DES: ``3DES_MK(D) ‖ 3DES_MK(~D)``; SM4: ``SM4_MK(D ‖ ~D)``.
    """
    return diversify_once(master_key, factor8, _family(_algorithm(algorithm)))


def diversify2(
    master_key: bytes, level1_factor: bytes, level2_factor: bytes, algorithm: Algorithm | int
) -> bytes:
    """Two-level diversification ``Div(Div(MK, L1), L2)``.

    The profile uses issuer ID (EF0015[0..7]) as L1 and ASN right 8 B as L2
    (reference part P profile "PSAM diversification").
    """
    return diversify(diversify(master_key, level1_factor, algorithm), level2_factor, algorithm)


def _session_key(key: bytes, input8: bytes, algo: Algorithm) -> bytes:
    """3DES: 3DES_K(input8), 8 B (a single-DES key). SM4: SM4_K(input8 ‖ 80 00…), 16 B."""
    if algo is Algorithm.SM4:
        return BlockCipher(key, BlockAlgorithm.SM4).encrypt_block(input8 + SM4_PAD8)
    return BlockCipher(key, BlockAlgorithm.DES).encrypt_block(input8)


def purchase_session_key(
    dpk: bytes,
    *,
    card_random: bytes,
    offline_counter: int,
    terminal_seq: int,
    algorithm: Algorithm | int,
) -> bytes:
    """Purchase session key from random4 ‖ offline counter2 ‖ low 2 B of the terminal seq (§P4.2).

    ``offline_counter`` is the value the card returned in 8050, before it increments.
    """
    algo = _algorithm(algorithm)
    data = (
        need("card random", card_random, 4)
        + _uint("offline counter", offline_counter, 2)
        + _uint("terminal transaction sequence", terminal_seq, 4)[2:]
    )
    return _session_key(key16("DPK", dpk), data, algo)


def load_session_key(
    dlk: bytes, *, card_random: bytes, online_counter: int, algorithm: Algorithm | int
) -> bytes:
    """Load session key from random4 ‖ online counter2 ‖ ``8000`` (§P4.2)."""
    algo = _algorithm(algorithm)
    data = (
        need("card random", card_random, 4)
        + _uint("online counter", online_counter, 2)
        + b"\x80\x00"
    )
    return _session_key(key16("DLK", dlk), data, algo)


def _mac(key: bytes, data: bytes, algo: Algorithm) -> bytes:
    """Single-DES (8-B key) or SM4 (16-B key) CBC-MAC, ICV 0, pad 80…, leftmost 4 B."""
    if algo is Algorithm.SM4:
        return pboc_mac(BlockCipher(key16("SM4 session key", key), BlockAlgorithm.SM4), data)
    if len(key) != 8:
        raise KeyLengthError(
            f"3DES purse session key must be 8 bytes, got {len(key)}",
            f"3DES 钱包过程密钥须为 8 字节，实际 {len(key)} 字节",
        )
    return pboc_mac(BlockCipher(key, BlockAlgorithm.DES), data)


def _tac_key(dtk: bytes, algo: Algorithm) -> bytes:
    """3DES: DTK_left XOR DTK_right (single DES, §P4.4); SM4: DTK itself (profile)."""
    dtk = key16("DTK", dtk)
    return dtk if algo is Algorithm.SM4 else xor_bytes(dtk[:8], dtk[8:])


def purchase_mac1(
    sk: bytes,
    *,
    amount: int,
    txn_type: int,
    terminal_id: bytes,
    date_time: bytes,
    algorithm: Algorithm | int,
) -> bytes:
    """MAC1 over amount4 ‖ type1 ‖ termID6 ‖ date-time7 (BCD YYYYMMDDhhmmss), §P4.4."""
    data = (
        _uint("amount", amount, 4)
        + _uint("transaction type", txn_type, 1)
        + need("terminal ID", terminal_id, 6)
        + need("date-time", date_time, 7)
    )
    return _mac(sk, data, _algorithm(algorithm))


def purchase_mac2(sk: bytes, *, amount: int, algorithm: Algorithm | int) -> bytes:
    """MAC2 over amount4 (§P4.4)."""
    return _mac(sk, _uint("amount", amount, 4), _algorithm(algorithm))


def purchase_tac(
    dtk: bytes,
    *,
    amount: int,
    txn_type: int,
    terminal_id: bytes,
    terminal_seq: int,
    date_time: bytes,
    algorithm: Algorithm | int,
) -> bytes:
    """Purchase TAC over amount4 ‖ type1 ‖ termID6 ‖ terminal seq4 ‖ date-time7 (§P4.4)."""
    algo = _algorithm(algorithm)
    data = (
        _uint("amount", amount, 4)
        + _uint("transaction type", txn_type, 1)
        + need("terminal ID", terminal_id, 6)
        + _uint("terminal transaction sequence", terminal_seq, 4)
        + need("date-time", date_time, 7)
    )
    return _mac(_tac_key(dtk, algo), data, algo)


def load_mac1(
    sk: bytes,
    *,
    balance_before: int,
    amount: int,
    txn_type: int,
    terminal_id: bytes,
    algorithm: Algorithm | int,
) -> bytes:
    """Load MAC1 (card) over balance-before4 ‖ amount4 ‖ type1 ‖ termID6 (§P4.4)."""
    data = (
        _uint("balance", balance_before, 4)
        + _uint("amount", amount, 4)
        + _uint("transaction type", txn_type, 1)
        + need("terminal ID", terminal_id, 6)
    )
    return _mac(sk, data, _algorithm(algorithm))


def load_mac2(
    sk: bytes,
    *,
    amount: int,
    txn_type: int,
    terminal_id: bytes,
    date_time: bytes,
    algorithm: Algorithm | int,
) -> bytes:
    """Load MAC2 (host) over amount4 ‖ type1 ‖ termID6 ‖ date-time7 (§P4.4)."""
    data = (
        _uint("amount", amount, 4)
        + _uint("transaction type", txn_type, 1)
        + need("terminal ID", terminal_id, 6)
        + need("date-time", date_time, 7)
    )
    return _mac(sk, data, _algorithm(algorithm))


def load_tac(
    dtk: bytes,
    *,
    new_balance: int,
    online_counter: int,
    amount: int,
    txn_type: int,
    terminal_id: bytes,
    date_time: bytes,
    algorithm: Algorithm | int,
) -> bytes:
    """Load TAC (profile, recalled from JR/T 0025; §P4.4 and profile "Load TAC input").

    Input: new balance4 ‖ online counter (before +1)2 ‖ amount4 ‖ type1 ‖ termID6 ‖ date-time7.
    """
    algo = _algorithm(algorithm)
    data = (
        _uint("balance", new_balance, 4)
        + _uint("online counter", online_counter, 2)
        + _uint("amount", amount, 4)
        + _uint("transaction type", txn_type, 1)
        + need("terminal ID", terminal_id, 6)
        + need("date-time", date_time, 7)
    )
    return _mac(_tac_key(dtk, algo), data, algo)
