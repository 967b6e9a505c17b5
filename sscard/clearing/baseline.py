"""The clearing rules as a plain Python loop: the benchmark's baseline, and a third opinion.

Why keep it: it is the profile written the obvious way (a dict per rule, one
:func:`sscard.crypto.purse.purchase_tac` per row, card keys cached per card as the
fast engines do), so the benchmark shows what vectorising buys, and the tests
compare it with DuckDB and Spark row by row: a bug in the shared SQL or in the
numpy checks would have to be made twice, differently, to go unseen.
"""

from __future__ import annotations

import calendar
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from sscard.clearing.engines import EngineOutput, _finish, check_clashes, read_uploads
from sscard.clearing.keys import FAMILY_OF_ALG, IssuerKeyProvider
from sscard.clearing.schema import CONTENT_NAMES, GREY_EXPIRY_DAYS, INPUT_NAMES
from sscard.crypto import purse as pc

_HEX = frozenset("0123456789ABCDEF")
_OK, _BAD, _NO_KEY = 0, 1, 9


def _hex(value: Any, width: int) -> bool:
    return isinstance(value, str) and len(value) == width and all(c in _HEX for c in value)


def _time_ok(text: Any) -> bool:
    if not (isinstance(text, str) and len(text) == 14 and text.isascii() and text.isdigit()):
        return False
    y, mo, d = int(text[:4]), int(text[4:6]), int(text[6:8])
    h, mi, s = int(text[8:10]), int(text[10:12]), int(text[12:14])
    if y < 2000 or not 1 <= mo <= 12:
        return False
    return 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24 and mi < 60 and s < 60


def _in(value: Any, lo: int, hi: int) -> bool:
    return value is not None and lo <= value <= hi


def _order_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """Receipt order (the SQL's ORDER)."""
    return (row["upload_date"], row["file_id"], row["line_no"])


class _Tacs:
    """Per-row TAC checks with the card's DTK cached per card."""

    def __init__(self, provider: IssuerKeyProvider) -> None:
        self.provider = provider
        self.dtk: dict[tuple[str, str, int, str], bytes | None] = {}

    def check(self, row: dict[str, Any], tac: str) -> int:
        ver = row["key_ver"]
        ver = -1 if ver is None else ver
        algs = [row["alg_id"]] if row["alg_id"] is not None else [0, 4]
        answer = _NO_KEY
        for alg in algs:
            family = FAMILY_OF_ALG[alg]
            key = (row["issuer_id"], family, ver, row["asn"])
            if key not in self.dtk:
                master = self.provider.tac_master(
                    row["issuer_id"], family, None if ver < 0 else ver
                )
                self.dtk[key] = (
                    None
                    if master is None
                    else pc.diversify2(
                        master, bytes.fromhex(row["issuer_id"]), bytes.fromhex(row["asn"])[2:], alg
                    )
                )
            dtk = self.dtk[key]
            if dtk is None:
                continue
            mine = pc.purchase_tac(
                dtk,
                amount=row["amount"],
                txn_type=row["tx_type"],
                terminal_id=bytes.fromhex(row["term_id"]),
                terminal_seq=row["term_seq"],
                date_time=bytes.fromhex(row["tx_time"]),
                algorithm=alg,
            )
            if mine == bytes.fromhex(tac):
                return _OK
            answer = _BAD
        return answer


def _check(row: dict[str, Any], tacs: _Tacs) -> int:
    iss = row["issuer_id"]
    valid = (
        _hex(iss, 16)
        and _hex(row["city_code"], 4)
        and _hex(row["asn"], 20)
        and _hex(row["term_id"], 12)
        and row["city_code"] == iss[4:8]
        and _in(row["card_ctr"], 0, 0xFFFF)
        and _in(row["amount"], 0, 0xFFFFFFFF)
        and row["tx_type"] in (6, 9)
        and _in(row["term_seq"], 0, 0xFFFFFFFF)
        and row["alg_id"] in (None, -1, 0, 4)
        and (row["key_ver"] is None or -1 <= row["key_ver"] <= 0xFF)
        and (bool(row["grey"]) or _hex(row["tac"], 8))
    )
    if not valid:
        return 2
    if not _time_ok(row["tx_time"]):
        return 7
    if not tacs.provider.knows(iss):
        return 9
    if row["alg_id"] == -1:
        row = {**row, "alg_id": None}
    if row["grey"]:
        proof = row["proof_tac"]
        return 11 if _hex(proof, 8) and tacs.check(row, proof) == _OK else 0
    return {_OK: 0, _BAD: 1, _NO_KEY: 9}[tacs.check(row, row["tac"])]


def run_python(
    paths: list[Path], provider: IssuerKeyProvider, as_of: date, progress: Callable[[str], None]
) -> EngineOutput:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    rows = read_uploads(paths).to_pylist()
    timings["load"] = time.perf_counter() - t
    progress(f"read {len(rows):,} rows from {len(paths)} files")
    t = time.perf_counter()
    tacs = _Tacs(provider)
    for i, row in enumerate(rows, 1):
        row["chk"] = _check(row, tacs)
        if i % 100_000 == 0:
            progress(f"verified {i:,} rows")
    timings["verify"] = time.perf_counter() - t
    t = time.perf_counter()
    rows.sort(key=_order_key)

    # Copies, own checks, then conflicts (sql.py steps 1-3).
    seen: set[tuple[Any, ...]] = set()
    codes = {0: None, 1: "01", 2: "02", 7: "07", 9: "09", 11: None}
    for row in rows:
        content = tuple(row[c] for c in CONTENT_NAMES)
        row["pre"] = "03" if content in seen else codes[row["chk"]]
        seen.add(content)
    first: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        if row["pre"] != "03":
            first[row["file_id"], row["line_no"]] += 1
    check_clashes(sorted(k for k, n in first.items() if n > 1)[:5])
    held_t: set[tuple[Any, ...]] = set()
    held_c: set[tuple[Any, ...]] = set()
    for row in sorted(rows, key=lambda r: (bool(r["grey"]), _order_key(r))):
        if row["pre"] is not None:
            row["code1"] = row["pre"]
            continue
        kt = (row["term_id"], row["term_seq"])
        kc = (row["asn"], row["card_ctr"])
        conflict = kt in held_t or (not row["grey"] and kc in held_c)
        held_t.add(kt)
        if not row["grey"]:
            held_c.add(kc)
        row["code1"] = "13" if conflict else ("G" if row["grey"] else "10")

    # Grey rows (sql.py step 4).
    evidence: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["code1"] in ("10", "G"):
            evidence[row["asn"], row["card_ctr"]].append(row)
    expiry_cut = as_of - timedelta(days=GREY_EXPIRY_DAYS)
    for row in rows:
        row["grey_rule"] = None
        row["settle_date"] = row["upload_date"]
        if row["code1"] != "G":
            row["reason"] = row["code1"]
            continue
        n = row["card_ctr"]
        nxt = evidence.get((row["asn"], (n + 1) % 65536), [])
        me = (row["file_id"], row["line_no"])
        same = [e for e in evidence.get((row["asn"], n), []) if (e["file_id"], e["line_no"]) != me]
        prev_any = any(e["prev_ctr"] == n and e["prev_type"] in (6, 9) for e in nxt)
        prev_this = any(
            e["prev_ctr"] == n
            and e["prev_type"] == row["tx_type"]
            and e["prev_amount"] == row["amount"]
            and e["prev_term"] == row["term_id"]
            and e["prev_time"] == row["tx_time"]
            for e in nxt
        )
        paid_same = [e for e in same if not e["grey"]]
        bal_next = any(e["bal_before"] == row["bal_before"] - row["amount"] for e in nxt)
        if row["chk"] == 11:
            rule, reason = 1, "11"
        elif prev_any:
            rule, reason = 2, "11" if prev_this else "12"
        elif paid_same:
            rule, reason = 3, "12"
        elif not same and bal_next:
            rule, reason = 4, "11"
        else:
            rule, reason = 5, "14" if row["upload_date"] < expiry_cut else "04"
        row["reason"] = reason
        if rule in (2, 4):
            row["settle_date"] = max(row["upload_date"], min(e["upload_date"] for e in nxt))
        elif rule == 3:
            row["settle_date"] = max(row["upload_date"], min(e["upload_date"] for e in paid_same))
        row["grey_rule"] = rule if rule <= 4 else None

    # Netting and gaps.
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    seqs: dict[str, set[int]] = defaultdict(set)
    ctrs: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        acc = totals[row["settle_date"], row["city_code"], row["acquirer_id"]]
        if row["reason"] in ("10", "11"):
            acc[0] += 1
            acc[1] += row["amount"]
        elif row["reason"] != "03":
            acc[2] += 1
            acc[3] += row["amount"]
        if row["reason"] not in ("02", "07", "03"):
            seqs[row["term_id"]].add(row["term_seq"])
            if row["reason"] != "12":
                ctrs[row["asn"]].add(row["card_ctr"])
    settlement = [
        dict(zip(("clear_date", "issuer_city", "acquirer_id"), k, strict=True))
        | dict(zip(("n_paid", "gross_fen", "n_refused", "refused_fen"), v, strict=True))
        for k, v in sorted(totals.items())
    ]
    gaps = []
    for kind, numbers in (("card", ctrs), ("terminal", seqs)):
        for key in sorted(numbers):
            values = sorted(numbers[key])
            for a, b in itertools.pairwise(values):
                if b > a + 1:
                    gaps.append(
                        {
                            "kind": kind,
                            "gap_key": key,
                            "first_missing": a + 1,
                            "last_missing": b - 1,
                        }
                    )
    timings["settle"] = time.perf_counter() - t
    names = [*INPUT_NAMES, "reason", "settle_date", "grey_rule"]
    rows.sort(key=lambda r: (*_order_key(r), r["reason"]))
    from sscard.clearing.engines import GAPS_SCHEMA, SETTLEMENT_SCHEMA
    from sscard.clearing.schema import result_schema

    result = pa.Table.from_pylist([{k: r[k] for k in names} for r in rows], schema=result_schema())

    return _finish(
        result,
        pa.Table.from_pylist(settlement, schema=SETTLEMENT_SCHEMA),
        pa.Table.from_pylist(gaps, schema=GAPS_SCHEMA),
        timings,
    )
