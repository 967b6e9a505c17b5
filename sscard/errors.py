"""The root of every error sscard raises.

Every error carries one English and one Chinese line, and the return code of
the unified reader interface (iReadCardBas table, reference
§C4.5) where one applies, so a CLI prints one bilingual line and never a
traceback, and hospital software gets the code it already understands.

Messages never contain keys, PINs or personal data: callers pass only what is
safe to show (counts, status words, file names).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The exit status of every ``sscard`` command (one table, README and ``--help``).

    A script at a gate or a front desk branches on these: 0 the job was done,
    1 a card or a policy said no (a refused tap, a wrong PIN, a blocked card),
    2 the command line or a file it names is wrong (click's own usage errors
    are 2 too), 3 the reader or the card could not be talked to, 4 a back end
    (the insurance platform, a load host) could not be reached and nothing
    happened, 5 the outcome is unknown (something may have been charged or
    settled: run the recovery or reconciliation the message names), 6 the
    local system refused (disk full, read-only directory, locked database).
    """

    OK = 0
    REFUSED = 1
    USAGE = 2
    READER = 3
    BACKEND = 4
    UNKNOWN = 5
    SYSTEM = 6


EXIT_STATUS_HELP = """Exit status / 退出码:
  0  done, accepted / 成功
  1  refused by the card or a policy (refused tap, wrong PIN, blocked card) / 被卡片或策略拒绝
  2  usage: bad option, argument or file (configuration, card image) / 用法或文件错误
  3  reader or card I/O failed (no reader, card removed) / 读卡器或卡片通信失败
  4  back end unreachable, nothing sent / 后台不可达，未发送
  5  outcome unknown or books differ: reconcile or recover / 结果未知或对账不平
  6  local system failure (disk, database) / 本地系统错误
"""


class SscardError(Exception):
    """Base class: one bilingual line, an optional unified-interface code."""

    #: Unified reader interface return code (reference §C4.5); -999 = unknown.
    code: int = -999
    #: What a CLI exits with when this error ends a command (see ExitStatus).
    exit_status: ExitStatus = ExitStatus.REFUSED
    message_en: str = "sscard error"
    message_zh: str = "sscard 错误"

    def __init__(
        self,
        message_en: str | None = None,
        message_zh: str | None = None,
        *,
        code: int | None = None,
    ) -> None:
        if message_en is not None:
            self.message_en = message_en
        if message_zh is not None:
            self.message_zh = message_zh
        if code is not None:
            self.code = code
        super().__init__(self.message_en)

    def bilingual(self) -> str:
        """The one line a CLI prints: ``English / 中文``."""
        return f"{self.message_en} / {self.message_zh}"

    def __str__(self) -> str:
        return self.bilingual()


class ConfigError(SscardError):
    """A configuration file or option is missing or malformed."""

    code = -14
    exit_status = ExitStatus.USAGE
    message_en = "bad configuration"
    message_zh = "配置错误"


class DependencyMissing(SscardError):
    """An optional native dependency (pyscard, a QR decoder) is not installed."""

    code = -5
    exit_status = ExitStatus.SYSTEM
    message_en = "a required library is not installed"
    message_zh = "缺少所需的库"
