"""Batch memory: the peak memory of `b12lab batch` on 1M rows divided by its peak on 100k rows.

Both exports come from the throughput benchmark's generator; each run is
measured in its own child process, two ways:

- the whole process tree: `b12lab batch` and the forked copies that decide
  its blocks (`--jobs`, default: the cores), as the sum of each process's
  proportional set size (PSS: a page shared by n processes counts 1/n in
  each), sampled every 20 ms from /proc (Linux);
- the largest single process's peak RSS (getrusage), which a tree of
  processes can stay under while using more in all.

Targets, on the whole tree (the single process where /proc is missing):
ratio <= 1.2 (flat memory) and under 300 MiB at the larger size.

    python benchmarks/memory.py [--small 100000] [--large 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
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
SAMPLE_EVERY = 0.02  # seconds


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _tree_pss_kib(root: int) -> int:
    """The summed PSS of `root` and every process below it, in KiB (0 where unreadable)."""
    total, waiting = 0, [root]
    while waiting:
        pid = waiting.pop()
        waiting += _children(pid)
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


def _command(source: Path, target: Path, output_format: str) -> list[str]:
    executable = shutil.which("b12lab")
    command = [executable] if executable else [sys.executable, "-m", "b12lab"]
    command += ["batch", str(source), "-o", str(target), "--no-progress", "--format", output_format]
    return [*command, "--as-of", AS_OF]


def peak_rss_kib(source: Path, target: Path, output_format: str) -> int:
    """The largest single process's peak RSS, in KiB."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *_command(source, target, output_format)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip())


def peak_tree_kib(source: Path, target: Path, output_format: str) -> int | None:
    """The highest summed PSS of the whole process tree, sampled; None without /proc."""
    if not Path("/proc/self/smaps_rollup").exists():
        return None
    process = subprocess.Popen(
        _command(source, target, output_format),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_pss_kib(process.pid))
        time.sleep(SAMPLE_EVERY)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, process.args)
    return peak


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
        small_tree = peak_tree_kib(small, out, args.format)
        large_tree = peak_tree_kib(large, out, args.format)
    print(f"largest process's peak RSS, {args.small:,} rows: {small_kib / 1024:.1f} MiB")
    print(f"largest process's peak RSS, {args.large:,} rows: {large_kib / 1024:.1f} MiB")
    if small_tree is not None and large_tree is not None:
        print(f"whole tree's peak PSS, {args.small:,} rows: {small_tree / 1024:.1f} MiB")
        print(f"whole tree's peak PSS, {args.large:,} rows: {large_tree / 1024:.1f} MiB")
        small_kib, large_kib = small_tree, large_tree
    ratio = large_kib / small_kib
    under = large_kib / 1024 < CEILING_MIB
    passed = ratio <= TARGET and under
    print(f"ratio {ratio:.3f} (target <= {TARGET}), under {CEILING_MIB} MiB: {under}")
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
