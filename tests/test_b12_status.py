"""B12 status bands, guideline profiles, censoring and functional confirmation."""

from __future__ import annotations

import pytest
from conftest import finding_ids, report_for


@pytest.mark.parametrize(
    ("b12", "guideline", "status"),
    [
        ("147.9 pmol/L", "who", "deficient"),
        ("148 pmol/L", "who", "borderline"),
        ("220.9 pmol/L", "who", "borderline"),
        ("221 pmol/L", "who", "normal"),
        ("664 pmol/L", "who", "normal"),
        ("665 pmol/L", "who", "high"),
        ("179 ng/L", "nice", "deficient"),
        ("180 ng/L", "nice", "borderline"),
        ("349 ng/L", "nice", "borderline"),
        ("350 ng/L", "nice", "normal"),
        ("140 pmol/L", "nice", "borderline"),
        ("140 pmol/L", "who", "deficient"),
        ("<50 pmol/L", "who", "deficient"),
        ("<148 pmol/L", "who", "deficient"),
        ("<200 pmol/L", "who", "borderline"),
        ("> 1476 pg/mL", "who", "high"),
        (">100 pmol/L", "who", "borderline"),
    ],
)
def test_b12_status_follows_the_guideline_profile(b12, guideline, status):
    report = report_for({"b12": b12}, guideline=guideline)
    assert report.b12_status == status
    assert report.guideline == guideline


def test_no_b12_is_unknown_and_listed_missing():
    report = report_for({"platelets": "95"})
    assert report.b12_status == "unknown"
    assert "b12" in report.missing


def test_a_censored_value_straddling_a_cut_off_is_borderline_with_a_warning():
    report = report_for({"b12": "<200 pmol/L"})
    assert report.b12_status == "borderline"
    assert any("straddles" in w for w in report.warnings)


@pytest.mark.parametrize("guideline", ["who", "nice"])
def test_borderline_always_lists_functional_markers_missing(guideline):
    report = report_for({"b12": "200 pmol/L"}, guideline=guideline)
    assert report.b12_status == "borderline"
    assert {"mma", "homocysteine"} <= set(report.missing)
    assert ("holotc" in report.missing) == (guideline == "nice")


def test_undetermined_borderline_b12_makes_platelet_rules_hinge_on_confirmation():
    report = report_for({"b12": "200 pmol/L", "platelets": "95"})
    ids = finding_ids(report)
    assert "plt-low-consistent-with-b12" not in ids
    assert "plt-low-not-explained-by-b12" not in ids
    assert "hinges on confirming B12 status" in report.implications["platelets"].summary


def test_borderline_with_raised_mma_counts_as_low_b12():
    report = report_for({"b12": "200 pmol/L", "mma": "0.6", "platelets": "95"})
    ids = finding_ids(report)
    assert "b12-functional-deficiency-confirmed" in ids
    assert "plt-low-consistent-with-b12" in ids


def test_borderline_with_normal_mma_counts_as_not_low():
    report = report_for({"b12": "200 pmol/L", "mma": "0.2", "platelets": "95"})
    assert "plt-low-not-explained-by-b12" in finding_ids(report)


def test_homocysteine_confirms_only_with_folate_measured_and_not_low():
    without_folate = report_for({"b12": "200 pmol/L", "homocysteine": "25"})
    assert "b12-functional-deficiency-confirmed" not in finding_ids(without_folate)
    assert "folate" in without_folate.missing
    with_folate = report_for({"b12": "200 pmol/L", "homocysteine": "25", "folate": "15"})
    assert "b12-functional-deficiency-confirmed" in finding_ids(with_folate)


def test_nice_holotc_decides_borderline_b12():
    low = report_for({"b12": "200 pmol/L", "holotc": "20", "anc": "1.0"}, guideline="nice")
    assert "b12-functional-deficiency-confirmed" in finding_ids(low)
    assert "neut-low-consistent-with-b12" in finding_ids(low)
    indeterminate = report_for(
        {"b12": "200 pmol/L", "holotc": "50", "anc": "1.0"}, guideline="nice"
    )
    assert "b12-functional-deficiency-confirmed" not in finding_ids(indeterminate)
    assert "neut-low-not-explained-by-b12" not in finding_ids(indeterminate)
