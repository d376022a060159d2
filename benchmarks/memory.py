"""Batch memory: peak RSS of `b12lab batch` on 1M rows divided by peak RSS on 100k rows.

Both exports come from the throughput benchmark's generator; each run is
measured in its own child process. Targets: ratio <= 1.2 (flat memory) and
under 300 MiB at the larger size.

    python benchmarks/memory.py [--small 100000] [--large 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from throughput import AS_OF, generate

TARGET = 1.2
CEILING_MIB = 300
MEASURE = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_kib(source: Path, target: Path, output_format: str) -> int:
    executable = shutil.which("b12lab")
    command = [executable] if executable else [sys.executable, "-m", "b12lab"]
    command += ["batch", str(source), "-o", str(target), "--no-progress", "--format", output_format]
    command += ["--as-of", AS_OF]
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True
    )
    return int(result.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--format", default="csv", choices=["csv", "ndjson", "json"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder) / "small.csv", Path(folder) / "large.csv"
        generate(small, args.small)
        generate(large, args.large)
        out = Path(folder) / "out"
        small_kib = peak_rss_kib(small, out, args.format)
        large_kib = peak_rss_kib(large, out, args.format)
    ratio = large_kib / small_kib
    print(f"peak RSS, {args.small:,} rows: {small_kib / 1024:.1f} MiB")
    print(f"peak RSS, {args.large:,} rows: {large_kib / 1024:.1f} MiB")
    under = large_kib / 1024 < CEILING_MIB
    passed = ratio <= TARGET and under
    print(f"ratio {ratio:.3f} (target <= {TARGET}), under {CEILING_MIB} MiB: {under}")
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
