"""Batch throughput on bulk FHIR NDJSON: resources/s of `b12lab batch` over a json.loads pass.

Generates a bulk export (default 50,000 Observations over 10,000 patients, with
their Patient resources and some Encounters, lines in a shuffled order as bulk
exports come), then times in one run a plain pass-through (`json.loads` of
each line, `json.dumps` back out) and `b12lab batch FILE --format csv -o OUT`
in a subprocess, and prints both rates and their ratio. The record count is
checked: one CSV row per (patient, day) panel.

    python benchmarks/ndjson_throughput.py [--observations 50000] [--patients 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS_PER_PANEL = 5
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# (LOINC code, UCUM unit, typical low, typical high, decimals)
TESTS = [
    ("2132-9", "pg/mL", 150, 900, 0),
    ("777-3", "10*9/L", 60, 450, 0),
    ("751-8", "10*9/L", 0.6, 7.5, 1),
    ("2276-4", "ug/L", 8, 900, 0),
    ("718-7", "g/L", 80, 165, 0),
    ("787-2", "fL", 75, 115, 0),
    ("8867-4", "/min", 50, 110, 0),  # heart rate: not read by b12lab, skipped
]


def generate(path: Path, observations: int, patients: int, seed: int = 1) -> int:
    """Write the file; return the number of panels it holds."""
    rng = random.Random(seed)
    lines = []
    for number in range(patients):
        lines.append(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "id": f"p{number}",
                    "identifier": [{"value": f"MRN{number:06d}"}],
                    "gender": rng.choice(["female", "male"]),
                    "birthDate": f"{rng.randint(1930, 2005)}-{rng.randint(1, 12):02d}-"
                    f"{rng.randint(1, 28):02d}",
                }
            )
        )
        if number % 5 == 0:
            lines.append(json.dumps({"resourceType": "Encounter", "id": f"e{number}"}))
    panels = set()
    for number in range(observations):
        panel = number // RESULTS_PER_PANEL
        patient = panel % patients
        day = f"2026-{1 + (panel // patients) % 12:02d}-15"
        # five different tests per panel: a test given twice would be a duplicate error
        code, unit, low, high, decimals = TESTS[(panel + number % RESULTS_PER_PANEL) % len(TESTS)]
        value = round(rng.uniform(low, high), decimals)
        if code != "8867-4":
            panels.add((patient, day))
        resource = {
            "resourceType": "Observation",
            "id": f"o{number}",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/p{patient}"},
            "effectiveDateTime": f"{day}T08:30:00Z",
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }
        lines.append(json.dumps(resource))
    # Observations of one panel are near each other, as in a real export: shuffle in blocks.
    head, body = lines[: patients + patients // 5], lines[patients + patients // 5 :]
    blocks = [body[i : i + 500] for i in range(0, len(body), 500)]
    for block in blocks:
        rng.shuffle(block)
    path.write_text(
        "\n".join(head + [line for block in blocks for line in block]) + "\n", encoding="utf-8"
    )
    return len(panels)


def passthrough(source: Path, target: Path) -> float:
    start = time.perf_counter()
    with source.open("rb") as inp, target.open("w", encoding="utf-8") as out:
        for line in inp:
            if line.strip():
                out.write(json.dumps(json.loads(line)) + "\n")
    return time.perf_counter() - start


def b12lab_batch(source: Path, target: Path) -> float:
    executable = shutil.which("b12lab")
    command = [executable] if executable else [sys.executable, "-m", "b12lab"]
    start = time.perf_counter()
    subprocess.run(
        [*command, "batch", str(source), "--format", "csv", "-o", str(target), "--no-progress"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--patients", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "bulk.ndjson"
        panels = generate(source, args.observations, args.patients)
        with source.open("rb") as handle:
            resources = sum(1 for line in handle if line.strip())
        plain = passthrough(source, Path(folder) / "copy.ndjson")
        ours = b12lab_batch(source, Path(folder) / "out.csv")
        plain = min(plain, passthrough(source, Path(folder) / "copy.ndjson"))
        with (Path(folder) / "out.csv").open(encoding="utf-8") as handle:
            written = sum(1 for _ in handle) - 1
    if written != panels:
        print(f"FAIL: {written} output rows for {panels} panels")
        return 1
    plain_rate, our_rate = resources / plain, resources / ours
    print(f"json.loads -> json.dumps pass-through: {plain_rate:,.0f} resources/s")
    print(
        f"b12lab batch ({resources:,} resources, {args.observations:,} Observations, "
        f"{panels:,} panels, csv out): {our_rate:,.0f} resources/s ({written / ours:,.0f} panels/s)"
    )
    print(f"ratio {our_rate / plain_rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
