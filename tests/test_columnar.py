"""The columnar batch path writes exactly what the row path writes.

Generated wide exports, clean and messy (quotes, blank and ragged lines,
Windows-1252 bytes, refused cells, censored values, derived ANC and eGFR,
therapy dates), and every shipped CSV go through both; the output (CSV, and
the NDJSON and JSON records filled from templates with each row's own cells),
the --errors file and the summary must be equal byte for byte.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from conftest import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import b12lab.batch.run as batch_run
from b12lab.batch import drain
from b12lab.ranges import load_ranges
from b12lab.reading.policy import ReadPolicy

RANGES = load_ranges()
ROOT = Path(__file__).resolve().parent.parent
HEADERS = [
    "patient_id",
    "collected",
    "sex",
    "age",
    "B12 (pg/mL)",
    "PLT",
    "platelets_unit",
    "ANC",
    "WBC",
    "neutrophil %",
    "Ferritin",
    "Hemoglobin",
    "creatinine",
    "MMA",
    "b12_therapy_start",
]


def _value(rng: random.Random, column: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return rng.choice(["", "n/a", " ", "pending", "-5", "1.476", "12 parsecs"])
    if column == "B12 (pg/mL)":
        return rng.choice(["<100", ">1476", "<=150", str(rng.randint(90, 1200))])
    if column == "PLT":
        return str(rng.choice([rng.randint(5, 900), 150, 450]))
    if column == "platelets_unit":
        return rng.choice(["K/uL", "x10^9/L", "10*9/L", "", "furlongs"])
    if column in ("ANC", "WBC"):
        return f"{rng.uniform(0.2, 14):.1f}"
    if column == "neutrophil %":
        return f"{rng.uniform(20, 80):.0f}"
    if column == "Ferritin":
        return rng.choice([f"{rng.randint(3, 1500)}", f"{rng.randint(3, 900)} ng/mL", "30"])
    if column == "Hemoglobin":
        return rng.choice([f"{rng.uniform(6, 17):.1f} g/dL", f"{rng.randint(70, 170)} g/L"])
    if column == "creatinine":
        return rng.choice([f"{rng.uniform(0.5, 3):.2f} mg/dL", ""])
    if column == "MMA":
        return rng.choice(["", "", f"{rng.randint(100, 900)} nmol/L"])
    if column == "b12_therapy_start":
        return rng.choice(["", "", "", "2026-09-01", "2026-11-30", "31/02/2026"])
    return ""


def _export(rng: random.Random, rows: int, messy: bool) -> bytes:
    columns = rng.sample(HEADERS[4:], rng.randint(2, len(HEADERS) - 4))
    header = HEADERS[:4] + columns
    lines = [",".join(header)]
    for _ in range(rows):
        cells = [
            f"P{rng.randint(1, 40):03d}" if rng.random() > 0.05 else "=cmd()",
            rng.choice(
                [
                    "2026-08-03",
                    "2026-10-01",
                    "",
                    "2026-13-01",
                    "03/08/2026",
                    "2062-10-01",
                    "2063-01-05",
                ]
            ),
            rng.choice(["F", "M", "", "x", "U"]),
            rng.choice(["", "0.5", "8", "45", "70", "abc"]),
            *(_value(rng, c) for c in columns),
        ]
        line = ",".join(cells)
        if messy:
            roll = rng.random()
            if roll < 0.03:
                line = f'"{cells[0]}","a ""quoted"" id"' + line[len(cells[0]) :]
            elif roll < 0.05:
                line = ""
            elif roll < 0.07:
                line = line + ",extra"
            elif roll < 0.08:
                line = ",".join("" for _ in cells)
        lines.append(line)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if messy and rng.random() < 0.5:
        data = data.replace(b"P001", b"P\xe9001", 1)
    return data


def _run(
    tmp_path: Path, source: Path, columnar: bool, monkeypatch, block: int | None = None, **options
) -> tuple:
    import b12lab.batch.columnar as columnar_module

    if not columnar:
        monkeypatch.setattr(drain, "reads_by_columns", lambda interpreter: False)
    if block:
        monkeypatch.setattr(columnar_module, "BLOCK", block)
    tables = []
    decide = columnar_module.ColumnarInterpreter.decide
    monkeypatch.setattr(
        columnar_module.ColumnarInterpreter,
        "decide",
        lambda self, table, lines: tables.append(len(lines)) or decide(self, table, lines),
    )
    name = "columnar" if columnar else "rows"
    suffix = options.get("output_format", "csv")
    out, errors = tmp_path / f"{name}.{suffix}", tmp_path / f"{name}.errors.csv"
    summary = batch_run.run_batch(
        str(source),
        RANGES,
        output=str(out),
        errors_path=str(errors),
        progress=False,
        today=TODAY,
        **options,
    )
    monkeypatch.undo()
    if columnar:
        RUNS.append(sum(tables))
    return out.read_bytes(), errors.read_bytes(), summary.line(), sorted(summary.notes)


RUNS: list[int] = []  # rows the columnar path decided, per columnar run


def _same(tmp_path: Path, source: Path, monkeypatch, block: int | None = None, **options):
    rows = _run(tmp_path, source, False, monkeypatch, **options)
    columnar = _run(tmp_path, source, True, monkeypatch, block, **options)
    assert columnar[0].decode() == rows[0].decode()
    assert columnar[1:] == rows[1:]
    return RUNS[-1]


# Generated exports, the same examples every run (derandomized).
_GENERATED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_EXPORTS = {
    "seed": st.integers(0, 10_000),
    "rows": st.integers(1, 300),
    "messy": st.booleans(),
    "block": st.sampled_from([None, 700, 3000]),
    "keep": st.booleans(),
}


@_GENERATED
@given(**_EXPORTS)
def test_columnar_equals_rows_on_generated_exports(
    tmp_path, monkeypatch, seed, rows, messy, block, keep
):
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(seed), rows, messy))
    first_analyte = source.read_bytes().split(b",", 5)[4].decode()  # --keep: export columns
    options = {"keep": ["patient_id,sex", first_analyte]} if keep else {}
    decided = _same(tmp_path, source, monkeypatch, block, **options)
    if not messy:
        assert decided > 0  # the columnar path itself was compared


@_GENERATED
@given(**_EXPORTS, output_format=st.sampled_from(["ndjson", "json"]))
def test_json_records_by_columns_equal_rows_on_generated_exports(
    tmp_path, monkeypatch, seed, rows, messy, block, keep, output_format
):
    """Each row's record filled from its key's template with its own cells (patient,
    date, line, values, notes, --keep cells) is the row path's record, byte for byte:
    no record quotes another row's value."""
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(seed), rows, messy))
    first_analyte = source.read_bytes().split(b",", 5)[4].decode()
    options = {"keep": ["patient_id,sex", first_analyte]} if keep else {}
    decided = _same(tmp_path, source, monkeypatch, block, output_format=output_format, **options)
    if not messy:
        assert decided > 0


def test_clean_export_is_decided_by_column(tmp_path, monkeypatch):
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(21), 800, messy=False))
    assert _same(tmp_path, source, monkeypatch) >= 700  # blank and refused rows aside


@pytest.mark.parametrize(
    "policy",
    [ReadPolicy(decimal=","), ReadPolicy(decimal=".", strict=True), None],
    ids=["comma", "strict", "auto"],
)
@pytest.mark.parametrize("output_format", ["csv", "ndjson"])
def test_columnar_equals_rows_under_each_policy(tmp_path, monkeypatch, policy, output_format):
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(5), 400, messy=True))
    _same(tmp_path, source, monkeypatch, policy=policy, output_format=output_format)


def test_blocks_of_clean_and_messy_lines_keep_order_and_line_numbers(tmp_path, monkeypatch):
    """Small blocks, so clean blocks and blocks for the row reader alternate."""
    source = tmp_path / "export.csv"
    source.write_bytes(_export(random.Random(9), 1500, messy=True))
    rows = _run(tmp_path, source, False, monkeypatch)
    mixed = _run(tmp_path, source, True, monkeypatch, 2048)
    assert mixed == rows
    assert 0 < RUNS[-1] < 1500  # both readers had blocks
    lines = [int(row.split(",", 1)[0]) for row in mixed[0].decode().splitlines()[1:]]
    assert lines == sorted(lines)


@pytest.mark.parametrize("long_line", [1_100_000, 2_200_000], ids=["held", "too-long-to-hold"])
def test_a_line_too_long_to_read_does_not_change_the_decimal_mark(tmp_path, monkeypatch, long_line):
    """The row reader skips an over-long line and finds the decimal mark in the rows
    after it; the columnar path must find the same mark, not stop at that line."""
    source = tmp_path / "export.csv"
    source.write_text(
        "patient_id;platelets (10^9/L)\n" + "X" * long_line + ";2.5\nA;1,5\nB;1.200\n",
        encoding="utf-8",
    )
    _same(tmp_path, source, monkeypatch)
    out, _, _, notes = _run(tmp_path, source, True, monkeypatch)
    assert any("decimal mark: ','" in note for note in notes)
    lines = out.decode().splitlines()
    assert lines[1].startswith("2,") and "longer than" in lines[1]
    assert lines[3].startswith("4,B,") and "plt-extreme-high" in lines[3]  # 1.200 is 1200


@pytest.mark.parametrize(
    "name",
    [p.name for p in sorted((ROOT / "examples").glob("*.csv"))]
    + [p.name for p in sorted((ROOT.parent / "shared" / "samples").glob("*.csv"))],
)
@pytest.mark.parametrize("output_format", ["csv", "ndjson", "json"])
def test_shipped_csv_through_both_paths(tmp_path, monkeypatch, name, output_format):
    source = ROOT / "examples" / name
    if not source.exists():
        source = ROOT.parent / "shared" / "samples" / name
    _same(tmp_path, source, monkeypatch, output_format=output_format)


def test_one_patient_interpret_imports_no_columnar_libraries():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from b12lab.cli import main\n"
        "sys.argv = ['b12lab', 'interpret', '--b12', '180', '--platelets', '95']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pyarrow', 'numpy', 'duckdb') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_long_export_holds_each_decision_once_and_a_bounded_number_of_keys(tmp_path, monkeypatch):
    """Memory stays flat on a long export: rows with distinct keys (each censored B12
    value keys by itself) that decide alike share one held decision, and past
    MAX_DECISIONS keys the keys are dropped and decided again, with the records unchanged."""
    import csv

    import b12lab.batch.columnar as columnar_module

    source = tmp_path / "export.csv"
    lines = ["patient_id,collected,sex,age,B12 (pg/mL),PLT"]
    lines += [f"P{n:04d},2026-10-01,F,40,<{50 + n / 10:.1f},250" for n in range(600)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _run(tmp_path, source, False, monkeypatch)

    held: list[tuple[int, int, int]] = []  # per block: its rows, keys held, decisions held
    decide = columnar_module.ColumnarInterpreter.decide

    def counted(self, table, lines):
        decided = decide(self, table, lines)
        held.append((len(lines), len(self.decisions), len(self.decided)))
        return decided

    monkeypatch.setattr(columnar_module.ColumnarInterpreter, "decide", counted)
    monkeypatch.setattr(columnar_module, "MAX_DECISIONS", 100)
    by_columns = _run(tmp_path, source, True, monkeypatch, 4096)
    assert by_columns == rows
    assert sum(block for block, _, _ in held) == 600  # every row was decided by columns

    header, *records = csv.reader(rows[0].decode().splitlines())
    decided = [  # what a decision shows: b12_status to provenance, the row's notes aside
        n
        for n in range(header.index("b12_status"), header.index("provenance") + 1)
        if header[n] != "warnings"
    ]
    shown = {tuple(record[n] for n in decided) for record in records}
    assert max(decisions for _, _, decisions in held) <= len(shown) < 600
    keys = [count for _, count, _ in held]
    assert max(keys) <= 100 + max(block for block, _, _ in held)
    assert any(later < earlier for earlier, later in itertools.pairwise(keys))  # dropped


@pytest.mark.parametrize("output_format", ["ndjson", "json"])
def test_json_records_of_a_typed_parquet_export_by_columns_equal_rows(
    tmp_path, monkeypatch, output_format
):
    """Parquet cells are typed (numbers, nulls, dates as text): each row's record
    quotes its own cells as the row path reads them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(3)
    rows = 400
    table = pa.table(
        {
            "patient_id": [rng.choice([None, n]) if n % 7 == 0 else n for n in range(rows)],
            "collected": [rng.choice(["2026-08-03", "2026-10-01", None]) for _ in range(rows)],
            "sex": [rng.choice(["F", "M", None]) for _ in range(rows)],
            "age": [rng.choice([None, 8, 45, 70, 45.5]) for _ in range(rows)],
            "B12 (pg/mL)": [
                rng.choice([None, 95.0, 148.0, 310.5, 640.0, 1480.0]) for _ in range(rows)
            ],
            "PLT (10^9/L)": [rng.choice([None, 12, 95, 150, 420, 990]) for _ in range(rows)],
            "WBC": [rng.choice([None, 1.2, 5.4, 13.0]) for _ in range(rows)],
            "neutrophil %": [rng.choice([None, 20, 55, 80]) for _ in range(rows)],
            "Ward": [rng.choice(["A", "=B", None]) for _ in range(rows)],
        }
    )
    source = tmp_path / "export.parquet"
    pq.write_table(table, source, row_group_size=150)
    decided = _same(
        tmp_path, source, monkeypatch, output_format=output_format, keep=["Ward,patient_id"]
    )
    assert decided == rows


def test_json_records_of_a_long_export_hold_a_bounded_number_of_keys(tmp_path, monkeypatch):
    """To NDJSON, past the bound on keys (or templates) they are let go and built
    again, with the records unchanged."""
    import b12lab.batch.columnar as columnar_module
    from b12lab.render import templates

    source = tmp_path / "export.csv"
    lines = ["patient_id,collected,sex,age,B12 (pg/mL),PLT,b12_therapy_start"]
    lines += [
        f"P{n:04d},2026-10-{1 + n % 28:02d},F,40,<{50 + n / 10:.1f},250,2026-09-01"
        for n in range(600)
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _run(tmp_path, source, False, monkeypatch, output_format="ndjson")

    held: list[tuple[int, int]] = []  # per block: its rows, keys held
    decide = columnar_module.ColumnarInterpreter.decide

    def counted(self, table, lines):
        decided = decide(self, table, lines)
        held.append((len(lines), len(self.json_keys)))
        return decided

    monkeypatch.setattr(columnar_module.ColumnarInterpreter, "decide", counted)
    monkeypatch.setattr(columnar_module, "MAX_DECISIONS", 100)
    monkeypatch.setattr(templates, "MAX_TEMPLATES", 80)
    by_columns = _run(tmp_path, source, True, monkeypatch, 4096, output_format="ndjson")
    assert by_columns == rows
    assert sum(block for block, _ in held) == 600  # every row was decided by columns
    keys = [count for _, count in held]
    assert max(keys) <= 100 + max(block for block, _ in held)
    assert any(later < earlier for earlier, later in itertools.pairwise(keys))  # let go


@pytest.mark.parametrize(
    "ending",
    [b"\r", b"\r\n", b"mixed"],
    ids=["lone-cr", "crlf", "lf-header-then-lone-cr"],
)
def test_every_record_is_written_whatever_ends_the_lines(tmp_path, monkeypatch, ending):
    """Old Mac exports end lines with a lone CR: every panel must still have its record."""
    data = _export(random.Random(13), 60, messy=False)
    if ending == b"mixed":
        header, _, rest = data.partition(b"\n")
        data = header + b"\n" + rest.replace(b"\n", b"\r")
    else:
        data = data.replace(b"\n", ending)
    source = tmp_path / "export.csv"
    source.write_bytes(data)
    _same(tmp_path, source, monkeypatch)
    written = (tmp_path / "columnar.csv").read_text().splitlines()
    assert len(written) == 1 + 60 - _blank_lines(data)


def _blank_lines(data: bytes) -> int:
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")[1:]
    return sum(1 for line in lines[:-1] if not line.strip(b", "))


@pytest.mark.parametrize("output_format", ["csv", "ndjson"])
def test_a_therapy_start_after_its_panel_is_quoted_from_its_own_row(
    tmp_path, monkeypatch, output_format
):
    """Each block brings new panel dates and therapy starts: a start after its panel is
    quoted exactly, so its key must name that row's dates whatever came before."""
    rng = random.Random(4)
    lines = ["patient_id,collected,sex,age,B12 (pg/mL),b12_therapy_start"]
    for n in range(300):
        panel = f"2026-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}"
        start = f"2026-{rng.randint(7, 11):02d}-{rng.randint(1, 28):02d}"
        lines.append(f"P{n:03d},{panel},F,40,{rng.randint(90, 900)},{start}")
    source = tmp_path / "export.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _same(tmp_path, source, monkeypatch, 600, output_format=output_format) == 300
