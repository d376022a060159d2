"""Golden outputs: the JSON reports and batch records b12lab gives today, kept as files.

A change to how the rules are written (or evaluated) must not change a single
finding, text, piece of evidence or batch byte. `tests/test_golden.py` compares
today's outputs with the files; when a change of output is intended, rewrite
them and review the diff:

    python tests/golden.py --write

The version and the ranges file's SHA-256 are masked: they change with every
release and every edit to the ranges file, which the golden files do not judge.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN = HERE / "fixtures" / "golden"
AS_OF = "2026-11-20"
EXPORT_ROWS = {"csv": 20_000, "ndjson": 3_000}

# One-patient inputs: (golden name, command-line arguments after `interpret`).
REPORTS = [
    ("panel", ["examples/panel.yaml"]),
    ("panel_lab_overlay", ["examples/panel.yaml", "--ranges", "examples/lab_overlay.yaml"]),
    ("panel_nice", ["examples/panel.yaml", "--guideline", "nice"]),
    ("patient_timeline", ["examples/patient_timeline.yaml"]),
    ("fhir_bundle", ["examples/fhir_bundle.json"]),
    ("fhir_bundle_fixture", ["tests/fixtures/fhir_bundle.json"]),
]
# Batch inputs: (golden name, file).
BATCHES = [
    ("long_lis", "examples/long_lis.csv"),
    ("wide_us", "examples/wide_us.csv"),
    ("fhir_bulk", "examples/fhir_bulk.ndjson"),
    ("oru_r01", "examples/oru_r01.hl7"),
    ("oru_batch", "tests/fixtures/oru_batch.hl7"),
]

_MASKS = (
    (re.compile(r"b12lab_version(\"?[=:] ?\"?)[^\s\"]+"), r"b12lab_version\1<version>"),
    (re.compile(r"ranges_sha256(\"?[=:] ?\"?)[0-9a-f]{64}"), r"ranges_sha256\1<sha256>"),
)


def masked(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def _run(args: list[str]) -> str:
    from typer.testing import CliRunner

    from b12lab.cli import app

    result = CliRunner().invoke(app, args)
    if result.exit_code not in (0, 4):
        raise RuntimeError(f"b12lab {' '.join(args)} exited {result.exit_code}: {result.stderr}")
    return masked(result.stdout)


def _test_panels() -> Iterator[tuple[str, dict, dict]]:
    """Every panel of the rule catalogue's table (one that fires, one near miss)."""
    sys.path.insert(0, str(HERE))
    from test_rules import CASES

    for rule_id, fires, near_miss in CASES:
        yield f"{rule_id}/fires", *fires
        yield f"{rule_id}/near-miss", *near_miss


def panel_reports() -> str:
    from conftest import report_for

    from b12lab.ranges import load_ranges
    from b12lab.render import RenderOptions, json_report

    options = RenderOptions(ranges=load_ranges())
    reports = {}
    for name, values, context in _test_panels():
        reports[name] = json.loads(json_report(report_for(values, **context), options))
    return masked(json.dumps(reports, indent=1, ensure_ascii=False, default=str)) + "\n"


def _export(folder: Path, rows: int) -> Path:
    spec = importlib.util.spec_from_file_location(
        "throughput", REPO / "benchmarks" / "throughput.py"
    )
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    path = folder / f"export_{rows}.csv"
    throughput.generate(path, rows)
    return path


def _batch(path: Path | str, output_format: str) -> str:
    return _run(
        ["batch", str(path), "-o", "-", "--format", output_format, "--as-of", AS_OF,
         "--no-progress"]
    )  # fmt: skip


def outputs() -> Iterator[tuple[str, Callable[[], str]]]:
    """(golden file name, how to produce its content today)."""
    for name, args in REPORTS:
        yield (
            f"reports/{name}.json",
            lambda args=args: _run(
                ["interpret", *[str(REPO / a) if a.startswith(("examples/", "tests/")) else a
                                for a in args], "--format", "json", "--as-of", AS_OF]
            ),
        )  # fmt: skip
    yield "reports/test_panels.json", panel_reports
    for output_format in ("text", "json", "csv"):
        yield (
            f"catalogue/rules.{output_format}",
            lambda f=output_format: _run(["rules", "--format", f]),
        )
    for name, path in BATCHES:
        for output_format in ("csv", "ndjson"):
            yield (
                f"batch/{name}.{output_format}",
                lambda path=path, f=output_format: _batch(REPO / path, f),
            )
    for output_format, rows in EXPORT_ROWS.items():

        def export_output(rows=rows, output_format=output_format) -> str:
            with tempfile.TemporaryDirectory() as folder:
                return _batch(_export(Path(folder), rows), output_format)

        yield f"batch/export_{rows}.{output_format}.gz", export_output


def read(name: str) -> str:
    path = GOLDEN / name
    if name.endswith(".gz"):
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def write(name: str, text: str) -> None:
    path = GOLDEN / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden.py --write")
    sys.path.insert(0, str(HERE))
    for name, produce in outputs():
        write(name, produce())
        print(f"wrote {GOLDEN / name}")
