"""``sscard serve``: the local reader service a browser-based HIS calls (API v1).

The pieces: :class:`ReaderService` holds the configuration, the readers
(:mod:`.backend`), the card keys, the identity policy, the audit log, one lock per
reader and the event hub; :func:`build_app` puts the routes behind the
:class:`~sscard.serve.guard.Guard`. Endpoints (docs/reader-service.md, README):

``GET /v1/version``, ``GET /v1/openapi.json``, ``POST /v1/pair``, ``GET /v1/readers``,
``POST /v1/card/read``, ``POST /v1/card/pin/verify``, ``POST /v1/card/pin/change``,
``POST /v1/identity/check``, ``POST /v1/qr/verify``, WebSocket ``/v1/events`` (events,
and the card read on request: a page's fetch costs the browser milliseconds a message on
the open socket does not).

One card operation per reader at a time: a request waits at most ``busy_wait_s`` for
the reader's lock (FIFO, so concurrent pages are served in turn) and then gets −9004
"busy"; the lock is held until the card operation's thread ends, even when the page
was already told −9005 (timeout), so two operations never share a card session.
Every request that touches personal data leaves one masked audit row
(:class:`~sscard.services.audit.AuditLog` masks it; the reasons carry the origin,
``data:full|masked`` and the return code).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import itertools
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sscard import __version__
from sscard.errors import DependencyMissing, SscardError
from sscard.files import parse_json
from sscard.serve import ops
from sscard.serve.backend import Backend, ReaderInfo
from sscard.serve.config import TEST_KEYS_WARNING, ServeConfig
from sscard.serve.errors import (
    BadRequest,
    OperationTimeout,
    RateLimited,
    ReaderBusyError,
    TokenRefused,
    error_body,
    http_status,
)
from sscard.serve.guard import Client, Guard, TokenBucket
from sscard.terminals.connection import Connection
from sscard.terminals.monitor import CardEvent

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from sscard.applets.identity import IdentityPolicy
    from sscard.services.audit import AuditLog

log = logging.getLogger("sscard.serve")
API = 1
#: ``read`` commands one events socket may have waiting or running; more get −9004 busy.
SOCKET_READS = 8
T = TypeVar("T")

# =========================================================================== pairing


class Pairing:
    """Pairing code -> bearer token bound to one origin (Jupyter-style, docs/reader-service.md).

    The 6-digit code is shown on the service console (``announce``), is single-use and
    expires after ``code_ttl`` s; 5 wrong codes replace it. Tokens live in memory only
    (a restart means pairing again) and expire after ``token_ttl`` s.
    """

    def __init__(
        self,
        announce: Callable[[str], None],
        *,
        code_ttl: float = 120.0,
        token_ttl: float = 12 * 3600.0,
        max_failures: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._announce = announce
        self.code_ttl, self.token_ttl, self.max_failures = code_ttl, token_ttl, max_failures
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[bytes, tuple[str | None, float]] = {}
        self.code = ""
        self._code_expires = 0.0
        self._failures = 0

    def new_code(self) -> str:
        with self._lock:
            self._new_code_locked()
            return self.code

    def _new_code_locked(self) -> None:
        self.code = f"{secrets.randbelow(10**6):06d}"
        self._code_expires = self._clock() + self.code_ttl
        self._failures = 0
        self._announce(
            f"pairing code / 配对码: {self.code} (valid {self.code_ttl:.0f} s, single use)"
        )

    def pair(self, code: str, origin: str | None) -> tuple[str, int]:
        with self._lock:
            now = self._clock()
            if not self.code or now > self._code_expires:
                self._new_code_locked()
                raise TokenRefused(
                    "the pairing code expired: a new one is on the service console",
                    "配对码已过期：新的配对码已显示在服务控制台",
                )
            if not hmac.compare_digest(code.encode(), self.code.encode()):
                self._failures += 1
                if self._failures >= self.max_failures:
                    self._new_code_locked()
                raise TokenRefused("wrong pairing code", "配对码错误")
            token = secrets.token_urlsafe(32)
            self._tokens[self._digest(token)] = (origin, now + self.token_ttl)
            self._new_code_locked()  # single use: the next page pairs with a new code
            return token, int(self.token_ttl)

    def check(self, token: str, origin: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            entry = self._tokens.get(self._digest(token))
            if entry is None:
                return False
            bound, expires = entry
            if self._clock() > expires:
                del self._tokens[self._digest(token)]
                return False
            return bound == origin

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()


# =========================================================================== events


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client of ``/v1/events``; ``token``: the pairing token it gave."""

    client: Client
    auto_read: bool
    token: str = ""
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(256))
    closing: bool = False


#: The message type, never sent, that tells a socket's sender to close it with ``code``.
CLOSE = "sscard.close"


class EventHub:
    """Card and reader events from the backend's watcher thread, fanned out per socket."""

    def __init__(self, service: ReaderService) -> None:
        self.service = service
        self.readers: dict[str, ReaderInfo] = {}
        self.pcsc = "ok"
        self.subscribers: set[Subscriber] = set()

    def snapshot(self) -> list[dict[str, object]]:
        return [r.to_dict() for r in self.readers.values()]

    def publish(self, event: CardEvent) -> None:
        """In the event loop: update the snapshot, send the message, start auto-reads."""
        message: dict[str, Any]
        name = event.reader or ""
        if event.kind == "reader-added":
            self.readers[name] = ReaderInfo(name, "empty")
            self.service.reader_event(event.kind, name)
            message = {"type": "reader", "event": "added", "reader": name}
        elif event.kind == "reader-gone":
            self.readers.pop(name, None)
            self.service.reader_event(event.kind, name)
            message = {"type": "reader", "event": "removed", "reader": name}
        elif event.kind == "inserted":
            self.readers[name] = ReaderInfo(name, "card", event.atr)
            message = {
                "type": "card",
                "event": "inserted",
                "reader": name,
                "atr": event.atr.hex().upper(),
            }
        elif event.kind == "removed":
            self.readers[name] = ReaderInfo(name, "empty")
            message = {"type": "card", "event": "removed", "reader": name}
        else:
            self.pcsc = "unavailable" if event.kind == "error" else "ok"
            message = {"type": "status", "pcsc": self.pcsc, "message": event.message or None}
        message["time"] = time.time()
        for sub in list(self.subscribers):
            self.send(sub, message)
        if event.kind == "inserted" and any(s.auto_read for s in self.subscribers):
            task = asyncio.get_running_loop().create_task(self.service.auto_read(name))
            self.service.tasks.add(task)
            task.add_done_callback(self.service.tasks.discard)

    def send(self, sub: Subscriber, message: dict[str, Any]) -> None:
        if sub.closing:
            return
        try:
            sub.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A page that stopped reading: never block the others, and never leave it
            # open but deaf (an answer it waits for would be lost): close it, 1013 "try
            # again later"; the page reconnects and gets a fresh hello.
            self.close(sub, 1013)

    def close(self, sub: Subscriber, code: int) -> None:
        """Close ``sub``'s socket after what is queued for it (all of it, unless the queue
        is full: then it is dropped, the page reconnects); nothing is queued after."""
        self.subscribers.discard(sub)
        if sub.queue.full():
            while not sub.queue.empty():
                sub.queue.get_nowait()
        sub.queue.put_nowait({"type": CLOSE, "code": code})
        sub.closing = True


# =========================================================================== reader workers


def _settle(
    future: asyncio.Future[Any],
    release: Callable[[], None],
    result: Any,
    exc: BaseException | None,
) -> None:
    """In the event loop, once an operation's thread is done: free the reader, answer."""
    release()
    if future.cancelled():  # the request timed out (−9005) and stopped waiting
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


_worker_ids = itertools.count(1)


class ReaderWorker:
    """The one thread that runs a reader's card operations, in the order they come.

    The reader's lock already admits one operation at a time, so one thread per reader
    is all the concurrency there is; a thread that stays the same (instead of whichever
    pool thread wakes) and answers with a single ``call_soon_threadsafe`` costs one
    event-loop iteration less than ``run_in_executor`` + ``asyncio.wait`` per request.
    The thread ends after ``idle_s`` without work and the next operation starts a new
    one, so readers that come and go (USB readers plugged in and out) leave no thread.
    """

    def __init__(self, idle_s: float = 60.0) -> None:
        self.idle_s = idle_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._mutex = threading.Lock()  # a put never races the thread's decision to end
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def alive(self) -> bool:
        with self._mutex:
            return self._thread is not None

    def submit(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T], release: Callable[[], None]
    ) -> asyncio.Future[T]:
        """Run ``fn`` in this reader's thread; ``release`` runs in the loop when it has
        ended (whether or not anyone still waits), then the future is settled."""
        future: asyncio.Future[T] = loop.create_future()
        with self._mutex:
            self._queue.put((loop, future, fn, release))
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name=f"sscard-reader-{next(_worker_ids)}", daemon=True
                )
                self._thread.start()
        return future

    def stop(self) -> None:
        """Let the thread end once the operation it runs (if any) is done."""
        with self._mutex:
            self._stopped = True
            self._queue.put(None)

    def _next(self) -> Any:
        """The next item, or None when stopped or idle for ``idle_s`` (the thread ends)."""
        while True:
            try:
                return self._queue.get(timeout=self.idle_s)
            except queue.Empty:
                with self._mutex:
                    if self._queue.empty():
                        self._thread = None
                        return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            loop, future, fn, release = item
            result, error = None, None
            try:
                result = fn()
            except BaseException as exc:  # handed to the waiting request, never lost
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(_settle, future, release, result, error)
            del item, fn, result, error  # no reference to the card data while idle
        with self._mutex:  # stopped: ``alive`` says so once the thread has ended
            if self._thread is threading.current_thread():
                self._thread = None


@dataclass(eq=False)
class ReaderSlot:
    """One reader's lock and thread, and how many requests hold or wait for the lock.

    The service keeps a slot while a reader is plugged in or in use: when the reader is
    gone (unplugged) and no request holds or waits for its lock, the slot is dropped and
    its thread stopped, so readers that come and go leave nothing behind. The count,
    not ``lock.locked()``, decides: between a release and the next waiter taking the
    lock, the lock looks free, and a new lock then would let two operations share a card.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    worker: ReaderWorker = field(default_factory=ReaderWorker)
    users: int = 0
    gone: bool = False


# =========================================================================== the service


def _origin_code(origin: str | None) -> str:
    text = "local" if origin is None else origin.replace("://", ":")
    return "origin:" + re.sub(r"[^A-Za-z0-9_.:-]", "_", text)[:56]


class ReaderService:
    """Everything behind the routes; ``build_app(service)`` makes the ASGI app."""

    def __init__(
        self,
        config: ServeConfig,
        backend: Backend,
        *,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.keys = ops.Keys(config)
        self.announce = announce or (lambda text: log.warning("%s", text))
        self.pairing = Pairing(self.announce)
        self.bucket = TokenBucket(config.rate_per_s, config.rate_burst)  # HTTP and socket reads
        self.hub = EventHub(self)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stats = {"card_ops": 0, "refused": 0}
        self._slots: dict[str, ReaderSlot] = {}
        self._pin_at: dict[str, float] = {}
        self._policy: IdentityPolicy | None = None
        self._audit: AuditLog | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the service's, while it runs

    # -- lifecycle ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        self.open()
        loop = self.loop = asyncio.get_running_loop()

        def publish(event: CardEvent) -> None:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(self.hub.publish, event)

        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(publish,), name="sscard-serve-events", daemon=True
        )
        self._watcher.start()
        if self.config.test_keys:
            self.announce(TEST_KEYS_WARNING)
        if self.config.pairing:
            self.pairing.new_code()
        try:
            yield
        finally:
            self._stop.set()
            self.backend.wake()
            self._watcher.join(5.0)
            for task in list(self.tasks):
                task.cancel()
            for slot in self._slots.values():
                slot.worker.stop()
            self._slots.clear()
            self.close()
            self.loop = None

    def _watch(self, publish: Callable[[CardEvent], None]) -> None:
        try:
            self.backend.watch(publish, self._stop)
        except SscardError as exc:  # no pyscard: the service still answers, events say why
            publish(CardEvent("error", message=exc.message_en))

    def open(self) -> None:
        from sscard.applets.identity import IdentityPolicy

        policy = self.config.identity_policy
        self._policy = IdentityPolicy.load(policy) if policy else IdentityPolicy()
        if self.config.audit and self._audit is None:
            from sscard.services import audit

            # WAL + synchronous=NORMAL: a committed row is in the OS before the answer
            # leaves (safe against a crash of the service), without an fsync per
            # request (4 ms here, the largest cost of a read over HTTP).
            self._audit = audit.AuditLog(
                self.config.audit_db or audit.default_path(),
                retention_days=self._policy.retention_days,
                synchronous="NORMAL",
            )

    def close(self) -> None:
        if self._audit is not None:
            self._audit.close()
            self._audit = None

    # -- helpers --------------------------------------------------------------------

    def refused(self, scope: Any, origin: str | None, exc: SscardError) -> None:
        """Log a refusal by the guard: method, path, origin, code (never a body)."""
        self.stats["refused"] += 1
        log.info(
            "refused %s %s origin=%s code=%s",
            scope.get("method", "WS"),
            scope.get("path"),
            origin,
            exc.code,
        )

    def audit_row(
        self, op: str, client: Client, outcome: ops.Outcome | None, exc: BaseException | None
    ) -> None:
        if self._audit is None:
            return
        code = 0 if exc is None else error_body(exc)["code"]
        subject = outcome.subject if outcome is not None else None
        self._audit.record(
            terminal_id=self.config.terminal_id,
            scenario=f"serve.{op}",
            result=outcome.result if outcome is not None else "error",
            reasons=[
                _origin_code(client.origin),
                f"data:{'full' if client.full_data else 'masked'}",
                f"code:{code}",
            ],
            name=subject.name if subject else None,
            ssn=subject.ssn if subject else None,
            card_id_code=subject.card_id_code if subject else None,
        )

    async def choose(self, choice: Any) -> str:
        """The reader a request names (index, name or substring), else the one with a card.

        The event hub's snapshot answers first (asking pcscd for the reader list costs a
        PC/SC context, milliseconds per request); a name it does not know, or a choice
        it cannot settle, is looked up afresh. A stale snapshot is harmless: the card
        operation itself then fails with NoCard or ReaderGone.
        """
        from sscard.terminals.errors import NoReader, ReaderAmbiguous
        from sscard.terminals.pcsc import choose_reader

        if choice is not None and (not isinstance(choice, (str, int)) or isinstance(choice, bool)):
            raise BadRequest("reader must be a name or an index", "reader 应为名称或序号", code=-23)
        known = dict(self.hub.readers) if self.hub.pcsc == "ok" else {}
        if known and (choice is None or (isinstance(choice, str) and choice in known)):
            with_card = [n for n, r in known.items() if r.state == "card"]
            with contextlib.suppress(NoReader, ReaderAmbiguous):
                return choose_reader(list(known), choice, ignore=[], with_card=with_card)
        readers = await asyncio.to_thread(self.backend.list_readers)
        names = [r.name for r in readers]
        with_card = [r.name for r in readers if r.state == "card"]
        return choose_reader(names, choice, ignore=[], with_card=with_card)

    def _slot(self, reader: str) -> ReaderSlot:
        slot = self._slots.get(reader)
        if slot is None:
            slot = self._slots[reader] = ReaderSlot()
        return slot

    def _leave(self, reader: str, slot: ReaderSlot) -> None:
        """A request is done with ``slot`` (served, busy or timed out waiting). An unused
        slot goes when its reader is gone, or unknown to the events (a reader unplugged
        while the request was still looking it up had its reader-gone before the slot)."""
        slot.users -= 1
        if slot.gone or reader not in self.hub.readers:
            self._drop_unused(reader, slot)

    def reader_event(self, kind: str, reader: str) -> None:
        """From the event hub: a reader unplugged (drop its slot once unused) or back."""
        if kind == "reader-gone":
            self._pin_at.pop(reader, None)
        slot = self._slots.get(reader)
        if slot is not None:
            slot.gone = kind == "reader-gone"
            if slot.gone:
                self._drop_unused(reader, slot)

    def _drop_unused(self, reader: str, slot: ReaderSlot) -> None:
        """Drop ``slot`` and stop its thread if no request holds or waits for it."""
        if slot.users == 0 and self._slots.get(reader) is slot:
            del self._slots[reader]
            slot.worker.stop()

    def pin_try(self, reader: str) -> None:
        """At most one PIN try per ``pin_interval_s`` per reader (a page cannot burn tries)."""
        now = time.monotonic()
        last = self._pin_at.get(reader)
        if last is not None and now - last < self.config.pin_interval_s:
            raise RateLimited("one PIN try every few seconds: wait", "密码尝试过于频繁，请稍候")
        self._pin_at[reader] = now

    async def audited_op(
        self, reader: str, op: str, client: Client, fn: Callable[[Connection, Any], ops.Outcome]
    ) -> ops.Outcome:
        """``card_op`` whose audit row is written in the same worker thread, before the
        reader is released and before the answer leaves (one thread hop, not two)."""

        def audited(outcome: ops.Outcome) -> ops.Outcome:
            self.audit_row(op, client, outcome, None)
            return dataclasses.replace(outcome, audited=True)

        return await self.card_op(reader, fn, after=audited)

    async def card_op(
        self,
        reader: str,
        fn: Callable[[Connection, Any], T],
        *,
        after: Callable[[T], T] | None = None,
    ) -> T:
        """Run ``fn(conn, key_provider)`` on ``reader`` under its lock (bounded wait);
        ``after(result)`` runs in the same thread once the connection is closed."""
        slot = self._slot(reader)
        slot.users += 1
        try:  # asyncio.timeout, not wait_for: no extra task when the reader is free
            async with asyncio.timeout(self.config.busy_wait_s):
                await slot.lock.acquire()
        except BaseException as exc:  # busy, or the request went away while waiting
            self._leave(reader, slot)
            if isinstance(exc, TimeoutError):
                raise ReaderBusyError() from None
            raise

        def release() -> None:
            slot.lock.release()
            self._leave(reader, slot)

        def work() -> T:
            with self.keys.provider() as keys:
                conn = self.backend.open(reader)
                try:
                    result = fn(conn, keys)
                finally:
                    conn.close()
            return after(result) if after is not None else result

        # The worker releases the lock when ``work`` has ended, not when this request
        # stops waiting: a timed-out operation keeps the reader until its thread is done.
        try:
            future = slot.worker.submit(asyncio.get_running_loop(), work, release)
        except BaseException:  # no thread (RuntimeError "can't start new thread"): free it
            release()
            raise
        self.stats["card_ops"] += 1
        try:
            async with asyncio.timeout(self.config.op_timeout_s):
                return await future
        except TimeoutError:
            raise OperationTimeout() from None

    async def auto_read(self, reader: str) -> None:
        """Read the card just inserted once; each auto-read subscriber gets its view."""
        subs = [s for s in self.hub.subscribers if s.auto_read]
        if not subs:
            return
        config = self.config
        try:
            read = await self.card_op(reader, lambda conn, keys: ops.read_raw(conn, keys, config))
        except Exception as exc:
            for sub in subs:
                self.hub.send(sub, {"type": "read", "reader": reader, **error_body(exc)})
                await asyncio.to_thread(self.audit_row, "auto_read", sub.client, None, exc)
            return
        for sub in subs:
            outcome = ops.card_body(read, config, full=sub.client.full_data)
            self.hub.send(sub, {"type": "read", "reader": reader, **outcome.body})
            await asyncio.to_thread(self.audit_row, "auto_read", sub.client, outcome, None)

    @property
    def policy(self) -> IdentityPolicy:
        if self._policy is None:
            self.open()
        assert self._policy is not None
        return self._policy


# =========================================================================== routes


def _require_starlette() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DependencyMissing(
            f"sscard serve needs starlette and uvicorn: pip install 'sscard[serve]' ({exc})",
            "sscard serve 需要 starlette 和 uvicorn：pip install 'sscard[serve]'",
        ) from None


def _client(request: Request | WebSocket) -> Client:
    client = request.scope.get("sscard.client")
    assert isinstance(client, Client)  # the guard put it there
    return client


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = parse_json(raw)  # bounded: nesting, integer length (sscard.files)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", "请求体不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", "请求体须为 JSON 对象")
    return data


def _valid_id(rid: object) -> bool:
    """A socket command's ``id``, echoed in its answer: absent, an integer JSON keeps
    exact, or a string of at most 64 characters."""
    if isinstance(rid, bool):
        return False
    return (
        rid is None
        or (isinstance(rid, int) and abs(rid) < 2**53)
        or (isinstance(rid, str) and len(rid) <= 64)
    )


def _field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"field {name!r} is required", f"缺少字段 {name!r}", code=-23)
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise BadRequest(f"field {name!r} must be a string", f"字段 {name!r} 须为字符串", code=-23)
    return value


def build_app(service: ReaderService) -> Guard:
    """The ASGI application: the routes behind the guard."""
    _require_starlette()
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    from sscard.serve.openapi import openapi

    config = service.config

    def answer(body: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(body, status)

    def failure(exc: BaseException) -> Response:
        if not isinstance(exc, SscardError):
            log.exception("unexpected error")  # no request data in the record
        return answer(error_body(exc), http_status(exc))

    async def version(request: Request) -> Response:
        client = _client(request)
        return answer(
            {
                "code": 0,
                "service": "sscard",
                "version": __version__,
                "api": API,
                "pairing": config.pairing,
                "full_data": client.full_data,
                "test_keys": config.test_keys,
            }
        )

    async def openapi_doc(request: Request) -> Response:
        return answer(openapi(__version__))

    async def pair(request: Request) -> Response:
        client = _client(request)
        try:
            if not config.pairing:
                raise BadRequest("pairing is off on this service", "此服务未启用配对")
            code = _field(await _body(request), "code") or ""
            token, ttl = service.pairing.pair(code, client.origin)
        except SscardError as exc:
            return failure(exc)
        return answer({"code": 0, "token": token, "expires_in": ttl})

    async def readers(request: Request) -> Response:
        try:
            found = await asyncio.to_thread(service.backend.list_readers)
        except SscardError as exc:
            return failure(exc)
        return answer({"code": 0, "readers": [r.to_dict() for r in found]})

    async def audited(
        op: str, client: Client, run: Callable[[], Awaitable[ops.Outcome]]
    ) -> ops.Outcome:
        """Run an operation touching personal data; one audit row either way, except for a
        request refused as malformed (400/413/415: nothing was read). Raises the
        operation's error, or the audit log's: no row, no data."""
        outcome: ops.Outcome | None = None
        error: BaseException | None = None
        try:
            outcome = await run()
        except Exception as exc:
            error = exc
        if not (outcome is not None and outcome.audited) and not (
            isinstance(error, SscardError) and getattr(error, "http_status", 200) in (400, 413, 415)
        ):
            await asyncio.to_thread(service.audit_row, op, client, outcome, error)
        if error is not None:
            raise error
        assert outcome is not None
        return outcome

    async def personal(
        request: Request, op: str, run: Callable[[dict[str, Any], Client], Any]
    ) -> Response:
        """A request touching personal data: parse, run, answer, one audit row either way."""
        client = _client(request)

        async def parsed() -> ops.Outcome:
            outcome: ops.Outcome = await run(await _body(request), client)
            return outcome

        try:
            return answer((await audited(op, client, parsed)).body)
        except Exception as exc:
            return failure(exc)

    async def read_card(body: dict[str, Any], client: Client) -> ops.Outcome:
        """The SSSE read, for ``POST /v1/card/read`` and a ``read`` on the events socket."""
        reader = await service.choose(body.get("reader"))
        full = client.full_data
        outcome = await service.audited_op(
            reader,
            "card_read",
            client,
            lambda c, k: ops.card_body(ops.read_raw(c, k, config), config, full=full),
        )
        outcome.body["reader"] = reader
        return outcome

    async def card_read(request: Request) -> Response:
        return await personal(request, "card_read", read_card)

    async def pin_verify(request: Request) -> Response:
        async def run(body: dict[str, Any], client: Client) -> ops.Outcome:
            pin = _field(body, "pin") or ""
            reader = await service.choose(body.get("reader"))
            service.pin_try(reader)
            return await service.audited_op(
                reader, "pin_verify", client, lambda c, k: ops.verify_pin(c, pin, config)
            )

        return await personal(request, "pin_verify", run)

    async def pin_change(request: Request) -> Response:
        async def run(body: dict[str, Any], client: Client) -> ops.Outcome:
            old, new = _field(body, "old_pin") or "", _field(body, "new_pin") or ""
            reader = await service.choose(body.get("reader"))
            service.pin_try(reader)
            return await service.audited_op(
                reader, "pin_change", client, lambda c, k: ops.change_pin(c, old, new, config)
            )

        return await personal(request, "pin_change", run)

    async def identity_check(request: Request) -> Response:
        async def run(body: dict[str, Any], client: Client) -> ops.Outcome:
            scenario = _field(body, "scenario") or ""
            pin = _field(body, "pin", required=False)
            service.policy.scenario(scenario)  # unknown scenario: −14 before the card
            reader = await service.choose(body.get("reader"))
            if pin is not None:
                service.pin_try(reader)
            audit = service._audit

            def check(conn: Connection, keys: Any) -> ops.Outcome:
                return ops.identity_check(
                    conn,
                    keys,
                    service.policy,
                    audit,
                    config,
                    scenario=scenario,
                    pin=pin,
                    full=client.full_data,
                )

            outcome = await service.audited_op(reader, "identity", client, check)
            outcome.body["reader"] = reader
            return outcome

        return await personal(request, "identity", run)

    async def qr_verify(request: Request) -> Response:
        async def run(body: dict[str, Any], client: Client) -> ops.Outcome:
            payload = _field(body, "payload") or ""
            return await asyncio.to_thread(
                ops.qr_verify,
                config.ecard_trust,
                config.replay_db,
                payload,
                full=client.full_data,
            )

        return await personal(request, "qr_verify", run)

    async def socket_read(sub: Subscriber, message: dict[str, Any]) -> None:
        """``{"type": "read", "id": ..., "reader": ...}`` on the events socket: the same read,
        masking, audit row, reader lock and rate limit as ``POST /v1/card/read``; the answer
        is ``{"type": "read", "id": ..., ...}`` (a read pushed on insert has no ``id``)."""
        rid = message.get("id")
        if not _valid_id(rid):
            bad = BadRequest(
                "field 'id' must be a short string or an integer",
                "字段 'id' 须为短字符串或整数",
                code=-23,
            )
            service.hub.send(sub, {"type": "read", "id": None, **error_body(bad)})
            return
        try:
            # A paired socket's token is checked on every read, as an HTTP call's is: it
            # expires (12 h) or dies with a restart while the page stays open.
            if config.pairing and not service.pairing.check(sub.token, sub.client.origin):
                raise TokenRefused()
            if not service.bucket.take(sub.client.key):
                raise RateLimited()
            outcome = await audited("card_read", sub.client, lambda: read_card(message, sub.client))
            reply = {"type": "read", "id": rid, **outcome.body}
        except Exception as exc:
            if isinstance(exc, (TokenRefused, RateLimited)):
                service.refused({"method": "WS", "path": "/v1/events read"}, sub.client.origin, exc)
            elif not isinstance(exc, SscardError):
                log.exception("unexpected error")  # no request data in the record
            reply = {"type": "read", "id": rid, **error_body(exc)}
        service.hub.send(sub, reply)
        if reply["code"] == TokenRefused.code:
            service.hub.close(sub, 4401)  # as at the handshake: the page pairs again

    async def events(websocket: WebSocket) -> None:
        client = _client(websocket)
        await websocket.accept()
        token = ""
        if config.pairing:
            try:
                first = await asyncio.wait_for(websocket.receive_json(), 5.0)
                given = first.get("token") if isinstance(first, dict) else None
                token = given if isinstance(given, str) else ""
                ok = service.pairing.check(token, client.origin)
            except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
                ok = False
            if not ok:
                with contextlib.suppress(Exception):
                    await websocket.send_json({"type": "error", **error_body(TokenRefused())})
                    await websocket.close(4401)
                return
        sub = Subscriber(client, websocket.query_params.get("auto_read") == "1", token)
        service.hub.subscribers.add(sub)
        await websocket.send_json(
            {
                "type": "hello",
                "api": API,
                "version": __version__,
                "pcsc": service.hub.pcsc,
                "readers": service.hub.snapshot(),
                "masked": not client.full_data,
                "auto_read": sub.auto_read,
            }
        )

        async def pump() -> None:
            while (message := await sub.queue.get())["type"] != CLOSE:
                await websocket.send_json(message)
            await websocket.close(message["code"])

        sender = asyncio.create_task(pump())
        reads: set[asyncio.Task[None]] = set()
        try:
            while True:
                message = await websocket.receive_json()
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "subscribe":
                    sub.auto_read = bool(message.get("auto_read"))
                elif kind == "ping":
                    service.hub.send(sub, {"type": "pong", "time": time.time()})
                elif kind == "read" and len(reads) >= SOCKET_READS:
                    rid = message.get("id") if _valid_id(message.get("id")) else None
                    busy = {"type": "read", "id": rid, **error_body(ReaderBusyError())}
                    service.hub.send(sub, busy)
                elif kind == "read":
                    task = asyncio.create_task(socket_read(sub, message))
                    reads.add(task)
                    task.add_done_callback(reads.discard)
        except (WebSocketDisconnect, ValueError, KeyError, RuntimeError):
            pass
        finally:
            service.hub.subscribers.discard(sub)
            for task in (sender, *reads):  # a read already on the card ends in its thread
                task.cancel()
            with contextlib.suppress(BaseException):
                await sender

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return answer(
            error_body(BadRequest("no such endpoint", "无此接口", code=-13, http_status=status)),
            status,
        )

    app: Starlette = Starlette(
        routes=[
            Route("/v1/version", version, methods=["GET"]),
            Route("/v1/openapi.json", openapi_doc, methods=["GET"]),
            Route("/v1/pair", pair, methods=["POST"]),
            Route("/v1/readers", readers, methods=["GET"]),
            Route("/v1/card/read", card_read, methods=["POST"]),
            Route("/v1/card/pin/verify", pin_verify, methods=["POST"]),
            Route("/v1/card/pin/change", pin_change, methods=["POST"]),
            Route("/v1/identity/check", identity_check, methods=["POST"]),
            Route("/v1/qr/verify", qr_verify, methods=["POST"]),
            WebSocketRoute("/v1/events", events),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=service.lifespan,
    )
    return Guard(app, service)
