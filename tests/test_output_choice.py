"""The format of a written file follows its name unless --format says otherwise."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import SAMPLES, one_clear_line

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
    result = cli("interpret", PANEL, "-o", target, "--format", "json")
    assert result.exit_code == 0
    assert is_json(target.read_text())
    assert f"note: -o {target} names html output; it holds json" in result.stderr


@pytest.mark.parametrize(
    ("name", "given"), [("report.json", "fhir"), ("report.txt", "markdown"), ("r.md", "markdown")]
)
def test_a_name_that_fits_the_format_given_is_not_noted(cli, tmp_path, name, given):
    result = cli("interpret", PANEL, "-o", tmp_path / name, "--format", given)
    assert result.exit_code == 0
    assert "names" not in result.stderr


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


@pytest.mark.parametrize(
    ("name", "given", "named", "renamed"),
    [
        ("results.parquet", "csv", "parquet", "results.csv"),
        ("results.parquet", "ndjson", "parquet", "results.ndjson"),
        ("results.csv", "parquet", "csv", "results.parquet"),
        ("results.txt", "parquet", "text", "results.parquet"),
    ],
)
def test_batch_refuses_binary_data_under_a_text_name_and_the_reverse(
    cli, tmp_path, name, given, named, renamed
):
    """A results.parquet that holds CSV text (or the reverse) would be read by the next
    tool as what its name says: refused before anything is written, naming both."""
    target = tmp_path / name
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target, "--format", given)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert f"names {named} output" in line and f"--format {given}" in line
    assert "drop --format" in line and str(tmp_path / renamed) in line
    assert not target.exists()


@pytest.mark.parametrize(
    ("name", "given", "named"),
    [("out.csv", "ndjson", "csv"), ("out.json", "csv", "json"), ("out.ndjson", "csv", "ndjson")],
)
def test_batch_writes_the_text_format_asked_for_under_another_text_name_and_says_so(
    cli, tmp_path, name, given, named
):
    target = tmp_path / name
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target, "--format", given)
    assert result.exit_code == 0, result.stderr
    first = target.read_text().splitlines()[0]
    assert first.startswith("line,") if given == "csv" else json.loads(first)
    assert f"note: -o {target} names {named} output; it holds {given}" in result.stderr


@pytest.mark.parametrize(
    ("name", "given"),
    [
        ("out.dat", "csv"),
        ("out.txt", "csv"),
        ("out.txt", "ndjson"),
        ("out.ndjson", "fhir-ndjson"),
        ("out.json", "ndjson"),
    ],
)
def test_batch_format_given_with_a_name_that_does_not_contradict_it(cli, tmp_path, name, given):
    """An extension no format claims, a .txt file of any text format, and a JSON name
    for any JSON format (FHIR bundles or records one per line) are written as --format
    says, with no note about the name."""
    target = tmp_path / name
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target, "--format", given)
    assert result.exit_code == 0, result.stderr
    first = target.read_text().splitlines()[0]
    assert first.startswith("line,") if given == "csv" else json.loads(first)
    assert "names" not in result.stderr


def test_batch_refuses_an_errors_file_named_for_parquet_and_notes_another_text_name(cli, tmp_path):
    """The --errors file is CSV whatever it is called: a .parquet name is refused with the
    name to give instead; a .json name is written as CSV, and the run says so."""
    refused = cli(
        "batch",
        SAMPLES / "wide_us.csv",
        "-o",
        tmp_path / "out.csv",
        "--errors",
        tmp_path / "rejected.parquet",
    )
    assert refused.exit_code == 2
    line = one_clear_line(refused)
    assert "--errors" in line and "always CSV" in line
    assert str(tmp_path / "rejected.csv") in line
    assert not (tmp_path / "out.csv").exists()
    errors = tmp_path / "e.json"
    noted = cli("batch", SAMPLES / "wide_us.csv", "-o", tmp_path / "out.csv", "--errors", errors)
    assert noted.exit_code == 0
    assert (tmp_path / "e.json").read_text().startswith("line,")
    assert f"--errors {tmp_path / 'e.json'} names json output; it holds csv" in noted.stderr


def test_python_batch_options_refuse_an_output_named_for_another_format():
    from b12lab.batch import BatchOptions
    from b12lab.errors import InputError

    with pytest.raises(InputError, match="names parquet output"):
        BatchOptions(output="results.parquet")  # the default format is csv
    BatchOptions(output="results.parquet", output_format="parquet")
    named = BatchOptions(output="results.json")  # text under another text name: said
    assert named.name_notes() == [
        "-o results.json names json output; it holds csv (as --format says)"
    ]
