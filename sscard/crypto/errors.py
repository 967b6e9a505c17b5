"""Typed, bilingual errors of :mod:`sscard.crypto`.

Every error is a :class:`~sscard.errors.SscardError` (one English and one
Chinese line) and also a :class:`ValueError`, so generic callers that only
know "bad input" still catch it. Messages name lengths and algorithms, never
key, PIN or data bytes (house rule: no secrets in messages).
"""

from __future__ import annotations

from sscard.errors import SscardError


class CryptoError(SscardError, ValueError):
    """Base class: bad input to a cryptographic function (code −14, bad parameter)."""

    code = -14
    message_en = "cryptographic input error"
    message_zh = "密码运算输入错误"


class KeyLengthError(CryptoError):
    """A key has a length the algorithm does not accept."""

    message_en = "key has the wrong length"
    message_zh = "密钥长度错误"


class DataLengthError(CryptoError):
    """A data field (block, challenge, factor, counter) has the wrong size or range."""

    message_en = "data has the wrong length"
    message_zh = "数据长度错误"


class PaddingError(CryptoError):
    """ISO/IEC 9797-1 method-2 padding is missing or malformed."""

    message_en = "bad ISO 9797-1 padding"
    message_zh = "ISO 9797-1 填充错误"


class UnsupportedAlgorithm(CryptoError):
    """An algorithm identifier this SDK does not implement (e.g. SSF33, purse ID ≠ 00/04)."""

    message_en = "unsupported algorithm"
    message_zh = "不支持的算法"


class Sm2KeyError(CryptoError):
    """An SM2 private or public key is malformed (length, range, not on the curve)."""

    message_en = "malformed SM2 key"
    message_zh = "SM2 密钥格式错误"
