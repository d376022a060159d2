"""Streaming interpretation of lab exports: rows in, one record per panel out, in order.

`RowInterpreter` is the row-stream function `b12lab batch` itself uses. It is
pure (no I/O but the private temporary files that group the rows of a large
unsorted long export, `b12lab.batch.grouping`) and picklable together with the
loaded ranges, so the same code can run per partition on a distributed engine:

    interpreter = RowInterpreter.for_header(header, load_ranges())
    records = interpreter(rows)          # rows: lists of cells, in file order

Every cell is read by the reading layer (`b12lab.reading`) under one policy; a
bad cell never drops its row: the rest of the row is interpreted and the record
carries the error.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from b12lab.batch.options import BatchOptions
from b12lab.decision import Decision, DecisionCore, warnings
from b12lab.errors import AmbiguousValueError, InputError, option
from b12lab.model import Context, Measurement, Panel, Report
from b12lab.outcomes import Outcome
from b12lab.output_columns import OutputColumns, kept_cell, normalized_cell, output_columns
from b12lab.ranges import Ranges, column_key
from b12lab.reading.columns import (
    ColumnPlan,
    apply_units,
    plan_columns,
    sample_decimal_mark,
    test_analyte,
    unit_hint,
)
from b12lab.reading.panel import CellError, PanelBuilder
from b12lab.reading.policy import (
    AUTO,
    DERIVED,
    PANEL_SPLIT,
    POINT,
    TEST_NOT_READ,
    TEST_SKIPPED,
    Note,
    ReadPolicy,
)
from b12lab.reading.values import (
    UnitHint,
    bare_number_problem,
    cell_text,
    is_missing,
    read_result,
)
from b12lab.rules.catalogue import Catalogue, catalogue_in_force
from b12lab.timeline import evaluate_panels

RECENT_PATIENTS = 10_000  # messages: how far back a reappearing patient is noticed in --timeline
PANEL_WINDOW = 10_000  # messages: observations of one panel are grouped within this many
DECIMAL_SAMPLE = 2_000  # rows looked at to find the file's decimal mark
OWN_RECORD = "own record"  # PanelBuilder.extra key: a source record never merged into a timeline
KEPT = "kept"  # PanelBuilder.extra key: the --keep cells of the panel's first row

__all__ = ["BatchRecord", "CellError", "RowInterpreter", "interpret_rows"]


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
    notes: tuple[Note, ...] = ()  # what the reading layer assumed, for the summary
    warnings: tuple[str, ...] = ()
    guideline: str = ""
    provenance: tuple[tuple[str, str], ...] = ()  # version, ranges SHA-256, profile, date
    # Each value read (not derived) as b12lab used it: (analyte, value in the canonical
    # unit, its comparator when censored).
    values: tuple[tuple[str, float, str | None], ...] = ()
    kept: tuple[str, ...] = ()  # the --keep cells of the record's first row
    # The record as NDJSON/JSON text, when it was rendered from its key's template
    # (b12lab.render.templates) rather than kept as a full report.
    json_text: str | None = None

    def value_cells(self, analytes: Sequence[str]) -> list[str]:
        """The normalized values of `analytes` as CSV cells (`<73.8`), "" where absent or
        refused."""
        found = {
            analyte: normalized_cell(value, censored) for analyte, value, censored in self.values
        }
        return [found.get(analyte, "") for analyte in analytes]

    def value_numbers(self, analytes: Sequence[str]) -> list[tuple[float | None, str | None]]:
        """The values of `analytes` and their comparators, (None, None) where absent or
        refused."""
        found = {analyte: (value, censored) for analyte, value, censored in self.values}
        return [found.get(analyte, (None, None)) for analyte in analytes]

    @property
    def first_line(self) -> int:
        return self.lines[0] if self.lines else 0


Row = tuple[int, Sequence[object] | None, str | None]
Item = TypeVar("Item")


class RowInterpreter:
    """Turns the rows of one export into BatchRecords, in input order."""

    def __init__(
        self,
        plan: ColumnPlan,
        ranges: Ranges,
        *,
        guideline: str | None = None,
        policy: ReadPolicy | None = None,
        today: dt.date | None = None,
        full_reports: bool = True,
        json_records: bool = False,
        timeline: bool = False,
        window: int = PANEL_WINDOW,
        keep: Sequence[str] = (),
        rules: Catalogue | None = None,
    ):
        self.plan = plan
        self.ranges = ranges
        self.guideline = guideline
        self.policy = replace(policy or ReadPolicy(decimal=AUTO), guideline=guideline)
        self.today = today or dt.date.today()
        self.full_reports = full_reports
        self.json_records = json_records  # records written as JSON text (NDJSON, JSON)
        self.timeline = timeline
        if timeline and plan.fields.get("patient_id") is None:
            # One patient's record from every row would mix patients without a word.
            raise InputError(
                f"{option('--timeline')} makes one record per patient, but no column of the "
                "export holds the patient",
                fix="name the patient column with "
                f"{option('--map', 'COLUMN=patient_id')}, or leave out "
                f"{option('--timeline')} for one record per panel",
            )
        self.window = window
        ranges.profile(guideline)  # an unknown guideline fails before any row is read
        apply_units(plan, self.policy.units, ranges)
        self.core = DecisionCore(ranges, guideline, self.today, rules)
        self._readings: dict = {}  # cells read once per policy (PanelBuilder.readings)
        self._readings_policy: ReadPolicy | None = None
        present = [c.analyte for c in plan.analytes] if plan.layout == "wide" else None
        self.columns: OutputColumns = output_columns(ranges, present, plan.header, keep)
        self._templates = None  # ReportTemplates, built on the first JSON record

    @classmethod
    def for_options(
        cls, header: Sequence[str], ranges: Ranges, options: BatchOptions, **overrides
    ) -> RowInterpreter:
        """The interpreter of an export with this header, under a run's options."""
        return cls.for_header(
            header,
            ranges,
            layout=options.layout,
            mapping=options.mapping,
            **{**options.interpreter_options(), **overrides},
        )

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

    def __call__(self, rows: Iterable[Row]) -> Iterator[BatchRecord]:
        """Rows as (line number, cells, problem); cells None when the line was unreadable."""
        from b12lab.batch.grouping import CheckedRows  # not on a one-patient interpret's path

        grouped = rows.grouped if isinstance(rows, CheckedRows) else None
        rows = iter(rows)
        sample = list(itertools.islice(rows, DECIMAL_SAMPLE))
        if self.policy.decimal == AUTO:
            self.policy = replace(self.policy, decimal=self._decimal_mark(sample))
        if self.plan.layout != "long":
            self._check_bare_columns(sample)
        rows = itertools.chain(sample, rows)
        rows = self._grouped(rows, grouped)
        if self.plan.layout == "long":
            builders = self._long(rows)
        else:
            builders = (self._wide_row(line, cells, problem) for line, cells, problem in rows)
        if not self.timeline:
            for builder in builders:
                yield self._finish(builder)
            return
        yield from self._by_patient(builders)

    # --- the file's conventions ------------------------------------------------------

    def _decimal_mark(self, sample: list[Row]) -> str | None:
        """The decimal mark the sampled values show (noted), else UNKNOWN."""
        found = sample_decimal_mark(self.plan, ((line, cells) for line, cells, _ in sample))
        if found.note:
            self.plan.notes.append(found.note)
        return found.mark

    def _check_bare_columns(self, sample: list[Row]) -> None:
        """A column whose values carry no unit, and that two common units would read
        with different conclusions, stops the run before any row is written."""
        for column in self.plan.analytes:
            if column.unit_index is not None or column.header_unit or column.given_unit:
                continue
            if self.plan.analyte_units.get(column.analyte):
                continue
            width = len(self.plan.header)
            for line, cells, problem in sample:
                if cells is None or problem or len(cells) != width:
                    continue  # a malformed row is its own error record, not the column's
                raw = _cell(cells, column.index)
                if is_missing(raw):
                    continue
                try:
                    reading = read_result(
                        cell_text(raw, column.analyte).strip(), column.analyte, decimal=POINT
                    )
                except InputError:
                    continue
                if reading.unit:
                    continue
                problem = bare_number_problem(
                    self.ranges,
                    column.analyte,
                    reading.number,
                    reading.censored,
                    self.policy.guideline,
                )
                if problem is not None:
                    name = column.name.strip()
                    raise AmbiguousValueError(
                        f"column '{name}' has values without a unit that read apart "
                        f"(line {line}: {problem})",
                        field=column.analyte,
                        fix="give the column's unit with "
                        f"{option('--unit', f'{name}=UNIT', quoted=True)} "
                        "(or write the unit in the cells, a unit column or the header)",
                    )

    # --- reading rows ------------------------------------------------------------

    def _builder(self, line: int) -> PanelBuilder:
        if self._readings_policy is not self.policy:  # cells read under another policy
            self._readings, self._readings_policy = {}, self.policy
        return PanelBuilder(self.ranges, self.policy, line, self._readings)

    def _keep(self, builder: PanelBuilder, cells: Sequence[object] | None) -> None:
        """The --keep cells of the panel's first row ("" for an unreadable row)."""
        if self.columns.kept:
            builder.extra[KEPT] = tuple(
                kept_cell(_cell(cells, k.index)) if cells is not None else ""
                for k in self.columns.kept
            )

    def _patient_fields(self, builder: PanelBuilder, cells: Sequence[object], line: int) -> None:
        for key, index in self.plan.fields.items():
            raw = _cell(cells, index)
            name = self.plan.header[index].strip() or key
            if key == "patient_id":
                if builder.patient_id is None:
                    builder.set_patient_id(raw)
            elif key in ("date", "sex", "age", "b12_therapy_start"):
                builder.set_field(key, raw, where=name, line=line)

    def _hint(
        self, column_name: str, analyte: str, unit_text: object, header_unit, given
    ) -> UnitHint | None:
        return unit_hint(column_name, unit_text, header_unit, given)

    def _wide_row(
        self, line: int, cells: Sequence[object] | None, problem: str | None
    ) -> PanelBuilder:
        builder = self._builder(line)
        self._keep(builder, cells)
        if cells is None:
            builder.extra[OWN_RECORD] = True  # never merged into a timeline
            builder.errors.append(CellError(line, "", "", problem or "unreadable row"))
            return builder
        if problem:
            builder.errors.append(CellError(line, "", "", problem))
        width = len(self.plan.header)
        if len(cells) != width:
            builder.errors.append(
                CellError(line, "", "", f"row has {len(cells)} fields but the header has {width}")
            )
        self._patient_fields(builder, cells, line)
        for column in self.plan.analytes:
            raw = _cell(cells, column.index)
            if is_missing(raw):
                continue
            unit_text = _cell(cells, column.unit_index) if column.unit_index is not None else None
            hint = self._hint(
                column.name, column.analyte, unit_text, column.header_unit, column.given_unit
            )
            before = len(builder.notes)
            builder.add_value(column.analyte, raw, where=column.name, line=line, hint=hint)
            builder.name_notes(before, column.name)
        return builder

    def _grouped(self, rows: Iterator[Row], grouped: bool | None) -> Iterator[Row]:
        """Rows of one panel (one patient with --timeline) contiguous: `b12lab.batch.grouping`."""
        from b12lab.batch.grouping import arrange, row_levels

        levels = row_levels(self.plan, self.timeline, self.policy.date_order)
        if levels is None:
            return rows
        what = "patient"
        if self.plan.layout == "long":
            what += " and date" + (" (and accession)" if "accession" in self.plan.fields else "")
        return arrange(rows, levels, grouped=grouped, notes=self.plan.notes, what=what)

    def _long(self, rows: Iterable[Row]) -> Iterator[PanelBuilder]:
        """Rows of the same patient, date (and accession, when there is one) form one panel.

        The rows arrive grouped (`_grouped`), so a panel is a run of rows with
        one key, however far apart its rows were in the export.
        """
        fields = self.plan.fields
        from b12lab.batch.grouping import panel_key

        test_name = self.plan.header[fields["test"]].strip() or "test"
        key = panel_key(self.plan, self.policy.date_order)
        builder: PanelBuilder | None = None
        current: Hashable = None
        for row in rows:
            line, cells, problem = row
            row_key = key(row)
            if builder is None or row_key != current:
                if builder is not None:
                    yield builder
                builder, current = self._builder(line), row_key
                self._keep(builder, cells)
            else:
                builder.lines.append(line)
            if cells is None:
                builder.extra[OWN_RECORD] = True  # never merged into a timeline
                builder.errors.append(CellError(line, "", "", problem or "unreadable row"))
                continue
            if problem:
                builder.errors.append(CellError(line, "", "", problem))
            self._patient_fields(builder, cells, line)
            test = str(_cell(cells, fields["test"])).strip()
            analyte = self._test_analyte(test)
            if analyte is None:
                if test:
                    builder.note(unread_test_note(self.ranges, test))
                else:
                    builder.errors.append(CellError(line, test_name, "", "no test name"))
                continue
            raw = _cell(cells, fields["value"])
            unit_text = _cell(cells, fields["unit"]) if "unit" in fields else None
            hint = self._hint(
                test[:40], analyte, unit_text, None, self.plan.analyte_units.get(analyte)
            )
            before = len(builder.notes)
            builder.add_value(analyte, raw, where=test[:40], line=line, hint=hint)
            builder.name_notes(before, test[:40])
        if builder is not None:
            yield builder

    def _test_analyte(self, test: str) -> str | None:
        return test_analyte(self.plan, test, self.ranges)

    # --- interpreting --------------------------------------------------------------

    def _panel(self, builder: PanelBuilder) -> Panel:
        skipped = [n for n in builder.notes if n.kind == TEST_SKIPPED]
        panel = builder.panel(Context())
        if skipped:
            # Tests that are not analytes are counted in the summary, not repeated per panel.
            kept = tuple(str(n) for n in builder.notes if n.kind != TEST_SKIPPED)
            panel = replace(panel, warnings=tuple(dict.fromkeys(kept)))
        return panel

    def _finish(self, builder: PanelBuilder) -> BatchRecord:
        """The panel's record: decided once per distinct key unless full reports are wanted.

        A JSON record is its key's template filled with the panel's values
        (b12lab.render.templates); a panel with errors, or judged by a
        laboratory's rules file, gets its own full report.
        """
        panel = self._panel(builder)
        if self.json_records and not panel.errors and self.core.catalogue is None:
            record = self._templated(builder, panel)
            if record is not None:
                return record
        report = self.core.report(panel) if self.full_reports else None
        decision = Decision.of(report) if report is not None else self.core.decide(panel)
        return self._record(builder, panel, decision, decision.warnings, report=report)

    def _templated(self, builder: PanelBuilder, panel: Panel) -> BatchRecord | None:
        """The panel's record with its JSON text rendered from its key's template (None
        when its key has none)."""
        templates = self.report_templates()
        rendered = templates.render(panel, builder.lines, builder.extra.get(KEPT, ()))
        if rendered is None:
            return None
        text, decision, decided = rendered
        return self._record(builder, panel, decision, decided, json_text=text)

    def report_templates(self):
        """The run's JSON record templates (`b12lab.render.templates.ReportTemplates`),
        made on first use and shared by the row and the columnar path."""
        if self._templates is None:
            from b12lab.render.templates import ReportTemplates

            kept = [column.name for column in self.columns.kept]
            self._templates = ReportTemplates(self.core, kept)
        return self._templates

    def _record(
        self,
        builder: PanelBuilder,
        panel: Panel,
        decision: Decision,
        decided: tuple[str, ...],
        **rendered,
    ) -> BatchRecord:
        """The panel's record from its decision (`decided`: the decision's own warnings);
        `rendered`: its full report or its JSON text, for the formats that write them."""
        for analyte in decision.derived:
            builder.note(Note(DERIVED, analyte, "derived", f"{analyte} derived"))
        return BatchRecord(
            lines=tuple(builder.lines),
            patient_id=builder.patient_id,
            panel_date=builder.date,
            outcome=decision.outcome,
            errors=panel.errors,
            cell_errors=tuple(builder.errors),
            notes=tuple(builder.notes),
            warnings=warnings(panel.warnings, decided),
            guideline=decision.guideline,
            provenance=decision.provenance,
            values=_values(panel.measurements.values()),
            kept=builder.extra.get(KEPT, ()),  # type: ignore[arg-type]
            **rendered,
        )

    def _by_patient(self, builders: Iterable[PanelBuilder]) -> Iterator[BatchRecord]:
        """Consecutive panels of one patient make one timeline record.

        Memory holds one patient's panels at a time. The rows of an export
        arrive grouped by patient (`_grouped`), so each patient is one record;
        laboratory messages are read in their order, and there a patient seen
        again after others starts a new record, with a warning.
        """
        group: list[PanelBuilder] = []
        recent: dict[str, None] = {}
        for builder in builders:
            if builder.extra.get(OWN_RECORD):  # a source record that could not be read
                if group:
                    yield self._finish_patient(group)
                    group = []
                yield self._finish(builder)
                continue
            if group and builder.patient_id != group[0].patient_id:
                yield self._finish_patient(group)
                group = []
            if builder.patient_id is None:  # never merged with other panels without one
                builder.note(
                    Note(
                        PANEL_SPLIT,
                        "patient",
                        "no patient id",
                        f"the panel at line {builder.lines[0] if builder.lines else 0} has no "
                        "patient id, so it is a record of its own, not part of a timeline; "
                        "fill in the patient column",
                    )
                )
                yield self._finish_patient([builder])
                continue
            if not group and builder.patient_id is not None:
                if builder.patient_id in recent:
                    builder.note(
                        Note(
                            PANEL_SPLIT,
                            "patient",
                            "patient reappears after others",
                            f"patient {builder.patient_id} appears again at line "
                            f"{builder.lines[0]}, after other patients; sort the export by "
                            "patient for one timeline",
                        )
                    )
                recent[builder.patient_id] = None
                if len(recent) > RECENT_PATIENTS:
                    recent.pop(next(iter(recent)))
            group.append(builder)
        if group:
            yield self._finish_patient(group)

    def _finish_patient(self, builders: list[PanelBuilder]) -> BatchRecord:
        # Sex, age and therapy start describe the patient: any panel may carry them.
        for key in ("sex", "age", "b12_therapy_start"):
            known = [b.fields[key] for b in builders if key in b.fields]
            for builder in builders:
                if known and key not in builder.fields:
                    builder.fields[key] = known[-1]
        panels = []
        for builder in builders:
            if builder.date is None and len(builders) > 1:
                builder.errors.append(
                    CellError(
                        builder.lines[0] if builder.lines else 0,
                        "",
                        "",
                        "no collection date; a timeline needs one",
                    )
                )
            panels.append(self._panel(builder))
        with catalogue_in_force(self.core.catalogue):
            report = evaluate_panels(
                panels, self.ranges, guideline=self.guideline, today=self.today
            )
        return BatchRecord(
            lines=tuple(line for builder in builders for line in builder.lines),
            patient_id=builders[0].patient_id,
            panel_date=report.panel_date,
            outcome=Outcome.of(report),
            errors=report.errors,
            report=report if self.full_reports else None,
            cell_errors=tuple(error for builder in builders for error in builder.errors),
            notes=tuple(note for builder in builders for note in builder.notes),
            warnings=report.warnings,
            guideline=report.guideline,
            provenance=tuple(report.provenance.items()),
            values=_values(report.measurements),
            kept=builders[0].extra.get(KEPT, ()),  # type: ignore[arg-type]
        )


def group_panels(
    items: Iterable[Item],
    *,
    key: Callable[[Item], Hashable],
    open_panel: Callable[[Item, Hashable, int | None], PanelBuilder],
    add: Callable[[PanelBuilder, Item, bool], None],
    window: int = PANEL_WINDOW,
) -> Iterator[PanelBuilder]:
    """Items (the observations of laboratory messages) with the same key form one panel.

    Items of a panel need not be adjacent: a panel stays open for `window` items
    after its first one, then is written, so panels keep the order of their
    first items and memory holds at most `window` panels. An item that arrives
    later for a written panel starts a new one: `open_panel` then gets the
    first line of the earlier panel, so that both readings can be named.
    `add(builder, item, first)` reads each item into its panel.
    """
    open_panels: OrderedDict[Hashable, tuple[int, PanelBuilder]] = OrderedDict()
    written: OrderedDict[Hashable, int] = OrderedDict()
    for position, item in enumerate(items):
        while open_panels and position - next(iter(open_panels.values()))[0] >= window:
            done, (_, builder) = open_panels.popitem(last=False)
            written[done] = builder.lines[0] if builder.lines else 0
            if len(written) > window:
                written.popitem(last=False)
            yield builder
        panel_key = key(item)
        found = open_panels.get(panel_key)
        if found is None:
            builder = open_panel(item, panel_key, written.get(panel_key))
            open_panels[panel_key] = (position, builder)
        else:
            builder = found[1]
        add(builder, item, found is None)
    for _, builder in open_panels.values():
        yield builder


def split_note(key: Sequence[object], earlier: int, window: int) -> Note:
    """A panel whose results arrived too far apart to be read as one."""
    return Note(
        PANEL_SPLIT,
        "panel",
        "panel split beyond the grouping window",
        f"rows of patient {key[0] or '(none)'} on {key[1] or '(no date)'} "
        f"also appear at line {earlier}, more than {window} rows "
        "earlier; they are read as a separate panel (sort the export by "
        "patient and date to keep them together)",
    )


def skipped_note(test: str) -> Note:
    """A test that is not an analyte: counted in the summary, not an error."""
    return Note(TEST_SKIPPED, test[:40], "not an analyte", f"test '{test[:40]}' skipped")


def unread_test_note(ranges: Ranges, test: str, display: str | None = None) -> Note:
    """Why a test is not read, naming the analyte it resembles when it resembles one.

    A LOINC code the data file deliberately leaves out, a code b12lab does not
    know whose display text names an analyte, and a name that nearly spells an
    analyte each get a note of their own in the panel's record; any other test
    is only counted.
    """
    shown = test[:40]
    excluded = ranges.excluded_codes.get(column_key(test))
    if excluded is not None:
        analyte, why = excluded
        return Note(
            TEST_NOT_READ,
            shown,
            f"not read as {analyte}",
            f"test '{shown}' not read as {analyte}: {why}",
        )
    named = ranges.analyte_named_in(display) if display else None
    if named is not None:
        return Note(
            TEST_NOT_READ,
            shown,
            f"names {named}, code unknown",
            f"test '{shown}' ('{display[:60]}') names {named} "
            f"({ranges.analytes[named].name}), but b12lab does not know the code '{shown}' "
            f"as {named}; not read (if it is, add --map '{shown}={named}')",
        )
    close = ranges.close_analyte(test) or (ranges.close_analyte(display) if display else None)
    if close is not None:
        return Note(
            TEST_NOT_READ,
            shown,
            f"did you mean {close}?",
            f"test '{shown}' not read: did you mean {close}? (add --map '{shown}={close}')",
        )
    return skipped_note(test)


def _cell(cells: Sequence[object], index: int | None) -> object:
    if index is None or index >= len(cells):
        return ""
    return cells[index]


def _values(measurements: Iterable[Measurement]) -> tuple[tuple[str, float, str | None], ...]:
    """Each measurement read (not derived): its analyte, value and comparator."""
    return tuple((m.analyte, m.value, m.censored) for m in measurements if not m.derived)


def interpret_rows(
    rows: Iterable[Mapping[str, object]],
    ranges: Ranges | None = None,
    *,
    layout: str = "auto",
    mapping: Mapping[str, str] | None = None,
    guideline: str | None = None,
    policy: ReadPolicy | None = None,
    today: dt.date | None = None,
    options: BatchOptions | None = None,
) -> Iterator[BatchRecord]:
    """Interpret dict rows (e.g. `DataFrame.to_dict("records")`), one record per panel.

    The keys of the first row are the header; a later row missing a key has
    an empty cell there. Cells may be text or numbers; None, NaN and pandas' NA
    are missing values. Numbers given as numbers need no decimal convention.
    Options are keyword arguments, or one `BatchOptions` (`options`); every record
    carries its full report.
    """
    from b12lab.ranges import load_ranges

    ranges = ranges or load_ranges()
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    header = [str(k) for k in first]
    if options is None:
        options = BatchOptions.of(
            layout=layout,
            mapping={column_key(k): v for k, v in (mapping or {}).items()},
            guideline=guideline,
            policy=policy,
            today=today,
        )
    interpreter = RowInterpreter.for_options(header, ranges, options, full_reports=True)

    def numbered():
        yield (1, [first.get(h) for h in first], None)
        for number, row in enumerate(iterator, start=2):
            yield (number, [row.get(h) for h in first], None)

    yield from interpreter(numbered())
