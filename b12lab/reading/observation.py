"""One result as a source carried it, before the reading layer reads it.

Long CSV exports, FHIR resources and HL7 v2 messages all arrive as a stream of
observations (one test of one patient at one time); the reading layer groups
them into panels and reads each value through the same policy as a typed flag.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    """A single result with everything its source said about it, still as sent.

    Nothing here is interpreted yet: `value` is the text (or number) the source
    carried, `unit` its unit text, `collected` its date or timestamp text.
    """

    where: str  # position in the source for messages: "line 12", "message 3, OBX 4", "entry 7"
    line: int  # a number that orders records in the input (line, message or entry number)
    code: str  # LOINC code, local code or test name; matched like a CSV column name
    value: object = None  # text or number as sent; None when the source had no value
    unit: str | None = None
    unit_text: str | None = None  # a second unit sent beside `unit` (FHIR unit, HL7 OBX-6.2)
    comparator: str | None = None  # "<", "<=", ">", ">=" given apart from the value
    patient_id: str | None = None
    collected: str | None = None  # collection date or timestamp text
    sex: str | None = None  # as sent: "female", "F", "male", "M", ...
    birth_date: str | None = None  # YYYY-MM-DD or HL7 YYYYMMDD text
    group: str | None = None  # accession, specimen or report id shared by one panel's results
    lab_reference: str | None = None  # the laboratory's own interval as printed: "150-450"
    lab_flag: str | None = None  # the laboratory's own flag: "L", "H", "LL", "HH", "N", "A"
    absent_reason: str | None = None  # why there is no usable value (cancelled, not done, ...)
    provisional: str | None = None  # why the value may still change ("FHIR status 'preliminary'")
    code_system: str | None = None  # "http://loinc.org", "LN", a local system, or None
    display: str | None = None  # the test's name as sent beside its code (OBX-3.2, code.text)
    replaces: tuple[str, ...] = ()  # the results this correction replaces: "OBX 2: 150 pg/mL"


@dataclass(frozen=True)
class SourceProblem:
    """A record of the source that could not be read at all (a malformed resource or message).

    It still becomes its own output record in batch, so nothing is lost.
    """

    where: str
    line: int
    reason: str
    patient_id: str | None = None


def is_loinc(system: str | None) -> bool:
    """A code of the LOINC system (FHIR http://loinc.org, HL7 LN): its code decides."""
    return (system or "").strip().casefold() in ("ln", "http://loinc.org", "loinc")
