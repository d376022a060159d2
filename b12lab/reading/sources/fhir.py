"""FHIR R4 JSON -> Observation records: a Bundle, a single Observation, or bulk NDJSON.

Only the standard library is used: the resources are read as plain JSON
mappings, field by field, and nothing is validated beyond what b12lab reads.
One bad resource becomes a SourceProblem with its entry or line number; it
never stops the others. Resource types b12lab does not read (Encounter,
Specimen, Practitioner, ...) are skipped and counted in `skipped`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import IO, Any

from b12lab.errors import InputError
from b12lab.inputs.json_text import (
    MAX_DOCUMENT_BYTES,
    MAX_LINE_BYTES,
    JsonProblem,
    load_json,
    parse_json,
)
from b12lab.reading.observation import Observation, SourceProblem

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RESULT_STATUSES = {"preliminary", "final", "amended", "corrected", "unknown"}
PROVISIONAL_STATUSES = {"preliminary"}  # a result the laboratory may still change
NO_RESULT_STATUSES = {
    "cancelled": "cancelled",
    "entered-in-error": "entered in error",
    "registered": "registered, no result yet",
}
USED_TYPES = {"Observation", "Patient", "DiagnosticReport"}

Record = Observation | SourceProblem


class FhirRecords:
    """The records of one FHIR source, produced as they are iterated.

    `skipped` counts, per resource type, the resources b12lab does not read;
    it is complete once iteration has finished.
    """

    def __init__(self, produce: Callable[[Counter], Iterator[Record]]):
        self.skipped: Counter = Counter()
        self.kind: str | None = None  # "fhir-json" or "fhir-ndjson" once read_fhir has told
        self._produce = produce

    def __iter__(self) -> Iterator[Record]:
        return self._produce(self.skipped)


@dataclass(frozen=True)
class _PatientFacts:
    patient_id: str | None
    sex: str | None
    birth_date: str | None


class _Index:
    """Patients and report membership, gathered before the Observations are read."""

    def __init__(self) -> None:
        self.patients: dict[str, _PatientFacts] = {}
        self.groups: dict[str, str] = {}
        # Results dated only by what holds them: reference -> the holder's date, or
        # the holder's own references when it has no date of its own (a panel in a report).
        self.dates: dict[str, str] = {}
        self.holders: dict[str, list[str]] = {}

    def add(self, resource: Mapping[str, Any], full_url: str | None) -> None:
        kind = resource.get("resourceType")
        keys = _reference_keys(resource, full_url)
        if kind == "Patient":
            facts = _PatientFacts(
                _patient_identifier(resource) or _text(resource.get("id")),
                _text(resource.get("gender")),
                _text(resource.get("birthDate")),
            )
            for key in keys:
                self.patients[key] = facts
        elif kind == "DiagnosticReport":
            report_id = _text(resource.get("id")) or (full_url or "").rsplit(":", 1)[-1] or None
            for target in _references(resource.get("result")):
                if report_id:
                    self.groups.setdefault(target, report_id)
            self._holds(resource, keys, "result")
        elif kind == "Observation" and resource.get("hasMember"):
            self._holds(resource, keys, "hasMember")

    def _holds(self, holder: Mapping[str, Any], keys: list[str], field: str) -> None:
        """Remember the date (or the references) of a report or panel for its results."""
        date = _effective(holder) or _text(holder.get("issued"))
        for target in _references(holder.get(field)):
            for form in dict.fromkeys((target, _relative(target))):
                if date:
                    self.dates.setdefault(form, date)
                elif keys:
                    self.holders.setdefault(form, keys)

    def date(self, resource: Mapping[str, Any], full_url: str | None) -> str | None:
        """The date of the panel or report that holds a result without its own."""
        keys = _reference_keys(resource, full_url)
        for _depth in range(4):
            found = next((self.dates[k] for k in keys if k in self.dates), None)
            if found:
                return found
            keys = next((self.holders[k] for k in keys if k in self.holders), [])
            if not keys:
                return None
        return None

    def patient(self, subject: Any) -> _PatientFacts:
        if not isinstance(subject, dict):
            return _PatientFacts(None, None, None)
        reference = subject.get("reference")
        if isinstance(reference, str) and reference:
            if reference in self.patients:
                return self.patients[reference]
            local = _relative(reference)
            if local in self.patients:
                return self.patients[local]
            return _PatientFacts(local.rsplit("/", 1)[-1].rsplit(":", 1)[-1], None, None)
        identifier = subject.get("identifier")
        if isinstance(identifier, dict) and identifier.get("value") is not None:
            return _PatientFacts(str(identifier["value"]), None, None)
        return _PatientFacts(None, None, None)

    def group(self, resource: Mapping[str, Any], full_url: str | None) -> str | None:
        for key in _reference_keys(resource, full_url):
            if key in self.groups:
                return self.groups[key]
        return None


# --- entry points --------------------------------------------------------------


def read_fhir_json(data: bytes | str, label: str = "input") -> FhirRecords:
    """A FHIR JSON document: a Bundle (any type with entries) or one resource.

    Raises InputError when the document is not JSON or not a FHIR resource.
    """
    document = _load_document(data, label)
    if document.get("resourceType") == "Bundle":
        return FhirRecords(lambda skipped: _bundle_records(document, label, skipped))
    return FhirRecords(lambda skipped: _single_records(document, skipped))


def read_fhir_ndjson(stream: IO[bytes], label: str = "input") -> FhirRecords:
    """Bulk-export NDJSON (one resource per line), streamed line by line.

    A first pass gathers Patients and DiagnosticReports so that every Observation
    gets its patient's sex and birth date whatever the order of the lines. A
    stream that cannot seek (a pipe, standard input) is first copied to an
    anonymous temporary file, so that it reads exactly as the same file would.
    """
    return FhirRecords(lambda skipped: _ndjson_records(stream, label, skipped))


def read_fhir(stream: IO[bytes], label: str = "input") -> FhirRecords:
    """A FHIR source of either kind, told apart by its structure (`json_text.layout`).

    `kind` on the answer says which it was: "fhir-json" or "fhir-ndjson". A
    stream that cannot seek is first copied to an anonymous temporary file.
    """
    from b12lab.inputs.json_text import read_document

    if not _seekable(stream):
        stream = _private_copy(stream, label)
    if _layout(stream) == "ndjson":
        records = read_fhir_ndjson(stream, label)
        records.kind = "fhir-ndjson"
        return records
    records = read_fhir_json(read_document(stream, label), label)
    records.kind = "fhir-json"
    return records


_SAMPLE_BYTES = 65536


def _layout(stream: IO[bytes]) -> str:
    """ "ndjson" or "document"; the stream is left where it was.

    A first line longer than the sample is read up to `MAX_LINE_BYTES` to see
    whether it holds a whole value; a longer one (which no NDJSON line may be)
    is passed over unread, and the file is NDJSON when another object follows.
    """
    from b12lab.inputs.json_text import closes_on_its_line, layout

    start = stream.tell()
    try:
        head = stream.read(_SAMPLE_BYTES)
        found = layout(head, complete=len(head) < _SAMPLE_BYTES)
        if found is not None:
            return found
        stream.seek(start)
        line = stream.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 20)
        elif not closes_on_its_line(line.removeprefix(b"\xef\xbb\xbf")):
            return "document"
        while True:
            after = stream.read(_SAMPLE_BYTES)
            if not after:
                return "document"
            rest = after.lstrip()
            if rest:
                return "ndjson" if rest.startswith(b"{") else "document"
    finally:
        stream.seek(start)


def _private_copy(stream: IO[bytes], label: str) -> IO[bytes]:
    """An anonymous temporary copy of a stream that can be read only once."""
    copy = tempfile.TemporaryFile()  # noqa: SIM115 - it lives as long as its records
    try:
        shutil.copyfileobj(stream, copy, 1 << 20)
        copy.seek(0)
    except OSError as error:
        copy.close()
        raise InputError(
            f"cannot copy {label} to a temporary file: {error.strerror or error}",
            fix="free space in the temporary directory (TMPDIR), or give the file's path",
        ) from None
    return copy


# --- documents -----------------------------------------------------------------


def _load_document(data: bytes | str, label: str) -> dict:
    if isinstance(data, bytes):
        if b"\x00" in data[:4096]:
            raise InputError(f"{label} is not a FHIR JSON text file (binary data?)")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{label} is not UTF-8 text (byte {error.start})",
                fix="FHIR JSON must be UTF-8; save it as UTF-8",
            ) from None
    document = load_json(
        data,
        label,
        fix="give a FHIR R4 Bundle, Observation or NDJSON file",
        limit=MAX_DOCUMENT_BYTES,
    )
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise InputError(
            f"{label} is JSON but not a FHIR resource (no resourceType)",
            fix="give a FHIR R4 Bundle or Observation",
        )
    return document


def _bundle_records(bundle: dict, label: str, skipped: Counter) -> Iterator[Record]:
    entries = bundle.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        yield SourceProblem("Bundle.entry", 0, "Bundle.entry is not a list of entries")
        return
    index = _Index()
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            index.add(entry["resource"], _text(entry.get("fullUrl")))
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        if not isinstance(entry, dict):
            yield SourceProblem(where, number, "entry is not a JSON object")
            continue
        resource = entry.get("resource")
        if resource is None:
            yield SourceProblem(where, number, "entry has no resource")
            continue
        yield from _resource_records(
            resource, where, number, index, _text(entry.get("fullUrl")), skipped
        )


def _single_records(resource: dict, skipped: Counter) -> Iterator[Record]:
    yield from _resource_records(resource, "resource", 1, _Index(), None, skipped)


def _ndjson_records(stream: IO[bytes], label: str, skipped: Counter) -> Iterator[Record]:
    if _seekable(stream):
        yield from _indexed_ndjson_records(stream, label, skipped)
        return
    with _spooled(stream, label) as copy:
        yield from _indexed_ndjson_records(copy, label, skipped)


def _indexed_ndjson_records(stream: IO[bytes], label: str, skipped: Counter) -> Iterator[Record]:
    index = _Index()
    start = stream.tell()
    for _number, line in _ndjson_lines(stream, label):
        if isinstance(line, bytes) and (
            b'"Patient"' in line or b'"DiagnosticReport"' in line or b'"hasMember"' in line
        ):
            resource, _reason = _json_line(line)
            if isinstance(resource, dict):
                index.add(resource, None)
    stream.seek(start)
    for number, line in _ndjson_lines(stream, label):
        where = f"line {number}"
        if isinstance(line, str):  # the reason the line could not be read
            yield SourceProblem(where, number, line)
            continue
        resource, reason = _json_line(line)
        if reason is not None:
            yield SourceProblem(where, number, reason)
            continue
        yield from _resource_records(resource, where, number, index, None, skipped)


@contextmanager
def _spooled(stream: IO[bytes], label: str) -> Iterator[IO[bytes]]:
    """A private, seekable copy of a stream that can be read only once, removed afterwards."""
    with tempfile.TemporaryFile() as copy:
        try:
            shutil.copyfileobj(stream, copy, 1 << 20)
            copy.seek(0)
        except OSError as error:
            raise InputError(
                f"cannot copy {label} to a temporary file: {error.strerror or error}",
                fix="free space in the temporary directory (TMPDIR), or give the file's path",
            ) from None
        yield copy


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _ndjson_lines(stream: IO[bytes], label: str) -> Iterator[tuple[int, bytes | str]]:
    """Non-blank lines as bytes, or a reason text for a line too long to read.

    The first line decides whether the file is text at all: NUL bytes there
    mean binary data, which is refused as a whole.
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 20)
            yield number, f"line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB; not read"
            continue
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
            if b"\x00" in line:
                raise InputError(
                    f"{label} is not a FHIR NDJSON text file (binary data?)",
                    fix="give one FHIR resource per line as UTF-8 JSON",
                )
        if line.strip():
            yield number, line


def _json_line(line: bytes) -> tuple[Any, str | None]:
    """The parsed line and None, or None and the reason it is not JSON."""
    try:
        return parse_json(line, limit=MAX_LINE_BYTES), None
    except JsonProblem as problem:
        if problem.encoding:
            return None, f"line is {problem.reason}"
        return None, f"line is not valid JSON ({problem.reason})"


# --- resources -----------------------------------------------------------------


def _resource_records(
    resource: Any,
    where: str,
    number: int,
    index: _Index,
    full_url: str | None,
    skipped: Counter,
) -> Iterator[Record]:
    if not isinstance(resource, dict):
        yield SourceProblem(where, number, "resource is not a JSON object")
        return
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        yield SourceProblem(where, number, "resource has no resourceType")
        return
    if kind == "Bundle":
        skipped["Bundle"] += 1
        return
    if kind not in USED_TYPES:
        skipped[kind] += 1
        return
    if kind == "DiagnosticReport":
        yield from _contained_results(resource, where, number, index, full_url)
        return
    if kind != "Observation":
        return
    yield _observation(resource, where, number, index, full_url)


def _contained_results(
    report: Mapping[str, Any], where: str, number: int, index: _Index, full_url: str | None
) -> Iterator[Record]:
    """Observations contained in a DiagnosticReport: its subject, date and id are theirs
    unless they carry their own."""
    date = _effective(report) or _text(report.get("issued"))
    report_id = _text(report.get("id")) or (full_url or "").rsplit(":", 1)[-1] or None
    for position, contained in enumerate(_list(report.get("contained")), start=1):
        if not isinstance(contained, dict) or contained.get("resourceType") != "Observation":
            continue
        result = dict(contained)
        if result.get("subject") is None and report.get("subject") is not None:
            result["subject"] = report["subject"]
        if not _effective(result) and date:
            result["effectiveDateTime"] = date
        record = _observation(result, f"{where}, contained {position}", number, index, None)
        if isinstance(record, Observation) and record.group is None and report_id:
            record = replace(record, group=report_id)
        yield record


def _observation(
    resource: Mapping[str, Any], where: str, number: int, index: _Index, full_url: str | None
) -> Record:
    patient = index.patient(resource.get("subject"))
    code, system = _code(resource.get("code"))
    if code is None:
        return SourceProblem(
            where, number, "Observation has no code (code.coding or code.text)", patient.patient_id
        )
    absent = _absent_reason(resource)
    try:
        value, unit, comparator = _value(resource)
    except _Unreadable as problem:
        if absent is None:
            name = _text(resource.get("id"))
            return SourceProblem(
                where,
                number,
                f"Observation{f' {name[:40]!r}' if name else ''} ({code[:40]}): {problem}",
                patient.patient_id,
            )
        value, unit, comparator = None, None, None  # no result either way: the reason says why
    if absent is not None:
        value, comparator = None, None
    return Observation(
        where=where,
        line=number,
        code=code,
        value=value,
        unit=unit,
        unit_text=_second_unit(resource, unit) if value is not None else None,
        comparator=comparator,
        patient_id=patient.patient_id,
        collected=_collected(resource, index, full_url),
        sex=patient.sex,
        birth_date=patient.birth_date,
        group=index.group(resource, full_url),
        lab_reference=_lab_reference(resource.get("referenceRange")),
        lab_flag=_lab_flag(resource.get("interpretation")),
        absent_reason=absent,
        provisional=(
            f"FHIR status '{resource.get('status')}'"
            if resource.get("status") in PROVISIONAL_STATUSES and absent is None
            else None
        ),
        code_system=system,
        display=_display(resource.get("code")),
    )


def _display(concept: Any) -> str | None:
    """The test's name as sent: code.text, else the first coding's display."""
    if not isinstance(concept, dict):
        return None
    text = _text(concept.get("text"))
    if text:
        return text
    for coding in _list(concept.get("coding")):
        if isinstance(coding, dict) and _text(coding.get("display")):
            return _text(coding["display"])
    return None


def _code(concept: Any) -> tuple[str | None, str | None]:
    """The LOINC coding when there is one, else the first coding with a code, else the text."""
    if not isinstance(concept, dict):
        return None, None
    codings = [
        c for c in _list(concept.get("coding")) if isinstance(c, dict) and _text(c.get("code"))
    ]
    for coding in codings:
        if coding.get("system") == LOINC:
            return _text(coding["code"]), LOINC
    if codings:
        return _text(codings[0]["code"]), _text(codings[0].get("system"))
    return _text(concept.get("text")), None


class _Unreadable(ValueError):
    """An Observation value that is there but cannot be read as sent (its reason and fix)."""


_VALUE_FIX = "send the result as a JSON number, or a dataAbsentReason when there is none"


def _value(resource: Mapping[str, Any]) -> tuple[Any, str | None, str | None]:
    """The value as sent, its unit and comparator; raises _Unreadable for a malformed one."""
    quantity = resource.get("valueQuantity")
    if quantity is not None:
        if not isinstance(quantity, dict):
            raise _Unreadable(
                f"valueQuantity is {_shown(quantity)}, not an object with a value and a unit; "
                + _VALUE_FIX
            )
        value = _number(quantity.get("value"), "valueQuantity.value", _VALUE_FIX)
        unit = _quantity_text(quantity, "code") or _quantity_text(quantity, "unit")
        return value, unit, _quantity_text(quantity, "comparator")
    for key in ("valueString", "valueInteger"):
        if resource.get(key) is not None:
            fix = f"send {key} as {'text' if key == 'valueString' else 'a whole number'}"
            return _number(resource[key], key, fix), None, None
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, dict):
        text = _text(concept.get("text"))
        for coding in _list(concept.get("coding")):
            if isinstance(coding, dict):
                text = text or _text(coding.get("display")) or _text(coding.get("code"))
        return text, None, None
    if concept is not None:
        raise _Unreadable(
            f"valueCodeableConcept is {_shown(concept)}, not an object; send the coded "
            "result as an object with its coding or text"
        )
    return None, None, None


def _second_unit(resource: Mapping[str, Any], unit: str | None) -> str | None:
    """valueQuantity.unit when it differs from the UCUM code that is read as the unit."""
    quantity = resource.get("valueQuantity")
    text = _text(quantity.get("unit")) if isinstance(quantity, dict) else None
    return text if text and unit and text.strip() != unit.strip() else None


def _number(value: Any, path: str, fix: str) -> Any:
    """A value as sent (a JSON number or text), or None; anything else is _Unreadable."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        raise _Unreadable(f"{path} is NaN, which is not a number; {fix}")
    if isinstance(value, float) and math.isinf(value):
        sign = "-" if value < 0 else ""
        raise _Unreadable(
            f"{path} is {sign}Infinity, or a number too large to read such as {sign}1e400; {fix}"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise _Unreadable(f"{path} is {_shown(value)}, not a number; {fix}")


def _quantity_text(quantity: Mapping[str, Any], key: str) -> str | None:
    """valueQuantity.code, .unit or .comparator; a list, an object or true/false is _Unreadable."""
    value = quantity.get(key)
    if isinstance(value, (dict, list, bool)):
        raise _Unreadable(
            f"valueQuantity.{key} is {_shown(value)}, not text; send the "
            + ("comparator as '<', '<=', '>=' or '>'" if key == "comparator" else "unit as text")
        )
    return _text(value)


def _shown(value: Any) -> str:
    """A JSON value named for a message: 'true', 'a list', 'an object', the text 'oops'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return f"the number {value!r}"[:60]


def _absent_reason(resource: Mapping[str, Any]) -> str | None:
    status = resource.get("status")
    if status in NO_RESULT_STATUSES:
        return NO_RESULT_STATUSES[status]
    reason = resource.get("dataAbsentReason")
    if isinstance(reason, dict):
        for coding in _list(reason.get("coding")):
            if isinstance(coding, dict) and _text(coding.get("code")):
                return f"data absent: {coding['code']}"
        return f"data absent: {_text(reason.get('text')) or 'no reason given'}"
    return None


def _effective(resource: Mapping[str, Any]) -> str | None:
    period = resource.get("effectivePeriod")
    return (
        _text(resource.get("effectiveDateTime"))
        or _text(resource.get("effectiveInstant"))
        or (_text(period.get("start")) if isinstance(period, dict) else None)
    )


def _collected(resource: Mapping[str, Any], index: _Index, full_url: str | None) -> str | None:
    """The result's own collection time, else that of the panel (`hasMember`) or
    DiagnosticReport holding it, else the time the result was issued."""
    return _effective(resource) or index.date(resource, full_url) or _text(resource.get("issued"))


def _references(node: Any) -> list[str]:
    return [
        item["reference"]
        for item in _list(node)
        if isinstance(item, dict) and isinstance(item.get("reference"), str) and item["reference"]
    ]


def _lab_reference(ranges: Any) -> str | None:
    """The first reference range as a laboratory prints it: '150-450 10*9/L'."""
    for item in _list(ranges):
        if not isinstance(item, dict):
            continue
        low, low_unit = _simple_quantity(item.get("low"))
        high, high_unit = _simple_quantity(item.get("high"))
        unit = low_unit or high_unit
        suffix = f" {unit}" if unit else ""
        if low is not None and high is not None:
            return f"{low}-{high}{suffix}"
        if low is not None:
            return f">={low}{suffix}"
        if high is not None:
            return f"<={high}{suffix}"
        text = _text(item.get("text"))
        if text:
            return text
    return None


def _simple_quantity(node: Any) -> tuple[str | None, str | None]:
    if not isinstance(node, dict):
        return None, None
    value = node.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float: no bound a laboratory prints
        return None, None
    if not math.isfinite(number):
        return None, None
    return f"{number:g}", _text(node.get("code")) or _text(node.get("unit"))


def _lab_flag(interpretations: Any) -> str | None:
    fallback = None
    for concept in _list(interpretations):
        if not isinstance(concept, dict):
            continue
        for coding in _list(concept.get("coding")):
            if isinstance(coding, dict) and _text(coding.get("code")):
                if coding.get("system") in (INTERPRETATION, None):
                    return _text(coding["code"])
                fallback = fallback or _text(coding["code"])
        fallback = fallback or _text(concept.get("text"))
    return fallback


# --- small readers -------------------------------------------------------------


def _patient_identifier(patient: Mapping[str, Any]) -> str | None:
    identifiers = [i for i in _list(patient.get("identifier")) if isinstance(i, dict)]
    for identifier in identifiers:  # the medical record number first
        kind = identifier.get("type")
        codes = [
            c.get("code") for c in _list(kind.get("coding") if isinstance(kind, dict) else None)
        ]
        if "MR" in codes and _text(identifier.get("value")):
            return _text(identifier["value"])
    for identifier in identifiers:
        if _text(identifier.get("value")):
            return _text(identifier["value"])
    return None


def _reference_keys(resource: Mapping[str, Any], full_url: str | None) -> list[str]:
    keys = []
    if full_url:
        keys += [full_url, _relative(full_url)]
    resource_id = _text(resource.get("id"))
    if resource_id:
        keys.append(f"{resource.get('resourceType')}/{resource_id}")
    return keys


def _relative(reference: str) -> str:
    """'https://ehr.example/fhir/Patient/7' -> 'Patient/7'; other forms unchanged."""
    if reference.startswith(("http://", "https://")):
        parts = reference.rstrip("/").split("/")
        if len(parts) >= 2:
            if len(parts) >= 4 and parts[-2] == "_history":
                parts = parts[:-2]
            return "/".join(parts[-2:])
    return reference


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()
