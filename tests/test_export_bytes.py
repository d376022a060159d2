"""Real exports at the byte and line level: encodings, Excel's habits, exact line numbers."""

from __future__ import annotations

import codecs
import csv
import io
import subprocess
import sys
import time

import pytest
from conftest import one_clear_line

WIDE = "patient_id,b12,platelets\nP1,100,95\nP2,300,200\nP3,120,140\n"


def rows_of(result) -> list[dict]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.mark.parametrize(
    ("body", "lines", "ids"),
    [
        # One malformed line (unbalanced quote) and the records after it.
        (
            'patient_id,b12\nP1,100\nP2,"100\nP3,300\nP4,120\n',
            ["2", "3", "4", "5"],
            ["P1", "P2", "P3", "P4"],
        ),
        # A quote closed in the wrong place.
        ('patient_id,b12\nP1,100\nP2,1"0"0\nP3,300\nP4,120\n', None, None),
        # Blank lines count as lines.
        ("patient_id,b12\n\nP1,100\n\n\nP2,300\n", ["3", "6"], ["P1", "P2"]),
        # A legal quoted break: the record is numbered by the line it ends on.
        ('patient_id,b12\n"P\n1",100\nP2,300\n', ["3", "4"], ["P 1", "P2"]),
    ],
)
def test_line_numbers_are_exact_after_a_malformed_line(cli, tmp_path, body, lines, ids):
    path = tmp_path / "in.csv"
    path.write_text(body)
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--errors", errors)
    rows = rows_of(result)
    if lines is None:  # the unreadable line 3; exact numbers for every other line
        assert [r["line"] for r in rows] == ["2", "3", "4", "5"]
        assert [r["patient_id"] for r in rows][2:] == ["P3", "P4"]
        return
    assert [r["line"] for r in rows] == lines
    assert [r["patient_id"].replace("\n", " ") for r in rows] == ids


def test_error_file_line_numbers_match_the_file(cli, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('patient_id,b12\nP1,"100\nP2,abc\nP3,300\nP4,xyz\n')
    errors = tmp_path / "errors.csv"
    result = cli("batch", path, "--errors", errors)
    assert result.exit_code == 3
    error_rows = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert [r["line"] for r in error_rows if r["column"] == "b12"] == ["2", "3", "5"]
    assert [r["line"] for r in rows_of(result)] == ["2", "3", "4", "5"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_excel_unicode_text_exports_are_read_without_a_stray_bom(cli, tmp_path, encoding, newline):
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    text = "Patient ID\tB12\tPlatelets\nP1\t100\t95\nP2\t300\t200\n".replace("\n", newline)
    path = tmp_path / "unicode.txt"
    path.write_bytes(bom + text.encode(encoding))
    result = cli("batch", path)
    assert result.exit_code == 0, result.stderr
    rows = rows_of(result)
    assert [r["patient_id"] for r in rows] == ["P1", "P2"]
    assert [r["line"] for r in rows] == ["2", "3"]
    assert [r["b12_status"] for r in rows] == ["deficient", "normal"]
    assert "columns not used" not in result.stderr


@pytest.mark.parametrize(
    ("first", "text"),
    [
        ("sep=;", "patient_id;b12;ferritin\nP1;100;1,5\n"),
        ('"sep=;"', "patient_id;b12;ferritin\nP1;100;1,5\n"),
        ("sep=,", "patient_id,b12,ferritin\nP1,100,15\n"),
        ("sep=\t", "patient_id\tb12\tferritin\nP1\t100\t15\n"),
    ],
)
def test_excel_sep_line_sets_the_delimiter_and_is_not_the_header(cli, tmp_path, first, text):
    path = tmp_path / "sep.csv"
    path.write_text(f"{first}\n{text}")
    result = cli("batch", path)
    assert result.exit_code == 0, result.stderr
    rows = rows_of(result)
    assert [(r["line"], r["patient_id"], r["b12_status"]) for r in rows] == [
        ("3", "P1", "deficient")
    ]


def test_a_header_cell_with_a_line_break_keeps_its_unit(cli, tmp_path):
    path = tmp_path / "broken_header.csv"
    path.write_text('patient_id,"B12\n(pg/mL)","Platelets\r\n(10^9/L)"\nP1,250,95\nP2,900,200\n')
    result = cli("batch", path, "-f", "ndjson")
    assert result.exit_code == 0, result.stderr
    import json

    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["lines"] for r in records] == [[4], [5]]
    b12 = records[0]["measurements"][0]
    assert b12["analyte"] == "b12"
    assert b12["value"] == pytest.approx(184.5, abs=0.1)  # 250 pg/mL in pmol/L


def test_a_header_quote_never_closed_is_exit_2(cli, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text('patient_id,"B12\nP1,100\n')
    result = cli("batch", path)
    assert result.exit_code == 2
    assert "never closed" in one_clear_line(result)


def test_an_endless_line_before_the_header_is_exit_2_at_once(cli):
    started = time.perf_counter()
    result = cli("batch", "/dev/zero")
    assert time.perf_counter() - started < 5
    assert result.exit_code == 2
    assert "longer than 1,048,576 characters" in one_clear_line(result)


def test_a_100_megabyte_line_costs_bounded_memory_and_the_run_goes_on(tmp_path):
    path = tmp_path / "long.csv"
    with path.open("wb") as handle:
        handle.write(b"patient_id,b12\nP1,")
        chunk = b"9" * 2**20
        for _ in range(100):
            handle.write(chunk)
        handle.write(b"\nP2,100\n")
    probe = (
        "import resource, sys\n"
        "from b12lab.cli import app\n"
        "code = app(sys.argv[1:], standalone_mode=False)\n"
        # VmHWM is this process's own peak; ru_maxrss may carry the forking parent's.
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "print(peak[0] if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "batch", str(path), "-o", str(tmp_path / "out.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    peak_kib, code = result.stdout.split()
    assert code == "3"
    assert int(peak_kib) < 150_000  # the line is 100 MiB; memory stays far below it
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert [(r["line"], r["patient_id"]) for r in rows] == [("2", ""), ("3", "P2")]


def test_an_overlong_line_inside_an_open_quote_loses_no_line(cli, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b'patient_id,b12\nP1,"100\n' + b"9" * (2**20 + 10) + b"\nP3,300\n")
    result = cli("batch", path)
    rows = rows_of(result)
    assert [r["line"] for r in rows] == ["2", "3", "4"]
    assert "longer than" in rows[1]["error"]
