"""The command line through Typer's test runner: every command and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLES, one_clear_line

from b12lab import __version__


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_interpret_flags_to_json(cli):
    document = cli.json(
        "interpret",
        "--b12",
        "180 pg/mL",
        "--platelets",
        "95 x10^9/L",
        "--anc",
        "1.1",
        "--ferritin",
        "450 ng/mL",
        "--sex",
        "female",
        "--date",
        "2026-11-20",
        "--format",
        "json",
    )
    assert document["b12_status"] == "deficient"
    assert document["panel_date"] == "2026-11-20"
    ids = [f["id"] for f in document["findings"]]
    assert "plt-low-consistent-with-b12" in ids
    assert "neut-low-consistent-with-b12" in ids
    assert "fer-may-mask-iron-deficiency" in ids


def test_interpret_defaults_to_json_when_not_a_terminal(cli):
    result = cli("interpret", "--b12", "180 pg/mL")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["b12_status"] == "deficient"


def test_interpret_panel_file_and_flags_override_it(cli):
    panel = SAMPLES / "panel.yaml"
    document = cli.json("interpret", panel, "-f", "json")
    assert document["patient_id"] == "P001"
    assert document["b12_status"] == "deficient"
    overridden = cli.json("interpret", panel, "--b12", "400 pg/mL", "-f", "json")
    assert overridden["b12_status"] == "normal"
    assert "plt-low-not-explained-by-b12" in [f["id"] for f in overridden["findings"]]


def test_interpret_reads_a_panel_from_stdin(cli):
    document = cli.json(
        "interpret", "-", "-f", "json", input="b12: 88 pg/mL\nplatelets: 600 K/uL\nsex: m\n"
    )
    assert document["b12_status"] == "deficient"
    assert "plt-high-not-caused-by-b12-deficiency" in [f["id"] for f in document["findings"]]


def test_interpret_json_panel_file_is_accepted(cli, tmp_path):
    path = tmp_path / "panel.json"
    path.write_text(json.dumps({"b12": "120 pmol/L", "ferritin": "12 ug/L"}))
    document = cli.json("interpret", path, "-f", "json")
    assert "fer-low-combined-deficiency" in [f["id"] for f in document["findings"]]


def test_therapy_start_and_date_give_days_on_therapy(cli):
    document = cli.json(
        "interpret",
        "--platelets",
        "620",
        "--date",
        "2026-11-20",
        "--b12-therapy-start",
        "2026-11-01",
        "-f",
        "json",
    )
    rebound = next(f for f in document["findings"] if f["id"] == "plt-high-rebound-on-therapy")
    assert rebound["evidence"]["days_on_therapy"] == "19"


def test_guideline_nice_is_named_in_the_report(cli):
    document = cli.json("interpret", "--b12", "150 pmol/L", "--guideline", "nice", "-f", "json")
    assert document["guideline"] == "nice"
    assert document["b12_status"] == "borderline"
    assert "holotc" in document["missing"]


def test_text_report_has_every_section_and_no_color_off_a_terminal(cli):
    result = cli("interpret", SAMPLES / "panel.yaml", "--format", "text")
    assert result.exit_code == 0
    text = result.stdout
    for needle in (
        "b12",
        "B12 DEFICIENT (WHO)",
        "Platelets",
        "Neutrophils",
        "Ferritin",
        "1 urgent: Pancytopenia",
        "would sharpen: folate",
        "not a diagnosis",
        "148-664",
    ):
        assert needle in text
    assert "\x1b[" not in text
    assert text.index("1 urgent") < text.index("ADVISORY") < text.index("INFO")


def test_text_report_says_when_a_unit_was_assumed(cli):
    result = cli("interpret", "--platelets", "95", "-f", "text")
    assert "unit assumed" in result.stdout
    assert "no unit given" in result.stdout


def test_markdown_report(cli):
    result = cli("interpret", SAMPLES / "panel.yaml", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("## b12lab report")
    assert "| b12 | 180 pg/mL | 132.8 pmol/L | 148-664 | low |" in result.stdout
    assert "`pancytopenia-b12-mimics-mds`" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["interpret", "--b12", "180 parsecs"], "use one of: pmol/L, pg/mL, ng/L"),
        (["interpret", "--platelets", "95 mg/L"], "is not a unit of Platelet count"),
        (["interpret", "--platelets", "250000 x10^9/L"], "did you mean 250000 /uL"),
        (["interpret", "--b12", "abc"], "is not a number"),
        (["interpret", "--sex", "x", "--b12", "100"], "use female or male"),
        (["interpret", "--date", "2026-02-30", "--b12", "100"], "does not exist"),
        (["interpret", "--format", "xml", "--b12", "100"], "'--format'"),
        (["interpret", "--bogus"], "No such option"),
        (["interpret"], "no lab values given"),
        (["interpret", "no/such/file.yaml"], "does not exist"),
        (["interpret", "--b12", "100", "--ranges", "no/such.yaml"], "does not exist"),
        (["rules", "plt-high"], "no rule 'plt-high'"),
        (["convert", "300", "pg/mL", "--to", "furlongs", "--analyte", "b12"], "furlongs"),
        (["convert", "5", "mg/L"], "add --analyte"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(cli, args, words):
    result = cli(*args)
    assert result.exit_code == 2
    assert words in one_clear_line(result)
    assert result.stdout == ""


def test_unknown_key_in_panel_file_is_an_input_error(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("b13: 180 pg/mL\n")
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "unknown key 'b13'" in one_clear_line(result)


def test_invalid_yaml_is_an_input_error(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("b12: [180\n")
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "not valid YAML" in one_clear_line(result)


def test_rules_lists_the_catalogue_and_explains_one(cli):
    listing = cli("rules")
    assert listing.exit_code == 0
    assert "plt-high-rebound-on-therapy" in listing.stdout
    detail = cli("rules", "fer-may-mask-iron-deficiency")
    assert detail.exit_code == 0
    assert "Fires when:" in detail.stdout
    assert "solmaz-2015-iron" in detail.stdout
    assert "Indian J Hematol Blood Transfus 2015" in detail.stdout  # the full reference
    document = cli.json("rules", "plt-low-consistent-with-b12", "--format", "json")
    assert document["severity"] == "advisory"
    assert "doi:10.1056/NEJMcp1113996" in document["sources"]["stabler-2013-b12"]


def test_no_internal_document_name_in_the_data_file_code_or_output(cli):
    from b12lab.ranges import load_ranges
    from b12lab.rules import RULES

    ranges = load_ranges()
    for key, text in ranges.sources.items():
        assert "seed" not in key.lower() and "seed document" not in text.lower(), key
    for rule in RULES.values():
        assert rule.sources, rule.id
        assert all(source in ranges.sources for source in rule.sources), rule.id
        assert not any(source.startswith("seed") for source in rule.sources), rule.id
    text = (Path(__file__).parents[1] / "b12lab" / "reference_ranges.yaml").read_text()
    assert "seed" not in text.lower()
    listing = cli("rules", "--format", "json").stdout
    assert "seed" not in listing.lower()


def test_ranges_shows_molar_masses_and_accepted_units(cli):
    result = cli("ranges")
    assert result.exit_code == 0
    assert "1355.4 g/mol" in result.stdout
    document = cli.json("ranges", "--format", "json")
    assert document["analytes"]["b12"]["molar_mass_g_per_mol"] == 1355.4
    assert "pg/mL" in document["analytes"]["b12"]["units"]
    assert document["guideline_profiles"]["nice"]["b12_deficient_below"]["source"] == "nice-ng239"


def test_convert_text_and_json(cli):
    result = cli("convert", "300", "pg/mL", "--to", "pmol/L", "--analyte", "b12")
    assert result.exit_code == 0
    assert result.stdout.strip() == "221.3 pmol/L"
    document = cli.json(
        "convert", "300 pg/mL", "--to", "pmol/L", "--analyte", "b12", "--format", "json"
    )
    assert document == {"value": 221.3, "unit": "pmol/L", "analyte": "b12"}
    # Without --analyte, the units alone decide when only one analyte lists both.
    assert cli("convert", "9", "g/dL", "--to", "g/L").stdout.strip() == "90 g/L"
    assert cli("convert", "300", "pg/mL", "--to", "pmol/L").stdout.strip() == "221.3 pmol/L"


def test_python_dash_m_runs_the_same_cli():
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "b12lab",
            "convert",
            "300",
            "pg/mL",
            "--to",
            "pmol/L",
            "--analyte",
            "b12",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "221.3 pmol/L"


def test_a_panel_dated_after_the_evaluation_date_is_warned_of(cli):
    typo = cli.json(
        "interpret",
        "--b12",
        "300 pmol/L",
        "--date",
        "2062-03-01",
        "--as-of",
        "2026-11-20",
        "--format",
        "json",
    )
    assert (
        "the panel date is after the evaluation date 2026-11-20 (today, or --as-of): check the date"
    ) in typo["warnings"]
    same_day = cli.json(
        "interpret",
        "--b12",
        "300 pmol/L",
        "--date",
        "2026-11-20",
        "--as-of",
        "2026-11-20",
        "--format",
        "json",
    )
    assert not [w for w in same_day["warnings"] if w.startswith("the panel date")]


def test_a_timeline_evaluated_before_its_panels_says_so(cli):
    report = cli.json(
        "interpret", SAMPLES / "patient_timeline.yaml", "--as-of", "2026-03-01", "--format", "json"
    )
    assert report["panel_date"] == "2026-05-04"  # the latest panel, still the one judged
    assert any(
        w.startswith("the panel date is after the evaluation date 2026-03-01")
        for w in report["warnings"]
    )


def test_panels_dated_after_the_evaluation_date_each_keep_their_own_date(cli, tmp_path):
    """Two such panels that decide alike share their decision: nothing in it may
    quote either one's date."""
    export = tmp_path / "labs.csv"
    export.write_text(
        "patient_id,date,b12 (pmol/L),platelets (10^9/L)\n"
        "P1,2062-10-01,300,210\nP2,2063-01-05,300,210\nP3,2026-10-01,300,210\n"
    )
    for output_format in ("csv", "ndjson"):
        result = cli("batch", export, "--as-of", "2026-11-20", "--format", output_format)
        assert result.exit_code == 0, result.stderr
        if output_format == "csv":
            rows = [r.split(",") for r in result.stdout.splitlines()[1:]]
            dates = [r[2] for r in rows]
            warned = ["the panel date is after" in r for r in result.stdout.splitlines()[1:]]
        else:
            records = [json.loads(line) for line in result.stdout.splitlines()]
            dates = [r["panel_date"] for r in records]
            warned = [any("the panel date is after" in w for w in r["warnings"]) for r in records]
        assert dates == ["2062-10-01", "2063-01-05", "2026-10-01"]
        assert warned == [True, True, False]
        assert "2062" not in result.stdout.replace("2062-10-01", "", 1)
