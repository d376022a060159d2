"""The table functions on Dask: rows/s with one worker process and with two, and the ratio.

Generates a wide export (benchmarks/throughput.py's `generate`, default 200k
rows), reads it as an Arrow table of text columns, cuts it into partitions,
and in one run times `b12lab.interpret_table` over every partition on a Dask
`LocalCluster` with one worker process, then with two (one thread each). The
partitions are placed on the workers and each worker has read the ranges
before the clock starts, so the times are the interpretation itself. On a
machine with at least two cores the ratio should approach 2.

    python benchmarks/distributed.py [--rows 200000] [--partitions 8]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file's name is the Dask package's: its folder must not be searched for modules.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]


def _throughput():
    spec = importlib.util.spec_from_file_location("throughput", HERE / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text_table(path: Path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows_after_names=1 << 30))
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names.column_names},
            strings_can_be_null=False,
        ),
    )


def timed(workers: int, parts: list, today: str) -> tuple[float, int]:
    """Seconds to interpret every partition on `workers` worker processes, and rows out."""
    from distributed import Client, LocalCluster, wait

    import b12lab

    job = functools.partial(b12lab.interpret_table, today=today)
    with (
        LocalCluster(
            n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        addresses = sorted(client.scheduler_info()["workers"])
        warm = [
            client.submit(job, parts[0].slice(0, 10), workers=[address], pure=False)
            for address in addresses
        ]
        wait(warm)
        placed = [
            client.scatter(part, workers=[addresses[n % workers]]) for n, part in enumerate(parts)
        ]
        wait(placed)
        start = time.perf_counter()
        futures = [
            client.submit(job, part, workers=[addresses[n % workers]], pure=False)
            for n, part in enumerate(placed)
        ]
        rows = sum(client.gather(client.map(lambda t: t.num_rows, futures)))
        elapsed = time.perf_counter() - start
    return elapsed, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "export.csv"
        _throughput().generate(source, args.rows)
        table = text_table(source)
    size = -(-table.num_rows // args.partitions)
    parts = [table.slice(start, size) for start in range(0, table.num_rows, size)]
    one, rows_one = timed(1, parts, "2026-11-20")
    two, rows_two = timed(2, parts, "2026-11-20")
    if rows_one != args.rows or rows_two != args.rows:
        print(f"FAIL: {rows_one} and {rows_two} output rows for {args.rows} input rows")
        return 1
    rate_one, rate_two = args.rows / one, args.rows / two
    print(f"Dask, 1 worker process:  {rate_one:,.0f} rows/s ({args.partitions} partitions)")
    print(f"Dask, 2 worker processes: {rate_two:,.0f} rows/s")
    print(f"ratio two/one {rate_two / rate_one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
