"""The ASGI guard in front of every route: Host, Origin, CORS, pairing token, limits.

Why our own guard and not Starlette's middlewares (docs/reader-service.md, "Security"):
``CORSMiddleware`` still runs the handler for a refused origin (it only leaves out
``Access-Control-Allow-Origin``) and lets WebSockets through unchecked, and
``TrustedHostMiddleware`` ignores the port. A card read is a side effect a page must
not trigger at all, so here a refused request never reaches a handler:

* ``Host`` must be exactly ``127.0.0.1:PORT``, ``localhost:PORT`` or ``[::1]:PORT`` —
  a DNS-rebound name (``evil.test:PORT``) gets 403 / −9003; a second ``Host`` or
  ``Origin`` header is refused too (h11 rejects a second Host, httptools passes both
  on, and which one counts must not depend on the parser);
* ``Origin``, when present, must be on the allow-list, exact scheme, host and port
  (403 / −9001, no CORS headers, for HTTP, preflight and WebSocket alike); a request
  without ``Origin`` is a local program, allowed only if ``allow_local_clients`` and
  refused when ``Sec-Fetch-Site`` shows a browser sent it cross-site (an ``<img>``,
  a ``no-cors`` fetch);
* the preflight of an allowed origin is answered, including the Private Network
  Access header ``Access-Control-Allow-Private-Network: true`` when asked;
* API calls carry ``X-SSCard-Request: 1`` (a custom header: a cross-site page must
  preflight) and POST bodies are ``application/json`` of at most ``max_body_bytes``;
* a token bucket per client (origin) answers 429 / −9006 when exceeded;
* with pairing on, ``Authorization: Bearer`` must hold a token paired for this origin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from sscard.errors import SscardError
from sscard.serve.config import ServeConfig
from sscard.serve.errors import (
    BadRequest,
    BodyTooLarge,
    HostRefused,
    OriginRefused,
    RateLimited,
    ServiceError,
    TokenRefused,
    error_body,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths a page may call without the custom header or a token (no card, no personal data).
OPEN_PATHS = frozenset({"/v1/version", "/v1/openapi.json", "/v1/pair"})
ALLOW_HEADERS = "Content-Type, Authorization, X-SSCard-Request"
SECURITY_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class PairingCheck(Protocol):
    def check(self, token: str, origin: str | None) -> bool: ...


class GuardedService(Protocol):
    """What the guard needs of the service it fronts (:class:`sscard.serve.app.ReaderService`);
    a protocol, so the guard does not import the app that wraps itself in it."""

    @property
    def config(self) -> ServeConfig: ...

    @property
    def pairing(self) -> PairingCheck: ...

    @property
    def bucket(self) -> TokenBucket: ...

    def refused(self, scope: Any, origin: str | None, exc: SscardError) -> None: ...


@dataclass(frozen=True)
class Client:
    """Who is calling: the page origin (None for a local program) and what it may see."""

    origin: str | None
    full_data: bool
    token: str | None = None

    @property
    def key(self) -> str:
        return self.origin or "local"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``, per client key."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        level, last = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * self.rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return False
        self._buckets[key] = (level - 1.0, now)
        return True


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cors(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]


async def _json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
        *SECURITY_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """Pure ASGI middleware; see the module docstring for the rules and their order."""

    def __init__(self, app: ASGIApp, service: GuardedService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get("origin")
        allowed_origin: str | None = None
        try:
            self._check_single(scope)
            self._check_host(scope, headers)
            client = self._client(origin, headers)
            allowed_origin = client.origin
            if not self.service.bucket.take(client.key):
                raise RateLimited()
            if scope["type"] == "http":
                if scope["method"] == "OPTIONS":
                    await self._preflight(send, client, headers)
                    return
                self._check_http(scope, headers, client)
        except ServiceError as exc:
            self.service.refused(scope, origin, exc)
            await self._deny(scope, send, exc, allowed_origin)
            return
        scope["sscard.client"] = client
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._limited(receive, headers), self._decorated(send, client))

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def _check_single(scope: Scope) -> None:
        names = [k.lower() for k, _ in scope["headers"] if k.lower() in (b"host", b"origin")]
        if names.count(b"host") > 1:
            raise HostRefused()
        if names.count(b"origin") > 1:
            raise OriginRefused("several Origin headers", "请求含多个 Origin 头")

    @staticmethod
    def _check_host(scope: Scope, headers: dict[str, str]) -> None:
        server = scope.get("server") or ("", 0)
        port = server[1]
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        if headers.get("host", "").lower() not in allowed:
            raise HostRefused()

    def _client(self, origin: str | None, headers: dict[str, str]) -> Client:
        config = self.service.config
        if origin is not None:
            rule = config.origin(origin)
            if rule is None:
                raise OriginRefused()
            return Client(origin, rule.full_data)
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("none", "same-origin"):
            raise OriginRefused(
                "a browser request without Origin is refused", "拒绝无 Origin 的浏览器请求"
            )
        if not config.allow_local_clients:
            raise OriginRefused(
                "requests without an Origin (local programs) are not allowed",
                "不允许无 Origin 的请求（本机程序）",
            )
        return Client(None, config.local_full_data)

    def _check_http(self, scope: Scope, headers: dict[str, str], client: Client) -> None:
        path = scope["path"]
        length = headers.get("content-length")
        if length is not None and (
            not length.isdigit() or int(length) > self.service.config.max_body_bytes
        ):
            raise BodyTooLarge()
        if path in OPEN_PATHS and path != "/v1/pair":
            return
        if headers.get("x-sscard-request") != "1":
            raise OriginRefused(
                "the X-SSCard-Request: 1 header is required", "请求须带 X-SSCard-Request: 1 头"
            )
        if scope["method"] == "POST":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise BadRequest(
                    "the body must be application/json",
                    "请求体须为 application/json",
                    http_status=415,
                )
        if path == "/v1/pair" or not self.service.config.pairing:
            return
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not self.service.pairing.check(token, client.origin):
            raise TokenRefused()

    async def _preflight(self, send: Send, client: Client, headers: dict[str, str]) -> None:
        if client.origin is None:
            raise BadRequest("a preflight needs an Origin", "预检请求须带 Origin")
        extra = [
            *_cors(client.origin),
            (b"access-control-allow-methods", b"GET, POST"),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
        ]
        if headers.get("access-control-request-private-network", "").lower() == "true":
            extra.append((b"access-control-allow-private-network", b"true"))
        await send(
            {"type": "http.response.start", "status": 204, "headers": [*SECURITY_HEADERS, *extra]}
        )
        await send({"type": "http.response.body", "body": b""})

    # -- answers ------------------------------------------------------------------------

    async def _deny(self, scope: Scope, send: Send, exc: ServiceError, origin: str | None) -> None:
        extra = _cors(origin) if origin else []
        if isinstance(exc, RateLimited):
            extra.append((b"retry-after", b"1"))
        body = error_body(exc)
        if scope["type"] == "http":
            await _json(send, exc.http_status, body, extra)
            return
        # WebSocket: refuse the handshake with an HTTP answer where the server can
        # (ASGI "websocket.http.response"), else close before accept (= HTTP 403).
        if "websocket.http.response" in scope.get("extensions", {}):
            data = json.dumps(body, ensure_ascii=False).encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": exc.http_status,
                    "headers": [
                        (b"content-type", b"application/json; charset=utf-8"),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": data})
        else:
            await send({"type": "websocket.close", "code": 1008})

    def _limited(self, receive: Receive, headers: dict[str, str]) -> Receive:
        """Count body bytes as they arrive (a chunked body has no Content-Length)."""
        limit = self.service.config.max_body_bytes
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return wrapped

    @staticmethod
    def _decorated(send: Send, client: Client) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if client.origin:
                    headers.extend(_cors(client.origin))
                message["headers"] = headers
            await send(message)

        return wrapped
