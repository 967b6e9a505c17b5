"""Status words: one table, typed errors, English and Chinese text.

The table covers ISO 7816-4 plus the PBOC and social-security words of the
social security card specification and JR/T 0025 (docs/reference.md §C, §P).
Every error carries its status word and the unified-interface code: -(SW as
decimal), as the reader interface does, except the PIN codes -51/-52.

A simulator raises these errors and answers ``err.sw``; a terminal gets them
back from ``Response.check()``. One table serves both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from sscard.apdu.catalog import PIN_INS, Ins
from sscard.errors import ExitStatus, SscardError


class ApduFormatError(SscardError):
    """Bytes that are not a well-formed command or response APDU."""

    exit_status = ExitStatus.USAGE
    code = -13
    message_en = "malformed APDU"
    message_zh = "APDU 格式错误"

    def __init__(self, what: str, what_zh: str | None = None) -> None:
        super().__init__(f"malformed APDU: {what}", f"APDU 格式错误：{what_zh or what}")


class TlvError(SscardError):
    """Bytes that are not well-formed TLV."""

    code = -15
    message_en = "malformed TLV"
    message_zh = "TLV 格式错误"

    def __init__(self, what: str, what_zh: str | None = None) -> None:
        super().__init__(f"malformed TLV: {what}", f"TLV 格式错误：{what_zh or what}")


class CardError(SscardError):
    """A card answered with a status word other than 9000."""

    sw: int = 0x6F00
    message_en = "card error"
    message_zh = "卡片错误"

    def __init__(self, sw: int | None = None) -> None:
        if sw is not None:
            self.sw = sw
        en, zh = sw_text(self.sw)
        super().__init__(f"{self.sw:04X} {en}", f"{self.sw:04X} {zh}", code=self._code())

    def _code(self) -> int:
        return -self.sw


# --- the typed errors -------------------------------------------------------


class MoreData(CardError):
    """61xx: T=0 says xx bytes wait for GET RESPONSE (handled by Connection)."""

    sw = 0x6100

    @property
    def available(self) -> int:
        return (self.sw & 0xFF) or 256


class WrongLe(CardError):
    """6Cxx: wrong Le, resend with Le = xx (handled by Connection)."""

    sw = 0x6C00

    @property
    def correct_le(self) -> int:
        return (self.sw & 0xFF) or 256


class VerificationFailed(CardError):
    """63Cx: a verification failed; x tries are left."""

    sw = 0x63C0

    def __init__(self, tries_left: int | None = None, sw: int | None = None) -> None:
        if sw is None:
            sw = 0x63C0 | ((tries_left or 0) & 0x0F)
        super().__init__(sw)

    @property
    def tries_left(self) -> int:
        return self.sw & 0x0F


class PinIncorrect(VerificationFailed):
    """63Cx on VERIFY / CHANGE PIN: wrong PIN (unified interface -51)."""

    def _code(self) -> int:
        return -51

    def __init__(self, tries_left: int | None = None, sw: int | None = None) -> None:
        super().__init__(tries_left, sw)
        n = self.tries_left
        self.message_en = f"PIN wrong, {n} {'try' if n == 1 else 'tries'} left"
        self.message_zh = f"密码错误，还可尝试{n}次"
        self.args = (self.message_en,)


class AuthenticationFailed(VerificationFailed):
    """63Cx on EXTERNAL AUTHENTICATE: the terminal's cryptogram was wrong."""

    def __init__(self, tries_left: int | None = None, sw: int | None = None) -> None:
        super().__init__(tries_left, sw)
        n = self.tries_left
        self.message_en = f"external authentication failed, {n} {'try' if n == 1 else 'tries'} left"
        self.message_zh = f"外部认证失败，还可尝试{n}次"
        self.args = (self.message_en,)


class AuthMethodBlocked(CardError):
    """6983: the key or authentication method is blocked."""

    sw = 0x6983


class PinBlocked(AuthMethodBlocked):
    """6983 on VERIFY / CHANGE PIN: the PIN is blocked (unified interface -52)."""

    def _code(self) -> int:
        return -52

    def __init__(self, sw: int | None = None) -> None:
        super().__init__(sw)
        self.message_en = (
            "PIN locked, no tries left (SW 6983): the holder can have it reset at a card "
            "service point of the issuing place, or call 12333"
        )
        self.message_zh = (
            "密码已锁定，无剩余尝试次数（状态字 6983）：请持卡人到发卡地社保卡服务网点重置密码，"
            "或拨打12333"
        )
        self.args = (self.message_en,)


class CardWarning(CardError):
    """62xx: the command completed with a warning (state unchanged, data may be corrupt)."""

    sw = 0x6200


class ExecutionError(CardError):
    """64xx / 65xx: execution error (state unchanged, or memory failure)."""

    sw = 0x6400


class SecureMessagingNotSupported(CardError):
    """6882: secure messaging not supported."""

    sw = 0x6882


class InvalidState(CardError):
    """6901: command not allowed in the current state."""

    sw = 0x6901


class WrongLength(CardError):
    """6700: wrong length (Lc or Le)."""

    sw = 0x6700


class FileStructureIncompatible(CardError):
    """6981: command incompatible with the file structure."""

    sw = 0x6981


class SecurityNotSatisfied(CardError):
    """6982: security status not satisfied (PIN or authentication missing)."""

    sw = 0x6982


class ReferenceDataInvalid(CardError):
    """6984: reference data invalid (e.g. no or used challenge)."""

    sw = 0x6984


class ConditionsNotSatisfied(CardError):
    """6985: conditions of use not satisfied."""

    sw = 0x6985


class SmDataInvalid(CardError):
    """6988: secure-messaging data objects incorrect (bad MAC)."""

    sw = 0x6988


class WrongData(CardError):
    """6A80: incorrect data field."""

    sw = 0x6A80


class FunctionNotSupported(CardError):
    """6A81: function not supported, or card/application locked."""

    sw = 0x6A81


class FileNotFound(CardError):
    """6A82: file or application not found."""

    sw = 0x6A82


class RecordNotFound(CardError):
    """6A83: record not found."""

    sw = 0x6A83


class NotEnoughMemory(CardError):
    """6A84: not enough memory space in the file."""

    sw = 0x6A84


class WrongParameters(CardError):
    """6A86 / 6B00: incorrect P1 or P2."""

    sw = 0x6A86


class KeyNotFound(CardError):
    """6A88: referenced key or data not found."""

    sw = 0x6A88


class InsNotSupported(CardError):
    """6D00: instruction not supported."""

    sw = 0x6D00


class ClaNotSupported(CardError):
    """6E00: class not supported."""

    sw = 0x6E00


class NoPreciseDiagnosis(CardError):
    """6F00: technical problem, no precise diagnosis."""

    sw = 0x6F00


class MacInvalid(CardError):
    """9302: MAC invalid (PBOC)."""

    sw = 0x9302


class ApplicationBlocked(CardError):
    """9303: application permanently locked."""

    sw = 0x9303


class InsufficientBalance(CardError):
    """9401: purse balance insufficient."""

    sw = 0x9401


class KeyIndexNotSupported(CardError):
    """9403: key index not supported."""

    sw = 0x9403


class MacUnavailable(CardError):
    """9406: requested MAC/TAC unavailable."""

    sw = 0x9406


class UnknownStatus(CardError):
    """A status word not in the table."""


# --- the table --------------------------------------------------------------


@dataclass(frozen=True)
class StatusWord:
    sw: int
    mask: int
    en: str
    zh: str
    error: type[CardError] | None


def _sw(sw: int, en: str, zh: str, error: type[CardError] | None, mask: int = 0xFFFF) -> StatusWord:
    return StatusWord(sw, mask, en, zh, error)


#: Exact words first, then the families with a variable low byte.
STATUS_WORDS: tuple[StatusWord, ...] = (
    _sw(0x9000, "OK", "成功", None),
    _sw(0x6200, "warning: state unchanged", "警告：状态未改变", CardWarning),
    _sw(0x6281, "warning: returned data may be corrupted", "警告：返回数据可能有误", CardWarning),
    _sw(0x6283, "warning: selected file invalidated", "警告：所选文件已失效", CardWarning),
    _sw(0x6400, "execution error, state unchanged", "执行出错，状态未改变", ExecutionError),
    _sw(0x6581, "memory failure", "存储器故障", ExecutionError),
    _sw(0x6700, "wrong length", "长度错误", WrongLength),
    _sw(0x6882, "secure messaging not supported", "不支持安全报文", SecureMessagingNotSupported),
    _sw(0x6901, "invalid state", "状态无效", InvalidState),
    _sw(0x6981, "wrong file structure", "文件结构不相容", FileStructureIncompatible),
    _sw(0x6982, "security status not satisfied", "安全状态不满足", SecurityNotSatisfied),
    _sw(0x6983, "key or authentication method locked", "密钥或认证方法已锁定", AuthMethodBlocked),
    _sw(0x6984, "invalid random or reference data", "随机数或引用数据无效", ReferenceDataInvalid),
    _sw(0x6985, "conditions of use not satisfied", "使用条件不满足", ConditionsNotSatisfied),
    _sw(0x6986, "command not allowed (no current EF)", "不允许的命令（无当前文件）", InvalidState),
    _sw(0x6988, "secure messaging data or MAC wrong", "安全报文数据或MAC错误", SmDataInvalid),
    _sw(0x6A80, "wrong data", "数据域参数错误", WrongData),
    _sw(
        0x6A81,
        "function not supported or card locked",
        "功能不支持或卡已锁定",
        FunctionNotSupported,
    ),
    _sw(0x6A82, "file not found", "文件未找到", FileNotFound),
    _sw(0x6A83, "record not found", "记录未找到", RecordNotFound),
    _sw(0x6A84, "not enough memory in file", "文件存储空间不足", NotEnoughMemory),
    _sw(0x6A86, "wrong parameters P1-P2", "参数P1、P2错误", WrongParameters),
    _sw(0x6A88, "key or referenced data not found", "密钥或引用数据未找到", KeyNotFound),
    _sw(0x6B00, "wrong parameters P1-P2", "参数P1、P2错误", WrongParameters),
    _sw(0x6D00, "instruction not supported", "指令不支持", InsNotSupported),
    _sw(0x6E00, "class not supported", "CLA不支持", ClaNotSupported),
    _sw(0x6F00, "no precise diagnosis", "无精确诊断", NoPreciseDiagnosis),
    _sw(0x9302, "MAC invalid", "MAC无效", MacInvalid),
    _sw(0x9303, "application permanently locked", "应用已永久锁定", ApplicationBlocked),
    _sw(0x9401, "insufficient balance", "余额不足", InsufficientBalance),
    _sw(0x9403, "key index not supported", "密钥索引不支持", KeyIndexNotSupported),
    _sw(0x9406, "MAC or TAC unavailable", "所需MAC（或TAC）不可用", MacUnavailable),
    _sw(
        0x6100,
        "more data available (GET RESPONSE)",
        "还有数据可取（GET RESPONSE）",
        MoreData,
        0xFF00,
    ),
    _sw(
        0x6C00,
        "wrong Le, resend with the right length",
        "Le错误，请以正确长度重发",
        WrongLe,
        0xFF00,
    ),
    _sw(
        0x63C0,
        "verification failed, tries left in SW2",
        "校验失败，剩余次数见SW2",
        VerificationFailed,
        0xFFF0,
    ),
)

_EXACT = {s.sw: s for s in STATUS_WORDS if s.mask == 0xFFFF}
_FAMILIES = [s for s in STATUS_WORDS if s.mask != 0xFFFF]


def lookup(sw: int) -> StatusWord | None:
    """The table entry of ``sw``, or None for a word the table does not know."""
    entry = _EXACT.get(sw)
    if entry is not None:
        return entry
    for fam in _FAMILIES:
        if sw & fam.mask == fam.sw:
            return fam
    return None


def sw_text(sw: int) -> tuple[str, str]:
    """English and Chinese text of a status word."""
    entry = lookup(sw)
    if entry is None:
        return "unknown status word", "未知状态字"
    if entry.mask == 0xFFF0:
        n = sw & 0x0F
        return (
            f"verification failed, {n} {'try' if n == 1 else 'tries'} left",
            f"校验失败，还可尝试{n}次",
        )
    if entry.mask == 0xFF00:
        return f"{entry.en} ({sw & 0xFF:02X})", f"{entry.zh}（{sw & 0xFF:02X}）"
    return entry.en, entry.zh


def error_for_sw(sw: int, ins: int | None = None) -> CardError:
    """The typed error for ``sw``; ``ins`` refines 63Cx and 6983 (PIN vs. key)."""
    if sw & 0xFFF0 == 0x63C0:
        if ins in PIN_INS:
            return PinIncorrect(sw=sw)
        if ins == Ins.EXTERNAL_AUTHENTICATE:
            return AuthenticationFailed(sw=sw)
        return VerificationFailed(sw=sw)
    if sw == 0x6983 and ins in PIN_INS:
        return PinBlocked()
    entry = lookup(sw)
    cls = entry.error if entry is not None and entry.error is not None else UnknownStatus
    return cls(sw)


__all__ = [name for name in dir() if not name.startswith("_")]
