"""Reproducible reports (provenance, --as-of) and honest sources in the data file."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import REPO, report_for

from b12lab import __version__
from b12lab.inputs.yaml_text import load_yaml
from b12lab.ranges import Ranges, load_ranges
from b12lab.rules import RULES

PROVENANCE_KEYS = {"b12lab_version", "ranges_sha256", "guideline", "evaluated_on"}


def _yaml_document():
    path = REPO / "reference_ranges.yaml"
    return load_yaml(path.read_text(encoding="utf-8"), str(path), typed=True)


def test_every_report_carries_its_provenance():
    document = report_for({"b12": "180 pg/mL"}, guideline="nice").to_dict()
    provenance = document["provenance"]
    assert set(provenance) == PROVENANCE_KEYS
    assert provenance["b12lab_version"] == __version__
    assert provenance["guideline"] == "nice"
    assert provenance["evaluated_on"] == "2026-11-20"


def test_ranges_sha256_is_the_hash_of_the_canonical_document():
    document = _yaml_document()
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert load_ranges().sha256 == expected
    assert Ranges(document, ("test",)).sha256 == expected
    assert report_for({"b12": "300"}).provenance["ranges_sha256"] == expected


def test_an_overlay_changes_the_ranges_hash(tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text("thresholds:\n  persistence_window_days: {value: 60, unit: days}\n")
    assert load_ranges(overlay).sha256 != load_ranges().sha256


def test_as_of_fixes_today_and_two_runs_are_byte_identical(cli):
    args = ("interpret", "--b12", "600 pg/mL", "--b12-therapy-start", "2026-01-01")
    first = cli(*args, "--as-of", "2026-01-14", "-f", "json")
    second = cli(*args, "--as-of", "2026-01-14", "-f", "json")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    document = json.loads(first.stdout)
    assert document["panel_date"] == "2026-01-14"
    assert document["therapy_day"] == 13
    assert document["provenance"]["evaluated_on"] == "2026-01-14"


def test_bad_as_of_is_an_input_error(cli):
    result = cli("interpret", "--b12", "300", "--as-of", "yesterday")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_batch_records_carry_provenance_and_honour_as_of(cli, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("patient_id,b12,b12_therapy_start\nP1,600 pg/mL,2026-01-01\n")
    result = cli("batch", export, "-f", "ndjson", "--as-of", "2026-01-14", "--no-progress")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["provenance"]["evaluated_on"] == "2026-01-14"
    assert record["therapy_day"] == 13


# --- sources --------------------------------------------------------------------------


def _cited(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("source", "high_source") and isinstance(value, str):
                found.add(value)
            else:
                found |= _cited(value)
    elif isinstance(node, list):
        for item in node:
            found |= _cited(item)
    return found


def test_every_listed_source_is_cited_by_a_number_or_a_rule():
    document = _yaml_document()
    cited = _cited({k: v for k, v in document.items() if k != "sources"})
    cited |= {source for rule in RULES.values() for source in rule.sources}
    # LOINC and UCUM credit codes, which are identifiers rather than numbers.
    unused = set(document["sources"]) - cited - {"loinc", "ucum"}
    assert not unused


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (("analytes", "mma", "reference", 0, "source"), "lab-typical"),
        (("thresholds", "rebound_window_first_day", "source"), "b12lab-default"),
        (("thresholds", "b12_response_days", "source"), "b12lab-default"),
        (("analytes", "anc", "reference", 0, "source"), "lab-typical"),
        (("analytes", "hemoglobin", "reference", -1, "high_source"), "lab-typical"),
        (("analytes", "tsat", "reference", 0, "source"), "lab-typical"),
        (("analytes", "tsat", "reference", 0, "high_source"), "easl-2022-hh"),
        (("analytes", "folate", "reference", 0, "source"), "who-2012-folate"),
        (("analytes", "ferritin", "reference", 0, "source"), "mast-1998-ferritin"),
    ],
)
def test_sources_are_attributed_as_corrected(path, source):
    node = _yaml_document()
    for key in path:
        node = node[key]
    assert node == source


def test_nice_cut_offs_are_kept_in_ng_per_l_and_agree_in_pmol_per_l():
    document = _yaml_document()
    nice = document["guideline_profiles"]["nice"]
    assert nice["b12_deficient_below"] == {"value": 180, "unit": "ng/L", "source": "nice-ng239"}
    profile = load_ranges().profile("nice")
    assert round(profile.b12_deficient_below.value, 1) == 132.8
    assert round(profile.b12_borderline_below.value, 1) == 258.2
    assert "132.8" in document["sources"]["nice-ng239"]


def test_every_batch_csv_row_carries_guideline_and_provenance(cli, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("patient_id,B12 (pmol/L)\nP1,120\nP2,400\n")
    first = cli("batch", path, "--as-of", "2026-11-20", "--guideline", "nice")
    again = cli("batch", path, "--as-of", "2026-11-20", "--guideline", "nice")
    assert first.exit_code == 0 and first.stdout == again.stdout
    import csv as csv_module
    import io

    rows = list(csv_module.DictReader(io.StringIO(first.stdout)))
    assert [r["guideline"] for r in rows] == ["nice", "nice"]
    assert all("ranges_sha256=" in r["provenance"] for r in rows)
    assert all("evaluated_on=2026-11-20" in r["provenance"] for r in rows)
