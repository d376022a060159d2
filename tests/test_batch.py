"""`b12lab batch`: layouts, real-export quirks, no data lost, formats, exit codes."""

from __future__ import annotations

import csv
import io
import json
import pickle
import subprocess
import sys

import pytest
from conftest import SAMPLES

from b12lab.batch.rows import RowInterpreter, interpret_rows
from b12lab.batch.run import run_batch


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def batch_csv(cli, path, *args):
    result = cli("batch", path, *args)
    return result, rows_of(result.stdout)


def test_wide_sample_gives_one_row_per_panel_in_order(cli):
    result, rows = batch_csv(cli, SAMPLES / "wide_us.csv")
    assert result.exit_code == 0
    assert [r["patient_id"] for r in rows] == ["S001", "S002", "S003", "S004", "S005"]
    assert [r["line"] for r in rows] == ["2", "3", "4", "5", "6"]
    statuses = {r["patient_id"]: r["b12_status"] for r in rows}
    assert statuses == {
        "S001": "deficient",
        "S002": "normal",
        "S003": "deficient",
        "S004": "high",
        "S005": "unknown",
    }
    s003 = rows[2]
    assert "plt-high-not-caused-by-b12-deficiency" in s003["platelets_findings"]
    assert "fer-low-combined-deficiency" in s003["ferritin_findings"]
    assert rows[3]["neutrophils_findings"] == "neut-low-not-explained-by-b12"
    assert rows[4]["error"] == ""
    assert "5 panels" in result.stderr


def test_long_sample_groups_observations_into_panels(cli):
    result = cli("batch", SAMPLES / "long_lis.csv", "--format", "ndjson")
    assert result.exit_code == 0
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["patient_id"] for r in reports] == ["S101", "S102"]
    assert reports[0]["lines"] == [2, 3, 4, 5, 6]
    assert reports[1]["b12_status"] == "high"
    b12 = reports[1]["measurements"][0]
    assert b12["censored"] == ">"
    hemoglobin = next(m for m in reports[0]["measurements"] if m["analyte"] == "hemoglobin")
    assert round(hemoglobin["value"]) == 114


def write(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def test_semicolon_cp1252_export_with_decimal_commas_and_header_units(cli, tmp_path):
    text = (
        "Patient ID;Collected;Sexe;Vit B12 (pmol/L);NEUT#;Ferritin (µg/L);Hémoglobine\r\n"
        "A1;2026-05-01;F;120;1,2;25;9,1 g/dL\r\n"
    )
    path = write(tmp_path, "eu.csv", text, encoding="cp1252")
    result = cli(
        "batch", path, "--format", "ndjson", "--map", "Sexe=sex", "--map", "Hémoglobine=hemoglobin"
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    values = {m["analyte"]: m["value"] for m in report["measurements"]}
    assert values == {"b12": 120, "anc": 1.2, "hemoglobin": 91, "ferritin": 25}
    assert report["b12_status"] == "deficient"
    assert "Windows-1252" in result.stderr


def test_bom_tab_quoted_fields_in_cell_units_and_no_result_tokens(cli, tmp_path):
    text = (
        "\ufeffMRN\tspecimen date\tgender\tCobalamin\t2276-4\tPlatelet count\tCRP\tComment\n"
        'M1\t2026-01-02\tm\t"88 pg/mL"\t"540 ng/mL"\tpending\tn/a\t"free, text\nover lines"\n'
        "M2\t2026-01-03\tf\t<50\tNA\t-\t\t\n"
    )
    path = write(tmp_path, "lis.tsv", text)
    result = cli("batch", path, "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["patient_id"] == "M1" and first["b12_status"] == "deficient"
    assert {m["analyte"] for m in first["measurements"]} == {"b12", "ferritin"}
    assert first["errors"] == []
    assert second["lines"] == [4]
    assert second["measurements"][0]["censored"] == "<"
    assert "columns not used: Comment" in result.stderr


def test_sibling_unit_columns_and_anc_derived_from_wbc(cli, tmp_path):
    text = "patient,date,b12,b12_unit,WBC,NEUT%\nD1,2026-03-01,300,pg/mL,3.0,40\n"
    result = cli("batch", write(tmp_path, "d.csv", text), "-f", "json")
    assert result.exit_code == 0
    (report,) = json.loads(result.stdout)
    anc = next(m for m in report["measurements"] if m["analyte"] == "anc")
    assert anc["derived"] is True
    assert anc["value"] == 1.2
    assert report["b12_status"] == "normal"


def test_long_layout_with_loinc_codes(cli, tmp_path):
    text = (
        "subject,collection_date,code,value,units\n"
        "L1,2026-02-01,2132-9,130,pmol/L\n"
        "L1,2026-02-01,777-3,90,10*9/L\n"
        "L2,2026-02-01,2132-9,500,pmol/L\n"
    )
    result, rows = batch_csv(cli, write(tmp_path, "long.csv", text))
    assert result.exit_code == 0
    assert [r["patient_id"] for r in rows] == ["L1", "L2"]
    assert rows[0]["platelets_findings"] == "plt-low-consistent-with-b12"


def test_layout_can_be_forced_and_map_overrides_matching(cli, tmp_path):
    text = "who,when,what,num,u\nZ1,2026-02-01,B12,130,pmol/L\n"
    path = write(tmp_path, "odd.csv", text)
    result = cli(
        "batch",
        path,
        "--layout",
        "long",
        "--map",
        "who=patient_id",
        "--map",
        "when=date",
        "--map",
        "what=test",
        "--map",
        "num=value",
        "--map",
        "u=unit",
    )
    assert result.exit_code == 0, result.stderr
    assert rows_of(result.stdout)[0]["b12_status"] == "deficient"


def test_bad_cells_make_their_row_bad_and_the_run_goes_on(cli, tmp_path):
    text = (
        "patient_id,date,b12,platelets,ferritin\n"
        "B1,2026-01-01,180 parsecs,95,20\n"
        "B2,2026-01-01,100,250000 x10^9/L,20\n"
        "B3,2026-02-30,100,95,abc\n"
        "B4,2026-01-01,100,95\n"
        "B5,2026-01-01,400,300,100\n"
    )
    errors = tmp_path / "errors.csv"
    result = cli("batch", write(tmp_path, "bad.csv", text), "--errors", errors)
    assert result.exit_code == 3
    rows = rows_of(result.stdout)
    assert [r["patient_id"] for r in rows] == ["B1", "B2", "B3", "B4", "B5"]
    assert "parsecs" in rows[0]["error"]
    assert (
        rows[0]["platelets_findings"] == "plt-low-not-explained-by-b12"
        or rows[0]["platelets_flag"] == "low"
    )
    assert "did you mean 250000 /uL" in rows[1]["error"]
    assert "does not exist" in rows[2]["error"] and "not a number" in rows[2]["error"]
    assert "4 fields but the header has 5" in rows[3]["error"]
    assert rows[4]["error"] == ""
    reported = list(csv.DictReader(errors.open(encoding="utf-8")))
    assert [(e["line"], e["column"]) for e in reported] == [
        ("2", "b12"),
        ("3", "platelets"),
        ("4", "date"),
        ("4", "ferritin"),
        ("5", ""),
    ]
    assert "4 panels with errors" in result.stderr


def test_rest_of_a_bad_row_is_still_interpreted(tmp_path):
    records = list(interpret_rows([{"b12": "100", "platelets": "95", "ferritin": "zz"}]))
    assert records[0].outcome.domain_findings[0] == ("plt-low-consistent-with-b12",)
    assert records[0].errors


def test_stdin_and_stdout_with_dash(cli):
    text = (SAMPLES / "wide_us.csv").read_text()
    result = cli("batch", "-", "-o", "-", input=text)
    assert result.exit_code == 0
    assert len(rows_of(result.stdout)) == 5


def test_output_file_and_json_array(cli, tmp_path):
    out = tmp_path / "out.json"
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", out, "-f", "json")
    assert result.exit_code == 0
    assert result.stdout == ""
    reports = json.loads(out.read_text())
    assert len(reports) == 5 and reports[0]["schema_version"] == 1


def test_formula_cells_are_neutralized(cli, tmp_path):
    text = 'patient_id,b12\n"=HYPERLINK(""http://x"",""y"")",100\n@cmd,100\n+1,100\n-2,100\n'
    _, rows = batch_csv(cli, write(tmp_path, "f.csv", text))
    assert [r["patient_id"][:2] for r in rows] == ["'=", "'@", "'+", "'-"]


def test_fail_on_urgent_exits_4(cli, tmp_path):
    path = write(tmp_path, "u.csv", "patient_id,platelets\nU1,10\n")
    assert cli("batch", path).exit_code == 0
    assert cli("batch", path, "--fail-on", "urgent").exit_code == 4


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "is empty"),
        ("foo,bar\n1,2\n", "the header has no lab columns"),
    ],
)
def test_unusable_exports_exit_2(cli, tmp_path, content, words):
    result = cli("batch", write(tmp_path, "x.csv", content))
    assert result.exit_code == 2
    assert words in result.stderr
    assert result.stdout == ""


def test_missing_file_and_directory_exit_2(cli, tmp_path):
    assert cli("batch", tmp_path / "nope.csv").exit_code == 2
    result = cli("batch", tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_a_failed_run_leaves_the_previous_output_intact(tmp_path, ranges, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("previous good result\n")

    original = RowInterpreter.__call__

    def explode(self, rows):
        for count, record in enumerate(original(self, rows)):
            if count == 2:
                raise KeyboardInterrupt  # killed mid-run, after two records were written
            yield record

    source = SAMPLES / "wide_us.csv"
    monkeypatch.setattr(RowInterpreter, "__call__", explode)
    monkeypatch.setattr("b12lab.batch.drain.reads_by_columns", lambda interpreter: False)
    with pytest.raises(KeyboardInterrupt):
        run_batch(str(source), ranges, output=str(out), progress=False)
    assert out.read_text() == "previous good result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_failed_columnar_run_leaves_the_previous_output_intact(tmp_path, ranges, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("previous good result\n")

    def killed(summary, decided):  # killed after the first block was written
        raise KeyboardInterrupt

    monkeypatch.setattr("b12lab.batch.drain.count_decided", killed)
    with pytest.raises(KeyboardInterrupt):
        run_batch(str(SAMPLES / "wide_us.csv"), ranges, output=str(out), progress=False)
    assert out.read_text() == "previous good result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_the_row_interpreter_is_picklable_with_its_ranges(ranges):
    interpreter = RowInterpreter.for_header(["patient_id", "b12", "platelets"], ranges)
    clone = pickle.loads(pickle.dumps(interpreter))
    (record,) = clone([(2, ["P1", "100", "95"], None)])
    assert record.outcome.b12_status == "deficient"
    assert record.report.findings


def test_interpret_rows_accepts_dict_rows_like_a_dataframe():
    rows = [
        {"Patient ID": "X1", "Vitamin B12": 120.0, "PLT": 95, "Ferritin": float("nan")},
        {"Patient ID": "X2", "Vitamin B12": 900.0, "PLT": 300, "Ferritin": 50},
    ]
    records = list(interpret_rows(rows))
    assert [r.patient_id for r in records] == ["X1", "X2"]
    assert [r.outcome.b12_status for r in records] == ["deficient", "high"]
    assert records[0].errors == ()


def test_batch_uses_the_guideline_and_a_laboratory_overlay(cli, tmp_path):
    path = write(tmp_path, "g.csv", "patient_id,b12,platelets\nG1,140 pmol/L,145\n")
    default = rows_of(cli("batch", path).stdout)[0]
    assert default["b12_status"] == "deficient"
    assert default["platelets_flag"] == "low"
    nice = rows_of(cli("batch", path, "--guideline", "nice").stdout)[0]
    assert nice["b12_status"] == "borderline"
    overlay = write(
        tmp_path,
        "lab.yaml",
        "analytes:\n  platelets:\n    reference:\n      - {low: 140, high: 400}\n",
    )
    lab = rows_of(cli("batch", path, "--ranges", overlay).stdout)[0]
    assert lab["platelets_flag"] == "normal"


def test_the_batch_package_names_import_no_columnar_library():
    """`from b12lab.batch import ...` for the documented names leaves pyarrow, numpy and
    duckdb unloaded, so a program streaming dict rows starts as fast as `interpret`."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from b12lab.batch import BatchOptions, RowInterpreter, interpret_rows, run_batch\n"
        "from b12lab.batch.rows import RowInterpreter as row_path\n"
        "assert RowInterpreter is row_path\n"
        "print(sorted(m for m in ('pyarrow', 'numpy', 'duckdb') if m in sys.modules))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"


def test_batch_runs_without_loading_pandas_where_it_is_installed(tmp_path):
    """pyarrow would import pandas (about 50 MB) only to check what a list is."""
    pytest.importorskip("pandas")
    out = tmp_path / "results.parquet"
    code = (
        "import sys\n"
        "from b12lab.cli import main\n"
        f"sys.argv = ['b12lab', 'batch', {str(SAMPLES / 'wide_us.csv')!r}, '-o', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('pandas' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "False", shown.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("patient_id").to_pylist() == [
        "S001",
        "S002",
        "S003",
        "S004",
        "S005",
    ]


@pytest.mark.parametrize("stated", ["U", "unknown", "Other"])
def test_a_sex_stated_as_unknown_or_other_is_not_given_with_a_warning(cli, tmp_path, stated):
    """As FHIR and HL7 sources are read: not an error of the row, and said."""
    export = tmp_path / "labs.csv"
    export.write_text(
        f"patient_id,sex,age,ferritin (ug/L),hemoglobin (g/L)\nP1,{stated},40,20,115\n"
        "P2,F,40,20,115\n"
    )
    result = cli("batch", export, "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    unknown, female = (json.loads(line) for line in result.stdout.splitlines())
    assert unknown["errors"] == []
    assert (
        f"sex is '{stated}' in the source; sex-specific limits are not used"
        in (unknown["warnings"])
    )
    assert any(w.startswith("sex not given:") for w in unknown["warnings"])
    assert not any("sex" in w for w in female["warnings"])
    plan = cli("batch", export, "--plan")
    assert f"1 value with no female or male sex (e.g. '{stated}' at line 2)" in plan.stdout
