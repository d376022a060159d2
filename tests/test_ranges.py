"""reference_ranges.yaml: sources for every number, overlays, and overlay validation."""

from __future__ import annotations

import pytest
from conftest import SAMPLES, finding_ids, report_for

from b12lab.errors import RangesError
from b12lab.ranges import load_ranges


def test_every_number_names_a_listed_source(ranges):
    for spec in ranges.analytes.values():
        for band in spec.bands:
            assert band.source in ranges.sources
    for threshold in ranges.thresholds.values():
        assert threshold.source in ranges.sources
    for profile in ranges.profiles.values():
        assert profile.b12_deficient_below.source in ranges.sources


def test_nice_profile_thresholds_are_converted_from_ng_per_l(ranges):
    nice = ranges.profiles["nice"]
    assert round(nice.b12_deficient_below.value, 1) == 132.8
    assert round(nice.b12_borderline_below.value, 1) == 258.2
    assert nice.holotc_deficient_below.value == 25


def test_overlay_changes_only_the_keys_it_sets(tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("analytes:\n  platelets:\n    reference:\n      - {low: 140, high: 400}\n")
    lab = load_ranges(overlay)
    band = lab.analytes["platelets"].bands[0]
    assert (band.low, band.high) == (140, 400)
    assert band.source == "overlay lab.yaml"
    default = load_ranges()
    assert lab.analytes["anc"].bands == default.analytes["anc"].bands
    assert lab.thresholds == default.thresholds


def test_overlay_changes_the_interpretation(tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("analytes:\n  platelets:\n    reference:\n      - {low: 140, high: 400}\n")
    assert "plt-low-not-explained-by-b12" in finding_ids(
        report_for({"b12": "400", "platelets": "145"})
    )
    assert "plt-low-not-explained-by-b12" not in finding_ids(
        report_for({"b12": "400", "platelets": "145"}, ranges=load_ranges(overlay))
    )


def test_shipped_example_overlay_is_valid():
    lab = load_ranges(SAMPLES / "lab_overlay.yaml")
    assert lab.default_guideline == "nice"
    assert round(lab.analytes["b12"].bands[0].high) == 664
    assert round(lab.thresholds["ferritin_low_in_inflammation_below"].value) == 100


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (
            "analytes:\n  platelets:\n    reference:\n      - {low: abc, high: 400}\n",
            "analytes.platelets.reference[0].low: expected a number",
        ),
        (
            "analytes:\n  platelets:\n    reference:\n      - {low: -5, high: 400}\n",
            "analytes.platelets.reference[0].low: must not be negative",
        ),
        (
            "analytes:\n  platelets:\n    reference:\n      - {low: 500, high: 400}\n",
            "analytes.platelets.reference[0].low: 500 is not below high 400",
        ),
        ("analytes:\n  vitamin_q:\n    name: Q\n", "analytes.vitamin_q: unknown analyte"),
        ("analytes:\n  b12:\n    colour: red\n", "analytes.b12.colour: unknown key"),
        (
            "thresholds:\n  anc_moderate_below: {value: 1.0, unit: mg/L}\n",
            "thresholds.anc_moderate_below.unit: unit 'mg/L' for anc",
        ),
        ("thresholds:\n  made_up: {value: 1}\n", "thresholds.made_up: unknown threshold"),
        (
            "guideline_profiles:\n  who:\n    b12_deficient_below: {value: 300, unit: pmol/L}\n",
            "guideline_profiles.who.b12_deficient_below: 300 is above "
            "guideline_profiles.who.b12_borderline_below",
        ),
        (
            "analytes:\n  platelets:\n    critical: {low: 200}\n",
            "analytes.platelets.critical.low: 200 is above the lower reference limit 150",
        ),
        (
            "analytes:\n  platelets:\n    critical: {high: 300}\n",
            "analytes.platelets.critical.high: 300 is below the upper reference limit 450",
        ),
        (
            "analytes:\n  hemoglobin:\n    critical: {low: 110}\n",
            "analytes.hemoglobin.critical.low: 110 is above the lower reference limit 105",
        ),
        (
            "analytes:\n  platelets:\n    reference:\n      - {low: 150, high: 150}\n",
            "analytes.platelets.reference[0].low: 150 is not below high 150",
        ),
        (
            "analytes:\n  platelets:\n    reference:\n"
            "      - {low: 150, high: 450, age_min: 18, age_max: 2}\n",
            "analytes.platelets.reference[0].age_min: 18 is not below age_max 2",
        ),
        (
            "thresholds:\n  platelets_grade4_below: {value: 80}\n",
            "thresholds.platelets_grade4_below: 80 is above thresholds.platelets_grade3_below",
        ),
        (
            "thresholds:\n  anc_moderate_below: {value: 2.0}\n",
            "thresholds.anc_moderate_below: 2 is above thresholds.anc_grade2_below",
        ),
        (
            "thresholds:\n  rebound_window_first_day: {value: 60}\n",
            "thresholds.rebound_window_first_day: 60 is above thresholds.rebound_window_last_day",
        ),
        ("default_guideline: bsh\n", "default_guideline: 'bsh' is not a profile"),
        ("colour: red\n", "colour: unknown key"),
        ("- 1\n- 2\n", "(top level): must be a mapping"),
        ("analytes: [1, 2\n", "is not valid YAML"),
        (
            "analytes:\n  anc:\n    critical: {low: 2, high: 1}\n",
            "analytes.anc.critical.low: is not below high",
        ),
    ],
)
def test_a_malformed_overlay_is_rejected_with_the_path_of_the_bad_key(tmp_path, text, path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(text)
    with pytest.raises(Exception) as error:
        load_ranges(overlay)
    assert path in str(error.value)


def test_ranges_command_rejects_a_bad_overlay_with_exit_2(cli, tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("analytes:\n  platelets:\n    reference:\n      - {low: 500, high: 400}\n")
    result = cli("ranges", "--ranges", overlay)
    assert result.exit_code == 2
    assert "analytes.platelets.reference[0].low" in result.stderr
    assert result.stderr.count("\n") == 1


def test_ranges_error_is_a_ranges_error(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("thresholds:\n  made_up: {value: 1}\n")
    with pytest.raises(RangesError):
        load_ranges(overlay)


def test_a_critical_limit_inside_the_reference_interval_never_flags_a_normal_count(cli, tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("analytes:\n  platelets:\n    critical: {low: 200}\n")
    result = cli("interpret", "--platelets", "170", "--ranges", overlay)
    assert result.exit_code == 2
    assert "analytes.platelets.critical.low" in result.stderr
    assert "critical" not in result.stdout


def test_the_shipped_ranges_keep_every_order():
    ranges = load_ranges()  # validated whole at load, as an overlay is
    assert ranges.analytes["platelets"].critical_low <= ranges.analytes["platelets"].bands[0].low


@pytest.mark.parametrize("text", ["", "# our limits, to be filled in\n", "{}\n"])
def test_an_overlay_that_sets_nothing_is_refused_not_applied_as_b12labs_own(cli, tmp_path, text):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text(text)
    for command in (("interpret", "--b12", "300 pmol/L"), ("batch", SAMPLES / "wide_us.csv")):
        result = cli(*command, "--ranges", overlay)
        assert result.exit_code == 2
        assert "sets no limits" in result.stderr and "--ranges" in result.stderr
        assert result.stderr.count("\n") == 1
