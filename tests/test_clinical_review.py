"""Clinical review: therapy phase, contradictions, the gaps the sources name, grading,
next steps aware of the panel, pregnancy and infants, renal function, sources."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import TODAY, finding_ids, one_clear_line, report_for

from b12lab.api import interpret_record
from b12lab.model import Context
from b12lab.ranges import load_ranges
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel

DAYS_AGO = lambda n: TODAY - dt.timedelta(days=n)  # noqa: E731
NOT_EXPLAINED = {
    "pancytopenia-unexplained",
    "plt-low-not-explained-by-b12",
    "neut-low-not-explained-by-b12",
}


def timeline(*panels, start, sex="male", age=60):
    record = PatientRecord(
        patient_id="R1",
        sex=sex,
        age=age,
        context=Context(b12_therapy_start=start),
        panels=[RawPanel(date, dict(values)) for date, values in panels],
    )
    return interpret_record(record, today=TODAY)


def finding(report, rule_id):
    return next(f for f in report.findings if f.id == rule_id)


# --- therapy phase --------------------------------------------------------------

ON_THERAPY_PANEL = {"b12": "1200 pg/mL", "platelets": "60", "anc": "0.8", "hemoglobin": "8.5 g/dL"}


def test_day_7_of_therapy_is_not_called_unexplained_pancytopenia():
    report = report_for(ON_THERAPY_PANEL, sex="female", b12_therapy_start=DAYS_AGO(7))
    ids = set(finding_ids(report))
    assert not ids & NOT_EXPLAINED
    assert "b12-on-therapy" in ids
    assert report.therapy_day == 7
    assert report.to_dict()["therapy_day"] == 7
    assert report.b12_status == "high"
    assert "mma" not in report.missing  # no test decides B12 during replacement


def test_the_same_panel_without_therapy_is_still_unexplained():
    ids = set(finding_ids(report_for(ON_THERAPY_PANEL, sex="female")))
    assert ids >= NOT_EXPLAINED
    assert "b12-on-therapy" not in ids


def test_therapy_day_is_absent_from_json_off_therapy():
    assert "therapy_day" not in report_for({"b12": "300"}).to_dict()


def test_pre_therapy_b12_in_the_history_decides_the_blood_count_rules():
    start = DAYS_AGO(7)
    report = timeline(
        (DAYS_AGO(10), {"b12": "110 pg/mL"}),
        (TODAY, {"b12": "1200 pg/mL", "platelets": "60", "anc": "0.8", "hemoglobin": "8.5 g/dL"}),
        start=start,
    )
    ids = set(finding_ids(report))
    assert {"plt-low-consistent-with-b12", "pancytopenia-b12-mimics-mds"} <= ids
    assert not ids & NOT_EXPLAINED
    assert "b12-on-therapy" not in ids
    evidence = finding(report, "plt-low-consistent-with-b12").evidence["b12"]
    assert "before therapy" in evidence and DAYS_AGO(10).isoformat() in evidence
    assert report.b12_status == "high"  # the reported status is still the serum result


def test_a_b12_measured_before_the_start_counts_as_usual():
    # Therapy starts tomorrow: today's B12 speaks for the marrow.
    report = report_for(ON_THERAPY_PANEL, sex="female", b12_therapy_start=DAYS_AGO(-1))
    assert "pancytopenia-unexplained" in finding_ids(report)
    assert report.therapy_day is None


def test_a_b12_still_low_on_therapy_counts_as_low():
    report = report_for({"b12": "100", "platelets": "95"}, b12_therapy_start=DAYS_AGO(5))
    ids = finding_ids(report)
    assert "plt-low-consistent-with-b12" in ids
    assert "b12-on-therapy" not in ids


@pytest.mark.parametrize("output", ["text", "markdown"])
def test_text_and_markdown_show_the_therapy_day(cli, output):
    result = cli(
        "interpret",
        "--b12",
        "600 pg/mL",
        "--b12-therapy-start",
        "2026-11-01",
        "--date",
        "2026-11-14",
        "-f",
        output,
    )
    assert result.exit_code == 0, result.stderr
    assert "day 13 of B12 therapy" in " ".join(result.stdout.split())


# --- contradictions ---------------------------------------------------------------


def test_untreated_deficiency_is_not_called_iron_overload():
    report = report_for({"b12": "120 pg/mL", "ferritin": "900", "tsat": "60", "crp": "2 mg/L"})
    ids = finding_ids(report)
    assert "fer-may-mask-iron-deficiency" in ids
    assert "fer-high-iron-overload-pattern" not in ids
    steps = " ".join(finding(report, "fer-may-mask-iron-deficiency").next_steps)
    assert "transferrin saturation after B12 repletion" in steps


@pytest.mark.parametrize(
    ("b12", "context"),
    [("400 pg/mL", {}), ("1200 pg/mL", {"b12_therapy_start": DAYS_AGO(30)})],
    ids=["b12-normal", "on-therapy"],
)
def test_iron_overload_pattern_still_fires_when_b12_is_not_low_or_treated(b12, context):
    report = report_for({"b12": b12, "ferritin": "900", "tsat": "60", "crp": "2 mg/L"}, **context)
    assert "fer-high-iron-overload-pattern" in finding_ids(report)


def test_after_repletion_low_ferritin_is_the_falling_finding_not_plain_iron_deficiency():
    report = timeline(
        (DAYS_AGO(60), {"b12": "110 pg/mL", "ferritin": "300"}),
        (TODAY, {"b12": "600 pg/mL", "ferritin": "20"}),
        start=DAYS_AGO(55),
    )
    ids = finding_ids(report)
    assert "fer-falling-on-therapy" in ids
    assert "fer-low-iron-deficiency" not in ids


# --- new rules from the sources -------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fires"),
    [
        ({}, True),
        ({"b12": "180 pmol/L"}, True),
        ({"b12": "180 pmol/L", "mma": "0.6"}, False),
        ({"b12": "100"}, False),
        ({"b12": "180 pmol/L", "holotc": "80"}, True),  # a normal holoTC does not exclude
        ({"b12": "180 pmol/L", "mma": "0.2"}, False),  # MMA not raised: B12 not low
    ],
    ids=["not-measured", "borderline", "confirmed", "deficient", "holotc-normal", "mma-normal"],
)
def test_neuro_symptoms_with_b12_not_excluded_is_urgent(values, fires):
    report = report_for({"platelets": "200", **values}, neuro_symptoms=True)
    assert ("neuro-symptoms-b12-not-excluded" in finding_ids(report)) is fires
    if fires:
        assert finding(report, "neuro-symptoms-b12-not-excluded").severity == "urgent"


def test_folate_low_without_b12_is_urgent_and_asks_for_b12():
    report = report_for({"folate": "2 ng/mL"})
    assert finding(report, "folate-low-b12-unmeasured").severity == "urgent"
    assert "b12" in report.missing


def test_wbc_low_not_explained_waits_for_a_neutrophil_count():
    with_anc = report_for({"b12": "400", "wbc": "3.0", "anc": "2.0"})
    assert "wbc-low-not-explained-by-b12" not in finding_ids(with_anc)
    derived = report_for({"b12": "400", "wbc": "3.0", "neutrophil_pct": "60"})
    assert "wbc-low-not-explained-by-b12" not in finding_ids(derived)


def test_neutrophils_and_hemoglobin_recovering_on_therapy():
    report = timeline(
        (DAYS_AGO(40), {"b12": "100", "anc": "0.9", "hemoglobin": "85"}),
        (TODAY, {"anc": "2.5", "hemoglobin": "110"}),
        start=DAYS_AGO(35),
    )
    ids = finding_ids(report)
    assert {"neut-recovered-on-therapy", "hb-recovering-on-therapy"} <= set(ids)
    assert "recovered" in report.implications["neutrophils"].summary


@pytest.mark.parametrize(
    ("later", "neut", "hb"),
    [
        ({"anc": "1.2", "hemoglobin": "94"}, False, False),  # still low; rise of 9 g/L is noise
        ({"anc": "1.5", "hemoglobin": "95"}, True, True),  # at the limit; rise of exactly 10
    ],
)
def test_recovery_edges(later, neut, hb):
    report = timeline(
        (DAYS_AGO(40), {"b12": "100", "anc": "0.9", "hemoglobin": "85"}),
        (TODAY, later),
        start=DAYS_AGO(35),
    )
    ids = finding_ids(report)
    assert ("neut-recovered-on-therapy" in ids) is neut
    assert ("hb-recovering-on-therapy" in ids) is hb


def test_recovery_needs_therapy():
    report = timeline(
        (DAYS_AGO(40), {"b12": "100", "anc": "0.9", "hemoglobin": "85"}),
        (TODAY, {"anc": "2.5", "hemoglobin": "110"}),
        start=DAYS_AGO(-5),
    )
    assert not {"neut-recovered-on-therapy", "hb-recovering-on-therapy"} & set(finding_ids(report))


# --- renal function --------------------------------------------------------------------


def test_raised_mma_with_low_egfr_does_not_confirm_a_functional_deficiency():
    report = report_for({"b12": "180 pmol/L", "mma": "0.6", "egfr": "45"})
    ids = finding_ids(report)
    assert "mma-renal-caveat" in ids
    assert "b12-functional-deficiency-confirmed" not in ids


def test_homocysteine_does_not_confirm_with_low_egfr_but_holotc_does():
    """Homocysteine rises as kidney function falls too: with eGFR 45 it confirms nothing,
    and the caveat names holoTC, not homocysteine, as the marker to send."""
    values = {"b12": "180 pmol/L", "mma": "0.6", "egfr": "45", "homocysteine": "25", "folate": "10"}
    report = report_for(values)
    ids = finding_ids(report)
    assert "mma-renal-caveat" in ids
    assert "b12-functional-deficiency-confirmed" not in ids
    caveat = finding(report, "mma-renal-caveat")
    assert "homocysteine" in caveat.evidence and "holotranscobalamin" in caveat.next_steps[0]
    assert caveat.next_steps[0].startswith("Measure holotranscobalamin")
    assert "holotc" in report.missing
    near_miss = report_for({**values, "egfr": "60"})
    assert "b12-functional-deficiency-confirmed" in finding_ids(near_miss)
    assert "mma-renal-caveat" not in finding_ids(near_miss)
    confirmed = report_for({**values, "holotc": "20"})
    assert "b12-functional-deficiency-confirmed" in finding_ids(confirmed)
    assert finding(confirmed, "b12-functional-deficiency-confirmed").evidence.get("holotc")
    given = finding(confirmed, "mma-renal-caveat").next_steps
    assert given and "given here" in given[0]  # never asks again for the holoTC it has


def test_homocysteine_alone_with_low_egfr_gets_the_caveat():
    report = report_for({"b12": "180 pmol/L", "homocysteine": "25", "folate": "10", "egfr": "45"})
    assert "mma-renal-caveat" in finding_ids(report)
    assert "b12-functional-deficiency-confirmed" not in finding_ids(report)
    near_miss = report_for(
        {"b12": "180 pmol/L", "homocysteine": "15", "folate": "10", "egfr": "45"}
    )
    assert "mma-renal-caveat" not in finding_ids(near_miss)


def test_egfr_flag_with_its_unit(cli):
    document = cli.json(
        "interpret",
        "--b12",
        "180 pmol/L",
        "--mma",
        "600 nmol/L",
        "--egfr",
        "45 mL/min/1.73m2",
        "-f",
        "json",
    )
    egfr = next(m for m in document["measurements"] if m["analyte"] == "egfr")
    assert egfr["value"] == 45 and egfr["flag"] == "low"
    assert "mma-renal-caveat" in [f["id"] for f in document["findings"]]


# --- pregnancy, children and infants -----------------------------------------------------------


@pytest.mark.parametrize(("trimester", "anemia"), [(None, True), (1, True), (2, False), (3, True)])
def test_pregnancy_hemoglobin_limits_by_trimester(trimester, anemia):
    report = report_for({"hemoglobin": "107"}, sex="female", age=30, pregnancy_trimester=trimester)
    assert ("anemia-present" in finding_ids(report)) is anemia


def test_pregnancy_trimester_flag_and_panel_file(cli, tmp_path):
    result = cli.json(
        "interpret", "--hemoglobin", "107", "--sex", "f", "--pregnancy-trimester", "2"
    )
    assert "anemia-present" not in [f["id"] for f in result["findings"]]
    panel = tmp_path / "p.yaml"
    panel.write_text("sex: female\ncontext: {pregnancy_trimester: 2}\nhemoglobin: 107 g/L\n")
    document = cli.json("interpret", panel, "-f", "json")
    hb = document["measurements"][0]
    assert hb["reference"]["low"] == 105 and hb["flag"] == "normal"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--pregnancy-trimester", "4"], "trimester"),
        (["--pregnancy-trimester", "2", "--sex", "male"], "male"),
    ],
)
def test_bad_pregnancy_input_is_one_clear_line(cli, args, words):
    result = cli("interpret", "--hemoglobin", "107", *args)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


@pytest.mark.parametrize(("age", "anemia"), [(0.25, False), (0.7, True), (30, True)])
def test_infants_never_get_adult_hemoglobin_limits(age, anemia):
    report = report_for({"hemoglobin": "100"}, sex="female", age=age)
    assert ("anemia-present" in finding_ids(report)) is anemia
    if age < 0.5:
        assert any("no reference interval for age" in w for w in report.warnings)
        hb = report.measurements[0]
        assert hb.reference_low is None


def test_a_three_month_old_is_not_called_anemic_at_105():
    assert "anemia-present" not in finding_ids(report_for({"hemoglobin": "105"}, age=0.25))


# --- CTCAE grade --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "value", "grade"),
    [
        ("anc", "1.4", "2"),
        ("anc", "0.9", "3"),
        ("anc", "0.4", "4"),
        ("platelets", "140", "1"),
        ("platelets", "70", "2"),
        ("platelets", "40", "3"),
        ("platelets", "20", "4"),
    ],
)
def test_cytopenia_findings_carry_the_ctcae_grade(analyte, value, grade):
    report = report_for({"b12": "400", analyte: value})
    graded = [f for f in report.findings if "ctcae_grade" in f.evidence]
    assert graded
    assert {f.evidence["ctcae_grade"] for f in graded} == {grade}


def test_grade_counts_from_the_lower_limit_in_force(tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("analytes:\n  anc:\n    reference:\n      - {low: 1.2, high: 7.5}\n")
    ranges = load_ranges(overlay)
    assert "ctcae_grade" not in str(
        report_for({"b12": "400", "anc": "1.3"}, ranges=ranges).to_dict()
    )
    report = report_for({"b12": "400", "anc": "1.1"}, ranges=ranges)
    assert finding(report, "neut-low-not-explained-by-b12").evidence["ctcae_grade"] == "2"


# --- next steps aware of the panel ----------------------------------------------------------


def test_homocysteine_finding_does_not_ask_for_an_mma_already_given():
    report = report_for({"homocysteine": "20", "folate": "5 nmol/L", "mma": "0.6"})
    steps = finding(report, "homocysteine-nonspecific").next_steps
    assert not any(step.startswith("Measure MMA") for step in steps)
    assert any("MMA given" in step for step in steps)


def test_hypersegmentation_does_not_ask_for_b12_and_folate_when_given():
    report = report_for({"b12": "130", "folate": "10"}, hypersegmented_neutrophils=True)
    steps = " ".join(finding(report, "neut-hypersegmented-supports-b12").next_steps)
    assert "Measure" not in steps
    unknown = report_for({}, hypersegmented_neutrophils=True)
    steps = " ".join(finding(unknown, "neut-hypersegmented-supports-b12").next_steps)
    assert "Measure B12 and folate" in steps


def test_borderline_finding_asks_for_folate_only_when_missing():
    without = finding(report_for({"b12": "180 pmol/L"}), "b12-borderline").next_steps
    with_folate = finding(
        report_for({"b12": "180 pmol/L", "folate": "10"}), "b12-borderline"
    ).next_steps
    assert any("folate" in s for s in without)
    assert not any("folate" in s for s in with_folate)


# --- catalogue ------------------------------------------------------------------------------

NEW_IDS = [
    "b12-on-therapy",
    "neuro-symptoms-b12-not-excluded",
    "folate-low-b12-unmeasured",
    "wbc-low-not-explained-by-b12",
    "neut-recovered-on-therapy",
    "hb-recovering-on-therapy",
    "plt-low-alcohol",
    "mma-renal-caveat",
    "folate-deficiency",
    "macrocytosis-not-b12-or-folate",
    "b12-low-in-pregnancy",
    "cytopenia-persisting-on-therapy",
    "cytopenias-persisting-on-therapy",
]


def test_rules_command_lists_the_new_rules_with_sources(cli):
    result = cli("rules", "--format", "json")
    assert result.exit_code == 0
    rules = {r["id"]: r for r in json.loads(result.stdout)}
    for rule_id in NEW_IDS:
        assert rules[rule_id]["sources"], rule_id
        assert all(rules[rule_id]["sources"].values()), rule_id


def test_an_infant_value_without_an_interval_is_not_judged_by_adult_critical_limits():
    infant = report_for({"b12": "400", "hemoglobin": "65 g/L"}, sex="female", age=0.3)
    (hemoglobin,) = [m for m in infant.measurements if m.analyte == "hemoglobin"]
    assert hemoglobin.flag == "normal"  # not flagged: no interval at this age
    assert "anemia-present" not in finding_ids(infant)
    assert any("no reference interval for age" in w for w in infant.warnings)
    adult = report_for({"b12": "400", "hemoglobin": "65 g/L"}, sex="female", age=40)
    (hemoglobin,) = [m for m in adult.measurements if m.analyte == "hemoglobin"]
    assert hemoglobin.flag == "critical_low"
