"""Every rule of the catalogue: one panel that fires it, one near miss that must not."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import TODAY, finding_ids, report_for

from b12lab.api import interpret
from b12lab.rules import RULES

DAYS_AGO = lambda n: TODAY - dt.timedelta(days=n)  # noqa: E731

# (rule id, panel that fires it, near miss that must not), each a (values, context) pair.
CASES = [
    ("b12-deficient", ({"b12": "130"}, {}), ({"b12": "148 pmol/L"}, {})),
    ("b12-borderline", ({"b12": "180 pmol/L"}, {}), ({"b12": "180 pmol/L", "mma": "0.2"}, {})),
    (
        "b12-functional-deficiency-confirmed",
        ({"b12": "180 pmol/L", "mma": "0.55"}, {}),
        ({"b12": "180 pmol/L", "mma": "0.40"}, {}),
    ),
    ("b12-high", ({"b12": "700 pmol/L"}, {}), ({"b12": "664 pmol/L"}, {})),
    (
        "b12-neuro-parenteral",
        ({"b12": "100"}, {"neuro_symptoms": True}),
        ({"b12": "250 pmol/L"}, {"neuro_symptoms": True}),
    ),
    (
        "plt-low-consistent-with-b12",
        ({"b12": "100", "platelets": "95"}, {}),
        ({"b12": "100", "platelets": "150"}, {}),
    ),
    (
        "plt-low-not-explained-by-b12",
        ({"b12": "400", "platelets": "95"}, {}),
        ({"b12": "100", "platelets": "95"}, {}),
    ),
    ("plt-critical-low", ({"platelets": "19"}, {}), ({"platelets": "20"}, {})),
    (
        "plt-high-not-caused-by-b12-deficiency",
        ({"b12": "100", "platelets": "600"}, {}),
        ({"b12": "100", "platelets": "600"}, {"b12_therapy_start": DAYS_AGO(10)}),
    ),
    (
        "plt-high-rebound-on-therapy",
        ({"platelets": "600"}, {"b12_therapy_start": DAYS_AGO(14)}),
        ({"platelets": "600"}, {"b12_therapy_start": DAYS_AGO(43)}),
    ),
    (
        "plt-high-persistent-consider-et",
        ({"b12": "100", "platelets": "600"}, {"b12_therapy_start": DAYS_AGO(57)}),
        ({"b12": "100", "platelets": "600"}, {"b12_therapy_start": DAYS_AGO(56)}),
    ),
    (
        "plt-high-iron-deficiency",
        ({"platelets": "600", "ferritin": "20"}, {}),
        ({"platelets": "600", "ferritin": "30"}, {}),
    ),
    (
        "plt-high-alcohol-recovery",
        ({"platelets": "600"}, {"alcohol_use": "stopped"}),
        ({"platelets": "600"}, {"alcohol_use": True}),  # current use: suppression, not rebound
    ),
    ("plt-extreme-high", ({"platelets": "1000 10^9/L"}, {}), ({"platelets": "999"}, {})),
    (
        "neut-low-consistent-with-b12",
        ({"b12": "100", "anc": "1.0"}, {}),
        ({"b12": "100", "anc": "1.5"}, {}),
    ),
    (
        "neut-low-not-explained-by-b12",
        ({"b12": "700 pmol/L", "anc": "1.0"}, {}),
        ({"b12": "100", "anc": "1.0"}, {}),
    ),
    ("neut-severe", ({"anc": "0.4"}, {}), ({"anc": "0.5"}, {})),
    (
        "neut-hypersegmented-supports-b12",
        ({"b12": "180 pmol/L"}, {"hypersegmented_neutrophils": True}),
        ({"b12": "400"}, {"hypersegmented_neutrophils": True}),
    ),
    (
        "pancytopenia-b12-mimics-mds",
        ({"b12": "100", "hemoglobin": "90", "anc": "1.0", "platelets": "95"}, {"sex": "female"}),
        ({"b12": "100", "hemoglobin": "125", "anc": "1.0", "platelets": "95"}, {"sex": "female"}),
    ),
    (
        "pancytopenia-unexplained",
        ({"b12": "400", "hemoglobin": "90", "anc": "1.0", "platelets": "95"}, {"sex": "female"}),
        ({"b12": "100", "hemoglobin": "90", "anc": "1.0", "platelets": "95"}, {"sex": "female"}),
    ),
    (
        "fer-low-combined-deficiency",
        ({"b12": "100", "ferritin": "20"}, {}),
        ({"b12": "400", "ferritin": "20"}, {}),
    ),
    (
        "fer-may-mask-iron-deficiency",
        ({"b12": "100", "ferritin": "150", "crp": "2 mg/L"}, {}),
        ({"b12": "100", "ferritin": "150", "crp": "12"}, {}),
    ),
    (
        "fer-falling-on-therapy",
        ({"ferritin": "20"}, {"b12_therapy_start": DAYS_AGO(10)}),
        ({"ferritin": "20"}, {}),
    ),
    (
        "fer-high-inflammation",
        ({"ferritin": "500", "crp": "12"}, {}),
        ({"ferritin": "500", "crp": "5 mg/L"}, {}),
    ),
    (
        "fer-low-in-inflammation",
        ({"ferritin": "50", "crp": "12"}, {}),
        ({"ferritin": "70", "crp": "12"}, {}),
    ),
    (
        "fer-low-iron-deficiency",
        ({"b12": "400", "ferritin": "20"}, {}),
        ({"b12": "400", "ferritin": "30"}, {}),
    ),
    (
        "fer-high-not-b12-related",
        ({"b12": "400", "ferritin": "350"}, {"sex": "male"}),
        ({"b12": "400", "ferritin": "300"}, {"sex": "male"}),
    ),
    (
        "fer-high-iron-overload-pattern",
        ({"ferritin": "500", "tsat": "60"}, {}),
        ({"ferritin": "500", "tsat": "45"}, {}),
    ),
    (
        "macrocytosis-supports-megaloblastic",
        ({"b12": "180 pmol/L", "mcv": "110"}, {}),
        ({"b12": "400", "mcv": "110"}, {}),
    ),
    (
        "anemia-present",
        ({"hemoglobin": "125"}, {"sex": "male"}),
        ({"hemoglobin": "125"}, {"sex": "female"}),
    ),
    (
        "folate-low-treat-b12-first",
        ({"b12": "100", "folate": "5 nmol/L"}, {}),
        ({"b12": "100", "folate": "6.8 nmol/L"}, {}),
    ),
    (
        "homocysteine-nonspecific",
        ({"homocysteine": "20", "folate": "5 nmol/L"}, {}),
        ({"homocysteine": "20", "folate": "10"}, {}),
    ),
    (
        "neuro-symptoms-b12-not-excluded",
        ({"b12": "180 pmol/L"}, {"neuro_symptoms": True}),
        ({"b12": "180 pmol/L", "mma": "0.2"}, {"neuro_symptoms": True}),
    ),
    (
        "folate-low-b12-unmeasured",
        ({"folate": "5 nmol/L"}, {}),
        ({"folate": "5 nmol/L", "b12": "400"}, {}),
    ),
    (
        "wbc-low-not-explained-by-b12",
        ({"b12": "400", "wbc": "3.5"}, {}),
        ({"b12": "400", "wbc": "4.0"}, {}),
    ),
    (
        "plt-low-alcohol",
        ({"platelets": "120"}, {"alcohol_use": "current"}),
        ({"platelets": "120"}, {"alcohol_use": "stopped"}),
    ),
    (
        "mma-renal-caveat",
        ({"b12": "180 pmol/L", "mma": "0.6", "egfr": "45"}, {}),
        ({"b12": "180 pmol/L", "mma": "0.6", "egfr": "60"}, {}),
    ),
    (
        "folate-deficiency",
        ({"folate": "5 nmol/L", "b12": "400"}, {}),
        ({"folate": "6.8", "b12": "400"}, {}),
    ),
    (
        "macrocytosis-not-b12-or-folate",
        ({"mcv": "115", "b12": "400", "folate": "10"}, {}),
        ({"mcv": "115", "b12": "400", "folate": "5 nmol/L"}, {}),
    ),
    (
        "b12-low-in-pregnancy",
        ({"b12": "130"}, {"pregnancy_trimester": 3, "sex": "female"}),
        ({"b12": "130"}, {"sex": "female"}),
    ),
    (
        "cytopenia-persisting-on-therapy",
        ({"b12": "100", "platelets": "85"}, {"b12_therapy_start": DAYS_AGO(29)}),
        ({"b12": "100", "platelets": "85"}, {"b12_therapy_start": DAYS_AGO(28)}),
    ),
    (
        "cytopenias-persisting-on-therapy",
        ({"b12": "100", "platelets": "85", "anc": "1.1"}, {"b12_therapy_start": DAYS_AGO(29)}),
        ({"b12": "100", "platelets": "85", "anc": "1.1"}, {"b12_therapy_start": DAYS_AGO(28)}),
    ),
    (
        "b12-not-responding",
        ({"b12": "100"}, {"b12_therapy_start": DAYS_AGO(14)}),
        ({"b12": "100"}, {"b12_therapy_start": DAYS_AGO(13)}),
    ),
    (
        "b12-on-therapy",
        ({"b12": "900", "platelets": "95"}, {"b12_therapy_start": DAYS_AGO(0)}),
        ({"b12": "900", "platelets": "95"}, {"b12_therapy_start": DAYS_AGO(-1)}),
    ),
]

# Rules that compare with the patient's earlier panels: (rule id, fires, near miss), each
# an earlier panel (days ago, values), the latest panel's values (today) and the context.
TIMELINE_CASES = [
    (
        "plt-recovered-on-therapy",
        ((24, {"b12": "100 pmol/L", "platelets": "80 x10^9/L"}), {"platelets": "200 x10^9/L"},
         {"b12_therapy_start": DAYS_AGO(21)}),
        ((24, {"b12": "100 pmol/L", "platelets": "160 x10^9/L"}), {"platelets": "200 x10^9/L"},
         {"b12_therapy_start": DAYS_AGO(21)}),
    ),
    (
        "neut-recovered-on-therapy",
        ((40, {"b12": "100 pmol/L", "anc": "0.9 x10^9/L"}), {"anc": "2.5 x10^9/L"},
         {"b12_therapy_start": DAYS_AGO(35)}),
        ((40, {"b12": "100 pmol/L", "anc": "0.9 x10^9/L"}), {"anc": "1.2 x10^9/L"},
         {"b12_therapy_start": DAYS_AGO(35)}),
    ),
    (
        "hb-recovering-on-therapy",
        ((40, {"b12": "100 pmol/L", "hemoglobin": "85 g/L"}), {"hemoglobin": "110 g/L"},
         {"b12_therapy_start": DAYS_AGO(35)}),
        ((40, {"b12": "100 pmol/L", "hemoglobin": "85 g/L"}), {"hemoglobin": "94 g/L"},
         {"b12_therapy_start": DAYS_AGO(35)}),
    ),
]  # fmt: skip


def timeline_report(case):
    (days_ago, earlier), values, context = case
    return interpret(
        values,
        date=TODAY,
        earlier=[(DAYS_AGO(days_ago), earlier)],
        sex="male",
        as_of=TODAY,
        **context,
    )


def test_every_catalogue_rule_has_a_firing_and_a_near_miss_case():
    covered = {rule_id for rule_id, _, _ in CASES} | {rule_id for rule_id, _, _ in TIMELINE_CASES}
    assert covered == set(RULES)
    assert not {rule_id for rule_id, _, _ in CASES} & {rule_id for rule_id, _, _ in TIMELINE_CASES}


@pytest.mark.parametrize(
    ("rule_id", "fires", "near_miss"), TIMELINE_CASES, ids=[c[0] for c in TIMELINE_CASES]
)
def test_timeline_rule_fires_on_its_trigger_and_not_on_the_near_miss(rule_id, fires, near_miss):
    assert rule_id in finding_ids(timeline_report(fires))
    assert rule_id not in finding_ids(timeline_report(near_miss))


@pytest.mark.parametrize(("rule_id", "fires", "near_miss"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_on_its_trigger_and_not_on_the_near_miss(rule_id, fires, near_miss):
    values, context = fires
    report = report_for(values, **context)
    assert rule_id in finding_ids(report)
    finding = next(f for f in report.findings if f.id == rule_id)
    assert finding.severity == RULES[rule_id].severity
    assert finding.evidence, "a finding states the values that fired it"
    assert finding.next_steps
    values, context = near_miss
    assert rule_id not in finding_ids(report_for(values, **context))


def test_findings_are_ordered_by_severity():
    report = report_for(
        {
            "b12": "100",
            "platelets": "15",
            "anc": "0.3",
            "hemoglobin": "80",
            "mcv": "115",
            "ferritin": "400",
            "crp": "1 mg/L",
        },
        sex="female",
        neuro_symptoms=True,
    )
    order = {"urgent": 0, "advisory": 1, "info": 2}
    ranks = [order[f.severity] for f in report.findings]
    assert ranks == sorted(ranks)
    assert ranks[0] == 0


def test_each_finding_is_listed_under_its_domain_implication():
    report = report_for({"b12": "100", "platelets": "95", "anc": "1.0", "ferritin": "20"})
    assert report.implications["platelets"].findings == ("plt-low-consistent-with-b12",)
    assert report.implications["neutrophils"].findings == ("neut-low-consistent-with-b12",)
    assert "fer-low-combined-deficiency" in report.implications["ferritin"].findings


def test_high_b12_with_neutropenia_says_b12_excess_does_not_cause_it():
    report = report_for({"b12": "900", "anc": "1.0"})
    assert "neut-low-not-explained-by-b12" in finding_ids(report)
    assert "high B12 does not cause neutropenia" in report.implications["neutrophils"].summary


def test_b12_deficiency_with_high_platelets_points_to_a_second_cause():
    report = report_for({"b12": "100", "platelets": "600", "ferritin": "15"})
    ids = finding_ids(report)
    assert "plt-high-not-caused-by-b12-deficiency" in ids
    assert "plt-high-iron-deficiency" in ids
    assert "never raises" in report.implications["platelets"].summary


def test_normal_ferritin_beside_low_b12_warns_of_masked_iron_deficiency_without_crp():
    report = report_for({"b12": "100", "ferritin": "120"})
    assert "fer-may-mask-iron-deficiency" in finding_ids(report)
    assert "crp" in report.missing


def test_critical_platelets_and_severe_neutropenia_are_urgent():
    report = report_for({"platelets": "10", "anc": "0.2"})
    urgent = {f.id for f in report.findings if f.severity == "urgent"}
    assert {"plt-critical-low", "neut-severe"} <= urgent


def test_ferritin_limit_depends_on_sex():
    assert "fer-high-not-b12-related" in finding_ids(
        report_for({"b12": "400", "ferritin": "250"}, sex="female")
    )
    assert "fer-high-not-b12-related" not in finding_ids(
        report_for({"b12": "400", "ferritin": "250"}, sex="male")
    )


def test_child_hemoglobin_uses_the_age_band():
    # 112 g/L is anaemia for a 13-year-old (limit 120) but not for a 3-year-old (limit 110).
    assert "anemia-present" in finding_ids(report_for({"hemoglobin": "112"}, age=13))
    assert "anemia-present" not in finding_ids(report_for({"hemoglobin": "112"}, age=3))


def test_anc_is_derived_from_wbc_and_neutrophil_percent():
    report = report_for({"b12": "100", "wbc": "3.0", "neutrophil_pct": "40"})
    anc = next(m for m in report.measurements if m.analyte == "anc")
    assert anc.derived
    assert round(anc.value, 2) == 1.2
    assert "neut-low-consistent-with-b12" in finding_ids(report)
    assert any("derived" in w for w in report.warnings)
