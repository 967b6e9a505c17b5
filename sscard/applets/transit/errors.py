"""Typed, bilingual errors of the transit applet (the terminal side of the purse).

Card status words stay :mod:`sscard.apdu.errors`; these are the validator's own
conditions: no purse on the card, a PSAM that does not answer, a bad validator
configuration, an interrupted load.
"""

from __future__ import annotations

from sscard.errors import ConfigError, ExitStatus, SscardError


class TransitError(SscardError):
    """Base class of transit applet errors."""

    message_en = "transit purse error"
    message_zh = "交通钱包错误"


class NoPurse(TransitError):
    """SELECT of the T-Union EP answered 6A82: the card has no transport function."""

    code = -0x6A82
    message_en = "the card has no T-Union purse (transport function)"
    message_zh = "卡片没有交通联合电子钱包（交通功能）"


class PurseBlocked(TransitError):
    """SELECT answered 6A81: the purse application is blocked (profile APPLICATION BLOCK)."""

    code = -0x6A81
    message_en = "the purse application is blocked"
    message_zh = "电子钱包应用已锁定"


class PsamError(TransitError):
    """The PSAM is missing, does not answer, or answers an unexpected status word."""

    code = -11
    message_en = "PSAM error"
    message_zh = "PSAM卡错误"


class TransitConfigError(ConfigError):
    """A validator configuration or fare table is missing or malformed."""

    message_en = "bad validator configuration"
    message_zh = "验票机配置错误"
    #: The key at fault (``section.key``), so the loader can add file and line.
    where: str | None = None


class LoadInterrupted(TransitError):
    """CREDIT FOR LOAD got no answer: the load may or may not be on the card.

    Read the balance and the transaction log (EF 0018) before loading again.
    """

    exit_status = ExitStatus.UNKNOWN
    code = -4
    message_en = "load interrupted: check the balance before loading again"
    message_zh = "圈存中断：请先查询余额再重新圈存"


class LoadTacMismatch(TransitError):
    """The card's load TAC does not verify at the load host (profile "Load TAC input")."""

    code = -0x9302
    message_en = "load TAC from the card does not verify"
    message_zh = "圈存TAC校验失败"
