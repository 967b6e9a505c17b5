"""One clearing run: check the inputs, run an engine, check the keys, publish the files.

Why the checks sit here and not in an engine: a bad input must fail the same way
on every engine, before anything is written (clear bilingual errors; a re-run after
the fix starts from scratch and gives the same files). In order:

1. every ``*.parquet`` under ``--input`` opens (a truncated file has no footer) and
   has the upload schema's columns and types;
2. every issuer in the uploads has a TAC key, unless ``unknown_issuer="reject"``
   (then its rows are refused ``09``);
3. after the engine: an issuer most of whose TACs fail (``WRONG_KEY_SHARE`` of at
   least ``WRONG_KEY_MIN_ROWS`` checked rows) means the key file holds other keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sscard.clearing.errors import ClearingInputError, UnknownIssuer, WrongIssuerKeys
from sscard.clearing.keys import IssuerKeyProvider, MasterKeyVerifier, TacVerifier
from sscard.clearing.schema import INPUT_COLUMNS, NOT_A_TRANSACTION, PAID, _arrow_type

Engine = Literal["duckdb", "spark", "python"]
WRONG_KEY_MIN_ROWS = 3
WRONG_KEY_SHARE = 0.5


@dataclass
class RunResult:
    summary: dict[str, Any]  # what summary.json holds
    timings: dict[str, float]
    out: Path


def find_uploads(input_dir: Path) -> list[Path]:
    if not input_dir.is_dir():
        raise ClearingInputError(f"no input directory {input_dir}", f"输入目录{input_dir}不存在")
    # regular files only: a FIFO or device named *.parquet must not hang or feed the run
    paths = sorted(
        p for p in input_dir.rglob("*.parquet") if not p.name.startswith(".") and p.is_file()
    )
    if not paths:
        raise ClearingInputError(
            f"no .parquet upload under {input_dir}", f"{input_dir}下没有.parquet上传文件"
        )
    return paths


def validate_uploads(
    paths: list[Path], base: Path
) -> tuple[dict[str, list[str]], int, date | None]:
    """Open every file and check its columns; the files each issuer appears in, the rows,
    and the latest upload date (None when there are no rows)."""
    expected = {name: _arrow_type(kind) for name, kind, _, _ in INPUT_COLUMNS}
    issuers: dict[str, list[str]] = {}
    rows = 0
    latest: date | None = None
    for path in paths:
        rel = str(path.relative_to(base))
        try:
            schema = pq.read_schema(path)
            wanted = [c for c in ("issuer_id", "upload_date") if schema.get_field_index(c) >= 0]
            read = pq.read_table(path, columns=wanted)
            column = read.column("issuer_id") if "issuer_id" in wanted else None
        except (pa.ArrowException, OSError) as exc:
            raise ClearingInputError(
                f"{rel}: not a readable Parquet file (truncated or damaged: {type(exc).__name__})",
                f"{rel}：无法读取的Parquet文件（文件截断或损坏）",
            ) from None
        except KeyError:
            column = None
        missing = [n for n in expected if schema.get_field_index(n) < 0]
        wrong = [
            f"{n} is {schema.field(n).type}, expected {t}"
            for n, t in expected.items()
            if n not in missing and schema.field(n).type != t
        ]
        if missing or wrong or column is None:
            what = "; ".join([*(f"missing {m}" for m in missing), *wrong])
            raise ClearingInputError(
                f"{rel}: not a clearing upload ({what}); see docs/clearing.md",
                f"{rel}：不是清分上传文件（{what}）",
            )
        rows += len(column)
        if len(column):
            newest = pc.max(read.column("upload_date")).as_py()
            latest = newest if latest is None else max(latest, newest)
        for issuer in pc.unique(column).to_pylist():
            issuers.setdefault(str(issuer), []).append(rel)
    return issuers, rows, latest


def _reason_counts(rows: pa.Table) -> dict[str, dict[str, int]]:
    grouped = rows.group_by("reason").aggregate([("amount", "count"), ("amount", "sum")])
    return {
        r["reason"]: {"rows": r["amount_count"], "amount_fen": r["amount_sum"] or 0}
        for r in sorted(grouped.to_pylist(), key=lambda r: r["reason"])
    }


def _key_check(rows: pa.Table) -> list[str]:
    """Issuers whose checked TACs mostly fail (module docstring, step 3)."""
    reason = rows.column("reason")
    checked = pc.and_(
        pc.invert(rows.column("grey")),
        pc.is_in(reason, pa.array(["10", "11", "13", "01"])),
    )
    sub = rows.filter(checked).select(["issuer_id", "reason"])
    sub = sub.append_column("bad", pc.equal(sub.column("reason"), "01").cast(pa.int64()))
    stats = sub.group_by("issuer_id").aggregate([("bad", "count"), ("bad", "sum")])
    return sorted(
        r["issuer_id"]
        for r in stats.to_pylist()
        if r["bad_count"] >= WRONG_KEY_MIN_ROWS and r["bad_sum"] > WRONG_KEY_SHARE * r["bad_count"]
    )


def clear(
    input_dir: str | Path,
    keys: IssuerKeyProvider,
    out: str | Path,
    *,
    engine: Engine = "duckdb",
    master: str | None = None,
    as_of: date | None = None,
    fee_bp: int = 30,
    unknown_issuer: Literal["error", "reject"] = "error",
    verifier: TacVerifier | None = None,
    progress: Callable[[str], None] | None = None,
    spark_session: Any = None,
) -> RunResult:
    """Clear every upload under ``input_dir`` into ``out`` (see the package docs)."""
    from sscard.clearing import engines, outputs

    say = progress or (lambda _m: None)
    base = Path(input_dir)
    target = Path(out)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    paths = find_uploads(base)
    issuers, n_rows, latest = validate_uploads(paths, base)
    verify = verifier or MasterKeyVerifier(keys)
    unknown = {i: f for i, f in sorted(issuers.items()) if not verify.knows(i)}
    if unknown and unknown_issuer == "error":
        listed = "; ".join(f"{i} in {', '.join(files[:3])}" for i, files in unknown.items())
        raise UnknownIssuer(
            f"no TAC key for issuer(s) {listed}: add them to the key file or use"
            " --unknown-issuer reject (refused 09)",
            f"密钥文件中没有发卡机构{', '.join(unknown)}的TAC密钥：请补充密钥，"
            "或使用--unknown-issuer reject（按09拒付）",
        )
    timings["validate"] = time.perf_counter() - t
    say(f"{len(paths)} upload files, {n_rows:,} rows, {len(issuers)} issuers")
    if as_of is None:
        as_of = latest or date.today()
    if engine == "duckdb":
        result = engines.run_duckdb(paths, verify, as_of, say)
    elif engine == "spark":
        result = engines.run_spark(paths, verify, as_of, say, master=master, session=spark_session)
    else:
        from sscard.clearing.baseline import run_python

        result = run_python(paths, keys, as_of, say)
    timings.update(result.timings)
    wrong = _key_check(result.rows)
    if wrong:
        raise WrongIssuerKeys(
            f"most TACs of issuer(s) {', '.join(wrong)} fail: the key file holds other keys"
            " than these cards' (nothing was written)",
            f"发卡机构{', '.join(wrong)}的TAC大多校验失败：密钥文件与卡片密钥不符（未写入任何文件）",
        )
    rows = result.rows
    reasons = _reason_counts(rows)

    def total(codes: frozenset[str] | set[str], what: str) -> int:
        return sum(v[what] for k, v in reasons.items() if k in codes)

    refused_codes = set(reasons) - PAID - NOT_A_TRANSACTION
    gap_kinds = pc.value_counts(result.gaps.column("kind")).to_pylist()
    summary: dict[str, Any] = {
        "schema": "sscard-clearing-summary/1",
        "as_of": as_of.isoformat(),
        "fee_bp": fee_bp,
        "inputs": {"files": [str(p.relative_to(base)) for p in paths], "rows": rows.num_rows},
        "totals": {
            "rows": rows.num_rows,
            "paid": total(PAID, "rows"),
            "paid_fen": total(PAID, "amount_fen"),
            "refused": total(refused_codes, "rows"),
            "refused_fen": total(refused_codes, "amount_fen"),
            "duplicates": total({"03"}, "rows"),
            "grey": int(pc.sum(rows.column("grey").cast(pa.int64())).as_py() or 0),
        },
        "reasons": reasons,
        "gaps": {
            "terminal": next((g["counts"] for g in gap_kinds if g["values"] == "terminal"), 0),
            "card": next((g["counts"] for g in gap_kinds if g["values"] == "card"), 0),
        },
        "unknown_issuers": sorted(unknown),
        "clear_dates": sorted(
            {d.isoformat() for d in result.settlement.column("clear_date").to_pylist()}
        ),
    }
    t = time.perf_counter()
    files = outputs.render(rows, result.settlement, result.gaps, fee_bp, summary)
    outputs.publish(files, target)
    timings["write"] = time.perf_counter() - t
    import json

    summary = json.loads(files["summary.json"])
    say(
        f"done: {summary['totals']['paid']:,} paid, {summary['totals']['refused']:,} refused,"
        f" {summary['totals']['duplicates']:,} duplicates -> {target}"
    )
    return RunResult(summary, timings, target)
