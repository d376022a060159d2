"""What laboratory systems really send: UCUM units, count spellings, LOINC codes,
dates from the report, near-miss names and bare numbers."""

from __future__ import annotations

import json

import pytest
from conftest import one_clear_line

MSH = "MSH|^~\\&|LIS|LAB|EHR|WARD|20261102||ORU^R01|M1|P|2.5.1"
PID = "PID|1||P-1^^^LAB^MR||Doe^Jo||19650312|M"
OBR = "OBR|1|PLACER-1|FILLER-1|CBC^Blood count^L|||202611020745"


def hl7(*segments: str) -> str:
    return "\r".join((MSH, PID, *segments)) + "\r"


def ndjson(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def values(record: dict) -> dict[str, float]:
    return {m["analyte"]: m["value"] for m in record["measurements"]}


# --- UCUM read as UCUM ------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "unit", "factor"),
    [
        ("platelets", "{cells}/uL", 1e-3),
        ("wbc", "{cells}/uL", 1e-3),
        ("platelets", "{Platelets}/uL", 1e-3),
        ("platelets", "10*3/{cells}/uL", 1.0),
        ("anc", "10*3/uL", 1.0),
        ("neutrophil_pct", "%{WBCs}", 1.0),
        ("neutrophil_pct", "{#}/100{WBCs}", 1.0),
        ("hemoglobin", "g/dl", 10.0),
        ("ferritin", "ug/dL", 10.0),
        ("folate", "ug/L", 1e-9 / 1e-3 / 441.4 * 1e9),
    ],
)
def test_ucum_units_convert(ranges, analyte, unit, factor):
    assert ranges.units.factor(analyte, unit) == pytest.approx(factor, rel=1e-9)


def test_ucum_number_that_is_not_a_power_of_ten_is_refused(cli):
    # UCUM reads `10.3/uL` as 30 per microlitre: a slip that lost its superscript.
    result = cli("interpret", "--platelets", "210 10.3/uL")
    assert result.exit_code == 2
    assert "10.3/uL" in one_clear_line(result)


def test_hl7_cells_per_microlitre_with_ucum_coding_is_read(cli):
    message = hl7(
        OBR,
        "OBX|1|NM|777-3^Platelets^LN||210000|{cells}/uL^cells per microliter^UCUM|"
        "150000-450000||||F",
        "OBX|2|NM|6690-2^Leukocytes^LN||105600|{cells}/uL^cells per microliter^UCUM|"
        "4500-11000|HH|||F",
    )
    result = cli("batch", "-", "--format", "ndjson", input=message)
    assert result.exit_code == 0, result.output
    (record,) = ndjson(result)
    assert values(record) == {"platelets": 210, "wbc": 105.6}
    assert not record["errors"]


def test_fhir_value_quantity_with_ucum_annotation_is_read(cli):
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {
            "value": 210000,
            "unit": "cells/uL",
            "system": "http://unitsofmeasure.org",
            "code": "{cells}/uL",
        },
    }
    result = cli("batch", "-", "--format", "ndjson", input=json.dumps(observation) + "\n")
    assert result.exit_code == 0, result.output
    (record,) = ndjson(result)
    assert values(record) == {"platelets": 210}


# --- Count spellings as a grammar ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("210 k/cumm", 210),
        ("210 thou/cmm", 210),
        ("210 x10E9/L", 210),
        ("210 10^3/mcL", 210),
        ("210 K/cu mm", 210),
        ("210 Giga/L", 210),
        ("210 bil/L", 210),
        ("210 10³/µL", 210),
        ("210000 cells/cmm", 210),
        ("0.21 10^3/nL", 210),
    ],
)
def test_count_spellings_read_without_a_list_entry(cli, text, expected):
    document = cli.json("interpret", "--platelets", text, "-f", "json")
    assert values(document) == {"platelets": expected}


def test_count_grammar_lives_in_the_data_file(ranges):
    grammar = ranges.analytes["wbc"].counts
    assert grammar is not None
    assert "cumm" in dict(grammar.volumes) and "thou" in dict(grammar.prefixes)
    assert ranges.analytes["b12"].counts is None


def test_count_prefix_over_a_mass_is_still_refused(cli):
    result = cli("interpret", "--platelets", "210 k/mg")
    assert result.exit_code == 2
    assert "k/mg" in one_clear_line(result)


def test_interpret_imports_no_unit_parser_for_a_listed_spelling():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from b12lab import interpret\n"
        "interpret({'b12': '180 pg/mL', 'platelets': '95 k/cumm'})\n"
        "print(sorted(m for m in ('pint', 'ucumvert', 'lark', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- Every LOINC code that means an analyte -----------------------------------------


@pytest.mark.parametrize(
    ("code", "analyte"),
    [
        ("30428-7", "mcv"),
        ("20509-6", "hemoglobin"),
        ("26511-6", "neutrophil_pct"),
        ("23761-0", "neutrophil_pct"),
        ("778-1", "platelets"),
        ("753-4", "anc"),
        ("804-5", "wbc"),
        ("20567-4", "ferritin"),
    ],
)
def test_more_loinc_codes_of_an_analyte_are_read(ranges, code, analyte):
    assert ranges.analyte_for(code) == analyte
    assert dict(ranges.analytes[analyte].loinc_names)[code]  # its long name is cited


def test_loinc_codes_that_only_look_close_are_named_and_left_out(ranges):
    assert ranges.analyte_for("2282-2") is None  # folate of a whole-blood haemolysate
    assert ranges.analyte_for("2283-0") is None  # red-cell folate
    # 15152-2 is conjugated (direct) bilirubin: nothing b12lab reads, so never named as
    # a folate it left out.
    assert "151522" not in ranges.excluded_codes
    assert ranges.analyte_for("30313-1") is None  # arterial (blood-gas) hemoglobin
    assert ranges.excluded_codes["22822"][0] == "folate"


def test_a_message_names_every_test_it_did_not_read_but_resembles(cli):
    message = hl7(
        OBR,
        "OBX|1|NM|30428-7^MCV^LN||88|fL|||||F",
        "OBX|2|NM|20509-6^Hgb calc^LN||9.5|g/dL|||||F",
        "OBX|3|NM|30313-1^Hgb arterial^LN||13.3|g/dL|||||F",
        "OBX|4|NM|99999-9^Hemoglobin [Mass/volume] in Blood^LN||13.3|g/dL|||||F",
        "OBX|5|NM|PLTC^Platlet count^L||210|10*3/uL|||||F",
    )
    result = cli("batch", "-", "--format", "ndjson", input=message)
    assert result.exit_code == 0, result.output
    (record,) = ndjson(result)
    assert values(record) == {"mcv": 88, "hemoglobin": 95}
    warnings = " | ".join(record["warnings"])
    assert "'30313-1' not read as hemoglobin" in warnings
    assert "'99999-9'" in warnings and "names hemoglobin" in warnings
    assert "did you mean platelets?" in warnings


def test_a_long_export_names_a_misspelt_test(cli, tmp_path):
    export = tmp_path / "long.csv"
    export.write_text(
        "patient_id,date,test,value,unit\n"
        "P1,2026-11-02,B12,180,pg/mL\n"
        "P1,2026-11-02,Platlet count,95,10^9/L\n",
        encoding="utf-8",
    )
    result = cli("batch", export, "--format", "ndjson")
    assert result.exit_code == 0, result.output
    (record,) = ndjson(result)
    assert any("did you mean platelets?" in w for w in record["warnings"])
    plan = cli("batch", export, "--plan")
    assert "'Platlet count' not read: did you mean platelets?" in " ".join(plan.stdout.split())


# --- Context from the report ----------------------------------------------------------

REAL = __import__("pathlib").Path(__file__).parent / "fixtures" / "real"


@pytest.mark.parametrize(
    ("name", "date"),
    [
        # 17 results with no date of their own, held by DiagnosticReport 101.
        ("fhir_r4_diagnosticreport-example.json", "2011-03-04"),
        # Results held by panels (hasMember) that the report holds.
        ("fhir_r4_diagnosticreport-example-ghp.json", "2015-08-16"),
    ],
)
def test_results_are_dated_by_the_panel_or_report_that_holds_them(cli, name, date):
    result = cli("batch", REAL / name, "--format", "ndjson")
    assert result.exit_code == 0, result.output
    records = [r for r in ndjson(result) if r["measurements"]]
    assert [r["panel_date"] for r in records] == [date]
    assert not any("no collection date" in w for w in records[0]["warnings"])


def _member_bundle(with_report: bool) -> dict:
    result = {
        "resourceType": "Observation",
        "id": "plt",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "777-3"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 95, "system": "http://unitsofmeasure.org", "code": "10*9/L"},
    }
    panel = {
        "resourceType": "Observation",
        "id": "cbc",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": "Patient/p1"},
        "hasMember": [{"reference": "Observation/plt"}],
    }
    entries = [{"resource": result}, {"resource": panel}]
    if with_report:
        report = {
            "resourceType": "DiagnosticReport",
            "id": "r1",
            "status": "final",
            "code": {"text": "CBC"},
            "effectiveDateTime": "2026-10-01T08:00:00Z",
            "result": [{"reference": "Observation/cbc"}],
        }
        entries.append({"resource": report})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_a_result_in_a_panel_in_a_report_takes_the_report_date(cli):
    bundle = json.dumps(_member_bundle(with_report=True))
    result = cli("batch", "-", "--format", "ndjson", input=bundle)
    (record,) = ndjson(result)
    assert record["panel_date"] == "2026-10-01"


def test_a_result_with_no_date_anywhere_is_read_with_a_warning(cli):
    bundle = json.dumps(_member_bundle(with_report=False))
    result = cli("batch", "-", "--format", "ndjson", input=bundle)
    (record,) = ndjson(result)
    assert record["panel_date"] is None
    assert any("no collection date" in w and "platelets" in w for w in record["warnings"])
    csv_out = cli("batch", "-", "--format", "csv", input=bundle)
    assert "no collection date in the source for platelets" in csv_out.stdout


def test_interpret_says_it_dated_an_undated_panel_with_the_run_date(cli):
    bundle = json.dumps(_member_bundle(with_report=False))
    document = cli.json("interpret", "-", "--as-of", "2026-11-20", "-f", "json", input=bundle)
    assert document["panel_date"] == "2026-11-20"
    assert any("no collection date" in w and "--as-of" in w for w in document["warnings"])
    text = cli("interpret", "-", "-f", "text", input=bundle)
    assert "no collection date" in text.stdout


# --- Did you mean -----------------------------------------------------------------------


def test_a_misspelt_panel_key_is_refused_with_did_you_mean(cli, tmp_path):
    panel = tmp_path / "panel.yaml"
    panel.write_text("sex: female\nb12: 180 pg/mL\nferitin: 45 ng/mL\n", encoding="utf-8")
    result = cli("interpret", panel)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "'feritin'" in line and "did you mean ferritin?" in line


def test_a_misspelt_column_header_is_named_in_the_plan_and_the_notes(cli, tmp_path):
    export = tmp_path / "wide.csv"
    export.write_text(
        "patient_id,date,B12,Platlet count\nP1,2026-11-02,180 pg/mL,95\n", encoding="utf-8"
    )
    plan = cli("batch", export, "--plan")
    assert "did you mean platelets?" in plan.stdout
    run = cli("batch", export, "-o", tmp_path / "out.csv")
    assert run.exit_code == 0
    assert "'Platlet count' ignored: did you mean platelets?" in run.stderr


@pytest.mark.parametrize("separator", [",", "\t", ";"])
def test_interpret_on_an_export_points_to_batch(cli, tmp_path, separator):
    export = tmp_path / "export.txt"
    rows = [
        ["patient", "date", "test", "value", "unit"],
        ["P1", "2026-11-02", "B12", "180", "pg/mL"],
    ]
    export.write_text("\n".join(separator.join(r) for r in rows) + "\n", encoding="utf-8")
    result = cli("interpret", export)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "b12lab batch" in line and "YAML" not in line


# --- No bare number changes a conclusion unseen ----------------------------------------


def test_a_bare_b12_that_reads_apart_in_pg_ml_is_refused_naming_both_readings(cli):
    result = cli("interpret", "--b12", "180")
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "180 pg/mL = 132.8 pmol/L is deficient" in line
    assert "180 pmol/L is borderline" in line
    assert "write the unit" in line


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--b12", "400"),  # 400 pg/mL = 295 pmol/L: normal either way
        ("--b12", "100"),  # deficient either way
        ("--platelets", "95"),  # 95 /uL = 0.095 10^9/L is no count a laboratory reports
        ("--anc", "1.1"),
        ("--ferritin", "450"),  # ug/L and ng/mL are one scale
        ("--hemoglobin", "98"),
        ("--crp", "40"),  # 40 mg/L and 40 mg/dL are both high
    ],
)
def test_a_bare_number_that_cannot_read_apart_is_read_with_a_warning(cli, flag, value):
    document = cli.json("interpret", flag, value, "-f", "json")
    assert len(document["measurements"]) == 1
    assert any("no unit given" in w for w in document["warnings"]) or flag == "--mcv"


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--crp", "3", "3 mg/dL = 30 mg/L is high, 3 mg/L is normal"),
        ("--folate", "5", "5 ng/mL = 11.3 nmol/L is normal, 5 nmol/L is low"),
        ("--hemoglobin", "12", "12 g/L is not a value laboratories report"),
        ("--platelets", "1200", "1200 /uL = 1.2 10^9/L"),
    ],
)
def test_other_bare_numbers_that_read_apart_are_refused(cli, flag, value, words):
    result = cli("interpret", flag, value)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


def test_the_guideline_in_force_decides_whether_a_bare_number_reads_apart(cli):
    # 300 pg/mL = 221.3 pmol/L: normal by WHO like 300 pmol/L; NICE calls it borderline.
    assert cli("interpret", "--b12", "300", "-f", "json").exit_code == 0
    nice = cli("interpret", "--b12", "300", "--guideline", "nice")
    assert nice.exit_code == 2
    assert "300 pg/mL = 221.3 pmol/L is borderline" in one_clear_line(nice)


def test_a_value_no_laboratory_reports_is_refused_naming_the_likely_unit(cli):
    result = cli("interpret", "--ferritin", "45 ng/dl")
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "45 ng/dl = 0.45 ug/L is not a plausible result" in line
    assert "did you mean 45 ng/mL (= 45 ug/L)?" in line


def test_reported_ranges_come_from_the_data_file(ranges):
    ferritin = ranges.analytes["ferritin"]
    assert (ferritin.reported_low, ferritin.reported_source) == (0.5, "lab-measuring-range")
    assert ranges.analytes["b12"].common_units == ("pmol/L", "pg/mL", "ng/L")


def test_an_ambiguous_column_stops_the_batch_before_any_row(cli, tmp_path):
    export = tmp_path / "wide.csv"
    export.write_text("patient_id,date,B12\nP1,2026-11-02,180\nP2,2026-11-02,400\n")
    out = tmp_path / "out.csv"
    result = cli("batch", export, "-o", out)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "column 'B12'" in line and "--unit 'B12=UNIT'" in line
    assert not out.exists()
    to_stdout = cli("batch", export)  # as `b12lab batch wide.csv > out.csv` in a shell
    assert to_stdout.exit_code == 2 and to_stdout.stdout == ""  # not even the CSV header
    plan = cli("batch", export, "--plan")
    assert plan.exit_code == 0
    assert "the run stops before any row" in " ".join(plan.stdout.split())
    given = cli("batch", export, "--unit", "B12=pg/mL", "-o", out)
    assert given.exit_code == 0
    assert "deficient" in out.read_text()


def test_results_contained_in_a_report_are_read_with_its_date_and_subject(cli):
    report = {
        "resourceType": "DiagnosticReport",
        "id": "cbc-1",
        "status": "final",
        "code": {"text": "CBC"},
        "subject": {"reference": "Patient/p9"},
        "effectiveDateTime": "2026-10-03T09:00:00Z",
        "contained": [
            {
                "resourceType": "Observation",
                "id": "hb",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                "valueQuantity": {
                    "value": 9.5,
                    "system": "http://unitsofmeasure.org",
                    "code": "g/dL",
                },
            }
        ],
        "result": [{"reference": "#hb"}],
    }
    result = cli("batch", "-", "--format", "ndjson", input=json.dumps(report))
    assert result.exit_code == 0, result.output
    (record,) = ndjson(result)
    assert (record["patient_id"], record["panel_date"]) == ("p9", "2026-10-03")
    assert values(record) == {"hemoglobin": 95}


@pytest.mark.parametrize(
    "overlay",
    [
        'count_units:\n  prefixes:\n    K: "meter"\n',
        'count_units:\n  volumes:\n    uL: "gram"\n',
    ],
)
def test_an_overlay_count_grammar_that_cannot_convert_is_refused_at_load(cli, tmp_path, overlay):
    path = tmp_path / "lab.yaml"
    path.write_text(overlay, encoding="utf-8")
    result = cli("ranges", "--ranges", path)
    assert result.exit_code == 2
    assert "count_units" in one_clear_line(result)
