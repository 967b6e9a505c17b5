"""Errors of the local reader service, and how every error becomes a JSON answer.

The body is the same for HTTP and WebSocket (docs/reader-service.md, "API v1"):
``{"code", "error", "message_en", "message_zh", "message", "retry"}``. ``code`` is the
unified-interface return code a HIS already branches on (reference §C4.5: 0, −1…−52,
−220x, −SW, −999); the service's own refusals use −9001…−9007. The HTTP status is
403 for a refused Host or Origin, 401 for a missing token, 409 for a busy reader, 429
for the rate limit, 413/415/400 for a request the service cannot parse, 404 for an
unknown path; a card or reader outcome (no card, wrong PIN) is 200 with its code, as
the DLL returns a code rather than failing the call.

Messages never carry PINs or personal data: they come from the typed errors, whose
texts are built from counts and status words only.
"""

from __future__ import annotations

import re
from typing import Any

from sscard.applets.unified import describe, return_code
from sscard.errors import ExitStatus, SscardError


class ServiceError(SscardError):
    """A request the service refuses before (or instead of) touching a card."""

    exit_status = ExitStatus.REFUSED
    http_status = 400
    retry = False


class OriginRefused(ServiceError):
    """The calling page's Origin is not on the allow-list (CORS, WebSocket, preflight)."""

    code = -9001
    http_status = 403
    message_en = "this page is not allowed to use the card reader service"
    message_zh = "此网页未获准使用读卡服务"


class TokenRefused(ServiceError):
    """Pairing is on and the request has no valid token for its origin."""

    code = -9002
    http_status = 401
    message_en = "not paired: enter the pairing code shown by the card reader service"
    message_zh = "未配对：请输入读卡服务显示的配对码"


class HostRefused(ServiceError):
    """The Host header is not the service's own loopback name (DNS rebinding)."""

    code = -9003
    http_status = 403
    message_en = "wrong Host: the service answers only 127.0.0.1, [::1] and localhost"
    message_zh = "Host 错误：服务只接受 127.0.0.1、[::1] 和 localhost"


class ReaderBusyError(ServiceError):
    """Another card operation on this reader did not finish within the wait bound."""

    code = -9004
    http_status = 409
    retry = True
    message_en = "the reader is busy with another request: try again"
    message_zh = "读卡器正忙于其他请求，请稍后重试"


class OperationTimeout(ServiceError):
    """The card operation did not finish in time (the reader stays locked until it does)."""

    code = -9005
    http_status = 504
    retry = True
    message_en = "the card did not answer in time"
    message_zh = "卡片操作超时"


class RateLimited(ServiceError):
    """Too many requests (or PIN tries) from this page in a short time."""

    code = -9006
    http_status = 429
    retry = True
    message_en = "too many requests: slow down"
    message_zh = "请求过于频繁，请稍后再试"


class BadRequest(ServiceError):
    """A request the service cannot use: not JSON, a wrong field, too large, no such path."""

    code = -14
    http_status = 400
    message_en = "bad request"
    message_zh = "请求错误"

    def __init__(
        self,
        message_en: str | None = None,
        message_zh: str | None = None,
        *,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message_en, message_zh, code=code)
        if http_status is not None:
            self.http_status = http_status


class BodyTooLarge(BadRequest):
    code = -9007
    http_status = 413
    message_en = "request body too large"
    message_zh = "请求内容过大"


#: Errors a page may retry as they are (the card or the reader may be ready next time).
_RETRY_CODES = frozenset({-2, -3, -4, -11, -9004, -9005, -9006})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(exc: BaseException) -> dict[str, Any]:
    """The JSON error object for any exception (an unexpected one is −999, no details)."""
    code = return_code(exc)
    if isinstance(exc, SscardError):
        en, zh, name = exc.message_en, exc.message_zh, _snake(type(exc).__name__)
    else:
        (en, zh), name = describe(-999), "internal_error"
    body: dict[str, Any] = {
        "code": code,
        "error": name,
        "message_en": en,
        "message_zh": zh,
        "message": f"{en} / {zh}",
        "retry": code in _RETRY_CODES,
    }
    tries = getattr(exc, "tries_left", None)
    if isinstance(tries, int):
        body["tries_left"] = tries
    return body


def http_status(exc: BaseException) -> int:
    """The HTTP status that carries ``exc``: a card outcome is 200 (the code says it)."""
    if isinstance(exc, ServiceError):
        return exc.http_status
    if isinstance(exc, SscardError):
        return 200
    return 500
