"""FHIR R4 and CDS Hooks output, checked by an independent validator (fhir.resources)."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLES, report_for

from b12lab.render.cds_hooks import SUMMARY_LIMIT, report_cards
from b12lab.render.fhir import FINDING_EXTENSION, INTERPRETATION, LOINC, UCUM, report_bundle

R4B = pytest.importorskip("fhir.resources.R4B")
from fhir.resources.R4B.bundle import Bundle  # noqa: E402
from fhir.resources.R4B.diagnosticreport import DiagnosticReport  # noqa: E402
from fhir.resources.R4B.observation import Observation  # noqa: E402
from fhir.resources.R4B.patient import Patient  # noqa: E402

CLASSES = {"Observation": Observation, "DiagnosticReport": DiagnosticReport, "Patient": Patient}
PANEL = {
    "b12": "180 pg/mL",
    "platelets": "95 K/uL",
    "anc": "1.1",
    "ferritin": "450 ng/mL",
    "hemoglobin": "9.8 g/dL",
    "crp": "<5 mg/L",
}


@pytest.fixture(scope="module")
def report():
    return report_for(PANEL, sex="female", age=54, patient_id="P001")


@pytest.fixture(scope="module")
def bundle(report):
    return report_bundle(report)


def resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_bundle_and_each_resource_validate_as_fhir(bundle):
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        CLASSES[resource["resourceType"]].model_validate(resource)
    assert bundle["type"] == "collection"


def test_bundle_holds_patient_observations_and_one_report(bundle, report):
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Patient") == 1
    assert kinds.count("DiagnosticReport") == 1
    assert kinds.count("Observation") == len(report.measurements)
    assert resources(bundle, "Patient")[0]["identifier"][0]["value"] == "P001"


@pytest.mark.parametrize(
    ("loinc", "value", "code", "comparator", "flag", "low", "high"),
    [
        ("2132-9", 132.8, "pmol/L", None, "L", 148, 664),
        ("777-3", 95, "10*9/L", None, "L", 150, 450),
        ("751-8", 1.1, "10*9/L", None, "L", 1.5, 7.5),
        ("2276-4", 450, "ug/L", None, "H", 30, 200),
        ("718-7", 98, "g/L", None, "L", 120, 155),
        ("1988-5", 5, "mg/L", "<", "N", None, 5),
    ],
)
def test_observation_values_units_ranges_and_interpretation(
    bundle, loinc, value, code, comparator, flag, low, high
):
    observation = next(
        o for o in resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == loinc
    )
    assert observation["code"]["coding"][0]["system"] == LOINC
    quantity = observation["valueQuantity"]
    assert (quantity["value"], quantity["system"], quantity["code"]) == (value, UCUM, code)
    assert quantity.get("comparator") == comparator
    assert observation["interpretation"][0]["coding"][0] == {
        "system": INTERPRETATION,
        "code": flag,
        "display": observation["interpretation"][0]["coding"][0]["display"],
    }
    band = observation["referenceRange"][0]
    assert band.get("low", {}).get("value") == low
    assert band["high"]["value"] == high
    assert observation["effectiveDateTime"] == "2026-11-20"


def test_diagnostic_report_conclusion_results_and_findings(bundle, report):
    diagnostic = resources(bundle, "DiagnosticReport")[0]
    assert diagnostic["status"] == "final"
    assert diagnostic["conclusion"].startswith("Vitamin B12 status: deficient")
    for domain in ("Platelets", "Neutrophils", "Ferritin"):
        assert f"{domain}: " in diagnostic["conclusion"]
    observation_urls = {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    }
    assert {r["reference"] for r in diagnostic["result"]} == observation_urls
    carried = [e for e in diagnostic["extension"] if e["url"] == FINDING_EXTENSION]
    assert [_part(e, "id") for e in carried] == [f.id for f in report.findings]
    assert [_part(e, "severity") for e in carried] == [f.severity for f in report.findings]
    first = report.findings[0]
    evidence = [p["valueString"] for p in carried[0]["extension"] if p["url"] == "evidence"]
    assert evidence == [f"{k}: {v}" for k, v in first.evidence.items()]


def _part(extension, name):
    part = next(p for p in extension["extension"] if p["url"] == name)
    return part.get("valueCode") or part.get("valueString")


def test_same_report_gives_the_same_bundle(report):
    assert report_bundle(report) == report_bundle(report)


def test_report_without_patient_id_has_no_patient_and_still_validates():
    bundle = report_bundle(report_for({"b12": "400 pmol/L"}))
    Bundle.model_validate(bundle)
    assert resources(bundle, "Patient") == []


def test_report_with_no_values_validates():
    report = report_for({}, patient_id="P9")
    bundle = report_bundle(report)
    Bundle.model_validate(bundle)
    assert "result" not in resources(bundle, "DiagnosticReport")[0]


# --- CDS Hooks ---------------------------------------------------------------------


def test_cds_cards_follow_the_card_shape(report):
    cards = report_cards(report)["cards"]
    assert len(cards) == len(report.findings)
    for card in cards:
        assert {"summary", "indicator", "source"} <= set(card)
        assert card["indicator"] in ("info", "warning", "critical")
        assert 0 < len(card["summary"]) <= SUMMARY_LIMIT
        assert card["source"]["label"] == "b12lab"
        assert isinstance(card["detail"], str)
    order = ["critical", "warning", "info"]
    indicators = [order.index(card["indicator"]) for card in cards]
    assert indicators == sorted(indicators)


@pytest.mark.parametrize(
    ("panel", "indicator"),
    [
        ({"b12": "180 pg/mL", "platelets": "95", "anc": "1.1", "hemoglobin": "80"}, "critical"),
        ({"b12": "180 pg/mL"}, "warning"),
        ({"b12": "400 pmol/L"}, "info"),
    ],
)
def test_cds_indicator_follows_the_highest_severity(panel, indicator):
    cards = report_cards(report_for(panel))["cards"]
    assert cards[0]["indicator"] == indicator


def test_cds_summary_is_cut_at_140_characters(report):
    from dataclasses import replace

    long = replace(report, findings=(replace(report.findings[0], title="x " * 200),))
    summary = report_cards(long)["cards"][0]["summary"]
    assert len(summary) == SUMMARY_LIMIT


# --- command line ------------------------------------------------------------------


def test_interpret_format_fhir(cli):
    bundle = cli.json("interpret", SAMPLES / "panel.yaml", "--format", "fhir")
    Bundle.model_validate(bundle)
    assert resources(bundle, "Patient")[0]["identifier"][0]["value"] == "P001"


def test_interpret_format_cds_hooks(cli):
    document = cli.json("interpret", "--b12", "180 pg/mL", "--format", "cds-hooks")
    assert document["cards"][0]["source"]["topic"]["code"] == "b12-deficient"


def test_batch_fhir_ndjson_one_valid_bundle_per_panel(cli, tmp_path):
    out = tmp_path / "out.ndjson"
    result = cli("batch", SAMPLES / "wide_us.csv", "-f", "fhir-ndjson", "-o", out)
    assert result.exit_code in (0, 3), result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    rows = (SAMPLES / "wide_us.csv").read_text().strip().splitlines()
    assert len(lines) == len(rows) - 1
    for line in lines:
        Bundle.model_validate(json.loads(line))
