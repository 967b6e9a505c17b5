"""A fleet of validators over days: clearing uploads with known faults and the truth.

Why: the clearing job (:mod:`sscard.clearing`) must be tested and measured at the
volume the delta makes (tens of millions of taps a day), with faults whose every
instance is known. Tapping simulated cards one APDU at a time makes ~100 taps/s;
this generator builds the same rows column-wise with numpy instead, so a million
taps take seconds. It is faithful where clearing looks:

* cards of every delta city (issuer ID ``01 01 <city> FF..``, ASN ``0<city>..``:
  the rule of :func:`sscard.simulators.profile.new_card`; city codes from the
  T-Union table where the tree has it), 3DES and SM4 purses, real TACs under the
  simulator's TEST issuer keys (sscard/data/test-keys.json, DTK =
  Div(Div(MTK, issuer ID), ASN right 8 B); §P4.1, §P4.4);
* journeys: metro entry (0 fen) and exit, buses, bus transfers within 90 minutes,
  loads (online; they change the balance and the card's newest EF 0018 entry, not
  the offline counter); each debit takes the card's next offline counter and the
  validator's next PSAM terminal sequence, and records the card's previous EF 0018
  entry (``prev_*``), as a validator journal does;
* four uploads per validator and day (``file_id`` = terminal-day-batch), one
  Parquet file per operator and day.

Faults, each with its expected clearing outcome in the ground truth
(``truth.parquet``; docs/clearing.md): duplicate uploads (a batch sent twice: 03),
corrupted TACs (01), forged copies with a raised amount (01), conflicting copies
(other content, valid TAC: 13), lost batches (terminal sequence and card counter
gaps, ``truth-lost.parquet``), torn taps recovered by the validator (normal rows),
and grey taps the validator could not decide, in five cases: debited and shown by
the next tap's EF 0018 (11), debited and shown only by the balance chain (11),
not debited, the card re-using the counter (12), debited with a kept 805A TAC
(11), and no evidence (04, or 14 once older than 7 days).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sscard.clearing.keys import IssuerKeys, _diversify_many, cbc_mac_grouped
from sscard.clearing.schema import GREY_EXPIRY_DAYS, input_schema
from sscard.errors import ConfigError
from sscard.files import private_umask

FLEET_SCHEMA = "sscard-fleet/1"
_HEXCHARS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_DAY_START, _DAY_END = 6 * 3600, 23 * 3600  # service hours, seconds after midnight
_BATCH_HOURS = (10, 14, 18)  # four uploads a day: before 10:00, 14:00, 18:00, and the rest


@dataclass(frozen=True)
class FaultRates:
    """Shares of batches, rows or cards given each fault (see the module docstring)."""

    duplicate_batches: float = 0.005  # of batches, sent twice
    lost_batches: float = 0.004  # of interior batches (never a validator's first or last)
    corrupted_tacs: float = 0.0005  # of rows
    forged_copies: float = 0.0003  # of rows: an extra row, amount raised, TAC kept
    conflicting_copies: float = 0.0003  # of rows: an extra row, other vehicle, TAC valid
    recovered: float = 0.001  # of rows: torn, recovered by 805A: completed as usual
    grey: float = 0.001  # of cards: one grey tap

    def check(self) -> None:
        for name, value in asdict(self).items():
            if not 0 <= value <= 0.2:
                raise ConfigError(f"fault rate {name} must be 0-0.2", f"故障比例{name}应为0-0.2")


@dataclass(frozen=True)
class FleetSpec:
    validators: int
    cards: int
    days: int = 1
    taps_per_day: int | None = None  # default: 3 per card
    start: date = date(2025, 3, 3)
    seed: int = 19
    faults: FaultRates = field(default_factory=FaultRates)
    sm4_share: float = 0.25

    def check(self) -> None:
        if self.validators < 8 or self.cards < 10 or not 1 <= self.days <= 31:
            raise ConfigError(
                "a fleet needs >= 8 validators, >= 10 cards and 1-31 days",
                "车队至少需要8台验票机、10张卡，天数为1-31",
            )
        if self.taps_per_day is not None and self.taps_per_day < 10:
            raise ConfigError("taps per day must be >= 10", "每日交易笔数应不少于10")
        self.faults.check()


@dataclass
class FleetResult:
    out: Path
    rows: int  # rows written to the uploads (every copy counts)
    taps: int  # distinct taps made, lost ones included
    files: int
    seconds: float
    faults: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": self.rows,
            "taps": self.taps,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "faults": self.faults,
        }


# --------------------------------------------------------------------------- cities


@dataclass(frozen=True)
class City:
    code: str  # T-Union city code, 4 digits
    name: str
    weight: float
    metro: bool


def delta_cities() -> list[City]:
    """The delta's card-issuing cities with a rough traffic weight.

    Codes come from the T-Union city table (``sscard.cards.cities``, GB/T 13497) when
    the tree has it, else from the region table's one code per province; never typed
    in here, so the fleet follows whatever the card builder issues.
    """
    try:
        from sscard.cards.cities import all_cities  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from sscard.cards.regions import DELTA_PROVINCES

        codes = [(getattr(p, "tunion_city_code", ""), p.name_zh) for p in DELTA_PROVINCES.values()]
        return [City(c, n, 3.0, True) for c, n in codes if c]
    out = []
    for c in all_cities():
        region = getattr(c, "gb2260", "")
        if region[:2] not in ("31", "32", "33", "34"):
            continue
        capital = region[:2] == "31" or region.endswith("0100")
        weight = 8.0 if region[:2] == "31" else 3.0 if capital else 1.0
        out.append(City(c.code, c.name_zh, weight, capital))
    return out


# --------------------------------------------------------------------------- helpers


def _text(chars: np.ndarray) -> pa.Array:
    """(n, w) ASCII bytes -> an Arrow string array without a Python string per row."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8).tobytes()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _hex_chars(data: np.ndarray) -> np.ndarray:
    """(n, k) bytes -> (n, 2k) upper-case hex ASCII."""
    out = np.empty((data.shape[0], data.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = _HEXCHARS[data >> 4]
    out[:, 1::2] = _HEXCHARS[data & 0x0F]
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative ints -> (n, width) ASCII decimal digits."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = values.astype(np.int64).copy()
    for i in range(width - 1, -1, -1):
        out[:, i] = 48 + v % 10
        v //= 10
    return out


def _be(values: np.ndarray, size: int) -> np.ndarray:
    return values.astype(f">u{size}").view(np.uint8).reshape(len(values), size)


def _member(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``np.isin`` for small non-negative ints, by a lookup table."""
    size = int(max(values.max(initial=0), members.max(initial=0))) + 1
    table = np.zeros(size, dtype=bool)
    table[members] = True
    found: np.ndarray = table[values]
    return found


def _decode(indices: np.ndarray, names: list[str]) -> pa.Array:
    """``names[indices]`` as an Arrow string array (dictionary-decoded in C++)."""
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(names)).cast(
        pa.string()
    )


def _rank_in_group(group: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """0-based rank of each row within its group, by ``order_key``."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    span = int(order_key.max()) - int(order_key.min()) + 1
    order = np.argsort(group.astype(np.int64) * span + (order_key - order_key.min()), kind="stable")
    g = group[order]
    starts = np.ones(len(g), dtype=bool)
    starts[1:] = g[1:] != g[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(g)), 0))
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = np.arange(len(g)) - first
    return rank


# --------------------------------------------------------------------------- generator


def generate(
    spec: FleetSpec, out: str | os.PathLike[str], progress: Callable[[str], None] | None = None
) -> FleetResult:
    """Write a fleet (uploads, issuer keys, ground truth) to ``out``; see the module docstring.

    The directory is built under a temporary name next to ``out`` and renamed into
    place, so ``out`` is either absent or complete; an existing ``out`` is replaced
    only if it holds a fleet (its ``fleet.json``).
    """
    import time

    t0 = time.perf_counter()
    spec.check()
    say = progress or (lambda _m: None)
    target = Path(out)
    if target.exists() and not (target / "fleet.json").is_file():
        raise ConfigError(
            f"{target} exists and is not a fleet directory", f"{target}已存在且不是车队目录"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # card numbers and TEST keys: files 0600, directories 0700
        with private_umask():
            result = _build(spec, staging, say)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out = target
    result.seconds = time.perf_counter() - t0
    return result


def _build(spec: FleetSpec, out: Path, say: Callable[[str], None]) -> FleetResult:
    from sscard.simulators.keys import default_key_set

    rng = np.random.default_rng(spec.seed)
    rates = spec.faults
    cities = delta_cities()
    if not cities:
        raise ConfigError("no delta city codes available", "没有长三角城市代码")
    n_city = len(cities)
    city_w = np.array([c.weight for c in cities], dtype=float)
    city_w /= city_w.sum()
    has_metro = np.array([c.metro for c in cities])

    # ---- operators (acquirers) and validators: a bus operator per city, a metro one
    # where there is a metro; validators in proportion to traffic.
    ops: list[tuple[int, int]] = [(ci, 1) for ci in range(n_city)] + [
        (ci, 2) for ci in range(n_city) if has_metro[ci]
    ]
    op_city = np.array([o[0] for o in ops])
    op_kind = np.array([o[1] for o in ops])  # 1 bus, 2 metro
    op_w = city_w[op_city] * np.where(op_kind == 2, 0.5, np.where(has_metro[op_city], 0.5, 1.0))
    op_w /= op_w.sum()
    n_val = spec.validators
    if n_val < len(ops):
        raise ConfigError(
            f"this fleet has {len(ops)} operators: it needs at least {len(ops)} validators",
            f"该车队有{len(ops)}家运营单位，至少需要{len(ops)}台验票机",
        )
    val_op = np.concatenate([np.arange(len(ops)), rng.choice(len(ops), n_val - len(ops), p=op_w)])
    val_op.sort()
    acquirer = [f"02{k:02d}{cities[c].code}FFFFFFFF" for c, k in ops]
    val_term = [
        f"{cities[op_city[o]].code}{op_kind[o]:02d}{i:06X}" for i, o in enumerate(val_op.tolist())
    ]
    val_name = [
        f"{'METRO' if op_kind[o] == 2 else 'BUS'}-{cities[op_city[o]].code}-{i:05d}"
        for i, o in enumerate(val_op.tolist())
    ]
    val_line = [str(1 + (i * 7) % 90) for i in range(n_val)]
    val_vehicle = [
        f"{'G' if op_kind[o] == 2 else 'V'}{i:06d}" for i, o in enumerate(val_op.tolist())
    ]
    val_seq0 = rng.integers(1, 50_000, n_val)

    # ---- cards
    n_card = spec.cards
    card_city = rng.choice(n_city, n_card, p=city_w)
    card_sm4 = rng.random(n_card) < spec.sm4_share
    serial = np.arange(n_card, dtype=np.int64) * 9973 + rng.integers(0, 9973, n_card)  # unique
    asn_digits = np.concatenate(
        [
            np.full((n_card, 1), ord("0"), np.uint8),
            np.array([list(cities[c].code.encode()) for c in range(n_city)], np.uint8)[card_city],
            _digits(serial, 15),
        ],
        axis=1,
    )
    card_ctr0 = rng.integers(0, 3000, n_card)

    # ---- journeys and taps over all days
    per_day = spec.taps_per_day or 3 * n_card
    # a metro journey is two taps: size the journeys so the taps come out as asked
    metro_share = 0.55 * float((city_w * has_metro).sum())
    n_j = max(1, round(per_day * spec.days / (1 + metro_share)))
    j_card = rng.integers(0, n_card, n_j)
    away = rng.random(n_j) < 0.15
    j_city = np.where(away, rng.choice(n_city, n_j, p=city_w), card_city[j_card])
    j_metro = has_metro[j_city] & (rng.random(n_j) < 0.55)
    j_day = rng.integers(0, spec.days, n_j)
    j_t = rng.integers(_DAY_START, _DAY_END - 2 * 3600, n_j)
    reps = np.where(j_metro, 2, 1)
    t_j = np.repeat(np.arange(n_j), reps)
    second = np.zeros(len(t_j), dtype=bool)
    second[1:] = t_j[1:] == t_j[:-1]
    n = len(t_j)
    say(f"fleet: {n:,} taps, {n_card:,} cards, {n_val:,} validators, {spec.days} day(s)")
    t_card = j_card[t_j]
    t_city = j_city[t_j]
    t_metro = j_metro[t_j]
    t_time = (
        j_day[t_j].astype(np.int64) * 86400
        + j_t[t_j]
        + np.where(second, rng.integers(8 * 60, 70 * 60, n), 0)
    )
    # Order every card's taps in time (one second apart at least).
    order = np.lexsort((t_time, t_card))
    t_card, t_city, t_metro = t_card[order], t_city[order], t_metro[order]
    t_time, second, t_j = t_time[order], second[order], t_j[order]
    same_card = np.zeros(n, dtype=bool)
    same_card[1:] = t_card[1:] == t_card[:-1]
    for _ in range(3):
        clash = np.zeros(n, dtype=bool)
        clash[1:] = same_card[1:] & (t_time[1:] <= t_time[:-1])
        if not clash.any():
            break
        t_time[1:][clash[1:]] = t_time[:-1][clash[1:]] + 1
    t_day = t_time // 86400
    # Fares: metro entry 0 and exit 3-9 CNY; buses 2 CNY in big cities, else 1 or 1.50;
    # a bus within 90 minutes of the card's last tap: 1 CNY transfer discount.
    metro_fare = 300 + 100 * rng.integers(0, 7, n)
    bus_fare = np.where(has_metro[t_city], 200, np.where(rng.random(n) < 0.5, 100, 150))
    gap = np.full(n, 10**9, dtype=np.int64)
    gap[1:] = np.where(same_card[1:], t_time[1:] - t_time[:-1], 10**9)
    transfer = ~t_metro & (gap <= 90 * 60)
    amount = np.where(
        t_metro, np.where(second, metro_fare, 0), np.maximum(bus_fare - 100 * transfer, 0)
    )
    tx_type = np.where(t_metro | (rng.random(n) < 0.7), 9, 6).astype(np.int16)

    # Validator of each tap: one of the operator's of that city and kind.
    t_val = np.zeros(n, dtype=np.int64)
    kind = np.where(t_metro, 2, 1)
    for o, (ci, k) in enumerate(ops):
        rows = np.nonzero((t_city == ci) & (kind == k))[0]
        vals = np.nonzero(val_op == o)[0]
        if len(rows):
            t_val[rows] = vals[rng.integers(0, len(vals), len(rows))]
    t_seq = val_seq0[t_val] + _rank_in_group(t_val, t_time)

    # Counters and balances: every debit takes the next offline counter; loads (2% of
    # taps, 50 CNY, before the tap) raise the balance and become the newest EF 0018 entry.
    first_of_card = ~same_card
    idx_in_card = np.arange(n) - np.maximum.accumulate(np.where(first_of_card, np.arange(n), 0))
    ctr = card_ctr0[t_card] + idx_in_card
    load = same_card & (rng.random(n) < 0.02)
    load_amount = np.where(load, 5000, 0)
    spend_before = np.cumsum(amount) - amount
    load_before = np.cumsum(load_amount)
    card_first = np.nonzero(first_of_card)[0]
    base_spend = np.repeat(spend_before[card_first], np.diff(np.append(card_first, n)))
    base_load = np.repeat(
        load_before[card_first] - load_amount[card_first], np.diff(np.append(card_first, n))
    )
    card_total = np.zeros(n_card, dtype=np.int64)
    np.add.at(card_total, t_card, amount)
    bal0 = card_total + rng.integers(500, 20_000, n_card)
    bal_before = bal0[t_card] - (spend_before - base_spend) + (load_before - base_load)
    bal_after = bal_before - amount

    # Previous EF 0018 entry: the card's last debit, or the load made just before;
    # 5% of validators do not read EF 0018 (prev null).
    has_prev = same_card & (rng.random(n) >= 0.05)
    prv = np.maximum(np.arange(n) - 1, 0)
    prev_ctr = np.where(
        load, card_ctr0[t_card] + 40 + idx_in_card, ctr - 1
    )  # online counter for loads
    prev_type = np.where(load, 2, tx_type[prv]).astype(np.int16)
    prev_amount = np.where(load, 5000, amount[prv])
    prev_time = np.where(load, t_time - 120, t_time[prv])
    prev_val = t_val[prv]

    # ---- batches: four uploads per validator and day
    hour = (t_time % 86400) // 3600
    t_batch = np.searchsorted(np.array(_BATCH_HOURS), hour, side="right")
    batch_key = (t_val * (spec.days + 1) + t_day) * 4 + t_batch

    # ---- faults
    lost = np.zeros(n, dtype=bool)
    n_lost_batches = 0
    if rates.lost_batches > 0:
        keys_present = np.nonzero(np.bincount(batch_key))[0]
        val_of_batch = keys_present // (4 * (spec.days + 1))
        first_b = np.ones(len(keys_present), dtype=bool)
        first_b[1:] = val_of_batch[1:] != val_of_batch[:-1]
        last_b = np.ones(len(keys_present), dtype=bool)
        last_b[:-1] = val_of_batch[:-1] != val_of_batch[1:]
        interior = np.nonzero(~first_b & ~last_b)[0]
        # never two neighbouring batches of one validator: their gaps would merge
        interior = interior[(interior % 2) == 0]
        k = min(len(interior), round(len(keys_present) * rates.lost_batches))
        gone = keys_present[rng.choice(interior, k, replace=False)] if k else np.array([], np.int64)
        lost = _member(batch_key, gone)
        n_lost_batches = int(k)
    fault = np.zeros(n, dtype=np.int8)  # 0 none; see _FAULTS
    grey_case = np.zeros(n, dtype=np.int8)
    proof = np.zeros(n, dtype=bool)
    card_last = np.append(card_first[1:], n) - 1  # row index of each card's last tap
    card_lost = _member(np.arange(n_card), t_card[lost])
    eligible_cards = np.nonzero((np.bincount(t_card, minlength=n_card) > 0) & ~card_lost)[0]
    n_grey = min(len(eligible_cards), round(n_card * rates.grey))
    grey_cards = rng.choice(eligible_cards, n_grey, replace=False) if n_grey else np.array([], int)
    card_start = np.full(n_card, -1, dtype=np.int64)
    card_start[t_card[card_first]] = card_first
    card_end = np.full(n_card, -1, dtype=np.int64)
    card_end[t_card[card_first]] = card_last
    for c in grey_cards.tolist():
        s, e = int(card_start[c]), int(card_end[c])
        case = int(rng.integers(1, 6)) if e > s else 4 + int(rng.integers(0, 2))
        g = e  # cases 4 and 5: the card's last tap (no later evidence)
        if case <= 3:
            # a tap with a next one and no load in between, so the evidence holds
            cands = [r for r in range(s, e) if not load[r + 1] and (case != 2 or amount[r] > 0)]
            if cands:
                g = int(rng.choice(cands))
            else:
                case = 5
        grey_case[g] = case
        fault[g] = _FAULTS["grey"]
        if case == 1:
            has_prev[g + 1] = True  # the next validator read EF 0018: it shows this debit
        elif case == 2:
            has_prev[g + 1] = False  # it did not: only the balance chain tells
        elif case == 3:
            # not debited: the card kept counter N and its balance; later taps shift
            ctr[g + 1 : e + 1] -= 1
            bal_before[g + 1 : e + 1] += amount[g]
            bal_after[g + 1 : e + 1] += amount[g]
            for a in (prev_ctr, prev_type, prev_amount, prev_time, prev_val):
                a[g + 1] = a[g]  # the card's newest entry is still the one before N
            has_prev[g + 1] &= has_prev[g]
            later = np.arange(g + 2, e + 1)
            prev_ctr[later] -= np.where(load[later], 0, 1)
        elif case == 4:
            proof[g] = True
    avail = ~lost & (fault == 0) & ~_member(t_card, grey_cards)

    def pick(rate: float) -> np.ndarray:
        pool = np.nonzero(avail)[0]
        k = min(len(pool), round(n * rate))
        chosen = np.sort(rng.choice(pool, k, replace=False)) if k else np.array([], np.int64)
        avail[chosen] = False
        return chosen

    corrupted = pick(rates.corrupted_tacs)
    forged = pick(rates.forged_copies)
    conflicting = pick(rates.conflicting_copies)
    recovered = pick(rates.recovered)
    fault[corrupted] = _FAULTS["tac"]
    fault[recovered] = _FAULTS["recovered"]

    # ---- TACs under the TEST keys
    say("fleet: TACs")
    keys = default_key_set()
    masters = {f: keys.purse.master("MTK", f) for f in ("3des", "sm4")}
    issuer_of_city = [f"0101{c.code}FFFFFFFF" for c in cities]
    term_bytes = np.frombuffer(
        b"".join(bytes.fromhex(t) for t in val_term), dtype=np.uint8
    ).reshape(n_val, 6)
    day_digits = _digits(
        np.array(
            [int((spec.start + timedelta(days=d)).strftime("%Y%m%d")) for d in range(spec.days)]
        ),
        8,
    )
    sod = t_time % 86400
    time_digits = np.concatenate(
        [
            day_digits[t_day],
            _digits(sod // 3600, 2),
            _digits(sod % 3600 // 60, 2),
            _digits(sod % 60, 2),
        ],
        axis=1,
    )
    msg = np.zeros((n, 32), dtype=np.uint8)
    msg[:, 0:4] = _be(amount, 4)
    msg[:, 4] = tx_type
    msg[:, 5:11] = term_bytes[t_val]
    msg[:, 11:15] = _be(t_seq, 4)
    td = time_digits - 48
    msg[:, 15:22] = (td[:, 0::2] << 4) | td[:, 1::2]
    msg[:, 22] = 0x80
    asn_nib = np.where(asn_digits >= 65, asn_digits - 55, asn_digits - 48).astype(np.uint8)
    asn_bytes = (asn_nib[:, 0::2] << 4) | asn_nib[:, 1::2]
    tac = np.zeros((n, 4), dtype=np.uint8)
    group = card_city[t_card] * 2 + card_sm4[t_card]
    by_group = np.argsort(group, kind="stable")  # stable: each card's rows stay together
    bounds = np.searchsorted(group[by_group], np.arange(2 * n_city + 1))
    for gi in range(2 * n_city):
        rows = by_group[bounds[gi] : bounds[gi + 1]]
        if len(rows) == 0:
            continue
        ci, is_sm4 = divmod(gi, 2)
        fam = "sm4" if is_sm4 else "3des"
        issuer = np.frombuffer(bytes.fromhex(issuer_of_city[ci]), np.uint8).reshape(1, 8)
        rc = t_card[rows]
        starts = np.nonzero(np.concatenate([[True], rc[1:] != rc[:-1]]))[0]
        level1 = _diversify_many(masters[fam], issuer, fam)[0].tobytes()
        dtk = _diversify_many(level1, asn_bytes[rc[starts]][:, 2:10], fam)
        tac_key = dtk if is_sm4 else dtk[:, :8] ^ dtk[:, 8:]
        tac[rows] = cbc_mac_grouped([k.tobytes() for k in tac_key], starts, msg[rows], fam)
    tac_text = _hex_chars(tac)
    proof_text = tac_text.copy()
    tac_text[corrupted, 7] = np.where(tac_text[corrupted, 7] == ord("0"), ord("1"), ord("0"))

    # ---- rows: base taps (not lost), then forged and conflicting copies at the end of
    # their batch, then re-sent batches (exact copies under file_id + "-R")
    say("fleet: writing uploads")
    base = np.nonzero(~lost)[0]
    line_no = np.zeros(n, dtype=np.int64)
    line_no[base] = _rank_in_group(batch_key[base], t_time[base]) + 1
    batch_len = np.bincount(batch_key[base], minlength=int(batch_key.max()) + 1)[batch_key]
    extra = np.concatenate([forged, conflicting]).astype(np.int64)
    extra_kind = np.concatenate(
        [np.full(len(forged), _FAULTS["forged"]), np.full(len(conflicting), _FAULTS["conflict"])]
    ).astype(np.int8)
    extra_line = batch_len[extra] + 1 + _rank_in_group(batch_key[extra], np.arange(len(extra)))
    bk_base = np.nonzero(np.bincount(batch_key[base]))[0]
    n_dup = min(len(bk_base), round(len(bk_base) * rates.duplicate_batches))
    dup_batches = rng.choice(bk_base, n_dup, replace=False) if n_dup else np.array([], np.int64)
    dup_rows = base[_member(batch_key[base], dup_batches)]

    src = np.concatenate([base, extra, dup_rows])
    kind_row = np.concatenate(
        [fault[base], extra_kind, np.full(len(dup_rows), _FAULTS["dup"], np.int8)]
    )
    lines = np.concatenate([line_no[base], extra_line, line_no[dup_rows]])
    resent = np.concatenate([np.zeros(len(base) + len(extra), bool), np.ones(len(dup_rows), bool)])
    m = len(src)
    amt_row = amount[src].copy()
    forged_sel = kind_row == _FAULTS["forged"]
    amt_row[forged_sel] += 100 * rng.integers(1, 6, int(forged_sel.sum()))
    v = t_val[src]
    grey_row = grey_case[src] > 0
    # a conflicting copy names another vehicle: entry n_val + validator in the dictionary
    conflict_sel = kind_row == _FAULTS["conflict"]
    vehicle = _decode(
        np.where(conflict_sel, n_val + v, v), val_vehicle + [f"{x}-X" for x in val_vehicle]
    )
    day_of = t_day[src]
    start64 = np.datetime64(spec.start.isoformat(), "D")
    yyyymmdd = [(spec.start + timedelta(days=d)).strftime("%Y%m%d") for d in range(spec.days)]
    fkey = ((v * spec.days + day_of) * 4 + t_batch[src]) * 2 + resent
    fkeys = np.nonzero(np.bincount(fkey))[0]
    fnames = [
        f"{val_term[k // (8 * spec.days)]}-{yyyymmdd[k // 8 % spec.days]}-{k // 2 % 4}"
        + ("-R" if k % 2 else "")
        for k in fkeys.tolist()
    ]
    file_id = _decode(np.searchsorted(fkeys, fkey), fnames)
    issuer_text = np.array([list(x.encode()) for x in issuer_of_city], np.uint8)[
        card_city[t_card[src]]
    ]
    none_str = pa.scalar(None, pa.string())
    grey_mask = pa.array(grey_row)
    p_has = pa.array(has_prev[src])
    prev_sod = prev_time[src] % 86400
    prev_day = np.clip(prev_time[src] // 86400, 0, spec.days - 1)
    prev_time_text = _text(
        np.concatenate(
            [day_digits[prev_day], _digits(prev_sod // 3600, 2), _digits(prev_sod % 3600 // 60, 2),
             _digits(prev_sod % 60, 2)],
            axis=1,
        )
    )  # fmt: skip
    prev_term_chars = _hex_chars(term_bytes[prev_val[src]])
    prev_term_chars[load[src]] = ord("0")  # a load terminal: not one of the fleet's

    def when(mask: pa.Array, values: pa.Array) -> pa.Array:
        return pc.if_else(mask, values, pa.scalar(None, values.type))

    card_alg = np.where(card_sm4, 4, 0).astype(np.int16)
    columns: dict[str, Any] = {
        "file_id": file_id,
        "line_no": pa.array(lines, pa.int32()),
        "upload_date": pa.array(start64 + day_of, pa.date32()),
        "acquirer_id": _decode(val_op[v], acquirer),
        "operator_id": pa.array(np.where(op_kind[val_op[v]] == 2, "0002", "0001"), pa.string()),
        "terminal_name": _decode(v, val_name),
        "line": _decode(v, val_line),
        "vehicle": vehicle,
        "issuer_id": _text(issuer_text),
        "city_code": _text(issuer_text[:, 4:8]),
        "asn": _text(asn_digits[t_card[src]]),
        "card_ctr": pa.array(ctr[src], pa.int32()),
        "bal_before": pa.array(bal_before[src], pa.int64()),
        "bal_after": pc.if_else(grey_mask, pa.scalar(None, pa.int64()), pa.array(bal_after[src])),
        "amount": pa.array(amt_row, pa.int64()),
        "tx_type": pa.array(tx_type[src], pa.int16()),
        "term_id": _decode(v, val_term),
        "term_seq": pa.array(t_seq[src], pa.int64()),
        "tx_time": _text(time_digits[src]),
        "tac": pc.if_else(grey_mask, none_str, _text(tac_text[src])),
        "grey": grey_mask,
        "key_ver": pa.array(np.full(m, keys.purse_key_version), pa.int16()),
        "alg_id": pa.array(card_alg[t_card[src]], pa.int16()),
        "prev_ctr": when(p_has, pa.array(prev_ctr[src], pa.int32())),
        "prev_type": when(p_has, pa.array(prev_type[src], pa.int16())),
        "prev_amount": when(p_has, pa.array(prev_amount[src], pa.int64())),
        "prev_term": when(p_has, _text(prev_term_chars)),
        "prev_time": when(p_has, prev_time_text),
        "proof_tac": when(pa.array(proof[src] & grey_row), _text(proof_text[src])),
        "journal_state": pa.array(np.where(grey_row, "uncertain", "completed"), pa.string()),
        "tap_id": pa.array(src + 1, pa.int64()),
    }
    table = pa.table(columns, schema=input_schema())

    # ---- expected outcome per row
    expected = np.full(m, "10", dtype=object)
    expected[kind_row == _FAULTS["dup"]] = "03"
    expected[kind_row == _FAULTS["tac"]] = "01"
    expected[kind_row == _FAULTS["forged"]] = "01"
    expected[kind_row == _FAULTS["conflict"]] = "13"
    gc = np.where(kind_row == _FAULTS["dup"], 0, grey_case[src])
    expected[np.isin(gc, (1, 2, 4))] = "11"
    expected[gc == 3] = "12"
    stale = (spec.days - 1 - day_of) > GREY_EXPIRY_DAYS
    expected[(gc == 5) & ~stale] = "04"
    expected[(gc == 5) & stale] = "14"
    # paid (or voided) on the day the evidence arrives: the next tap's day for cases 1-3
    next_day = t_day[np.minimum(src + 1, n - 1)]
    settle_day = np.where(np.isin(gc, (1, 2, 3)), np.maximum(day_of, next_day), day_of)
    names = np.array(["", "tac", "forged", "conflict", "dup", "recovered", "grey"], dtype=object)
    fault_col = names[kind_row]
    grey_names = np.array(
        ["", "grey-prev", "grey-balance", "grey-void", "grey-proof", "grey-pending"], dtype=object
    )
    fault_col = np.where(gc > 0, grey_names[gc], fault_col)
    truth = pa.table(
        {
            "file_id": columns["file_id"],
            "line_no": columns["line_no"],
            "expected_reason": pa.array(expected, pa.string()),
            "paid": pa.array((expected == "10") | (expected == "11"), pa.bool_()),
            "fault": pa.array(fault_col, pa.string()),
            "settle_date": pa.array(start64 + settle_day, pa.date32()),
            "amount": columns["amount"],
            "city_code": columns["city_code"],
            "acquirer_id": columns["acquirer_id"],
        }
    )
    lost_rows = np.nonzero(lost)[0]
    lost_table = pa.table(
        {
            "term_id": _decode(t_val[lost_rows], val_term),
            "term_seq": pa.array(t_seq[lost_rows], pa.int64()),
            "asn": _text(asn_digits[t_card[lost_rows]].reshape(-1, 20)),
            "card_ctr": pa.array(ctr[lost_rows], pa.int32()),
            "amount": pa.array(amount[lost_rows], pa.int64()),
        }
    )

    # ---- files: one per operator and day, and one for its re-sent batches
    uploads = out / "uploads"
    op_of_row = val_op[v]
    file_key = (day_of * len(ops) + op_of_row) * 2 + resent
    sort_idx = np.lexsort((lines, t_batch[src], v, file_key))
    sorted_key = file_key[sort_idx]
    table = table.take(pa.array(sort_idx))  # one take; every file is then a zero-copy slice
    cut = np.nonzero(np.concatenate([[True], sorted_key[1:] != sorted_key[:-1], [True]]))[0]
    for lo, hi in itertools.pairwise(cut.tolist()):
        file_no = int(sorted_key[lo])
        day, rest = divmod(file_no, 2 * len(ops))
        o, r_flag = divmod(rest, 2)
        day_dir = uploads / f"day={yyyymmdd[day]}"
        day_dir.mkdir(parents=True, exist_ok=True)
        name = f"{acquirer[o]}-{yyyymmdd[day]}{'-resend' if r_flag else ''}.parquet"
        pq.write_table(table.slice(lo, hi - lo), day_dir / name, compression="zstd")
    files = len(cut) - 1
    pq.write_table(truth.take(pa.array(sort_idx)), out / "truth.parquet", compression="zstd")
    pq.write_table(lost_table, out / "truth-lost.parquet", compression="zstd")
    issuers = sorted(set(issuer_of_city))
    (out / "issuer-keys.json").write_text(
        IssuerKeys.for_issuers(issuers, masters, keys.purse_key_version).to_json(), encoding="utf-8"
    )
    counts = {
        "duplicate_batches": int(n_dup),
        "duplicate_rows": len(dup_rows),
        "lost_batches": n_lost_batches,
        "lost_rows": len(lost_rows),
        "corrupted_tacs": len(corrupted),
        "forged_copies": len(forged),
        "conflicting_copies": len(conflicting),
        "recovered": len(recovered),
        **{str(grey_names[k]): int((gc == k).sum()) for k in range(1, 6)},
    }
    manifest = {
        "schema": FLEET_SCHEMA,
        "warning": "TEST DATA - TEST KEYS",
        "spec": {
            "validators": spec.validators,
            "cards": spec.cards,
            "days": spec.days,
            "taps_per_day": per_day,
            "start": spec.start.isoformat(),
            "seed": spec.seed,
            "faults": asdict(rates),
        },
        "cities": [{"code": c.code, "name": c.name} for c in cities],
        "acquirers": acquirer,
        "rows": m,
        "taps": n,
        "files": files,
        "faults": counts,
        "as_of": (spec.start + timedelta(days=spec.days - 1)).isoformat(),
    }
    (out / "fleet.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return FleetResult(out, m, n, files, 0.0, counts)


_FAULTS = {"tac": 1, "forged": 2, "conflict": 3, "dup": 4, "recovered": 5, "grey": 6}
