"""The table functions on a cluster: Dask distributed (two worker processes) and
PySpark in local mode give the records `b12lab batch` writes for the same data."""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import REPO

import b12lab

AS_OF = "2026-11-20"
ROWS = 1200


def _generate(path, rows: int) -> None:
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks/throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(path, rows)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A generated wide export as Parquet, with a `record` column numbering its rows, and
    what `b12lab batch` writes for that file."""
    from typer.testing import CliRunner

    from b12lab.cli import app

    folder = tmp_path_factory.mktemp("cluster")
    export = folder / "export.csv"
    _generate(export, ROWS)
    names = pacsv.read_csv(export).column_names
    table = pacsv.read_csv(
        export,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=False
        ),
    )
    table = table.append_column("record", pa.array(range(1, ROWS + 1), pa.int64()))
    path = folder / "export.parquet"
    pq.write_table(table, path, row_group_size=300)
    result = CliRunner().invoke(app, ["batch", str(path), "--as-of", AS_OF, "--no-progress"])
    assert result.exit_code == 0, result.stderr
    schema = b12lab.output_schema()
    expected = pacsv.read_csv(
        io.BytesIO(result.stdout.encode("utf-8")),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema if f.name != "row"},
            null_values=[""],
            strings_can_be_null=False,
        ),
    )
    assert expected.num_rows == ROWS
    return path, table, expected


def _same_records(result: pa.Table, expected: pa.Table) -> None:
    ordered = result.sort_by("line").drop_columns(["row"]).cast(expected.schema)
    assert ordered.num_rows == expected.num_rows
    assert ordered.equals(expected)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        # The scheduler serves HTTP even without a dashboard, by default on port 8787;
        # port 0 takes a free one, so another cluster on the machine causes no warning.
        dashboard_address=":0",
        memory_limit="1GiB",
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_map_partitions_equals_batch(dataset, dask_client):
    import dask.dataframe as dd

    _, table, expected = dataset
    frame = dd.from_pandas(table.to_pandas(), npartitions=4)
    result = frame.map_partitions(
        b12lab.interpret_frame,
        today=AS_OF,
        line_column="record",
        meta=b12lab.output_frame(table.schema, line_column="record"),
    ).compute()
    assert len(dask_client.scheduler_info()["workers"]) == 2
    _same_records(pa.Table.from_pandas(result, preserve_index=False), expected)


def test_each_dask_worker_process_gives_its_share(dataset, dask_client):
    """Partitions pinned to each worker process in turn: both processes decide, and the
    pieces together are the batch output."""
    _, table, expected = dataset
    workers = sorted(dask_client.scheduler_info()["workers"])
    job = functools.partial(b12lab.interpret_table, today=AS_OF, line_column="record")
    parts = [table.slice(start, 300) for start in range(0, ROWS, 300)]
    futures = [
        dask_client.submit(job, part, workers=[workers[n % 2]], pure=False)
        for n, part in enumerate(parts)
    ]
    results = dask_client.gather(futures)
    where = dask_client.who_has(futures)
    assert {worker for held in where.values() for worker in held} == set(workers)
    _same_records(pa.concat_tables(results), expected)


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("b12lab-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "250")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_map_in_arrow_equals_batch(dataset, spark):
    from pyspark.sql.pandas.types import from_arrow_schema

    path, _, expected = dataset
    frame = spark.read.parquet(str(path)).repartition(3)
    job = functools.partial(b12lab.interpret_batches, today=AS_OF, line_column="record")
    schema = b12lab.output_schema(frame.schema.names, line_column="record")
    result = frame.mapInArrow(job, from_arrow_schema(schema))
    collected = result.toArrow()
    _same_records(collected, expected)
