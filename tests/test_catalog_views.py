"""`rules` and `ranges` read by people and by programs: never cut, unambiguous intervals."""

from __future__ import annotations

import csv
import io
import json

import pytest

from b12lab.render.catalog import critical_text, interval_text
from b12lab.rules import RULES


def test_rules_text_lists_every_id_whole_for_awk(cli):
    result = cli("rules")
    assert result.exit_code == 0
    first_words = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert sorted(first_words) == sorted(RULES)
    assert not any(line != line.rstrip() for line in result.stdout.splitlines())


@pytest.mark.parametrize("command", [["rules"], ["ranges"], ["rules", "plt-critical-low"]])
def test_csv_and_json_formats_parse(cli, command):
    as_csv = cli(*command, "--format", "csv")
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows
    as_json = cli(*command, "--format", "json")
    assert as_json.exit_code == 0
    json.loads(as_json.stdout)


def test_rules_csv_has_one_row_per_rule(cli):
    rows = list(csv.DictReader(io.StringIO(cli("rules", "-f", "csv").stdout)))
    assert [r["id"] for r in rows] == [r["id"] for r in rows if r["id"] in RULES]
    assert len(rows) == len(RULES)


@pytest.mark.parametrize(
    ("low", "high", "text"),
    [(148, 664, "148-664"), (6.8, None, ">= 6.8"), (None, 5, "<= 5"), (None, None, "none")],
)
def test_intervals_never_read_as_negative_numbers(low, high, text):
    assert interval_text(low, high, 1) == text


def test_critical_limits_say_their_side():
    assert critical_text(20, 1000, 0) == "< 20, >= 1000"


def test_ranges_text_has_one_line_per_interval_and_units_on_that_line(cli):
    result = cli("ranges")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    platelets = [line for line in lines if line.startswith("platelets ")]
    assert len(platelets) == 1
    assert "150-450" in platelets[0] and "K/uL" in platelets[0] and "< 20, >= 1000" in platelets[0]
    assert not any(" -" in line.split("  ")[0] for line in lines)
    assert len(lines) < 100


@pytest.mark.parametrize(
    ("values", "fail_on", "code"),
    [
        ("B12 (pmol/L),PLT\n120,95\n", "advisory", 4),
        ("B12 (pmol/L),PLT\n400,250\n", "advisory", 0),
        ("B12 (pmol/L),PLT\n120,95\n", "urgent", 0),
        ("B12 (pmol/L),PLT\n120,10\n", "urgent", 4),
    ],
)
def test_fail_on_takes_advisory_or_urgent(cli, tmp_path, values, fail_on, code):
    path = tmp_path / "e.csv"
    path.write_text(values)
    result = cli("batch", path, "--fail-on", fail_on)
    assert result.exit_code == code, result.stderr


def test_the_summary_pluralizes(cli, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("B12 (pmol/L),PLT (10^9/L)\n120,10\n")
    result = cli("batch", path)
    assert "1 panel; B12 status: deficient 1; 1 urgent finding in 1 panel; 0 panels with" in (
        result.stderr
    )


@pytest.mark.parametrize("width", [80, 100])
def test_ranges_wrap_to_a_terminal_with_hanging_indents(width):
    from b12lab.ranges import load_ranges
    from b12lab.render.catalog import ranges_text

    ranges = load_ranges()
    lines = ranges_text(ranges, width).splitlines()
    # A web address is never split (it must stay copyable): it may stand alone on a longer line.
    assert all(len(line) <= width or len(line.split()) == 1 for line in lines)
    assert all(line == line.rstrip() for line in lines)
    start = lines.index(next(line for line in lines if line.startswith("platelets ")))
    row = [lines[start]]
    row += [line for line in lines[start + 1 : start + 6] if line.startswith("    ")][:3]
    joined = " ".join(part.strip() for part in row)
    assert "150-450" in joined and "< 20, >= 1000" in joined and "K/uL" in joined
    assert any(line.startswith(" " * 16) and line.strip() for line in row[1:])
    assert "\x00" not in "\n".join(lines)
    # what a program reads (no width) keeps one line per interval
    unwrapped = ranges_text(ranges).splitlines()
    assert sum(line.startswith("platelets ") for line in unwrapped) == 1


def test_one_rule_wraps_with_hanging_indents_and_no_trailing_space(cli):
    result = cli("rules", "fer-may-mask-iron-deficiency", env={"COLUMNS": "60"})
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert all(line == line.rstrip() for line in lines), lines
    says = lines.index(next(line for line in lines if line.startswith("It says: ")))
    assert lines[says + 1].startswith("    ") and lines[says + 1][4] != " "
    steps = [i for i, line in enumerate(lines) if line.startswith("  - ")]
    assert steps and any(lines[i + 1].startswith("    ") for i in steps)
