"""One reading layer: every input read exactly as meant, or the assumption said, or refused."""

from __future__ import annotations

import csv
import io
import json
import math
import time

import pytest
from conftest import TODAY, finding_ids, one_clear_line, report_for

from b12lab.api import interpret
from b12lab.batch.rows import interpret_rows
from b12lab.errors import ImplausibleValueError, InputError
from b12lab.reading.policy import COMMA, POINT, ReadPolicy
from b12lab.reading.values import measure


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# --- units: where they come from, and what is refused -----------------------------


def test_a_mapped_column_keeps_the_unit_its_header_names(cli, tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,Vit B12 (ng/L),PLT (10^9/L)\nP1,150,95\n")
    result = cli("batch", path, "--map", "Vit B12 (ng/L)=b12")
    assert result.exit_code == 0, result.stderr
    row = csv_rows(result.stdout)[0]
    assert row["b12_status"] == "deficient"  # 150 ng/L = 110.7 pmol/L, not 150 pmol/L
    assert "plt-low-consistent-with-b12" in row["platelets_findings"]


def test_a_column_without_unit_is_read_in_the_canonical_unit_and_every_output_says_so(
    cli, tmp_path
):
    path = write(tmp_path, "f.csv", "patient_id,B12,Platelets\nP1,400,95\nP2,500,200\n")
    result = cli("batch", path)
    assert result.exit_code == 0
    rows = csv_rows(result.stdout)
    assert all("no unit given" in r["warnings"] for r in rows)
    assert "B12: no unit, read as pmol/L in 2 records" in result.stderr
    assert "Platelets: no unit, read as 10^9/L in 2 records" in result.stderr


def test_unit_option_gives_a_unit_column_its_unit(cli, tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,B12\nP1,250\n")
    result = cli("batch", path, "--unit", "B12=pg/mL")
    assert result.exit_code == 0, result.stderr
    row = csv_rows(result.stdout)[0]
    assert row["b12_status"] == "borderline"  # 250 pg/mL = 184.5 pmol/L
    assert "no unit" not in row["warnings"]


def test_unit_option_by_analyte_key_in_a_long_export(cli, tmp_path):
    text = "patient_id,date,test,result\nP1,2026-11-01,B12,250\n"
    result = cli("batch", write(tmp_path, "l.csv", text), "--unit", "b12=pg/mL")
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout)[0]["b12_status"] == "borderline"


def test_a_unit_column_that_disagrees_with_the_header_is_said_or_refused(cli, tmp_path):
    text = "MRN,Vit B12 (pg/mL),B12_unit\nA1,180,pmol/L\nA2,180,ng/L\nA3,180,\n"
    path = write(tmp_path, "f.csv", text)
    result = cli("batch", path)
    assert result.exit_code == 0, result.stderr
    conflict, same_unit, header_only = csv_rows(result.stdout)
    assert conflict["b12_status"] == "borderline"  # the unit column's pmol/L, said so
    assert "'pmol/L' from the unit column" in conflict["warnings"]
    assert "not 'pg/mL' from the header" in conflict["warnings"]
    for row in (same_unit, header_only):  # ng/L is pg/mL: no conflict
        assert row["b12_status"] == "deficient"  # 180 pg/mL = 132.8 pmol/L
        assert "unit" not in row["warnings"]
    assert "units disagree" in result.stderr
    strict = cli("batch", path, "--strict")
    assert strict.exit_code == 3
    rows = csv_rows(strict.stdout)
    assert "units disagree" in rows[0]["error"] and rows[0]["b12_status"] == "unknown"
    assert rows[1]["b12_status"] == rows[2]["b12_status"] == "deficient"


def test_a_unit_option_the_header_overrides_is_said(cli, tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,B12 (pg/mL),b12_unit\nA,180,\n")
    result = cli("batch", path, "--unit", "b12=pmol/L")
    assert result.exit_code == 0, result.stderr
    row = csv_rows(result.stdout)[0]
    assert row["b12_status"] == "deficient"  # the header's pg/mL
    assert "not 'pmol/L' from the --unit" in row["warnings"]
    assert cli("batch", path, "--unit", "b12=pmol/L", "--strict").exit_code == 3


@pytest.mark.parametrize(
    ("option", "words"),
    [("B12=parsecs", "parsecs"), ("Nope=pg/mL", "neither a lab column"), ("B12", "KEY=UNIT")],
)
def test_a_wrong_unit_option_is_refused_before_any_row(cli, tmp_path, option, words):
    path = write(tmp_path, "f.csv", "patient_id,B12\nP1,250\n")
    result = cli("batch", path, "--unit", option)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


def test_strict_refuses_an_assumed_unit_as_a_row_error(cli, tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,B12,Ferritin (ug/L)\nP1,400,40\n")
    result = cli("batch", path, "--strict")
    assert result.exit_code == 3
    row = csv_rows(result.stdout)[0]
    assert "refused under --strict" in row["error"]
    assert row["ferritin_flag"] == "normal"  # the rest of the row is still read


def test_strict_refuses_a_derived_anc(cli, tmp_path):
    path = write(tmp_path, "f.csv", "patient_id,WBC (10^9/L),Neutrophils %\nP1,3,40\n")
    result = cli("batch", path, "--strict", "--map", "Neutrophils %=neutrophil_pct")
    assert result.exit_code == 3
    assert "ANC would be derived" in csv_rows(result.stdout)[0]["error"]


@pytest.mark.parametrize("unit", ["pg/mL*0", "pg/mL*pi", "pg^9^9^9", "pg/mL**2", "1e3 pg/mL"])
def test_unit_text_is_never_evaluated_as_arithmetic(cli, unit):
    started = time.monotonic()
    result = cli("interpret", "--b12", f"120 {unit}", "-f", "json")
    assert result.exit_code == 2
    assert "pg/mL" in one_clear_line(result)  # the accepted units are listed
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("analyte", "text", "expected"),
    [
        ("b12", "0.03 ug/dL", 221.3),  # not listed, but a quotient of known symbols
        ("b12", "0.15 mcg/L", 110.67),
        ("mma", "400 nmol/L", 0.4),
        ("platelets", "95 ×10⁹/L", 95),
        ("platelets", "95 10³/µL", 95),
        ("platelets", "95 x10E3/uL", 95),
        ("anc", "1500 cells/uL", 1.5),
    ],
)
def test_listed_and_composed_units_are_read(ranges, analyte, text, expected):
    measurement, _ = measure(ranges, analyte, text)
    assert measurement.value == pytest.approx(expected, rel=1e-3)


# --- exact at cut-offs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "sex", "expected_flags", "finding"),
    [
        ({"ferritin": "200 ng/mL"}, "female", {"ferritin": "normal"}, None),
        ({"platelets": "450000 /mm3"}, "female", {"platelets": "normal"}, None),
        ({"platelets": "<20000 /mm3"}, "female", {"platelets": "critical_low"}, "plt-critical-low"),
        ({"anc": "<500 /mm3"}, "female", {"anc": "critical_low"}, "neut-severe"),
        ({"ferritin": "<30 ng/mL"}, "male", {"ferritin": "low"}, None),
    ],
)
def test_a_value_exactly_at_a_cut_off_in_another_unit_lands_where_the_cut_off_does(
    values, sex, expected_flags, finding
):
    report = report_for(values, sex=sex)
    flags = {m.analyte: m.flag for m in report.measurements}
    assert flags == expected_flags
    if finding:
        assert finding in finding_ids(report)


def test_every_cut_off_written_in_every_accepted_unit_reads_back_exactly(ranges):
    checked = 0
    for guideline in ("who", "nice"):
        for sex in ("female", "male"):
            limits = ranges.limits(sex, 40, guideline)
            for analyte in ranges.analytes:
                for cut in limits.cut_points(analyte):
                    if cut <= 0:
                        continue
                    for unit in ranges.units.accepted(analyte):
                        written = cut / ranges.units.factor(analyte, unit)
                        try:
                            measurement, _ = measure(ranges, analyte, f"{written:.15g} {unit}")
                        except ImplausibleValueError:
                            continue
                        assert measurement.value == cut, (analyte, unit, cut, written)
                        checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    ("b12", "status", "straddles"),
    [
        ("<=148 pmol/L", "borderline", True),  # may equal 148, which is borderline
        ("<148 pmol/L", "deficient", False),
        ("<200 pg/mL", "deficient", False),  # 147.6 pmol/L: all of it lies below 148
        ("<250 pg/mL", "borderline", True),
        (">=664 pmol/L", "normal", True),  # may equal 664 (normal) or lie above it
        (">664 pmol/L", "high", False),
    ],
)
def test_censoring_signs_keep_their_meaning(b12, status, straddles):
    report = report_for({"b12": b12})
    assert report.b12_status == status
    assert any("straddles" in w for w in report.warnings) is straddles
    expected = b12[:2] if b12[1] == "=" else b12[0]
    assert report.to_dict()["measurements"][0]["censored"] == expected


# --- separators ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimal", "value"),
    [
        ("1,5", None, 1.5),
        ("0,476", POINT, 0.476),  # never a thousands group
        ("1.200,5", None, 1200.5),
        ("1,200.5", None, 1200.5),
        ("1.476", COMMA, 1476),
        ("1,476", POINT, 1476),
        ("1,476", COMMA, 1.476),
        ("1.476", POINT, 1.476),
        ("12.345", COMMA, 12345),
        ("1.234,5", None, 1234.5),
        ("12.34", COMMA, 12.34),
    ],
)
def test_separators_follow_the_input_convention(ranges, text, decimal, value):
    # Ferritin in ng/mL (= ug/L): the separator alone decides the value.
    measurement, _ = measure(
        ranges, "ferritin", f"{text} ng/mL", policy=ReadPolicy(decimal=decimal)
    )
    assert measurement.value == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("text", ["1.476", "1,476"])
def test_an_ambiguous_number_without_a_convention_names_both_readings(ranges, text):
    with pytest.raises(InputError) as error:
        measure(ranges, "b12", f"{text} pg/mL", policy=ReadPolicy(decimal=None))
    assert "1476" in str(error.value) and "1.476" in str(error.value)


def test_a_typed_comma_that_may_group_thousands_is_read_so_and_said(cli):
    document = cli.json("interpret", "--platelets", "250,000 /uL", "-f", "json")
    assert document["measurements"][0]["value"] == 250
    assert any("comma as thousands separator" in w for w in document["warnings"])


def test_a_semicolon_export_with_decimal_commas_reads_dots_as_thousands(cli, tmp_path):
    text = (
        "patient_id;B12 (pg/mL);Ferritin (ng/mL);Hb (g/dL)\r\n"
        "P1;1.476;1.200;9,5\r\n"
        "P2;180;1.200,5;12,1\r\n"
    )
    result = cli("batch", write(tmp_path, "eu.csv", text), "--format", "ndjson")
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    values = {m["analyte"]: m["value"] for m in first["measurements"]}
    assert values["b12"] == pytest.approx(1476 * 0.7378, rel=1e-3)
    assert values["ferritin"] == 1200
    assert any("thousands separator" in w for w in first["warnings"])
    ferritin = next(m for m in second["measurements"] if m["analyte"] == "ferritin")
    assert (ferritin["input"], ferritin["value"]) == ("1.200,5 ng/mL", 1200)  # not 1.2
    assert "decimal mark: ','" in result.stderr


def test_an_export_without_a_clear_decimal_mark_refuses_ambiguous_values(cli, tmp_path):
    text = "patient_id;B12 (pg/mL);Ferritin (ng/mL)\nP1;1.476;200\n"
    result = cli("batch", write(tmp_path, "eu.csv", text))
    assert result.exit_code == 3
    row = csv_rows(result.stdout)[0]
    assert "ambiguous" in row["error"] and "1476" in row["error"]
    assert row["ferritin_flag"] == "normal"
    fixed = cli("batch", write(tmp_path, "eu.csv", text), "--decimal", ",")
    assert fixed.exit_code == 0


# --- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date_format", "expected"),
    [
        ("15/03/2026", None, "2026-03-15"),
        ("03/15/2026", None, "2026-03-15"),
        ("03/04/2026", "DD/MM/YYYY", "2026-04-03"),
        ("03/04/2026", "MM/DD/YYYY", "2026-03-04"),
        ("03.04.2026", None, "2026-04-03"),
        ("2026-04-03T08:30", None, "2026-04-03"),
    ],
)
def test_slash_dates_are_read_only_when_certain(cli, tmp_path, text, date_format, expected):
    path = write(tmp_path, "d.csv", f"patient_id,date,B12 (pmol/L)\nP1,{text},300\n")
    args = ["--date-format", date_format] if date_format else []
    result = cli("batch", path, *args)
    assert result.exit_code == 0, result.stdout
    assert csv_rows(result.stdout)[0]["panel_date"] == expected


def test_an_ambiguous_slash_date_is_refused_with_what_to_give(cli, tmp_path):
    path = write(tmp_path, "d.csv", "patient_id,date,B12 (pmol/L)\nP1,03/04/2026,300\n")
    result = cli("batch", path)
    assert result.exit_code == 3
    error = csv_rows(result.stdout)[0]["error"]
    assert "ambiguous" in error and "--date-format" in error


@pytest.mark.parametrize("text", ["2026-11-20T25:00", "2026-11-20T08:00+99:00", "2026-02-30"])
def test_impossible_dates_and_times_are_input_errors(cli, text):
    result = cli("interpret", "--b12", "300", "--date", text)
    assert result.exit_code == 2
    assert text[:10] in one_clear_line(result)


# --- long exports ---------------------------------------------------------------------


def test_unrelated_tests_in_a_long_export_are_skipped_and_counted(cli, tmp_path):
    text = (
        "patient_id,date,test,result,unit\n"
        "P1,2026-11-01,Sodium,140,mmol/L\n"
        "P1,2026-11-01,B12,120,pmol/L\n"
        "P1,2026-11-01,TSH,2.1,mU/L\n"
        "P1,2026-11-01,PLT,95,10^9/L\n"
    )
    result = cli("batch", write(tmp_path, "l.csv", text))
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert len(rows) == 1 and rows[0]["error"] == ""
    assert "plt-low-consistent-with-b12" in rows[0]["platelets_findings"]
    assert "Sodium: not an analyte in 1 record" in result.stderr


def test_rows_of_one_panel_are_grouped_even_when_not_adjacent(cli, tmp_path):
    text = (
        "patient_id,date,test,result,unit\n"
        "P1,2026-11-01,B12,120,pmol/L\n"
        "P2,2026-11-01,B12,400,pmol/L\n"
        "P1,2026-11-01,PLT,95,10^9/L\n"
    )
    result = cli("batch", write(tmp_path, "l.csv", text))
    rows = csv_rows(result.stdout)
    assert [(r["patient_id"], r["line"]) for r in rows] == [("P1", "2"), ("P2", "3")]
    assert "plt-low-consistent-with-b12" in rows[0]["platelets_findings"]


def test_rows_of_one_panel_far_apart_are_still_one_panel(ranges):
    from b12lab.batch.grouping import IN_MEMORY_ROWS
    from b12lab.batch.rows import RowInterpreter

    header = ["patient_id", "date", "test", "result", "unit"]
    others = [(n, [f"Q{n}", "2026-11-01", "B12", "400", "pmol/L"], None) for n in range(3, 9)]
    rows = [
        (2, ["P1", "2026-11-01", "B12", "120", "pmol/L"], None),
        *others,
        (9, ["P1", "2026-11-01", "PLT", "95", "10^9/L"], None),
    ]
    assert len(rows) < IN_MEMORY_ROWS
    records = list(RowInterpreter.for_header(header, ranges, today=TODAY)(iter(rows)))
    assert [r.first_line for r in records] == [2, 3, 4, 5, 6, 7, 8]
    assert records[0].lines == (2, 9)
    assert "plt-low-consistent-with-b12" in sum(records[0].outcome.domain_findings, ())
    assert not any("also appear" in w for r in records for w in r.warnings)


def test_the_same_analyte_twice_in_one_panel_is_kept_once_or_refused(cli, tmp_path):
    text = "patient_id,B12 (pmol/L),Vit B12 (pg/mL),Ferritin,Ferritin (ng/mL)\nP1,120,300,40,40\n"
    result = cli("batch", write(tmp_path, "d.csv", text))
    row = csv_rows(result.stdout)[0]
    assert "b12 given twice with different results" in row["error"]
    assert row["b12_status"] == "unknown"  # neither is used
    assert row["ferritin_flag"] == "normal"  # equal results are kept once


# --- what is shown agrees with the flag ------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "markdown", "text"])
def test_a_value_near_its_limit_is_shown_on_the_side_of_its_flag(cli, fmt):
    result = cli("interpret", "--ferritin", "29.6", "--sex", "female", "-f", fmt)
    assert result.exit_code == 0
    assert "29.6" in result.stdout
    if fmt == "json":
        ferritin = json.loads(result.stdout)["measurements"][0]
        assert (ferritin["value"], ferritin["flag"]) == (29.6, "low")


@pytest.mark.parametrize("fmt", ["json", "fhir"])
def test_a_value_below_one_is_never_shown_as_zero(cli, fmt):
    result = cli("interpret", "--platelets", "0.4", "--ferritin", "0.4 ng/mL", "-f", fmt)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    if fmt == "json":
        values = {m["analyte"]: m["value"] for m in document["measurements"]}
    else:
        values = {
            e["resource"]["code"]["coding"][0]["code"]: e["resource"]["valueQuantity"]["value"]
            for e in document["entry"]
            if e["resource"]["resourceType"] == "Observation"
        }
    assert sorted(values.values()) == [0.4, 0.4]


# --- Python API --------------------------------------------------------------------------


class NAType:
    """Stands in for pandas.NA (matched by type name, so pandas need not be installed)."""


@pytest.mark.parametrize("missing", [None, float("nan"), NAType(), "", "n/a"])
def test_the_api_treats_missing_values_as_not_measured(missing):
    values = {"b12": 120, "platelets": missing}
    report = interpret(values, sex="female", date=TODAY, today=TODAY)
    assert [m.analyte for m in report.measurements] == ["b12"]
    assert "platelets" in report.missing


def test_the_api_accepts_numbers_as_numbers():
    report = interpret({"b12": 120, "platelets": 95.0, "ferritin": 1.5e2}, date=TODAY, today=TODAY)
    values = {m.analyte: m.value for m in report.measurements}
    assert values == {"b12": 120, "platelets": 95, "ferritin": 150}


def test_the_api_applies_the_duplicate_rule():
    with pytest.raises(InputError) as error:
        interpret({"b12": "120", "Vitamin B12": "130"}, date=TODAY, today=TODAY)
    assert "given twice" in str(error.value)
    report = interpret({"b12": "120", "Vitamin B12": 120}, date=TODAY, today=TODAY)
    assert report.b12_status == "deficient"


def test_interpret_rows_takes_numbers_and_missing_cells():
    rows = [
        {"patient_id": 1, "B12": 120.0, "PLT": 95, "age": 54, "sex": "f"},
        {"patient_id": 2, "B12": float("nan"), "PLT": None, "age": None, "sex": None},
    ]
    records = list(interpret_rows(rows, today=TODAY))
    assert [r.patient_id for r in records] == ["1", "2"]
    assert records[0].outcome.b12_status == "deficient"
    assert records[1].outcome.b12_status == "unknown"
    assert all(r.errors == () for r in records)
    assert math.isclose(records[0].report.measurements[0].value, 120)
