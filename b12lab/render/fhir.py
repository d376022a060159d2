"""A Report as a FHIR R4 Bundle: Patient, normalized Observations, one DiagnosticReport.

Findings travel on the DiagnosticReport as one complex extension each
(`FINDING_EXTENSION`), whose parts hold the finding id, domain, severity,
title, detail, next steps and evidence, so that a receiving system keeps
b12lab's reasons beside the `conclusion` text. Resource ids are derived from
the patient, date and analyte, so the same report always gives the same Bundle.
"""

from __future__ import annotations

import uuid
from typing import Any

from b12lab.model import Measurement, Report, rounded_number
from b12lab.ranges import Ranges

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"
FINDING_EXTENSION = "urn:b12lab:fhir:extension:finding"
STATUS_EXTENSION = "urn:b12lab:fhir:extension:b12-status"
FLAG_CODES = {  # b12lab flag -> v3 ObservationInterpretation code and display
    "low": ("L", "Low"),
    "high": ("H", "High"),
    "critical_low": ("LL", "Critical low"),
    "critical_high": ("HH", "Critical high"),
    "normal": ("N", "Normal"),
}
_NAMESPACE = uuid.UUID("6f1d0c52-7b0a-4c1e-9d43-2b8e5a9c1f10")


def report_bundle(report: Report, ranges: Ranges | None = None) -> dict[str, Any]:
    """A FHIR R4 Bundle (type collection) holding the report."""
    if ranges is None:
        from b12lab.ranges import load_ranges

        ranges = load_ranges()
    seed = f"{report.patient_id or ''}|{report.panel_date or ''}"
    entries: list[dict[str, Any]] = []
    subject = None
    if report.patient_id:
        patient_id = _uuid(seed, "Patient")
        entries.append(
            _entry(
                patient_id,
                {
                    "resourceType": "Patient",
                    "id": patient_id,
                    "identifier": [{"value": report.patient_id}],
                },
            )
        )
        subject = {"reference": f"urn:uuid:{patient_id}", "display": report.patient_id}
    results = []
    for measurement in report.measurements:
        observation_id = _uuid(seed, "Observation", measurement.analyte)
        entries.append(
            _entry(
                observation_id, _observation(measurement, report, ranges, observation_id, subject)
            )
        )
        results.append({"reference": f"urn:uuid:{observation_id}"})
    report_id = _uuid(seed, "DiagnosticReport")
    entries.append(_entry(report_id, _diagnostic_report(report, report_id, subject, results)))
    return {
        "resourceType": "Bundle",
        "id": _uuid(seed, "Bundle"),
        "type": "collection",
        "entry": entries,
    }


def conclusion(report: Report) -> str:
    """The B12 status and what it implies for platelets, neutrophils and ferritin."""
    guideline = f" ({report.guideline_title or report.guideline})" if report.guideline else ""
    parts = [f"Vitamin B12 status: {report.b12_status}{guideline}."]
    for domain, implication in report.implications.items():
        parts.append(f"{domain.capitalize()}: {implication.summary}")
    if report.errors:
        parts.append("Not interpreted: " + "; ".join(report.errors))
    return " ".join(part.strip() for part in parts)


def _observation(
    m: Measurement, report: Report, ranges: Ranges, observation_id: str, subject: dict | None
) -> dict[str, Any]:
    spec = ranges.analytes[m.analyte]
    ucum = spec.ucum_for(m.unit) or spec.ucum
    code: dict[str, Any] = {"text": spec.name}
    if spec.loinc:
        code["coding"] = [{"system": LOINC, "code": spec.loinc[0], "display": spec.name}]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": code,
    }
    if subject is not None:
        resource["subject"] = subject
    if report.panel_date is not None:
        resource["effectiveDateTime"] = report.panel_date.isoformat()
    resource["valueQuantity"] = _quantity(m.value, m, ucum)
    if m.censored in ("<", ">"):
        resource["valueQuantity"]["comparator"] = m.censored
    band = {}
    if m.reference_low is not None:
        band["low"] = _quantity(m.reference_low, m, ucum)
    if m.reference_high is not None:
        band["high"] = _quantity(m.reference_high, m, ucum)
    if band:
        resource["referenceRange"] = [band]
    if m.flag in FLAG_CODES:
        code_value, display = FLAG_CODES[m.flag]
        resource["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": code_value, "display": display}]}
        ]
    notes = []
    if m.derived:
        notes.append("Derived by b12lab from other results of the panel.")
    if m.input:
        notes.append(f"As reported: {m.input}")
    if notes:
        resource["note"] = [{"text": " ".join(notes)}]
    return resource


def _quantity(value: float, m: Measurement, ucum: str) -> dict[str, Any]:
    return {
        "value": rounded_number(value, m.decimals),
        "unit": m.unit,
        "system": UCUM,
        "code": ucum,
    }


def _diagnostic_report(
    report: Report, report_id: str, subject: dict | None, results: list[dict]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "extension": [
            {"url": STATUS_EXTENSION, "valueCode": report.b12_status},
            *(_finding_extension(f) for f in report.findings),
        ],
        "status": "final",
        "category": [{"coding": [{"system": REPORT_CATEGORY, "code": "LAB"}]}],
        "code": {"text": "b12lab interpretation: vitamin B12 status and its implications"},
    }
    if subject is not None:
        resource["subject"] = subject
    if report.panel_date is not None:
        resource["effectiveDateTime"] = report.panel_date.isoformat()
    if results:
        resource["result"] = results
    resource["conclusion"] = conclusion(report)
    return resource


def _finding_extension(finding) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "id", "valueCode": finding.id},
        {"url": "domain", "valueCode": finding.domain},
        {"url": "severity", "valueCode": finding.severity},
        {"url": "title", "valueString": finding.title},
        {"url": "detail", "valueString": finding.detail},
    ]
    parts += [{"url": "nextStep", "valueString": step} for step in finding.next_steps]
    parts += [
        {"url": "evidence", "valueString": f"{name}: {value}"}
        for name, value in finding.evidence.items()
    ]
    return {"url": FINDING_EXTENSION, "extension": parts}


def _entry(resource_id: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource_id}", "resource": resource}


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))
