"""Running the service: in the foreground for the CLI, or in a thread for tests and demos.

uvicorn with the sans-I/O ``websockets`` protocol (it supports the ASGI WebSocket
denial response the guard uses to refuse a handshake with 403 and a JSON body) and
the httptools HTTP parser (llhttp, Node.js's parser; a binary wheel in the ``serve``
extra): measured, it takes ~0.3 ms off every request against uvicorn's pure-Python
h11, a quarter of what the service adds to a card read (docs/reader-service.md).
Where httptools is not installed, h11 serves the same requests. The event loop is
asyncio's own, named here rather than left to uvicorn's "auto" (which takes uvloop
whenever it happens to be installed): uvloop measured 0.05 ms less per read with the
card in-process and no difference through pcscd, not worth a second loop to test.
``proxy_headers`` is off: nothing sits in front of a loopback service, and an
``X-Forwarded-For`` header must not change who the client is. Logging stays ours
(``log_config=None``): uvicorn's access log is off, so no request line with a query
string is ever written.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sscard.serve.app import ReaderService, build_app
from sscard.serve.errors import ServiceError


class ServiceStartError(ServiceError):
    code = -11
    http_status = 500
    message_en = "the reader service could not start (is the port in use?)"
    message_zh = "读卡服务无法启动（端口是否被占用？）"


class _DenialFilter(logging.Filter):
    """Drop uvicorn's "returned without completing handshake" after a WebSocket denial.

    The guard refuses a handshake with the ASGI denial response (403 + JSON); uvicorn's
    sans-I/O protocol sends it correctly but then logs this line as if the app had
    failed (it never marks a denial as a completed handshake).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


_FILTER = _DenialFilter()


def http_implementation() -> str:
    """``httptools`` when it is installed (faster), else uvicorn's pure-Python ``h11``."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def _uvicorn_config(service: ReaderService, port: int) -> Any:
    import uvicorn

    error_log = logging.getLogger("uvicorn.error")
    if _FILTER not in error_log.filters:
        error_log.addFilter(_FILTER)
    return uvicorn.Config(
        build_app(service),
        host=service.config.bind,
        port=port,
        http=http_implementation(),
        loop="asyncio",
        proxy_headers=False,
        ws="websockets-sansio",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        ws_max_size=service.config.max_body_bytes,
        timeout_graceful_shutdown=2,
    )


def serve_forever(service: ReaderService) -> None:
    """Run until SIGINT/SIGTERM (the CLI)."""
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(service, service.config.port))
    server.run()
    if not server.started:
        raise ServiceStartError()


class ServiceThread:
    """The service on an ephemeral (or given) loopback port in a background thread.

    ``with ServiceThread(service) as running: running.url`` — stopped on exit.
    """

    def __init__(self, service: ReaderService, port: int = 0) -> None:
        import uvicorn

        self.service = service
        self.server = uvicorn.Server(_uvicorn_config(service, port))
        self.thread = threading.Thread(target=self.server.run, name="sscard-serve", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServiceThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ServiceStartError()
            time.sleep(0.01)
        sockets = [s for srv in self.server.servers for s in srv.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10.0)

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
