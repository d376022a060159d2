"""Laboratory messages (FHIR R4 JSON and NDJSON, HL7 v2 ORU^R01) -> panels -> records.

The readers in `b12lab.reading.sources` turn a file into a stream of
Observations (one result each) and SourceProblems (a resource or message that
could not be read). Here those observations become panels exactly as the rows
of a long CSV export do: grouped by patient, collection date and report (a
DiagnosticReport, an HL7 OBR) within the same window (`group_panels`), every
value read by the one reading layer, every panel interpreted by the one engine.

    interpreter = ObservationInterpreter.for_messages(load_ranges())
    for record in interpreter(read_observations(stream, "fhir-ndjson", "bulk.ndjson")):
        ...

A panel made only of tests b12lab does not read (heart rate, sodium, ...) is
not a record: those tests are counted in `skipped_tests`. A SourceProblem is a
record of its own, so nothing read is lost.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import IO

from b12lab.batch.rows import (
    AUTO,
    OWN_RECORD,
    BatchRecord,
    RowInterpreter,
    group_panels,
    split_note,
    unread_test_note,
)
from b12lab.errors import InputError
from b12lab.model import Context, Panel, Report
from b12lab.ranges import Ranges
from b12lab.reading.fields import parse_date
from b12lab.reading.observation import Observation, SourceProblem, is_loinc
from b12lab.reading.panel import CellError, PanelBuilder
from b12lab.reading.policy import (
    CORRECTED,
    NO_DATE,
    NO_RESULT,
    POINT,
    PROVISIONAL,
    TEST_NOT_READ,
    TEST_SKIPPED,
    Note,
)
from b12lab.reading.sources.detect import DETECT_BYTES

Record = Observation | SourceProblem

# Columns of the long layout an observation fills; --map CODE=ANALYTE names test codes.
OBSERVATION_HEADER = ("patient_id", "date", "test", "value", "unit", "accession")
# FHIR gender and HL7 table 0001 codes that give no sex to judge limits by.
AGE_NOT_GIVEN = "age not given"  # a Note kind: a birth date that gives no age
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2})?$")
_READ = "read"  # PanelBuilder.extra key: the panel holds at least one b12lab analyte
_NO_RESULT = "no result"  # PanelBuilder.extra key: (note index, analyte) of each no-result


# --- which reader -------------------------------------------------------------------


def head_of(stream: IO[bytes], size: int = DETECT_BYTES) -> bytes:
    """The first bytes of a stream, without consuming them."""
    if hasattr(stream, "peek"):
        return stream.peek(size)[:size]
    position = stream.tell()
    head = stream.read(size)
    stream.seek(position)
    return head


def read_observations(source: IO[bytes] | bytes, kind: str, label: str):
    """The reader for `kind`; iterate it for records, then read its `skipped` counts."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if kind == "hl7v2":
        from b12lab.reading.sources.hl7 import MAX_FILE_BYTES, read_hl7

        return read_hl7(source.read(MAX_FILE_BYTES + 1), label)
    from b12lab.reading.sources.fhir import read_fhir, read_fhir_ndjson

    if kind == "fhir-ndjson":
        return read_fhir_ndjson(source, label)
    # "fhir-json" is what the first bytes suggest; the reader tells by the whole first line
    return read_fhir(source, label)


def skipped_line(skipped: Mapping[str, int], what: str = "skipped") -> str | None:
    """'skipped: Encounter 1, MedicationRequest 2' for the batch summary."""
    if not skipped:
        return None
    return f"{what}: " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(skipped.items()))


# --- observations -> panels -----------------------------------------------------------


class ObservationInterpreter(RowInterpreter):
    """Turns the observations of one source into BatchRecords, one per panel, in input order."""

    @classmethod
    def for_messages(
        cls, ranges: Ranges, *, mapping: Mapping[str, str] | None = None, **options
    ) -> ObservationInterpreter:
        """`mapping`: --map CODE=ANALYTE for local codes (as `parse_map` gives it)."""
        return cls.for_header(
            list(OBSERVATION_HEADER), ranges, layout="long", mapping=mapping, **options
        )

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        if self.policy.decimal == AUTO:
            # FHIR numbers are JSON numbers and HL7 NM values use a point: no guessing.
            self.policy = replace(self.policy, decimal=POINT)
        self.skipped_tests: Counter = Counter()
        self.unread_tests: Counter = Counter()  # tests resembling an analyte, in no record

    def __call__(self, records: Iterable[Record]) -> Iterator[BatchRecord]:
        builders = self.panels(records)
        if not self.timeline:
            for builder in builders:
                yield self._finish(builder)
            return
        yield from self._by_patient(builders)

    def panels(self, records: Iterable[Record]) -> Iterator[PanelBuilder]:
        """One builder per panel (and per SourceProblem), in the order of their first record."""
        grouped = group_panels(
            records, key=self._key, open_panel=self._open, add=self._add, window=self.window
        )
        for builder in grouped:
            if builder.extra.get(_READ) or builder.errors:
                yield builder
                continue
            for note in builder.notes:
                if note.kind == TEST_SKIPPED:
                    self.skipped_tests[note.subject] += 1
                elif note.kind == TEST_NOT_READ:  # said on its own line in the summary
                    self.unread_tests[note.message] += 1

    def _panel(self, builder: PanelBuilder) -> Panel:
        if (
            builder.date is None
            and not builder.extra.get(OWN_RECORD)
            and not any(note.kind == NO_DATE for note in builder.notes)
        ):
            builder.note(undated_note(builder))
        for index, analyte in builder.extra.get(_NO_RESULT, ()):
            if analyte in builder.measurements:  # another result of the test was read
                note = builder.notes[index]
                said = note.message.rsplit("; ", 1)[0]
                builder.notes[index] = note._replace(message=f"{said}; its other result is used")
        return super()._panel(builder)

    # --- grouping ------------------------------------------------------------------

    @staticmethod
    def _key(record: Record) -> Hashable:
        if isinstance(record, SourceProblem):
            return ("problem", record.line, record.where)
        collected = (record.collected or "").strip()
        day = _ISO_DAY.match(collected)
        return (record.patient_id or "", day.group(0) if day else collected, record.group or "")

    def _open(self, record: Record, key: Hashable, earlier: int | None) -> PanelBuilder:
        builder = self._builder(record.line)
        if isinstance(record, SourceProblem):
            line, where = _position(record)
            column = "" if record.reason.startswith(record.where) else where
            builder.errors.append(CellError(line, column, "", record.reason))
            builder.set_patient_id(record.patient_id)
            builder.extra[OWN_RECORD] = True
        elif earlier is not None:
            builder.note(split_note(key, earlier, self.window))  # type: ignore[arg-type]
        return builder

    def _add(self, builder: PanelBuilder, record: Record, first: bool) -> None:
        if isinstance(record, SourceProblem):
            return
        if not first:
            builder.lines.append(record.line)
        self._patient_facts(builder, record)
        code = record.code.strip()[:40]
        analyte = self._test_analyte(record.code.strip())
        if analyte is None and record.display and not is_loinc(record.code_system):
            # A local code whose name is an analyte's own name or alias ("Vitamin B12"):
            # read by that name, as a long export's test name is.
            analyte = self._test_analyte(record.display.strip())
        if analyte is None:
            builder.note(unread_test_note(self.ranges, code, record.display))
            return
        builder.extra[_READ] = True
        if record.absent_reason or record.value is None:
            reason = record.absent_reason or "no value in the source"
            builder.extra.setdefault(_NO_RESULT, []).append((len(builder.notes), analyte))
            builder.note(
                Note(
                    NO_RESULT,
                    code,
                    "no result",
                    f"{analyte} ({record.where}): no result ({reason}); {analyte} not measured",
                )
            )
            return
        raw = record.value
        if record.comparator:
            raw = f"{record.comparator}{raw}"
        hint = self._hint(code, analyte, record.unit, None, self.plan.analyte_units.get(analyte))
        if hint is not None and record.unit_text:
            # The source's second spelling of the unit must agree (measure notes it if not).
            second = (record.unit_text, f"unit text of '{code}'")
            hint = hint._replace(overridden=(second, *hint.overridden))
        before = len(builder.notes)
        line, where = _position(record)
        measurement = builder.add_value(
            analyte, raw, where=f"{where} ({code})" if where else code, line=line, hint=hint
        )
        builder.name_notes(before, code)
        if measurement is not None and record.replaces:
            builder.note(
                Note(
                    CORRECTED,
                    code,
                    "correction used",
                    f"{analyte} ({record.where}): the laboratory's correction is used; it "
                    f"replaces {'; '.join(record.replaces)}",
                )
            )
        if measurement is not None and record.provisional:
            builder.note(
                Note(
                    PROVISIONAL,
                    code,
                    "result not final",
                    f"{analyte} ({record.where}): the laboratory has not made this result final "
                    f"({record.provisional}); it may still change",
                )
            )
        if (
            measurement is not None
            and (record.lab_reference or record.lab_flag)
            and builder.measurements.get(analyte) is measurement
        ):
            builder.measurements[analyte] = replace(
                measurement, lab_reference=record.lab_reference, lab_flag=record.lab_flag
            )

    def _patient_facts(self, builder: PanelBuilder, record: Observation) -> None:
        """Patient, date, sex and age, each read once per panel from its first source."""
        if builder.patient_id is None:
            builder.set_patient_id(record.patient_id)
        tried = builder.extra.setdefault("tried", set())
        if record.collected and "date" not in tried:
            tried.add("date")
            builder.set_field(
                "date", record.collected, where=f"{record.where} collection date", line=record.line
            )
        if record.sex and "sex" not in tried:
            tried.add("sex")
            builder.set_field(  # a sex stated as other or unknown is noted there
                "sex", record.sex, where=f"{record.where} patient sex", line=record.line
            )
        if record.birth_date and "age" not in tried:
            tried.add("age")
            self._age(builder, record)

    def _age(self, builder: PanelBuilder, record: Observation) -> None:
        text = record.birth_date.strip()
        where = f"{record.where} birth date"
        if _PARTIAL_DATE.match(text):
            builder.note(
                Note(
                    AGE_NOT_GIVEN,
                    "age",
                    "birth date partial, age not given",
                    f"birth date '{text}' gives no day; age-specific limits are not used",
                )
            )
            return
        try:
            birth = parse_date(text, where)
        except InputError as error:
            builder.errors.append(CellError(record.line, where, text[:40], str(error), error))
            return
        on = builder.date or self.today
        if birth is None:
            return
        if birth > on:
            reason = f"birth date {birth.isoformat()} is after the collection date {on.isoformat()}"
            builder.errors.append(
                CellError(
                    record.line,
                    where,
                    text[:40],
                    reason,
                    InputError(reason, field="birth date", fix="correct the birth date"),
                )
            )
            return
        builder.fields["age"] = age_in_years(birth, on)


def _position(record: Record) -> tuple[int, str]:
    """The file line (when the source has lines) and the place, never saying a line twice.

    NDJSON and HL7 records carry a file line; a Bundle's entries are named by
    their number ("entry 7"), which is not a line.
    """
    if record.where == f"line {record.line}":
        return record.line, ""
    if record.where.startswith(("line", "message")):
        return record.line, record.where
    return 0, record.where


def age_in_years(birth: dt.date, on: dt.date) -> float:
    """Completed years plus the part of the current year, exact at every birthday."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    last = _birthday(birth, birth.year + years)
    following = _birthday(birth, birth.year + years + 1)
    return round(years + (on - last).days / (following - last).days, 3)


def _birthday(birth: dt.date, year: int) -> dt.date:
    try:
        return birth.replace(year=year)
    except ValueError:  # born on 29 February
        return dt.date(year, 2, 28)


# --- one patient: `b12lab interpret` -----------------------------------------------


def interpret_messages(
    records: Iterable[Record],
    ranges: Ranges,
    *,
    label: str = "input",
    overrides: Mapping[str, object] | None = None,
    date: dt.date | None = None,
    patient_id: str | None = None,
    sex: str | None = None,
    age: float | None = None,
    context: Context | None = None,
    mapping: Mapping[str, str] | None = None,
    guideline: str | None = None,
    today: dt.date | None = None,
) -> Report:
    """One patient's panels from a FHIR or HL7 source; several dates make a timeline.

    `overrides` (analyte -> value as typed) replace the latest panel's results,
    as flags do for a panel file. Raises InputError for a source record that
    cannot be read, a value that cannot be used, or more than one patient.
    """
    from b12lab.reading.trimester import check_pregnancy
    from b12lab.timeline import evaluate_panels

    as_of_given = today is not None
    today = today or dt.date.today()
    context = context or Context()
    interpreter = ObservationInterpreter.for_messages(
        ranges, mapping=mapping, guideline=guideline, today=today
    )
    builders = list(interpreter.panels(records))
    unread = [n.message for b in builders for n in b.notes if n.kind == TEST_NOT_READ]
    unread += list(interpreter.unread_tests)
    # A panel with no value (only a pending or cancelled result) is no panel of its own:
    # what it says joins the report.
    carried: list[str] = list(interpreter.unread_tests)
    if any(b.measurements or b.errors for b in builders):
        for builder in builders:
            if not builder.measurements and not builder.errors:
                carried += [str(n) for n in builder.notes if n.kind != TEST_SKIPPED]
        builders = [b for b in builders if b.measurements or b.errors]
    for builder in builders:
        if builder.extra.get(OWN_RECORD):
            raise InputError(
                f"{label}: {builder.errors[0].message()}",
                fix="correct or remove that resource or message (b12lab batch reads the rest)",
            )
    patients = list(dict.fromkeys(b.patient_id for b in builders if b.patient_id))
    if len(patients) > 1:
        raise InputError(
            f"{label} holds {len(patients)} patients ({', '.join(patients[:3])}"
            f"{', ...' if len(patients) > 3 else ''})",
            fix=f"use b12lab batch {label} for more than one patient",
        )
    if not builders:
        if not overrides:
            raise InputError(
                f"{label} holds no result of a test b12lab reads"
                + (f" ({unread[0]})" if unread else ""),
                fix="give Observations or OBX segments with LOINC codes of b12lab's analytes "
                "(or map local codes with --map CODE=ANALYTE)",
            )
        builders = [interpreter._builder(0)]
    latest = max(builders, key=lambda b: (b.date is not None, b.date or dt.date.min))
    for analyte, raw in (overrides or {}).items():
        latest.override(analyte, raw, where=f"--{analyte.replace('_', '-')}")
    if date is not None:
        latest.fields["date"] = date
    for key, value in (("sex", sex), ("age", age)):
        if value is not None:
            for builder in builders:
                builder.fields[key] = value
    for builder in builders:
        if patient_id:
            builder.patient_id = patient_id
        builder.raise_first_error()
    # Sex and age describe the patient: any panel may carry them.
    for key in ("sex", "age"):
        known = [b.fields[key] for b in builders if key in b.fields]
        for builder in builders:
            if known and key not in builder.fields:
                builder.fields[key] = known[-1]
    if len(builders) > 1 and any(b.date is None for b in builders):
        raise InputError(
            f"{label}: a panel has no collection date",
            fix="give every result its collection date (effectiveDateTime, OBR-7)",
        )
    check_pregnancy(latest.fields.get("sex"), context.pregnancy_trimester)  # type: ignore[arg-type]
    skipped = sorted({n.subject for b in builders for n in b.notes if n.kind == TEST_SKIPPED})
    skipped += sorted(set(interpreter.skipped_tests) - set(skipped))
    panels = []
    for builder in builders:
        if builder.date is None and builder.measurements:
            builder.note(
                undated_note(
                    builder,
                    f"; the report is dated {today.isoformat()} ("
                    + ("--as-of" if as_of_given else "the run date")
                    + "): give the collection date with --date",
                )
            )
        kept = tuple(dict.fromkeys(str(n) for n in builder.notes if n.kind != TEST_SKIPPED))
        panels.append(builder.panel(context, date=builder.date or today, warnings=kept))
    first = panels.index(max(panels, key=lambda p: p.date or dt.date.min))
    if carried:
        panels[first] = replace(
            panels[first], warnings=tuple(dict.fromkeys((*panels[first].warnings, *carried)))
        )
    if skipped:
        note = "tests not read (not b12lab analytes): " + ", ".join(skipped)
        panels[first] = replace(panels[first], warnings=(*panels[first].warnings, note))
    report = evaluate_panels(panels, ranges, guideline=guideline, today=today)
    if report.errors:
        raise InputError(report.errors[0], fix="keep one result per analyte and date")
    return report


def undated_note(
    builder: PanelBuilder, consequence: str = "; the results are read undated"
) -> Note:
    """Results with no collection date in the source, nor in the report or panel holding them."""
    analytes = ", ".join(sorted(builder.measurements)) or "this panel's results"
    return Note(
        NO_DATE,
        "date",
        "no collection date",
        f"no collection date in the source for {analytes} (not on the results, their panel "
        f"or their report){consequence}",
    )
