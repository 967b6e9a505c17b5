"""Compatibility with the unified reader interface hospital software already calls.

``iReadCardBas`` (reference §C4.2), ``iReadCardBas_HSM_Step1/Step2`` (§C3.6, §C4.3)
and the return-code table (§C4.5), as Python functions that return exactly the DLL's
``(code, pOutInfo)``: code 0 and the ``|``-separated string (trailing ``|``) on
success; the negative code and one bilingual line on failure. They never raise.

The code of a failure is :func:`return_code`: every sscard error carries its
unified code (``SscardError.code``: card status words −SW, PIN −51/−52, terminal −2
/ −4 / −11 / −12, PSAM −2201…−2203, SSSE −1 / −21 / −25 / −35 / −36 / −2204); any
other exception is −999. :data:`RETURN_CODES` is the table with its texts.

The DLL hands back GBK bytes; :func:`encode_gbk` does that for callers that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from sscard.applets.keyprovider import KeyProvider
from sscard.applets.ssse import CardRead, KeysRequired, SsseReader
from sscard.cards.privacy import mask_card_id, mask_card_number, mask_name, mask_ssn
from sscard.errors import SscardError
from sscard.terminals.connection import Connection

__all__ = [
    "RETURN_CODES",
    "describe",
    "encode_gbk",
    "format_card_bas",
    "hsm_step1",
    "hsm_step2",
    "read_card_bas",
    "return_code",
]

#: The return codes of reference §C4.5 (plus −(SW as decimal) for card status words).
RETURN_CODES: Mapping[int, tuple[str, str]] = MappingProxyType({
    0: ("OK", "成功"),
    -1: ("wrong card type", "卡类型不对"),
    -2: ("no card", "无卡"),
    -3: ("card present, not powered", "有卡未上电"),
    -4: ("no response from card", "卡无应答"),
    -5: ("library load error", "加载动态库错误"),
    -11: ("reader connection error", "读卡器连接错误"),
    -12: ("not connected", "未建立连接"),
    -13: ("unsupported command", "不支持该命令"),
    -14: ("bad parameter", "命令参数错误"),
    -15: ("checksum error", "信息校验和出错"),
    -20: ("card identification code format error", "卡识别码格式错"),
    -21: ("internal authentication failed (illegal card)", "内部认证失败（非法卡）"),
    -22: ("input data does not match the card", "传入数据与卡内不符"),
    -23: ("illegal input", "传入数据不合法"),
    -24: ("PSAM key level insufficient", "PSAM卡密钥级别不够"),
    -25: ("internal authentication differs from the HSM", "内部认证与加密机不一致"),
    -31: ("PIN entry cancelled", "用户取消密码输入"),
    -32: ("PIN entry timed out", "输入密码超时"),
    -33: ("PIN length error", "输入密码长度错"),
    -34: ("PINs entered do not match", "两次输入密码不一致"),
    -35: ("initial PIN cannot transact", "初始密码不能交易"),
    -36: ("cannot change back to the initial PIN", "不能修改为初始密码"),
    -41: ("illegal characters", "输入的数据中有非法字符"),
    -42: ("bad length", "输入的数据长度错误"),
    -51: ("PIN wrong", "密码错误"),
    -52: ("PIN locked", "密码已锁定"),
    -2201: ("no PSAM", "无PSAM卡"),
    -2202: ("PSAM has no SSF33/SM4 algorithm", "PSAM卡算法不支持SSF33或SM4"),
    -2203: ("PSAM has no RKSSSE key", "PSAM卡无RKSSSE密钥"),
    -2204: ("HSM not needed", "无需加密机"),
    -999: ("unknown error", "未知错误"),
})  # fmt: skip


def return_code(exc: BaseException) -> int:
    """The unified code of an exception: ``SscardError.code``, else −999."""
    if isinstance(exc, SscardError):
        return int(exc.code)
    return -999


def describe(code: int) -> tuple[str, str]:
    """English and Chinese text of a code; −(SW) codes are described by their SW."""
    if code in RETURN_CODES:
        return RETURN_CODES[code]
    if -0xFFFF <= code <= -0x6000:
        from sscard.apdu.errors import sw_text

        en, zh = sw_text(-code)
        return f"card status {-code:04X}: {en}", f"卡片状态字{-code:04X}：{zh}"
    return RETURN_CODES[-999]


def encode_gbk(out: str) -> bytes:
    """``pOutInfo`` as the DLL returns it: GBK (unencodable characters become ``?``)."""
    return out.encode("gbk", errors="replace")


def format_card_bas(read: CardRead, *, device_number: str = "", redact: bool = False) -> str:
    """The 11 iReadCardBas fields of §C4.2, ``|``-separated, trailing ``|``.

    region | SSN | card number (first 9) | card ID (32 hex) | name + extension | ATR
    historical bytes | spec version | issue date | expiry date | terminal number |
    device number |. ``redact`` masks the SSN, the card number, the card
    identification code and the name (display, logs: the one masking policy of
    sscard.cards.privacy); hospital software that needs the DLL's exact string calls
    with ``redact=False`` (the CLI's ``--no-redact``).
    """
    if read.holder is None:
        raise KeysRequired()
    issuer, holder = read.issuer, read.holder
    ssn, name = holder.ssn, holder.full_name
    number, card_id = issuer.card_number[:9], issuer.card_id_hex
    if redact:
        ssn, name = mask_ssn(ssn), mask_name(name)
        number, card_id = mask_card_number(number), mask_card_id(card_id)
    fields = (
        issuer.region_code,
        ssn,
        number,
        card_id,
        name,
        read.atr_historical_hex,
        issuer.spec_version,
        issuer.issue_date.strftime("%Y%m%d"),
        issuer.expiry_date.strftime("%Y%m%d"),
        read.terminal_number,
        device_number,
    )
    return "|".join(fields) + "|"


def _call(fn: Callable[[], str]) -> tuple[int, str]:
    try:
        return 0, fn()
    except Exception as exc:  # the DLL contract: a code, never an exception
        code = return_code(exc)
        text = exc.bilingual() if isinstance(exc, SscardError) else " / ".join(describe(code))
        return code, text


def read_card_bas(
    conn: Connection,
    keys: KeyProvider | None = None,
    *,
    terminal_id: str | None = None,
    device_number: str = "",
    redact: bool = False,
) -> tuple[int, str]:
    """``iReadCardBas``: read, authenticate, format; ``(0, out)`` or ``(code, message)``.

    Like the DLL it needs card keys (internal authentication on every card, RKSSSE on
    3.0 cards): without ``keys`` the answer is −2201.
    """

    def run() -> str:
        reader = SsseReader(conn, keys, terminal_id=terminal_id)
        read = reader.read()
        if read.skipped:
            raise KeysRequired()
        return format_card_bas(read, device_number=device_number, redact=redact)

    return _call(run)


def hsm_step1(reader: SsseReader) -> tuple[int, str]:
    """``iReadCardBas_HSM_Step1``: ``region|ATR|alg|cardId|intP|intS|extP|extS|[term|]``."""
    return _call(lambda: reader.hsm_step1().to_string())


def hsm_step2(
    reader: SsseReader, p_key: str, *, device_number: str = "", redact: bool = False
) -> tuple[int, str]:
    """``iReadCardBas_HSM_Step2(pKey)``: the iReadCardBas string after the HSM's answer."""
    return _call(
        lambda: format_card_bas(reader.hsm_step2(p_key), device_number=device_number, redact=redact)
    )
