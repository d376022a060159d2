"""Grouping: `b12lab batch` on a generated long export, shuffled against sorted.

The same rows (patient, date, test, result, unit; five tests per panel, two
panels per patient) are written sorted by patient and date, and shuffled
with a fixed seed. Each export goes through `b12lab batch` in its own child
process; the script prints rows/s and peak RSS of each, side by side, and
checks that both runs wrote the same number of records.

    python benchmarks/grouping.py [--rows 1000000] [--memory 256MB] [--timeline]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = [
    ("B12", ["90", "150", "300", "700"], "pmol/L"),
    ("PLT", ["40", "95", "250", "600"], "10^9/L"),
    ("Ferritin", ["8", "30", "150", "600"], "ng/mL"),
    ("ANC", ["0.4", "1.2", "3"], "10^9/L"),
    ("Hb", ["95", "120", "150"], "g/L"),
]
MEASURE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def generate(rows: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    out = []
    patients = max(1, rows // (2 * len(TESTS)))
    for patient in range(patients):
        for month in (9, 10):
            date = f"2026-{month:02d}-{1 + patient % 28:02d}"
            for test, values, unit in TESTS:
                out.append(f"P{patient:07d},{date},{test},{rnd.choice(values)},{unit}")
    return out[:rows]


def write(path: Path, rows: list[str]) -> None:
    with path.open("w") as stream:
        stream.write("patient_id,date,test,result,unit\n")
        for row in rows:
            stream.write(row + "\n")


def run(source: Path, target: Path, extra: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one `b12lab batch` in a child process."""
    executable = shutil.which("b12lab")
    command = [executable] if executable else [sys.executable, "-m", "b12lab"]
    command += ["batch", str(source), "-o", str(target), "--no-progress", *extra]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return time.perf_counter() - start, int(result.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory", default=None, help="B12LAB_GROUP_MEMORY for both runs")
    parser.add_argument("--timeline", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.memory:
        env["B12LAB_GROUP_MEMORY"] = args.memory
    extra = ["--timeline"] if args.timeline else []
    rows = generate(args.rows)
    with tempfile.TemporaryDirectory() as folder:
        sorted_csv, shuffled_csv = Path(folder) / "sorted.csv", Path(folder) / "shuffled.csv"
        write(sorted_csv, rows)
        random.Random(7).shuffle(rows)
        write(shuffled_csv, rows)
        del rows
        results = {}
        for name, source in (("sorted", sorted_csv), ("shuffled", shuffled_csv)):
            target = Path(folder) / f"{name}.out.csv"
            seconds, rss = run(source, target, extra, env)
            with target.open() as stream:
                records = sum(1 for _ in stream) - 1
            results[name] = (seconds, rss, records)
    print(
        f"{args.rows:,} rows, long layout{' --timeline' if args.timeline else ''}, "
        f"B12LAB_GROUP_MEMORY={args.memory or 'default (256MB)'}"
    )
    print(f"{'':10} {'seconds':>9} {'rows/s':>10} {'peak RSS':>12} {'records':>9}")
    for name, (seconds, rss, records) in results.items():
        print(
            f"{name:10} {seconds:9.1f} {args.rows / seconds:10,.0f} "
            f"{rss / 1024:8.1f} MiB {records:9,}"
        )
    (s_time, s_rss, s_records), (u_time, u_rss, u_records) = results.values()
    print(f"shuffled/sorted: time {u_time / s_time:.2f}x, peak RSS {u_rss / s_rss:.2f}x")
    if s_records != u_records:
        print("FAIL: the two runs wrote different numbers of records")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
