"""Batch throughput: rows/s of `b12lab batch` over rows/s of a csv.reader -> csv.writer copy.

Generates a wide export (default 1M rows) shaped like a real one (most
results inside their reference intervals, abnormal and censored tails, mixed
unit spellings, empty and "n/a" cells), then times, in one run, a plain
pass-through of the same file, `b12lab batch FILE -o OUT`, and the query a
data analyst would write instead: one DuckDB SQL statement on one thread
(`SET threads=1`) that reads the same export, converts each analyte's unit
with the factors b12lab's reference ranges define, flags each analyte low,
normal or high against the adult limits, gives a B12 status and writes a CSV.
It prints each contender's ratio to the copy and b12lab's ratio to the DuckDB
peer. Targets: ratio to the copy >= 1.0 for CSV output, >= 0.25 for NDJSON;
ratio to the DuckDB peer >= 1.0.

    python benchmarks/throughput.py [--rows 1000000] [--format csv|ndjson]
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"csv": 1.0, "ndjson": 0.25}
PEER_TARGET = 1.0
# Unit spellings the generated export uses, in its unit columns.
PLATELET_UNITS = ["K/uL", "x10^9/L", "10*9/L"]
FERRITIN_UNITS = ["ng/mL", "ug/L"]
HEMOGLOBIN_UNIT = "g/dL"
# The evaluation date of every benchmark run: after each generated panel date (all in
# 2026), so that the work does not depend on the day a benchmark runs (a panel dated
# after the evaluation date carries a warning and decides apart).
AS_OF = "2026-12-31"

HEADER = [
    "patient_id",
    "collected",
    "sex",
    "age",
    "B12 (pg/mL)",
    "PLT",
    "platelets_unit",
    "ANC",
    "Ferritin",
    "ferritin_unit",
    "Hemoglobin",
    "hemoglobin_unit",
    "MCV",
    "CRP (mg/L)",
    "Folate",
]


def _pick(rng: random.Random, bands: list[tuple[float, float, float]], digits: int) -> str:
    """A value from (weight, low, high) bands, rounded as a lab prints it."""
    roll, total = rng.random(), 0.0
    for weight, low, high in bands:
        total += weight
        if roll <= total:
            value = rng.uniform(low, high)
            return str(round(value)) if digits == 0 else f"{value:.{digits}f}"
    raise ValueError("weights must sum to 1")


def generate(path: Path, rows: int, seed: int = 1) -> None:
    """A wide export shaped like a real one: most results in range, abnormal tails."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            b12 = rng.random()
            writer.writerow(
                [
                    f"P{n:07d}",
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice("FM"),
                    rng.randint(18, 95),
                    (
                        "<100"
                        if b12 < 0.015
                        else ">1476"
                        if b12 < 0.03
                        else _pick(rng, [(0.85, 250, 900), (0.1, 100, 250), (0.05, 900, 1400)], 0)
                    ),
                    _pick(
                        rng,
                        [(0.85, 150, 450), (0.08, 50, 150), (0.05, 450, 800), (0.02, 5, 1100)],
                        0,
                    ),
                    rng.choice(PLATELET_UNITS),
                    _pick(rng, [(0.85, 1.5, 7.5), (0.1, 0.5, 1.5), (0.05, 7.5, 15)], 1),
                    _pick(rng, [(0.7, 30, 300), (0.15, 5, 30), (0.15, 300, 1200)], 0),
                    rng.choice(FERRITIN_UNITS),
                    _pick(rng, [(0.8, 12, 16.5), (0.2, 7, 12)], 1),
                    HEMOGLOBIN_UNIT,
                    _pick(rng, [(0.85, 80, 100), (0.1, 100, 120), (0.05, 65, 80)], 0),
                    rng.choice(["", ""])
                    if rng.random() < 0.4
                    else _pick(rng, [(0.85, 0.1, 5), (0.15, 5, 80)], 1),
                    rng.choice(["", "n/a"])
                    if rng.random() < 0.6
                    else _pick(rng, [(0.9, 4, 20), (0.1, 1, 3)], 1) + " ng/mL",
                ]
            )


# How the DuckDB peer finds each analyte in the export: its column, and where its unit
# is (a unit column, a fixed unit named in the header, or inside the cell). A column
# whose cells carry no unit is read in the analyte's canonical unit, as b12lab does.
PEER_COLUMNS = {
    "b12": ("B12 (pg/mL)", ("fixed", "pg/mL")),
    "platelets": ("PLT", ("column", "platelets_unit", PLATELET_UNITS)),
    "anc": ("ANC", ("canonical",)),
    "ferritin": ("Ferritin", ("column", "ferritin_unit", FERRITIN_UNITS)),
    "hemoglobin": ("Hemoglobin", ("column", "hemoglobin_unit", [HEMOGLOBIN_UNIT])),
    "mcv": ("MCV", ("canonical",)),
    "crp": ("CRP (mg/L)", ("fixed", "mg/L")),
    "folate": ("Folate", ("in cell",)),
}
NUMBER = r"^\s*[<>]?=?\s*([0-9]+(?:\.[0-9]*)?)"
CELL_UNIT = r"^\s*[<>]?=?\s*[0-9.]+\s*(.*?)\s*$"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _factor_case(ranges, analyte: str, unit_sql: str, spellings: list[str]) -> str:
    """A CASE mapping each unit spelling to b12lab's factor to the canonical unit."""
    known = dict.fromkeys([*ranges.units.accepted(analyte), *spellings])
    arms = " ".join(f"WHEN {_literal(s)} THEN {ranges.units.factor(analyte, s)!r}" for s in known)
    return f"CASE {unit_sql} {arms} END"


def _limit_sql(limits: dict[str, object], analyte: str, side: str) -> str | None:
    """The adult limit, by sex where the reference ranges set one per sex."""
    values = {sex: getattr(found, side)(analyte) for sex, found in limits.items()}
    if len(set(values.values())) == 1:
        only = values[None]
        return None if only is None else repr(only)
    arms = " ".join(
        f"WHEN {_literal(code)} THEN {values[sex]!r}"
        for code, sex in (("F", "female"), ("M", "male"))
        if values[sex] is not None
    )
    fallback = "NULL" if values[None] is None else repr(values[None])
    return f"CASE sex {arms} ELSE {fallback} END"


def peer_sql(source: Path, target: Path) -> str:
    """The one DuckDB statement of the SQL peer, with b12lab's factors and limits."""
    from b12lab.ranges import load_ranges

    ranges = load_ranges()
    limits = {sex: ranges.limits(sex, None, None) for sex in (None, "female", "male")}
    profile = ranges.profile(None)
    values, flags = [], []
    for analyte, (column, unit) in PEER_COLUMNS.items():
        number = f"TRY_CAST(regexp_extract({_quoted(column)}, {_literal(NUMBER)}, 1) AS DOUBLE)"
        if unit[0] == "fixed":
            factor = repr(ranges.units.factor(analyte, unit[1]))
        elif unit[0] == "column":
            factor = _factor_case(ranges, analyte, f"trim({_quoted(unit[1])})", unit[2])
        elif unit[0] == "in cell":
            cell_unit = f"regexp_extract({_quoted(column)}, {_literal(CELL_UNIT)}, 1)"
            factor = _factor_case(ranges, analyte, cell_unit, [])
        else:
            factor = repr(ranges.units.factor(analyte, ranges.analytes[analyte].canonical_unit))
        values.append(f"{number} * {factor} AS {analyte}")
        arms = []
        low, high = _limit_sql(limits, analyte, "low"), _limit_sql(limits, analyte, "high")
        if low is not None:
            arms.append(f"WHEN {analyte} < {low} THEN 'low'")
        if high is not None:
            arms.append(f"WHEN {analyte} > {high} THEN 'high'")
        flags.append(
            f"CASE WHEN {analyte} IS NULL THEN NULL {' '.join(arms)} ELSE 'normal' END"
            f" AS {analyte}_flag"
        )
    status = (
        "CASE WHEN b12 IS NULL THEN NULL"
        f" WHEN b12 < {profile.b12_deficient_below.value!r} THEN 'deficient'"
        f" WHEN b12 < {profile.b12_borderline_below.value!r} THEN 'borderline'"
        " ELSE 'normal' END AS b12_status"
    )
    return (
        "COPY (WITH v AS (SELECT patient_id, collected, sex, "
        + ", ".join(values)
        + f" FROM read_csv({_literal(str(source))}, header = true, all_varchar = true))"
        + f" SELECT patient_id, collected, {status}, "
        + ", ".join(flags)
        + ", "
        + ", ".join(PEER_COLUMNS)
        + f" FROM v) TO {_literal(str(target))} (HEADER, DELIMITER ',')"
    )


def duckdb_peer(source: Path, target: Path) -> float:
    """Wall time of the SQL peer, run as its own process like `b12lab batch` is."""
    sql = peer_sql(source, target)
    script = (
        "import sys, duckdb\n"
        "connection = duckdb.connect()\n"
        "connection.execute('SET threads=1')\n"
        "connection.execute(sys.argv[1])\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, sql], check=True)
    return time.perf_counter() - start


def passthrough(source: Path, target: Path) -> float:
    start = time.perf_counter()
    with (
        source.open(newline="", encoding="utf-8") as inp,
        target.open("w", newline="", encoding="utf-8") as out,
    ):
        writer = csv.writer(out)
        for row in csv.reader(inp):
            writer.writerow(row)
    return time.perf_counter() - start


def b12lab_batch(source: Path, target: Path, output_format: str = "csv") -> float:
    executable = shutil.which("b12lab")
    command = [executable] if executable else [sys.executable, "-m", "b12lab"]
    start = time.perf_counter()
    subprocess.run(
        [
            *command,
            "batch",
            str(source),
            "-o",
            str(target),
            "--no-progress",
            "--format",
            output_format,
            "--as-of",
            AS_OF,
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=sorted(TARGETS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "export.csv"
        generate(source, args.rows)
        plain = passthrough(source, Path(folder) / "copy.csv")
        out = Path(folder) / f"out.{args.format}"  # a name that says what it holds
        ours = b12lab_batch(source, out, args.format)
        peer = duckdb_peer(source, Path(folder) / "peer.csv")
        plain_again = passthrough(source, Path(folder) / "copy.csv")
        plain = min(plain, plain_again)
        written = _lines(out) - (args.format == "csv")
        peer_written = _lines(Path(folder) / "peer.csv") - 1
    for name, count in (("b12lab batch", written), ("DuckDB peer", peer_written)):
        if count != args.rows:
            print(f"FAIL: {name} wrote {count} output rows for {args.rows} input rows")
            return 1
    plain_rate, our_rate, peer_rate = args.rows / plain, args.rows / ours, args.rows / peer
    ratio, peer_ratio = our_rate / plain_rate, our_rate / peer_rate
    target = TARGETS[args.format]
    print(f"csv.reader -> csv.writer pass-through: {plain_rate:,.0f} rows/s")
    print(
        f"DuckDB SQL peer (1 thread, csv out): {peer_rate:,.0f} rows/s,"
        f" ratio to the copy {peer_rate / plain_rate:.3f}"
    )
    print(
        f"b12lab batch ({args.rows:,} rows, {args.format} out): {our_rate:,.0f} rows/s,"
        f" ratio to the copy {ratio:.3f}, to the DuckDB peer {peer_ratio:.3f}"
    )
    print(f"ratio {ratio:.3f} (target >= {target}) {'PASS' if ratio >= target else 'FAIL'}")
    print(
        f"ratio to the DuckDB peer {peer_ratio:.3f} (target >= {PEER_TARGET})"
        f" {'PASS' if peer_ratio >= PEER_TARGET else 'FAIL'}"
    )
    return 0 if ratio >= target and peer_ratio >= PEER_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
