"""Traceable batch output: --keep columns, normalized values, a versioned column set.

Every record (refused ones too) carries the export's own columns named with
--keep, so results join back to the laboratory system by encounter or accession;
CSV output holds each analyte's value in its canonical unit as b12lab used
it; `--plan` shows the columns a run will write.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest
from conftest import SAMPLES, one_clear_line
from hypothesis import given
from hypothesis import strategies as st
from test_columnar import HEADERS, _export, _same

from b12lab.output_columns import (
    BASE_COLUMNS,
    CSV_COLUMNS_VERSION,
    plain_number,
    unit_slug,
    value_column,
)
from b12lab.ranges import load_ranges

RANGES = load_ranges()
AS_OF = ("--as-of", "2026-11-20", "--no-progress")

WIDE = """Encounter,patient_id,collected,sex,age,B12,b12_unit,PLT,Ferritin,comment
E-1001,P1,2026-08-03,F,67,180,pg/mL,95,410 ng/mL,=HYPERLINK("x")
E-1002,P2,2026-08-03,M,45,12 parsecs,pg/mL,265,18,redraw
E-1003,P3,2026-08-04,F,52,<100,pg/mL,,,
"""

LONG = """accession,patient,date,test,result,units,comment
A-1,S101,2026-07-01,Vitamin B12,142,pmol/L,first
A-1,S101,2026-07-01,Platelet count,88,10*9/L,second
A-3,S102,2026-07-02,Vitamin B12,>1476,pg/mL,third
A-3,S102,2026-07-02,Ferritin,35,ng/mL,fourth
"""


def _write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


# --- --keep ---------------------------------------------------------------------------


def test_keep_copies_wide_columns_into_every_row_refused_ones_too(cli, tmp_path):
    result = cli("batch", _write(tmp_path, WIDE), "--keep", "Encounter,comment", *AS_OF)
    assert result.exit_code == 3  # one refused cell
    header = _header(result.stdout)
    assert header[-3:] == ["Encounter", "comment", "error"]
    rows = _rows(result.stdout)
    assert [r["Encounter"] for r in rows] == ["E-1001", "E-1002", "E-1003"]
    assert rows[0]["comment"] == '\'=HYPERLINK("x")'  # formula neutralized, otherwise as is
    assert rows[1]["comment"] == "redraw"
    assert rows[1]["error"] and "parsecs" in rows[1]["error"]
    assert rows[2]["comment"] == ""


def test_keep_is_repeatable_and_matches_like_other_header_names(cli, tmp_path):
    export = _write(tmp_path, WIDE)
    result = cli("batch", export, "--keep", "ENCOUNTER", "--keep", "Comment", *AS_OF)
    header = _header(result.stdout)
    assert header[-3:] == ["Encounter", "comment", "error"]  # the export's own spelling


def test_kept_name_that_is_a_b12lab_column_is_prefixed(cli, tmp_path):
    result = cli("batch", _write(tmp_path, WIDE), "--keep", "patient_id,Encounter", *AS_OF)
    header = _header(result.stdout)
    assert header.count("patient_id") == 1
    assert header[-3:] == ["export.patient_id", "Encounter", "error"]
    assert [r["export.patient_id"] for r in _rows(result.stdout)] == ["P1", "P2", "P3"]


def test_long_record_keeps_the_cells_of_its_first_row(cli, tmp_path):
    result = cli("batch", _write(tmp_path, LONG), "--keep", "accession,comment", *AS_OF)
    assert result.exit_code == 0, result.stderr
    rows = _rows(result.stdout)
    assert len(rows) == 2
    assert [(r["line"], r["accession"], r["comment"]) for r in rows] == [
        ("2", "A-1", "first"),
        ("4", "A-3", "third"),
    ]


def test_a_header_name_with_a_comma_is_kept_whole(cli, tmp_path):
    export = 'patient_id,B12,"Ward, bed"\nP1,300 pmol/L,"7, 2"\n'
    result = cli("batch", _write(tmp_path, export), "--keep", "Ward, bed", *AS_OF)
    assert result.exit_code == 0, result.stderr
    (row,) = _rows(result.stdout)
    assert row["Ward, bed"] == "7, 2"


def test_keep_in_ndjson_is_a_kept_object(cli, tmp_path):
    export = _write(tmp_path, WIDE)
    result = cli("batch", export, "--keep", "Encounter,patient_id", "--format", "ndjson", *AS_OF)
    assert result.exit_code == 3
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["kept"] for r in records] == [
        {"Encounter": "E-1001", "export.patient_id": "P1"},
        {"Encounter": "E-1002", "export.patient_id": "P2"},
        {"Encounter": "E-1003", "export.patient_id": "P3"},
    ]
    assert records[1]["errors"]  # the refused row, joined back by its Encounter


def test_without_keep_json_records_have_no_kept_key(cli, tmp_path):
    result = cli("batch", _write(tmp_path, WIDE), "--format", "json", *AS_OF)
    assert all("kept" not in record for record in json.loads(result.stdout))


def test_keep_with_timeline_keeps_the_first_row_of_the_patient(cli, tmp_path):
    export = """Encounter,patient_id,collected,B12
E-1,P1,2026-08-03,120 pmol/L
E-2,P1,2026-09-03,300 pmol/L
"""
    result = cli("batch", _write(tmp_path, export), "--timeline", "--keep", "Encounter", *AS_OF)
    assert result.exit_code == 0, result.stderr
    rows = _rows(result.stdout)
    assert [(r["Encounter"], r["b12_pmol_l"]) for r in rows] == [("E-1", "300")]


@pytest.mark.parametrize(
    "keep, named",
    [
        ("nope", "'nope'"),
        ("Encounter,accession", "'accession'"),
        ("Encounter,", "empty column name"),
    ],
)
def test_unknown_keep_column_is_one_line_exit_2(cli, tmp_path, keep, named):
    out = tmp_path / "out.csv"
    result = cli("batch", _write(tmp_path, WIDE), "--keep", keep, "-o", out, *AS_OF)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert named in line
    if "empty" not in named:
        assert "'Encounter', 'patient_id', 'collected'" in line  # the header is listed
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        (SAMPLES / "oru_r01.hl7", "--keep", "Encounter"),
        (SAMPLES / "fhir_bulk.ndjson", "--keep", "Encounter", "--plan"),
        (SAMPLES / "wide_us.csv", "--keep", "patient_id", "--format", "fhir-ndjson"),
    ],
    ids=["hl7", "fhir-plan", "fhir-ndjson-output"],
)
def test_keep_where_there_is_nothing_to_keep_into_is_exit_2(cli, args):
    result = cli("batch", *args, *AS_OF)
    assert result.exit_code == 2
    assert "--keep" in one_clear_line(result)


# --- normalized values ----------------------------------------------------------------


def _molar(analyte: str) -> float:
    mass = RANGES.analytes[analyte].molar_mass
    assert mass is not None
    return mass


@pytest.mark.parametrize(
    "column, unit, cell, expected",
    [
        ("B12", "pg/mL", "400", lambda: 400 / _molar("b12") * 1000),
        ("B12", "ng/L", "400", lambda: 400 / _molar("b12") * 1000),
        ("B12", "pmol/L", "295.2", lambda: 295.2),
        ("Folate", "ng/mL", "5.1", lambda: 5.1 / _molar("folate") * 1000),
        ("MMA", "nmol/L", "300", lambda: 0.3),
        ("Homocysteine", "mg/L", "1.3", lambda: 1.3 / _molar("homocysteine") * 1000),
        ("Hemoglobin", "g/dL", "9.1", lambda: 91),
        ("Hemoglobin", "mmol/L", "5.6", lambda: 5.6 * _molar("hemoglobin") / 1000),
        ("Ferritin", "pmol/L", "30", lambda: 30 * _molar("ferritin") / 1e6),
        ("Ferritin", "ng/mL", "30", lambda: 30),
        ("PLT", "K/uL", "150", lambda: 150),
        ("PLT", "cells/uL", "150000", lambda: 150),
        ("PLT", "/uL", "450000", lambda: 450),
        ("PLT", "G/L", "150", lambda: 150),
        ("CRP", "mg/dL", "0.3", lambda: 3),
        ("creatinine", "mg/dL", "1.1", lambda: 1.1 * 10_000 / _molar("creatinine")),
    ],
)
def test_normalized_value_is_the_canonical_number(cli, tmp_path, column, unit, cell, expected):
    export = f"patient_id,{column}\nP1,{cell} {unit}\n"
    result = cli("batch", _write(tmp_path, export), *AS_OF)
    (row,) = _rows(result.stdout)
    analyte = RANGES.analyte_for(column)
    shown = row[value_column(RANGES, analyte)]
    assert float(shown) == pytest.approx(expected(), rel=1e-9)
    digits = shown.replace(".", "").replace("-", "").strip("0")
    assert len(digits) <= 10 and "e" not in shown  # no float noise, no exponent


@pytest.mark.parametrize(
    "column, cell, shown",
    [
        ("B12", "295.2 pmol/L", "295.2"),
        ("Hemoglobin", "9.0 g/dL", "90"),
        ("PLT", "450000 /mm3", "450"),
        ("MMA", "0.25", "0.25"),
    ],
)
def test_normalized_value_text_is_exact(cli, tmp_path, column, cell, shown):
    result = cli("batch", _write(tmp_path, f"patient_id,{column}\nP1,{cell}\n"), *AS_OF)
    (row,) = _rows(result.stdout)
    assert row[value_column(RANGES, RANGES.analyte_for(column))] == shown


@pytest.mark.parametrize(
    "column, cell, comparator, number",
    [
        ("B12", "<100 pg/mL", "<", lambda: 100 / _molar("b12") * 1000),
        ("B12", "> 1476 pg/mL", ">", lambda: 1476 / _molar("b12") * 1000),
        ("MMA", "<=0.2", "<=", lambda: 0.2),
        ("Ferritin", ">2000", ">", lambda: 2000),
    ],
)
def test_censored_value_keeps_its_comparator(cli, tmp_path, column, cell, comparator, number):
    result = cli("batch", _write(tmp_path, f"patient_id,{column}\nP1,{cell}\n"), *AS_OF)
    (row,) = _rows(result.stdout)
    shown = row[value_column(RANGES, RANGES.analyte_for(column))]
    assert shown.startswith(comparator)
    assert float(shown[len(comparator) :]) == pytest.approx(number(), rel=1e-9)


def test_value_columns_are_the_wide_exports_analytes_and_empty_when_absent_or_refused(
    cli, tmp_path
):
    result = cli("batch", _write(tmp_path, WIDE), *AS_OF)
    header = _header(result.stdout)
    assert header[len(BASE_COLUMNS) : -1] == ["b12_pmol_l", "platelets_10e9_l", "ferritin_ug_l"]
    rows = _rows(result.stdout)
    assert [r["b12_pmol_l"][:6] for r in rows] == ["132.80", "", "<73.77"]
    assert [r["platelets_10e9_l"] for r in rows] == ["95", "265", ""]  # refused B12 aside
    assert [r["ferritin_ug_l"] for r in rows] == ["410", "18", ""]


def test_long_export_has_a_value_column_for_every_analyte_of_the_ranges(cli, tmp_path):
    result = cli("batch", _write(tmp_path, LONG), *AS_OF)
    header = _header(result.stdout)
    names = [value_column(RANGES, key) for key in RANGES.analytes]
    assert header[len(BASE_COLUMNS) : -1] == names
    rows = _rows(result.stdout)
    assert (rows[0]["b12_pmol_l"], rows[0]["platelets_10e9_l"]) == ("142", "88")
    assert rows[1]["b12_pmol_l"].startswith(">1088.97")
    assert rows[1]["ferritin_ug_l"] == "35" and rows[1]["platelets_10e9_l"] == ""


def test_derived_anc_is_not_shown_as_a_value_read(cli, tmp_path):
    export = "patient_id,ANC,WBC,neutrophil %\nP1,,5.0,40\n"
    result = cli("batch", _write(tmp_path, export), *AS_OF)
    (row,) = _rows(result.stdout)
    assert (row["anc_10e9_l"], row["wbc_10e9_l"], row["neutrophil_pct_pct"]) == ("", "5", "40")
    assert "derived" in row["warnings"]


@pytest.mark.parametrize("analyte", list(RANGES.analytes))
def test_value_column_names_come_from_the_ranges_and_never_collide(analyte):
    name = value_column(RANGES, analyte)
    assert name.startswith(analyte + "_")
    assert name == name.lower() and all(ch.isalnum() or ch == "_" for ch in name)
    assert name.endswith(unit_slug(RANGES.analytes[analyte].canonical_unit))
    names = [value_column(RANGES, a) for a in RANGES.analytes]
    assert names.count(name) == 1 and name not in BASE_COLUMNS


@given(st.floats(min_value=1e-6, max_value=1e7, allow_nan=False).map(lambda x: float(f"{x:.10g}")))
def test_plain_number_reads_back_exactly_without_exponent(value):
    text = plain_number(value)
    assert float(text) == value
    assert "e" not in text.lower() and not text.endswith(".")


# --- both paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed, messy", [(3, True), (8, False), (13, True)])
def test_both_paths_give_the_same_bytes_with_keep(tmp_path, monkeypatch, seed, messy):
    source = tmp_path / "export.csv"
    data = _export(random.Random(seed), 300, messy)
    source.write_bytes(data)
    header = data.split(b"\n", 1)[0].decode().split(",")
    keep = ["patient_id", ",".join(header[3:6])]
    _same(tmp_path, source, monkeypatch, keep=keep)
    written = (tmp_path / "columnar.csv").read_text().splitlines()[0].split(",")
    assert written[-5:] == ["export.patient_id", *header[3:6], "error"]
    assert set(HEADERS) >= set(header)


# --- the plan -----------------------------------------------------------------------------


def test_plan_json_lists_kept_and_output_columns(cli, tmp_path):
    export = _write(tmp_path, WIDE)
    plan = cli.json("batch", export, "--plan", "--format", "json", "--keep", "Encounter")
    output = plan["output"]
    assert output["csv_columns_version"] == CSV_COLUMNS_VERSION == 2
    assert output["kept"] == [{"index": 1, "header": "Encounter", "column": "Encounter"}]
    assert output["values"] == {
        "b12": "b12_pmol_l",
        "platelets": "platelets_10e9_l",
        "ferritin": "ferritin_ug_l",
    }
    run = cli("batch", _write(tmp_path, WIDE), "--keep", "Encounter", *AS_OF)
    assert output["csv_columns"] == _header(run.stdout)  # what the run then writes


def test_plan_text_shows_kept_columns_and_the_versioned_column_set(cli, tmp_path):
    result = cli("batch", _write(tmp_path, WIDE), "--plan", "--keep", "patient_id,Encounter")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    kept = "kept (--keep, copied into every record): patient_id (column 2) as export.patient_id;"
    assert kept in text
    assert "Encounter (column 1)" in text
    assert f"CSV output, columns version {CSV_COLUMNS_VERSION} (22 columns): line," in text
    values = "b12_pmol_l, platelets_10e9_l, ferritin_ug_l"
    assert f"{values}, export.patient_id, Encounter, error" in text
    output = result.stdout[result.stdout.index("kept (--keep") : result.stdout.index("notes:")]
    assert all(len(line) <= 100 for line in output.splitlines())  # wrapped like the notes


def test_plan_of_a_message_file_shows_every_value_column(cli):
    plan = cli.json("batch", SAMPLES / "oru_r01.hl7", "--plan", "--format", "json")
    assert list(plan["output"]["values"]) == list(RANGES.analytes)
    assert plan["output"]["kept"] == []
