"""The data that flows through b12lab: Measurement -> Panel -> Finding -> Report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
SEVERITIES = ("urgent", "advisory", "info")
DOMAINS = ("b12", "platelets", "neutrophils", "ferritin", "general")
IMPLICATION_DOMAINS = ("platelets", "neutrophils", "ferritin")
B12_STATUSES = ("deficient", "borderline", "normal", "high", "unknown")
DISCLAIMER = (
    "Decision support for clinicians and laboratory staff, not a diagnosis: "
    "interpret with the patient's history and examination."
)


def evolve(instance, **changes):
    """`dataclasses.replace` for the frozen records of the engine's hot path, without
    running `__init__` again (they have no `__post_init__` and no cached properties):
    a shallow copy with `changes` set."""
    if not changes.keys() <= instance.__dataclass_fields__.keys():
        unknown = sorted(changes.keys() - instance.__dataclass_fields__.keys())
        raise TypeError(f"{type(instance).__name__} has no field {', '.join(unknown)}")
    new = object.__new__(type(instance))
    fields = new.__dict__
    fields.update(instance.__dict__)
    fields.update(changes)
    return new


@dataclass(frozen=True)
class Measurement:
    """One analyte's result, converted to the analyte's canonical unit."""

    analyte: str
    value: float
    unit: str
    input: str
    censored: str | None = None  # "<" or ">": the true value lies beyond `value`
    derived: bool = False
    unit_assumed: bool = False
    flag: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    decimals: int = 1
    carried_from: dt.date | None = None  # measured on an earlier panel of this date
    lab_reference: str | None = None  # the laboratory's own interval, as it printed it
    lab_flag: str | None = None  # the laboratory's own flag (HL7 table 0078 / FHIR code)

    def shown(self) -> str:
        """The value as a lab would print it, in the canonical unit."""
        return f"{self.censored or ''}{format_number(self.value, self.decimals)} {self.unit}"


@dataclass(frozen=True)
class Context:
    """What the clinician tells b12lab beyond the numbers."""

    b12_therapy_start: dt.date | None = None
    days_on_therapy: int | None = None
    alcohol_use: bool = False  # heavy alcohol use now ("current")
    alcohol_stopped: bool = False  # heavy alcohol use recently stopped
    neuro_symptoms: bool = False
    hypersegmented_neutrophils: bool = False
    pregnancy_trimester: int | None = None  # 1, 2 or 3


@dataclass(frozen=True)
class Panel:
    """One dated set of results for one patient."""

    measurements: dict[str, Measurement]
    date: dt.date | None = None
    patient_id: str | None = None
    sex: str | None = None
    age: float | None = None
    context: Context = field(default_factory=Context)
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def get(self, analyte: str) -> Measurement | None:
        return self.measurements.get(analyte)


@dataclass(frozen=True)
class Finding:
    id: str
    domain: str
    severity: str
    title: str
    detail: str
    next_steps: tuple[str, ...]
    evidence: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain": self.domain,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "next_steps": list(self.next_steps),
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Implication:
    """What the B12 status means for one of platelets, neutrophils, ferritin."""

    flag: str | None
    summary: str
    findings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "summary": self.summary, "findings": list(self.findings)}


@dataclass(frozen=True)
class HistoryPoint:
    date: dt.date | None
    value: float
    flag: str | None
    censored: str | None = None


@dataclass(frozen=True)
class Report:
    patient_id: str | None
    panel_date: dt.date | None
    b12_status: str
    measurements: tuple[Measurement, ...]
    implications: dict[str, Implication]
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    warnings: tuple[str, ...]
    errors: tuple[str, ...]
    guideline: str
    guideline_title: str = ""
    b12_detail: str = ""
    therapy_start: dt.date | None = None
    history: dict[str, tuple[HistoryPoint, ...]] = field(default_factory=dict)
    therapy_day: int | None = None  # days since B12 therapy started, when on therapy
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def highest_severity(self) -> str | None:
        for severity in SEVERITIES:
            if any(f.severity == severity for f in self.findings):
                return severity
        return None

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON contract (schema_version 1)."""
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "patient_id": self.patient_id,
            "panel_date": self.panel_date.isoformat() if self.panel_date else None,
            "b12_status": self.b12_status,
            "measurements": [_measurement_dict(m) for m in self.measurements],
            "implications": {k: v.to_dict() for k, v in self.implications.items()},
            "findings": [f.to_dict() for f in self.findings],
            "missing": list(self.missing),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
            "guideline": self.guideline,
            "disclaimer": DISCLAIMER,
        }
        if self.therapy_day is not None:
            document["therapy_day"] = self.therapy_day
        document["provenance"] = dict(self.provenance)
        if self.history:
            document["history"] = {
                analyte: [
                    {
                        "date": p.date.isoformat() if p.date else None,
                        "value": p.value,
                        "flag": p.flag,
                        "censored": p.censored,
                    }
                    for p in points
                ]
                for analyte, points in self.history.items()
            }
        return document


def _measurement_dict(m: Measurement) -> dict[str, Any]:
    document = {
        "analyte": m.analyte,
        "value": rounded_number(m.value, m.decimals),
        "unit": m.unit,
        "ucum": _ucum(m.analyte, m.unit),
        "input": m.input,
        "flag": m.flag,
        "censored": m.censored,
        "derived": m.derived,
        "reference": {
            "low": rounded_number(m.reference_low, m.decimals),
            "high": rounded_number(m.reference_high, m.decimals),
            "unit": m.unit,
        },
    }
    if m.lab_reference is not None:
        document["lab_reference"] = m.lab_reference
    if m.lab_flag is not None:
        document["lab_flag"] = m.lab_flag
    return document


def _ucum(analyte: str, unit: str) -> str | None:
    from b12lab.ranges import ucum_code

    return ucum_code(analyte, unit)


def rounded_number(value: float | None, decimals: int) -> float | int | None:
    if value is None:
        return None
    rounded = round(value, decimals)
    return int(rounded) if decimals == 0 or rounded == int(rounded) else rounded


def display_decimals(value: float, decimals: int, cuts: tuple[float, ...], most: int = 6) -> int:
    """Enough decimals that the shown value lies on the same side of every cut-off.

    Ferritin 29.6 against a limit of 30 is shown as 29.6, never as "30" beside
    the flag LOW; 200 stays 200. Zero counts as a cut-off: a platelet count of
    0.4 is shown as 0.4, never as 0.
    """
    plain = float(value)
    if round(plain, decimals) == plain:  # shown as it is
        return decimals
    for places in range(decimals, most + 1):
        shown = round(value, places)
        if all(
            (shown > cut) - (shown < cut) == (value > cut) - (value < cut) for cut in (0.0, *cuts)
        ):
            return places
    return most


def format_number(value: float, decimals: int) -> str:
    """Fixed decimals, without a trailing '.0' run that adds nothing."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
