"""The JSON report is a public, versioned contract: checked key by key."""

from __future__ import annotations

import json

from conftest import report_for

MEASUREMENT_KEYS = {
    "analyte",
    "value",
    "unit",
    "ucum",
    "input",
    "flag",
    "censored",
    "derived",
    "reference",
}
FINDING_KEYS = {"id", "domain", "severity", "title", "detail", "next_steps", "evidence"}
TOP_KEYS = {
    "schema_version",
    "patient_id",
    "panel_date",
    "b12_status",
    "measurements",
    "implications",
    "findings",
    "missing",
    "warnings",
    "errors",
}


def contract(**kwargs):
    report = report_for(
        {"b12": "180 pg/mL", "platelets": "95 x10^9/L", "anc": "1.1", "ferritin": "450 ng/mL"},
        sex="female",
        patient_id="P001",
        **kwargs,
    )
    return json.loads(json.dumps(report.to_dict()))


def test_top_level_keys_and_types():
    document = contract()
    assert set(document) >= TOP_KEYS
    assert document["schema_version"] == 1
    assert document["patient_id"] == "P001"
    assert document["panel_date"] == "2026-11-20"
    assert document["b12_status"] == "deficient"
    assert isinstance(document["missing"], list)
    assert isinstance(document["warnings"], list)
    assert document["errors"] == []
    assert document["guideline"] == "who"


def test_measurement_entries_follow_the_contract():
    document = contract()
    b12 = document["measurements"][0]
    assert set(b12) == MEASUREMENT_KEYS
    assert b12 == {
        "analyte": "b12",
        "value": 132.8,
        "unit": "pmol/L",
        "ucum": "pmol/L",
        "input": "180 pg/mL",
        "flag": "low",
        "censored": None,
        "derived": False,
        "reference": {"low": 148, "high": 664, "unit": "pmol/L"},
    }
    flags = {m["analyte"]: m["flag"] for m in document["measurements"]}
    assert flags == {"b12": "low", "platelets": "low", "anc": "low", "ferritin": "high"}


def test_implications_cover_the_three_domains():
    document = contract()
    assert set(document["implications"]) == {"platelets", "neutrophils", "ferritin"}
    platelets = document["implications"]["platelets"]
    assert set(platelets) == {"flag", "summary", "findings"}
    assert platelets["flag"] == "low"
    assert platelets["findings"] == ["plt-low-consistent-with-b12"]
    assert platelets["summary"]


def test_finding_entries_follow_the_contract():
    document = contract()
    finding = next(f for f in document["findings"] if f["id"] == "plt-low-consistent-with-b12")
    assert set(finding) == FINDING_KEYS
    assert finding["domain"] == "platelets"
    assert finding["severity"] == "advisory"
    assert finding["evidence"]["b12"] == "132.8 pmol/L"
    assert finding["evidence"]["platelets"] == "95 10^9/L"
    assert all(isinstance(step, str) for step in finding["next_steps"])


def test_censored_and_missing_are_reported():
    report = report_for({"b12": "> 1476 pg/mL", "platelets": "300"})
    document = report.to_dict()
    assert document["measurements"][0]["censored"] == ">"
    assert document["b12_status"] == "high"
    assert "ferritin" in document["missing"] and "anc" in document["missing"]
