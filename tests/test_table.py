"""Parquet and Arrow IPC exports in `b12lab batch`, and the Arrow table functions.

A warehouse file holding the same rows as a CSV export gives the same
records (its `line` is the record number, one less than the CSV's line,
which counts the header); `interpret_table` gives exactly the cells `b12lab
batch` writes.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from conftest import REPO, one_clear_line

import b12lab

AS_OF = "2026-11-20"
SHARED = Path("/work/shared/samples")
CSV_SAMPLES = sorted(
    {p.name: p for p in [*SHARED.glob("*.csv"), *(REPO / "examples").glob("*.csv")]}.values()
)


def text_table(path: Path) -> pa.Table:
    """A CSV export as an all-text Arrow table, empty cells kept as empty text."""
    header = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows_after_names=0))
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header.column_names},
            strings_can_be_null=False,
        ),
    )


def write(table: pa.Table, path: Path, kind: str) -> Path:
    if kind == "parquet":
        pq.write_table(table, path, row_group_size=2)  # several batches even when small
    elif kind == "arrow-file":
        with ipc.new_file(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    else:
        with ipc.new_stream(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    return path


def records(text: str) -> pa.Table:
    """Batch CSV output read with the table functions' fixed schema (no `row`)."""
    schema = b12lab.output_schema()
    return pacsv.read_csv(
        io.BytesIO(text.encode("utf-8")),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema if f.name != "row"},
            null_values=[""],
            strings_can_be_null=False,
        ),
    )


def batch(cli, source, *args, input=None):
    result = cli("batch", source, "--as-of", AS_OF, "--no-progress", *args, input=input)
    assert result.exit_code in (0, 3), result.stderr
    return result.stdout


def generate(path: Path, rows: int) -> None:
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks/throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(path, rows)


def without_line(table: pa.Table) -> pa.Table:
    return table.drop_columns(["line"])


@pytest.mark.parametrize("kind", ["parquet", "arrow-file", "arrow-stream"])
@pytest.mark.parametrize("sample", CSV_SAMPLES, ids=lambda p: p.name)
def test_warehouse_file_gives_the_csv_records(cli, tmp_path, sample, kind):
    table = text_table(sample)
    path = write(table, tmp_path / f"export.{kind}", kind)
    from_csv = records(batch(cli, sample))
    from_file = records(batch(cli, path))
    assert from_file.num_rows == from_csv.num_rows > 0
    assert without_line(from_file).equals(without_line(from_csv))
    assert from_file["line"].to_pylist() == [n - 1 for n in from_csv["line"].to_pylist()]


@pytest.mark.parametrize("options", [[], ["--timeline"], ["--format", "ndjson"]])
def test_long_export_and_other_outputs_match_csv(cli, tmp_path, options):
    sample = REPO / "examples/long_lis.csv"
    path = write(text_table(sample), tmp_path / "long.parquet", "parquet")
    from_csv, from_file = batch(cli, sample, *options), batch(cli, path, *options)
    if "ndjson" in options:
        import json

        csv_docs = [json.loads(line) for line in from_csv.splitlines()]
        file_docs = [json.loads(line) for line in from_file.splitlines()]
        for doc in csv_docs + file_docs:
            doc.pop("lines")
        assert file_docs == csv_docs and len(csv_docs) == 2
    else:
        assert without_line(records(from_file)).equals(without_line(records(from_csv)))


@pytest.mark.parametrize("kind", ["arrow-stream", "arrow-file"])
def test_arrow_ipc_on_stdin(cli, tmp_path, kind):
    sample = REPO / "examples/wide_us.csv"
    path = write(text_table(sample), tmp_path / "export.ipc", kind)
    from_stdin = records(batch(cli, "-", input=path.read_bytes()))
    assert from_stdin.equals(records(batch(cli, path)))
    assert from_stdin.num_rows == 5


def test_typed_columns_read_like_csv_cells(cli, tmp_path):
    """Numbers with the unit in the header, dates, timestamps and nulls: the CSV's records."""
    csv_path = tmp_path / "typed.csv"
    csv_path.write_text(
        "patient_id,collected,sex,age,B12 (pg/mL),PLT (10^9/L),Ferritin (ng/mL),ANC (10^9/L)\n"
        "T1,2026-10-01,F,54,150,95,450,1.1\n"
        "T2,2026-10-02,M,61,,300,,2.5\n"
        "T3,2026-10-03,F,33,820.5,650,12,\n",
        encoding="utf-8",
    )
    table = pa.table(
        {
            "patient_id": ["T1", "T2", "T3"],
            "collected": pa.array(
                [1790812800, 1790899200, 1790985600], pa.timestamp("s", tz="UTC")
            ),
            "sex": ["F", "M", "F"],
            "age": pa.array([54, 61, 33], pa.int32()),
            "B12 (pg/mL)": [150, None, 820.5],
            "PLT (10^9/L)": pa.array([95, 300, 650], pa.int16()),
            "Ferritin (ng/mL)": pa.array([450, None, 12], pa.float32()),
            "ANC (10^9/L)": [1.1, 2.5, float("nan")],
        }
    )
    path = write(table, tmp_path / "typed.parquet", "parquet")
    from_file, from_csv = records(batch(cli, path)), records(batch(cli, csv_path))
    assert without_line(from_file).equals(without_line(from_csv))
    assert from_file["panel_date"].to_pylist()[0].isoformat() == "2026-10-01"
    assert from_file["b12_status"].to_pylist() == ["deficient", "unknown", "normal"]


def test_stored_number_is_exact_whatever_the_text_columns_use(cli, tmp_path):
    """1.476 stored as a number is 1.476, even where text cells use a decimal comma."""
    table = pa.table(
        {
            "patient_id": ["D1", "D2"],
            "b12": ["180,5 pmol/L", "300"],  # text: shows a decimal comma
            "ANC (10^9/L)": [1.476, 1.2],  # stored numbers
        }
    )
    path = write(table, tmp_path / "comma.parquet", "parquet")
    result = cli("batch", path, "--format", "ndjson", "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    import json

    first = json.loads(result.stdout.splitlines()[0])
    anc = next(m for m in first["measurements"] if m["analyte"] == "anc")
    assert anc["value"] == pytest.approx(1.476, abs=0.005)  # not 1476, an impossible count
    assert first["errors"] == []
    assert "decimal mark: ','" in result.stderr


def test_number_without_unit_is_assumed_and_said_or_refused_with_strict(cli, tmp_path):
    table = pa.table({"patient_id": ["U1"], "b12": [120.0]})
    path = write(table, tmp_path / "u.parquet", "parquet")
    out = records(batch(cli, path))
    assert "no unit given; '120.0' read as pmol/L" in out["warnings"][0].as_py()
    strict = cli("batch", path, "--strict", "--as-of", AS_OF)
    assert strict.exit_code == 3
    assert records(strict.stdout)["error"][0].as_py() != ""
    given = records(batch(cli, path, "--unit", "b12=pg/mL"))
    assert given["warnings"][0].as_py() == "" and given["b12_status"][0].as_py() == "deficient"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated.parquet", "head"),
        ("garbage.parquet", b"PAR1 this is not parquet at all"),
        ("text.parquet", b"patient_id,b12\nP1,180\n"),
        ("truncated.arrow", "arrow-head"),
        ("garbage.arrow", b"ARROW1\x00\x00\x01\x02\x03"),
    ],
)
def test_corrupt_file_exits_2_with_one_line_and_leaves_output(cli, tmp_path, name, content):
    good = write(text_table(REPO / "examples/wide_us.csv"), tmp_path / "good", "parquet")
    if content == "head":
        content = good.read_bytes()[:300]
    elif content == "arrow-head":
        whole = write(text_table(REPO / "examples/wide_us.csv"), tmp_path / "w", "arrow-file")
        content = whole.read_bytes()[:400]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.csv"
    out.write_text("earlier result\n")
    result = cli("batch", path, "-o", out)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert name in line and ("Parquet" in line or "Arrow" in line)
    assert out.read_text() == "earlier result\n"


def test_parquet_on_stdin_is_refused_with_the_fix(cli, tmp_path):
    path = write(text_table(REPO / "examples/wide_us.csv"), tmp_path / "x.parquet", "parquet")
    result = cli("batch", "-", input=path.read_bytes())
    assert result.exit_code == 2
    assert "Arrow IPC stream" in one_clear_line(result)


def test_input_format_forces_the_reader(cli, tmp_path):
    path = write(text_table(REPO / "examples/wide_us.csv"), tmp_path / "export.bin", "arrow-file")
    assert records(batch(cli, path, "--input-format", "arrow")).num_rows == 5
    wrong = cli("batch", path, "--input-format", "parquet")
    assert wrong.exit_code == 2 and "Parquet" in one_clear_line(wrong)
    assert cli("interpret", path, "--input-format", "parquet").exit_code == 2


def test_unused_column_of_any_type_is_ignored_and_a_used_one_refused(cli, tmp_path):
    lists = pa.array([[1, 2]], pa.list_(pa.int64()))
    path = write(
        pa.table({"patient_id": ["L1"], "b12": ["180 pg/mL"], "tags": lists}),
        tmp_path / "l.parquet",
        "parquet",
    )
    assert records(batch(cli, path))["b12_status"].to_pylist() == ["deficient"]
    used = write(pa.table({"patient_id": ["L1"], "b12": lists}), tmp_path / "u.parquet", "parquet")
    result = cli("batch", used)
    assert result.exit_code == 2 and "'b12'" in one_clear_line(result)


# --- interpret_table / interpret_batches ---------------------------------------------


@pytest.mark.parametrize("sample", CSV_SAMPLES, ids=lambda p: p.name)
def test_interpret_table_equals_batch(cli, tmp_path, sample):
    table = text_table(sample)
    path = write(table, tmp_path / "export.parquet", "parquet")
    result = b12lab.interpret_table(table, today=AS_OF)
    assert result.schema == b12lab.output_schema(table.schema)
    assert result.drop_columns(["row"]).equals(records(batch(cli, path)))


def test_interpret_table_equals_batch_on_generated_export(cli, tmp_path):
    export = tmp_path / "generated.csv"
    generate(export, 3000)
    table = text_table(export)
    result = b12lab.interpret_table(table, today=AS_OF)
    expected = records(batch(cli, export))
    assert result.num_rows == 3000
    assert without_line(result.drop_columns(["row"])).equals(without_line(expected))
    assert result["row"].to_pylist() == list(range(3000))
    assert result["line"].to_pylist() == list(range(1, 3001))


@pytest.mark.parametrize("options", [{}, {"timeline": True}, {"guideline": "nice"}])
def test_interpret_table_on_long_layout_equals_batch(cli, tmp_path, options):
    table = text_table(REPO / "examples/long_lis.csv")
    path = write(table, tmp_path / "long.parquet", "parquet")
    flags = ["--timeline"] if options.get("timeline") else []
    flags += ["--guideline", options["guideline"]] if "guideline" in options else []
    result = b12lab.interpret_table(table, today=AS_OF, **options)
    assert result.drop_columns(["row"]).equals(records(batch(cli, path, *flags)))
    assert result["row"].to_pylist() == [n - 1 for n in result["line"].to_pylist()]


def test_batches_stream_and_number_rows_over_the_call():
    table = text_table(REPO / "examples/wide_us.csv")
    out = list(b12lab.interpret_batches(table.to_batches(max_chunksize=2), today=AS_OF))
    assert [b.num_rows for b in out] == [2, 2, 1]
    assert all(b.schema == b12lab.output_schema(table.schema) for b in out)
    whole = pa.Table.from_batches(out)
    assert whole["row"].to_pylist() == [0, 1, 2, 3, 4]
    shifted = b12lab.interpret_table(table, today=AS_OF, first_line=101)
    assert shifted["line"].to_pylist() == [101, 102, 103, 104, 105]


def test_line_column_numbers_records_and_is_not_read():
    table = text_table(REPO / "examples/wide_us.csv")
    numbered = table.append_column("record", pa.array([50, 51, 52, 53, 54], pa.int64()))
    part = numbered.slice(2)  # a partition of a larger dataset
    result = b12lab.interpret_table(part, today=AS_OF, line_column="record")
    assert result["line"].to_pylist() == [52, 53, 54]
    assert result["row"].to_pylist() == [0, 1, 2]
    plain = b12lab.interpret_table(table.slice(2), today=AS_OF)
    assert without_line(result).equals(without_line(plain))


def test_options_mirror_batch(cli, tmp_path):
    table = pa.table({"patient_id": ["O1"], "Vit": ["120"], "age": ["40"]})
    path = write(table, tmp_path / "o.parquet", "parquet")
    options = {"mapping": {"Vit": "b12"}, "units": {"b12": "pg/mL"}, "guideline": "nice"}
    result = b12lab.interpret_table(table, today=AS_OF, **options)
    expected = records(
        batch(cli, path, "--map", "Vit=b12", "--unit", "b12=pg/mL", "--guideline", "nice")
    )
    assert result.drop_columns(["row"]).equals(expected)
    assert result["b12_status"].to_pylist() == ["deficient"]
    assert result["guideline"].to_pylist() == ["nice"]


def test_bad_option_is_an_input_error():
    from b12lab.errors import B12labError

    table = pa.table({"b12": ["180 pg/mL"]})
    with pytest.raises(B12labError):
        b12lab.interpret_table(table, guideline="martian")
    with pytest.raises(B12labError):
        b12lab.interpret_table(table, decimal=";")


FLAGS = ("--map", "--unit", "--keep", "--timeline", "--date-format", "--layout", "--rules")


@pytest.mark.parametrize(
    ("names", "options", "told"),
    [
        (["foo", "bar"], {}, "mapping={'COLUMN': 'ANALYTE'}"),
        (["B12"], {"mapping": {"Vit": "b12"}}, "mapping names a column"),
        (["Vit"], {"mapping": {"Vit": "b13"}}, "mapping={'Vit': 'b13'}: unknown key 'b13'"),
        (["B12"], {"units": {"Q": "pg/mL"}}, "units names neither"),
        (["B12"], {"keep": ["MRN"]}, "keep=['MRN']: no such column"),
        (["B12"], {"timeline": True}, "mapping={'COLUMN': 'patient_id'}, or leave out timeline"),
        (["B12"], {"date_format": "QQ"}, "date_format='QQ' is not a date layout"),
        (["B12"], {"layout": "long"}, "layout='long' needs a test column"),
        (["B12"], {"rules": "no-such-rules.yaml"}, "give a readable UTF-8 YAML file to rules"),
    ],
)
@pytest.mark.parametrize("function", ["interpret_table", "output_schema", "interpret_frame"])
def test_table_errors_name_the_keyword_a_python_caller_has(function, names, options, told):
    """A Python caller has `mapping=`, `units=`, `keep=`..., not the command line's
    --map, --unit, --keep: the fix names what they can type."""
    from b12lab.errors import InputError

    table = pa.table({name: ["180 pmol/L"] for name in names})
    given = {
        "interpret_table": table,
        "output_schema": table.schema,
        "interpret_frame": table.to_pandas(),
    }[function]
    with pytest.raises(InputError) as raised:
        getattr(b12lab, function)(given, **options)
    assert told in str(raised.value)
    assert not any(flag in str(raised.value) for flag in FLAGS), str(raised.value)


def test_the_command_line_still_names_its_flags(cli, tmp_path):
    export = tmp_path / "labs.csv"
    export.write_text("foo,bar\n1,x\n")
    assert "--map COLUMN=ANALYTE" in one_clear_line(cli("batch", export))
    assert "--keep 'MRN'" in one_clear_line(
        cli("batch", REPO / "examples/wide_us.csv", "--keep", "MRN")
    )


def test_record_batches_taken_one_by_one_leave_the_caller_s_wording_alone(tmp_path):
    """Between two batches of `interpret_batches`, the caller's own b12lab calls (a
    command line run in the same process) word their messages as before."""
    from b12lab.errors import option

    table = text_table(REPO / "examples/wide_us.csv")
    batches = b12lab.interpret_batches(table.to_batches(max_chunksize=2), as_of=AS_OF)
    assert next(batches).num_rows
    assert option("--map", "COLUMN=ANALYTE") == "--map COLUMN=ANALYTE"
    assert sum(batch.num_rows for batch in batches) == table.num_rows - 2


def test_empty_table_gives_empty_result():
    table = pa.table({"patient_id": pa.array([], pa.string()), "b12": pa.array([], pa.string())})
    result = b12lab.interpret_table(table)
    assert result.num_rows == 0 and result.schema == b12lab.output_schema(table.schema)


def test_partial_pickles_and_runs_after_unpickling():
    table = text_table(REPO / "examples/wide_us.csv")
    job = functools.partial(b12lab.interpret_batches, today=AS_OF, guideline="who")
    again = pickle.loads(pickle.dumps(job))
    out = pa.Table.from_batches(list(again(table.to_batches())))
    assert out.equals(b12lab.interpret_table(table, today=AS_OF))


def test_frame_functions_match_table():
    table = text_table(REPO / "examples/wide_us.csv")
    frame = b12lab.interpret_frame(table.to_pandas(), today=AS_OF)
    assert list(frame.columns) == b12lab.output_schema(table.schema).names
    assert (
        frame["b12_status"].tolist()
        == b12lab.interpret_table(table, today=AS_OF)["b12_status"].to_pylist()
    )
    assert (frame.dtypes == b12lab.output_frame(table.schema).dtypes).all()


def test_a_frame_column_of_mixed_python_values_is_read_as_text_cells():
    """Ids typed as numbers on some rows and as text on others, a result typed as text
    on one row: each read as a CSV cell with the same text would be."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "patient_id": ["P1", 2, None],
            "B12 (pg/mL)": [300, "150", float("nan")],
            "PLT (10^9/L)": [210, 95, 180],
        }
    )
    out = b12lab.interpret_frame(frame, today=AS_OF)
    assert out["patient_id"].tolist() == ["P1", "2", ""]
    assert out["b12_status"].tolist() == ["normal", "deficient", "unknown"]
    assert [round(float(v), 1) for v in out["b12_pmol_l"].tolist()[:2]] == [221.3, 110.7]
    assert out["platelets_flag"].tolist() == ["normal", "low", "normal"]


def test_importing_b12lab_imports_no_columnar_library():
    code = (
        "import sys, b12lab; b12lab.interpret; "
        "print(sorted(m for m in ('pyarrow', 'numpy', 'duckdb') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"


def test_bad_cell_exits_3_and_errors_file_names_the_record(cli, tmp_path):
    table = pa.table({"patient_id": ["E1", "E2", "E3"], "b12": ["180 pg/mL", "180 parsecs", "300"]})
    path = write(table, tmp_path / "bad.parquet", "parquet")
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--errors", errors, "--as-of", AS_OF)
    assert result.exit_code == 3
    out = records(result.stdout)
    assert out.num_rows == 3
    assert [bool(e) for e in out["error"].to_pylist()] == [False, True, False]
    rejected = pacsv.read_csv(errors)
    assert rejected["line"].to_pylist() == [2]
    assert rejected["column"].to_pylist() == ["b12"]


def test_keep_and_normalized_values_from_a_parquet_export(cli, tmp_path):
    """A typed MRN column is kept through; the normalized values are the CSV export's."""
    table = text_table(REPO / "examples/wide_us.csv")
    table = table.append_column("mrn", pa.array(range(9001, 9001 + table.num_rows), pa.int64()))
    path = write(table, tmp_path / "export.parquet", "parquet")
    csv_path = tmp_path / "export.csv"
    pacsv.write_csv(table, csv_path)
    from_parquet = records(batch(cli, path, "--keep", "mrn"))
    from_csv = records(batch(cli, csv_path, "--keep", "mrn"))
    assert from_parquet["mrn"].to_pylist() == list(range(9001, 9001 + table.num_rows))
    assert from_parquet["b12_pmol_l"].equals(from_csv["b12_pmol_l"])
    assert from_parquet.drop_columns(["line"]).equals(from_csv.drop_columns(["line"]))


def test_table_schema_follows_the_input_columns_and_keep(cli, tmp_path):
    table = text_table(REPO / "examples/wide_us.csv")
    schema = b12lab.output_schema(table.schema, keep=["patient_id"])
    assert "b12_pmol_l" in schema.names and "export.patient_id" in schema.names
    assert "holotc_pmol_l" not in schema.names  # only the analytes the input has
    result = b12lab.interpret_table(table, today=AS_OF, keep=["patient_id"])
    assert result.schema == schema
    path = write(table, tmp_path / "export.parquet", "parquet")
    expected = records(batch(cli, path, "--keep", "patient_id"))
    assert result.drop_columns(["row"]).equals(expected)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("layout", "tall", "InputError"),
        ("layout", 3, "TypeError"),
        ("strict", "no", "TypeError"),
        ("timeline", 1, "TypeError"),
        ("first_line", -5, "InputError"),
        ("first_line", 2.5, "TypeError"),
        ("mapping", ["Vit B12=b12"], "TypeError"),
        ("units", "b12=pg/mL", "TypeError"),
        ("keep", "patient_id", "TypeError"),
        ("line_column", 3, "TypeError"),
        ("as_of", 20261120, "TypeError"),
        ("as_of", "2026-02-30", "InputError"),
        ("ranges", 5, "TypeError"),
        ("bogus", 1, "TypeError"),
    ],
)
@pytest.mark.parametrize("function", ["interpret_table", "output_schema"])
def test_a_bad_option_names_it_a_wrong_type_a_type_error_a_bad_value_an_input_error(
    function, option, value, error
):
    from b12lab.errors import InputError

    table = text_table(REPO / "examples/wide_us.csv")
    expected = {"InputError": InputError, "TypeError": TypeError}[error]
    given = table if function == "interpret_table" else table.schema
    with pytest.raises(Exception) as raised:
        getattr(b12lab, function)(given, **{option: value})
    assert type(raised.value) is expected
    assert option in str(raised.value)


def test_every_option_of_interpret_batches_is_taken_by_output_schema_too():
    """One dict of options serves the run and its schema (Spark's mapInArrow needs both)."""
    import inspect

    table = text_table(REPO / "examples/wide_us.csv")
    parameters = inspect.signature(b12lab.interpret_batches).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
    assert {"guideline", "layout", "keep", "first_line", "line_column"} <= defaults.keys()
    assert b12lab.output_schema(table.schema, **defaults) == b12lab.output_schema(table.schema)
    kept = b12lab.output_schema(table.schema, **{**defaults, "keep": ["patient_id"]})
    assert kept == b12lab.interpret_table(table, today=AS_OF, keep=["patient_id"]).schema


def test_what_is_not_a_table_is_a_type_error():
    with pytest.raises(TypeError, match="Table or RecordBatch"):
        b12lab.interpret_table([{"B12": "300"}])
