"""Long exports and --timeline grouped whatever the row order, in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b12lab.batch import grouping
from b12lab.batch.grouping import (
    IN_MEMORY_ROWS,
    MEMORY_ENV,
    GroupingError,
    GroupSettings,
    arrange,
    parse_memory,
)
from b12lab.batch.rows import RowInterpreter
from b12lab.inputs.export import MAX_LINE
from b12lab.output import Interrupted
from tests.conftest import TODAY, one_clear_line

HEADER = "patient_id,date,test,result,unit"
TESTS = [
    ("B12", ["90", "150", "300", "700"], "pmol/L"),
    ("PLT", ["40", "95", "250", "600"], "10^9/L"),
    ("Ferritin", ["8", "30", "150", "600"], "ng/mL"),
    ("ANC", ["0.4", "1.2", "3"], "10^9/L"),
    ("Sodium", ["140"], "mmol/L"),
]
PATIENTS = 1_200  # x 2 dates x 5 tests = 12,000 rows: more than are ordered in memory


def long_rows(patients: int = PATIENTS, seed: int = 1) -> list[str]:
    """Two panels (dates) of five tests for each patient, sorted by patient and date."""
    rnd = random.Random(seed)
    rows = []
    for patient in range(patients):
        for month in (9, 10):
            date = f"2026-{month:02d}-{1 + patient % 9:02d}"
            for test, values, unit in TESTS:
                rows.append(f"P{patient:05d},{date},{test},{rnd.choice(values)},{unit}")
    return rows


def shuffled(rows: list[str], seed: int = 7) -> tuple[list[str], dict[int, int]]:
    """The rows in a fixed random order, and each line's row in the sorted export."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [rows[i] for i in order], {line: order[line - 2] for line in range(2, len(rows) + 2)}


def export(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def ndjson(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def by_rows(records: list[dict], row_of: dict[int, int] | None = None) -> dict:
    """Each record keyed by the rows (of the sorted export) it was read from."""
    row_of = row_of or {}
    return {
        tuple(sorted(row_of.get(line, line - 2) for line in r["lines"])): (
            r["patient_id"],
            r["panel_date"],
            r["b12_status"],
            sorted(f["id"] for f in r["findings"]),
            r["errors"],
        )
        for r in records
    }


def assert_in_input_order(records: list[dict], timeline: bool = False) -> None:
    """Records in the order of their first line; a panel's lines in order (a timeline's
    lines panel by panel, panels in the order of their first line)."""
    firsts = [r["lines"][0] for r in records]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    assert all(r["lines"][0] == min(r["lines"]) for r in records)
    if not timeline:
        assert all(r["lines"] == sorted(r["lines"]) for r in records)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    rows = long_rows()
    mixed, row_of = shuffled(rows)
    return export(folder / "sorted.csv", rows), export(folder / "shuffled.csv", mixed), row_of


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The system temporary directory for this test only, to see what is left in it."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# --- the records -----------------------------------------------------------------------


def test_a_shuffled_long_export_gives_the_records_of_the_sorted_one(cli, exports, private_tmp):
    sorted_csv, shuffled_csv, row_of = exports
    expected = ndjson(cli("batch", sorted_csv, "--format", "ndjson"))
    result = cli("batch", shuffled_csv, "--format", "ndjson")
    records = ndjson(result)
    assert len(records) == len(expected) == PATIENTS * 2
    assert by_rows(records, row_of) == by_rows(expected)
    assert_in_input_order(records)
    assert "its 12,000 rows were grouped out of core" in result.stderr
    assert not any("also appear" in w for r in records for w in r["warnings"])
    assert list(private_tmp.iterdir()) == []  # the DuckDB directory is gone


def test_a_sorted_export_is_streamed_without_grouping(cli, exports, private_tmp, monkeypatch):
    sorted_csv, _, _ = exports

    def refuse(*args, **kwargs):
        raise AssertionError("a grouped export went out of core")

    monkeypatch.setattr(grouping, "_out_of_core", refuse)
    result = cli("batch", sorted_csv)
    assert result.exit_code == 0, result.stderr
    assert "out of core" not in result.stderr
    assert list(private_tmp.iterdir()) == []


def test_a_panel_spread_over_more_than_10000_rows_is_one_panel(cli, tmp_path):
    others = [f"Q{n:05d},2026-11-01,B12,400,pmol/L" for n in range(10_500)]
    rows = ["P1,2026-11-01,B12,120,pmol/L", *others, "P1,2026-11-01,PLT,95,10^9/L"]
    result = cli("batch", export(tmp_path / "far.csv", rows), "--format", "ndjson")
    records = ndjson(result)
    assert len(records) == 10_501
    assert records[0]["patient_id"] == "P1"
    assert records[0]["lines"] == [2, 10_503]
    assert "plt-low-consistent-with-b12" in [f["id"] for f in records[0]["findings"]]
    assert not any("also appear" in w or "split" in w for w in records[0]["warnings"])


def test_one_day_written_in_different_ways_is_one_panel(cli, tmp_path):
    rows = [
        "P1,2026-01-05,B12,100,pg/mL",
        "P2,2026-01-05,B12,400,pmol/L",
        "P1,05.01.2026,PLT,40,10^9/L",
        "P1,2026-01-05T08:00:00,ANC,0.4,10^9/L",
        "P1,20260105,Hb,7.0,g/dL",
        "P1,2026-01-06,Ferritin,40,ug/L",
    ]
    records = ndjson(cli("batch", export(tmp_path / "dates.csv", rows), "--format", "ndjson"))
    assert [(r["patient_id"], r["panel_date"], r["lines"]) for r in records] == [
        ("P1", "2026-01-05", [2, 4, 5, 6]),
        ("P2", "2026-01-05", [3]),
        ("P1", "2026-01-06", [7]),
    ]
    assert "plt-low-consistent-with-b12" in [f["id"] for f in records[0]["findings"]]


def test_rows_of_one_panel_that_disagree_on_sex_or_age_are_an_error_of_the_panel(cli, tmp_path):
    path = tmp_path / "sex.csv"
    path.write_text(
        "patient_id,date,sex,age,test,value,unit\n"
        "A,2026-01-05,F,40,Hb,12.5,g/dL\n"
        "A,2026-01-05,M,40,PLT,200,10^9/L\n"
        "A,2026-01-05,F,41,B12,300,pmol/L\n",
        encoding="utf-8",
    )
    result = cli("batch", path, "--format", "ndjson")
    assert result.exit_code == 3
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["b12_status"] == "normal"  # the panel is still read
    errors = " ".join(record["errors"])
    assert "sex 'M' differs from the sex female" in errors
    assert "age '41' differs from the age 40" in errors


def test_timeline_on_a_shuffled_long_export_is_one_record_per_patient(cli, exports):
    _, shuffled_csv, _ = exports
    records = ndjson(cli("batch", shuffled_csv, "--timeline", "--format", "ndjson"))
    patients = [r["patient_id"] for r in records]
    assert len(patients) == len(set(patients)) == PATIENTS
    assert all(len(r["lines"]) == 10 for r in records)  # both panels, five tests each
    assert not any("appears again" in w for r in records for w in r["warnings"])
    assert_in_input_order(records, timeline=True)


def test_timeline_on_a_shuffled_wide_export_is_one_record_per_patient(cli, tmp_path):
    patients = IN_MEMORY_ROWS // 2 + 1
    rows = [
        f"P{p:05d},2026-{month:02d}-01,{120 + p % 400},{100 + p % 300}"
        for p in range(patients)
        for month in (9, 11)
    ]
    random.Random(3).shuffle(rows)
    path = export(tmp_path / "wide.csv", rows, "patient_id,date,B12 (pmol/L),PLT (10^9/L)")
    result = cli("batch", path, "--timeline")
    assert result.exit_code == 0, result.stderr
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    ids = [r["patient_id"] for r in records]
    assert len(ids) == len(set(ids)) == patients
    assert "appears again" not in result.stdout


def test_standard_input_is_grouped_like_the_file(cli, exports, private_tmp):
    sorted_csv, shuffled_csv, _ = exports
    from_file = cli("batch", shuffled_csv)
    for path in (shuffled_csv, sorted_csv):
        from_stdin = cli("batch", "-", input=path.read_bytes())
        assert from_stdin.exit_code == 0, from_stdin.stderr
        lines = sorted(from_stdin.stdout.splitlines()[1:])
        if path == shuffled_csv:
            assert from_stdin.stdout == from_file.stdout
        assert len(lines) == PATIENTS * 2
    assert list(private_tmp.iterdir()) == []


def test_an_unreadable_line_keeps_its_own_record_at_its_place(cli, tmp_path):
    rows, _ = shuffled(long_rows())
    rows.insert(5_000, "P00001,2026-09-02,B12," + "9" * (MAX_LINE + 10) + ",pmol/L")
    path = export(tmp_path / "long-line.csv", rows)
    for extra in ((), ("--timeline",)):
        result = cli("batch", path, "--format", "ndjson", *extra)
        assert result.exit_code == 3, result.stderr
        records = ndjson_records(result)
        assert_in_input_order(records, timeline=bool(extra))
        bad = [r for r in records if 5_002 in r["lines"]]
        assert len(bad) == 1 and bad[0]["lines"] == [5_002]
        assert "longer than" in bad[0]["errors"][0]
        assert sum(len(r["lines"]) for r in records) == len(rows)


def ndjson_records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_an_unreadable_row_keeps_its_place_when_ordered_in_memory(ranges):
    header = ["patient_id", "date", "test", "result", "unit"]
    rows = [
        (2, ["P1", "2026-11-01", "B12", "120", "pmol/L"], None),
        (3, None, "the line is longer than 1,048,576 characters and was not read"),
        (4, ["P2", "2026-11-01", "B12", "400", "pmol/L"], None),
        (5, ["P1", "2026-11-01", "PLT", "95", "10^9/L"], None),
    ]
    for timeline in (False, True):
        interpreter = RowInterpreter.for_header(header, ranges, today=TODAY, timeline=timeline)
        records = list(interpreter(iter(rows)))
        assert [r.lines for r in records] == [(2, 5), (3,), (4,)]
        assert "longer than" in records[1].cell_errors[0].reason


# --- memory bound and temporary directory ----------------------------------------------


def spread_rows(count: int, padding: int = 0):
    """Rows whose panels are spread over the whole input, with a cell `padding` long."""
    pad = "x" * padding
    for n in range(count):
        patient = f"P{(n * 7919) % (count // 4):06d}"
        yield (n + 2, [patient, f"2026-0{1 + n % 2}-01", "B12", "300", "pmol/L", pad], None)


def levels_for(timeline: bool):
    def patient(row):
        return (row[1][0],)

    def panel(row):
        return (row[1][0], row[1][1], "")

    return [patient, panel] if timeline else [panel]


def test_a_memory_limit_smaller_than_the_export_spills_and_gives_the_right_order(
    private_tmp, monkeypatch
):
    limit = "16MB"  # the least accepted
    count, padding = 300_000, 40  # an export of about 30 MB
    levels = levels_for(timeline=True)
    expected = [row[0] for row in grouping._in_memory(list(spread_rows(count, padding)), levels)]
    spilled = []
    write_firsts = grouping._write_firsts

    def watched(reader, *args):
        def batches():
            for number, batch in enumerate(reader):
                if number == 0:  # the sorted keys are read back: what went to disk?
                    (work,) = list(private_tmp.iterdir())
                    spill = work / "spill"
                    spilled.append(sum(f.stat().st_size for f in spill.iterdir()))
                yield batch

        return write_firsts(batches(), *args)

    deal = grouping._deal
    buckets = []

    def dealt(*args):
        buckets.extend(deal(*args))
        return buckets

    monkeypatch.setattr(grouping, "_write_firsts", watched)
    monkeypatch.setattr(grouping, "_deal", dealt)
    settings_ = GroupSettings(memory=limit, memory_bytes=parse_memory(limit))
    rows = arrange(spread_rows(count, padding), levels, grouped=False, settings=settings_)
    assert [row[0] for row in rows] == expected
    assert len(spilled) == 2 and min(spilled) > 0  # the sorts of the keys went to disk
    assert len(buckets) > 1  # the rows went to disk in parts of at most a quarter of 16MB
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("how", ["error in a row", "consumer stops"])
def test_the_temporary_directory_is_removed_after_an_error(private_tmp, how):
    def broken(row):
        if row[0] == 12_000:
            raise ValueError("a row that cannot be keyed")
        return (row[1][0],)

    levels = [broken] if how == "error in a row" else levels_for(timeline=False)
    rows = arrange(spread_rows(IN_MEMORY_ROWS + 5_000), levels, grouped=False)
    if how == "error in a row":
        with pytest.raises(ValueError):
            list(rows)
    else:
        next(rows)
        assert len(list(private_tmp.iterdir())) == 1  # the work is under way
        rows.close()
    assert list(private_tmp.iterdir()) == []


def test_the_temporary_directory_is_removed_when_batch_is_interrupted(
    cli, exports, private_tmp, monkeypatch
):
    _, shuffled_csv, _ = exports
    finish = RowInterpreter._finish
    seen = []

    def interrupted_after_ten(self, builder):
        seen.append(builder)
        if len(seen) == 10:
            assert len(list(private_tmp.iterdir())) == 1  # grouping under way
            raise Interrupted(signal.SIGTERM)
        return finish(self, builder)

    monkeypatch.setattr(RowInterpreter, "_finish", interrupted_after_ten)
    result = cli("batch", shuffled_csv, "-o", shuffled_csv.with_name("out.csv"))
    assert result.exit_code == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in result.stderr
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "size"),
    [("16MB", 16 * 10**6), ("256MB", 256 * 10**6), ("1GiB", 2**30), ("64 mib", 64 * 2**20)],
)
def test_a_memory_size_is_read(text, size):
    assert parse_memory(text) == size
    assert GroupSettings.from_env({MEMORY_ENV: text}).memory_bytes == size


@pytest.mark.parametrize("text", ["8MB", "lots", "-1GB", "64", "99999999TB", "9" * 400 + "MB"])
def test_a_bad_memory_limit_is_one_clear_line_and_exit_2(cli, exports, text):
    _, shuffled_csv, _ = exports
    with pytest.raises(GroupingError):
        parse_memory(text)
    result = cli("batch", shuffled_csv, env={MEMORY_ENV: text})
    assert result.exit_code == 2
    assert MEMORY_ENV in one_clear_line(result)


def test_the_default_memory_limit_is_256mb():
    assert GroupSettings.from_env({}).memory_bytes == 256 * 10**6
    assert GroupSettings.from_env({MEMORY_ENV: " "}).memory == "256MB"


# --- property: a permutation groups like the stable-sorted rows -------------------------

keyed_rows = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", "P3", " P1", ""]),
        st.sampled_from(["2026-09-01", "2026-10-01"]),
        st.sampled_from([("B12", "120", "pmol/L"), ("PLT", "95", "10^9/L"), ("Na", "140", "")]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25)
@given(rows=keyed_rows, seed=st.integers(0, 2**16), timeline=st.booleans())
def test_grouping_a_permutation_equals_grouping_the_stable_sorted_rows(
    ranges, rows, seed, timeline
):
    numbered = [(n, [p, d, *result], None) for n, (p, d, result) in enumerate(rows, start=2)]
    random.Random(seed).shuffle(numbered)
    levels = levels_for(timeline=timeline)
    panel = levels[-1]
    stable = sorted(numbered, key=lambda row: (row[1][0].strip(), panel(row)[1:]))
    header = ["patient_id", "date", "test", "result", "unit"]

    def records(source):
        interpreter = RowInterpreter.for_header(header, ranges, today=TODAY, timeline=timeline)
        return {r.lines: (r.patient_id, r.outcome, r.errors) for r in interpreter(iter(source))}

    assert records(numbered) == records(stable)
    out_of_core = GroupSettings(in_memory_rows=0)
    assert list(arrange(numbered, levels, settings=out_of_core)) == grouping._in_memory(
        numbered, levels
    )


def test_one_patient_interpret_imports_neither_duckdb_nor_pyarrow():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from b12lab.cli import app\n"
        "import b12lab.batch.rows\n"
        "app(['interpret', '--b12', '300'], standalone_mode=False)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'pyarrow'})\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


# --- private files, a guard, and an address-space limit ---------------------------------


def test_every_file_of_the_grouping_is_private_whatever_the_umask(private_tmp, monkeypatch):
    import os
    import stat

    seen = {}
    deal = grouping._deal

    def dealt(*args):
        paths = deal(*args)  # the spool, DuckDB's files and the buckets all exist now
        (work,) = list(private_tmp.iterdir())
        seen[str(work)] = stat.S_IMODE(work.stat().st_mode)
        for path in work.rglob("*"):
            seen[str(path)] = stat.S_IMODE(path.stat().st_mode)
        return paths

    monkeypatch.setattr(grouping, "_deal", dealt)
    mask = os.umask(0o022)
    try:
        rows = list(arrange(spread_rows(IN_MEMORY_ROWS + 2_000), levels_for(True), grouped=False))
        assert os.umask(0o022) == 0o022  # restored: output files still follow the umask
    finally:
        os.umask(mask)
    assert len(rows) == IN_MEMORY_ROWS + 2_000
    modes = {Path(path).name: mode for path, mode in seen.items()}
    assert {"spool.arrow", "keys.duckdb", "bucket0.pickle"} <= set(modes)
    directory = next(mode for path, mode in seen.items() if Path(path).parent == private_tmp)
    assert directory == 0o700
    assert {name: mode for name, mode in modes.items() if mode not in (0o600, 0o700)} == {}
    assert list(private_tmp.iterdir()) == []


GUARDED_RUN = """
import os, sys, tempfile
tempfile.tempdir = sys.argv[1]
from b12lab.batch.grouping import arrange

def rows():
    for n in range(12_000):
        yield (n + 2, ["P%05d" % (n * 7919 % 3000), "2026-01-01", "B12", "300", ""], None)

for row in arrange(rows(), [lambda row: (row[1][0],)], grouped=False):
    print(os.listdir(sys.argv[1]), flush=True)
    os.abort()  # as a native library does: no finally block, no atexit
"""


def test_a_native_abort_still_removes_the_temporary_files(tmp_path):
    import subprocess
    import sys
    import time

    folder = tmp_path / "system-tmp"
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", GUARDED_RUN, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode < 0  # SIGABRT
    assert "b12lab-group-" in result.stdout  # the work was under way when it aborted
    deadline = time.monotonic() + 10
    while list(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(folder.iterdir()) == []


def _capped_batch(tmp_path, limit_kib: int, path) -> subprocess.CompletedProcess:
    import sys

    folder = tmp_path / "system-tmp"
    folder.mkdir(exist_ok=True)
    command = f'ulimit -v {limit_kib}; exec "{sys.executable}" -m b12lab batch "{path}" --timeline'
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(folder), "B12LAB_GROUP_MEMORY": "256MB"},
    )


def test_grouping_under_a_2_gib_address_space_limit_finishes(tmp_path):
    rows, _ = shuffled(long_rows(patients=1_100))  # 11,000 rows: out of core
    path = export(tmp_path / "shuffled.csv", rows)
    result = _capped_batch(tmp_path, 2_097_152, path)
    assert result.returncode == 0, result.stderr
    assert "grouped out of core" in result.stderr
    assert len(result.stdout.splitlines()) == 1 + 1_100
    assert list((tmp_path / "system-tmp").iterdir()) == []


def test_too_small_an_address_space_names_ulimit_not_the_memory_setting(tmp_path):
    rows, _ = shuffled(long_rows(patients=1_100))
    path = export(tmp_path / "shuffled.csv", rows)
    # The process itself takes about 340-460 MiB of address space (threads are made
    # lazily), and grouping needs about 180 MiB more: 440 MiB is too little every time.
    result = _capped_batch(tmp_path, 450_000, path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert "ulimit -v" in line and "raise" in line
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "system-tmp").iterdir()) == []
