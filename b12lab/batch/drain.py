"""Draining a batch run's records into its outputs: the writer of each format, the
outputs (atomic files), the counts behind the summary line, and the progress display.

Every source (a CSV export, Parquet or Arrow, laboratory messages) is written and
counted through this module, so outputs and summaries are the same whatever the
source.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from b12lab.batch.options import BatchOptions
from b12lab.batch.rows import BatchRecord, RowInterpreter
from b12lab.output import AtomicOutput, check_interrupted
from b12lab.output_columns import OutputColumns
from b12lab.ranges import Ranges
from b12lab.reading.panel import CellError
from b12lab.render.rows import WRITERS, ErrorRows
from b12lab.vocab import OutputFormat

PROGRESS_EVERY = 2000


def counted(number: int, noun: str) -> str:
    """`1 panel`, `2 panels`, `1,204 urgent findings`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


@dataclass
class BatchSummary:
    panels: int = 0
    statuses: Counter = field(default_factory=Counter)
    urgent_findings: int = 0
    urgent_panels: int = 0
    advisory_panels: int = 0
    panels_with_errors: int = 0
    notes: list[str] = field(default_factory=list)
    noun: str = "panel"
    assumptions: Counter = field(default_factory=Counter)  # (column, what) -> records

    def add(self, other: BatchSummary) -> None:
        """Count what `other` counted too (its notes and noun are not counts)."""
        self.panels += other.panels
        self.statuses.update(other.statuses)
        self.urgent_findings += other.urgent_findings
        self.urgent_panels += other.urgent_panels
        self.advisory_panels += other.advisory_panels
        self.panels_with_errors += other.panels_with_errors
        self.assumptions.update(other.assumptions)

    def assumption_lines(self) -> list[str]:
        """What the reading layer assumed, counted per column: "B12: no unit, read as ..."."""
        return [
            f"{subject}: {what} in {count:,} {'record' if count == 1 else 'records'}"
            for (subject, what), count in sorted(self.assumptions.items())
        ]

    def line(self) -> str:
        statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(self.statuses.items()))
        return (
            f"{counted(self.panels, self.noun)}; B12 status: {statuses or 'none'}; "
            f"{counted(self.urgent_findings, 'urgent finding')} in "
            f"{counted(self.urgent_panels, self.noun)}; "
            f"{counted(self.panels_with_errors, self.noun)} with errors"
        )


@dataclass
class Rendered:
    """A decided block already rendered (by a forked copy: `b12lab.batch.blocks`)."""

    rows: int
    csv: bytes | None  # CSV output: the block's records as UTF-8 text
    json: list[str] | None  # NDJSON or JSON output: each record's JSON text
    summary: BatchSummary  # what the block adds to the run's summary
    # The --errors file's rows: each refused row's rejected cells, in row order.
    cell_errors: list[tuple[CellError, ...]] = field(default_factory=list)


class Progress:
    """A progress display on stderr, only when stderr is a terminal.

    Each phase of a run (reading, checking the row order, grouping out of core,
    writing) has its own line: a bar and percentage when its size is known, a
    running count (rows, panels) when it is not, such as a pipe on stdin.
    """

    def __init__(self, enabled: bool, total: int | None, label: str, unit: str = "rows"):
        self.bar = None
        self.task = None
        self.position: Callable[[], int] | None = None
        self.unit = unit
        self.first: tuple = ("reading", total, None)
        if enabled and _is_tty(sys.stderr):
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("[bold]b12lab batch[/bold] {task.description}"),
                BarColumn(),
                _amount_column()(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,  # the data on stdout is never the display's
            )
            self.task = self.bar.add_task("reading", total=total, unit=unit)
            self.bar.start()

    def phase(self, name: str, total: int | None, position: Callable[[], int] | None) -> None:
        """A new line for a new phase; the one before it is done."""
        self.position = position
        if self.first[2] is None and self.first[0] == name:
            self.first = (name, total, position)
        if self.bar is not None:
            self.bar.update(self.task, visible=False)
            unit = "steps" if total is not None and name.startswith("grouping") else self.unit
            self.task = self.bar.add_task(name, total=total, unit=unit)
            self.bar.refresh()  # a phase is shown as it starts, however short

    def restore(self) -> None:
        """Back to the phase the run started with (reading, after a first pass)."""
        self.phase(*self.first)

    def tick(self, done: int | None = None) -> None:
        check_interrupted()  # a signal whose exception a library swallowed stops the run here
        if done is None and self.position is not None:
            done = self.position()
        if self.bar is not None and done is not None:
            self.bar.update(self.task, completed=done)

    def update(self, done: int) -> None:
        self.tick(done)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _amount_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        """`45%` when the phase's size is known, `12,000 rows` when it is counted."""

        def render(self, task) -> Text:
            if task.total is None:
                return Text(f"{int(task.completed):,} {task.fields.get('unit', 'rows')}")
            return Text(f"{task.percentage:>3.0f}%")

    return AmountColumn


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def export_interpreter(
    header: Sequence[str], ranges: Ranges, summary: BatchSummary, options: BatchOptions
) -> RowInterpreter:
    """The interpreter of an export with this header (CSV, Parquet, Arrow), its unused
    columns noted in the summary."""
    interpreter = RowInterpreter.for_options(header, ranges, options)
    if interpreter.plan.ignored:
        summary.notes.append("columns not used: " + ", ".join(interpreter.plan.ignored))
    return interpreter


def open_writer(options: BatchOptions, out, columns: OutputColumns):
    """The record writer of the run's format on `out` (Parquet also records the options)."""
    if options.output_format is OutputFormat.PARQUET:
        from b12lab.render.parquet import ParquetRecords

        return ParquetRecords(out, columns, options.as_json())
    return WRITERS[options.output_format.value](out, columns)


def open_outputs(stack: ExitStack, options: BatchOptions):
    """The output stream and, with --errors, the rejected-cells writer (both atomic)."""
    binary = options.output_format.binary
    out = stack.enter_context(AtomicOutput(options.output, "output", binary=binary))
    error_writer = None
    if options.errors_path:
        error_writer = ErrorRows(
            stack.enter_context(AtomicOutput(options.errors_path, "errors file"))
        )
    return out, error_writer


def _tally(summary: BatchSummary, outcome, count: int = 1) -> None:
    """`count` records with this outcome."""
    _add(summary, _counted_as(outcome), count)


def _counted_as(outcome) -> tuple[str, int, bool]:
    """What the summary counts of an outcome: B12 status, urgent findings, and whether
    the panel has an urgent or advisory finding."""
    urgent = outcome.severities.count("urgent")
    return outcome.b12_status, urgent, bool(urgent) or "advisory" in outcome.severities


def _add(summary: BatchSummary, counted: tuple[str, int, bool], count: int) -> None:
    status, urgent, advisory = counted
    summary.panels += count
    summary.statuses[status] += count
    summary.urgent_findings += urgent * count
    summary.urgent_panels += count if urgent else 0
    summary.advisory_panels += count if advisory else 0


def count_record(summary: BatchSummary, record) -> None:
    _tally(summary, record.outcome)
    summary.panels_with_errors += 1 if record.errors else 0
    for note in record.notes:
        summary.assumptions[(note.subject, note.summary)] += 1


def reads_by_columns(interpreter: RowInterpreter) -> bool:
    """Whether the columnar path reads this export (wide, one column per analyte)."""
    if interpreter.plan.layout != "wide" or interpreter.timeline:
        return False
    if interpreter.json_records and interpreter.core.catalogue is not None:
        return False  # a laboratory's rules: every JSON record is its own full report
    analytes = [column.analyte for column in interpreter.plan.analytes]
    return len(set(analytes)) == len(analytes)


def count_decided(summary: BatchSummary, decided) -> None:
    """`count_record` for every row of a decided block at once."""
    import numpy as np

    kept = np.ones(len(decided.lines), dtype=bool)
    kept[list(decided.errors)] = False
    # Decisions the summary counts alike are tallied together.
    kinds, of = decided.counted
    while len(of) < len(decided.decisions):
        counted = _counted_as(decided.decisions[len(of)].outcome)
        of.append(kinds.setdefault(counted, len(kinds)))
    tally = np.bincount(np.asarray(of, np.int64)[decided.template[kept]], minlength=len(kinds))
    for counted, count in zip(kinds, tally.tolist(), strict=True):
        if count:
            _add(summary, counted, count)
    for key, count in decided.note_counts.items():
        summary.assumptions[key] += count
    for record in decided.errors.values():
        count_record(summary, record)


def write_records(
    stack: ExitStack,
    items: Iterable,
    summary: BatchSummary,
    options: BatchOptions,
    *,
    progress: Callable[[], None],
    columns: OutputColumns,
) -> None:
    """The one loop every source drains through: each item to the output, its rejected
    cells to --errors, counted in the summary, with progress shown as it goes.

    An item is a BatchRecord (the row path, laboratory messages) or, on the columnar
    path (formats whose writer takes blocks: `OutputFormat.by_columns`), a decided
    block of rows (`b12lab.batch.columnar.Decided`), written as its records would be,
    or such a block already rendered by a forked copy (`b12lab.batch.blocks.Rendered`).
    `progress` is called after each block and every PROGRESS_EVERY records. Outputs
    are written atomically (devices in place) whatever the source.
    """
    items = iter(items)
    first = next(items, None)  # an export refused on its first rows writes not even a header
    out, error_writer = open_outputs(stack, options)
    writer = open_writer(options, out, columns)
    for item in itertools.chain(() if first is None else (first,), items):
        if isinstance(item, BatchRecord):
            writer.write(item)
            count_record(summary, item)
            if error_writer is not None and item.cell_errors:
                error_writer.write(item)
            if summary.panels % PROGRESS_EVERY == 0:
                progress()
            continue
        from b12lab.batch.columnar import csv_bytes, release_unused

        if isinstance(item, Rendered):  # decided and rendered by a forked copy
            if item.csv is not None:
                out.write_utf8(item.csv)
            else:
                writer.write_texts(item.json)
            summary.add(item.summary)
        elif options.output_format is OutputFormat.CSV:
            out.write_utf8(csv_bytes(item))  # built column by column, never decoded
            count_decided(summary, item)
        else:
            writer.write_block(item)
            count_decided(summary, item)
        if error_writer is not None and isinstance(item, Rendered):
            for cells in item.cell_errors:
                error_writer.write_cells(cells)
        elif error_writer is not None:
            for row in sorted(item.errors):
                error_writer.write(item.errors[row])
        release_unused()  # the allocator keeps freed blocks otherwise: memory stays flat
        progress()
    writer.close()
    out.flush()
