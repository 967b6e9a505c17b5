"""Errors of the clearing job: each names the file or issuer at fault, never a key."""

from __future__ import annotations

from sscard.errors import ExitStatus, SscardError


class ClearingError(SscardError):
    """Base class of clearing errors."""

    exit_status = ExitStatus.SYSTEM
    message_en = "clearing failed"
    message_zh = "清分失败"


class ClearingInputError(ClearingError):
    """An upload file cannot be read (truncated, not Parquet) or has the wrong columns."""

    exit_status = ExitStatus.USAGE
    message_en = "bad clearing input"
    message_zh = "清分输入文件错误"


class IssuerKeysError(ClearingError):
    """The issuer key file is missing, malformed, or holds no usable TAC key."""

    exit_status = ExitStatus.USAGE
    message_en = "bad issuer key file"
    message_zh = "发卡机构密钥文件错误"


class UnknownIssuer(ClearingError):
    """Uploads hold cards of an issuer the key file does not know (no TAC key)."""

    exit_status = ExitStatus.USAGE
    message_en = "cards of an unknown issuer"
    message_zh = "存在未知发卡机构的卡片"


class WrongIssuerKeys(ClearingError):
    """Most TACs of an issuer fail: the key file holds other keys than the cards'."""

    exit_status = ExitStatus.USAGE
    message_en = "the issuer keys do not match the cards"
    message_zh = "发卡机构密钥与卡片不符"


class EngineUnavailable(ClearingError):
    """The chosen engine's library (duckdb, pyspark) or Java is missing."""

    exit_status = ExitStatus.SYSTEM
    message_en = "clearing engine not available"
    message_zh = "清分引擎不可用"
