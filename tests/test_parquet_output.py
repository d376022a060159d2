"""`b12lab batch -o results.parquet`: the CSV output's rows, typed, with the provenance in
the file's metadata."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, one_clear_line

WARD = SAMPLES / "ward_export.txt"
WARD_OPTIONS = ("--date-format", "DD/MM/YYYY", "--unit", "Ferritin=ng/mL", "--keep", "MRN,Ward")

EXPORT = """patient_id,collected,sex,age,B12 (pg/mL),PLT,platelets_unit,Ferritin,ferritin_unit
P1,2026-03-01,F,40,150,95,K/uL,12,ng/mL
P2,2026-03-02,M,55,<100,300,K/uL,40,ug/L
P3,2026-13-45,F,61,600,210,K/uL,80,ng/mL
P4,2026-03-04,M,70,>1476,,,20,furlongs
P5,2026-03-05,F,33,420,180,K/uL,150,ug/L
"""


def csv_rows(cli, source, *options) -> list[dict]:
    result = cli("batch", source, *options, "--no-progress")
    assert result.exit_code in (0, 3), result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def write_parquet(cli, source, target, *options) -> pa.Table:
    result = cli("batch", source, *options, "-o", target, "--no-progress")
    assert result.exit_code in (0, 3), result.stderr
    assert result.stdout == ""
    return pq.read_table(target)


def test_parquet_holds_the_csv_rows_in_order_with_typed_columns(cli, tmp_path):
    source = tmp_path / "export.csv"
    source.write_text(EXPORT, encoding="utf-8")
    rows = csv_rows(cli, source)
    table = write_parquet(cli, source, tmp_path / "results.parquet")
    records = table.to_pylist()

    assert table.num_rows == len(rows) == 5
    assert [r["line"] for r in records] == [int(r["line"]) for r in rows] == [2, 3, 4, 5, 6]
    assert [r["patient_id"] for r in records] == [r["patient_id"] for r in rows]
    schema = table.schema
    assert schema.field("line").type == pa.int64()
    assert schema.field("panel_date").type == pa.date32()
    assert schema.field("b12_status").type == pa.string()
    assert schema.field("platelets_flag").type == pa.string()
    assert schema.field("platelets_findings").type == pa.list_(pa.string())
    assert schema.field("other_findings").type == pa.list_(pa.string())
    assert schema.field("b12_pmol_l").type == pa.float64()
    assert schema.field("b12_pmol_l_comparator").type == pa.string()
    assert "provenance" not in schema.names

    assert records[0]["panel_date"] == dt.date(2026, 3, 1)
    for record, row in zip(records, rows, strict=True):
        assert record["b12_status"] == row["b12_status"]
        assert (record["platelets_flag"] or "") == row["platelets_flag"]
        assert " ".join(record["platelets_findings"]) == row["platelets_findings"]
        assert " ".join(record["ferritin_findings"]) == row["ferritin_findings"]
        assert " ".join(record["other_findings"]) == row["other_findings"]
        assert "; ".join(record["warnings"]) == row["warnings"]
        assert (record["error"] or "") == row["error"]
        shown = row["b12_pmol_l"]
        number = record["b12_pmol_l"]
        comparator = record["b12_pmol_l_comparator"] or ""
        assert (comparator + repr(number) if number is not None else "") == (
            comparator + repr(float(shown.lstrip("<>="))) if shown else ""
        )

    # A censored value keeps its number and its comparator apart.
    assert records[1]["b12_pmol_l_comparator"] == "<"
    assert records[1]["b12_pmol_l"] == float(rows[1]["b12_pmol_l"].lstrip("<"))
    assert records[3]["b12_pmol_l_comparator"] == ">"
    assert records[0]["b12_pmol_l_comparator"] is None
    # The bad date and the unknown unit are rows of their own, in place, with their errors.
    assert records[2]["panel_date"] is None and "2026-13-45" in records[2]["error"]
    assert "furlongs" in records[3]["error"]
    assert records[4]["error"] is None


def test_the_provenance_and_the_options_are_in_the_file_metadata(cli, tmp_path):
    rows = csv_rows(cli, WARD, *WARD_OPTIONS)
    target = tmp_path / "ward.parquet"
    table = write_parquet(cli, WARD, target, *WARD_OPTIONS)
    metadata = {
        key.decode(): value.decode() for key, value in pq.read_metadata(target).metadata.items()
    }
    assert metadata["b12lab.provenance"] == rows[0]["provenance"]
    provenance = dict(part.split("=", 1) for part in rows[0]["provenance"].split())
    assert metadata["b12lab.ranges_sha256"] == provenance["ranges_sha256"]
    assert metadata["b12lab.b12lab_version"] == provenance["b12lab_version"]
    options = json.loads(metadata["b12lab.options"])
    assert options["policy"]["units"] == {"ferritin": "ng/mL"}
    assert options["keep"] == ["MRN,Ward"]
    # Kept columns and values come through as in the CSV.
    assert table.column("MRN").to_pylist() == [r["MRN"] for r in rows]
    assert table.column("ferritin_ug_l").to_pylist() == [
        float(r["ferritin_ug_l"]) if r["ferritin_ug_l"] else None for r in rows
    ]


def test_format_parquet_writes_parquet_whatever_the_file_is_called(cli, tmp_path):
    target = tmp_path / "results.out"
    result = cli("batch", WARD, *WARD_OPTIONS, "--format", "parquet", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert pq.read_table(target).num_rows == 3


def test_parquet_is_never_written_to_standard_output(cli, tmp_path):
    for options in (("--format", "parquet"), ("--format", "parquet", "-o", "-")):
        result = cli("batch", WARD, *WARD_OPTIONS, *options)
        assert result.exit_code == 2
        assert result.stdout == ""
        line = one_clear_line(result)
        assert "standard output" in line and "-o FILE.parquet" in line


def test_a_refused_run_leaves_the_previous_parquet_file_as_it_was(cli, tmp_path):
    target = tmp_path / "results.parquet"
    write_parquet(cli, WARD, target, *WARD_OPTIONS)
    before = target.read_bytes()
    result = cli("batch", WARD, "--keep", "no such column", "-o", target)
    assert result.exit_code == 2
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]


def test_parquet_and_message_inputs_write_parquet_too(cli, tmp_path):
    source = tmp_path / "export.csv"
    source.write_text(EXPORT, encoding="utf-8")
    first = write_parquet(cli, source, tmp_path / "first.parquet")
    # A Parquet input (read by the Arrow path) gives the same rows as its CSV.
    pq.write_table(
        pa.table(
            {
                name: [r[name] for r in csv.DictReader(io.StringIO(EXPORT))]
                for name in EXPORT.splitlines()[0].split(",")
            }
        ),
        tmp_path / "export.parquet",
    )
    again = write_parquet(cli, tmp_path / "export.parquet", tmp_path / "again.parquet")
    assert again.column("b12_status").to_pylist() == first.column("b12_status").to_pylist()
    assert again.column("line").to_pylist() == [1, 2, 3, 4, 5]
    # A FHIR bulk file: one row per panel, as its CSV output.
    rows = csv_rows(cli, SAMPLES / "fhir_bulk.ndjson")
    table = write_parquet(cli, SAMPLES / "fhir_bulk.ndjson", tmp_path / "fhir.parquet")
    assert table.column("patient_id").to_pylist() == [r["patient_id"] or None for r in rows]


def test_parquet_is_never_written_to_a_terminal(tmp_path):
    import shlex
    import sys

    pexpect = pytest.importorskip("pexpect")
    command = f"{shlex.quote(sys.executable)} -m b12lab batch {shlex.quote(str(WARD))}"
    for target in ("/dev/tty", "/dev/stdout"):
        child = pexpect.spawn(
            "bash",
            ["-c", f"{command} --format parquet -o {target}"],
            cwd=str(tmp_path),
            encoding="utf-8",
            codec_errors="replace",
            timeout=120,
        )
        child.expect(pexpect.EOF)
        child.close()
        screen = child.before
        assert child.exitstatus == 2, screen
        assert f"not written to the terminal {target}" in screen
        assert "-o FILE.parquet" in screen and "PAR1" not in screen
        assert list(tmp_path.iterdir()) == []


def _benchmark_export(path, rows: int) -> None:
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks/throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    throughput.generate(path, rows)


@pytest.mark.parametrize("source", ["generated", "wide_us.csv", "ward", "refused", "parquet"])
def test_the_columnar_path_writes_the_rows_the_row_path_writes(
    source, tmp_path, ranges, monkeypatch
):
    from b12lab.batch import drain
    from b12lab.batch.run import run_batch
    from b12lab.reading.policy import ReadPolicy
    from b12lab.render.parquet import ParquetRecords

    options = {"today": dt.date(2026, 11, 20), "progress": False, "output_format": "parquet"}
    if source == "generated":
        path = tmp_path / "export.csv"
        _benchmark_export(path, 3000)
    elif source == "wide_us.csv":
        path = SAMPLES / "wide_us.csv"
    elif source == "ward":
        path = WARD
        options["keep"] = ["MRN,Ward"]
        options["policy"] = ReadPolicy(
            decimal="auto", units={"ferritin": "ng/mL"}, date_order="dmy"
        )
    else:
        path = tmp_path / "export.csv"
        path.write_text(EXPORT, encoding="utf-8")
        if source == "parquet":
            table = pa.table(
                {
                    name: [row[name] for row in csv.DictReader(io.StringIO(EXPORT))]
                    for name in EXPORT.splitlines()[0].split(",")
                }
            )
            path = tmp_path / "export.parquet"
            pq.write_table(table, path)
    # Row groups of a few rows: each block is flushed part way, around refused rows too.
    monkeypatch.setattr("b12lab.render.parquet.ROW_GROUP_ROWS", 2)
    blocks = []
    write_block = ParquetRecords.write_block
    monkeypatch.setattr(
        ParquetRecords, "write_block", lambda self, d: blocks.append(1) or write_block(self, d)
    )
    by_columns, by_rows = tmp_path / "columns.parquet", tmp_path / "rows.parquet"
    run_batch(str(path), ranges, output=str(by_columns), **options)
    assert blocks, "the columnar path was not taken"
    monkeypatch.setattr(drain, "reads_by_columns", lambda interpreter: False)
    run_batch(str(path), ranges, output=str(by_rows), **options)
    first, second = pq.read_table(by_columns), pq.read_table(by_rows)
    csv_rows = run_batch(
        str(path), ranges, output=str(tmp_path / "out.csv"), **{**options, "output_format": "csv"}
    ).panels
    assert first.num_rows == second.num_rows == csv_rows
    assert pq.read_metadata(by_columns).num_row_groups > 1
    assert first.schema == second.schema
    for name in first.column_names:
        assert first.column(name).to_pylist() == second.column(name).to_pylist(), name
    assert pq.read_metadata(by_columns).metadata == pq.read_metadata(by_rows).metadata
