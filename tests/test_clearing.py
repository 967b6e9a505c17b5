"""Clearing: a generated fleet with known faults, cleared by DuckDB and the
plain-Python baseline; every fault found, nothing else rejected, net positions equal to
an independent sum from the generator's ground truth; bad inputs give clear errors and
re-runs give the same files. Spark: tests/test_clearing_spark.py; journals of validators
tapped through pcscd: tests/test_clearing_pcsc.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sscard.clearing.errors import (
    ClearingInputError,
    IssuerKeysError,
    WrongIssuerKeys,
)
from sscard.clearing.keys import IssuerKeys, MasterKeyVerifier, _diversify_many, cbc_mac_grouped
from sscard.clearing.run import clear
from sscard.clearing.schema import input_schema
from sscard.clearing.tac import check_rows, tac_messages
from sscard.crypto import purse as pc
from sscard.simulators.fleet import FaultRates, FleetSpec, generate
from sscard.simulators.keys import default_key_set, generate_key_set

FAULTS = FaultRates(
    duplicate_batches=0.02,
    lost_batches=0.02,
    corrupted_tacs=0.003,
    forged_copies=0.003,
    conflicting_copies=0.003,
    recovered=0.003,
    grey=0.08,
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sscard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def _rows(out: Path) -> list[dict[str, Any]]:
    tables = [pq.read_table(out / n) for n in ("accepted.parquet", "rejected.parquet")]
    return pa.concat_tables(tables).to_pylist()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clearing") / "fleet"
    generate(FleetSpec(validators=60, cards=1500, days=10, taps_per_day=1500, faults=FAULTS), out)
    return out


@pytest.fixture(scope="module")
def cleared(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clearing") / "duckdb"
    clear(fleet / "uploads", IssuerKeys.load(fleet / "issuer-keys.json"), out, engine="duckdb")
    return out


# --------------------------------------------------------------------------- acceptance


def test_every_injected_fault_is_found_and_nothing_else_rejected(fleet: Path, cleared: Path):
    truth = pq.read_table(fleet / "truth.parquet").to_pylist()
    got = {(r["file_id"], r["line_no"]): r for r in _rows(cleared)}
    assert len(got) == len(truth)
    wrong = Counter(
        (t["fault"], t["expected_reason"], got[t["file_id"], t["line_no"]]["reason"])
        for t in truth
        if got[t["file_id"], t["line_no"]]["reason"] != t["expected_reason"]
    )
    assert not wrong
    seen = Counter(t["fault"] for t in truth)
    # Not vacuous: every kind of fault is in this fleet, each found by its code.
    for fault in ("dup", "tac", "forged", "conflict", "recovered", "grey-prev", "grey-balance",
                  "grey-void", "grey-proof", "grey-pending"):  # fmt: skip
        assert seen[fault] > 0, fault
    assert {t["expected_reason"] for t in truth if not t["fault"]} == {"10"}
    rules: dict[str, set[int | None]] = defaultdict(set)
    for t in truth:
        if t["fault"].startswith("grey"):
            rules[t["fault"]].add(got[t["file_id"], t["line_no"]]["grey_rule"])
    assert rules == {
        "grey-proof": {1}, "grey-prev": {2}, "grey-void": {2, 3} & rules["grey-void"],
        "grey-balance": {4}, "grey-pending": {None},
    }  # fmt: skip


def test_gaps_are_exactly_the_lost_uploads(fleet: Path, cleared: Path):
    lost = pq.read_table(fleet / "truth-lost.parquet").to_pylist()
    with open(cleared / "gaps.csv", encoding="utf-8") as f:
        gaps = list(csv.DictReader(f))
    # Terminal gaps: each lost batch is one run of PSAM sequence numbers.
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in lost:
        seqs[r["term_id"]].append(r["term_seq"])
    expected_terminal = set()
    for term, values in seqs.items():
        values.sort()
        start = values[0]
        for a, b in zip(values, [*values[1:], None], strict=True):
            if b != a + 1:
                expected_terminal.add((term, start, a))
                start = b
    got_terminal = {
        (g["gap_key"], int(g["first_missing"]), int(g["last_missing"]))
        for g in gaps
        if g["kind"] == "terminal"
    }
    assert got_terminal == expected_terminal and expected_terminal
    # Card gaps: a lost counter between two the clearing house did receive.
    received: dict[str, set[int]] = defaultdict(set)
    for r in _rows(cleared):
        if r["reason"] not in ("02", "07", "03", "12"):
            received[r["asn"]].add(r["card_ctr"])
    missing = {(r["asn"], r["card_ctr"]) for r in lost}
    expected_cards = {
        (asn, ctr)
        for asn, ctr in missing
        if received[asn] and min(received[asn]) < ctr < max(received[asn])
    }
    got_cards = {
        (g["gap_key"], n)
        for g in gaps
        if g["kind"] == "card"
        for n in range(int(g["first_missing"]), int(g["last_missing"]) + 1)
    }
    assert got_cards == expected_cards and expected_cards


def test_net_positions_equal_the_ground_truth_sum(fleet: Path, cleared: Path):
    truth = pq.read_table(fleet / "truth.parquet").to_pylist()
    expected: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for t in truth:
        if t["paid"]:
            acc = expected[t["settle_date"].isoformat(), t["city_code"], t["acquirer_id"]]
            acc[0] += 1
            acc[1] += t["amount"]
    got: dict[tuple[str, str, str], list[int]] = {}
    net_by_party: dict[str, int] = defaultdict(int)
    for path in sorted(cleared.glob("settle_*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                gross, bp = int(r["gross_fen"]), int(r["fee_bp"])
                fee = (gross * bp + 5000) // 10000
                assert (int(r["fee_fen"]), int(r["net_fen"])) == (fee, gross - fee)
                if int(r["n_paid"]):
                    got[r["clear_date"], r["issuer_city"], r["acquirer_id"]] = [
                        int(r["n_paid"]), gross,
                    ]  # fmt: skip
                net_by_party[f"acquirer:{r['acquirer_id']}"] += gross - fee
                net_by_party[f"issuer:{r['issuer_city']}"] -= gross
                net_by_party["clearing"] += fee
    assert got == {k: v for k, v in expected.items()}
    positions: dict[str, int] = defaultdict(int)
    for path in sorted(cleared.glob("positions_*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert sum(int(r["net_fen"]) for r in rows) == 0
        for r in rows:
            assert int(r["net_fen"]) == int(r["receivable_fen"]) - int(r["payable_fen"])
            positions[r["party"]] += int(r["net_fen"])
    assert dict(positions) == {k: v for k, v in net_by_party.items() if k in positions}
    with open(next(cleared.glob("settle_*.csv")), "rb") as f:
        header = f.readline()
    assert header == (
        b"clear_date,issuer_city,acquirer_id,n_paid,gross_fen,n_refused,refused_fen,"
        b"fee_bp,fee_fen,net_fen\n"
    )


def test_python_baseline_gives_the_same_files(fleet: Path, cleared: Path, tmp_path: Path):
    clear(fleet / "uploads", IssuerKeys.load(fleet / "issuer-keys.json"), tmp_path, engine="python")
    assert _files(tmp_path) == _files(cleared)


def test_grey_rows_expire_after_seven_days(fleet: Path, tmp_path: Path):
    as_of = date(2025, 3, 12) + timedelta(days=30)
    clear(fleet / "uploads", IssuerKeys.load(fleet / "issuer-keys.json"), tmp_path, as_of=as_of)
    truth = {
        (t["file_id"], t["line_no"]): t for t in pq.read_table(fleet / "truth.parquet").to_pylist()
    }
    pending = [
        r for r in _rows(tmp_path) if truth[r["file_id"], r["line_no"]]["fault"] == "grey-pending"
    ]
    assert pending and {r["reason"] for r in pending} == {"14"}


# --------------------------------------------------------------------------- TACs


def test_fleet_tacs_are_the_simulator_cards_tacs(fleet: Path):
    """Every TAC of a sample recomputed with the simulator's own per-card key path."""
    keys = default_key_set()
    table = pq.read_table(next((fleet / "uploads").rglob("*.parquet"))).to_pylist()
    rows = [r for r in table if not r["grey"]][:200:7]
    assert rows and {r["alg_id"] for r in table} == {0, 4}
    truth = pq.read_table(fleet / "truth.parquet").to_pylist()
    corrupted = {(t["file_id"], t["line_no"]) for t in truth if t["fault"] == "tac"}
    for r in rows:
        dtk = keys.purse_card_key(
            "MTK", bytes.fromhex(r["issuer_id"]), bytes.fromhex(r["asn"])[2:], r["alg_id"]
        )
        tac = pc.purchase_tac(
            dtk, amount=r["amount"], txn_type=r["tx_type"], terminal_id=bytes.fromhex(r["term_id"]),
            terminal_seq=r["term_seq"], date_time=bytes.fromhex(r["tx_time"]), algorithm=r["alg_id"],
        )  # fmt: skip
        assert (r["tac"] == tac.hex().upper()) != ((r["file_id"], r["line_no"]) in corrupted)


def test_cbc_mac_matches_the_published_purchase_vectors():
    """transit-purse.md §4.5 (S10): MAC1 and MAC2 under the published session keys."""

    def padded(hex_text: str) -> np.ndarray:
        data = bytes.fromhex(hex_text) + b"\x80"
        data += bytes(32 - len(data))
        return np.frombuffer(data, np.uint8).reshape(1, 32)

    mac1 = cbc_mac_grouped(
        [bytes.fromhex("003238ABC57659DD")], np.array([0]),
        padded("00001000" "06" "001122334455" "20120229135100"), "3des",
    )  # fmt: skip
    assert bytes(mac1[0]) == bytes.fromhex("F15CAB75")
    mac2 = cbc_mac_grouped(
        [bytes.fromhex("9B1D924E05595603")], np.array([0]),
        padded("00001000" "01" "001122334455" "20111221214822"), "3des",
    )  # fmt: skip
    assert bytes(mac2[0]) == bytes.fromhex("3A845BF0")


def test_tac_as_public_obu_code_computes_it():
    """octerboy/TextUS obu/Obu.cpp (public code): ``diversifyTAC`` takes the two halves of
    a 2-key-3DES diversification under the TAC master key, XORs them and sets odd parity;
    the TAC is ``singleMAC`` (single DES, ICV 0) over amount4 ‖ 06 ‖ 00 00 ‖ terminal4 ‖
    seq4 ‖ 20 ‖ YYMMDDhhmmss6 ‖ 80 00. Written from that code, with its TAC master key
    constant; sscard's TAC key step, message layout and grouped CBC must agree."""
    mk = bytes.fromhex("6B760B85AE4F9E458A7010974C10A8F1")  # ckey[TAC_KEY] in Obu.cpp
    factor = bytes.fromhex("1402196012345678")

    def ecb2(key16: bytes, block: bytes) -> bytes:
        e = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
        return e.update(block)

    left, right = ecb2(mk, factor), ecb2(mk, bytes(b ^ 0xFF for b in factor))
    tac_key = bytes(a ^ b for a, b in zip(left, right, strict=True))
    tac_key = bytes(b & 0xFE | (bin(b >> 1).count("1") + 1) % 2 for b in tac_key)  # odd parity
    buf = (bytes.fromhex("000003E8") + b"\x06\x00\x00" + bytes.fromhex("12345678")
           + (1234).to_bytes(4) + b"\x20" + bytes.fromhex("250303081500") + b"\x80\x00")  # fmt: skip
    mac = bytes(8)
    for i in range(0, 24, 8):
        block = bytes(a ^ b for a, b in zip(mac, buf[i : i + 8], strict=True))
        mac = Cipher(TripleDES(tac_key * 3), modes.ECB()).encryptor().update(block)
    expected = mac[:4]

    dtk = _diversify_many(mk, np.frombuffer(factor, np.uint8).reshape(1, 8), "3des")
    ours_key = (dtk[:, :8] ^ dtk[:, 8:])[0].tobytes()  # parity bits: DES ignores them
    digits = np.frombuffer(b"20250303081500", np.uint8).reshape(1, 14) - 48
    msg = tac_messages(
        np.array([1000]), np.array([6]), np.frombuffer(bytes.fromhex("000012345678"), np.uint8)
        .reshape(1, 6), np.array([1234]), digits,
    )  # fmt: skip
    assert bytes(msg[0, :24]) == buf
    assert bytes(cbc_mac_grouped([ours_key], np.array([0]), msg, "3des")[0]) == expected


def test_vectorised_check_equals_the_per_row_reference():
    """Random rows, 3DES and SM4, valid, corrupted, malformed and unknown: the numpy check
    and the per-row :func:`purchase_tac` agree row for row."""
    from sscard.clearing.baseline import _check, _Tacs

    rng = np.random.default_rng(5)
    keys = default_key_set()
    masters = {f: keys.purse.master("MTK", f) for f in ("3des", "sm4")}
    provider = IssuerKeys.for_issuers(["01012900FFFFFFFF", "01013310FFFFFFFF"], masters, 1)
    rows = []
    for i in range(400):
        issuer = ["01012900FFFFFFFF", "01013310FFFFFFFF", "01019990FFFFFFFF"][
            i % 3 if i % 10 == 0 else i % 2
        ]
        asn = f"0{issuer[4:8]}{int(rng.integers(10**14)):015d}"
        alg = int(rng.choice([0, 4]))
        row = {
            "issuer_id": issuer, "city_code": issuer[4:8], "asn": asn, "card_ctr": int(rng.integers(0, 9)),
            "amount": int(rng.integers(0, 5000)), "tx_type": int(rng.choice([6, 9])),
            "term_id": f"{int(rng.integers(1 << 48)):012X}", "term_seq": int(rng.integers(1 << 32)),
            "tx_time": f"2025{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}101010",
            "tac": None, "grey": False, "key_ver": 1, "alg_id": alg if i % 7 else None, "proof_tac": None,
        }  # fmt: skip
        if issuer != "01019990FFFFFFFF":
            dtk = keys.purse_card_key("MTK", bytes.fromhex(issuer), bytes.fromhex(asn)[2:], alg)
            row["tac"] = pc.purchase_tac(
                dtk, amount=row["amount"], txn_type=row["tx_type"], terminal_id=bytes.fromhex(row["term_id"]),
                terminal_seq=row["term_seq"], date_time=bytes.fromhex(row["tx_time"]), algorithm=alg,
            ).hex().upper()  # fmt: skip
        else:
            row["tac"] = "00000000"
        if i % 11 == 0:
            row["tac"] = row["tac"][:7] + ("0" if row["tac"][7] != "0" else "1")
        if i % 13 == 0:
            row["tx_time"] = "20250230101010"
        if i % 17 == 0:
            row["asn"] = row["asn"][:-1] + "g"  # not hex: 02
        if i % 19 == 0:
            row["grey"], row["proof_tac"], row["tac"] = True, row["tac"], None
        rows.append(row)
    schema = pa.schema([f for f in input_schema() if f.name in rows[0]])
    table = pa.Table.from_pylist(rows, schema=schema)
    ours = check_rows(table, MasterKeyVerifier(provider)).tolist()
    tacs = _Tacs(provider)
    reference = [_check(dict(r), tacs) for r in rows]
    assert ours == reference
    assert set(ours) == {0, 1, 2, 7, 9, 11}


# --------------------------------------------------------------------------- bad input


def test_truncated_parquet_is_a_clear_error_and_nothing_is_written(fleet: Path, tmp_path: Path):
    uploads = tmp_path / "uploads"
    for p in sorted((fleet / "uploads").rglob("*.parquet"))[:3]:
        (uploads / p.parent.name).mkdir(parents=True, exist_ok=True)
        (uploads / p.parent.name / p.name).write_bytes(p.read_bytes())
    victim = sorted(uploads.rglob("*.parquet"))[1]
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    r = _cli("clearing", "run", "--input", str(uploads), "--keys", str(fleet / "issuer-keys.json"),
             "--out", str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert victim.name in r.stderr and "truncated" in r.stderr and "截断" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # fixed: the run goes through, and a second run writes the very same files
    victim.write_bytes(good)
    for _ in range(2):
        r = _cli("clearing", "run", "--input", str(uploads), "--keys", str(fleet / "issuer-keys.json"),
                 "--out", str(tmp_path / "out"), "--quiet")  # fmt: skip
        assert r.returncode == 0, r.stderr
        files = _files(tmp_path / "out")
        if _ == 0:
            first = files
    assert files == first and "report.html" in files


def test_unknown_issuer_then_fixed_key_file_gives_the_clean_result(fleet: Path, tmp_path: Path):
    keys = IssuerKeys.load(fleet / "issuer-keys.json")
    dropped = sorted(keys.issuers)[0]
    partial = IssuerKeys({k: v for k, v in keys.issuers.items() if k != dropped})
    key_file = tmp_path / "keys.json"
    key_file.write_text(partial.to_json())
    out = tmp_path / "out"
    r = _cli("clearing", "run", "--input", str(fleet / "uploads"), "--keys", str(key_file),
             "--out", str(out), "--json")  # fmt: skip
    assert r.returncode == 2
    error = json.loads(r.stdout)
    assert error["error"] == "UnknownIssuer" and dropped in error["message_en"]
    assert "发卡机构" in error["message_zh"] and not out.exists()
    # the policy alternative: refuse those rows with 09 and clear the rest
    clear(fleet / "uploads", partial, out, unknown_issuer="reject")
    refused = {r["reason"] for r in _rows(out) if r["issuer_id"] == dropped}
    assert refused <= {"09", "03"} and "09" in refused
    # fixed key file: the same files as a run that never had the problem
    key_file.write_text(keys.to_json())
    clear(fleet / "uploads", IssuerKeys.load(key_file), out)
    clean = tmp_path / "clean"
    clear(fleet / "uploads", keys, clean)
    assert _files(out) == _files(clean)


def test_wrong_key_file_is_refused_before_writing(fleet: Path, tmp_path: Path):
    other = generate_key_set(seed=7)
    wrong = IssuerKeys.for_issuers(
        IssuerKeys.load(fleet / "issuer-keys.json").issuers,
        {f: other.purse.master("MTK", f) for f in ("3des", "sm4")},
        1,
    )
    with pytest.raises(WrongIssuerKeys) as err:
        clear(fleet / "uploads", wrong, tmp_path / "out")
    assert "key file" in err.value.message_en and "密钥" in err.value.message_zh
    assert not (tmp_path / "out").exists()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "sscard-issuer-keys/1", "issuers": {"0101": {"3des": "00"}}}')
    with pytest.raises(IssuerKeysError):
        IssuerKeys.load(bad)
    with pytest.raises(ClearingInputError):
        clear(tmp_path / "nowhere", wrong, tmp_path / "out")


def test_simulator_key_set_serves_every_issuer(fleet: Path, tmp_path: Path, cleared: Path):
    """``--keys sscard/data/test-keys.json`` works too: the simulator derives every card
    from one master set, so it is a key file for any issuer."""
    from importlib import resources

    path = tmp_path / "test-keys.json"
    path.write_text(resources.files("sscard").joinpath("data/test-keys.json").read_text())
    keys = IssuerKeys.load(path)
    assert keys.knows("0101FFFFFFFFFFFF") and "redacted" in repr(keys)
    clear(fleet / "uploads", keys, tmp_path / "out")
    assert _files(tmp_path / "out") == _files(cleared)


def test_cli_summary_json_and_progress_on_stderr(fleet: Path, tmp_path: Path):
    r = _cli("clearing", "run", "--input", str(fleet / "uploads"), "--keys",
             str(fleet / "issuer-keys.json"), "--out", str(tmp_path), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["engine"] == "duckdb" and summary["totals"]["rows"] > 10_000
    assert summary["reasons"]["10"]["rows"] > 0 and summary["taps_per_second"] > 0
    assert "verified" in r.stderr and "read" in r.stderr
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["totals"] == summary["totals"] and "seconds" not in on_disk


def test_fleet_cli_and_ground_truth_files(tmp_path: Path):
    r = _cli("sim", "fleet", "--validators", "60", "--cards", "300", "--out", str(tmp_path / "f"),
             "--fault", "grey=0.1", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    manifest = json.loads((tmp_path / "f" / "fleet.json").read_text())
    assert (
        manifest["rows"]
        == result["rows"]
        == pq.read_table(tmp_path / "f" / "truth.parquet").num_rows
    )
    for p in (tmp_path / "f" / "uploads").rglob("*.parquet"):
        assert pq.read_schema(p).equals(input_schema(), check_metadata=False)
    bad = _cli("sim", "fleet", "--validators", "60", "--cards", "30", "--out", str(tmp_path / "g"),
               "--fault", "nonsense=1")  # fmt: skip
    assert bad.returncode == 2 and "--fault" in bad.stderr and not (tmp_path / "g").exists()


def test_batch_des_is_des():
    """sscard.crypto.des_batch against pyca/cryptography on random keys and blocks, and
    the FIPS 81 example (key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815)."""
    from sscard.crypto.des_batch import des_encrypt_blocks, des_key_schedule

    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**63, 300, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    blocks = rng.integers(0, 2**63, 900, dtype=np.int64).astype(np.uint64) * np.uint64(3)
    index = rng.integers(0, 300, 900)
    out = des_encrypt_blocks(blocks, des_key_schedule(keys), index)
    for i in range(0, 900, 7):
        key = int(keys[index[i]]).to_bytes(8, "big")
        want = (
            Cipher(TripleDES(key * 3), modes.ECB())
            .encryptor()
            .update(int(blocks[i]).to_bytes(8, "big"))
        )
        assert int(out[i]).to_bytes(8, "big") == want
    fips = des_encrypt_blocks(
        np.array([int.from_bytes(b"Now is t", "big")], np.uint64),
        des_key_schedule(np.array([0x0123456789ABCDEF], np.uint64)),
        np.array([0]),
    )
    assert int(fips[0]) == 0x3FA40E8A984D4815


def test_batch_sm4_is_sm4():
    """sscard.crypto.sm4_batch against pyca/cryptography (SM4-CBC, ICV 0) on random keys
    and two-block messages, and the GB/T 32907-2016 example (key = plaintext =
    0123456789ABCDEFFEDCBA9876543210 -> 681EDF34D206965E86B3E94F536E4246)."""
    from sscard.crypto.sm4_batch import (
        sm4_cbc_encrypt_last,
        sm4_encrypt_blocks,
        sm4_key_schedule,
    )

    rng = np.random.default_rng(13)
    keys = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    data = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    index = rng.integers(0, 40, 300)
    out = sm4_cbc_encrypt_last(keys, index, data)
    for i in range(0, 300, 7):
        enc = Cipher(algorithms.SM4(keys[index[i]].tobytes()), modes.CBC(bytes(16))).encryptor()
        assert out[i].tobytes() == enc.update(data[i].tobytes())[16:]
    example = np.frombuffer(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), np.uint8)
    block = example.reshape(1, 16)
    got = sm4_encrypt_blocks(block, sm4_key_schedule(block), np.array([0]))
    assert got.tobytes() == bytes.fromhex("681EDF34D206965E86B3E94F536E4246")


def test_batch_des_cbc_equals_block_by_block():
    """The chained CBC (kept between IP and FP across blocks) equals three separate
    DES encryptions under pyca/cryptography."""
    from sscard.crypto.des_batch import des_cbc_encrypt_last

    rng = np.random.default_rng(17)
    keys = rng.integers(0, 2**63, 50, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    words = rng.integers(0, 2**63, (200, 3), dtype=np.int64).astype(np.uint64) * np.uint64(3)
    index = rng.integers(0, 50, 200)
    out = des_cbc_encrypt_last(keys, index, words)
    for i in range(0, 200, 9):
        key = int(keys[index[i]]).to_bytes(8, "big")
        data = b"".join(int(w).to_bytes(8, "big") for w in words[i])
        enc = Cipher(TripleDES(key * 3), modes.CBC(bytes(8))).encryptor()
        assert int(out[i]).to_bytes(8, "big") == enc.update(data)[16:]


def test_one_batch_line_with_two_contents_is_refused(fleet: Path, tmp_path: Path):
    """A batch name re-used for other content (J1 moves such a file to a repeat folder)."""
    src = sorted((fleet / "uploads").rglob("*.parquet"))[0]
    table = pq.read_table(src)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    pq.write_table(table, uploads / "a.parquet")
    changed = table.set_column(
        table.schema.get_field_index("vehicle"), "vehicle", pa.array(["OTHER"] * table.num_rows)
    )
    pq.write_table(changed.slice(0, 3), uploads / "b.parquet")
    keys = IssuerKeys.load(fleet / "issuer-keys.json")
    for engine in ("duckdb", "python"):
        with pytest.raises(ClearingInputError) as err:
            clear(uploads, keys, tmp_path / "out", engine=engine)  # type: ignore[arg-type]
        assert table.column("file_id")[0].as_py() in err.value.message_en
    assert not (tmp_path / "out").exists()


def test_grey_verdicts_agree_with_the_journal_side_settlement(fleet: Path, cleared: Path):
    """The SQL grey rules and :func:`sscard.services.grey.settle_uncertain` (the same
    profile, per journal row) give the same verdict on every grey row of the fleet."""
    from datetime import datetime

    from sscard.services.grey import MasterTacChecker, settle_uncertain
    from sscard.services.journal import CardTxn, TapRecord, TapState

    rows = [r for r in _rows(cleared) if r["reason"] not in ("02", "03", "07", "13", "01")]
    by_card: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_card[r["asn"]].append(r)

    def record(r: dict[str, Any], i: int) -> TapRecord:
        t = datetime.strptime(r["tx_time"], "%Y%m%d%H%M%S")
        prev = None
        if r["prev_ctr"] is not None:
            prev = CardTxn(
                counter=r["prev_ctr"], txn_type=r["prev_type"], amount=r["prev_amount"],
                terminal_id=bytes.fromhex(r["prev_term"]),
                time=datetime.strptime(r["prev_time"], "%Y%m%d%H%M%S"),
            )  # fmt: skip
        return TapRecord(
            id=i, state=TapState.UNCERTAIN if r["grey"] else TapState.COMPLETED,
            created_at=t, updated_at=t, terminal_id=r["terminal_name"],
            psam_terminal_id=bytes.fromhex(r["term_id"]), terminal_seq=r["term_seq"],
            asn=bytes.fromhex(r["asn"]), issuer_id=bytes.fromhex(r["issuer_id"]),
            txn_type=r["tx_type"], amount=r["amount"], balance_before=r["bal_before"],
            card_counter=r["card_ctr"], txn_datetime=t, key_version=r["key_ver"],
            algorithm_id=r["alg_id"], previous=prev,
            balance_after=r["bal_after"], tac=None if r["tac"] is None else bytes.fromhex(r["tac"]),
            mac2=None if r["grey"] else bytes(4), grey_reason="torn" if r["grey"] else None,
            proof_tac=None if r["proof_tac"] is None else bytes.fromhex(r["proof_tac"]),
        )  # fmt: skip

    checker = MasterTacChecker.from_key_set(default_key_set())
    grey = [r for r in rows if r["grey"]]
    assert len(grey) > 20
    for r in grey:
        evidence = [record(e, i) for i, e in enumerate(by_card[r["asn"]])]
        verdict = settle_uncertain(record(r, -1), evidence, tac_checker=checker)
        assert verdict.code == {"14": "04"}.get(r["reason"], r["reason"]), (r, verdict.reason)
