"""A reader's worker thread: operations in order, none lost, no idle thread left behind."""

from __future__ import annotations

import asyncio
import threading
import time

from sscard.serve.app import ReaderWorker


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
            results.append(await worker.submit(loop, lambda i=i: op(i), lock))
        assert results == [i * i for i in range(20)] and seen == list(range(20))
        assert len(threads) == 1 and worker.alive

        deadline = time.monotonic() + 5
        while worker.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not worker.alive  # ended after idle_s without work

        await lock.acquire()
        assert await worker.submit(loop, lambda: op(99), lock) == 99 * 99
        assert worker.alive and len(threads) == 2  # a fresh thread took it
        assert not lock.locked()  # released by the worker when the operation ended
        worker.stop()

    asyncio.run(scenario())


def test_submissions_racing_the_idle_exit_are_never_lost() -> None:
    """Submissions timed around the idle timeout: every future still completes."""

    async def scenario() -> None:
        worker = ReaderWorker(idle_s=0.001)
        loop = asyncio.get_running_loop()
        for i in range(300):
            lock = asyncio.Lock()
            await lock.acquire()
            assert await asyncio.wait_for(worker.submit(loop, lambda i=i: i, lock), 5) == i
            if i % 3 == 0:
                time.sleep(0.001)  # let the thread reach its idle decision now and then
        worker.stop()

    asyncio.run(scenario())
