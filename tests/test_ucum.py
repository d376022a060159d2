"""UCUM codes in the data file: every accepted spelling has one, and JSON carries it."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from b12lab.errors import RangesError
from b12lab.ranges import load_ranges


def test_every_accepted_spelling_and_canonical_unit_has_a_ucum_code(ranges):
    for key, spec in ranges.analytes.items():
        codes = dict(spec.ucum_codes)
        assert spec.ucum, key
        assert {spelling for spelling, _ in spec.spellings} == set(codes), key
        assert spec.ucum == codes[spec.canonical_unit]


@pytest.mark.parametrize(
    ("analyte", "spelling", "code"),
    [
        ("platelets", "10^9/L", "10*9/L"),
        ("platelets", "K/uL", "10*3/uL"),
        ("anc", "/uL", "/uL"),
        ("anc", "cells/mm3", "/mm3"),
        ("wbc", "G/L", "10*9/L"),
        ("b12", "pg/mL", "pg/mL"),
        ("b12", "pmol/L", "pmol/L"),
        ("ferritin", "ng/mL", "ng/mL"),
        ("ferritin", "ug/L", "ug/L"),
        ("hemoglobin", "g/dL", "g/dL"),
        ("mcv", "fL", "fL"),
        ("tsat", "%", "%"),
        ("crp", "mg/L", "mg/L"),
        ("mma", "umol/L", "umol/L"),
        ("folate", "nmol/L", "nmol/L"),
        ("platelets", "x10E9/L", "10*9/L"),
    ],
)
def test_ucum_code_of_a_spelling(ranges, analyte, spelling, code):
    assert ranges.analytes[analyte].ucum_for(spelling) == code


def test_json_measurements_carry_the_ucum_code(cli):
    document = cli.json(
        "interpret",
        "--b12",
        "180 pg/mL",
        "--platelets",
        "95 K/uL",
        "--ferritin",
        "450",
        "-f",
        "json",
    )
    assert {m["analyte"]: m["ucum"] for m in document["measurements"]} == {
        "b12": "pmol/L",
        "platelets": "10*9/L",
        "ferritin": "ug/L",
    }


@pytest.mark.parametrize(
    ("overlay", "problem"),
    [
        (
            {"analytes": {"b12": {"units": {"mcg/L": "microgram / liter"}}}},
            "no UCUM code for mcg/L",
        ),
        ({"analytes": {"b12": {"ucum": {"nmol/L": "nmol/L"}}}}, "not an accepted unit spelling"),
        ({"analytes": {"b12": {"ucum": {"pg/mL": ""}}}}, "expected a UCUM code"),
    ],
)
def test_overlay_units_without_a_ucum_code_are_refused(tmp_path, overlay, problem):
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    with pytest.raises(RangesError, match=problem):
        load_ranges(path)


def test_overlay_adding_a_spelling_with_its_code_is_accepted(tmp_path):
    path = tmp_path / "lab.yaml"
    overlay = {
        "analytes": {"b12": {"units": {"mcg/L": "microgram / liter"}, "ucum": {"mcg/L": "ug/L"}}}
    }
    path.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    assert load_ranges(path).analytes["b12"].ucum_for("mcg/L") == "ug/L"


def test_the_data_file_lists_ucum_as_a_source():
    document = yaml.safe_load((REPO / "b12lab" / "reference_ranges.yaml").read_text())
    assert "ucum" in document["sources"]
