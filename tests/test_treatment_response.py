"""Whether treatment is working, and what B12 repletion changes: each window's edge
from both sides (recovery windows day 28 and 56, rebound window day 42, persistence
window day 56, response window day 14), with a dated pre-therapy panel."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TODAY, finding_ids, one_clear_line, report_for

from b12lab.api import interpret_record
from b12lab.model import Context
from b12lab.reading.sources.panel_file import PatientRecord, RawPanel

START = dt.date(2026, 3, 2)


def timeline(*panels, sex="female", age=60, **context):
    record = PatientRecord(
        patient_id="R1",
        sex=sex,
        age=age,
        context=Context(b12_therapy_start=START, **context),
        panels=[RawPanel(START + dt.timedelta(days=day), dict(values)) for day, values in panels],
    )
    return interpret_record(record, today=TODAY)


def finding(report, rule_id):
    return next(f for f in report.findings if f.id == rule_id)


PRE_THERAPY = (-3, {"b12": "81", "platelets": "60", "anc": "0.9", "hemoglobin": "85"})


# --- recovery windows: platelets and ANC by day 28, hemoglobin by day 56 -----------------


@pytest.mark.parametrize(("day", "persisting"), [(28, False), (29, True)])
def test_platelets_still_low_past_day_28_persist(day, persisting):
    report = timeline(PRE_THERAPY, (day, {"platelets": "85"}))
    found = finding_ids(report)
    assert ("cytopenia-persisting-on-therapy" in found) is persisting
    # the two never meet: past the window the low count is no longer "consistent with B12"
    assert ("plt-low-consistent-with-b12" in found) is not persisting
    summary = report.implications["platelets"].summary
    assert ("still low" in summary) is persisting


@pytest.mark.parametrize(("day", "persisting"), [(28, False), (29, True)])
def test_anc_still_low_past_day_28_persists(day, persisting):
    report = timeline(PRE_THERAPY, (day, {"anc": "1.1"}))
    found = finding_ids(report)
    assert ("cytopenia-persisting-on-therapy" in found) is persisting
    assert ("neut-low-consistent-with-b12" in found) is not persisting


@pytest.mark.parametrize(("day", "persisting"), [(56, False), (57, True)])
def test_hemoglobin_still_low_past_day_56_persists(day, persisting):
    report = timeline(PRE_THERAPY, (day, {"hemoglobin": "105"}))
    assert ("cytopenia-persisting-on-therapy" in finding_ids(report)) is persisting
    assert "anemia-present" in finding_ids(report)


def test_platelets_85_on_day_60_are_not_consistent_with_b12():
    report = timeline(PRE_THERAPY, (60, {"platelets": "85"}))
    found = finding_ids(report)
    assert "plt-low-consistent-with-b12" not in found
    persisting = finding(report, "cytopenia-persisting-on-therapy")
    assert persisting.severity == "advisory"
    assert persisting.evidence["platelets_recovery_by"] == "day 28"
    assert any("adherence" in s or "doses" in s for s in persisting.next_steps)


@pytest.mark.parametrize(("day", "urgent"), [(28, False), (29, True)])
def test_two_lines_persisting_need_a_marrow_disorder_excluded(day, urgent):
    report = timeline(PRE_THERAPY, (day, {"platelets": "85", "anc": "1.1", "hemoglobin": "90"}))
    found = finding_ids(report)
    assert ("cytopenias-persisting-on-therapy" in found) is urgent
    assert "cytopenia-persisting-on-therapy" not in found
    # the MDS-mimic finding says "replace and reassess": past the windows it is reassessed
    assert ("pancytopenia-b12-mimics-mds" in found) is not urgent
    if urgent:
        marrow = finding(report, "cytopenias-persisting-on-therapy")
        assert marrow.severity == "urgent"
        assert {"platelets", "anc"} <= marrow.evidence.keys()


def test_recovered_counts_do_not_persist():
    report = timeline(PRE_THERAPY, (40, {"platelets": "200", "anc": "2.5"}))
    assert "cytopenia-persisting-on-therapy" not in finding_ids(report)
    assert "plt-recovered-on-therapy" in finding_ids(report)


def test_no_persisting_finding_without_a_low_b12():
    report = timeline((-3, {"b12": "400"}), (60, {"platelets": "85"}))
    assert "cytopenia-persisting-on-therapy" not in finding_ids(report)
    assert "plt-low-not-explained-by-b12" in finding_ids(report)


# --- b12-not-responding: with and without an earlier value --------------------------------


@pytest.mark.parametrize(("day", "fires"), [(13, False), (14, True)])
def test_b12_still_deficient_on_therapy_without_an_earlier_value(day, fires):
    report = timeline((day, {"b12": "100"}))
    found = finding_ids(report)
    assert ("b12-not-responding" in found) is fires
    assert "b12-on-therapy" not in found
    if fires:
        assert finding(report, "b12-not-responding").evidence["response_window"] == "day 14 on"


def test_b12_still_deficient_on_day_31_is_flagged_and_not_told_to_replace():
    report = timeline((31, {"b12": "90"}))
    assert "b12-not-responding" in finding_ids(report)
    steps = " ".join(finding(report, "b12-deficient").next_steps)
    assert "Replace B12:" not in steps
    assert "still deficient on therapy" in steps


def test_b12_on_therapy_still_reports_the_phase_when_b12_is_not_deficient():
    report = timeline((20, {"b12": "200 pmol/L", "platelets": "95"}))
    assert "b12-on-therapy" in finding_ids(report)
    assert "b12-not-responding" not in finding_ids(report)


# --- B12 repleted --------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "et"), [(42, False), (43, True)])
def test_thrombocytosis_with_b12_repleted_considers_et_from_day_43(day, et):
    report = timeline((-3, {"b12": "81"}), (day, {"b12": "517", "platelets": "600"}))
    found = finding_ids(report)
    assert ("plt-high-persistent-consider-et" in found) is et
    assert ("plt-high-rebound-on-therapy" in found) is not et
    if et:
        assert "repleted" in finding(report, "plt-high-persistent-consider-et").detail


@pytest.mark.parametrize(("day", "overload"), [(42, False), (43, True)])
def test_iron_overload_pattern_after_repletion(day, overload):
    report = timeline(
        (-3, {"b12": "81", "ferritin": "700", "tsat": "60"}),
        (day, {"b12": "517", "ferritin": "900", "tsat": "60"}),
        sex="male",
    )
    found = finding_ids(report)
    assert ("fer-high-iron-overload-pattern" in found) is overload
    assert ("fer-may-mask-iron-deficiency" in found) is not overload


def test_four_months_after_repletion_the_overload_pattern_is_named():
    report = timeline(
        (-3, {"b12": "81", "ferritin": "700", "tsat": "60"}),
        (120, {"b12": "517", "ferritin": "900", "tsat": "60"}),
        sex="male",
    )
    found = finding_ids(report)
    assert "fer-high-iron-overload-pattern" in found
    assert "fer-may-mask-iron-deficiency" not in found
    assert "overload" in report.implications["ferritin"].summary
    assert "repleted" in report.b12_detail


@pytest.mark.parametrize(("day", "overload"), [(56, False), (57, True)])
def test_past_the_persistence_window_the_pre_therapy_b12_stops_governing(day, overload):
    """No B12 measured on therapy: from day 57 the overload pattern may fire anyway."""
    report = timeline((-3, {"b12": "81"}), (day, {"ferritin": "900", "tsat": "60"}), sex="male")
    found = finding_ids(report)
    assert ("fer-high-iron-overload-pattern" in found) is overload
    assert ("fer-may-mask-iron-deficiency" in found) is not overload


def test_a_borderline_on_therapy_b12_is_not_repleted():
    report = timeline(
        (-3, {"b12": "81"}), (60, {"b12": "180 pmol/L", "ferritin": "900", "tsat": "60"})
    )
    assert "repleted" not in report.b12_detail


# --- single panels: folate, pregnancy, censoring, CTCAE words, NICE scope, alcohol --------


def test_folate_deficiency_with_normal_b12_is_named():
    report = report_for(
        {"folate": "2 ng/mL", "b12": "400", "mcv": "115"}, hypersegmented_neutrophils=True
    )
    found = finding_ids(report)
    assert "folate-deficiency" in found
    assert "macrocytosis-supports-megaloblastic" in found
    assert "macrocytosis-not-b12-or-folate" not in found
    assert "folate-low-treat-b12-first" not in found


def test_folate_deficient_pancytopenia_names_folate_first():
    values = {
        "folate": "2 ng/mL",
        "b12": "400",
        "hemoglobin": "90",
        "anc": "1.0",
        "platelets": "90",
    }
    report = report_for(values, sex="female")
    pancytopenia = finding(report, "pancytopenia-unexplained")
    assert "folate deficiency is the first treatable cause" in pancytopenia.detail
    assert pancytopenia.evidence["folate"].startswith("4.5")
    assert not any("Measure folate" in s for s in pancytopenia.next_steps)
    assert any("Treat the folate deficiency" in s for s in pancytopenia.next_steps)
    anemia = finding(report, "anemia-present")
    assert "folate deficiency" in anemia.detail
    assert "undetermined" not in anemia.detail
    near_miss = report_for({**values, "folate": "10"}, sex="female")
    assert "folate deficiency" not in finding(near_miss, "pancytopenia-unexplained").detail


def test_macrocytosis_without_folate_measured_asks_for_folate():
    report = report_for({"mcv": "115", "b12": "400"})
    assert "macrocytosis-not-b12-or-folate" not in finding_ids(report)
    assert "folate" in report.missing


@pytest.mark.parametrize(("trimester", "fires"), [(3, True), (None, False)])
def test_b12_low_in_pregnancy(trimester, fires):
    report = report_for({"b12": "130"}, sex="female", pregnancy_trimester=trimester)
    assert ("b12-low-in-pregnancy" in finding_ids(report)) is fires
    normal = report_for({"b12": "300"}, sex="female", pregnancy_trimester=3)
    assert "b12-low-in-pregnancy" not in finding_ids(normal)


@pytest.mark.parametrize("given", ["<=20", "<25", "<=0.5"])
def test_censored_values_at_critical_limits_fire_the_urgent_finding(given):
    analyte, rule_id = (
        ("anc", "neut-severe") if "0.5" in given else ("platelets", "plt-critical-low")
    )
    report = report_for({analyte: given})
    urgent = finding(report, rule_id)
    assert urgent.severity == "urgent"
    assert "censored" in urgent.evidence["censored"]


@pytest.mark.parametrize("given", ["<30", "<=26", "<0.8"])
def test_censored_values_clear_of_the_limits_do_not(given):
    analyte, rule_id = (
        ("anc", "neut-severe") if "0.8" in given else ("platelets", "plt-critical-low")
    )
    assert rule_id not in finding_ids(report_for({analyte: given}))


@pytest.mark.parametrize(
    ("anc", "words"),
    [
        ("1.4", "Moderate neutropenia (CTCAE grade 2)"),
        ("1.1", "Moderate neutropenia (CTCAE grade 2)"),
        ("0.8", "Severe neutropenia (CTCAE grade 3)"),
        ("0.3", "Life-threatening neutropenia (CTCAE grade 4)"),
    ],
)
def test_ctcae_words_match_the_grade(anc, words):
    with_b12_low = report_for({"anc": anc, "b12": "100"})
    with_b12_normal = report_for({"anc": anc, "b12": "400"})
    assert finding(with_b12_low, "neut-low-consistent-with-b12").detail.startswith(words)
    assert finding(with_b12_normal, "neut-low-not-explained-by-b12").detail.startswith(words)
    grade = words.split("grade ")[1][0]
    assert (
        finding(with_b12_normal, "neut-low-not-explained-by-b12").evidence["ctcae_grade"] == grade
    )


@pytest.mark.parametrize(("age", "warned"), [(12, True), (15.9, True), (16, False)])
def test_nice_profile_warns_below_its_age_scope(age, warned):
    report = report_for({"b12": "150 pmol/L"}, age=age, guideline="nice")
    assert any("age under 16" in w for w in report.warnings) is warned
    who = report_for({"b12": "150 pmol/L"}, age=age, guideline="who")
    assert not any("age under 16" in w for w in who.warnings)


@pytest.mark.parametrize(
    ("alcohol", "high_fires", "low_fires"),
    [
        ("stopped", True, False),
        ("current", False, True),
        (True, False, True),
        (False, False, False),
    ],
)
def test_alcohol_current_suppresses_and_stopping_rebounds(alcohol, high_fires, low_fires):
    high = report_for({"platelets": "600"}, alcohol_use=alcohol)
    low = report_for({"platelets": "120"}, alcohol_use=alcohol)
    assert ("plt-high-alcohol-recovery" in finding_ids(high)) is high_fires
    assert ("plt-low-alcohol" in finding_ids(low)) is low_fires


def test_combined_deficiency_does_not_delay_iron_when_it_is_clear():
    clear = report_for({"ferritin": "10", "tsat": "8", "b12": "100"})
    combined = finding(clear, "fer-low-combined-deficiency")
    steps = " ".join(combined.next_steps)
    assert "do not delay iron" in steps
    assert "Start iron now" in steps
    assert "usually B12 first, then iron" not in steps
    unclear = report_for({"ferritin": "10", "b12": "100"})
    assert "Start iron now" not in " ".join(
        finding(unclear, "fer-low-combined-deficiency").next_steps
    )
    assert "tsat" in unclear.missing


# --- next steps never ask for a test the panel or its history has -------------------------


def test_next_steps_do_not_ask_for_given_tests():
    report = report_for(
        {"b12": "100", "platelets": "600", "ferritin": "40", "crp": "2 mg/L", "tsat": "30"}
    )
    steps = " ".join(finding(report, "plt-high-not-caused-by-b12-deficiency").next_steps)
    assert "ferritin" not in steps.split("Check")[1].split(".")[0]
    assert "ask about alcohol" in steps
    partial = report_for({"b12": "100", "platelets": "600", "ferritin": "40"})
    steps = finding(partial, "plt-high-not-caused-by-b12-deficiency").next_steps[0]
    assert steps == "Check transferrin saturation, CRP and ask about alcohol."


def test_a_borderline_b12_with_mma_measured_and_low_egfr_asks_for_holotc_not_mma():
    report = report_for({"b12": "180 pmol/L", "mma": "0.6", "egfr": "45"}, neuro_symptoms=True)
    urgent = finding(report, "neuro-symptoms-b12-not-excluded")
    steps = " ".join(urgent.next_steps)
    assert "holotranscobalamin" in steps
    assert "Send MMA" not in steps and "methylmalonic" not in steps


def test_a_test_from_the_history_is_not_asked_for_again():
    report = timeline(
        (-3, {"b12": "81", "crp": "2 mg/L", "tsat": "30"}), (10, {"ferritin": "900"}), sex="male"
    )
    for f in report.findings:
        for step in f.next_steps:
            assert "Check CRP" not in step


# --- alcohol use from the command line and the panel file ---------------------------------


def _ids(document):
    return [f["id"] for f in document["findings"]]


def test_alcohol_stopped_flag_and_panel_file(cli, tmp_path):
    stopped = cli.json("interpret", "--platelets", "600", "--alcohol-stopped", "-f", "json")
    assert "plt-high-alcohol-recovery" in _ids(stopped)
    current = cli.json("interpret", "--platelets", "600", "--alcohol-use", "-f", "json")
    assert "plt-high-alcohol-recovery" not in _ids(current)
    path = tmp_path / "p.yaml"
    path.write_text("context:\n  alcohol_use: stopped\nplatelets: 600\n")
    assert "plt-high-alcohol-recovery" in _ids(cli.json("interpret", path, "-f", "json"))
    path.write_text("context:\n  alcohol_use: current\nplatelets: 120\n")
    assert "plt-low-alcohol" in _ids(cli.json("interpret", path, "-f", "json"))


def test_alcohol_use_refused_with_the_fix(cli, tmp_path):
    both = cli("interpret", "--platelets", "600", "--alcohol-use", "--alcohol-stopped")
    assert both.exit_code == 2
    assert "--alcohol-stopped" in one_clear_line(both)
    path = tmp_path / "p.yaml"
    path.write_text("context:\n  alcohol_use: sometimes\nplatelets: 600\n")
    bad = cli("interpret", path)
    assert bad.exit_code == 2
    line = one_clear_line(bad)
    assert "sometimes" in line and "stopped" in line


def test_a_pre_therapy_b12_is_not_called_still_deficient_on_therapy():
    report = timeline((-3, {"b12": "81"}), (10, {"platelets": "95"}))
    steps = " ".join(finding(report, "b12-deficient").next_steps)
    assert "still deficient on therapy" not in steps
