"""``sscard serve``: what HTTP and WebSocket cost on top of the card, in the same run.

Through a private pcscd with the vsmartcard-vpcd driver (a 3rd-generation Zhejiang card
in slot 0; in-process simulated slots when this host cannot run a pcscd, and the row
names say so):

* card read over HTTP (``POST /v1/card/read`` from a minimal keep-alive client,
  :class:`WireClient`: guard, JSON, reader thread, reader lock, masked audit row) vs the
  same read in-process (open the reader, ``ops.read_raw``, close; what the service runs
  per request), measured in alternating rounds (A B C C B A ...) after a warm-up:
  medians, and the paired ratio (:meth:`Samples.over`); target: at most 1.3x through
  pcscd. The same read with Python's ``http.client`` as the client is shown beside it:
  the client's own cost;
* from a page in Debian's Chromium (the real counterpart; skipped without chromium or
  playwright): the read by fetch and on the open events socket, and ``GET /v1/version``
  by fetch, the browser's own floor;
* WebSocket insert-to-event latency: the card goes into the vpcd slot, the page's
  ``/v1/events`` socket gets ``inserted``; baseline: a PC/SC client blocked in
  SCardGetStatusChange for the same insert (pcscd's own polling is the floor);
* 20 concurrent clients on one reader: with the default wait bound every one is served
  in turn (wall time, slowest client); with a bound shorter than 20 reads (40 ms) the
  late ones get −9004 busy and nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.timing import row
from sscard.serve import ReaderService, ServeConfig, ServiceThread, SimBackend, ops
from sscard.serve.backend import Backend
from sscard.simulators.base import CardWrapper
from sscard.simulators.card import build_card
from sscard.simulators.pcscd import PrivatePcscd, free_channel, why_not_private
from sscard.simulators.profile import new_card

ORIGIN = "http://127.0.0.1:8080"
READS = 100  # per round
SLOW_READS = 12  # per round, with the card at contact-card speed (~60 ms a read)
ROUNDS = 3
WARMUP = 5
INSERTS = 8
CLIENTS = 20
SHORT_BOUND_S = 0.04  # ~8 reads: the clients after them must get busy


@dataclass
class Bench:
    """A reader with a card, how to put the card in and out, and how long that takes."""

    label: str
    backend: Backend
    reader: str
    put: Callable[[Any], None]  # a card into the reader
    eject: Callable[[], None]
    wait_present: Callable[[bool], None]

    def insert(self, card: Any = None) -> None:
        self.put(_card() if card is None else card)


def _card() -> Any:
    return build_card(new_card("zhejiang", generation=3, seed=1))


@contextmanager
def _bench() -> Iterator[Bench]:
    reason = why_not_private()  # "" also beside another pcscd, in a mount namespace
    reasons = [reason] if reason else []
    try:
        import smartcard  # noqa: F401
    except ImportError:
        reasons.append("pyscard missing")
    if reasons:
        sim = SimBackend(["bench slot 00"])
        yield Bench(
            f"in-process sim ({'; '.join(reasons)})",
            sim,
            "bench slot 00",
            lambda card: sim.insert("bench slot 00", card),
            lambda: sim.eject("bench slot 00"),
            lambda present: None,
        )
        return
    from sscard.serve import PcscBackend
    from sscard.simulators.vpcd import VpcdBridge
    from sscard.terminals.pcsc import wait_for_card

    channel = free_channel(0x9C60)
    with PrivatePcscd(friendly_name="sscard bench serve VPCD", channel_id=channel) as daemon:
        name = daemon.reader_names[0]
        with VpcdBridge(port=daemon.ports[0]) as bridge:

            def wait(present: bool) -> None:
                if not wait_for_card(name, present=present, timeout=10):
                    raise RuntimeError("pcscd did not see the benchmark card change")

            yield Bench(
                "pcscd",
                PcscBackend(ignore=[daemon.reader_names[1]]),
                name,
                bridge.insert,
                bridge.eject,
                wait,
            )


class WireClient:
    """A keep-alive HTTP/1.1 client that does only what every client must: write the
    request bytes, read the answer's head and ``Content-Length`` bytes (the service
    always sends one), parse the JSON. What is left of a read over HTTP is the
    service's own cost; ``http.client`` adds 0.2-0.8 ms of its own here (a row shows it),
    a browser's fetch ~4 ms (the Chromium rows)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"127.0.0.1:{port}"
        self.buffer = b""

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head_bytes, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head_bytes.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"benchmark call failed: {lines[0]!r}")
        length = next(
            int(v) for k, _, v in (h.partition(b":") for h in lines[1:])
            if k.strip().lower() == b"content-length"
        )  # fmt: skip
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the service closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


def _reader(bench: Bench, config: ServeConfig) -> Callable[[str], ops.Outcome]:
    """The read an SDK user makes in-process, to the answer the service returns: open the
    reader, the card read, the masked card object + ``iReadCardBas`` string, close."""
    keys = ops.Keys(config)

    def read(reader: str) -> ops.Outcome:
        with keys.provider() as provider:
            conn = bench.backend.open(reader)
            try:
                return ops.card_body(ops.read_raw(conn, provider, config), config, full=False)
            finally:
                conn.close()

    return read


def _in_process(bench: Bench, config: ServeConfig) -> Callable[[], None]:
    """The baseline: what only the service adds (HTTP, guard, audit row, thread
    hand-off) is the difference."""
    read = _reader(bench, config)

    def baseline() -> None:
        read(bench.reader)

    return baseline


def _post_read(bench: Bench, port: int) -> tuple[WireClient, Callable[[], None]]:
    """A client of the service at ``port`` and a ``POST /v1/card/read`` of the bench's
    reader that fails loudly unless the answer's code is 0."""
    wire = WireClient(port)
    headers = {"Origin": ORIGIN, "X-SSCard-Request": "1", "Content-Type": "application/json"}
    request = json.dumps({"reader": bench.reader}).encode()

    def post() -> None:
        code = wire.call("POST", "/v1/card/read", headers, request)["code"]
        if code != 0:
            raise RuntimeError(f"benchmark read failed: {code}")

    return wire, post


@dataclass
class Samples:
    """One path's times (ms) in one round, in the order taken."""

    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def over(self, base: Samples) -> float:
        """The paired ratio: the median of this path's time over ``base``'s, iteration by
        iteration. The two were taken within milliseconds of each other, so a host that
        runs at a fifth of its speed for a few seconds (seen here: the same in-process
        read took 5-29 ms in 2-second windows of one minute) slows both alike and the
        ratio stays; a ratio of the two medians does not (1.00-1.29 in three runs of the
        same code on such a host)."""
        return statistics.median(a / b for a, b in zip(self.ms, base.ms, strict=True))


def _interleaved(paths: list[Callable[[], float | None]], reads: int = READS) -> list[Samples]:
    """The times of ``paths`` run in turn A B C C B A ... after a warm-up, so drift and
    order hit all alike (a path that returns a time, measured where it ran, in ms, is
    taken at its word: a page's own clock); ``ROUNDS`` rounds, and the round whose paired
    ratio of the second path to the first is the median one is returned, so a burst of
    load on this shared 2-core host skews one round, not the result. ``python -m
    benchmarks`` prints beside each suite the share of CPU the hypervisor stole."""
    for _ in range(WARMUP):  # imports, caches, pcscd's and SQLite's pages
        for fn in paths:
            fn()
    rounds: list[list[Samples]] = []
    for _ in range(ROUNDS):
        times = [Samples([]) for _ in paths]
        order = list(zip(paths, times, strict=True))
        for i in range(reads):
            for fn, out in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                took = fn()
                out.ms.append((time.perf_counter() - t0) * 1000 if took is None else took)
        rounds.append(times)
    rounds.sort(key=lambda samples: samples[1].over(samples[0]))
    return rounds[len(rounds) // 2]


def _vs(
    name: str, value: Samples, base_name: str, base: Samples, target: str = ""
) -> dict[str, Any]:
    """A row of ``value`` against ``base``: their medians and their paired ratio."""
    return row(name, "ms", value.median, base_name, base.median, target, value.over(base))


@contextmanager
def _bare_server(bench: Bench, config: ServeConfig, audit_db: Path) -> Iterator[int]:
    """The floor of any HTTP service around this read: one thread per connection parses
    the request (httptools), runs the same read and writes the same masked answer and the
    same audit row itself, in one send: no asyncio, no hand-off between threads, no guard,
    no routing. The port is yielded. What ``sscard serve`` costs beyond this is its own."""
    import httptools

    from sscard.services.audit import AuditLog

    read = _reader(bench, config)
    log = AuditLog(audit_db, synchronous="NORMAL")
    listener = socket.create_server(("127.0.0.1", 0))

    class Request:
        def __init__(self) -> None:
            self.body, self.done = b"", False

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            self.done = True

    def connection(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                request = Request()
                parser = httptools.HttpRequestParser(request)
                while not request.done:
                    data = conn.recv(65536)
                    if not data:
                        return
                    parser.feed_data(data)
                outcome = read(json.loads(request.body)["reader"])
                subject = outcome.subject
                log.record(
                    terminal_id=config.terminal_id, scenario="serve.card_read",
                    result=outcome.result, reasons=["origin:bench", "data:masked", "code:0"],
                    name=subject.name if subject else None, ssn=subject.ssn if subject else None,
                    card_id_code=subject.card_id_code if subject else None,
                )  # fmt: skip
                body = json.dumps(outcome.body, ensure_ascii=False).encode()
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                conn.sendall(head + b"content-length: %d\r\n\r\n" % len(body) + body)

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=connection, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        log.close()


def _read_rows(bench: Bench, service: ServiceThread, config: ServeConfig) -> list[dict[str, Any]]:
    headers = {"Origin": ORIGIN, "X-SSCard-Request": "1", "Content-Type": "application/json"}
    request = json.dumps({"reader": bench.reader}).encode()
    wire, over_http = _post_read(bench, service.port)
    stdlib = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)

    def check(body: Any) -> None:
        if body["code"] != 0:
            raise RuntimeError(f"benchmark read failed: {body['code']}")

    def over_http_client() -> None:
        stdlib.request("POST", "/v1/card/read", body=request, headers=headers)
        check(json.loads(stdlib.getresponse().read()))

    def version() -> None:  # the HTTP round trip alone: guard, route, JSON, no card
        check(wire.call("GET", "/v1/version", headers))

    with (
        tempfile.TemporaryDirectory() as tmp,
        _bare_server(bench, config, Path(tmp) / "audit.sqlite3") as port,
    ):
        floor_client = WireClient(port)

        def over_bare_http() -> None:
            check(floor_client.call("POST", "/", {"Content-Type": "application/json"}, request))

        try:
            local, remote, floor, remote_stdlib, bare = _interleaved(
                [_in_process(bench, config), over_http, over_bare_http, over_http_client,
                 version]
            )  # fmt: skip
        finally:
            wire.close()
            stdlib.close()
            floor_client.close()
    return [
        _vs(f"card read over HTTP, minimal client ({bench.label})", remote,
            "same read in-process", local, "<= 1.3x"),
        _vs("  the same read behind a bare threaded HTTP server (the floor)", floor,
            "same read in-process", local),
        _vs("  sscard serve vs that floor", remote, "bare threaded server", floor),
        _vs("  the same, Python's http.client as the client", remote_stdlib,
            "same read in-process", local),
        row("HTTP round trip alone (GET /v1/version)", "ms", bare.median),
    ]  # fmt: skip


class ContactSpeedCard(CardWrapper):
    """The simulated card answering at a contact card's speed: every exchange takes its
    bytes on the wire (command + response, 12 etu per character: ISO 7816-3 frame and
    guard time) at ``bps`` plus ``processing_s`` in the chip. 115,200 bit/s is a common
    negotiated rate (the ISO default is 9,600); 1 ms is a file read's processing, less
    than the chip's cryptography takes (sscard choice: informative, not a spec figure)."""

    def __init__(self, card: Any, bps: int = 115_200, processing_s: float = 0.001) -> None:
        super().__init__(card)
        self.bps, self.processing_s = bps, processing_s

    def execute(self, apdu: bytes) -> bytes:
        response = super().execute(apdu)
        time.sleep((len(apdu) + len(response)) * 12 / self.bps + self.processing_s)
        return response


def _contact_speed_rows(bench: Bench, config: ServeConfig) -> list[dict[str, Any]]:
    """The read ratio with the card at contact-card speed: what a desk with a real reader
    sees of the service's fixed cost."""
    bench.eject()
    bench.wait_present(False)
    bench.insert(ContactSpeedCard(_card()))
    bench.wait_present(True)
    with ServiceThread(ReaderService(config, bench.backend)) as service:
        wire, over_http = _post_read(bench, service.port)
        try:
            local, remote = _interleaved([_in_process(bench, config), over_http], SLOW_READS)
        finally:
            wire.close()
    bench.eject()
    return [
        _vs(f"card read over HTTP, card at 115,200 bit/s ({bench.label})", remote,
            "same read in-process", local, "informative"),
    ]  # fmt: skip


PAGE_JS = {
    "fetch": """async ([url, reader]) => {
        const t0 = performance.now();
        const r = await fetch(url + "/v1/card/read", {method: "POST",
            headers: {"Content-Type": "application/json", "X-SSCard-Request": "1"},
            body: JSON.stringify({reader})});
        const body = await r.json();
        if (body.code !== 0) throw new Error("read failed: " + body.code);
        return performance.now() - t0;
    }""",
    "socket": """async ([url, reader]) => {
        if (!window.sscardSocket) {  // opened once, like the sample page's events socket
            const ws = new WebSocket(url.replace("http", "ws") + "/v1/events");
            window.sscardWaiting = new Map();
            ws.onmessage = (m) => {
                const msg = JSON.parse(m.data);
                const done = window.sscardWaiting.get(msg.id);
                if (msg.type === "read" && done) { window.sscardWaiting.delete(msg.id); done(msg); }
            };
            await new Promise((ok) => { ws.onopen = ok; });
            window.sscardSocket = ws;
            window.sscardId = 0;
        }
        const id = ++window.sscardId;
        const t0 = performance.now();
        const answer = new Promise((ok) => window.sscardWaiting.set(id, ok));
        window.sscardSocket.send(JSON.stringify({type: "read", id, reader}));
        const body = await answer;
        if (body.code !== 0) throw new Error("read failed: " + body.code);
        return performance.now() - t0;
    }""",
    "version": """async ([url]) => {
        const t0 = performance.now();
        const body = await (await fetch(url + "/v1/version")).json();
        if (body.code !== 0) throw new Error("version failed");
        return performance.now() - t0;
    }""",
}


def _browser_rows(bench: Bench, config: ServeConfig) -> list[dict[str, Any]]:
    """The real counterpart: a page in Debian's Chromium (Playwright drives it; times are
    taken inside the page with ``performance.now()``, 0.1 ms resolution), served from its
    own origin, reading through the service by fetch and on the events socket."""
    import functools
    import shutil
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        return [row("card read from a Chromium page", "ms", 0.0,
                    target="skipped: chromium or playwright missing")]  # fmt: skip

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with tempfile.TemporaryDirectory() as pages:
        Path(pages, "index.html").write_text("<!doctype html><title>sscard bench</title>")
        handler = functools.partial(Quiet, directory=pages)
        with ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
            threading.Thread(target=site.serve_forever, daemon=True).start()
            origin = f"http://127.0.0.1:{site.server_address[1]}"
            service = ReaderService(config.with_origins([origin]), bench.backend)
            with ServiceThread(service) as running, sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox"]
                )
                try:
                    page = browser.new_page()
                    page.goto(f"{origin}/index.html")
                    args = [running.url, bench.reader]

                    def timed(kind: str) -> Callable[[], float]:
                        return lambda: float(page.evaluate(PAGE_JS[kind], args))

                    local, fetch, sock, version = _interleaved(
                        [_in_process(bench, config), *(timed(k) for k in PAGE_JS)]
                    )
                finally:
                    browser.close()
            site.shutdown()
    return [
        _vs("card read from a Chromium page: fetch", fetch, "same read in-process", local),
        _vs("card read from a Chromium page: events socket", sock, "same read in-process",
            local),
        row("GET /v1/version from a Chromium page (the browser's fetch)", "ms", version.median),
    ]  # fmt: skip


def _event_rows(bench: Bench, service: ServiceThread) -> list[dict[str, Any]]:
    from websockets.sync.client import connect

    direct: list[float] = []
    socket_: list[float] = []
    url = service.url.replace("http", "ws") + "/v1/events"
    with connect(url, origin=ORIGIN) as ws:  # type: ignore[arg-type]

        def next_event(kind: str) -> None:
            while True:
                message = json.loads(ws.recv(timeout=15))
                if message.get("event") == kind and message.get("reader") == bench.reader:
                    return

        ws.recv(timeout=15)  # hello
        for _ in range(INSERTS):
            bench.eject()
            next_event("removed")
            t0 = time.perf_counter()
            bench.insert()
            next_event("inserted")
            socket_.append((time.perf_counter() - t0) * 1000)
            bench.eject()
            bench.wait_present(False)
            next_event("removed")
            t0 = time.perf_counter()
            bench.insert()
            bench.wait_present(True)
            direct.append((time.perf_counter() - t0) * 1000)
            next_event("inserted")
    return [
        row(f"insert -> WebSocket event ({bench.label})", "ms", statistics.median(socket_),
            "insert -> SCardGetStatusChange", statistics.median(direct) or None),
    ]  # fmt: skip


def _concurrent(service: ServiceThread, reader: str) -> tuple[list[int], float, float]:
    import httpx

    codes: list[int] = []
    slowest = [0.0]
    start = threading.Barrier(CLIENTS + 1)

    def one() -> None:
        headers = {"Origin": ORIGIN, "X-SSCard-Request": "1"}
        with httpx.Client(base_url=service.url, headers=headers, timeout=60) as client:
            start.wait()
            t0 = time.perf_counter()
            codes.append(client.post("/v1/card/read", json={"reader": reader}).json()["code"])
            slowest[0] = max(slowest[0], time.perf_counter() - t0)

    threads = [threading.Thread(target=one) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return codes, (time.perf_counter() - t0) * 1000, slowest[0] * 1000


def _concurrency_rows(bench: Bench, config: ServeConfig) -> list[dict[str, Any]]:
    rows = []
    for bound in (config.busy_wait_s, SHORT_BOUND_S):
        service = ReaderService(replace(config, busy_wait_s=bound), bench.backend)
        with ServiceThread(service) as running:
            codes, wall, slowest = _concurrent(running, bench.reader)
        served = codes.count(0)
        busy = codes.count(-9004)
        if served + busy != CLIENTS:
            raise RuntimeError(f"unexpected codes under load: {sorted(set(codes))}")
        rows.append(row(f"{CLIENTS} clients, one reader, wait <= {bound:g} s: served "
                        f"({bench.label})", "clients", served, target=f"busy (-9004): {busy}"))  # fmt: skip
        rows.append(row(f"{CLIENTS} clients, wait <= {bound:g} s: slowest client", "ms",
                        slowest, "wall time for all", wall))  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, _bench() as bench:
        config = ServeConfig(
            keys="test",
            audit_db=Path(tmp) / "audit.sqlite3",
            replay_db=Path(tmp) / "replay.sqlite3",
            rate_per_s=10_000,
            rate_burst=10_000,
        ).with_origins([ORIGIN])
        bench.insert()
        bench.wait_present(True)
        with ServiceThread(ReaderService(config, bench.backend)) as service:
            rows = _read_rows(bench, service, config)
            rows += _event_rows(bench, service)
        rows += _concurrency_rows(bench, config)
        rows += _browser_rows(bench, config)
        rows += _contact_speed_rows(bench, config)
        return rows


if __name__ == "__main__":
    for r in run():
        print(r)
