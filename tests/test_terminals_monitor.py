"""CardMonitor through the private pcscd: insert/remove, pcscd restart, prompt close."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterable

import pytest
from pcsc_harness import T1_ATR, PcscdControl, TestCard, VirtualReader

from sscard.terminals.monitor import CardEvent, CardMonitor

pytestmark = pytest.mark.pcsc


def wait_for(
    events: Callable[[float], CardEvent | None],
    want: Callable[[CardEvent], bool],
    timeout: float = 6.0,
) -> list[CardEvent]:
    """Events up to and including the first one ``want`` accepts (bounded)."""
    seen: list[CardEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = events(0.5)
        if event is not None:
            seen.append(event)
            if want(event):
                return seen
    raise AssertionError(f"event not seen in {timeout} s; got {[str(e) for e in seen]}")


def kinds(events: Iterable[CardEvent], reader: str | None = None) -> list[str]:
    return [e.kind for e in events if reader is None or e.reader in (None, reader)]


def test_insert_eject_reinsert(vreader: VirtualReader) -> None:
    with CardMonitor(readers=["sscard test VPCD"]) as monitor:
        start = wait_for(monitor.get, lambda e: e.reader == vreader.name)
        assert start[-1].kind == "reader-added"
        vreader.bridge.insert(TestCard(t0=False))
        seen = wait_for(monitor.get, lambda e: e.kind == "inserted")
        assert seen[-1].reader == vreader.name and seen[-1].atr == T1_ATR
        vreader.bridge.eject()
        assert wait_for(monitor.get, lambda e: e.kind == "removed")[-1].reader == vreader.name
        vreader.bridge.insert(TestCard(t0=False))
        assert wait_for(monitor.get, lambda e: e.kind == "inserted")[-1].reader == vreader.name


def test_monitor_survives_pcscd_kill_and_restart(
    vreader: VirtualReader, pcscd_control: PcscdControl
) -> None:
    vreader.insert(TestCard(t0=False))
    monitor = CardMonitor(readers=[vreader.name], poll=0.5)
    received: queue.Queue[CardEvent] = queue.Queue()

    def loop() -> None:  # the application's blocking iterator, in its own thread
        for event in monitor:
            received.put(event)

    def next_event(timeout: float) -> CardEvent | None:
        try:
            return received.get(timeout=timeout)
        except queue.Empty:
            return None

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        wait_for(next_event, lambda e: e.kind == "inserted")
        pcscd_control.kill()
        lost = wait_for(next_event, lambda e: e.kind == "reader-gone")
        assert kinds(lost) == ["error", "removed", "reader-gone"], [str(e) for e in lost]
        assert "pcscd" in lost[0].message
        pcscd_control.start()
        back = wait_for(next_event, lambda e: e.kind == "inserted", timeout=10)
        assert kinds(back) == ["recovered", "reader-added", "inserted"]
        assert back[-1].reader == vreader.name
    finally:
        started = time.monotonic()
        monitor.close()
        worker.join(5)
    assert not worker.is_alive() and time.monotonic() - started < 2.0


def test_close_wakes_a_blocked_wait_promptly(pcscd: object) -> None:
    monitor = CardMonitor(poll=30.0, initial=False)
    done = threading.Event()

    def block() -> None:
        while monitor.get(30.0) is not None:
            pass
        done.set()

    worker = threading.Thread(target=block)
    worker.start()
    time.sleep(0.3)  # let it enter SCardGetStatusChange (the point of this test)
    started = time.monotonic()
    monitor.close()
    assert done.wait(2.0), "close() did not wake the blocked wait"
    worker.join(2)
    assert time.monotonic() - started < 1.0


def test_async_generator(vreader: VirtualReader) -> None:
    async def first_insertion(monitor: CardMonitor) -> CardEvent:
        async for event in monitor.events():
            if event.kind == "inserted":
                return event
        raise AssertionError("monitor closed")

    async def main() -> CardEvent:
        with CardMonitor(readers=[vreader.name], poll=0.3) as monitor:
            task = asyncio.ensure_future(first_insertion(monitor))
            await asyncio.sleep(0.1)
            vreader.bridge.insert(TestCard(t0=False))
            return await asyncio.wait_for(task, 6.0)

    event = asyncio.run(main())
    assert event.reader == vreader.name and event.as_dict()["atr"] == T1_ATR.hex().upper()
