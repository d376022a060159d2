"""The text report: the conclusion first, one 80x24 screen by default, everything with --full."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, SAMPLES

NARROW = {"COLUMNS": "80", "LINES": "24"}
WIDE = {"COLUMNS": "200"}


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_the_example_panel_fits_an_80_by_24_terminal(cli):
    result = cli("interpret", SAMPLES / "panel.yaml", "-f", "text", env=NARROW)
    assert result.exit_code == 0, result.stderr
    lines = lines_of(result.stdout)
    assert len(lines) <= 23, result.stdout  # the prompt below keeps the first line on screen
    assert max(len(line) for line in lines) <= 80
    text = result.stdout
    # the measurements, the three implications and one line per finding
    for analyte in ("b12", "platelets", "anc", "hemoglobin", "mcv", "ferritin", "crp"):
        assert any(line.startswith(f"{analyte} ") for line in lines), analyte
    for domain in ("Platelets LOW", "Neutrophils LOW", "Ferritin HIGH"):
        assert any(line.startswith(domain) for line in lines), domain
    findings = cli.json("interpret", SAMPLES / "panel.yaml", "-f", "json")["findings"]
    named, *others = findings  # the urgent one, named in full by the first line
    assert named["severity"] == "urgent"
    assert f"1 urgent: {named['title']}" in " ".join(lines[:2])
    for finding in others:
        assert f"{finding['severity'].upper():<8} {finding['title']}" in lines
    assert "more with --format" not in text
    assert text.rstrip().endswith("Decision support, not a diagnosis.")


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (
            [SAMPLES / "panel.yaml"],
            "P001: B12 DEFICIENT (WHO) · 1 urgent: Pancytopenia with low B12: can mimic "
            "myelodysplasia or leukaemia · 5 advisory · 2 info",
        ),
        (["--b12", "450", "--platelets", "250"], "B12 NORMAL (WHO) · no urgent finding"),
        (
            ["--b12", "160 pmol/L", "--patient-id", "Q7"],
            "Q7: B12 BORDERLINE (WHO) · no urgent finding · 1 advisory",
        ),
        (
            ["--b12", "150 pmol/L", "--guideline", "nice"],
            "B12 BORDERLINE (NICE) · no urgent finding · 1 advisory",
        ),
        (
            ["--platelets", "15", "--anc", "0.3"],
            "B12 UNKNOWN (WHO) · 2 urgent: Critically low platelets",
        ),
    ],
)
def test_the_first_line_gives_status_urgent_count_and_first_urgent_title(cli, args, first_line):
    result = cli("interpret", *args, "-f", "text", env=WIDE)
    assert result.exit_code == 0, result.stderr
    first = lines_of(result.stdout)[0]
    assert first.startswith(first_line), first
    document = cli.json("interpret", *args, "-f", "json")
    urgent = [f for f in document["findings"] if f["severity"] == "urgent"]
    assert (f"{len(urgent)} urgent: {urgent[0]['title']}" in first) if urgent else urgent == []


def test_on_an_80_column_screen_the_conclusion_wraps_but_is_never_cut(cli):
    result = cli("interpret", SAMPLES / "panel.yaml", "-f", "text", env=NARROW)
    opening = " ".join(lines_of(result.stdout)[:2])
    assert opening.startswith("P001: B12 DEFICIENT (WHO) · 1 urgent: ")
    assert "Pancytopenia with low B12: can mimic myelodysplasia or leukaemia" in opening


@pytest.mark.parametrize(
    "args",
    [
        [SAMPLES / "panel.yaml"],
        [SAMPLES / "patient_timeline.yaml", "--as-of", "2026-05-04"],
        ["--b12", "88 pg/mL", "--platelets", "15", "--folate", "2"],
    ],
)
def test_full_shows_every_next_step_detail_and_evidence_of_every_finding(cli, args):
    full = cli("interpret", *args, "-f", "text", "--full", env=NARROW)
    assert full.exit_code == 0, full.stderr
    flowing = " ".join(full.stdout.split())
    document = cli.json("interpret", *args, "-f", "json")
    assert document["findings"]
    for finding in document["findings"]:
        assert f"[{finding['id']}]" in flowing
        assert " ".join(finding["detail"].split()) in flowing
        for step in finding["next_steps"]:
            assert "-> " + " ".join(step.split()) in flowing, step
        for key, value in finding["evidence"].items():
            assert f"{key} {value}" in flowing
    short = cli("interpret", *args, "-f", "text", env=NARROW).stdout
    assert len(lines_of(short)) < len(lines_of(full.stdout))


@pytest.mark.parametrize("full", [[], ["--full"]])
@pytest.mark.parametrize(
    "args",
    [
        [SAMPLES / "panel.yaml"],
        [SAMPLES / "patient_timeline.yaml"],
        ["--platelets", "95"],
        ["--b12", "300", "--patient-id", "P-" + "x" * 150],
    ],
)
def test_no_line_ends_with_a_space_in_a_pipe_or_a_file(cli, tmp_path, args, full):
    piped = cli("interpret", *args, "-f", "text", *full, env=NARROW)
    assert piped.exit_code == 0, piped.stderr
    target = tmp_path / "report.txt"
    written = cli("interpret", *args, "-f", "text", *full, "-o", target, env=NARROW)
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    for text in (piped.stdout, target.read_text(encoding="utf-8")):
        assert [line for line in text.split("\n") if line.endswith(" ")] == []
    assert target.read_text(encoding="utf-8") == piped.stdout


def test_a_long_word_wraps_and_is_never_cut(cli):
    patient = "PATIENT-" + "0123456789" * 12
    result = cli("interpret", "--b12", "300", "--patient-id", patient, "-f", "text", env=NARROW)
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert patient in "".join(result.stdout.split("\n"))
    assert max(len(line) for line in lines_of(result.stdout)) <= 80


def test_ids_join_the_finding_lines_when_the_screen_is_wide_enough(cli):
    wide = cli("interpret", SAMPLES / "panel.yaml", "-f", "text", env={"COLUMNS": "120"})
    assert (
        "ADVISORY Low platelets consistent with B12 deficiency [plt-low-consistent-with-b12]"
        in wide.stdout
    )
    narrow = cli("interpret", SAMPLES / "panel.yaml", "-f", "text", env=NARROW)
    assert "[plt-low-consistent-with-b12]" not in narrow.stdout


def test_a_timeline_still_shows_its_course_in_the_short_view(cli):
    result = cli(
        "interpret", SAMPLES / "patient_timeline.yaml", "-f", "text", "--as-of", "2026-05-04"
    )
    assert result.exit_code == 0
    text = result.stdout
    assert lines_of(text)[0].startswith("S201: B12 NORMAL (WHO) · no urgent finding")
    assert "2026-03-13 d11" in text and "B12 therapy started 2026-03-02" in text
    assert "day 63 of B12 therapy" in text


def test_a_report_written_with_o_is_the_same_as_on_stdout(cli, tmp_path):
    target = tmp_path / "r.json"
    result = cli("interpret", SAMPLES / "panel.yaml", "-f", "json", "-o", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(target.read_text())["b12_status"] == "deficient"


def test_the_report_never_overwrites_its_input(cli, tmp_path):
    panel = tmp_path / "panel.yaml"
    panel.write_text((SAMPLES / "panel.yaml").read_text())
    result = cli("interpret", panel, "-o", panel)
    assert result.exit_code == 2
    assert "same file" in result.stderr
    assert panel.read_text() == (SAMPLES / "panel.yaml").read_text()


def test_the_readme_shows_the_text_report_as_b12lab_prints_it(cli):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = readme.split("(`examples/panel.yaml`, `COLUMNS=80`):\n\n```text\n", 1)[1]
    shown = shown.split("```", 1)[0]
    printed = cli("interpret", SAMPLES / "panel.yaml", "--format", "text", env=NARROW).stdout
    assert printed == shown
