"""Unit spellings and conversion factors, checked against independently computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b12lab.errors import UnitError
from b12lab.ranges import _default_document, compile_default_ranges

# 1 mass unit per volume -> mol/L through the molar mass, computed by hand.
PG_PER_ML_IN_PMOL_PER_L_B12 = 1e-12 / 1e-3 / 1355.4 * 1e12  # 0.7378
NG_PER_ML_IN_NMOL_PER_L_FOLATE = 1e-9 / 1e-3 / 441.4 * 1e9  # 2.266
MG_PER_L_IN_UMOL_PER_L_HCY = 1e-3 / 135.18 * 1e6  # 7.397
G_PER_DL_IN_MMOL_PER_L_HB = 10 / 16114.5 * 1e3  # 0.6206
NG_PER_ML_IN_PMOL_PER_L_FERRITIN = 1e-9 / 1e-3 / 445000 * 1e12  # 2.247


@pytest.mark.parametrize(
    ("analyte", "unit", "expected"),
    [
        ("b12", "pg/mL", PG_PER_ML_IN_PMOL_PER_L_B12),
        ("b12", "ng/L", PG_PER_ML_IN_PMOL_PER_L_B12),
        ("b12", "pmol/L", 1.0),
        ("mma", "nmol/L", 1e-3),
        ("mma", "umol/L", 1.0),
        ("mma", "µmol/L", 1.0),
        ("homocysteine", "mg/L", MG_PER_L_IN_UMOL_PER_L_HCY),
        ("folate", "ng/mL", NG_PER_ML_IN_NMOL_PER_L_FOLATE),
        ("folate", "ug/L", NG_PER_ML_IN_NMOL_PER_L_FOLATE),
        ("hemoglobin", "g/dL", 10.0),
        ("hemoglobin", "mmol/L", 1 / G_PER_DL_IN_MMOL_PER_L_HB * 10),
        ("mcv", "um3", 1.0),
        ("mcv", "µm3", 1.0),
        ("ferritin", "ng/mL", 1.0),
        ("ferritin", "mcg/L", 1.0),
        ("ferritin", "pmol/L", 1 / NG_PER_ML_IN_PMOL_PER_L_FERRITIN),
        ("crp", "mg/dL", 10.0),
        ("tsat", "%", 1.0),
    ],
)
def test_conversion_factors_match_hand_computed_values(ranges, analyte, unit, expected):
    assert math.isclose(ranges.units.factor(analyte, unit), expected, rel_tol=1e-9)


def test_spec_rounded_factors_hold(ranges):
    assert round(ranges.units.factor("b12", "pg/mL"), 4) == 0.7378
    assert round(ranges.units.factor("folate", "ng/mL"), 3) == 2.266
    assert math.isclose(ranges.units.factor("homocysteine", "mg/L"), 7.397, rel_tol=1e-4)
    assert round(1 / ranges.units.factor("hemoglobin", "mmol/L") * 10, 4) == 0.6206
    assert round(1 / ranges.units.factor("ferritin", "pmol/L"), 3) == 2.247


COUNT_SPELLINGS = {
    "10^9/L": 1.0,
    "10*9/L": 1.0,
    "x10^9/L": 1.0,
    "×10⁹/L": 1.0,
    "10^3/uL": 1.0,
    "10*3/uL": 1.0,
    "x10^3/uL": 1.0,
    "x10E3/uL": 1.0,
    "10^3/µL": 1.0,
    "K/uL": 1.0,
    "K/µL": 1.0,
    "thou/uL": 1.0,
    "/mm3": 1e-3,
    "cells/uL": 1e-3,
    "/uL": 1e-3,
    "G/L": 1.0,
    "10^3/mcL": 1.0,
    "K/μL": 1.0,
    "/mm³": 1e-3,
}


@pytest.mark.parametrize("analyte", ["platelets", "anc", "wbc"])
@pytest.mark.parametrize(("spelling", "factor"), COUNT_SPELLINGS.items())
def test_every_count_spelling_converts_to_10e9_per_litre(ranges, analyte, spelling, factor):
    assert math.isclose(ranges.units.factor(analyte, spelling), factor, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("b12", "parsecs"),
        ("b12", "furlongs"),
        ("platelets", "mg/L"),
        ("hemoglobin", "K/uL"),
        ("ferritin", "fL"),
        ("b12", "180 pg/mL"),
        ("b12", "bananas/L"),
        ("crp", "x" * 500),
    ],
)
def test_units_the_analyte_does_not_accept_are_rejected_with_the_accepted_list(
    ranges, analyte, unit
):
    with pytest.raises(UnitError) as error:
        ranges.units.factor(analyte, unit)
    message = str(error.value)
    assert analyte in message
    assert "use one of: " + ranges.units.accepted(analyte)[0] in message


def test_an_unlisted_but_compatible_unit_is_converted_by_pint(ranges):
    # ug/dL is not listed for B12, but pint knows it and the molar mass converts it.
    assert math.isclose(
        ranges.units.factor("b12", "ug/dL"), 1e4 * PG_PER_ML_IN_PMOL_PER_L_B12, rel_tol=1e-9
    )


@pytest.mark.parametrize(
    ("flag", "value", "read_as", "warned"),
    [
        ("--b12", "150 ng/dL", 1106.7, True),  # a letter from 150 ng/L, deficient
        ("--b12", "0.15 ug/L", 110.7, True),
        ("--b12", "150 ng/L", 110.7, False),
        ("--b12", "150 pg/mL", 110.7, False),
        ("--ferritin", "45 ng/mL", 45, False),
        ("--hemoglobin", "8.4 mmol/L", 135, False),
    ],
)
def test_a_unit_no_laboratory_reports_the_analyte_in_is_read_and_said(
    cli, flag, value, read_as, warned
):
    report = cli.json("interpret", flag, value, "--format", "json")
    (measurement,) = report["measurements"]
    assert measurement["value"] == read_as
    said = [w for w in report["warnings"] if "is not a unit laboratories report" in w]
    assert bool(said) == warned
    if warned:
        assert value.split()[1] in said[0] and "check the unit" in said[0]


def test_an_unusual_unit_is_a_row_error_under_strict(cli, tmp_path):
    export = tmp_path / "labs.csv"
    export.write_text("patient_id,b12,b12_unit\nP1,150,ng/dL\nP2,150,ng/L\n")
    relaxed = cli("batch", export)
    assert relaxed.exit_code == 0
    assert "'ng/dL' is not a unit laboratories report b12 in" in relaxed.stdout
    strict = cli("batch", export, "--strict")
    assert strict.exit_code == 3
    first, second = strict.stdout.splitlines()[1:]
    assert first.startswith("2,P1,") and "ng/dL" in first.rsplit(",", 1)[-1]
    assert second.startswith("3,P2,") and second.endswith(",")  # the usual unit: no error


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("0.5 pmol/L", "0.5 pmol/L is below the lowest result laboratories report (10 pmol/L)"),
        ("0.5", "0.5 is below the lowest result laboratories report (10 pmol/L)"),
        ("8000 pmol/L", "8000 pmol/L is above the highest result laboratories report (5000"),
        ("180 pmol/L", None),
        ("<5 pmol/L", None),  # censored: the laboratory's own statement of its range
    ],
)
def test_a_canonical_value_no_laboratory_reports_is_read_and_said(cli, value, said):
    """B12 0.5 pmol/L is far below any assay's measuring range (reported: 10-5000 pmol/L
    in reference_ranges.yaml); no other unit explains it, so it is read as written and
    the report says to check it."""
    report = cli.json("interpret", "--b12", value, "--format", "json")
    (measurement,) = report["measurements"]
    assert measurement["value"] == float(value.lstrip("<").split()[0])
    warned = [w for w in report["warnings"] if "laboratories report" in w]
    if said is None:
        assert warned == []
    else:
        assert len(warned) == 1 and said in warned[0] and "check the value" in warned[0]


def test_a_canonical_value_no_laboratory_reports_is_a_row_error_under_strict(cli, tmp_path):
    export = tmp_path / "labs.csv"
    export.write_text("patient_id,b12,b12_unit\nP1,0.5,pmol/L\nP2,180,pmol/L\n")
    relaxed = cli("batch", export)
    assert relaxed.exit_code == 0
    first = relaxed.stdout.splitlines()[1]
    assert "0.5 pmol/L is below the lowest result laboratories report" in first
    strict = cli("batch", export, "--strict")
    assert strict.exit_code == 3
    first, second = strict.stdout.splitlines()[1:]
    assert first.startswith("2,P1,") and "refused under --strict" in first.rsplit(",", 1)[-1]
    assert second.startswith("3,P2,") and second.endswith(",")


def test_shipped_compiled_ranges_match_the_yaml_and_pint():
    document, table = _default_document()
    fresh = compile_default_ranges()
    assert table, "compiled_ranges.json is stale: run python -m b12lab.ranges --compile"
    assert document == fresh["document"]
    for analyte, entry in fresh["unit_table"].items():
        assert table[analyte]["basis"] == entry["basis"]
        for key, factor in entry["factors"].items():
            assert math.isclose(table[analyte]["factors"][key], factor, rel_tol=1e-12)


@given(
    st.sampled_from(["b12", "folate", "homocysteine", "mma", "hemoglobin", "ferritin", "crp"]),
    st.floats(min_value=1e-3, max_value=1e5, allow_nan=False),
)
def test_converting_to_canonical_and_back_returns_the_input(analyte, value):
    from b12lab.ranges import load_ranges

    units = load_ranges().units
    for spelling in units.accepted(analyte):
        there = value * units.factor(analyte, spelling)
        back = there / units.factor(analyte, spelling)
        assert math.isclose(back, value, rel_tol=1e-12)


def test_a_unit_of_the_canonical_scale_has_the_factor_one_exactly(ranges):
    assert ranges.units.factor("mcv", "um3") == 1.0
    assert ranges.units.one_scale("mcv")  # so an MCV without unit is not "assumed"


def test_an_mcv_without_unit_raises_no_assumed_unit_warning(cli, tmp_path):
    path = tmp_path / "mcv.csv"
    path.write_text("patient_id,MCV,B12\nP1,92,300\n", encoding="utf-8")
    result = cli("batch", path)
    assert result.exit_code == 0, result.stderr
    warnings = result.stdout.splitlines()[1]
    assert "b12: no unit given" in warnings
    assert "mcv: no unit" not in warnings
