"""Serum creatinine: read in any accepted unit, and eGFR derived from it (CKD-EPI 2021)."""

from __future__ import annotations

import pytest
from conftest import finding_ids, report_for


def _egfr(report):
    return next((m for m in report.measurements if m.analyte == "egfr"), None)


@pytest.mark.parametrize(
    ("creatinine", "sex", "age", "expected"),
    [
        ("1.0 mg/dL", "female", 50, 68.6),  # 142 x (1/0.7)^-1.2 x 0.9938^50 x 1.012
        ("88.4 umol/L", "female", 50, 68.6),  # the same creatinine in SI units
        ("2.0 mg/dL", "male", 70, 35.2),
        ("0.6 mg/dL", "male", 30, 133.4),  # below kappa: the alpha exponent applies
    ],
)
def test_egfr_is_derived_from_creatinine_age_and_sex(creatinine, sex, age, expected):
    report = report_for({"creatinine": creatinine}, sex=sex, age=age)
    egfr = _egfr(report)
    assert egfr is not None and egfr.derived
    assert egfr.value == pytest.approx(expected, abs=0.3)
    assert any("derived from creatinine by CKD-EPI 2021" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("context", "words"),
    [
        ({"sex": "female"}, "needs age and sex"),
        ({"age": 50}, "needs age and sex"),
        ({"sex": "female", "age": 12}, "for adults"),
    ],
)
def test_egfr_is_not_derived_without_what_the_equation_needs(context, words):
    report = report_for({"creatinine": "1.0 mg/dL"}, **context)
    assert _egfr(report) is None
    assert any(words in w for w in report.warnings)


def test_a_given_egfr_is_never_replaced_by_a_derived_one():
    report = report_for({"creatinine": "2.0 mg/dL", "egfr": "75"}, sex="male", age=70)
    egfr = _egfr(report)
    assert (egfr.value, egfr.derived) == (75, False)


def test_a_derived_low_egfr_brings_the_renal_caveat_for_a_raised_mma():
    values = {"b12": "300", "mma": "0.6", "creatinine": "2.0 mg/dL"}
    report = report_for(values, sex="male", age=70)
    assert "mma-renal-caveat" in finding_ids(report)
    assert "b12-functional-deficiency-confirmed" not in finding_ids(report)
    normal = report_for({**values, "creatinine": "0.9 mg/dL"}, sex="male", age=40)
    assert "b12-functional-deficiency-confirmed" in finding_ids(normal)


def test_creatinine_flag_from_the_command_line(cli):
    document = cli.json(
        "interpret", "--creatinine", "177 umol/L", "--sex", "male", "--age", "70", "-f", "json"
    )
    analytes = {m["analyte"]: m for m in document["measurements"]}
    assert analytes["creatinine"]["flag"] == "high"
    assert analytes["egfr"]["derived"] is True
