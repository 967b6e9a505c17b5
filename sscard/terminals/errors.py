"""Typed errors of the terminal layer (reader, PC/SC service, transport).

Codes follow the unified reader interface table (reference
§C4.5): -2 no card, -3 card not powered, -4 no response, -5 library missing,
-11 reader connection error, -12 not connected, -13 unsupported command.
Card status words are *not* here: they are ``sscard.apdu.errors``.
"""

from __future__ import annotations

from sscard.errors import DependencyMissing, ExitStatus, SscardError

__all__ = [
    "CardRemoved",
    "CardReset",
    "CommandOutcomeUnknown",
    "DependencyMissing",
    "GetResponseLoop",
    "NoCard",
    "NoReader",
    "NotConnected",
    "PcscError",
    "PcscUnavailable",
    "ReaderAmbiguous",
    "ReaderBusy",
    "ReaderGone",
    "ReplayMismatch",
    "TerminalError",
    "TerminalTimeout",
    "TraceFormatError",
]


class TerminalError(SscardError):
    """Anything between the application and the card went wrong."""

    exit_status = ExitStatus.READER
    code = -11
    message_en = "reader error"
    message_zh = "读卡器错误"


class PcscUnavailable(TerminalError):
    """pcscd is not running or not reachable (SCARD_E_NO_SERVICE / SERVICE_STOPPED)."""

    code = -11
    message_en = (
        "the PC/SC service (pcscd) is not running: start it with `pcscd` as root "
        "(or `pcscd --foreground` in a container); `sscard doctor` checks the setup"
    )
    message_zh = (
        "PC/SC 服务 (pcscd) 未运行：请以 root 运行 `pcscd` 启动它；`sscard doctor` 可检查环境"
    )


class PcscError(TerminalError):
    """A PC/SC call failed with a code we have no better type for."""

    def __init__(self, call: str, hresult: int) -> None:
        self.hresult = hresult & 0xFFFFFFFF
        super().__init__(
            f"{call} failed: PC/SC error 0x{self.hresult:08X}",
            f"{call} 失败：PC/SC 错误 0x{self.hresult:08X}",
        )


class NoReader(TerminalError):
    """No (matching) reader is connected."""

    code = -11
    message_en = "no smart-card reader found"
    message_zh = "未找到读卡器"


class ReaderAmbiguous(TerminalError):
    """Several readers match and none was chosen."""

    code = -11
    message_en = "several readers match: choose one with -r/--reader or SSCARD_READER"
    message_zh = "匹配到多个读卡器：请用 -r/--reader 或 SSCARD_READER 指定"


class ReaderGone(TerminalError):
    """The reader disappeared (unplugged, driver stopped)."""

    code = -11
    message_en = "the reader is no longer available"
    message_zh = "读卡器已不可用"


class ReaderBusy(TerminalError):
    """Another application holds the card exclusively (SCARD_E_SHARING_VIOLATION)."""

    code = -11
    message_en = "the card is in exclusive use by another application"
    message_zh = "卡片正被其他程序独占使用"


class NoCard(TerminalError):
    """No card in the reader."""

    code = -2
    message_en = "no card in the reader"
    message_zh = "读卡器中无卡"


class CardRemoved(TerminalError):
    """The card was pulled out (or reset by someone else) during the session."""

    code = -2
    message_en = "the card was removed"
    message_zh = "卡片已被移除"


class CardReset(CardRemoved):
    """Another application reset the card (SCARD_W_RESET_CARD): state is lost, reconnect."""

    message_en = "the card was reset by another application: reconnect"
    message_zh = "卡片已被其他程序复位：请重新连接"


class NotConnected(TerminalError):
    """Transmit before connect (or after disconnect)."""

    code = -12
    message_en = "not connected to a card"
    message_zh = "未连接卡片"


class TerminalTimeout(TerminalError):
    """A bounded wait ran out (card insertion, PC/SC call, response)."""

    code = -4
    message_en = "timed out waiting for the card or reader"
    message_zh = "等待卡片或读卡器超时"


class GetResponseLoop(TerminalError):
    """The card kept answering 61xx beyond the GET RESPONSE bound (OpenSC #1731)."""

    code = -4
    message_en = "the card never finished sending its response (61xx loop)"
    message_zh = "卡片响应未结束（61xx 循环）"


class CommandOutcomeUnknown(TerminalError):
    """A command with side effects drew ``6Cxx`` and was deliberately not sent again.

    The card may or may not have executed it (a card OS that commits before it checks
    Le answers 6Cxx after the commit): the caller must find out from the card, never
    by repeating the command (the debit goes to 805A recovery, a load to a balance
    check). Which commands may be repeated: :mod:`sscard.apdu.repeat`.
    """

    exit_status = ExitStatus.UNKNOWN

    code = -4
    message_en = "a command with side effects drew 6Cxx and was not sent again: outcome unknown"
    message_zh = "卡片对有副作用的命令要求不同Le：未重发，结果未知"

    def __init__(self, command: str = "", sw: int = 0) -> None:
        self.command, self.sw = command, sw
        if command:
            super().__init__(
                f"{command}: the card answered {sw:04X}; not sent again (side effects):"
                " outcome unknown",
                f"{command}：卡片返回{sw:04X}；有副作用的命令不重发，结果未知",
            )
        else:
            super().__init__()


class ReplayMismatch(TerminalError):
    """A replayed session sent a command that differs from the saved trace."""

    code = -13
    message_en = "the command differs from the recorded trace"
    message_zh = "命令与记录的跟踪不一致"


class TraceFormatError(TerminalError):
    """A trace file is not the JSON-lines format the tracer writes."""

    exit_status = ExitStatus.USAGE
    code = -14
    message_en = "not a valid sscard trace file"
    message_zh = "不是有效的 sscard 跟踪文件"


class TraceWriteError(TerminalError):
    """The ``--trace`` file cannot be opened for writing (missing directory, permissions)."""

    exit_status = ExitStatus.USAGE
    code = -14
    message_en = "cannot write the trace file"
    message_zh = "无法写入跟踪文件"
