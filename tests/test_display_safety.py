"""Input never acts on a terminal or a spreadsheet: escapes shown, formulas neutralized."""

from __future__ import annotations

import csv
import io
import re

import pytest

from b12lab.render.rows import spreadsheet_safe
from b12lab.render.safe import escape_controls

HOSTILE_ID = "P1\x1b[2J\x1b]0;owned\x07\u202eevil\x9b31m"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain Müller 95 ×10⁹/L", "plain Müller 95 ×10⁹/L"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\u202eright-to-left", "\\u202eright-to-left"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("c1\x9bcontrol", "c1\\x9bcontrol"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_controls_are_shown_as_escapes(text, shown):
    assert escape_controls(text) == shown


@pytest.mark.parametrize("output_format", ["text", "markdown"])
def test_escape_sequences_in_a_patient_id_never_reach_the_terminal(cli, output_format):
    result = cli("interpret", "--b12", "300", "--patient-id", HOSTILE_ID, "-f", output_format)
    assert result.exit_code == 0
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in result.stdout
    # Markdown also escapes the bracket, which would otherwise start a link.
    assert ("P1\\x1b\\[2J" if output_format == "markdown" else "P1\\x1b[2J") in result.stdout


def test_header_names_and_values_on_stderr_are_escaped(cli, tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text("patient_id,b12,\x1b]0;owned\x07notes\u202e\nP1,100,x\n", encoding="utf-8")
    result = cli("batch", path)
    assert result.exit_code == 0
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert "\\x1b]0;owned" in result.stderr


def test_an_error_line_escapes_what_it_quotes(cli):
    result = cli("interpret", "--b12", "300", "--sex", "\x1b[2Jx")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[2Jx" in result.stderr


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "＝HYPERLINK()",
        "＋1",
        "－1",
        "＠SUM(A1)",
        "\ufeff=1+1",
        "\u200b=1+1",
        "\u200d+1",
        "\xa0=1",
        "\u2060@x",
        " =1",
        "\u200b\ufeff\xa0＝1",
    ],
)
def test_formula_triggers_are_neutralized_even_when_disguised(cell):
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["P1", "Müller", "1=1", "a-b", "", "\u200b", "２"])
def test_ordinary_cells_are_left_alone(cell):
    assert spreadsheet_safe(cell) == cell


def test_every_csv_written_neutralizes_disguised_formulas(cli, tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text(
        "patient_id,date,b12\n\ufeff=cmd,2026-01-01,100\n＝1+1,2026-01-01,\u200b=2+2\n",
        encoding="utf-8",
    )
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--errors", errors)
    assert result.exit_code == 3
    output_rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["patient_id"] for r in output_rows] == ["'\ufeff=cmd", "'＝1+1"]
    error_rows = list(csv.DictReader(io.StringIO(errors.read_text(encoding="utf-8"))))
    assert [r["value"] for r in error_rows] == ["'\u200b=2+2"]


def test_markdown_shows_html_and_links_from_the_input_as_text(cli):
    hostile = "<script>alert(1)</script>[x](javascript:alert(1))"
    result = cli("interpret", "--b12", "300", "--patient-id", hostile, "-f", "markdown")
    assert result.exit_code == 0
    assert "<script>" not in result.stdout
    assert not re.search(r"(?<!\\)\]\(", result.stdout)  # no link is formed
    assert "\\<script\\>alert(1)\\</script\\>\\[x\\](javascript:alert(1))" in result.stdout


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_csv_header_cells_are_neutralized_like_every_other_cell(cli, tmp_path, layout):
    evil = '=HYPERLINK("http://evil/";"x")'
    path = tmp_path / "export.csv"
    if layout == "wide":
        path.write_text(
            f'patient_id,date,b12,"{evil.replace(chr(34), 2 * chr(34))}"\n'
            "p1,2026-01-01,180 pmol/L,a\np1,2026-01-02,x,b\n",
            encoding="utf-8",
        )
    else:
        path.write_text(
            f'patient_id,date,test,value,"{evil.replace(chr(34), 2 * chr(34))}"\n'
            "p1,2026-01-01,b12,180,a\np2,2026-01-01,b12,x,b\n",
            encoding="utf-8",
        )
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--keep", evil, "--errors", errors)
    assert result.exit_code == 3, result.stderr
    header = next(csv.reader(io.StringIO(result.stdout)))
    assert "'" + evil in header
    for written in (result.stdout, errors.read_text(encoding="utf-8")):
        for row in csv.reader(io.StringIO(written)):
            assert all(spreadsheet_safe(cell) == cell for cell in row), row


def test_csv_catalog_header_cells_are_neutralized():
    from b12lab.render.catalog import csv_text

    header = next(csv.reader(io.StringIO(csv_text(("=1+1", "name"), [("a", "b")]))))
    assert header == ["'=1+1", "name"]
