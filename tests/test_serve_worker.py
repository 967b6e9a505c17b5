"""A reader's worker thread: operations in order, none lost, no idle thread left behind;
readers that come and go leave no lock and no thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from sscard.serve import ReaderService, ServeConfig, ServiceThread, SimBackend
from sscard.serve.app import ReaderWorker
from sscard.serve.backend import ReaderInfo
from sscard.simulators.base import CardWrapper
from sscard.simulators.card import build_card
from sscard.simulators.profile import new_card

ORIGIN = "http://127.0.0.1:8080"
READER = "sim reader 00"


def test_operations_run_in_order_and_an_idle_worker_ends_and_restarts() -> None:
    async def scenario() -> None:
        worker = ReaderWorker(idle_s=0.05)
        lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        assert not worker.alive  # no thread before the first operation
        seen: list[int] = []
        threads: set[str] = set()

        def op(i: int) -> int:
            seen.append(i)
            threads.add(threading.current_thread().name)
            return i * i

        results = []
        for i in range(20):
            await lock.acquire()  # the service holds the reader's lock per operation
            results.append(await worker.submit(loop, lambda i=i: op(i), lock.release))
        assert results == [i * i for i in range(20)] and seen == list(range(20))
        assert len(threads) == 1 and worker.alive

        assert wait_until(lambda: not worker.alive)  # ended after idle_s without work

        await lock.acquire()
        assert await worker.submit(loop, lambda: op(99), lock.release) == 99 * 99
        assert worker.alive and len(threads) == 2  # a fresh thread took it
        assert not lock.locked()  # released by the worker when the operation ended
        worker.stop()
        assert wait_until(lambda: not worker.alive)  # stopped: the thread ended, says so

    asyncio.run(scenario())


def test_submissions_racing_the_idle_exit_are_never_lost() -> None:
    """Submissions timed around the idle timeout: every future still completes."""

    async def scenario() -> None:
        worker = ReaderWorker(idle_s=0.001)
        loop = asyncio.get_running_loop()
        for i in range(300):
            lock = asyncio.Lock()
            await lock.acquire()
            assert await asyncio.wait_for(worker.submit(loop, lambda i=i: i, lock.release), 5) == i
            if i % 3 == 0:
                time.sleep(0.001)  # let the thread reach its idle decision now and then
        worker.stop()

    asyncio.run(scenario())


# =========================================================================== reader slots


class CountingCard(CardWrapper):
    """A simulated card that notes how many commands run on it at once (must stay 1)."""

    def __init__(self, card: Any, delay: float) -> None:
        super().__init__(card)
        self.delay = delay
        self.active = self.most = 0
        self._lock = threading.Lock()

    def execute(self, apdu: bytes) -> bytes:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.delay)
            return super().execute(apdu)
        finally:
            with self._lock:
                self.active -= 1


def reader_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sscard-reader-")}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read(service: ServiceThread, reader: str | int) -> int:
    headers = {"Origin": ORIGIN, "X-SSCard-Request": "1"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as c:
        code: int = c.post("/v1/card/read", json={"reader": reader}).json()["code"]
        return code


def config(tmp_path: Path) -> ServeConfig:
    return ServeConfig(
        keys="test", audit_db=tmp_path / "audit.sqlite3", rate_per_s=1000, rate_burst=1000
    ).with_origins([ORIGIN])


def test_readers_that_come_and_go_leave_no_lock_and_no_thread(tmp_path: Path) -> None:
    sim = SimBackend([])
    service = ReaderService(config(tmp_path), sim)
    before = reader_threads()
    with ServiceThread(service) as running:
        for i in range(25):
            name = f"usb reader {i:02d}"
            sim.plug(name)
            sim.insert(name, build_card(new_card("anhui", generation=3, seed=i)))
            assert read(running, name) == 0
            assert name in service._slots
            sim.unplug(name)
            assert wait_until(lambda name=name: name not in service._slots), name
        assert wait_until(lambda: not reader_threads() - before), reader_threads() - before
        assert service._slots == {}


def test_a_reader_unplugged_mid_operation_keeps_one_lock_until_every_request_is_done(
    tmp_path: Path,
) -> None:
    """Reads racing an unplug and a re-plug of the same reader: the slot (its lock) stays
    while any request holds or waits for it, so the card never has two sessions at once;
    once all are done and the reader is gone, the slot is dropped."""
    name = "usb reader"
    sim = SimBackend([])
    service = ReaderService(config(tmp_path), sim)
    card = CountingCard(build_card(new_card("jiangsu", generation=3, seed=5)), 0.01)
    with ServiceThread(service) as running:
        sim.plug(name)
        sim.insert(name, card)  # type: ignore[arg-type]
        codes: list[int] = []
        threads = [
            threading.Thread(target=lambda: codes.append(read(running, name))) for _ in range(6)
        ]
        for i, t in enumerate(threads):
            t.start()
            if i == 2:
                time.sleep(0.05)
                sim.unplug(name)  # mid-operation, others waiting
                sim.plug(name)
                sim.insert(name, card)  # type: ignore[arg-type]
        for t in threads:
            t.join()
        assert card.most == 1, "two operations on one card at once"
        # The unplugged reader's running read finishes on its open connection; a request
        # that opened the reader in the moment it was gone gets no reader (−11) or no
        # card (−2), never busy: the bound (10 s) is far off.
        assert len(codes) == 6 and set(codes) <= {0, -11, -2}, codes
        assert codes.count(0) >= 5
        sim.unplug(name)
        assert wait_until(lambda: name not in service._slots)


def test_a_request_waiting_on_an_unplugged_reader_keeps_its_slot_when_the_holder_releases(
    tmp_path: Path,
) -> None:
    """The moment between the holder's release and the waiter taking the lock, the lock
    looks free; the slot must stay (a new request would otherwise get a second lock and
    share the card with the waiter). Deterministic: the release runs in the loop."""

    async def scenario() -> None:
        sim = SimBackend([READER])
        sim.insert(READER, build_card(new_card("anhui", generation=3, seed=4)))
        service = ReaderService(config(tmp_path), sim)
        service.hub.readers[READER] = ReaderInfo(READER, "card")  # as the events say
        gate = threading.Event()

        def holding(conn: Any, keys: Any) -> str:
            gate.wait(5)
            return "first"

        first = asyncio.create_task(service.card_op(READER, holding))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(service.card_op(READER, lambda conn, keys: "second"))
        await asyncio.sleep(0.05)
        slot = service._slots[READER]
        assert slot.users == 2 and slot.lock.locked()
        service.hub.readers.pop(READER)
        service.reader_event("reader-gone", READER)  # unplugged while both hold or wait
        assert service._slots.get(READER) is slot
        gate.set()
        assert await first == "first"
        assert service._slots.get(READER) is slot  # the waiter still counts
        assert await asyncio.wait_for(second, 5) == "second"
        assert READER not in service._slots and slot.users == 0  # now it goes

    asyncio.run(scenario())


class SlowListing(SimBackend):
    """Readers listed slowly (pcscd busy, a context being set up)."""

    def list_readers(self) -> list[ReaderInfo]:
        found = super().list_readers()
        time.sleep(0.5)
        return found


def test_a_reader_unplugged_while_a_request_looks_it_up_leaves_no_slot(tmp_path: Path) -> None:
    sim = SlowListing([])
    service = ReaderService(config(tmp_path), sim)
    with ServiceThread(service) as running:
        for i in range(3):
            name = f"usb reader {i}"
            sim.plug(name)
            sim.insert(name, build_card(new_card("zhejiang", generation=3, seed=i)))
            assert wait_until(lambda name=name: name in service.hub.readers)
            codes: list[int] = []
            # by index: the service asks the backend for the list (slow), not the events
            t = threading.Thread(target=lambda codes=codes: codes.append(read(running, 0)))
            t.start()
            time.sleep(0.15)
            sim.unplug(name)  # the reader-gone event comes before the request's slot
            t.join()
            assert codes == [-11]  # no reader: found in the stale list, gone at open
        assert service.stats["card_ops"] == 3  # each got as far as the reader's slot
        assert wait_until(lambda: not service._slots), service._slots


def test_a_socket_closed_with_reads_waiting_cancels_them(tmp_path: Path) -> None:
    """A page that goes away takes its waiting reads with it: they never touch the card,
    the reader's count of users goes back to 0, and the slot can go."""
    sim = SimBackend([READER])
    card = CountingCard(build_card(new_card("jiangsu", generation=3, seed=6)), 0.02)
    sim.insert(READER, card)  # type: ignore[arg-type]
    service = ReaderService(config(tmp_path), sim)
    with ServiceThread(service) as running:
        url = running.url.replace("http", "ws") + "/v1/events"
        with connect(url, origin=ORIGIN) as ws:  # type: ignore[arg-type]
            ws.recv()  # hello
            for i in range(8):
                ws.send(json.dumps({"type": "read", "id": i}))
            assert wait_until(
                lambda: READER in service._slots and service._slots[READER].users == 8
            )
            slot = service._slots[READER]
        assert wait_until(lambda: slot.users == 0)  # closed: the waiting reads are cancelled
        assert service.stats["card_ops"] <= 2  # the one on the card (and at most the next)
        sim.unplug(READER)
        assert wait_until(lambda: READER not in service._slots)
    assert card.most == 1
