"""The format of a written file follows its name unless --format says otherwise."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import SAMPLES

PANEL = SAMPLES / "panel.yaml"


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "looks_right"),
    [
        ("report.html", lambda t: t.lstrip().lower().startswith("<!doctype html")),
        ("report.htm", lambda t: t.lstrip().lower().startswith("<!doctype html")),
        ("report.md", lambda t: t.startswith("#") and not is_json(t)),
        ("report.json", is_json),
        ("report.txt", lambda t: "B12" in t and not is_json(t) and "\x1b" not in t),
        ("REPORT.HTML", lambda t: t.lstrip().lower().startswith("<!doctype html")),
    ],
)
def test_interpret_writes_the_format_its_output_file_names(cli, tmp_path, name, looks_right):
    target = tmp_path / name
    result = cli("interpret", PANEL, "-o", target)
    assert result.exit_code == 0, result.stderr
    assert looks_right(target.read_text()), target.read_text()[:200]
    assert result.stderr == ""  # nothing to say: the name was clear


def test_format_given_wins_over_the_extension(cli, tmp_path):
    target = tmp_path / "report.html"
    assert cli("interpret", PANEL, "-o", target, "--format", "json").exit_code == 0
    assert is_json(target.read_text())


def test_an_unknown_extension_keeps_json_and_says_so(cli, tmp_path):
    target = tmp_path / "report.out"
    result = cli("interpret", PANEL, "-o", target)
    assert result.exit_code == 0
    assert is_json(target.read_text())
    assert "'.out'" in result.stderr and "writing json" in result.stderr
    assert "--format" in result.stderr


@pytest.mark.parametrize(
    ("name", "records"),
    [
        ("out.csv", lambda t: list(csv.DictReader(io.StringIO(t)))),
        ("out.ndjson", lambda t: [json.loads(line) for line in t.splitlines()]),
        ("out.jsonl", lambda t: [json.loads(line) for line in t.splitlines()]),
        ("out.json", json.loads),
    ],
)
def test_batch_writes_the_format_its_output_file_names(cli, tmp_path, name, records):
    target = tmp_path / name
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert len(records(target.read_text())) == 5
    assert "note: " + str(target) not in result.stderr


def test_batch_unknown_extension_keeps_csv_and_says_so(cli, tmp_path):
    target = tmp_path / "out.dat"
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target)
    assert result.exit_code == 0
    assert target.read_text().startswith("line,patient_id,")
    assert "'.dat': writing csv" in result.stderr
