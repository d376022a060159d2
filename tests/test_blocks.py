"""Blocks decided by forked copies (`--jobs 2` and more) write what one process writes.

The generated exports of tests/test_columnar.py, cut into small blocks so that
many blocks go to the copies, with the row reader's lines between them, go
through `--jobs 2`; output (CSV, NDJSON, JSON), --errors file and summary must
equal the row path's byte for byte. A copy that fails, or that ends, leaves
its blocks to the process that reads the export, with the same output.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from test_columnar import _GENERATED, _export, _run

from b12lab.batch import blocks
from b12lab.batch import columnar as columnar_module


@settings(_GENERATED, max_examples=12)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(200, 1500),
    messy=st.booleans(),
    block=st.sampled_from([700, 2048, 4096]),
    keep=st.booleans(),
    output_format=st.sampled_from(["csv", "ndjson", "json"]),
)
def test_blocks_decided_by_forked_copies_equal_the_row_path(
    tmp_path, monkeypatch, seed, rows, messy, block, keep, output_format
):
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(seed), rows, messy))
    first_analyte = source.read_bytes().split(b",", 5)[4].decode()
    options = {"keep": ["patient_id,sex", first_analyte]} if keep else {}
    expected = _run(tmp_path, source, False, monkeypatch, output_format=output_format, **options)
    given_blocks = []
    give = blocks.BlockDeciders.give
    monkeypatch.setattr(
        blocks.BlockDeciders,
        "give",
        lambda self, data, line: given_blocks.append(line) or give(self, data, line),
    )
    found = _run(
        tmp_path,
        source,
        True,
        monkeypatch,
        block,
        workers=2,
        output_format=output_format,
        **options,
    )
    assert found[0].decode() == expected[0].decode()
    assert found[1:] == expected[1:]
    if not messy and len(source.read_bytes()) > 3 * block:
        assert len(given_blocks) >= 3  # the copies decided the blocks


def _clean(tmp_path, rows: int = 1500):  # about 12 blocks of 2 KiB
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(3), rows, messy=False))
    return source


def test_a_block_a_copy_fails_on_is_decided_by_the_reading_process(tmp_path, monkeypatch):
    source = _clean(tmp_path)
    expected = _run(tmp_path, source, False, monkeypatch)
    parent = os.getpid()
    decide = columnar_module.ColumnarInterpreter.decide
    here = []

    def failing_in_copies(self, table, lines):
        if os.getpid() != parent:
            raise RuntimeError("a copy fails")
        here.append(len(lines))
        return decide(self, table, lines)

    monkeypatch.setattr(columnar_module.ColumnarInterpreter, "decide", failing_in_copies)
    found = _run(tmp_path, source, True, monkeypatch, 2048, workers=2)
    assert found == expected
    assert len(here) >= 3  # every block came back to the reading process


def test_a_copy_that_ends_mid_run_loses_no_record(tmp_path, monkeypatch):
    source = _clean(tmp_path)
    expected = _run(tmp_path, source, False, monkeypatch)
    parent = os.getpid()
    decide = columnar_module.ColumnarInterpreter.decide

    def ending_in_copies(self, table, lines):
        if os.getpid() != parent:
            os._exit(9)  # as a copy killed by the system would
        return decide(self, table, lines)

    monkeypatch.setattr(columnar_module.ColumnarInterpreter, "decide", ending_in_copies)
    monkeypatch.setattr(blocks, "CHECK_EVERY", 0.05)
    found = _run(tmp_path, source, True, monkeypatch, 2048, workers=2)
    assert found == expected


def _clean_export(path, rows: int) -> None:
    """A wide export every cell of which reads (so that no row takes the row path)."""
    rng = random.Random(11)
    lines = ["patient_id,collected,sex,age,B12 (pg/mL),PLT,ANC,Ferritin,ferritin_unit,MCV"]
    for n in range(rows):
        cells = [
            f"P{n:07d}",
            f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
            rng.choice("FM"),
            str(rng.randint(18, 95)),
            str(rng.randint(90, 1400)),
            str(rng.randint(20, 700)),
            f"{rng.uniform(0.3, 9):.1f}",
            str(rng.randint(4, 900)),
            rng.choice(["ng/mL", "ug/L"]),
            str(rng.randint(70, 125)),
        ]
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_jobs_two_writes_what_jobs_one_writes_at_the_command_line(tmp_path):
    """Several 1 MiB blocks, through the installed command, to a file and to a pipe
    (NDJSON and JSON are compared in process, above)."""
    source = tmp_path / "export.csv"
    _clean_export(source, 80_000)
    assert source.stat().st_size > 3 * columnar_module.BLOCK
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}.csv"
        command = [sys.executable, "-m", "b12lab", "batch", str(source), "--jobs", jobs]
        command += ["--as-of", "2026-11-20", "--no-progress"]
        to_file = subprocess.run([*command, "-o", str(out)], capture_output=True, check=False)
        to_pipe = subprocess.run(command, capture_output=True, check=False)
        assert to_file.returncode == to_pipe.returncode == 0, to_file.stderr
        assert to_pipe.stdout == out.read_bytes()
        outputs.append((out.read_bytes(), to_file.stderr))
    assert outputs[0] == outputs[1]
    assert b"80,000 panels" in outputs[1][1]
    assert outputs[1][0].count(b"\n") == 80_001
