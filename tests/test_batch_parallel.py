"""A large export decided on both cores: the same records, in the same order, as one
process gives, and no process left behind."""

from __future__ import annotations

import importlib.util
import multiprocessing

import pytest
from conftest import REPO

from b12lab.batch import columnar


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks/throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    path = tmp_path_factory.mktemp("export") / "export.csv"
    throughput.generate(path, 6000)
    return path


def _forks_counted(monkeypatch) -> list[bool]:
    """Fork for every block of new keys; the list says, per run, whether deciders forked."""
    monkeypatch.setattr(columnar, "PARALLEL_KEYS", 2)
    monkeypatch.setattr(columnar, "PARALLEL_TEMPLATES", 2)  # JSON records' templates
    forked: list[bool] = []
    original = columnar.ColumnarInterpreter._forked

    def counted(self):
        pool = original(self)
        forked.append(pool is not None)
        return pool

    monkeypatch.setattr(columnar.ColumnarInterpreter, "_forked", counted)
    return forked


@pytest.mark.parametrize("output_format", ["csv", "ndjson", "json", "parquet"])
def test_two_processes_write_what_one_writes(cli, export, tmp_path, monkeypatch, output_format):
    forked = _forks_counted(monkeypatch)
    outputs = {}
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"jobs{jobs}.{output_format}"
        result = cli("batch", export, "-o", out, "--as-of", "2026-11-20", "--jobs", jobs)
        assert result.exit_code == 0, result.stderr
        outputs[jobs] = out.read_bytes()
    assert len(outputs["1"]) > 100_000
    assert forked and all(forked)  # the runs with --jobs 2 and 3 forked deciders
    if output_format == "parquet":
        import pyarrow.parquet as pq

        tables = {jobs: pq.read_table(tmp_path / f"jobs{jobs}.parquet") for jobs in outputs}
        assert tables["2"].num_rows == 6000
        assert tables["2"].equals(tables["1"]) and tables["3"].equals(tables["1"])
    else:
        assert outputs["2"] == outputs["1"] and outputs["3"] == outputs["1"]
    assert multiprocessing.active_children() == []


def test_jobs_must_be_one_or_more(cli, export):
    result = cli("batch", export, "--jobs", "0")
    assert result.exit_code == 2
    assert "--jobs" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_parquet_or_arrow_input_is_decided_on_both_cores_alike(
    cli, export, tmp_path, monkeypatch, kind
):
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    table = pacsv.read_csv(
        export, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    )  # numbers stored as numbers, as a warehouse writes them
    source = tmp_path / f"export.{kind}"
    if kind == "parquet":
        pq.write_table(table, source, row_group_size=1500)
    else:
        with ipc.new_file(source, table.schema) as writer:
            writer.write_table(table, max_chunksize=1500)
    forked = _forks_counted(monkeypatch)
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.csv"
        result = cli("batch", source, "-o", out, "--as-of", "2026-11-20", "--jobs", jobs)
        assert result.exit_code == 0, result.stderr
        outputs[jobs] = out.read_bytes()
    assert outputs["1"].count(b"\n") == 6001
    assert forked and all(forked)
    assert outputs["2"] == outputs["1"]
    assert multiprocessing.active_children() == []
