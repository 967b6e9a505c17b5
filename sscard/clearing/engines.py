"""Where the clearing SQL runs: DuckDB (embedded default), Spark, and a plain-Python loop.

Each engine takes the validated upload files and a :class:`TacVerifier` and returns
:class:`EngineOutput`: Arrow tables the shared writers (:mod:`sscard.clearing.outputs`)
turn into files, so the engines cannot differ in formatting.

* DuckDB: the uploads as one Arrow table, the per-row check as an Arrow UDF
  (``type='arrow'``) over rows ordered by card, so one 2,048-row vector holds whole
  cards and each card's cipher is built once; then :mod:`sscard.clearing.sql`.
* Spark: ``spark.read.parquet`` of the same files (a cluster reads them where they
  are), the check in ``mapInArrow``, the same SQL; results come back with ``toArrow``.
* Python: the same rules as loops over dicts with :func:`purchase_tac` per row; the
  benchmark's baseline and a third opinion in the tests.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from sscard.clearing import sql
from sscard.clearing.errors import ClearingInputError, EngineUnavailable
from sscard.clearing.keys import TacVerifier
from sscard.clearing.schema import INPUT_COLUMNS, input_schema

Progress = Callable[[str], None]

SETTLEMENT_SCHEMA = pa.schema(
    [
        ("clear_date", pa.date32()),
        ("issuer_city", pa.string()),
        ("acquirer_id", pa.string()),
        ("n_paid", pa.int64()),
        ("gross_fen", pa.int64()),
        ("n_refused", pa.int64()),
        ("refused_fen", pa.int64()),
    ]
)
GAPS_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("gap_key", pa.string()),
        ("first_missing", pa.int64()),
        ("last_missing", pa.int64()),
    ]
)


@dataclass
class EngineOutput:
    rows: pa.Table  # every input row with reason, settle_date, grey_rule (result_schema)
    settlement: pa.Table  # SETTLEMENT_SCHEMA
    gaps: pa.Table  # GAPS_SCHEMA
    timings: dict[str, float]


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Engine output in the shared schema (Spark's nullability and string types differ)."""
    table = table.select(schema.names)
    arrays = [table.column(f.name).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def check_clashes(clashes: list[tuple[str, int]]) -> None:
    """Refuse input where one (file id, line no) holds two different rows: a batch name
    sent again with other content (J1 sends a re-used file name to a repeat folder)."""
    if clashes:
        listed = ", ".join(f"{f} line {n}" for f, n in clashes)
        raise ClearingInputError(
            f"batch rows sent twice with different content: {listed}; remove the re-sent"
            " file or give it a new batch id",
            f"同一批次行号出现不同内容：{listed}；请删除重发文件或使用新批次号",
        )


def read_uploads(paths: list[Path]) -> pa.Table:
    """The upload files as one table in the input schema (validated beforehand)."""
    import pyarrow.parquet as pq

    schema = input_schema()
    tables = [pq.read_table(p, schema=schema) for p in paths]
    return pa.concat_tables(tables) if tables else schema.empty_table()


# --------------------------------------------------------------------------- DuckDB


def _duck_type(arrow_type: str) -> str:
    return {
        "string": "VARCHAR",
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "date32": "DATE",
    }[arrow_type]


def run_duckdb(
    paths: list[Path], verifier: TacVerifier, as_of: date, progress: Progress, threads: int = 2
) -> EngineOutput:
    try:
        import duckdb
    except ImportError:
        raise EngineUnavailable(
            "duckdb is not installed (pip install 'sscard[clearing]')",
            "未安装duckdb（pip install 'sscard[clearing]'）",
        ) from None
    from sscard.clearing.tac import CHECK_COLUMNS, check_rows

    timings: dict[str, float] = {}
    t = time.perf_counter()
    uploads = read_uploads(paths)
    timings["load"] = time.perf_counter() - t
    progress(f"read {uploads.num_rows:,} rows from {len(paths)} files")
    types = {name: kind for name, kind, _, _ in INPUT_COLUMNS}
    state = {"rows": 0, "next": 100_000}

    def check(cols: list[pa.Array]) -> pa.Array:
        batch = pa.table(dict(zip(CHECK_COLUMNS, cols, strict=True)))  # chunked arrays
        codes = check_rows(batch, verifier)
        state["rows"] += len(codes)
        if state["rows"] >= state["next"]:
            progress(f"verified {state['rows']:,} rows")
            state["next"] += 100_000
        return pa.array(codes, pa.int16())

    # DuckDB reads the parameter count from the signature: one name per column.
    def udf(
        issuer_id: pa.Array, city_code: pa.Array, asn: pa.Array, card_ctr: pa.Array,
        amount: pa.Array, tx_type: pa.Array, term_id: pa.Array, term_seq: pa.Array,
        tx_time: pa.Array, tac: pa.Array, grey: pa.Array, key_ver: pa.Array,
        alg_id: pa.Array, proof_tac: pa.Array,
    ) -> pa.Array:  # fmt: skip
        return check(
            [issuer_id, city_code, asn, card_ctr, amount, tx_type, term_id, term_seq,
             tx_time, tac, grey, key_ver, alg_id, proof_tac]
        )  # fmt: skip

    con = duckdb.connect(config={"threads": threads})
    try:
        # rid: a unique row id (which of two fully identical rows is "first" cannot show)
        uploads = uploads.append_column("rid", pa.array(range(uploads.num_rows), pa.int64()))
        con.register("uploads", uploads)
        con.create_function(  # type: ignore[call-overload]
            "tac_check",
            udf,
            [_duck_type(types[c]) for c in CHECK_COLUMNS],
            "SMALLINT",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
        t = time.perf_counter()
        cols = ", ".join(CHECK_COLUMNS)
        # The UDF reads a narrow projection ordered by card (sorting 14 columns, not 35),
        # so each 2,048-row vector holds whole cards: one key set-up per card.
        con.execute(
            f"CREATE TEMP TABLE chk AS SELECT rid, tac_check({cols}) AS chk"
            f" FROM (SELECT rid, {cols} FROM uploads ORDER BY asn, card_ctr)"
        )
        con.execute(
            "CREATE TEMP TABLE checked AS SELECT u.*, c.chk FROM uploads u JOIN chk c"
            " ON c.rid = u.rid"
        )
        timings["verify"] = time.perf_counter() - t
        progress(f"verified {uploads.num_rows:,} rows")
        t = time.perf_counter()
        for name, select, materialise in sql.steps(as_of, "hash"):
            kind = "TABLE" if materialise else "VIEW"
            con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {select}")
            if name == "c2":
                check_clashes(con.sql(sql.CLASHES).fetchall())
        rows = con.sql(sql.RESULT).to_arrow_table()
        settlement = con.sql(sql.SETTLEMENT).to_arrow_table()
        gaps = con.sql(sql.GAPS).to_arrow_table()
        timings["settle"] = time.perf_counter() - t
    finally:
        con.close()
    return _finish(rows, settlement, gaps, timings)


def _finish(
    rows: pa.Table, settlement: pa.Table, gaps: pa.Table, timings: dict[str, float]
) -> EngineOutput:
    from sscard.clearing.schema import result_schema

    return EngineOutput(
        _cast(rows, result_schema()),
        _cast(settlement, SETTLEMENT_SCHEMA),
        _cast(gaps, GAPS_SCHEMA),
        timings,
    )


# --------------------------------------------------------------------------- Spark


def _spark_type(arrow_type: str) -> str:
    return {
        "string": "STRING",
        "int16": "SMALLINT",
        "int32": "INT",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "date32": "DATE",
    }[arrow_type]


def spark_session(master: str | None) -> Any:
    """A SparkSession: ``local[*]`` unless ``master`` names another (a cluster URL)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailable(
            "pyspark is not installed (pip install 'sscard[spark]')",
            "未安装pyspark（pip install 'sscard[spark]'）",
        ) from None
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EngineUnavailable(
            "Spark needs Java 17+ (Debian: apt-get install default-jre-headless)",
            "Spark需要Java 17以上（Debian：apt-get install default-jre-headless）",
        )
    master = master or "local[*]"
    builder = (
        SparkSession.builder.master(master)
        .appName("sscard-clearing")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200000")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # cached steps are read once or twice: compressing them costs more than it saves
        .config("spark.sql.inMemoryColumnarStorage.compressed", "false")
        # Spark's default warehouse is ./spark-warehouse: never write into the current
        # directory (the job keeps no tables; a private temporary folder will do).
        .config("spark.sql.warehouse.dir", _warehouse())
    )
    if master.startswith("local"):
        # The workers run this interpreter (it has pyarrow and sscard); few partitions.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.sql.shuffle.partitions", "4")
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _warehouse() -> str:
    """An empty private folder for Spark's warehouse, removed when the process ends."""
    import atexit
    import shutil

    path = tempfile.mkdtemp(prefix="sscard-spark-warehouse-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run_spark(
    paths: list[Path],
    verifier: TacVerifier,
    as_of: date,
    progress: Progress,
    master: str | None = None,
    session: Any = None,
) -> EngineOutput:
    from sscard.clearing.tac import check_rows

    timings: dict[str, float] = {}
    t = time.perf_counter()
    spark = session or spark_session(master)
    timings["start"] = time.perf_counter() - t
    try:
        ddl = ", ".join(f"{n} {_spark_type(k)}" for n, k, _, _ in INPUT_COLUMNS)
        t = time.perf_counter()
        df = spark.read.schema(ddl).parquet(*[str(p) for p in paths])
        out_ddl = f"{ddl}, chk SMALLINT"

        def check(batches: Any) -> Any:
            for batch in batches:
                codes = check_rows(batch, verifier)
                yield batch.append_column("chk", pa.array(codes, pa.int16()))

        from pyspark.sql.functions import monotonically_increasing_id

        checked = (
            df.sortWithinPartitions("asn", "card_ctr")
            .mapInArrow(check, out_ddl)
            .withColumn("rid", monotonically_increasing_id())
        )
        checked.createOrReplaceTempView("checked")
        spark.sql("CACHE TABLE checked")
        n_rows = spark.sql("SELECT count(*) AS n FROM checked").collect()[0]["n"]
        timings["verify"] = time.perf_counter() - t
        progress(f"read and verified {n_rows:,} rows from {len(paths)} files")
        t = time.perf_counter()
        for name, select, materialise in sql.steps(as_of, "xxhash64"):
            if materialise:
                spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
                spark.sql(f"DROP VIEW IF EXISTS {name}")
                spark.sql(f"CACHE TABLE {name} AS {select}")
            else:
                spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
            if name == "c2":
                check_clashes([tuple(r) for r in spark.sql(sql.CLASHES).collect()])
        rows = spark.sql(sql.RESULT).toArrow()
        settlement = spark.sql(sql.SETTLEMENT).toArrow()
        gaps = spark.sql(sql.GAPS).toArrow()
        timings["settle"] = time.perf_counter() - t
        for name in ("checked", "copies", "ranks", "c4", "decided"):
            spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
    finally:
        if session is None:
            spark.stop()
    return _finish(rows, settlement, gaps, timings)
