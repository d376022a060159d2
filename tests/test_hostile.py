"""Hostile and broken input: never a crash, a hang, an executed tag, or a lost row."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SAMPLES, one_clear_line


def test_yaml_python_tags_are_never_executed(cli, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "tag.yaml"
    path.write_text(f'b12: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert "YAML tag" in one_clear_line(result)
    assert not marker.exists()


def test_yaml_tags_in_a_ranges_overlay_are_refused(cli, tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("thresholds: !!python/object/new:dict {}\n")
    result = cli("ranges", "--ranges", path)
    assert result.exit_code == 2
    assert "YAML tag" in one_clear_line(result)


def alias_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("interpret", alias_bomb() + "b12: *l8\n"),
        ("interpret", "b12: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("interpret", "panels:\n" + "".join("  " * n + "- \n" for n in range(1, 400))),
        (
            "ranges",
            alias_bomb() + "analytes:\n  b12:\n    aliases: *l8\n",
        ),
        ("ranges", "thresholds: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"),
    ],
)
def test_alias_bombs_and_deep_nesting_end_quickly_with_exit_2(cli, tmp_path, command, text):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    started = time.perf_counter()
    args = ("interpret", path) if command == "interpret" else ("ranges", "--ranges", path)
    result = cli(*args)
    assert time.perf_counter() - started < 5
    assert result.exit_code == 2
    one_clear_line(result)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00\x01\x02binary\xff\xfe", "binary data"),
        (b"", "is empty"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"b12: [180\n", "not valid YAML"),
        (b"\xff\xfeb\x001\x002\x00", "must be a mapping"),  # UTF-16 text, read as such
        (b"\xff\xfeb\x00\x00\xd8", "not valid UTF-16"),  # a lone surrogate
    ],
)
def test_junk_panel_files_get_a_specific_message(cli, tmp_path, content, words):
    path = tmp_path / "junk.yaml"
    path.write_bytes(content)
    result = cli("interpret", path)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_panel_file_with_its_byte_order_mark_is_read(cli, tmp_path, encoding):
    """Windows PowerShell's `>` writes UTF-16 with a byte-order mark."""
    text = "b12: 180 pg/mL\nplatelets: 95 10^9/L\n"
    data = text.encode(encoding)
    if encoding != "utf-16":  # the explicit-endian codecs write no mark of their own
        data = "\ufeff".encode(encoding) + data
    path = tmp_path / "panel.yaml"
    path.write_bytes(data)
    report = cli.json("interpret", path, "--format", "json")
    assert [(m["analyte"], m["input"]) for m in report["measurements"]] == [
        ("b12", "180 pg/mL"),
        ("platelets", "95 10^9/L"),
    ]
    assert report["b12_status"] == "deficient"


def test_binary_junk_as_an_export_is_refused(cli, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 20)
    result = cli("batch", path)
    assert result.exit_code == 2
    assert "not a CSV text file" in one_clear_line(result)


def test_nul_bytes_inside_an_export_are_removed_and_noted(cli, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"patient_id,b12 (pmol/L)\nP1,1\x0000\nP2,200\n")
    result = cli("batch", path)
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["b12_status"] for r in rows] == ["deficient", "borderline"]
    assert "NUL" in result.stderr


def test_ragged_rows_and_an_unclosed_quote_lose_no_row(cli, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text('patient_id,b12,platelets\nR1,100\nR2,100,95,extra\nR3,"100,95\nR4,300,200\n')
    result = cli("batch", path)
    assert result.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["patient_id"] for r in rows] == ["R1", "R2", "R3", "R4"]
    assert "2 fields but the header has 3" in rows[0]["error"]
    assert "4 fields" in rows[1]["error"]
    assert "unbalanced quote" in rows[2]["error"] and "unbalanced quote" in rows[3]["error"]
    assert rows[3]["b12_status"] == "normal"


def test_a_2_megabyte_line_is_reported_not_fatal(cli, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("patient_id,b12\nP1," + "9" * 2_000_000 + "\nP2,100\n")
    result = cli("batch", path)
    assert result.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["line"] for r in rows] == ["2", "3"]
    assert rows[0]["error"] == (
        "line 2: the line is longer than 1,048,576 characters and was not read"
    )
    assert rows[1]["patient_id"] == "P2"
    assert len(result.stdout) < 10_000


def test_duplicate_columns_are_noted_and_conflicts_reported(cli, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("patient_id,B12,Vitamin B12\nD1,100,100\nD2,100,300\n")
    result = cli("batch", path)
    assert result.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["error"] == ""
    assert "given twice" in rows[1]["error"]
    assert "both hold b12" in result.stderr


def test_a_header_without_lab_columns_is_exit_2(cli, tmp_path):
    path = tmp_path / "nolab.csv"
    path.write_text("name,address\nA,B\n")
    result = cli("batch", path)
    assert result.exit_code == 2
    assert "no lab columns" in one_clear_line(result)


@pytest.mark.parametrize("target", ["no/such/dir/out.csv", "{tmp}"])
def test_unwritable_output_paths_are_exit_2(cli, tmp_path, target):
    result = cli("batch", SAMPLES / "wide_us.csv", "-o", target.format(tmp=tmp_path))
    assert result.exit_code == 2
    message = one_clear_line(result)
    assert "does not exist" in message or "is a directory" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("NaN", "not a number"),
        ("inf", "not a number"),
        ("-inf", "not a number"),
        ("1e400", "too large"),
        ("-95", "negative"),
        ("9e9", "outside the plausible range"),
        ("95 95", "is not a unit"),
        ("95 x10^9/L x10^9/L", "is not a unit"),
        ("1,2,3", "decimal comma"),
        ("", "is not a number"),
    ],
)
def test_numbers_that_lie_are_rejected_with_a_reason(cli, value, words):
    result = cli("interpret", "--platelets", value)
    assert result.exit_code == 2
    assert words in one_clear_line(result)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("٩٥", 95), ("９５", 95), ("95x10^9/L", 95), ("95,000 /uL", 95), ("150.000,5 /uL", 150)],
)
def test_numbers_in_other_notations_are_read_correctly(cli, value, expected):
    document = cli.json("interpret", "--platelets", value, "-f", "json")
    assert document["measurements"][0]["value"] == pytest.approx(expected, rel=1e-3)


def run_module(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "b12lab", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def test_a_closed_stdout_ends_quietly(tmp_path):
    export = tmp_path / "many.csv"
    export.write_text(
        "patient_id,b12 (pmol/L)\n" + "".join(f"P{n},{100 + n % 500}\n" for n in range(50_000))
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "b12lab", "batch", str(export)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.readline()
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in stderr


def test_a_full_disk_ends_with_exit_2_and_one_clear_line():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "b12lab", "batch", str(SAMPLES / "wide_us.csv")],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert result.returncode == 2
    assert "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr


def test_killing_a_run_leaves_the_previous_output_intact(tmp_path):
    export = tmp_path / "big.csv"
    export.write_text(
        "patient_id,b12,platelets\n"
        + "".join(f"P{n},{100 + n % 700},{50 + n % 500}\n" for n in range(300_000))
    )
    out = tmp_path / "out.csv"
    out.write_text("the previous good result\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "b12lab", "batch", str(export), "-o", str(out), "-f", "ndjson"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert out.read_text() == "the previous good result\n"


# --- Arrow and Parquet dates ----------------------------------------------------------


def _arrow_file(path, dates) -> None:
    import pyarrow as pa

    table = pa.table({"patient_id": ["p1", "p2"], "date": dates, "b12": ["180 pmol/L"] * 2})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.mark.parametrize(
    ("kind", "stored"),
    [("timestamp_s", 2**62), ("date64", 2**62), ("timestamp_s", -(2**62)), ("date32", 2**31 - 1)],
)
def test_an_arrow_date_outside_the_calendar_is_that_rows_error(cli, tmp_path, kind, stored):
    import pyarrow as pa

    types = {"timestamp_s": pa.timestamp("s"), "date64": pa.date64(), "date32": pa.date32()}
    per_day = {"timestamp_s": 86_400, "date64": 86_400_000, "date32": 1}[kind]
    path = tmp_path / "dates.arrow"
    _arrow_file(path, pa.array([stored, 20_000 * per_day], types[kind]))
    for args in ((), ("--timeline",)):
        result = cli("batch", path, "--as-of", "2026-11-20", *args)
        assert result.exit_code == 3, result.output
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [r["line"] for r in rows] == ["1", "2"]
        assert str(stored) in rows[0]["error"] and "not a date" in rows[0]["error"]
        assert rows[1]["panel_date"] == "2024-10-04" and not rows[1]["error"]


def test_an_unknown_time_zone_is_one_clear_line(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "patient_id": ["p1"],
            "date": pa.array([0], pa.timestamp("ms", tz="Mars/Olympus")),
            "b12": ["180 pmol/L"],
        }
    )
    path = tmp_path / "zone.parquet"
    pq.write_table(table, path)
    result = cli("batch", path)
    assert result.exit_code == 2
    line = one_clear_line(result)
    assert "'Mars/Olympus'" in line and "date" in line and "UTC" in line
