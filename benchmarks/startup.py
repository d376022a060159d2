"""Start-up cost of a one-patient `b12lab interpret`, relative to importing typer and rich.

Runs the two commands interleaved (so machine noise hits both alike) and
prints the median wall time of each and their ratio. Target: ratio <= 1.5.

    python benchmarks/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

PATIENT = [
    "interpret",
    "--b12",
    "180 pg/mL",
    "--platelets",
    "95 x10^9/L",
    "--anc",
    "1.1",
    "--ferritin",
    "450 ng/mL",
    "--sex",
    "female",
    "--format",
    "json",
]
BASELINE = [sys.executable, "-c", "import typer, rich.console"]
TARGET = 1.5


def b12lab_command() -> list[str]:
    executable = shutil.which("b12lab")
    return [executable] if executable else [sys.executable, "-m", "b12lab"]


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    interpret = b12lab_command() + PATIENT
    for command in (interpret, BASELINE):  # warm the file cache and bytecode
        wall_time(command)
    ours, base = [], []
    for _ in range(args.runs):
        ours.append(wall_time(interpret))
        base.append(wall_time(BASELINE))
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    ratio = ours_median / base_median
    print(f"b12lab interpret (one patient, json): median {ours_median * 1000:.1f} ms")
    print(f"python -c 'import typer, rich.console': median {base_median * 1000:.1f} ms")
    print(f"ratio {ratio:.2f} (target <= {TARGET}) {'PASS' if ratio <= TARGET else 'FAIL'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
