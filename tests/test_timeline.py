"""Several dated panels: timeline rules, window edges, ordering, history in JSON and text."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import SAMPLES, TODAY, one_clear_line

from b12lab.api import interpret_record
from b12lab.errors import InputError
from b12lab.model import Context
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel

START = dt.date(2026, 3, 2)


def timeline(*panels, start=START, sex="male", **context):
    record = PatientRecord(
        patient_id="T1",
        sex=sex,
        age=60,
        context=Context(b12_therapy_start=start, **context),
        panels=[RawPanel(START + dt.timedelta(days=day), dict(values)) for day, values in panels],
    )
    return interpret_record(record, today=TODAY)


def ids(report):
    return [f.id for f in report.findings]


def test_sample_timeline_shows_ferritin_fall_and_platelet_recovery(cli):
    document = cli.json("interpret", SAMPLES / "patient_timeline.yaml", "-f", "json")
    found = [f["id"] for f in document["findings"]]
    assert document["panel_date"] == "2026-05-04"
    assert "fer-falling-on-therapy" in found
    assert "plt-recovered-on-therapy" in found
    fall = next(f for f in document["findings"] if f["id"] == "fer-falling-on-therapy")
    assert fall["evidence"]["earlier_ferritin"] == "520 ug/L on 2026-02-27"
    assert [p["date"] for p in document["history"]["ferritin"]] == [
        "2026-02-27",
        "2026-03-13",
        "2026-05-04",
    ]
    assert [p["flag"] for p in document["history"]["platelets"]] == ["low", "high", "normal"]


@pytest.mark.parametrize(("now", "fires"), [(8, True), (5, False)])
def test_ferritin_fall_must_be_real(now, fires):
    # 100 -> 80 is a 20% fall (noise); 100 -> 70 is 30% (real).
    later = "70" if fires else "80"
    report = timeline((-3, {"ferritin": "100"}), (20, {"ferritin": later}))
    assert ("fer-falling-on-therapy" in ids(report)) is fires


def test_ferritin_fall_before_therapy_is_not_called_a_fall_on_therapy():
    report = timeline((-30, {"ferritin": "400"}), (-3, {"ferritin": "100"}))
    assert "fer-falling-on-therapy" not in ids(report)


@pytest.mark.parametrize(("day", "fires"), [(2, False), (3, True), (42, True), (43, False)])
def test_rebound_window_edges(day, fires):
    report = timeline((-3, {"b12": "100", "platelets": "80"}), (day, {"platelets": "600"}))
    assert ("plt-high-rebound-on-therapy" in ids(report)) is fires


@pytest.mark.parametrize(("gap", "fires"), [(56, False), (57, True)])
def test_platelets_high_on_two_panels_beyond_the_persistence_window(gap, fires):
    report = timeline((-100, {"platelets": "600"}), (-100 + gap, {"platelets": "620"}), start=None)
    assert ("plt-high-persistent-consider-et" in ids(report)) is fires
    if fires:
        finding = next(f for f in report.findings if f.id == "plt-high-persistent-consider-et")
        assert finding.evidence["earlier_platelets"].endswith("on 2025-11-22")


@pytest.mark.parametrize(("day", "fires"), [(56, False), (57, True)])
def test_persistent_thrombocytosis_on_therapy(day, fires):
    report = timeline((-3, {"b12": "100"}), (day, {"platelets": "600", "b12": "100"}))
    assert ("plt-high-persistent-consider-et" in ids(report)) is fires


def test_platelets_recovered_on_therapy():
    report = timeline((-3, {"b12": "100", "platelets": "80"}), (21, {"platelets": "200"}))
    assert "plt-recovered-on-therapy" in ids(report)
    near_miss = timeline((-3, {"b12": "100", "platelets": "160"}), (21, {"platelets": "200"}))
    assert "plt-recovered-on-therapy" not in ids(near_miss)


@pytest.mark.parametrize(
    ("day", "latest", "fires"), [(21, "100", True), (13, "100", False), (21, "300", False)]
)
def test_b12_not_responding(day, latest, fires):
    report = timeline((-3, {"b12": "90"}), (day, {"b12": latest}))
    assert ("b12-not-responding" in ids(report)) is fires


def test_b12_from_an_earlier_panel_is_named_with_its_date_and_never_counts_as_response():
    report = timeline((-3, {"b12": "90"}), (21, {"platelets": "200"}))
    assert "b12-not-responding" not in ids(report)
    b12 = next(m for m in report.measurements if m.analyte == "b12")
    assert "(from 2026-02-27)" in b12.input
    assert any("not measured on 2026-03-23" in w for w in report.warnings)
    assert not any(m.analyte == "ferritin" for m in report.measurements)


def test_unordered_panel_dates_are_put_in_order():
    report = timeline((21, {"platelets": "200"}), (-3, {"b12": "100", "platelets": "80"}))
    assert report.panel_date == START + dt.timedelta(days=21)
    assert "plt-recovered-on-therapy" in ids(report)


def test_panels_of_the_same_date_merge_and_an_equal_repeat_is_kept_once():
    report = timeline(
        (-3, {"b12": "100"}),
        (10, {"platelets": "640 K/uL"}),
        (10, {"platelets": "640", "ferritin": "50"}),
    )
    values = {m.analyte: m.value for m in report.measurements}
    assert values["platelets"] == 640 and values["ferritin"] == 50


def test_two_different_results_on_one_date_are_refused_naming_both():
    with pytest.raises(InputError) as error:
        timeline(
            (-3, {"b12": "100"}),
            (10, {"platelets": "600"}),
            (10, {"platelets": "640", "ferritin": "50"}),
        )
    assert "platelets given twice" in str(error.value)
    assert "600" in str(error.value) and "640" in str(error.value)


def test_therapy_start_after_the_last_panel_means_not_on_therapy():
    report = timeline(
        (-40, {"b12": "100", "ferritin": "300"}),
        (-10, {"ferritin": "100"}),
        start=TODAY + dt.timedelta(days=5),
    )
    assert "fer-falling-on-therapy" not in ids(report)
    assert any("is after the panel date" in w for w in report.warnings)


def test_panels_without_dates_are_rejected(cli, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("panels:\n  - {b12: 100}\n  - {date: 2026-01-01, b12: 200}\n")
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "panel 1 has no date" in result.stderr


def test_text_report_shows_each_analytes_course_with_therapy_marked(cli):
    result = cli("interpret", SAMPLES / "patient_timeline.yaml", "-f", "text")
    text = result.stdout
    assert "Course over time" in text
    assert "2026-03-13 d11" in text and "2026-05-04 d63" in text
    assert "B12 therapy started 2026-03-02" in text
    course = text[text.index("Course over time") :]
    ferritin_row = next(line for line in course.splitlines() if line.startswith("ferritin "))
    assert "520 H" in ferritin_row and "22 L" in ferritin_row
    markdown = cli("interpret", SAMPLES / "patient_timeline.yaml", "-f", "markdown").stdout
    assert "- ferritin: 2026-02-27: 520 (high), 2026-03-13: 160, 2026-05-04: 22 (low)" in markdown


def test_batch_timeline_groups_rows_by_patient(cli, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "patient,date,b12_therapy_start,test,result,units\n"
        "S1,2026-02-27,2026-03-02,Vitamin B12,88,pg/mL\n"
        "S1,2026-02-27,2026-03-02,Ferritin,520,ng/mL\n"
        "S1,2026-05-04,2026-03-02,Ferritin,22,ng/mL\n"
        "S2,2026-01-10,,Vitamin B12,300,pg/mL\n"
    )
    result = cli("batch", path, "--timeline", "-f", "ndjson")
    assert result.exit_code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["lines"] == [2, 3, 4]
    assert "fer-falling-on-therapy" in [f["id"] for f in first["findings"]]
    assert list(first["history"]["ferritin"][0]) == ["date", "value", "flag", "censored"]
    assert second["patient_id"] == "S2" and "history" not in second
    assert "2 patients;" in result.stderr


def test_timeline_without_a_patient_column_is_refused_naming_the_fix(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "no_patient.csv"
    path.write_text(
        "date,B12 (pmol/L),PLT\n2026-01-01,180,95\n2026-02-01,300,150\n2026-03-01,400,200\n"
    )
    result = cli("batch", path, "--timeline")
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "no column of the export holds the patient" in line
    assert "--map COLUMN=patient_id" in line
    assert result.stdout == ""
    table = pa.table({"date": ["2026-01-01", "2026-02-01"], "B12": ["180 pmol/L", "300 pmol/L"]})
    pq.write_table(table, tmp_path / "no_patient.parquet")
    result = cli("batch", tmp_path / "no_patient.parquet", "--timeline")
    assert result.exit_code == 2
    assert "--map COLUMN=patient_id" in one_clear_line(result)
    plain = cli("batch", path, "--as-of", "2026-11-20")  # one record per panel still works
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 4


def test_timeline_panels_without_a_patient_id_are_never_merged(cli, tmp_path):
    import csv
    import io

    path = tmp_path / "gaps.csv"
    path.write_text(
        "mrn,date,B12 (pmol/L),PLT\nA,2026-01-01,180,95\n,2026-02-01,300,150\n,2026-03-01,400,200\n"
    )
    result = cli("batch", path, "--timeline", "--map", "mrn=patient_id", "--as-of", "2026-11-20")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["line"], r["patient_id"]) for r in rows] == [("2", "A"), ("3", ""), ("4", "")]
    assert all("no patient id" in r["warnings"] for r in rows[1:])
    assert "no patient id in 2 records" in result.stderr
