"""Reading results as printed on a slip: units, censoring, implausible values."""

from __future__ import annotations

import pytest

from b12lab.errors import ImplausibleValueError, InputError
from b12lab.reading.policy import COMMA, ReadPolicy
from b12lab.reading.values import is_missing, measure


@pytest.mark.parametrize(
    ("analyte", "text", "value", "censored"),
    [
        ("b12", "180 pg/mL", 132.8, None),
        ("b12", "180pg/mL", 132.8, None),
        ("b12", "<50", 50.0, "<"),
        ("b12", "> 1476 pg/mL", 1089.0, ">"),
        ("mma", "<=0.2", 0.2, "<="),
        ("mma", "≥ 400 nmol/L", 0.4, ">="),
        ("platelets", "95 K/uL", 95.0, None),
        ("platelets", "250,000 /uL", 250.0, None),
        ("anc", "1,5", 1.5, None),
        ("hemoglobin", "9.0 g/dL", 90.0, None),
        ("hemoglobin", "7.1 mmol/L", 114.4, None),
        ("ferritin", "450 ng/mL", 450.0, None),
        ("b12", "١٨٠ pg/mL", 132.8, None),
    ],
)
def test_results_convert_to_the_canonical_unit(ranges, analyte, text, value, censored):
    measurement, _ = measure(ranges, analyte, text)
    assert round(measurement.value, 1) == value
    assert measurement.censored == censored
    assert measurement.unit == ranges.analytes[analyte].canonical_unit


def test_a_value_without_unit_uses_the_canonical_unit_and_says_so(ranges):
    measurement, warnings = measure(ranges, "platelets", "95")
    assert measurement.value == 95
    assert measurement.unit_assumed
    assert any("no unit given" in str(w) and "10^9/L" in str(w) for w in warnings)


def test_a_censored_value_is_reported_as_censored(ranges):
    _, warnings = measure(ranges, "b12", "> 1476 pg/mL")
    assert any("censored" in str(w) for w in warnings)


@pytest.mark.parametrize(
    ("analyte", "text", "hint"),
    [
        ("platelets", "250000 x10^9/L", "did you mean 250000 /uL (= 250 10^9/L)"),
        ("platelets", "250000", "did you mean 250000 /uL"),
        ("hemoglobin", "9.0 g/L", "did you mean 9 g/dL (= 90 g/L)"),
        ("anc", "1500", "did you mean 1500 /uL (= 1.5 10^9/L)"),
    ],
)
def test_implausible_values_name_the_likely_unit_mistake(ranges, analyte, text, hint):
    with pytest.raises(ImplausibleValueError) as error:
        measure(ranges, analyte, text)
    message = str(error.value)
    assert "outside the plausible range" in message
    assert hint in message


@pytest.mark.parametrize(
    ("analyte", "text", "words"),
    [
        ("b12", "10000000", "outside the plausible range"),
        ("b12", "-5", "negative"),
        ("b12", "nan", "not a number"),
        ("b12", "inf", "not a number"),
        ("b12", "1e999", "too large"),
        ("b12", "abc", "not a number"),
        ("platelets", "1,2,3", "decimal comma"),
        ("b12", "1" * 200, "characters long"),
        ("platelets", "1 200", "space or an apostrophe between its digits"),
        ("platelets", "1'200", "space or an apostrophe between its digits"),
        ("b12", "1 476 pg/mL", "space or an apostrophe between its digits"),
    ],
)
def test_values_that_lie_are_rejected_with_a_reason(ranges, analyte, text, words):
    with pytest.raises(InputError) as error:
        measure(ranges, analyte, text)
    assert words in str(error.value)


@pytest.mark.parametrize("token", ["", "n/a", "NA", "-", "pending", "Not done", " "])
def test_no_result_tokens_are_missing_values(token):
    assert is_missing(token)


def test_a_decimal_comma_export_reads_comma_as_decimal(ranges):
    measurement, _ = measure(ranges, "anc", "1,500", policy=ReadPolicy(decimal=COMMA))
    assert measurement.value == 1.5
