"""HTTP front of the simulated platform, with injectable faults.

A stdlib ``ThreadingHTTPServer`` (loopback, port 0 = ephemeral by default)
that POSTs envelopes to :class:`Ledger`. Faults reproduce the field failures
of medical-insurance.md §1.5 and §6 (records on one side only after a
network flap):

``drop``      commit, then close the connection without a reply;
``lose``      close the connection without processing (request lost);
``delay``     sleep ``delay`` seconds before processing;
``http500``   answer HTTP 500 without processing.

Set them from tests with :meth:`InsurancePlatform.inject` or over HTTP:
``POST /admin/faults {"infno": "2207", "kind": "drop", "count": 1}``,
``DELETE /admin/faults``. The admin endpoint is for a loopback test double.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sscard.errors import ConfigError
from sscard.simulators.insurance_platform.ledger import Ledger
from sscard.simulators.insurance_platform.policies import POLICIES, AreaPolicy
from sscard.simulators.insurance_platform.wire import dumps, loads
from sscard.simulators.profile import CardProfile

FAULT_KINDS = ("drop", "lose", "delay", "http500")


@dataclass
class Fault:
    kind: str
    remaining: int
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5.0  # an idle keep-alive connection does not hold up stop() for long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines may carry nothing secret, but tests want clean output."""

    def _send(
        self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _drop(self) -> None:
        self.close_connection = True

    def do_POST(self) -> None:
        platform = self.server.platform
        raw = self._body()
        if self.path.startswith("/admin/faults"):
            try:
                spec = json.loads(raw or b"{}")
                platform.inject(
                    str(spec["infno"]),
                    str(spec["kind"]),
                    int(spec.get("count", 1)),
                    delay=float(spec.get("delay", 0.0)),
                )
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, json.dumps({"error": str(exc)}).encode())
                return
            self._send(200, b'{"ok":true}')
            return
        try:
            envelope = loads(raw)
        except ValueError:
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
        reply = platform.ledger.handle(envelope)
        if fault is not None and fault.kind == "drop":
            return self._drop()
        self._send(200, dumps(reply).encode("utf-8"))

    def do_DELETE(self) -> None:
        if self.path.startswith("/admin/faults"):
            self.server.platform.clear_faults()
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, b"{}")

    def do_GET(self) -> None:
        if self.path.startswith("/admin/health"):
            self._send(200, b'{"ok":true}')
        else:
            self._send(404, b"{}")


class _Server(ThreadingHTTPServer):
    # stop() waits for in-flight requests (e.g. a delayed one) before the ledger closes.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128
    platform: InsurancePlatform


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
        clock: Callable[[], datetime] = datetime.now,
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
        )
        if filing_to:
            today = date.today()
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
        """Apply fault ``kind`` to the next ``count`` requests of ``infno`` ("*" = any)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count < 1 or delay < 0:
            raise ValueError("count must be >= 1 and delay >= 0")
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
