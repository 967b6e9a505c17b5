"""e-SSC QR verifications per second: the default SM2 backend against pure Python.

One verification is the whole offline path of the sscard e-SSC profile
(reference part C, "sscard profile", e-SSC row): base64url decode, trust-store lookup,
SM2/SM3 signature check, time window, and an insert into the SQLite replay cache.
Every token is fresh (a replayed one would stop before the signature check), so the
tokens are signed up front and each backend verifies a fixed batch of them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.timing import rate, row
from sscard.applets.ecard import EcardVerifier, TrustStore, read_qr_image
from sscard.crypto import PurePythonSm2, Sm2Backend, default_backend
from sscard.errors import DependencyMissing
from sscard.services.replay_cache import ReplayCache
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey, write_qr_png

CARD = bytes.fromhex("330100D156000005011BA293AA4B9E55")
SSN = "11010519491231002X"
WARMUP = 20


def _verify_rate(backend: Sm2Backend, issuer: EcardIssuer, workdir: Path, count: int) -> float:
    now = int(time.time())
    payloads = [issuer.issue(CARD, SSN, issued_at=now).encode() for _ in range(WARMUP + count)]
    key = issuer.key
    with ReplayCache(workdir / f"replay-{backend.name}.sqlite3") as cache:
        verifier = EcardVerifier(
            TrustStore({key.key_id: key.public_key}), cache, clock=lambda: now, backend=backend
        )
        for p in payloads[:WARMUP]:
            verifier.verify(p)
        start = time.perf_counter()
        for p in payloads[WARMUP:]:
            if not verifier.verify(p).accepted:
                raise AssertionError("benchmark token rejected")
        return count / (time.perf_counter() - start)


def run() -> list[dict[str, Any]]:
    default = default_backend()
    issuer = EcardIssuer(IssuerKey.generate())  # default backend signs; signing is not measured
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fast = _verify_rate(default, issuer, work, count=1500)
        pure = _verify_rate(PurePythonSm2(), issuer, work, count=300)
        rows.append(
            row(
                f"e-SSC QR verify ({default.name}, SQLite replay cache)",
                "verifications/s",
                fast,
                "pure-Python SM2",
                pure,
                target="informative (a gate needs ~1/s)",
            )
        )
        png = work / "qr.png"
        try:
            write_qr_png(issuer.issue(CARD, SSN).encode(), png)
            read_qr_image(png)
        except DependencyMissing:
            return rows  # no QR image libraries here: the verify row is the one that counts
        rows.append(
            row(
                "QR PNG decode (zxing-cpp + Pillow)",
                "images/s",
                rate(lambda: read_qr_image(png), seconds=0.5, batch=10),
                target="informative",
            )
        )
    return rows
