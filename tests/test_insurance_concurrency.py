"""1,000 settlements from 8 threads over HTTP: no duplicate, totals balanced.

Two insured persons share the 8 visits, so their personal accounts are
contended; the Shanghai one runs dry part-way (§M1.3,
§M1.5).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sscard.services.insurance import (
    ClientConfig,
    FeeItem,
    FeeUploadRequest,
    InsuranceClient,
    PersonInfoRequest,
    PlatformError,
    RegisterRequest,
    SettleConfirmRequest,
    split_fee_upload,
)
from sscard.simulators.insurance_platform import InsurancePlatform

THREADS, PER_THREAD = 8, 125
PEOPLE = {  # certno: (insured area, opening balance)
    "340104199001010011": ("340100", Decimal("100000.00")),
    "310104198505050022": ("310000", Decimal("2000.00")),
}
PRICE = Decimal("10.00")


@pytest.mark.slow
def test_thousand_settlements_from_eight_threads(tmp_path: Path) -> None:
    with InsurancePlatform(tmp_path / "ledger.db") as platform:
        for certno, (area, balance) in PEOPLE.items():
            psn_no = platform.add_person(certno, "测试", "1", "1990-01-01", area, "310", balance)
            platform.add_filing(psn_no, area, "310000", date.today(), date(2099, 1, 1))
        config = ClientConfig(platform.url, "H31010400001", "desk", "310000", timeout=10)
        with InsuranceClient(config, tmp_path / "outbox.db") as client:
            requests = [_visit(client, t) for t in range(THREADS)]
            errors: list[BaseException] = []

            def worker(batch: list[SettleConfirmRequest]) -> None:
                try:
                    for request in batch:
                        client.settle(request)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=worker, args=(r,)) for r in requests]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []

            ledger = platform.ledger.settlements("settled")
            assert len(ledger) == THREADS * PER_THREAD
            assert len({s["setl_id"] for s in ledger}) == len(ledger)
            done = client.outbox.rows(infno="2207", states=("done",))
            assert {r.msgid for r in done} == {s["medins_setl_id"] for s in ledger}

            # Personal accounts: opening − closing = what the outbox says was paid.
            paid: Counter[str] = Counter()
            for s in ledger:
                info = s["setlinfo"]
                total = info["fund_pay_sumamt"] + info["acct_pay"] + info["psn_cash_pay"]
                assert total == info["medfee_sumamt"]
                paid[s["psn_no"]] += info["acct_pay"]
            for row in done:
                assert row.response is not None
                assert row.response["output"]["setlinfo"]["acct_pay"] >= 0
            for certno, (_area, opening) in PEOPLE.items():
                psn_no = client.person_info(PersonInfoRequest("02", certno)).psn_no
                closing = platform.balance(psn_no)
                assert closing >= 0 and opening - closing == paid[psn_no]
            assert platform.balance(
                client.person_info(PersonInfoRequest("02", "310104198505050022")).psn_no
            ) == Decimal("0.00")  # ran dry; never negative

            # A second settlement of the same batch finds nothing to settle.
            with pytest.raises(PlatformError, match="no unsettled"):
                client.settle(requests[0][0])
            report = client.reconcile(date.today())
            assert report.balanced, report.differences
            assert report.local.count == THREADS * PER_THREAD
            assert report.local.medfee_sumamt == PRICE * THREADS * PER_THREAD


def _visit(client: InsuranceClient, index: int) -> list[SettleConfirmRequest]:
    """Register one visit with PER_THREAD fee batches; one 2207 per batch."""
    certno = list(PEOPLE)[index % len(PEOPLE)]
    person = client.person_info(PersonInfoRequest("02", certno))
    area = person.insuplc_admdvs
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    reg = client.register(
        RegisterRequest(person.psn_no, "310", area, stamp, "02", certno, f"OTP-{index}")
    )
    items = tuple(
        FeeItem(f"{k}", "XA01", "H-1", PRICE, Decimal(1), PRICE, chrg_bchno=f"B{k:04d}")
        for k in range(PER_THREAD)
    )
    upload = FeeUploadRequest(reg.mdtrt_id, person.psn_no, area, "", stamp, items)
    for part in split_fee_upload(upload):  # each input under 40,000 characters (§1.7)
        client.upload_fees(part)
    return [
        SettleConfirmRequest(
            person.psn_no,
            area,
            "02",
            certno,
            "11",
            PRICE,
            reg.mdtrt_id,
            f"B{k:04d}",
            "310",
            acct_used_flag="1",
        )
        for k in range(PER_THREAD)
    ]
