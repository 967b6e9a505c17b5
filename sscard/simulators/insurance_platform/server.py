"""HTTP front of the simulated platform, with injectable faults.

A stdlib ``ThreadingHTTPServer`` (loopback, port 0 = ephemeral by default)
that POSTs envelopes to :class:`Ledger`. Faults reproduce the field failures
of §M1.5 and §M6 (records on one side only after a
network flap):

``drop``      commit, then close the connection without a reply;
``lose``      close the connection without processing (request lost);
``delay``     sleep ``delay`` seconds before processing;
``http500``   answer HTTP 500 without processing.

Set them from tests with :meth:`InsurancePlatform.inject` or over HTTP:
``POST /admin/faults {"infno": "2207", "kind": "drop", "count": 1}``,
``DELETE /admin/faults``, with the header ``Authorization: Bearer TOKEN`` where
TOKEN is :attr:`InsurancePlatform.admin_token` (random per start, printed by
``sscard sim insurance serve``). Values are bounded (count 1-1000, delay 0-30 s).

The HTTP transport is hardened against hostile clients: a body over
``MAX_BODY`` (1 MB) is 413, a missing or malformed ``Content-Length`` 411/400,
JSON that cannot be parsed (including 100k-deep nesting) reaches the ledger as a
malformed envelope, and anything the ledger raises is a 500 with an ``infcode -1``
JSON body: the client always gets a reply and the worker lives on. Connections are
served by ``WORKERS`` threads from a queue of at most ``QUEUE`` accepted
connections; beyond that the server answers 503 at once instead of starting a
thread per connection. HTTP/1.1 keep-alive is served (a client that reuses its
connection saves a TCP set-up per request); a worker answers ``Connection: close``
while other connections wait for a worker, so kept-alive clients cannot starve them.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from sscard.clock import beijing_now
from sscard.errors import ConfigError
from sscard.simulators.insurance_platform.ledger import Ledger
from sscard.simulators.insurance_platform.policies import POLICIES, AreaPolicy
from sscard.simulators.insurance_platform.wire import loads
from sscard.simulators.profile import CardProfile

FAULT_KINDS = ("drop", "lose", "delay", "http500")
MAX_BODY = 1024 * 1024  # bytes; the largest real request (2204 with items) is far smaller
WORKERS = 16  # threads serving connections
QUEUE = 64  # accepted connections waiting for a worker; beyond: 503
MAX_FAULT_COUNT = 1000
MAX_FAULT_DELAY = 30.0  # seconds

log = logging.getLogger(__name__)


def _error_body(en: str, zh: str) -> bytes:
    """A reply envelope the client parses like the platform's own refusals."""
    return json.dumps(
        {"infcode": -1, "err_msg": f"{zh} / {en}", "output": {}}, ensure_ascii=False
    ).encode("utf-8")


@dataclass
class Fault:
    kind: str
    remaining: int
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5.0  # an idle keep-alive connection does not hold up stop() for long
    # A reply leaves in one send (status line, headers and body buffered, flushed by
    # handle_one_request) instead of two, and without waiting for Nagle: on a kept-alive
    # connection a second small segment would wait for the client's delayed ACK.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines may carry nothing secret, but tests want clean output."""

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.server.connections_waiting():
            # A kept-alive connection holds its worker: give it up while others wait.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, en: str, zh: str) -> None:
        """An HTTP error with an envelope body; the connection is closed (its framing
        may be lost, e.g. after an unread body)."""
        self.close_connection = True
        self._send(status, _error_body(en, zh))

    def _body(self) -> bytes | None:
        """The request body, or None after answering 400/411/413 (bad or huge length)."""
        text = self.headers.get("Content-Length")
        if text is None:
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "Content-Length required", "须提供 Content-Length")
                return None
            return b""
        if not text.strip().isdigit():
            self._refuse(400, "bad Content-Length", "Content-Length 无效")
            return None
        length = int(text)
        if length > MAX_BODY:
            self._refuse(413, f"body larger than {MAX_BODY} bytes", f"报文超过 {MAX_BODY} 字节")
            return None
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True

    def _authorised(self) -> bool:
        """``Authorization: Bearer <admin token>`` (constant-time compare), else 403."""
        given = self.headers.get("Authorization") or ""
        expected = f"Bearer {self.server.platform.admin_token}"
        if hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            return True
        self._refuse(403, "admin token required", "需要管理令牌")
        return False

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception:  # never a dead worker or a client without a reply
            log.exception("insurance platform: request failed")
            self._refuse(500, "internal error of the simulated platform", "模拟平台内部错误")

    def _post(self) -> None:
        platform = self.server.platform
        raw = self._body()
        if raw is None:
            return
        if self.path.startswith("/admin/faults"):
            if not self._authorised():
                return
            try:
                spec = json.loads(raw or b"{}")
                if not isinstance(spec, dict):
                    raise TypeError("a JSON object")
                platform.inject(
                    str(spec["infno"]),
                    str(spec["kind"]),
                    int(spec.get("count", 1)),
                    delay=float(spec.get("delay", 0.0)),
                )
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
                self._send(400, json.dumps({"error": str(exc)[:200]}).encode())
                return
            self._send(200, b'{"ok":true}')
            return
        try:
            envelope = loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            envelope = None
        infno = str(envelope.get("infno")) if isinstance(envelope, dict) else ""
        fault = platform.take_fault(infno)
        if fault is not None:
            if fault.kind == "lose":
                return self._drop()
            if fault.kind == "http500":
                return self._send(500, b"Internal Server Error", "text/plain")
            if fault.kind == "delay":
                time.sleep(fault.delay)
        reply = platform.ledger.respond(envelope)
        if fault is not None and fault.kind == "drop":
            return self._drop()
        self._send(200, reply)

    def do_DELETE(self) -> None:
        if self.path.startswith("/admin/faults"):
            if not self._authorised():
                return
            self.server.platform.clear_faults()
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, b"{}")

    def do_GET(self) -> None:
        if self.path.startswith("/admin/health"):
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, b"{}")


class _Server(HTTPServer):
    """A fixed pool of ``WORKERS`` threads fed by a bounded queue of connections.

    ``ThreadingHTTPServer`` starts one thread per connection without bound (measured:
    eight 50 MB bodies in parallel took 563 MB). Here the accept loop only queues;
    a full queue is answered 503 on the spot. ``server_close`` waits for the
    in-flight requests (e.g. a delayed one) before the ledger closes.
    """

    allow_reuse_address = True
    request_queue_size = 128
    platform: InsurancePlatform

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self._jobs: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(QUEUE)
        self._workers: list[threading.Thread] = []  # server_close runs if the bind fails
        super().__init__(address, handler)
        self._workers = [
            threading.Thread(target=self._work, name=f"insurance-http-{i}", daemon=True)
            for i in range(WORKERS)
        ]
        for worker in self._workers:
            worker.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            self._jobs.put_nowait((request, client_address))
        except queue.Full:
            self._busy(request)

    @staticmethod
    def _busy(request: socket.socket) -> None:
        body = _error_body("platform busy, try again", "平台繁忙，请重试")
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8"
            f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        )
        try:
            request.settimeout(1.0)
            request.sendall(head.encode("ascii") + body)
        except OSError:
            pass
        finally:
            request.close()

    def connections_waiting(self) -> bool:
        """Accepted connections are queued for a worker (see ``_Handler._send``)."""
        return not self._jobs.empty()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            request, client_address = job
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("insurance platform: connection from %s failed", client_address, exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._jobs.put(None)  # after the queued connections: they are served first
        for worker in self._workers:
            worker.join(timeout=10)


class InsurancePlatform:
    """The simulated platform: ledger + HTTP server + faults.

    ``with InsurancePlatform(tmp_path / "ledger.db") as p: ... p.url``.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = beijing_now,
        policies: dict[str, AreaPolicy] = POLICIES,
        require_sign_in: bool = True,
    ) -> None:
        self.ledger = Ledger(
            db_path, clock=clock, policies=policies, require_sign_in=require_sign_in
        )
        self._host, self._port = host, port
        self._faults: dict[str, list[Fault]] = {}
        self._fault_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Bearer token of ``/admin/faults`` (fresh per platform; printed by the CLI).
        self.admin_token = secrets.token_urlsafe(18)
        # Set-up API, straight from the ledger.
        self.add_person = self.ledger.add_person
        self.add_person_from_card = self.ledger.add_person_from_card
        self.add_filing = self.ledger.add_filing
        self.balance = self.ledger.balance
        self.usage = self.ledger.usage

    # -- lifecycle ---------------------------------------------------------

    def enrol_card(self, profile: CardProfile, *, filing_to: str | None = None) -> str:
        """Insure the holder of a simulated card (EF05/EF06); optionally file them for
        cross-area treatment in ``filing_to`` until the end of the year. Returns psn_no."""
        ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
        psn_no = self.ledger.add_person_from_card(
            ef06.ssn,
            ef06.full_name,
            ef06.sex,
            ef06.birth_date,
            ef05.card_id.region,
            card_no=ef05.card_number,
            card_sn=ef05.card_id.hex,
        )
        if filing_to:
            today = self.ledger.clock().date()
            self.ledger.add_filing(psn_no, psn_no[:6], filing_to, today, date(today.year, 12, 31))
        return psn_no

    def _bind(self) -> _Server:
        """The listening server; a port in use or a bad address is a one-line ConfigError."""
        try:
            server = _Server((self._host, self._port), _Handler)
        except OSError as exc:
            where = f"{self._host}:{self._port}"
            raise ConfigError(
                f"cannot listen on {where}: {exc.strerror or exc}", f"无法在 {where} 上监听"
            ) from None
        server.platform = self
        return server

    def start(self) -> InsurancePlatform:
        server = self._bind()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Blocking variant for the CLI."""
        server = self._bind()
        self._server = server
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self.ledger.close()

    def __enter__(self) -> InsurancePlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("platform not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/fsi/api/rsfComIfsService/callService"

    # -- faults ------------------------------------------------------------

    def inject(self, infno: str, kind: str, count: int = 1, *, delay: float = 0.0) -> None:
        """Apply fault ``kind`` to the next ``count`` requests of ``infno`` ("*" = any).

        Bounded (a fault is a test tool, not a way to park every worker): ``count``
        1-1000, ``delay`` a finite 0-30 s, ``infno`` "*" or up to 8 letters/digits.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not (infno == "*" or (0 < len(infno) <= 8 and infno.isalnum())):
            raise ValueError("infno must be '*' or up to 8 letters and digits")
        if isinstance(count, bool) or not 1 <= count <= MAX_FAULT_COUNT:
            raise ValueError(f"count must be 1-{MAX_FAULT_COUNT}")
        if not math.isfinite(delay) or not 0 <= delay <= MAX_FAULT_DELAY:
            raise ValueError(f"delay must be 0-{MAX_FAULT_DELAY:g} seconds")
        with self._fault_lock:
            self._faults.setdefault(infno, []).append(Fault(kind, count, delay))

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults.clear()

    def take_fault(self, infno: str) -> Fault | None:
        with self._fault_lock:
            for key in (infno, "*"):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                    return fault
        return None


def policy_table() -> list[dict[str, Any]]:
    """The policy table as plain data (for ``sim insurance serve --json``)."""
    return [
        {k: (str(v) if isinstance(v, Decimal) else v) for k, v in p.__dict__.items()}
        for p in POLICIES.values()
    ]
