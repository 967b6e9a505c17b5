"""Single use across processes: two verifiers sharing one replay-cache file.

Two real processes (spawned, so nothing is shared but the SQLite file) scan the same
codes at the same moment; for every code exactly one of them may accept it.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sscard.applets.ecard import EcardVerifier, TrustStore
from sscard.services.replay_cache import ReplayCache, ReplayCacheError
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey, write_trust_store

T0 = 1_800_000_000
CARD = bytes.fromhex("330100D156000005011BA293AA4B9E55")
SSN = "11010519491231002X"
CODES = 40


def _scan(
    trust: str, cache: str, payloads: list[str], start: object, out: object
) -> None:  # runs in a child process
    verifier = EcardVerifier(TrustStore.load(trust), ReplayCache(cache), clock=lambda: T0 + 1)
    start.wait()  # type: ignore[attr-defined]
    out.put([verifier.verify(p).reason for p in payloads])  # type: ignore[attr-defined]


def test_two_processes_one_success_per_code(tmp_path: Path) -> None:
    key = IssuerKey.generate()
    write_trust_store(tmp_path / "trust.json", [key])
    issuer = EcardIssuer(key)
    payloads = [issuer.issue(CARD, SSN, issued_at=T0).encode() for _ in range(CODES)]
    cache = str(tmp_path / "replay.sqlite3")

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_scan, args=(str(tmp_path / "trust.json"), cache, payloads, start, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    for i in range(CODES):
        assert sorted(r[i] for r in results) == ["ok", "replayed"], i
    # And a third scan, in this process, is refused too.
    with ReplayCache(cache) as shared:
        assert len(shared) == CODES
        verifier = EcardVerifier(TrustStore.load(tmp_path / "trust.json"), shared, clock=lambda: T0)
        assert verifier.verify(payloads[0]).reason == "replayed"


def test_cache_consume_and_expiry(tmp_path: Path) -> None:
    with ReplayCache(tmp_path / "r.sqlite3") as cache:
        kid, nonce = b"\x01\x02\x03\x04", b"\x00" * 8
        assert cache.consume(kid, nonce, expires_at=100, now=0)
        assert not cache.consume(kid, nonce, expires_at=100, now=99)
        assert cache.consume(b"\x09\x02\x03\x04", nonce, expires_at=100, now=99)  # other issuer
        # After expiry the entry is gone (the verifier rejects such a token as expired anyway).
        assert cache.consume(kid, nonce, expires_at=300, now=101)
        assert len(cache) == 1  # the two entries that expired at 100 went with that write
        assert cache.purge(now=1000) == 1 and len(cache) == 0
    with ReplayCache(tmp_path / "r.sqlite3") as again:
        assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unopenable_cache_is_typed_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(ReplayCacheError):
        ReplayCache(tmp_path / "dir.sqlite3")
