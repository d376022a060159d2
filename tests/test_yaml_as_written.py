"""Panel files and ranges overlays are read as written, within fixed bounds."""

from __future__ import annotations

import json
import time

import pytest
from conftest import one_clear_line

from b12lab.errors import InputError
from b12lab.inputs.yaml_text import MAX_DEPTH, load_yaml


@pytest.mark.parametrize(
    ("written", "panel", "ranges"),
    [
        ("0012345", "0012345", "0012345"),
        ("1:40", "1:40", "1:40"),
        ("0x64", "0x64", "0x64"),
        ("1_000", "1_000", "1_000"),
        ("2026-09-01", "2026-09-01", "2026-09-01"),
        ("yes", "yes", "yes"),
        ("148", "148", 148),
        ("0.40", "0.40", 0.40),
        ("1e3", "1e3", 1000.0),
        ("-2.5", "-2.5", -2.5),
        ("true", "true", True),
        ("False", "False", False),
        ("'148'", "148", "148"),
        ("!!str 148", "148", "148"),
        ("~", None, None),
        ("null", None, None),
        ("", None, None),
        (".inf", ".inf", ".inf"),
    ],
)
def test_scalars_keep_what_was_typed(written, panel, ranges):
    assert load_yaml(f"key: {written}\n", "f", typed=False) == {"key": panel}
    assert load_yaml(f"key: {written}\n", "f", typed=True) == {"key": ranges}


def test_a_huge_number_in_a_ranges_file_is_never_built_as_an_integer():
    value = load_yaml("key: " + "9" * 5000 + "\n", "f", typed=True)["key"]
    assert value == float("inf")


@pytest.mark.parametrize("typed", [False, True])
def test_a_duplicated_key_names_the_key_and_both_lines(typed):
    with pytest.raises(InputError) as raised:
        load_yaml("b12: 100\nsex: f\nb12: 300\n", "panel.yaml", typed=typed)
    assert "'b12' twice (lines 1 and 3)" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("- " * 100_000 + "x\n", "nested too deeply"),
        ("- " * 1_000 + "x\n", "nested too deeply"),
        ("? " * 100_000 + "x\n", "as a key"),
        ("[" * 100_000 + "\n", "nested too deeply"),
        ("[" * 200 + "]" * 200 + "\n", "nested too deeply"),
        ("{a: " * 100_000 + "\n", "nested too deeply"),
        ("a: &x [1, 2]\nb: *x\n", "alias"),
        ("patient_id: &p x\nsex: *p\n", "alias"),
        ("a: !!python/object/apply:os.system [true]\n", "YAML tag"),
        ("a: 1\n---\nb: 2\n", "more than one YAML document"),
        ("[" + "1," * 250_000 + "1]\n", "more than 200,000 values"),
    ],
)
def test_hostile_structure_is_refused_quickly(text, words):
    started = time.perf_counter()
    with pytest.raises(InputError) as raised:
        load_yaml(text, "f", typed=False)
    assert time.perf_counter() - started < 3
    assert words in str(raised.value)


def test_the_nesting_limit_admits_documents_up_to_it():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_yaml(text, "f", typed=True) is not None


@pytest.mark.parametrize(
    "field",
    ["patient_id", "sex", "age", "date", "b12", "context:\n  b12_therapy_start", "panels"],
)
def test_an_alias_bomb_in_any_field_of_a_panel_file_is_exit_2_at_once(cli, tmp_path, field):
    bomb = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    bomb += [f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(bomb) + f"\n{field}: *l8\n")
    started = time.perf_counter()
    result = cli("interpret", path, "-f", "json")
    assert time.perf_counter() - started < 3
    assert result.exit_code == 2
    assert "alias" in one_clear_line(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient_id: 0012345\nb12: 100\n", ("patient_id", "0012345")),
        ("patient_id: 1:40\nb12: 100\n", ("patient_id", "1:40")),
        ("patient_id: P1\nb12: 100\ndate: 2026-09-01\n", ("panel_date", "2026-09-01")),
    ],
)
def test_panel_file_identifiers_and_dates_stay_as_typed(cli, tmp_path, text, expected):
    path = tmp_path / "panel.yaml"
    path.write_text(text)
    document = cli.json("interpret", path, "-f", "json")
    assert document[expected[0]] == expected[1]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("b12: 100\ndate: 2026-13-45\n", "date"),
        ("b12: 100\ndate: 2026-02-30\n", "date"),
        ("b12: 100\nage: " + "9" * 5000 + "\n", "age"),
        ("b12: 100\ncontext:\n  days_on_therapy: " + "9" * 5000 + "\n", "days_on_therapy"),
        ("b12: " + "9" * 5000 + "\n", "b12"),
        ("b12: 100\ncontext:\n  b12_therapy_start: 2026-02-30\n", "b12_therapy_start"),
        ("b12: 100\nb12: 200\n", "'b12' twice (lines 1 and 2)"),
    ],
)
def test_impossible_values_in_a_panel_file_are_input_errors_naming_the_field(
    cli, tmp_path, text, field
):
    path = tmp_path / "panel.yaml"
    path.write_text(text)
    result = cli("interpret", path, "-f", "json")
    assert result.exit_code == 2
    assert field in one_clear_line(result)


@pytest.mark.parametrize(
    ("overlay", "words"),
    [
        (
            "analytes:\n  b12:\n    units:\n      pg/mL: nonsense_unit\n",
            "analytes.b12.units.pg/mL: 'nonsense_unit' is not a unit",
        ),
        ("analytes:\n  b12:\n    pint: furlong\n", "does not convert to the canonical unit"),
        (
            "analytes:\n  b12:\n    units:\n      x: pg^9^9^9\n    ucum: {x: pg/mL}\n",
            "is not a unit expression",
        ),
        (
            "analytes:\n  b12:\n    units:\n      x: pg/mL*0\n    ucum: {x: pg/mL}\n",
            "is not a unit expression",
        ),
        ("analytes:\n  platelets:\n    aliases: [B12]\n", "'B12' already names analyte b12"),
        ("analytes:\n  ferritin:\n    loinc: ['2132-9']\n", "already names analyte b12"),
        (
            "analytes:\n  platelets:\n    reference:\n      - low: 1" + "0" * 400 + "\n",
            "analytes.platelets.reference[0].low: must be a finite number",
        ),
        ("version: 1\nversion: 2\n", "'version' twice"),
        ("title: &t x\nversion: *t\n", "alias"),
        ("thresholds:\n  b12_response_days:\n    value: 0x0e\n", "expected a number"),
    ],
)
def test_an_overlay_that_would_fail_later_is_refused_at_load(cli, tmp_path, overlay, words):
    path = tmp_path / "lab.yaml"
    path.write_text(overlay)
    result = cli("ranges", "--ranges", path)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


def test_an_overlay_ranges_accepts_works_in_every_command(cli, tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text(
        "analytes:\n  b12:\n    units:\n      pg/dL: picogram / deciliter\n"
        "    ucum: {pg/dL: pg/dL}\n"
        "    aliases: [Cobalamin serum]\n"
    )
    assert cli("ranges", "--ranges", path).exit_code == 0
    document = cli.json("interpret", "--b12", "18000 pg/dL", "--ranges", path, "-f", "json")
    assert document["b12_status"] == "deficient"
    converted = cli("convert", "18000", "pg/dL", "--to", "pmol/L", "--ranges", path)
    assert converted.exit_code == 0 and converted.stdout.startswith("132.8")
    export = tmp_path / "in.csv"
    export.write_text("patient_id,Cobalamin serum\nP1,100\n")
    assert cli("batch", export, "--ranges", path).exit_code == 0


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_an_endless_ranges_file_is_refused_without_reading_it_all(cli, target):
    started = time.perf_counter()
    result = cli("ranges", "--ranges", target)
    assert time.perf_counter() - started < 3
    assert result.exit_code == 2
    assert "larger than 5 MB" in one_clear_line(result)


def test_convert_to_a_unit_with_a_zero_factor_is_exit_2(cli):
    result = cli("convert", "100", "pg/mL", "--to", "pg/mL*0", "--analyte", "b12")
    assert result.exit_code == 2
    assert "pg/mL*0" in one_clear_line(result)


def test_json_panel_files_still_read(cli, tmp_path):
    path = tmp_path / "panel.json"
    path.write_text(json.dumps({"patient_id": "J1", "b12": "180 pg/mL", "age": 54}))
    document = cli.json("interpret", path, "-f", "json")
    assert document["patient_id"] == "J1"


@pytest.mark.parametrize(
    "expression",
    ["picogram / milliliter * pi", "2 * picogram / milliliter", "picogram / (milliliter)"],
)
def test_an_overlay_unit_expression_is_plain_units_never_constants_or_arithmetic(
    cli, tmp_path, expression
):
    path = tmp_path / "lab.yaml"
    path.write_text(
        f"analytes:\n  b12:\n    units:\n      x: {expression}\n    ucum: {{x: pg/mL}}\n"
    )
    result = cli("ranges", "--ranges", path)
    assert result.exit_code == 2
    assert "is not a unit expression" in one_clear_line(result)
