"""`b12lab batch EXPORT --plan`: how each column will be read, without interpreting anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SAMPLES, one_clear_line

FIXTURES = Path(__file__).with_name("fixtures")
COLUMN_KEYS = {
    "index",
    "header",
    "role",
    "analyte",
    "unit",
    "unit_source",
    "unit_column",
    "unit_sources",
    "units_seen",
    "empty_share",
    "notes",
}


def plan_json(cli, path, *args) -> dict:
    result = cli("batch", path, "--plan", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def columns_by_header(plan: dict) -> dict[str, dict]:
    return {column["header"]: column for column in plan["columns"]}


def write(tmp_path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run_notes(cli, path, *args) -> list[str]:
    """The notes a real run prints on stderr."""
    result = cli("batch", path, "-o", "-", *args)
    return [line for line in result.stderr.splitlines() if line.startswith("b12lab: note:")]


# --- the shipped examples ------------------------------------------------------------


def test_wide_example_names_each_analyte_column_with_its_unit_source(cli):
    plan = plan_json(cli, SAMPLES / "wide_us.csv")
    assert plan["plan_version"] == 1
    assert plan["input"] == {"kind": "csv", "delimiter": ",", "encoding": "UTF-8"}
    assert plan["layout"] == "wide"
    assert plan["sample"]["rows"] == 5
    analytes = {c["analyte"]: c for c in plan["columns"] if c["role"] == "analyte"}
    assert {key: c["unit_source"] for key, c in analytes.items()} == {
        "b12": "unit_column",
        "platelets": "unit_column",
        "anc": "unit_column",
        "ferritin": "unit_column",
        "hemoglobin": "unit_column",
        "mcv": "single_scale",  # fL and um3 are one scale: nothing to assume
        "crp": "header",  # `crp (mg/L)`
    }
    assert analytes["b12"]["unit_column"] == "b12_unit"
    assert analytes["b12"]["units_seen"] == {"pg/mL": 3, "pmol/L": 1}
    assert analytes["b12"]["unit"] == "pg/mL"
    assert analytes["crp"]["unit"] == "mg/L"
    roles = {c["header"]: (c["role"], c["analyte"]) for c in plan["columns"]}
    assert roles["patient_id"] == ("patient_id", None)
    assert roles["collected"] == ("date", None)
    assert roles["b12_unit"] == ("analyte_unit", "b12")
    assert plan["decimal_mark"] == "."


def test_wide_example_as_text_says_where_each_unit_comes_from(cli):
    result = cli("batch", SAMPLES / "wide_us.csv", "--plan")
    assert result.exit_code == 0
    text = result.stdout
    assert "input: CSV, delimiter ',', UTF-8; wide layout" in text
    assert "unit pg/mL from the unit column 'b12_unit'; seen: pg/mL 3, pmol/L 1" in text
    crp = text[text.index("analyte crp") :]
    assert "unit mg/L from the header" in crp.splitlines()[1]
    assert "columns ignored: none" in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert result.stderr == ""


@pytest.mark.parametrize(
    "path, tests",
    [
        (
            SAMPLES / "long_lis.csv",
            {
                "Vitamin B12": ("b12", "unit_column"),
                "Platelet count": ("platelets", "unit_column"),
                "Neutrophils absolute": ("anc", "unit_column"),
                "Hemoglobin": ("hemoglobin", "unit_column"),
                "MCV": ("mcv", "unit_column"),
                "Ferritin": ("ferritin", "unit_column"),
                "C-reactive protein": ("crp", "unit_column"),
            },
        ),
        (
            SAMPLES / "oru_r01.hl7",
            {
                "2132-9": ("b12", "unit_field"),
                "777-3": ("platelets", "unit_field"),
                "751-8": ("anc", "unit_field"),
                "2276-4": ("ferritin", "unit_field"),
                "718-7": ("hemoglobin", "unit_field"),
                "2284-8": ("folate", "unit_field"),
                "13964-2": ("mma", "assumed"),  # only a cancelled result: no value, no unit
            },
        ),
        (
            SAMPLES / "fhir_bulk.ndjson",
            {
                "2132-9": ("b12", "unit_field"),
                "777-3": ("platelets", "unit_field"),
                "751-8": ("anc", "unit_field"),
                "2276-4": ("ferritin", "unit_field"),
            },
        ),
        (
            SAMPLES / "fhir_bundle.json",
            {
                "2132-9": ("b12", "unit_field"),
                "777-3": ("platelets", "unit_field"),
                "751-8": ("anc", "unit_field"),
                "2276-4": ("ferritin", "unit_field"),
                "718-7": ("hemoglobin", "unit_field"),
                "787-2": ("mcv", "unit_field"),
                "1988-5": ("crp", "unit_field"),
            },
        ),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else "",
)
def test_long_exports_and_messages_list_each_test_with_its_analyte(cli, path, tests):
    plan = plan_json(cli, path)
    assert {t["test"]: (t["analyte"], t["unit_source"]) for t in plan["tests"]} == tests
    text = cli("batch", path, "--plan").stdout
    for test, (analyte, _) in tests.items():
        assert re.search(rf"^  {re.escape(test)} +-> {analyte} ", text, re.MULTILINE), test


@pytest.mark.parametrize(
    "path, kind",
    [
        (SAMPLES / "oru_r01.hl7", "hl7v2"),
        (FIXTURES / "oru_batch.hl7", "hl7v2"),
        (SAMPLES / "fhir_bulk.ndjson", "fhir-ndjson"),
        (SAMPLES / "fhir_bundle.json", "fhir-json"),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_message_files_are_planned_as_messages(cli, path, kind):
    plan = plan_json(cli, path)
    assert plan["input"]["kind"] == kind
    assert plan["layout"] == "message"
    assert plan["columns"] == []
    assert plan["tests"]


def test_message_codes_of_other_tests_are_listed_as_skipped(cli, tmp_path):
    text = (SAMPLES / "oru_r01.hl7").read_text()
    text = text.replace("2284-8^", "2951-2^", 1)  # sodium: not an analyte
    path = write(tmp_path, "oru.hl7", text)
    plan = plan_json(cli, path)
    assert plan["skipped_tests"] == {"2951-2": 1}
    assert "2951-2" not in {t["test"] for t in plan["tests"]}


def test_a_local_code_mapped_with_map_reads_as_its_analyte(cli, tmp_path):
    text = (SAMPLES / "oru_r01.hl7").read_text().replace("2132-9^", "LB12^", 1)
    path = write(tmp_path, "oru.hl7", text)
    assert "LB12" in plan_json(cli, path)["skipped_tests"]
    plan = plan_json(cli, path, "--map", "LB12=b12")
    assert {t["test"]: t["analyte"] for t in plan["tests"]}["LB12"] == "b12"


# --- unit sources --------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, cell, options, source, unit",
    [
        ("B12 (pg/mL)", "180", [], "header", "pg/mL"),
        ("B12", "180 pg/mL", [], "value", "pg/mL"),
        ("B12", "180", ["--unit", "B12=ng/L"], "unit_option", "ng/L"),
        ("B12", "180", ["--unit", "b12=pg/mL"], "unit_option", "pg/mL"),
        ("B12", "180", [], "assumed", "pmol/L"),
        ("B12", "180", ["--strict"], "refused", None),
        ("NEUT %", "55", [], "single_scale", "%"),
    ],
)
def test_unit_source_of_a_wide_column(cli, tmp_path, header, cell, options, source, unit):
    path = write(tmp_path, "export.csv", f"patient_id,{header}\nP1,{cell}\nP2,{cell}\n")
    column = columns_by_header(plan_json(cli, path, *options))[header]
    assert (column["unit_source"], column["unit"]) == (source, unit)


def test_a_column_with_no_unit_anywhere_is_reported_as_assumed_like_the_run_warns(cli, tmp_path):
    path = write(
        tmp_path,
        "export.csv",
        "MRN,B12,PLT,PLT units,Ferritin (ng/mL)\nA,400,95,K/uL,30\nB,500,140,K/uL,12\n",
    )
    plan = plan_json(cli, path)
    assumed = {c["header"] for c in plan["columns"] if c["unit_source"] == "assumed"}
    assert assumed == {"B12"}
    warned = {n.split(": ")[2] for n in run_notes(cli, path) if "no unit, read as" in n}
    assert warned == assumed
    text = cli("batch", path, "--plan").stdout
    assert "! no unit anywhere: read as pmol/L (the canonical unit), with a warning" in text


def test_strict_reports_the_refusal_the_run_makes(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN,B12,PLT\nA,180 pg/mL,95\nB,220 pg/mL,140\n")
    plan = plan_json(cli, path, "--strict")
    assert plan["strict"] is True
    columns = columns_by_header(plan)
    assert columns["PLT"]["unit_source"] == "refused"
    assert columns["B12"]["unit_source"] == "value"
    text = cli("batch", path, "--plan", "--strict").stdout
    assert "unit none: refused under --strict" in text
    run = cli("batch", path, "--strict")
    assert run.exit_code == 3
    assert "refused under --strict" in run.stdout


def test_a_mix_of_sources_is_counted(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN,B12 (pg/mL)\nA,180\nB,150 pmol/L\nC,200\nD,\n")
    column = columns_by_header(plan_json(cli, path))["B12 (pg/mL)"]
    assert column["unit_source"] == "header"
    assert column["unit_sources"] == {"header": 2, "value": 1}
    assert column["units_seen"] == {"pg/mL": 2, "pmol/L": 1}
    assert column["empty_share"] == 0.25


def test_empty_and_no_result_cells_make_the_empty_share(cli, tmp_path):
    path = write(
        tmp_path,
        "export.csv",
        "MRN,B12,B12_unit\nA,n/a,\nB,,\nC,pending,\nD,180,pg/mL\n",
    )
    column = columns_by_header(plan_json(cli, path))["B12"]
    assert column["empty_share"] == 0.75
    assert column["units_seen"] == {"pg/mL": 1}


# --- columns ignored, duplicates, assumptions ----------------------------------------------


def test_ignored_columns_are_listed_by_name(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN,Ward,B12,Comment\nA,7,180 pg/mL,ok\n")
    plan = plan_json(cli, path)
    assert plan["ignored"] == ["Ward", "Comment"]
    assert columns_by_header(plan)["Ward"]["role"] == "ignored"
    text = cli("batch", path, "--plan").stdout
    assert "columns ignored: Ward, Comment" in text


def test_duplicate_analyte_columns_give_the_note_the_run_gives(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN,B12,Vit B12\nA,180 pg/mL,180 pg/mL\n")
    plan = plan_json(cli, path)
    note = next(n for n in plan["notes"] if "both hold b12" in n)
    assert any(line.endswith(note) for line in run_notes(cli, path))


@pytest.mark.parametrize(
    "content, mark",
    [
        ("MRN;B12\nA;1,5 ng/mL\nB;180 pg/mL\n", ","),
        ("MRN,B12\nA,180.5 pg/mL\nB,150 pg/mL\n", "."),
    ],
)
def test_decimal_mark_found_as_the_run_finds_it(cli, tmp_path, content, mark):
    path = write(tmp_path, "export.csv", content)
    plan = plan_json(cli, path)
    assert (plan["decimal_mark"], plan["decimal_source"]) == (mark, "sample")
    assert any(f"decimal mark: '{mark}'" in note for note in run_notes(cli, path))
    assert any(f"decimal mark: '{mark}'" in note for note in plan["notes"])


def test_decimal_option_is_reported_as_given(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN;B12\nA;1.476 pg/mL\n")
    plan = plan_json(cli, path, "--decimal", ",")
    assert (plan["decimal_mark"], plan["decimal_source"]) == (",", "--decimal")


def test_ambiguous_slash_dates_need_date_format(cli, tmp_path):
    path = write(
        tmp_path,
        "export.csv",
        "MRN,date,B12\nA,03/04/2026,180 pg/mL\nB,15/04/2026,180 pg/mL\nC,05/06/2026,1 pg/mL\n",
    )
    date = columns_by_header(plan_json(cli, path))["date"]
    assert date["role"] == "date"
    assert any(
        "2 ambiguous slash dates" in note and "--date-format" in note for note in date["notes"]
    )
    chosen = columns_by_header(plan_json(cli, path, "--date-format", "DD/MM/YYYY"))["date"]
    assert not any("ambiguous" in note for note in chosen["notes"])


def test_anc_derivation_is_announced(cli, tmp_path):
    path = write(tmp_path, "export.csv", "MRN,B12,WBC,NEUT %\nA,180 pg/mL,4.2 10^9/L,55\n")
    notes = plan_json(cli, path)["notes"]
    assert any(n.startswith("ANC is derived from WBC x neutrophil %") for n in notes)


# --- long layout --------------------------------------------------------------------


def test_long_export_lists_tests_seen_and_tests_skipped(cli, tmp_path):
    path = write(
        tmp_path,
        "long.csv",
        "patient,date,test,result,units\n"
        "P1,2026-01-02,B12,180,pg/mL\n"
        "P1,2026-01-02,Sodium,140,mmol/L\n"
        "P1,2026-01-02,Sodium,141,mmol/L\n"
        "P2,2026-01-03,PLT,95,\n",
    )
    plan = plan_json(cli, path)
    assert plan["layout"] == "long"
    assert plan["skipped_tests"] == {"Sodium": 2}
    tests = {t["test"]: t for t in plan["tests"]}
    assert (tests["B12"]["analyte"], tests["B12"]["unit_source"]) == ("b12", "unit_column")
    assert (tests["PLT"]["analyte"], tests["PLT"]["unit_source"]) == ("platelets", "assumed")
    assert columns_by_header(plan)["units"]["units_seen"] == {"pg/mL": 1, "mmol/L": 2}
    text = cli("batch", path, "--plan").stdout
    assert "skipped (not b12lab analytes): Sodium (2)" in text


# --- nothing interpreted, nothing written but the plan ---------------------------------


def test_an_export_whose_rows_would_all_be_refused_still_plans(cli, tmp_path):
    path = write(
        tmp_path,
        "bad.csv",
        "MRN,B12,PLT\nA,180 furlongs,250000 10^9/L\nB,abc,-5 10^9/L\n",
    )
    run = cli("batch", path)
    assert run.exit_code == 3
    result = cli("batch", path, "--plan", "--format", "json")
    assert result.exit_code == 0
    columns = columns_by_header(json.loads(result.stdout))
    assert any("2 of 2 values would be refused" in n for n in columns["B12"]["notes"])
    assert any("not one b12 accepts" in n for n in columns["B12"]["notes"])
    assert any("2 of 2 values would be refused" in n for n in columns["PLT"]["notes"])
    assert '"b12_status":' not in result.stdout  # nothing interpreted (a column name aside)


def test_plan_writes_only_the_plan(cli, tmp_path):
    path = SAMPLES / "wide_us.csv"
    out = tmp_path / "plan.json"
    errors = tmp_path / "rejected.csv"
    result = cli("batch", path, "--plan", "-f", "json", "-o", out, "--errors", errors)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["plan_version"] == 1
    assert not errors.exists()
    text_out = tmp_path / "plan.txt"
    assert cli("batch", path, "--plan", "-o", text_out).exit_code == 0
    assert text_out.read_text().startswith("b12lab batch plan for ")


def test_plan_reads_stdin(cli):
    data = (SAMPLES / "long_lis.csv").read_text()
    result = cli("batch", "-", "--plan", "--format", "json", input=data)
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["source"] == "standard input"
    assert plan["layout"] == "long"


def test_the_sample_is_the_first_2000_rows(cli, tmp_path):
    rows = "".join(f"P{i},180 pg/mL\n" for i in range(2000))
    rows += "".join(f"Q{i},180\n" for i in range(500))  # past the sample: not looked at
    path = write(tmp_path, "big.csv", "MRN,B12\n" + rows)
    plan = plan_json(cli, path)
    assert plan["sample"] == {"rows": 2000, "limit": 2000}
    column = columns_by_header(plan)["B12"]
    assert column["unit_sources"] == {"value": 2000}


@pytest.mark.parametrize(
    "content, encoding, expected",
    [
        ("MRN,B12\nA,180 pg/mL\n", "utf-8-sig", "UTF-8 with BOM"),
        ("MRN,B12,Stra\u00dfe\nA,180 pg/mL,M\u00fcller\n", "cp1252", "Windows-1252"),
        ("MRN\tB12\nA\t180 pg/mL\n", "utf-16", "UTF-16"),
    ],
)
def test_encoding_and_delimiter_are_reported(cli, tmp_path, content, encoding, expected):
    path = write(tmp_path, "export.csv", content, encoding)
    plan = plan_json(cli, path)
    assert plan["input"]["encoding"] == expected
    assert plan["input"]["delimiter"] == ("\t" if "\t" in content else ",")


# --- refusals: the same line and exit code as the run ------------------------------------


@pytest.mark.parametrize(
    "header, options",
    [
        ("MRN,B12\n", ["--map", "B12=bogus"]),
        ("MRN,B12\n", ["--map", "Vitamin=b12"]),
        ("MRN,Ward,Comment\n", []),
        ("MRN,B12\n", ["--unit", "B12=furlongs"]),
        ("MRN,B12\n", ["--layout", "long"]),
    ],
    ids=["unknown-map-target", "map-unknown-column", "no-analyte-column", "bad-unit", "not-long"],
)
def test_problems_that_refuse_the_run_refuse_the_plan_alike(cli, tmp_path, header, options):
    path = write(tmp_path, "export.csv", header + "A,180 pg/mL\n")
    plan = cli("batch", path, "--plan", *options)
    run = cli("batch", path, *options)
    assert plan.exit_code == run.exit_code == 2
    assert one_clear_line(plan) == one_clear_line(run)
    assert plan.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--plan", "--format", "ndjson"], "--plan prints text or json"),
    ],
)
def test_format_choices_that_do_not_fit_are_refused(cli, args, message):
    result = cli("batch", SAMPLES / "wide_us.csv", *args)
    assert result.exit_code == 2
    assert message in one_clear_line(result)


def test_json_plan_has_the_documented_shape(cli):
    for path in (SAMPLES / "wide_us.csv", SAMPLES / "long_lis.csv", SAMPLES / "oru_r01.hl7"):
        plan = plan_json(cli, path)
        assert {
            "plan_version",
            "source",
            "input",
            "layout",
            "sample",
            "decimal_mark",
            "decimal_source",
            "strict",
            "columns",
            "ignored",
            "tests",
            "skipped_tests",
            "notes",
            "output",
        } == set(plan)
        for column in plan["columns"]:
            assert set(column) == COLUMN_KEYS
            assert isinstance(column["index"], int) and column["index"] >= 1
        assert [c["index"] for c in plan["columns"]] == list(range(1, len(plan["columns"]) + 1))


# --- Parquet and Arrow IPC -----------------------------------------------------------


def _table_export(tmp_path, kind: str) -> Path:
    import pyarrow as pa

    table = pa.table(
        {
            "MRN": ["A1", "A2", "A3"],
            "B12 (pmol/L)": [150.0, 310.5, None],  # stored as numbers
            "PLT": ["120", "250", "95"],  # text with no unit anywhere
            "Ferritin": ["12 ng/mL", "40 ug/L", ""],
        }
    )
    if kind == "parquet":
        import pyarrow.parquet as pq

        path = tmp_path / "export.parquet"
        pq.write_table(table, path)
    else:
        import pyarrow.ipc as ipc

        path = tmp_path / "export.arrow"
        with ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    return path


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_parquet_or_arrow_input_is_planned_as_its_run_reads_it(cli, tmp_path, kind):
    path = _table_export(tmp_path, kind)
    plan = plan_json(cli, path)
    assert plan["input"]["kind"] == kind
    assert plan["layout"] == "wide"
    assert plan["sample"]["rows"] == 3
    columns = columns_by_header(plan)
    assert columns["MRN"]["role"] == "patient_id"
    assert columns["B12 (pmol/L)"]["analyte"] == "b12"
    assert columns["B12 (pmol/L)"]["unit_sources"] == {"header": 2}
    assert columns["B12 (pmol/L)"]["empty_share"] == 0.333
    assert columns["Ferritin"]["units_seen"] == {"ng/mL": 1, "ug/L": 1}
    # The plan warns of what the run warns of: platelets with no unit anywhere.
    assert columns["PLT"]["analyte"] == "platelets"
    assert any("no unit anywhere" in note for note in columns["PLT"]["notes"])
    notes = run_notes(cli, path)
    assert any("PLT: no unit, read as 10^9/L in 3 records" in note for note in notes)
    text = cli("batch", path, "--plan")
    assert text.exit_code == 0
    assert f"input: {'Parquet' if kind == 'parquet' else 'Arrow IPC'}; wide layout" in text.stdout


def test_values_stored_as_numbers_need_no_decimal_mark(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"MRN": ["A"], "B12 (pmol/L)": [1.476]}), path)
    plan = plan_json(cli, path)
    assert "decimal mark: none needed (the values are stored as numbers)" in plan["notes"]
    # ... and the run reads 1.476 as the number it is.
    result = cli("batch", path, "-o", "-", "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    (b12,) = [m for m in record["measurements"] if m["analyte"] == "b12"]
    assert b12["input"].startswith("1.476")


def test_a_table_file_read_as_another_format_is_refused_with_the_fix(cli, tmp_path):
    path = _table_export(tmp_path, "parquet")
    result = cli("batch", path, "--input-format", "csv")
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "is a Parquet or Arrow file, not csv" in line and "--input-format auto" in line


def test_plan_written_to_a_file_is_in_the_format_its_name_says(cli, tmp_path):
    """-o plan.json without --format is the JSON plan; a name that says a format the
    plan is never written in (plan.csv), or another than --format, is refused."""
    path = SAMPLES / "wide_us.csv"
    out = tmp_path / "plan.json"
    assert cli("batch", path, "--plan", "-o", out).exit_code == 0
    assert json.loads(out.read_text())["plan_version"] == 1
    for name, given, told in [
        ("plan.csv", (), "name the output " + str(tmp_path / "plan.txt")),
        ("plan.csv", ("--format", "json"), "name the output " + str(tmp_path / "plan.json")),
        ("other.json", ("--format", "text"), "name the output " + str(tmp_path / "other.txt")),
    ]:
        result = cli("batch", path, "--plan", *given, "-o", tmp_path / name)
        assert result.exit_code == 2
        line = one_clear_line(result)
        assert "--plan writes" in line and told in line
        assert not (tmp_path / name).exists()
