"""Where the clearing SQL runs: DuckDB (embedded default), Spark, and a plain-Python loop.

Each engine takes the validated upload files and a :class:`TacVerifier` and returns
:class:`EngineOutput`: Arrow tables the shared writers (:mod:`sscard.clearing.outputs`)
turn into files, so the engines cannot differ in formatting.

* DuckDB: the uploads as one Arrow table, the per-row check as one vectorised pass
  over big slices of it (not a DuckDB UDF: those get 2,048-row vectors), then
  :mod:`sscard.clearing.sql` over the table with the codes as a column.
* Spark: ``spark.read.parquet`` of the same files (a cluster reads them where they
  are), the check in ``mapInArrow``, the same SQL; the result rows are written by the
  executors as Parquet and read back as Arrow.
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

import numpy as np
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

    import pyarrow.dataset as ds

    schema = input_schema()
    if not paths:
        return schema.empty_table()
    # one dataset scan: files in the given order, read a little faster than one by one
    return ds.dataset([str(p) for p in paths], schema=schema, format="parquet").to_table()


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


#: Rows per call of the vectorised check: big enough that numpy's per-call cost vanishes
#: (DuckDB's own UDF vectors are 2,048 rows: per-vector overhead was most of the time).
CHECK_BATCH = 1 << 18


def check_table(
    table: pa.Table, verifier: TacVerifier, progress: Progress, batch: int = CHECK_BATCH
) -> pa.Array:
    """The per-row check codes of ``table`` (int16), one vectorised pass per batch of
    ``batch`` rows; two batches at a time with the software verifier (numpy and Arrow
    release the GIL). Another verifier (an HSM's client) is called one batch at a time:
    it need not be thread-safe."""
    from concurrent.futures import ThreadPoolExecutor

    from sscard.clearing.keys import MasterKeyVerifier
    from sscard.clearing.tac import CHECK_COLUMNS, check_rows

    narrow = table.select(list(CHECK_COLUMNS))
    slices = [narrow.slice(a, batch) for a in range(0, narrow.num_rows, batch)]
    if len(slices) <= 1:
        return pa.array(check_rows(narrow, verifier), pa.int16())
    done = 0
    codes = []
    workers = 2 if type(verifier) is MasterKeyVerifier else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(lambda t: check_rows(t, verifier), slices):
            codes.append(part)
            done += len(part)
            progress(f"verified {done:,} rows")
    return pa.array(np.concatenate(codes), pa.int16())


def run_duckdb(
    paths: list[Path], verifier: TacVerifier, as_of: date, progress: Progress, threads: int = 2
) -> EngineOutput:
    """The check as one vectorised pass over the uploads' Arrow table (big batches, not
    DuckDB's 2,048-row UDF vectors), then :mod:`sscard.clearing.sql` over that table
    with the codes as a column; the output rows are the uploads taken in the order
    the SQL gives (:data:`sql.RESULT_KEYS`), so the wide columns never enter DuckDB's
    windows, joins or sorts."""
    try:
        import duckdb
    except ImportError:
        raise EngineUnavailable(
            "duckdb is not installed (pip install 'sscard[clearing]')",
            "未安装duckdb（pip install 'sscard[clearing]'）",
        ) from None

    timings: dict[str, float] = {}
    t = time.perf_counter()
    uploads = read_uploads(paths)
    timings["load"] = time.perf_counter() - t
    progress(f"read {uploads.num_rows:,} rows from {len(paths)} files")
    t = time.perf_counter()
    chk = check_table(uploads, verifier, progress)
    timings["verify"] = time.perf_counter() - t
    progress(f"verified {uploads.num_rows:,} rows")
    con = duckdb.connect(config={"threads": threads})
    try:
        t = time.perf_counter()
        # rid: the row's index in ``uploads`` (also which of two identical rows is "first")
        checked = uploads.append_column("chk", chk).append_column(
            "rid", pa.array(np.arange(uploads.num_rows, dtype=np.int64))
        )
        con.register("checked", checked)
        for name, select, materialise in sql.steps(as_of, "hash"):
            kind = "TABLE" if materialise else "VIEW"
            con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {select}")
            if name == "c2":
                check_clashes(con.sql(sql.CLASHES).fetchall())
        keys = con.sql(sql.RESULT_KEYS).to_arrow_table()
        settlement = con.sql(sql.SETTLEMENT).to_arrow_table()
        gaps = con.sql(sql.GAPS).to_arrow_table()
        timings["settle"] = time.perf_counter() - t
    finally:
        con.close()
    rows = uploads.take(keys.column("rid"))
    for name in ("reason", "settle_date", "grey_rule"):
        rows = rows.append_column(name, keys.column(name))
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
        # The workers run this interpreter (it has pyarrow and sscard). One shuffle
        # partition per core: a clearing day is small for Spark, and every extra
        # partition is one more task per stage (Spark's default is 200).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        cores = master.removeprefix("local").strip("[]").split(",")[0]
        n = os.cpu_count() or 2 if cores in ("", "*") else int(cores)
        builder = builder.config("spark.sql.shuffle.partitions", str(n)).config(
            "spark.default.parallelism", str(n)
        )
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


def _spark_rows(result: Any) -> pa.Table:
    """The result rows, written by the executors as Parquet into a private temporary
    folder and read back as Arrow: collecting a million wide rows through the driver's
    block manager (``toArrow``) lost task results under memory pressure. Read back in
    receipt order (a sort in Arrow: the part files' order is Spark's business); rows
    still tied are byte-identical. With a cluster, the temporary folder (``TMPDIR``)
    must be on storage the executors and the driver share."""
    import shutil

    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    folder = tempfile.mkdtemp(prefix="sscard-spark-result-")
    try:
        result.write.mode("overwrite").parquet(folder)
        table = ds.dataset(folder, format="parquet").to_table()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    order = pc.sort_indices(
        table,
        [(k, "ascending") for k in ("upload_date", "file_id", "line_no", "reason")],
    )
    return table.take(order)


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

        # Every step is a view made from a DataFrame, which keeps its analysed plan: a
        # view made from SQL text is analysed again wherever it is used, and nested
        # ones cost Spark's analyser minutes even on a 1,000-row day. The wide input
        # is cached (columnar: each step reads only the columns it uses); the narrow
        # materialised steps are local checkpoints, which also cut their plans.
        checked = (
            df.mapInArrow(check, out_ddl).withColumn("rid", monotonically_increasing_id()).cache()
        )
        checked.createOrReplaceTempView("checked")
        n_rows = checked.count()
        timings["verify"] = time.perf_counter() - t
        progress(f"read and verified {n_rows:,} rows from {len(paths)} files")
        t = time.perf_counter()
        names = ["checked"]
        for name, select, materialise in sql.steps(as_of, "xxhash64"):
            step = spark.sql(select)
            if materialise:
                step = step.localCheckpoint(eager=True)
            step.createOrReplaceTempView(name)
            names.append(name)
            if name == "c2":
                check_clashes([tuple(r) for r in spark.sql(sql.CLASHES).collect()])
        rows = _spark_rows(spark.sql(sql.RESULT))
        settlement = spark.sql(sql.SETTLEMENT).toArrow()
        gaps = spark.sql(sql.GAPS).toArrow()
        timings["settle"] = time.perf_counter() - t
        checked.unpersist()
        for name in names:
            spark.catalog.dropTempView(name)
    finally:
        if session is None:
            spark.stop()
    return _finish(rows, settlement, gaps, timings)
