"""Where the time of a columnar `b12lab batch` goes, next to a csv.reader -> csv.writer copy.

Generates the same wide export as `throughput.py` (default 1M rows) and, in
one process:

- times the plain pass-through copy (twice, the faster kept);
- runs `b12lab batch` to CSV with timers around the engine (a decision once
  per distinct key; a full report where one is written), the row reader (once
  per decision's representative row) and the writing of each block's CSV text;
- times writing the finished output once more with nothing left to decide:
  its 25 columns, read back as Arrow strings, joined and written as the
  columnar path writes (no quoting, so it is a lower bound);
- runs `b12lab batch --format ndjson` over the first rows (default 100k)
  with timers around the engine, the record templates (built once per key,
  filled per record) and the writing of each JSON record;
- prints each part as a ratio of the copy time (of as many rows).

A part at or above 1.0 is, on its own, as slow as the whole copy: the batch
cannot reach the throughput target until that part shrinks.

    python benchmarks/breakdown.py [--rows 1000000] [--ndjson-rows 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import AS_OF, generate, passthrough


def timed(owner, name: str, totals: dict, counts: dict, label: str) -> None:
    """Wrap owner.name so each call adds its wall time to totals[label]."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
            counts[label] += 1

    setattr(owner, name, wrapper)


def run_instrumented(
    source: Path, target: Path, output_format: str = "csv"
) -> tuple[float, dict, dict]:
    """One in-process `b12lab batch` run, with timers around its main parts (removed after)."""
    from b12lab import decision
    from b12lab.batch import columnar
    from b12lab.batch.rows import RowInterpreter
    from b12lab.batch.run import run_batch
    from b12lab.ranges import load_ranges
    from b12lab.render import rows, templates

    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    wrapped = [
        (decision.DecisionCore, "decide_once", "engine (a decision)"),
        (decision.DecisionCore, "report", "engine (a full report)"),
        (RowInterpreter, "_wide_row", "reading a row as a panel"),
        (columnar, "csv_bytes", "writing CSV text"),
        (templates.ReportTemplates, "build", "a key's record template (engine included)"),
        (templates.ReportTemplates, "render", "each record from its template (build included)"),
        (columnar.ColumnarInterpreter, "_json_records", "a block's JSON records (build included)"),
        (templates.ReportTemplate, "render", "filling a record's template"),
        (rows.NdjsonRecords, "write", "writing each JSON record"),
        (rows.NdjsonRecords, "write_block", "writing a block's JSON records"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in wrapped]
    for owner, name, label in wrapped:
        timed(owner, name, totals, counts, label)
    try:
        start = time.perf_counter()
        run_batch(
            str(source),
            load_ranges(),
            output=str(target),
            output_format=output_format,
            progress=False,
            today=dt.date.fromisoformat(AS_OF),
        )
        elapsed = time.perf_counter() - start
    finally:
        for owner, name, inner in saved:
            setattr(owner, name, inner)
    return elapsed, totals, counts


def write_floor(output: Path) -> float:
    """Join and write the finished output's columns (already known) as Arrow strings."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    with output.open(encoding="utf-8") as handle:
        names = handle.readline().rstrip("\n").split(",")
    table = pa_csv.read_csv(
        output,
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
        ),
    )
    start = time.perf_counter()
    with open(output.with_suffix(".floor"), "wb") as handle:
        for batch in table.to_batches(max_chunksize=1 << 16):
            joined = pc.binary_join_element_wise(*batch.columns, ",")
            joined = pc.binary_join_element_wise(joined, "", "\n")
            handle.write(memoryview(joined.buffers()[2])[: _end(joined)])
    return time.perf_counter() - start


def _end(array) -> int:
    import numpy as np

    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    return int(offsets[array.offset + len(array)])


def report(title: str, copy: float, total: float, totals: dict, counts: dict) -> None:
    print(f"{title}: {total:.2f} s = {total / copy:.2f}x the copy")
    for label, seconds in totals.items():
        each = 1e6 * seconds / max(counts[label], 1)
        print(
            f"  {label}: {seconds:.2f} s = {seconds / copy:.2f}x the copy "
            f"({counts[label]:,} calls, {each:.0f} us each)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ndjson-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "export.csv", Path(folder) / "out.csv"
        generate(source, args.rows)
        copy = passthrough(source, Path(folder) / "copy.csv")
        total, totals, counts = run_instrumented(source, output)
        copy = min(copy, passthrough(source, Path(folder) / "copy.csv"))
        floor = write_floor(output)
        size_in, size_out = source.stat().st_size, output.stat().st_size
        small = Path(folder) / "small.csv"
        generate(small, args.ndjson_rows)
        small_copy = min(passthrough(small, Path(folder) / "copy.csv") for _ in range(2))
        ndjson = run_instrumented(small, Path(folder) / "out.ndjson", "ndjson")
    print(f"{args.rows:,} rows; CSV output {size_out / size_in:.1f}x the input's bytes")
    print(f"csv.reader -> csv.writer copy: {copy:.2f} s (ratio 1.0 = this time)")
    report("b12lab batch to CSV, whole run", copy, total, *called(totals, counts))
    print(f"writing the finished output alone (lower bound): {floor:.2f} s = {floor / copy:.2f}x")
    print(
        f"\n{args.ndjson_rows:,} rows; copy {small_copy:.2f} s (target 0.25: at most 4x the copy)"
    )
    report("b12lab batch to NDJSON, whole run", small_copy, ndjson[0], *called(*ndjson[1:]))
    return 0


def called(totals: dict, counts: dict) -> tuple[dict, dict]:
    """The parts a run called (a CSV run writes no JSON record, an NDJSON run no CSV text)."""
    return {k: v for k, v in totals.items() if counts[k]}, counts


if __name__ == "__main__":
    sys.exit(main())
