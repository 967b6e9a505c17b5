"""Settlements per second over HTTP on loopback, with p50 / p99 latency.

Each 2207 goes through the full client path: outbox row committed with
``synchronous=FULL`` before sending (the one fsync per settlement), HTTP round
trip, simulated platform ledger transaction, outbox update (committed without a
sync of its own, see outbox.py). Fee details are uploaded in 2204s under the
40,000-character ``input`` limit. The baseline is a bare HTTP round trip
of a 9001 sign-in to the same server (no client, no outbox), so the ratio
shows what durability and the settlement logic cost.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.timing import median, percentile, row
from sscard.services.insurance import (
    ClientConfig,
    FeeItem,
    FeeUploadRequest,
    InsuranceClient,
    PersonInfoRequest,
    RegisterRequest,
    SettleConfirmRequest,
    split_fee_upload,
)
from sscard.simulators.insurance_platform import InsurancePlatform

CODE = "H31010400001"
BARE_CODE = "H31010400002"  # another institution: its msgids never meet the client's
CERTNO = "340104199001010011"  # test identity
SETTLEMENTS = 300
THREADS = 8
#: Each rate is the median of this many rounds: one round takes ~1.5 s, and one
#: fsync per settlement makes a single round swing with the disk's mood.
ROUNDS = 3


def _bare_sign_ins(url: str, count: int, offset: int = 0) -> list[float]:
    """Seconds per raw 9001 round trip (new connection each, like the client)."""
    parts = urlsplit(url)
    latencies = []
    for i in range(offset, offset + count):
        envelope = {
            "infno": "9001",
            "msgid": f"{BARE_CODE}{datetime.now():%Y%m%d%H%M%S}{i % 10000:04d}",
            "fixmedins_code": BARE_CODE,
            "mdtrtarea_admvs": "310000",
            "input": {"signIn": {"opter_no": f"bench-{i}"}},
        }
        body = json.dumps(envelope).encode()
        start = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        conn.close()
        latencies.append(time.perf_counter() - start)
    return latencies


def _batches(client: InsuranceClient, tag: str, count: int) -> list[SettleConfirmRequest]:
    person = client.person_info(PersonInfoRequest("02", CERTNO))
    area = person.insuplc_admdvs
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    reg = client.register(
        RegisterRequest(person.psn_no, "310", area, stamp, "02", CERTNO, f"BENCH-{tag}")
    )
    price = Decimal("10.00")
    for start in range(0, count, 200):
        items = tuple(
            FeeItem(str(k), "XA01", "H-1", price, Decimal(1), price, chrg_bchno=f"B{k:05d}")
            for k in range(start, min(count, start + 200))
        )
        upload = FeeUploadRequest(reg.mdtrt_id, person.psn_no, area, "", stamp, items)
        for part in split_fee_upload(upload):  # each input under 40,000 characters
            client.upload_fees(part)
    return [
        SettleConfirmRequest(
            person.psn_no,
            area,
            "02",
            CERTNO,
            "11",
            price,
            reg.mdtrt_id,
            f"B{k:05d}",
            "310",
            acct_used_flag="1",
        )
        for k in range(count)
    ]


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-insurance-") as tmp:
        root = Path(tmp)
        with InsurancePlatform(root / "ledger.db") as platform:
            psn_no = platform.add_person(CERTNO, "测试", "1", "1990-01-01", "340100", "310", "1e6")
            platform.add_filing(psn_no, "340100", "310000", date.today(), date(2099, 1, 1))
            _bare_sign_ins(platform.url, 30, offset=9000)  # warm-up
            bare = _bare_sign_ins(platform.url, SETTLEMENTS)
            config = ClientConfig(platform.url, CODE, "bench", "310000", timeout=10)
            with InsuranceClient(config, root / "outbox.db") as client:
                for request in _batches(client, "warm-up", 20):
                    client.settle(request)
                latencies: list[float] = []
                serial_rates, parallel_rates = [], []
                for r in range(ROUNDS):
                    requests = _batches(client, f"serial{r}", SETTLEMENTS)
                    start = time.perf_counter()
                    for request in requests:
                        t0 = time.perf_counter()
                        client.settle(request)
                        latencies.append(time.perf_counter() - t0)
                    serial_rates.append(SETTLEMENTS / (time.perf_counter() - start))

                    per_thread = SETTLEMENTS // THREADS + 1
                    groups = [_batches(client, f"t{r}-{t}", per_thread) for t in range(THREADS)]
                    threads = [
                        threading.Thread(target=lambda g=g: [client.settle(q) for q in g])
                        for g in groups
                    ]
                    start = time.perf_counter()
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    parallel_rates.append(THREADS * per_thread / (time.perf_counter() - start))
                serial_rate, parallel_rate = median(serial_rates), median(parallel_rates)

    bare_rate = len(bare) / sum(bare)
    ms = [x * 1000.0 for x in latencies]
    bare_ms = [x * 1000.0 for x in bare]
    base = "insurance.bare_9001_roundtrip"
    return [
        row("insurance.settle_2207", "settlements/s", serial_rate, base, bare_rate,
            target=">= 200/s"),
        row("insurance.settle_2207.p50", "ms", median(ms), base + ".p50", median(bare_ms)),
        row("insurance.settle_2207.p99", "ms", percentile(ms, 99), base + ".p99",
            percentile(bare_ms, 99), target="<= 50 ms"),
        row(f"insurance.settle_2207.{THREADS}_threads", "settlements/s", parallel_rate, base,
            bare_rate, target=">= 200/s"),
    ]  # fmt: skip


if __name__ == "__main__":
    for result in run():
        print(json.dumps(result))
