"""One panel assembled from cells, whatever the source: the reading layer's single policy.

Flags, panel files, CSV rows (wide and long), Python rows, FHIR resources and
HL7 messages all add their cells to a `PanelBuilder`. It reads each value
through `measure` under one `ReadPolicy`, applies the one duplicate rule, and
keeps every problem with its line and column, so that `interpret` can refuse
the first one and `batch` can report all of them in the panel's own record.

The duplicate rule, everywhere: the same analyte given twice in one panel (two
columns, two rows of a long export, an alias and its key, two panels of the
same date) is kept once when both results are equal, and otherwise neither is
used and the panel carries an error naming both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from b12lab.derived import ANC
from b12lab.errors import InputError
from b12lab.model import Context, Measurement, Panel, format_number
from b12lab.ranges import Ranges
from b12lab.reading.fields import parse_age, parse_date, parse_sex, sex_not_stated
from b12lab.reading.policy import SEX_NOT_GIVEN, Note, ReadPolicy
from b12lab.reading.values import UnitHint, cell_text, is_missing, measure


@dataclass(frozen=True)
class CellError:
    """A cell that could not be used: where it was, what it held, and why."""

    line: int
    column: str
    value: str
    reason: str
    error: InputError | None = field(default=None, compare=False, repr=False)

    def message(self) -> str:
        where = f"line {self.line}" if self.line else ""
        if self.column:
            where = f"{where}, {self.column}" if where else self.column
        return f"{where}: {self.reason}" if where else self.reason


def same_result(a: Measurement, b: Measurement) -> bool:
    """Two results that mean the same thing (same canonical value and censoring)."""
    return a.value == b.value and a.censored == b.censored


def conflict_reason(analyte: str, first: tuple[str, str], second: tuple[str, str]) -> str:
    return (
        f"{analyte} given twice with different results ({first[0]}: {first[1]}; "
        f"{second[0]}: {second[1]}); neither is used"
    )


PATIENT_PARSERS: dict[str, Callable] = {
    "date": parse_date,
    "sex": parse_sex,
    "age": parse_age,
    "b12_therapy_start": parse_date,
}
MAX_READINGS = 100_000  # distinct cells remembered per input; beyond, the memory starts again


class PanelBuilder:
    """Collects one panel's cells; `panel()` gives the Panel, `errors` what was refused."""

    def __init__(
        self,
        ranges: Ranges,
        policy: ReadPolicy | None = None,
        line: int = 0,
        readings: dict | None = None,
    ):
        self.ranges = ranges
        self.policy = policy or ReadPolicy()
        # Cells already read under this policy, shared by the builders of one input:
        # (analyte, cell, unit hint) -> (measurement, notes) or the InputError raised.
        self.readings = readings
        self.lines: list[int] = [line] if line else []
        self.patient_id: str | None = None
        self.fields: dict[str, object] = {}
        self.measurements: dict[str, Measurement] = {}
        self.sources: dict[str, tuple[str, str]] = {}  # analyte -> (where, input as given)
        self.refused: set[str] = set()  # analytes dropped by the duplicate rule
        self.notes: list[Note] = []
        self.errors: list[CellError] = []
        self.extra: dict[str, object] = {}  # source-specific facts (lab reference, flags)

    # --- cells -----------------------------------------------------------------

    def add_value(
        self,
        analyte: str,
        raw: object,
        *,
        where: str,
        line: int = 0,
        hint: UnitHint | None = None,
    ) -> Measurement | None:
        """Read one result; a bad one becomes an error of this panel, never an exception."""
        if is_missing(raw):
            return None
        try:
            measurement, notes = self._measure(analyte, raw, hint)
        except InputError as error:
            self.errors.append(CellError(line, where, _shown(raw), str(error), error))
            return None
        return self.put(analyte, measurement, notes, where=where, line=line)

    def _measure(self, analyte: str, raw: object, hint: UnitHint | None):
        def read():
            measurement, notes = measure(self.ranges, analyte, raw, hint=hint, policy=self.policy)
            return measurement, tuple(notes)

        if self.readings is None or not isinstance(raw, (str, int, float)):
            return read()
        return self._remembered((analyte, type(raw), raw, hint), read)

    def _remembered(self, key: tuple, read):
        """What `read()` gives (or the InputError it raises), once per `key` per input."""
        cache = self.readings
        found = cache.get(key, cache)
        if found is cache:
            try:
                found = read()
            except InputError as error:
                found = error
            if len(cache) >= MAX_READINGS:
                cache.clear()
            cache[key] = found
        if isinstance(found, InputError):
            raise found
        return found

    def put(
        self,
        analyte: str,
        measurement: Measurement,
        notes: list[Note] = (),  # type: ignore[assignment]
        *,
        where: str,
        line: int = 0,
    ) -> Measurement | None:
        """Add a measurement under the duplicate rule."""
        given = (where, measurement.input)
        if analyte in self.refused:
            self._conflict(analyte, self.sources[analyte], given, line)
            return None
        previous = self.measurements.get(analyte)
        if previous is not None:
            if same_result(previous, measurement):
                return previous
            del self.measurements[analyte]
            self.refused.add(analyte)
            self._conflict(analyte, self.sources[analyte], given, line)
            return None
        self.measurements[analyte] = measurement
        self.sources[analyte] = given
        self.notes.extend(notes)
        return measurement

    def override(self, analyte: str, raw: object, *, where: str) -> Measurement | None:
        """A typed flag replaces whatever the source gave for the analyte (even a conflict)."""
        self.measurements.pop(analyte, None)
        self.sources.pop(analyte, None)
        self.refused.discard(analyte)
        self.errors = [
            e for e in self.errors if e.error is None or getattr(e.error, "field", None) != analyte
        ]
        return self.add_value(analyte, raw, where=where)

    def _conflict(self, analyte: str, first: tuple, second: tuple, line: int) -> None:
        reason = conflict_reason(analyte, first, second)
        error = InputError(
            reason, field=analyte, fix="keep one result per analyte per panel (or correct one)"
        )
        self.errors.append(CellError(line, second[0], second[1][:80], reason, error))

    def set_patient_id(self, raw: object) -> None:
        if raw is None or is_missing(raw):
            return
        text = cell_text(raw, "patient_id").strip() if not isinstance(raw, str) else raw.strip()
        if text:
            self.patient_id = text

    def set_field(self, key: str, raw: object, *, where: str, line: int = 0) -> None:
        """A patient or panel field (date, sex, age, therapy start), parsed by its one parser.

        Given again for the same panel (another row of a long export), it must agree:
        a different value is an error of the panel, and the first one is kept.
        """
        if raw is None or (isinstance(raw, str) and is_missing(raw)):
            return
        if key == "sex" and sex_not_stated(raw):
            if "sex" not in self.fields and not any(n.kind == SEX_NOT_GIVEN for n in self.notes):
                self.note(sex_not_given(raw))
            return
        try:
            value = self._parsed(key, raw, where)
        except InputError as error:
            self.errors.append(CellError(line, where, _shown(raw), str(error), error))
            return
        if value is None:
            return
        first = self.fields.get(key)
        if first is None:
            self.fields[key] = value
        elif first != value:
            if isinstance(first, dt.date):
                shown = first.isoformat()
            elif isinstance(first, float):
                shown = format_number(first, 2)
            else:
                shown = str(first)
            reason = (
                f"{key} '{_shown(raw)}' differs from the {key} {shown} given earlier for this "
                "panel (that one is used); make the rows of one panel agree"
            )
            self.errors.append(CellError(line, where, _shown(raw), reason))

    def _parsed(self, key: str, raw: object, where: str) -> object:
        """The field parsed by its one parser (a text cell once per input)."""
        parse = PATIENT_PARSERS[key]
        order = self.policy.date_order

        def read():
            return parse(raw, where, order) if parse is parse_date else parse(raw, where)

        if self.readings is None or type(raw) is not str:
            return read()
        return self._remembered(("field", key, raw, where, order), read)  # apart from values'

    def note(self, note: Note) -> None:
        self.notes.append(note)

    def name_notes(self, since: int, subject: str) -> None:
        """Credit the notes made since `since` to `subject` (a column or test): the
        summary counts them per column ("B12: no unit, read as ... in 12 records")."""
        for index in range(since, len(self.notes)):
            self.notes[index] = self.notes[index]._replace(subject=subject)

    # --- result ----------------------------------------------------------------

    @property
    def date(self) -> dt.date | None:
        return self.fields.get("date")  # type: ignore[return-value]

    def raise_first_error(self) -> None:
        """`interpret`'s contract: the first unusable input is an input error (exit 2)."""
        if self.errors:
            first = self.errors[0]
            raise first.error or InputError(first.reason)

    def panel(self, context: Context | None = None, **overrides) -> Panel:
        context = context or Context()
        if self.policy.strict and ANC.applies(self.measurements):
            self.errors.append(
                CellError(
                    self.lines[0] if self.lines else 0,
                    "anc",
                    "",
                    "ANC would be derived from WBC x neutrophil %; refused under --strict "
                    "(give the ANC itself)",
                )
            )
        start = self.fields.get("b12_therapy_start")
        if start is not None and context.b12_therapy_start is None:
            context = Context(**{**context.__dict__, "b12_therapy_start": start})
        values = {
            "measurements": dict(self.measurements),
            "date": self.fields.get("date"),
            "patient_id": self.patient_id,
            "sex": self.fields.get("sex"),
            "age": self.fields.get("age"),
            "context": context,
            "warnings": tuple(dict.fromkeys(str(n) for n in self.notes)),
            "errors": tuple(e.message() for e in self.errors),
        }
        values.update(overrides)
        return Panel(**values)


def _shown(raw: object) -> str:
    return (raw if isinstance(raw, str) else repr(raw)).strip()[:80]


def sex_not_given(raw: str) -> Note:
    """The note for a sex the source states as other or unknown (`sex_not_stated`)."""
    shown = raw.strip()[:20]
    return Note(
        SEX_NOT_GIVEN,
        "sex",
        f"sex '{shown}', judged as not given",
        f"sex is '{shown}' in the source; sex-specific limits are not used",
    )
