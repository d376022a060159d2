"""Streaming interpretation of lab exports: rows in, one record per panel out, in order.

`RowInterpreter` is the row-stream function `b12lab batch` itself uses. It is
pure (no I/O) and picklable together with the loaded ranges, so the same code
can run per partition on a distributed engine:

    interpreter = RowInterpreter.for_header(header, load_ranges())
    records = interpreter(rows)          # rows: lists of cells, in file order

A bad cell never drops its row: the rest of the row is interpreted and the
record carries the error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from b12lab.engine import evaluate
from b12lab.errors import InputError
from b12lab.reading.columns import ColumnPlan, plan_columns
from b12lab.reading.fields import parse_age, parse_date, parse_sex
from b12lab.reading.values import MISSING_TOKENS, measure
from b12lab.model import Context, Measurement, Panel, Report
from b12lab.outcomes import Outcome, OutcomeCache
from b12lab.ranges import Ranges, column_key
from b12lab.timeline import evaluate_panels

# Memo sizes: entries kept before a memo is cleared, so memory stays flat.
CELL_MEMO = 4096
RECENT_PATIENTS = 10_000  # how far back a reappearing patient is noticed in --timeline
PATIENT_FIELDS = {  # column key -> (draft attribute, parser)
    "patient_id": ("patient_id", None),
    "date": ("date", parse_date),
    "sex": ("sex", parse_sex),
    "age": ("age", parse_age),
    "b12_therapy_start": ("therapy_start", parse_date),
}


@dataclass(frozen=True)
class CellError:
    line: int
    column: str
    value: str
    reason: str


@dataclass(frozen=True)
class BatchRecord:
    """One output record: where the panel came from, its outcome and (if asked) its report."""

    lines: tuple[int, ...]
    patient_id: str | None
    panel_date: dt.date | None
    outcome: Outcome
    errors: tuple[str, ...]
    report: Report | None = None
    cell_errors: tuple[CellError, ...] = ()

    @property
    def first_line(self) -> int:
        return self.lines[0] if self.lines else 0


@dataclass
class _PanelDraft:
    """A panel being assembled from one wide row or several long rows."""

    lines: list[int]
    patient_id: str | None = None
    date: dt.date | None = None
    sex: str | None = None
    age: float | None = None
    therapy_start: dt.date | None = None
    measurements: dict[str, Measurement] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)


class RowInterpreter:
    """Turns the rows of one export into BatchRecords, in input order."""

    def __init__(
        self,
        plan: ColumnPlan,
        ranges: Ranges,
        *,
        guideline: str | None = None,
        decimal_comma: bool = False,
        today: dt.date | None = None,
        full_reports: bool = True,
        timeline: bool = False,
    ):
        self.plan = plan
        self.ranges = ranges
        self.guideline = guideline
        self.decimal_comma = decimal_comma
        self.today = today or dt.date.today()
        self.full_reports = full_reports
        self.timeline = timeline
        ranges.profile(guideline)  # an unknown guideline fails before any row is read
        # Results are pure functions of their inputs, so repeats are looked up:
        # a cell's text and unit -> its measurement; a panel's decision key ->
        # its outcome (only when full reports, with worded details, are not needed).
        self._cells: dict[tuple, tuple] = {}
        self._fields: dict[tuple, tuple] = {}
        self._outcomes = OutcomeCache(ranges, guideline, self.today)

    @classmethod
    def for_header(
        cls,
        header: Sequence[str],
        ranges: Ranges,
        *,
        layout: str = "auto",
        mapping: Mapping[str, str] | None = None,
        **options,
    ) -> RowInterpreter:
        plan = plan_columns(list(header), ranges, layout=layout, mapping=mapping)
        return cls(plan, ranges, **options)

    def __call__(
        self, rows: Iterable[tuple[int, Sequence[str] | None, str | None]]
    ) -> Iterator[BatchRecord]:
        """Rows as (line number, cells, problem); cells None when the line was unreadable."""
        if self.plan.layout == "long":
            drafts = self._long(rows)
        else:
            drafts = (self._wide_row(line, cells, problem) for line, cells, problem in rows)
        if not self.timeline:
            for draft in drafts:
                yield self._finish(draft)
            return
        yield from self._by_patient(drafts)

    def _by_patient(self, drafts: Iterable[_PanelDraft]) -> Iterator[BatchRecord]:
        """Consecutive panels of one patient make one timeline record.

        Memory holds one patient's panels at a time, so a patient's rows must be
        contiguous (sort the export by patient); a patient seen again after
        others starts a new record, with a warning.
        """
        group: list[_PanelDraft] = []
        recent: dict[str, None] = {}
        for draft in drafts:
            if group and draft.patient_id != group[0].patient_id:
                yield self._finish_patient(group)
                group = []
            if not group and draft.patient_id is not None:
                if draft.patient_id in recent:
                    draft.warnings.append(
                        f"patient {draft.patient_id} appears again at line {draft.lines[0]}, "
                        "after other patients; sort the export by patient for one timeline"
                    )
                recent[draft.patient_id] = None
                if len(recent) > RECENT_PATIENTS:
                    recent.pop(next(iter(recent)))
            group.append(draft)
        if group:
            yield self._finish_patient(group)

    def _finish_patient(self, drafts: list[_PanelDraft]) -> BatchRecord:
        # Sex, age and therapy start describe the patient: any panel may carry them.
        for attribute in ("sex", "age", "therapy_start"):
            known = [getattr(d, attribute) for d in drafts if getattr(d, attribute) is not None]
            for draft in drafts:
                if known and getattr(draft, attribute) is None:
                    setattr(draft, attribute, known[-1])
        panels = []
        for draft in drafts:
            if draft.date is None and len(drafts) > 1:
                draft.errors.append(
                    CellError(draft.lines[0], "", "", "no collection date; a timeline needs one")
                )
            panels.append(self._panel(draft))
        report = evaluate_panels(panels, self.ranges, guideline=self.guideline, today=self.today)
        return BatchRecord(
            lines=tuple(line for draft in drafts for line in draft.lines),
            patient_id=drafts[0].patient_id,
            panel_date=report.panel_date,
            outcome=Outcome.of(report),
            errors=report.errors,
            report=report if self.full_reports else None,
            cell_errors=tuple(error for draft in drafts for error in draft.errors),
        )

    # --- reading cells -------------------------------------------------------

    def _cell(self, cells: Sequence[str], index: int | None) -> str:
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def _patient_fields(self, draft: _PanelDraft, cells: Sequence[str]) -> None:
        for key, index in self.plan.fields.items():
            if key not in PATIENT_FIELDS:
                continue
            text = self._cell(cells, index)
            if key == "patient_id":
                text = text.strip()
                if text.casefold() not in MISSING_TOKENS:
                    draft.patient_id = text
                continue
            parsed = self._fields.get((key, text))
            if parsed is None:
                if len(self._fields) >= CELL_MEMO:
                    self._fields.clear()
                parsed = self._fields[(key, text)] = self._read_field(key, index, text)
            value, problem = parsed
            if problem is not None:
                draft.errors.append(
                    CellError(draft.lines[-1], self.plan.header[index], text.strip()[:80], problem)
                )
            elif value is not None:
                setattr(draft, PATIENT_FIELDS[key][0], value)

    def _read_field(self, key: str, index: int, text: str) -> tuple:
        """(value, None), (None, None) when empty, or (None, reason)."""
        text = text.strip()
        if text.casefold() in MISSING_TOKENS:
            return None, None
        parse = PATIENT_FIELDS[key][1]
        if parse is None:
            return text, None
        try:
            return parse(text, self.plan.header[index].strip() or key), None
        except InputError as error:
            return None, str(error)

    def _add_value(
        self, draft: _PanelDraft, line: int, column: str, analyte: str, text: str, unit: str | None
    ) -> None:
        cell_key = (analyte, text, unit)
        result = self._cells.get(cell_key)
        if result is None:
            if len(self._cells) >= CELL_MEMO:
                self._cells.clear()
            result = self._cells[cell_key] = self._read_cell(analyte, text, unit)
        measurement, notes = result
        if measurement is None:
            if notes is not None:
                draft.errors.append(CellError(line, column, text.strip()[:80], notes))
            return
        previous = draft.measurements.get(analyte)
        if previous is not None and previous.value != measurement.value:
            draft.errors.append(
                CellError(
                    line,
                    column,
                    text.strip()[:80],
                    f"{analyte} given twice in one panel ({draft.sources[analyte]}: "
                    f"{previous.input}; {column}: {measurement.input}); the first is used",
                )
            )
            return
        draft.measurements.setdefault(analyte, measurement)
        draft.sources.setdefault(analyte, column)
        draft.warnings.extend(notes)

    def _read_cell(self, analyte: str, text: str, unit: str | None) -> tuple:
        """(measurement, notes) for a value, (None, reason) for a missing or bad one."""
        if text.strip().casefold() in MISSING_TOKENS:
            return None, None
        try:
            return measure(self.ranges, analyte, text, decimal_comma=self.decimal_comma, unit=unit)
        except InputError as error:
            return None, str(error)

    def _wide_row(self, line: int, cells: Sequence[str] | None, problem: str | None) -> _PanelDraft:
        draft = _PanelDraft(lines=[line])
        if cells is None:
            draft.errors.append(CellError(line, "", "", problem or "unreadable row"))
            return draft
        if problem:
            draft.errors.append(CellError(line, "", "", problem))
        width = len(self.plan.header)
        if len(cells) != width:
            draft.errors.append(
                CellError(line, "", "", f"row has {len(cells)} fields but the header has {width}")
            )
        self._patient_fields(draft, cells)
        for column in self.plan.analytes:
            text = self._cell(cells, column.index)
            if not text:
                continue
            unit = column.header_unit
            if column.unit_index is not None:
                unit = self._cell(cells, column.unit_index).strip() or unit
            self._add_value(draft, line, column.name, column.analyte, text, unit)
        return draft

    def _long(
        self, rows: Iterable[tuple[int, Sequence[str] | None, str | None]]
    ) -> Iterator[_PanelDraft]:
        """Consecutive rows with the same patient and date form one panel."""
        fields = self.plan.fields
        draft: _PanelDraft | None = None
        key: tuple[str, str] | None = None
        for line, cells, problem in rows:
            if cells is None:
                if draft is None:
                    draft = _PanelDraft(lines=[])
                draft.lines.append(line)
                draft.errors.append(CellError(line, "", "", problem or "unreadable row"))
                continue
            row_key = (
                self._cell(cells, fields.get("patient_id")).strip(),
                self._cell(cells, fields.get("date")).strip(),
            )
            if draft is not None and row_key != key and key is not None:
                yield draft
                draft = None
            if draft is None:
                draft = _PanelDraft(lines=[line])
                self._patient_fields(draft, cells)
            else:
                draft.lines.append(line)
            key = row_key
            if problem:
                draft.errors.append(CellError(line, "", "", problem))
            test = self._cell(cells, fields["test"]).strip()
            analyte = self.ranges.analyte_for(test) if test else None
            if analyte is None:
                draft.errors.append(
                    CellError(
                        line,
                        self.plan.header[fields["test"]],
                        test[:80],
                        f"unknown test '{test[:40]}'" if test else "no test name",
                    )
                )
                continue
            unit = self._cell(cells, fields.get("unit")).strip() or None
            self._add_value(draft, line, test, analyte, self._cell(cells, fields["value"]), unit)
        if draft is not None:
            yield draft

    # --- interpreting ----------------------------------------------------------

    def _panel(self, draft: _PanelDraft) -> Panel:
        return Panel(
            measurements=draft.measurements,
            date=draft.date,
            patient_id=draft.patient_id,
            sex=draft.sex,
            age=draft.age,
            context=Context(b12_therapy_start=draft.therapy_start),
            warnings=tuple(draft.warnings),
            errors=tuple(
                f"line {e.line}" + (f", {e.column}" if e.column else "") + f": {e.reason}"
                for e in draft.errors
            ),
        )

    def _finish(self, draft: _PanelDraft) -> BatchRecord:
        panel = self._panel(draft)
        report = None
        if self.full_reports:
            report = evaluate(panel, self.ranges, guideline=self.guideline, today=self.today)
            outcome = Outcome.of(report)
        else:
            outcome = self._outcomes.outcome(panel)
        return BatchRecord(
            lines=tuple(draft.lines),
            patient_id=draft.patient_id,
            panel_date=draft.date,
            outcome=outcome,
            errors=panel.errors,
            report=report,
            cell_errors=tuple(draft.errors),
        )


def interpret_rows(
    rows: Iterable[Mapping[str, object]],
    ranges: Ranges | None = None,
    *,
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
    guideline: str | None = None,
    decimal_comma: bool = False,
) -> Iterator[BatchRecord]:
    """Interpret dict rows (e.g. `DataFrame.to_dict("records")`), one record per panel.

    The keys of the first row are the header; a later row missing a key has
    an empty cell there.
    """
    from b12lab.ranges import load_ranges

    ranges = ranges or load_ranges()
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    header = [str(k) for k in first]
    interpreter = RowInterpreter.for_header(
        header,
        ranges,
        layout=layout,
        mapping={column_key(k): v for k, v in (mapping or {}).items()},
        guideline=guideline,
        decimal_comma=decimal_comma,
    )

    def cells(number: int, row: Mapping[str, object]):
        return (number, ["" if row.get(h) is None else str(row.get(h)) for h in header], None)

    def numbered():
        yield cells(1, first)
        for number, row in enumerate(iterator, start=2):
            yield cells(number, row)

    yield from interpreter(numbered())
