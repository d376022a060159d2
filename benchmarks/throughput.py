"""Batch throughput: rows/s of `b12lab batch` over rows/s of a csv.reader -> csv.writer copy.

Generates a wide export (default 1M rows) shaped like a real one (most
results inside their reference intervals, abnormal and censored tails, mixed
unit spellings, empty and "n/a" cells), then times, in one run, a plain
pass-through of the same file and `b12lab batch FILE -o OUT`. Targets: ratio
>= 1.0 for CSV output, >= 0.25 for NDJSON.

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
                    rng.choice(["K/uL", "x10^9/L", "10*9/L"]),
                    _pick(rng, [(0.85, 1.5, 7.5), (0.1, 0.5, 1.5), (0.05, 7.5, 15)], 1),
                    _pick(rng, [(0.7, 30, 300), (0.15, 5, 30), (0.15, 300, 1200)], 0),
                    rng.choice(["ng/mL", "ug/L"]),
                    _pick(rng, [(0.8, 12, 16.5), (0.2, 7, 12)], 1),
                    "g/dL",
                    _pick(rng, [(0.85, 80, 100), (0.1, 100, 120), (0.05, 65, 80)], 0),
                    rng.choice(["", ""])
                    if rng.random() < 0.4
                    else _pick(rng, [(0.85, 0.1, 5), (0.15, 5, 80)], 1),
                    rng.choice(["", "n/a"])
                    if rng.random() < 0.6
                    else _pick(rng, [(0.9, 4, 20), (0.1, 1, 3)], 1) + " ng/mL",
                ]
            )


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
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=sorted(TARGETS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "export.csv"
        generate(source, args.rows)
        plain = passthrough(source, Path(folder) / "copy.csv")
        ours = b12lab_batch(source, Path(folder) / "out.csv", args.format)
        plain_again = passthrough(source, Path(folder) / "copy.csv")
        plain = min(plain, plain_again)
        with (Path(folder) / "out.csv").open(encoding="utf-8") as handle:
            written = sum(1 for _ in handle) - (args.format == "csv")
    if written != args.rows:
        print(f"FAIL: {written} output rows for {args.rows} input rows")
        return 1
    plain_rate, our_rate = args.rows / plain, args.rows / ours
    ratio = our_rate / plain_rate
    print(f"csv.reader -> csv.writer pass-through: {plain_rate:,.0f} rows/s")
    target = TARGETS[args.format]
    print(f"b12lab batch ({args.rows:,} rows, {args.format} out): {our_rate:,.0f} rows/s")
    print(f"ratio {ratio:.3f} (target >= {target}) {'PASS' if ratio >= target else 'FAIL'}")
    return 0 if ratio >= target else 1


if __name__ == "__main__":
    sys.exit(main())
